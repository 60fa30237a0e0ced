"""`learnafe plot-bank` and the response plot."""

import json

import matplotlib.image
import numpy as np
import pytest

from learnafe.cli import main
from learnafe.frontends import AnalogFilterBank, DigitalFilterBank
from learnafe.frontends.plots import plot_bank_response
from learnafe.frontends.report import markdown_table


def test_plot_bank_conventional_then_from_spec(tmp_path, capsys):
    png, spec = tmp_path / "conv.png", tmp_path / "conv.json"
    assert main(["plot-bank", "--conventional", "--out", str(png), "--spec-out", str(spec)]) == 0
    table = capsys.readouterr().out
    assert "| 15 | 8000.0 | 3.411 |" in table and "| total |" in table
    img = matplotlib.image.imread(png)
    assert img.ndim == 3 and img.shape[0] > 300 and img.std() > 0.05
    summary = json.loads((tmp_path / "conv_summary.json").read_text())
    bank = AnalogFilterBank.load(spec)
    assert summary["spec"]["total_power_w"] == pytest.approx(bank.reference_power(), rel=1e-12)
    png2 = tmp_path / "again.png"
    assert main(["plot-bank", str(spec), "--out", str(png2)]) == 0
    assert png2.is_file()


def test_plot_bank_digital_spec_and_errors(tmp_path, capsys):
    dig = DigitalFilterBank.from_center_q([200.0, 1000.0, 4000.0], 3.0)
    path = tmp_path / "dig.json"
    dig.save(path)
    assert main(["plot-bank", str(path)]) == 0
    assert (tmp_path / "dig.png").is_file()
    peaks = json.loads((tmp_path / "dig_summary.json").read_text())["peak_frequencies_hz"]
    np.testing.assert_allclose(peaks, [200.0, 1000.0, 4000.0], rtol=1e-6)
    capsys.readouterr()
    assert main(["plot-bank", str(tmp_path / "missing.json")]) == 1
    assert "not found" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "something-else"}))
    assert main(["plot-bank", str(bad)]) == 1
    assert "format" in capsys.readouterr().err
    assert main(["plot-bank"]) == 1
    with pytest.raises(SystemExit) as exc:
        main(["plot-bank", "--help"])
    assert exc.value.code == 0


def test_plot_function_draws_analog_and_discrete_curves(tmp_path):
    bank = AnalogFilterBank.conventional(n_channels=4, f_lo=200, f_hi=3000)
    fig = plot_bank_response(bank, tmp_path / "p.png", n_points=300)
    lines = [ln for ln in fig.axes[0].get_lines() if len(ln.get_xdata()) == 300]
    assert len(lines) == 8  # analog + discretised per channel
    peak = max(np.max(ln.get_ydata()) for ln in lines)
    assert peak == pytest.approx(0.0, abs=0.01)  # unit peak gain
    assert "| 3 |" in markdown_table(bank.to_dict())
