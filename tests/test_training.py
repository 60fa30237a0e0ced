"""Co-design training: config, L_BPF, one optimiser step, hardware pressure, run
directory, load_run, evaluation on a 12-class folder, fine-tuning, report."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import learnafe.training.data as tdata
from learnafe.data import CLASSES, write_wav
from learnafe.training import TrainConfig, load_run, resolve_config
from learnafe.training.loss import BPFLoss
from learnafe.training.model import build_frontend
from learnafe.training.trainer import Trainer, train
from training_helpers import make_toy_dataset, tiny_config

VDD, K_BRANCH, C_DENSITY_FF_PER_UM2 = 1.8, 2, 2.0   # independent restatement of the cost model


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    return make_toy_dataset(root / "data")


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setattr(tdata, "CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="module")
def runs(toy, tmp_path_factory):
    """A conventional and a co-designed tiny run (trained once for several tests)."""
    base = tmp_path_factory.mktemp("runs")
    out = {}
    mp = pytest.MonkeyPatch()
    mp.setattr(tdata, "CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    try:
        for mode in ("conventional", "codesign"):
            out[mode] = (base / mode, train(tiny_config(toy, mode=mode, lambda_i=0.5, lambda_c=0.5),
                                            base / mode))
    finally:
        mp.undo()
    return out


# ----------------------------------------------------------------------- config
def test_config_rejects_unknown_and_bad_values(tmp_path):
    with pytest.raises(ValueError, match="unknown training option.*lr_fronted"):
        TrainConfig.from_dict({"lr_fronted": 0.1})
    with pytest.raises(ValueError, match="mode"):
        TrainConfig.from_dict({"mode": "joint"})
    with pytest.raises(ValueError, match="bank.f_high.*data.sample_rate"):
        TrainConfig.from_dict({"f_high": 12000.0})
    with pytest.raises(ValueError, match="bank.f_low"):
        TrainConfig.from_dict({"bank": {"f_low": 9000.0, "f_high": 8000.0}})
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig.from_dict({"batch_size": 1})
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"lambda_i": 0.3, "epochs": 3}))
    cfg = resolve_config(p, epochs=5)
    assert (cfg.cost.lambda_i, cfg.schedule.epochs, cfg.cost.lambda_c) == (0.3, 5, TrainConfig().cost.lambda_c)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    p.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        TrainConfig.from_file(p)


def test_config_sections_validate_their_fields_and_share_the_corner_constant():
    from learnafe.circuits.transconductance import SKY130_CORNERS
    from learnafe.frontends.spec import CORNERS as SPEC_CORNERS
    from learnafe.training.chips import CORNERS as YIELD_CORNERS
    from learnafe.training.config import CornerSection, OptimiserSection

    assert SPEC_CORNERS is SKY130_CORNERS and YIELD_CORNERS is SKY130_CORNERS
    assert CornerSection(names=["ss", "ff"]).names == ("ss", "ff")
    with pytest.raises(ValueError, match=r"corners\.names.*\('tt', 'ss', 'ff'\)"):
        CornerSection(names=("xx",))
    with pytest.raises(ValueError, match=r"optimiser\.lr_classifier=0\.0 is invalid: must be > 0"):
        TrainConfig().replace(**{"optimiser.lr_classifier": 0})
    with pytest.raises(ValueError, match=r"train_mismatch='uniform'.*'sky130'"):
        TrainConfig.from_dict({"train_mismatch": "uniform"})
    cfg = TrainConfig().replace(optimiser=OptimiserSection(lr_frontend=0.5), train_corners="tt,ff")
    assert cfg.optimiser.lr_frontend == 0.5 and cfg.corners.names == ("tt", "ff")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.optimiser.lr_frontend = 1.0  # type: ignore[misc]
    # JSON ints of float fields and floats of int fields are coerced once, in the section
    assert TrainConfig.from_dict({"schedule": {"epochs": 3.0}, "cost": {"lambda_i": 1}}).cost.lambda_i == 1.0


def test_noise_and_mismatch_sections_are_the_banks_own_types():
    from learnafe.circuits.variation import MismatchConfig, NoiseConfig
    from learnafe.cli import build_parser
    from learnafe.training.config import BankSection, MismatchSection, NoiseSection, resolve_config

    for section, bank_type in ((NoiseSection, NoiseConfig), (MismatchSection, MismatchConfig)):
        fields = [(f.name, f.default) for f in dataclasses.fields(section)]
        assert fields == [(f.name, f.default) for f in dataclasses.fields(bank_type)]
        assert section().bank_config() == bank_type()
    # the bank's type is the one check, and its message names the dotted option
    with pytest.raises(ValueError, match=r"training option noise\.mode must be one of"):
        NoiseSection(mode="loud")
    with pytest.raises(ValueError, match=r"training option mismatch\.source='sky130' takes its sigmas"):
        TrainConfig().replace(**{"mismatch.source": "sky130", "mismatch.sigma_i": 0.01})
    with pytest.raises(ValueError, match=r"bank\.options.*'noise' is the section noise"):
        BankSection(options={"noise": {"mode": "always"}})
    # the sections reach the bank
    cfg = TrainConfig().replace(**{"noise.mode": "always", "noise.full_scale_v": 0.2, "mismatch.mode": "fixed",
                                   "mismatch.sigma_i": 0.02, "mismatch.seed": 3})
    bank = build_frontend(cfg)
    assert bank.noise == NoiseConfig(mode="always", full_scale_v=0.2)
    assert bank.mismatch == MismatchConfig(mode="fixed", sigma_i=0.02, seed=3)
    assert not torch.equal(bank.chip_factors, torch.ones_like(bank.chip_factors))
    with pytest.raises(ValueError, match=r"training option noise is a setting of the analog bank"):
        build_frontend(cfg.replace(**{"bank.kind": "gammatone", "mismatch.mode": "off"}))
    # and every field is a `learnafe train` flag
    args = build_parser().parse_args(["train", "--out", "x", "--noise-mode", "train", "--noise-train-p-zero", "0.5",
                                      "--mismatch-mode", "per_batch", "--mismatch-source", "sky130"])
    flags = resolve_config(None, **{k: getattr(args, k) for k in args._config_fields if hasattr(args, k)})
    assert (flags.noise.mode, flags.noise.train_p_zero) == ("train", 0.5)
    assert (flags.mismatch.mode, flags.mismatch.source) == ("per_batch", "sky130")


def test_frontend_option_errors_name_the_valid_ones():
    with pytest.raises(ValueError, match="unknown AnalogFilterBank option.*noize"):
        build_frontend(TrainConfig().replace(**{"bank.options": {"noize": {}}}))
    # the bank's options (BankOptions fields) pass through to the bank
    bank = build_frontend(TrainConfig().replace(**{"bank.options": {"noise": {"mode": "always"},
                                                                    "discretization": "matched_z"}}))
    assert bank.noise.mode == "always" and bank.discretization == "matched_z"


# ------------------------------------------------------------------------- loss
def test_bpf_loss_matches_an_independent_formula_and_gradient():
    bank = build_frontend(TrainConfig())
    spec = bank.to_dict()
    p_ind = VDD * K_BRANCH * sum(ch["I1"] + ch["I2"] for ch in spec["channels"])
    a_ind = sum(ch["C1"] + ch["C2"] for ch in spec["channels"]) * 1e15 / C_DENSITY_FF_PER_UM2
    assert bank.power().item() == pytest.approx(p_ind, rel=1e-9)
    assert bank.area().item() == pytest.approx(a_ind, rel=1e-9)
    torch.manual_seed(0)
    logits = torch.randn(5, 12, dtype=torch.float64)
    labels = torch.tensor([0, 3, 11, 4, 4])
    lam_ce, lam_i, lam_c = 0.7, 0.2, 0.3
    fn = BPFLoss(p_ind * 2, a_ind * 4, lambda_ce=lam_ce, lambda_i=lam_i, lambda_c=lam_c)
    total, terms = fn(logits, labels, bank.power(), bank.area())
    lp = logits.numpy() - np.log(np.exp(logits.numpy()).sum(1, keepdims=True))
    ce = -lp[np.arange(5), labels.numpy()].mean()
    assert terms["ce"] == pytest.approx(ce, rel=1e-9)
    assert terms["power"] == pytest.approx(0.5) and terms["area"] == pytest.approx(0.25)
    assert total.item() == pytest.approx(lam_ce * ce + lam_i * 0.5 + lam_c * 0.25, rel=1e-9)
    total.backward()
    # I1 = I1_ref exp(phi) => dP/dphi_I1[k] = VDD * K * I1[k]; C1 likewise for the area.
    i1 = np.array([ch["I1"] for ch in spec["channels"]])
    c1 = np.array([ch["C1"] for ch in spec["channels"]])
    np.testing.assert_allclose(bank.phi_I1.grad.numpy(), lam_i * VDD * K_BRANCH * i1 / (2 * p_ind), rtol=1e-7)
    np.testing.assert_allclose(bank.phi_C1.grad.numpy(),
                               lam_c * c1 * 1e15 / C_DENSITY_FF_PER_UM2 / (4 * a_ind), rtol=1e-7)
    with pytest.raises(ValueError, match="p_ref"):
        BPFLoss(0.0, 1.0)


# --------------------------------------------------------------------- training
def test_one_training_step_decreases_the_loss_on_a_fixed_batch(toy, tmp_path):
    # no augmentation: the loop's first step trains on exactly the batch measured here
    cfg = TrainConfig.from_dict(tiny_config(toy, dropout=0.0, warmup_steps=0, lr_classifier=0.01,
                                            frontend={}, epochs=1, max_steps=1, p_noise=0.0,
                                            gain_db=0.0, time_shift_ms=0.0, speed=0.0, time_masks=0,
                                            freq_masks=0))
    tr = Trainer(cfg, tmp_path / "run")
    tr._build()
    idx = tr._batches(0)[0]
    audio, labels, _ = tdata.stack_batch(tr.train_ds, idx)

    def loss_now():
        tr.model.train()
        with torch.no_grad():
            out = tr.model(audio)
            return tr.loss_fn(out["logits"], labels, out["power"], out["area"])[0].item()

    before = loss_now()
    for g in tr.optimizer.param_groups:
        assert g["lr"] > 0
    assert tr.loop.run() == "max_steps 1 reached"
    assert tr.step == 1
    after = loss_now()
    assert after < before - 1e-3, (before, after)


def _power_after(toy, tmp_path, lam_i, name):
    m = train(tiny_config(toy, lambda_i=lam_i, lambda_c=0.0, max_steps=12, epochs=2,
                          lr_frontend=0.02, warmup_steps=0), tmp_path / name, test=False)
    return m["power_w"] / m["p_ref_w"], m


def test_lambda_i_lowers_power_and_zero_lambda_does_not(toy, tmp_path):
    ratio_on, m_on = _power_after(toy, tmp_path, 1.0, "on")
    ratio_off, _ = _power_after(toy, tmp_path, 0.0, "off")
    # 12 AdamW steps of lr 0.02 on phi_I can lower every current by up to exp(-0.24).
    assert ratio_on < 0.93, ratio_on
    assert ratio_off > 0.975, ratio_off
    assert ratio_on < ratio_off - 0.05
    assert m_on["power_saving"] == pytest.approx(1 - ratio_on)


def test_run_directory_and_load_run(runs, toy):
    run_dir, m = runs["codesign"]
    for f in ("config.json", "bank.json", "metrics.json", "log.txt", "checkpoints/last.pt",
              "checkpoints/best.pt"):
        assert (run_dir / f).is_file(), f
    assert m["status"] == "finished" and m["epochs_run"] == 2
    assert set(m["test"]["accuracy"]) == {"clean", "10"}
    assert m["val_error"] == pytest.approx(1 - m["val_accuracy"])
    assert len(m["history"]) == 2 and m["history"][-1]["train"]["clips"] > 0
    assert m["throughput_clips_per_s"] > 0
    bank = json.loads((run_dir / "bank.json").read_text())
    assert bank["total_power_w"] == pytest.approx(m["power_w"], rel=1e-9)
    assert m["power_saving"] > 0 and m["area_saving"] > 0   # lambda 0.5 pushes both down
    conv = runs["conventional"][1]
    assert conv["power_saving"] == pytest.approx(0.0, abs=1e-12)
    assert conv["area_saving"] == pytest.approx(0.0, abs=1e-12)
    run = load_run(run_dir)
    assert run.config == TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    assert run.frontend.power().item() == pytest.approx(m["power_w"], rel=1e-9)
    ckpt = torch.load(run_dir / "checkpoints/best.pt", weights_only=False)
    for k, v in run.model.state_dict().items():
        torch.testing.assert_close(v, ckpt["model"][k])
    assert not run.model.training
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        load_run(toy)


def test_existing_run_with_other_config_is_refused(runs):
    run_dir, _ = runs["codesign"]
    cfg = json.loads((run_dir / "config.json").read_text())
    cfg["lambda_i"] = 0.123
    with pytest.raises(ValueError, match=r"different configuration.*lambda_i"):
        train(cfg, run_dir)
    with pytest.raises(ValueError, match="already holds a run"):
        train(json.loads((run_dir / "config.json").read_text()), run_dir, resume=False)


# ------------------------------------------------------------------- evaluation
def _make_12class_folder(root: Path, toy: Path) -> dict:
    """A 12-class test-layout folder built from the toy clips, with uneven counts."""
    counts = {}
    rng = np.random.default_rng(1)
    for j, cls in enumerate(CLASSES):
        folder = {"unknown": "_unknown_", "silence": "_silence_"}.get(cls, cls)
        (root / folder).mkdir(parents=True)
        n = 1 + j % 3
        src = sorted((toy / (cls if cls not in ("unknown", "silence") else "bed")).glob("*.wav"))
        for k in range(n):
            if cls == "silence":
                write_wav(root / folder / f"{k}.wav", (0.05 * rng.standard_normal(4800)).astype(np.float32), 16000)
            else:
                shutil.copy(src[k], root / folder / f"{k:08x}_nohash_{k}.wav")
        counts[cls] = n
    return counts


def test_evaluate_cli_on_a_12_class_folder(runs, toy, tmp_path):
    from learnafe.cli import main

    counts = _make_12class_folder(tmp_path / "real", toy)
    run_dir, _ = runs["codesign"]
    out = tmp_path / "eval.json"
    rc = main(["-q", "evaluate", str(run_dir), "--data", str(tmp_path / "real"), "--json", str(out),
               "--snrs", "5", "10", "15", "20"])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["class_counts"] == counts
    assert res["n"] == sum(counts.values())
    assert set(res["accuracy"]) == {"clean", "5", "10", "15", "20"}
    # The folder has no noise of its own: the training set's noise is used.
    assert res["noise"].endswith("_background_noise_") and str(toy) in res["noise"]
    for key, cm in res["confusion"].items():
        cm = np.asarray(cm)
        assert cm.sum() == res["n"]
        np.testing.assert_array_equal(cm.sum(axis=1), [counts[c] for c in CLASSES])
        assert res["accuracy"][key] == pytest.approx(np.trace(cm) / cm.sum())
    assert main(["-q", "evaluate", str(run_dir), "--data", str(tmp_path / "missing")]) == 1


def test_evaluate_mismatch_cli_writes_the_yield_analysis(runs, toy, tmp_path):
    from learnafe.cli import main

    run_dir, _ = runs["codesign"]
    out, y = tmp_path / "eval.json", tmp_path / "yield"
    rc = main(["-q", "evaluate", str(run_dir), "--data", str(toy), "--split", "validation", "--snrs", "10",
               "--mismatch", "2", "--corners", "ff", "--yield-snrs", "--yield-out", str(y), "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())["yield"]
    assert res["n_chips"] == 2 and len(res["chips"]) == 2 and list(res["corners"]) == ["ff"]
    assert set(res["distribution"]) == {"clean", "mean"}          # --yield-snrs with no value: clean only
    assert res["seed"] == json.loads((run_dir / "config.json").read_text())["evaluation"]["eval_seed"]
    assert res == json.loads((y / "yield.json").read_text())
    assert (y / "yield.png").stat().st_size > 1000 and "yield:" in (y / "yield.log").read_text()
    # one chip per call: the same chips (the stacked calls change only the speed)
    rc = main(["-q", "evaluate", str(run_dir), "--data", str(toy), "--split", "validation", "--snrs", "10",
               "--mismatch", "2", "--corners", "ff", "--yield-snrs", "--yield-out", str(tmp_path / "y1"),
               "--chips-per-call", "1"])
    assert rc == 0
    one = json.loads((tmp_path / "y1" / "yield.json").read_text())
    assert one["chips"] == res["chips"] and one["corners"] == res["corners"]


def test_evaluation_is_reproducible(runs, toy):
    from learnafe.training.run_evaluation import EvaluateOptions, evaluate_run

    run_dir, _ = runs["codesign"]
    a = evaluate_run(run_dir, toy, EvaluateOptions(progress=False))
    b = evaluate_run(run_dir, toy, EvaluateOptions(progress=False))
    assert a["confusion"] == b["confusion"]


# ------------------------------------------------------------------ fine-tuning
def test_finetune_on_another_frontend(runs, tmp_path):
    from learnafe.frontends import AnalogFilterBank
    from learnafe.training.finetune import finetune

    run_dir, _ = runs["codesign"]
    spec = json.loads((run_dir / "bank.json").read_text())
    spec["phi"]["C1"] = [p + 0.1 for p in spec["phi"]["C1"]]  # a "measured" bank: 10 % off
    other = AnalogFilterBank.from_dict(spec)
    res = finetune(run_dir, other, epochs=2, out_dir=tmp_path / "ft", progress=False)
    assert res["frontend"] == "AnalogFilterBank" and len(res["history"]) == 2
    for when in ("before", "after"):
        assert set(res[when]["accuracy"]) == {"clean", "10"}
    assert (tmp_path / "ft" / "finetune.json").is_file()
    reloaded = load_run(tmp_path / "ft")
    orig = load_run(run_dir)
    # the front end is untouched, the classifier changed
    torch.testing.assert_close(reloaded.frontend.phi_I1, orig.frontend.phi_I1)
    assert any(not torch.equal(a, b) for a, b in zip(reloaded.classifier.parameters(),
                                                     orig.classifier.parameters()))
    # resuming a finished fine-tuning reproduces it
    res2 = finetune(run_dir, other, epochs=2, out_dir=tmp_path / "ft", progress=False)
    assert res2["after"]["confusion"] == res["after"]["confusion"]
    # a fine-tuning folder written with the earlier checkpoint name resumes from it
    last = tmp_path / "ft" / "checkpoints" / "last.pt"
    assert last.is_file() and not (tmp_path / "ft" / "finetune_state.pt").exists()
    last.rename(tmp_path / "ft" / "finetune_state.pt")
    res3 = finetune(run_dir, other, epochs=2, out_dir=tmp_path / "ft", progress=False)
    assert res3["history"] == res["history"] and last.is_file()

    class Wrong(torch.nn.Module):
        def forward(self, x):
            return torch.zeros(x.shape[0], 8, 10)

    with pytest.raises(ValueError, match="shape"):
        finetune(run_dir, Wrong(), epochs=1, out_dir=tmp_path / "bad", progress=False)


def test_speaker_halves_are_disjoint(runs, toy, tmp_path):
    from learnafe.training.data import open_split
    from learnafe.training.finetune import speaker_halves, speaker_of

    assert speaker_of("yes/0a1b2c3d_nohash_2.wav") == "0a1b2c3d"
    assert speaker_of("_unknown_/bed_0a1b2c3d_nohash_0.wav.wav") == "0a1b2c3d"
    assert speaker_of("_silence_/17.wav") is None
    ds = open_split(toy, "train", TrainConfig.from_dict(tiny_config(toy)))
    a, b = speaker_halves(ds)
    assert len(a) + len(b) == len(ds) and len(a) > 0 and len(b) > 0
    spk = lambda s: {speaker_of(s.name(i)) or s.name(i) for i in range(len(s))}  # noqa: E731
    assert not spk(a) & spk(b)


def test_finetune_spice_without_verification_is_a_clear_error(runs):
    from learnafe.spice.finetune import finetune_spice

    run_dir, _ = runs["codesign"]
    with pytest.raises(RuntimeError, match="(not been verified|calibrated_frontend)"):
        finetune_spice(run_dir, epochs=1, progress=False)


# ----------------------------------------------------------------------- report
def test_report_has_table_plots_and_optional_sections(runs, tmp_path, monkeypatch):
    from learnafe.reporting import RUN_SECTIONS, write_report

    calls = []

    def fake_section(run_dir, out_dir):
        calls.append(Path(run_dir).name)
        return "## SPICE verification\n\nfake section" if Path(run_dir).name == "codesign" else None

    monkeypatch.setitem(RUN_SECTIONS, "spice", fake_section)
    out = write_report([runs["conventional"][0], runs["codesign"][0]], tmp_path / "r.md")
    md = out.read_text()
    assert "| conventional | conventional |" in md and "| codesign | codesign |" in md
    assert "vs **conventional**" in md
    for png in ("accuracy_vs_snr.png", "training_curves.png", "responses_codesign.png",
                "confusion_codesign.png", "confusion_conventional.png"):
        assert (tmp_path / "r_img" / png).stat().st_size > 1000, png
        assert f"r_img/{png}" in md
    assert md.count("## SPICE verification") == 1 and calls == ["conventional", "codesign"]
    m = runs["codesign"][1]
    assert f"{-100 * m['power_saving']:+.2f} %" in md
    assert not math.isnan(m["test"]["mean_accuracy"])


def test_mismatch_monte_carlo_samples_distinct_chips(runs, toy):
    from learnafe.training.data import open_split
    from learnafe.training.evaluate import mismatch_monte_carlo
    from learnafe.training.model import chip_frontend

    run = load_run(runs["codesign"][0])
    a = chip_frontend(run.frontend, 0, 0.05, 0.02)
    b = chip_frontend(run.frontend, 1, 0.05, 0.02)
    assert not torch.equal(a.chip_factors, b.chip_factors)
    # relative errors of the drawn chip have the requested spread
    f = torch.cat([chip_frontend(run.frontend, s, 0.05, 0.02).chip_factors for s in range(20)], dim=1)
    assert float(f[:2].std()) == pytest.approx(0.05, rel=0.25)
    assert float(f[2:].std()) == pytest.approx(0.02, rel=0.25)
    ds = open_split(toy, "validation", run.config)
    mc = mismatch_monte_carlo(run.model, ds, 3, snrs=(10.0,), sigma_i=0.05, sigma_c=0.02)
    assert mc["n_chips"] == 3 and len(mc["chips"]) == 3
    for k in ("clean", "10"):
        vals = [c[k] for c in mc["chips"]]
        assert mc["mean"][k] == pytest.approx(np.mean(vals))
        assert 0.0 <= mc["mean"][k] <= 1.0


def test_report_names_its_clips_and_hides_accuracy_on_training_clips(runs, toy, tmp_path):
    import json
    import shutil

    from learnafe.reporting import EVAL_DIR, write_report

    dirs = {}
    for mode in ("conventional", "codesign"):
        dirs[mode] = tmp_path / mode
        shutil.copytree(runs[mode][0], dirs[mode])
    acc = {"clean": 0.987, "20": 0.976, "15": 0.965, "10": 0.954, "5": 0.943}
    ev = dirs["codesign"] / EVAL_DIR
    ev.mkdir(exist_ok=True)
    # an evaluation on the run's own training folder is not an accuracy ...
    (ev / "own.json").write_text(json.dumps({"n": 50, "data": str(toy), "accuracy": acc,
                                             "mean_accuracy": 0.9654}))
    # ... one on other clips is
    (ev / "other.json").write_text(json.dumps({"n": 40, "data": str(tmp_path / "elsewhere"),
                                               "accuracy": acc, "mean_accuracy": 0.9654}))
    md = write_report([dirs["conventional"], dirs["codesign"]], tmp_path / "r.md").read_text()
    own = next(line for line in md.splitlines() if line.startswith("| codesign | own |"))
    other = next(line for line in md.splitlines() if line.startswith("| codesign | other |"))
    assert "not an accuracy" in own and "98.70" not in own
    assert "98.70" in other and "96.54" in other
    n_test = runs["codesign"][1]["test"]["n"]
    assert f"Measured on the {n_test} clips of the test split of {toy}" in md
    assert "(goal: >= 8 % less power" in md  # no real speakers: the test split judges
    # with real validation speakers the verdict is judged on them, not on the test split
    for mode in ("conventional", "codesign"):
        p = dirs[mode] / "metrics.json"
        m = json.loads(p.read_text())
        m["real_validation"] = {"n": 30, "data": "REALDIR", "protocol": "validation speakers of REALDIR",
                                "noise": None, "accuracy": {"clean": 0.5}, "mean_accuracy": 0.5}
        p.write_text(json.dumps(m))
    md = write_report([dirs["conventional"], dirs["codesign"]], tmp_path / "r2.md").read_text()
    test_line = next(line for line in md.splitlines() if "clips of the test split of" in line
                     and line.startswith("- **codesign**"))
    assert "judged on the real validation speakers" in test_line and "met" not in test_line
    real_line = next(line for line in md.splitlines() if "on the real speakers" in line)
    assert "(goal: >= 8 % less power" in real_line


def test_run_demo_takes_demo_options_and_names_a_wrong_one(tmp_path):
    from learnafe.demo import DemoOptions, run_demo

    assert DemoOptions(out=str(tmp_path), data=str(tmp_path)).out == tmp_path
    with pytest.raises(TypeError, match=r"unexpected option\(s\) \['epoch'\]"):
        run_demo(out=tmp_path / "demo", epoch=3)
    with pytest.raises(TypeError, match="options must be a DemoOptions"):
        run_demo(str(tmp_path / "demo"))
    assert not (tmp_path / "demo").exists()
