"""Earlier file layouts load through learnafe._migrate with the meaning they were written with."""

import json

from learnafe._migrate import RUN_CONFIG_DEFAULTS, resume_adoptions, resume_checkpoint, run_config
from learnafe.circuits.transconductance import WeakInversion, load_gm_model
from learnafe.frontends import AnalogFilterBank, BankSpec
from learnafe.training.config import TrainConfig


def test_old_run_config_takes_the_values_it_was_written_with(tmp_path):
    today = TrainConfig()
    old = {k: v for k, v in today.to_dict().items() if k not in RUN_CONFIG_DEFAULTS}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(old))
    cfg = TrainConfig.from_run_file(path)
    assert (cfg.gm_model, cfg.min_spacing, cfg.output_conductance) == ("weak_inversion", 0.0, False)
    assert (cfg.train_corners, cfg.train_mismatch) == ("", "")
    # today's defaults differ, so the file did not simply load with them
    assert (today.gm_model, today.min_spacing, today.output_conductance) != (cfg.gm_model, cfg.min_spacing,
                                                                           cfg.output_conductance)
    # a key the file holds is kept as written
    path.write_text(json.dumps({**old, "gm_model": "sky130-ss"}))
    assert TrainConfig.from_run_file(path).gm_model == "sky130-ss"


def test_resume_adopts_old_meanings_only_for_options_left_at_their_default():
    defaults = TrainConfig().to_dict()
    old = {k: v for k, v in defaults.items() if k not in ("gm_model", "min_spacing")}
    requested = {**defaults, "min_spacing": 1.5}
    assert resume_adoptions(old, requested, defaults) == {"gm_model": "weak_inversion"}
    assert resume_adoptions(defaults, defaults, defaults) == {}
    assert run_config(old)["min_spacing"] == 0.0 and run_config(defaults) == defaults


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
