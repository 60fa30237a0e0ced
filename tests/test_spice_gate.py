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
    # a threshold the chip cannot meet fails the gate; --strict-gate turns that into exit status 3
    args = ["export-xylo", str(spec), "--out", str(tmp_path / "y"), "--no-eval", "--no-progress",
            "--gate-f0-pct", "0"]
    assert main(args) == 0
    assert main(args + ["--strict-gate"]) == 3
