"""From a co-designed bank to XyloAudio 3: designer on a run's spec, the chip front
end (bit-exact, float, STE) against independent computations, CLI, report, bench."""

import argparse
import json

import numpy as np
import pytest
import scipy.signal
import torch

from learnafe.cli import main as cli_main
from learnafe.xylo import quantize_audio
from learnafe.xylo.bank import resample_to_chip
from learnafe.xylo.deploy import export_xylo, frontend_for_run, read_bank_spec, xylo_bank_from_spec
from learnafe.xylo.design import XYLO_SAMPLE_RATE
from learnafe.xylo.report import report_section

CENTRES = np.geomspace(100, 8000, 16)
Q = 3.41


def _spec(tmp_path, normalize="instance"):
    spec = {"format": "learnafe-bank/1", "sample_rate": 20000.0,
            "features": {"hop": 200, "tau": 0.01, "rectify": "abs", "log": True,
                         "log_eps": 1e-5, "normalize": normalize, "norm_eps": 1e-5},
            "channels": [{"f0_hz": float(f), "q": Q, "gain": 1.0 + 0.1 * i}
                         for i, f in enumerate(CENTRES)]}
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    (run / "bank.json").write_text(json.dumps(spec))
    return run, spec


def test_deployed_bank_realises_the_spec(tmp_path):
    _, spec = _spec(tmp_path)
    bank, rows = xylo_bank_from_spec(spec)
    _, rows_round = xylo_bank_from_spec(spec, quantization="round")
    # Independent check of the realised peak on a dense grid.
    f = np.linspace(20, 12000, 300001)
    H = np.abs(bank.frequency_response(f))
    np.testing.assert_allclose(f[np.argmax(H, axis=1)], [r["realised_f0_hz"] for r in rows],
                               rtol=2e-4, atol=0.1)
    for r, rr in zip(rows, rows_round):
        # the best integer pair is never worse than plain rounding
        assert r["f0_error"] ** 2 + r["q_error"] ** 2 <= rr["f0_error"] ** 2 + rr["q_error"] ** 2 + 1e-15
        if r["target_f0_hz"] >= 300:
            assert abs(r["f0_error"]) < 0.01 and abs(r["q_error"]) < 0.02
    assert abs(rows_round[0]["f0_error"]) > 0.1 > abs(rows[0]["f0_error"])


def _envelope_frames(y, hop, tau, fs):
    """Independent envelope: |y| -> one-pole low-pass -> sample at (f+1)*hop-1."""
    alpha = 1 - np.exp(-1 / (tau * fs))
    env = scipy.signal.lfilter([alpha], [1, -(1 - alpha)], np.abs(y), axis=-1)
    n = y.shape[-1] // hop
    return env[..., hop - 1::hop][..., :n]


def _post(env, eps=1e-5, norm_eps=1e-5):
    out = np.log(env + eps)
    return (out - out.mean(-1, keepdims=True)) / (out.std(-1, keepdims=True) + norm_eps)


def test_bitexact_frontend_equals_independent_pipeline(tmp_path):
    run, spec = _spec(tmp_path)
    fe = frontend_for_run(run, "bitexact")
    rng = np.random.default_rng(0)
    audio = (0.3 * rng.standard_normal((2, 6000))).astype(np.float32)
    feats = fe(torch.from_numpy(audio)).numpy()
    assert feats.shape == (2, 16, 30)
    # independent: resample, quantise, bit-exact bank, float scaling, envelope, log, norm
    bank = fe.bank
    q = quantize_audio(resample_to_chip(audio.astype(np.float64), 20000.0))
    y = bank.filter(q).astype(np.float64)
    gains = np.array([c["gain"] for c in spec["channels"]])
    y *= (bank.scale_out * 2.0 ** -bank.field("B_wf") / 8191 * gains)[None, :, None]
    hop = round(200 * XYLO_SAMPLE_RATE / 20000)
    ref = _post(_envelope_frames(y, hop, 0.01, XYLO_SAMPLE_RATE))[..., :30]
    np.testing.assert_allclose(feats, ref, atol=2e-4)


def test_float_and_ste_modes(tmp_path):
    run, spec = _spec(tmp_path, normalize="none")
    rng = np.random.default_rng(1)
    audio = torch.from_numpy((0.3 * rng.standard_normal((2, 8000))).astype(np.float64))
    fe = {m: frontend_for_run(run, m) for m in ("bitexact", "float", "ste")}
    out = {m: f(audio).numpy() for m, f in fe.items()}
    # the STE model (quantised taps and input) is closer to the chip than the float design
    d_ste = np.abs(out["ste"] - out["bitexact"]).mean()
    d_float = np.abs(out["float"] - out["bitexact"]).mean()
    assert d_ste < d_float and d_ste < 0.05
    # STE taps equal the deployed chip bank's integers
    b, a = fe["ste"].coefficients()
    np.testing.assert_array_equal(a.detach().numpy(), fe["bitexact"].bank.float_coefficients()[1])
    # float mode: the iirpeak design, times the channel gains
    bf, af = fe["float"].coefficients()
    for i, f in enumerate(CENTRES):
        bi, ai = scipy.signal.iirpeak(f, Q, fs=XYLO_SAMPLE_RATE)
        np.testing.assert_allclose(af[i].detach().numpy(), ai[1:], rtol=1e-10)
        np.testing.assert_allclose(bf[i].detach().numpy(), bi * spec["channels"][i]["gain"],
                                   rtol=1e-10, atol=1e-15)


def test_ste_gradients_reach_centres_and_q(tmp_path):
    run, _ = _spec(tmp_path)
    fe = frontend_for_run(run, "ste", learn_bank=True)
    audio = torch.from_numpy(np.random.default_rng(2).standard_normal((1, 4000)) * 0.2)
    loss = fe(audio).pow(2).mul(torch.linspace(0, 1, 16)[None, :, None]).sum()
    loss.backward()
    for p in (fe.log_centre, fe.log_q):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    # a step moves the designed chip bank
    with torch.no_grad():
        fe.log_centre -= 0.05
    assert fe.quantized_bank() != fe.bank


def test_frontend_errors(tmp_path):
    run, _ = _spec(tmp_path)
    with pytest.raises(ValueError, match="mode"):
        frontend_for_run(run, "analog")
    with pytest.raises(ValueError, match="learn_bank"):
        frontend_for_run(run, "bitexact", learn_bank=True)
    with pytest.raises(FileNotFoundError, match="no bank spec"):
        read_bank_spec(tmp_path / "nothing")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="learnafe-bank/1"):
        read_bank_spec(bad)


def test_cli_design_export_and_report(tmp_path, capsys):
    out = tmp_path / "default.toml"
    assert cli_main(["xylo", "design", "--default", "--out", str(out), "--json",
                     str(tmp_path / "d.json")]) == 0
    summary = json.loads((tmp_path / "d.json").read_text())
    assert summary["equals_chip_default"] is True
    assert "bpf_a1_reg0 = 0x8069804a" in capsys.readouterr().out
    assert cli_main(["xylo", "design", "--centres", "500", "1500", "--q", "4", "--out",
                     str(tmp_path / "two.json")]) == 0
    assert cli_main(["xylo", "design", "--default", "--centres", "1"]) == 1  # exclusive sources
    run, _ = _spec(tmp_path)
    assert cli_main(["export-xylo", str(run), "--no-eval", "--no-progress"]) == 0
    res = json.loads((run / "xylo" / "xylo_export.json").read_text())
    assert set(res["files"]) <= {p.name for p in (run / "xylo").iterdir()}
    md = report_section(run, tmp_path / "report")
    assert "XyloAudio 3 deployment" in md and (tmp_path / "report" / "xylo_responses_run.png").is_file()
    assert "](report/xylo_responses_run.png)" in md
    assert report_section(tmp_path, tmp_path / "report") is None


def test_cli_features(tmp_path):
    from learnafe.data import write_wav

    t = np.arange(8000) / 16000
    write_wav(tmp_path / "tone.wav", (0.5 * np.sin(2 * np.pi * 1500 * t)).astype(np.float32), 16000)
    assert cli_main(["xylo", "features", str(tmp_path / "tone.wav"), "--mode", "threshold",
                     "--out", str(tmp_path / "f")]) == 0
    counts = np.array(json.loads((tmp_path / "f" / "tone_spikes.json").read_text())["counts"])
    assert counts.shape[0] == 16 and int(np.argmax(counts.sum(axis=1))) == 8
    assert (tmp_path / "f" / "tone_spikes.png").is_file()


def test_bench_section_quick():
    from learnafe.benchmarks import xylo as section

    res = section.run(argparse.Namespace(quick=True, threads=None, seed=0))
    assert res["ours_sc_per_s"] > 0
    if "reference_sc_per_s" in res:
        assert res["bit_exact"] is True and res["speedup"] > 1
    assert "sample-channels/s" in section.format(res)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    import learnafe.training.data as tdata
    from learnafe.training import train
    from training_helpers import make_toy_dataset, tiny_config

    base = tmp_path_factory.mktemp("xylo_run")
    mp = pytest.MonkeyPatch()
    mp.setattr(tdata, "CACHE_DIR", str(base / "cache"))
    try:
        data = make_toy_dataset(base / "data")
        train(tiny_config(data, mode="codesign", epochs=2), base / "run")
        yield base / "run", mp
    finally:
        mp.undo()


@pytest.mark.slow
def test_quantization_aware_training_and_resume(toy_run, tmp_path):
    from learnafe.training.rundir import LAST
    from learnafe.xylo.qat import QatOptions, quantization_aware_training

    run, mp = toy_run
    mp.setattr("learnafe.training.data.CACHE_DIR", str(run.parent / "cache"))
    first = quantization_aware_training(run, QatOptions(epochs=1, lr_bank=0.05), out_dir=tmp_path / "q",
                                        progress=False)
    assert first["history"][0]["centres_hz"] != pytest.approx(
        [c["f0_hz"] for c in json.loads((run / "bank.json").read_text())["channels"]])
    assert (tmp_path / "q" / LAST).is_file() and (tmp_path / "q" / "xylo_bank.json").is_file()
    # a second call with more epochs resumes after epoch 1 (history kept)
    second = quantization_aware_training(run, QatOptions(epochs=1, lr_bank=0.05), out_dir=tmp_path / "q",
                                         progress=False)
    assert second["history"] == first["history"]
    with pytest.raises(ValueError, match="other settings"):
        quantization_aware_training(run, QatOptions(epochs=2, learn_bank=False), out_dir=tmp_path / "q",
                                    progress=False)
    for key in ("before_bitexact", "after_bitexact"):
        assert set(second[key]["accuracy"]) == {"clean", "10"}


@pytest.mark.slow
def test_export_xylo_on_a_trained_run(toy_run, tmp_path):
    run, mp = toy_run
    mp.setattr("learnafe.training.data.CACHE_DIR", str(run.parent / "cache"))
    res = export_xylo(run, tmp_path / "x", finetune_epochs=1, progress=False)
    acc = res["accuracy"]
    for k in ("run", "xylo_float", "xylo_bitexact"):
        assert set(acc[k]["accuracy"]) == {"clean", "10"}
        assert 0 <= acc[k]["mean_accuracy"] <= 1
    assert set(res["finetune_bitexact"]["after"]) == {"clean", "10"}
    # one held-out set (no real speakers): the pooled numbers are the test split's
    assert set(acc["held_out"]["sets"]) == {"test"} and acc["n"] == acc["held_out"]["sets"]["test"]["n"]
    assert acc["xylo_bitexact"] == acc["held_out"]["sets"]["test"]["xylo_bitexact"]
    assert res["gate"]["accuracy_clips"] == acc["n"] and res["gate"]["accuracy_sets"] == {"test": acc["n"]}
    md = report_section(tmp_path / "x", tmp_path / "rep")
    assert "held-out sets" in md and "bit-exact" in md and "Fine-tuning" in md


@pytest.mark.slow
def test_held_out_comparison_pools_the_sets_clip_weighted(toy_run):
    from learnafe.training import load_run
    from learnafe.training.data import ClipSubset
    from learnafe.training.evaluate import compare_frontends, evaluate_dataset, heldout_markdown, heldout_sets
    from learnafe.training.model import CoDesignModel

    run_dir, mp = toy_run
    mp.setattr("learnafe.training.data.CACHE_DIR", str(run_dir.parent / "cache"))
    run = load_run(run_dir)
    (ds, noise), = heldout_sets(run.config).values()
    part = ClipSubset(ds, list(range(5)))
    held = compare_frontends(run.classifier, {"own": run.frontend}, {"all": (ds, noise), "five": (part, noise)},
                             snrs=run.config.evaluation.eval_snrs)
    five = evaluate_dataset(CoDesignModel(run.frontend, run.classifier).eval(), part,
                            snrs=run.config.evaluation.eval_snrs, noise=noise)
    assert held["sets"]["five"]["own"]["accuracy"] == five["accuracy"]
    n = len(ds) + 5
    for k, v in held["pooled"]["own"]["accuracy"].items():
        expect = (len(ds) * held["sets"]["all"]["own"]["accuracy"][k] + 5 * five["accuracy"][k]) / n
        assert v == pytest.approx(expect, abs=1e-12)
    assert held["pooled"]["n"] == n
    assert "| pooled (%d) | own |" % n in heldout_markdown(held, {"own": "own"})
