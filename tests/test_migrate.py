"""Earlier file layouts load through learnafe._migrate with the meaning they were written with."""

import json
from pathlib import Path

from learnafe._migrate import (
    FLAT_NAMES,
    RUN_CONFIG_DEFAULTS,
    flag_name,
    resume_adoptions,
    resume_checkpoint,
    run_config,
)
from learnafe.circuits.transconductance import WeakInversion, load_gm_model
from learnafe.frontends import AnalogFilterBank, BankSpec
from learnafe.training.config import TrainConfig

DATA = Path(__file__).parent / "data"


def _flat(cfg: TrainConfig) -> dict:
    """``cfg`` written with the flat option names of earlier files."""
    flat = {flag_name(k): v for k, v in cfg.to_dotted().items()}
    flat["train_corners"] = ",".join(flat["train_corners"])
    return flat


def test_old_run_config_takes_the_values_it_was_written_with(tmp_path):
    today = TrainConfig()
    old = {k: v for k, v in _flat(today).items() if FLAT_NAMES[k] not in RUN_CONFIG_DEFAULTS}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(old))
    cfg = TrainConfig.from_run_file(path)
    assert (cfg.bank.gm_model, cfg.bank.min_spacing, cfg.bank.output_conductance) == ("weak_inversion", 0.0, False)
    assert (cfg.corners.names, cfg.mismatch.mode) == ((), "off")
    # today's defaults differ, so the file did not simply load with them
    assert (today.bank.gm_model, today.bank.min_spacing, today.bank.output_conductance) != (
        cfg.bank.gm_model, cfg.bank.min_spacing, cfg.bank.output_conductance)
    # a key the file holds is kept as written
    path.write_text(json.dumps({**old, "gm_model": "sky130-ss"}))
    assert TrainConfig.from_run_file(path).bank.gm_model == "sky130-ss"
    # a nested file written today predates nothing
    path.write_text(json.dumps(today.to_dict()))
    assert TrainConfig.from_run_file(path) == today


def test_flat_config_of_the_flat_layout_loads_into_the_sections():
    """tests/data/config_flat.json: a run's config.json as written with one flat option list."""
    flat = json.loads((DATA / "config_flat.json").read_text())
    cfg = TrainConfig.from_dict(flat)
    assert cfg.data.root == "data/toy" and cfg.data.clip_seconds == 0.3
    assert cfg.corners.names == ("tt", "ss")
    # the one-field mismatch option of the flat layout is the section it meant
    assert (cfg.mismatch.mode, cfg.mismatch.source, cfg.mismatch.sigma_i) == ("per_batch", "sky130", 0.0)
    assert (cfg.optimiser.lr_frontend, cfg.optimiser.batch_size, cfg.schedule.epochs) == (0.02, 16, 2)
    assert (cfg.classifier.width, cfg.bank.kind, cfg.bank.options, cfg.output.progress) == (16, "analog", {}, False)
    assert cfg.evaluation.eval_snrs == [10.0]
    # every flat key of the file lands in exactly one field, with the value the file holds
    dotted = cfg.to_dotted()
    for key, value in flat.items():
        if key == "train_mismatch":
            continue
        want = list(cfg.corners.names) if key == "train_corners" else value
        assert dotted[FLAT_NAMES[key]] == want, key
    # the file holds every flat option but those added after the flat layout (the teacher's,
    # the unknown class weight, the weight average, mixup, the noise and mismatch sections), which load with their defaults, and the earlier
    # mismatch option
    later = {"teacher", "distill_weight", "distill_temperature", "unknown_weight", "ema_decay", "mixup_alpha"} | {
        k for k, v in FLAT_NAMES.items() if v.split(".")[0] in ("noise", "mismatch")}
    assert sorted(set(FLAT_NAMES) - later) == sorted(set(flat) - {"train_mismatch"})
    assert "train_mismatch" not in FLAT_NAMES
    assert all(dotted[FLAT_NAMES[k]] == TrainConfig.defaults()[FLAT_NAMES[k]] for k in later
               if not k.startswith("mismatch_"))
    # round trip through the nested form, and flat names and dotted names in replace agree
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.replace(lr_frontend=0.5) == cfg.replace(**{"optimiser.lr_frontend": 0.5})


def test_resume_adopts_old_meanings_only_for_options_left_at_their_default():
    defaults = TrainConfig().to_dotted()
    old = {k: v for k, v in _flat(TrainConfig()).items() if k not in ("gm_model", "min_spacing")}
    requested = {**defaults, "bank.min_spacing": 1.5}
    assert resume_adoptions(old, requested, defaults) == {"bank.gm_model": "weak_inversion"}
    assert resume_adoptions(_flat(TrainConfig()), defaults, defaults) == {}
    assert resume_adoptions(TrainConfig().to_dict(), defaults, defaults) == {}
    assert run_config(old)["bank.min_spacing"] == 0.0 and run_config(TrainConfig().to_dict()) == defaults


def test_spec_without_gm_model_reads_with_weak_inversion():
    d = AnalogFilterBank.conventional(n_channels=4).to_dict()
    assert BankSpec.from_dict(d).gm().to_dict() == load_gm_model(d["gm_model"]).to_dict()
    d.pop("gm_model")
    d.pop("output_conductance", None)
    spec = BankSpec.from_dict(d)
    assert isinstance(spec.gm(), WeakInversion)
    assert spec.gm().to_dict() == load_gm_model("weak_inversion").to_dict()
    assert spec.uses_output_conductance is False


def test_training_config_holds_no_migration_table():
    import learnafe.training.config as config

    assert not hasattr(config, "LEGACY_DEFAULTS")


def test_resume_checkpoint_moves_an_old_name_into_place(tmp_path):
    name = "checkpoints/last.pt"
    assert resume_checkpoint(tmp_path, name) == tmp_path / name and not (tmp_path / name).exists()
    (tmp_path / "qat_state.pt").write_bytes(b"old state")
    path = resume_checkpoint(tmp_path, name)
    assert path.read_bytes() == b"old state" and not (tmp_path / "qat_state.pt").exists()
    # a folder with both keeps the current file
    (tmp_path / "finetune_state.pt").write_bytes(b"older")
    assert resume_checkpoint(tmp_path, name).read_bytes() == b"old state"


def test_field_defaults_are_those_of_a_built_config():
    assert TrainConfig.defaults() == TrainConfig().to_dotted()


def test_search_overrides_by_flat_and_dotted_name_set_the_same_options(tmp_path):
    from learnafe.search.trial_context import TrialContext
    from learnafe.search.trials import _training_config
    from learnafe.training.config import resolve_config

    base = tmp_path / "base.json"
    base.write_text(json.dumps({"bank": {"options": {"noise": {"mode": "always", "full_scale_v": 0.1}}}}))

    def trial(settings, params):
        ctx = TrialContext(trial=1, seed=5, run_dir=tmp_path, settings={"config": str(base), **settings}, threads=1)
        return resolve_config(_training_config(params, ctx, "codesign"))

    flat = trial({"epochs": 3, "limit_train": 60}, {"lr_frontend": 0.03, "frontend.noise.full_scale_v": 0.2})
    dotted = trial({"schedule": {"epochs": 3}, "data.limit_train": 60},
                   {"optimiser.lr_frontend": 0.03, "bank.options.noise.full_scale_v": 0.2})
    assert flat == dotted
    assert (dotted.schedule.epochs, dotted.data.limit_train, dotted.optimiser.lr_frontend) == (3, 60, 0.03)
    # a path into the bank's options of earlier files sets that field of the noise section and
    # keeps the others of the base file
    assert (dotted.noise.mode, dotted.noise.full_scale_v, dotted.bank.options) == ("always", 0.2, {})
    assert trial({"schedule": {"epochs": 3}, "data.limit_train": 60},
                 {"optimiser.lr_frontend": 0.03, "noise.full_scale_v": 0.2}) == dotted
    assert (dotted.output.seed, dotted.output.progress) == (5, False)


def test_repository_configs_use_dotted_names_and_load():
    from learnafe.search.space import load_config

    root = Path(__file__).parent.parent / "configs"
    cfg = json.loads((root / "train_real_long.json").read_text())
    assert set(cfg) <= set(TrainConfig().to_dict())  # nested by section
    TrainConfig.from_dict(cfg)
    for toml in root.glob("search_*.toml"):
        load_config(toml)
    small = load_config(root / "search_small.toml")
    assert all("." in name for name in small.space.names)


def test_nested_config_with_the_banks_settings_in_its_options_loads_into_the_sections():
    """tests/data/config_nested_bank_options.json: a nested config.json written while the bank's
    noise settings travelled in ``bank.options`` and ``mismatch`` was one field (``source``)."""
    from learnafe.circuits.variation import MismatchConfig, NoiseConfig
    from learnafe.training.model import build_frontend

    old = json.loads((DATA / "config_nested_bank_options.json").read_text())
    assert set(old["mismatch"]) == {"source"} and "noise" in old["bank"]["options"]
    cfg = TrainConfig.from_dict(old)
    noise = old["bank"]["options"]["noise"]
    assert cfg.noise.bank_config() == NoiseConfig(**noise)
    assert cfg.mismatch.bank_config() == MismatchConfig(mode="per_batch", source="sky130")
    assert cfg.bank.options == {"discretization": "matched_z"}
    assert TrainConfig.from_run_file(DATA / "config_nested_bank_options.json") == cfg
    assert TrainConfig().replace(**run_config(old)) == cfg  # what a resumed run compares
    # the bank is the one the options built: the same spec as a bank built from them directly
    bank = build_frontend(cfg)
    direct = AnalogFilterBank.conventional(
        n_channels=16, f_lo=100.0, f_hi=8000.0, sample_rate=20000.0, gm_model="sky130-tt",
        min_spacing=1.1, corners={"mode": "per_batch", "corners": ["tt", "ss", "ff"]}, noise=noise,
        mismatch={"mode": "per_batch", "source": "sky130"}, discretization="matched_z")
    assert json.dumps(bank.to_dict()) == json.dumps(direct.to_dict())
    # the earlier one-field section, flat or nested, takes only "sky130" and ""
    assert TrainConfig.from_dict({"mismatch": {"source": ""}}).mismatch == TrainConfig().mismatch
    assert TrainConfig.from_dict({"train_mismatch": ""}).mismatch == TrainConfig().mismatch
    # settings in bank.options override the section's fields one by one, as they overrode then
    both = TrainConfig.from_dict({"noise": {"mode": "train", "full_scale_v": 0.3},
                                  "bank": {"options": {"noise": {"full_scale_v": 0.2}}}})
    assert (both.noise.mode, both.noise.full_scale_v) == ("train", 0.2)
