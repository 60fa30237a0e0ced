"""Circuit noise: ngspice .noise of a channel against the kT/C model, and the input-referred
noise the SPICE-calibrated front end carries (ngspice tests skip cleanly without ngspice)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from spice_helpers import needs_spice


def _channel_spec(f0_hz=1000.0, c=1e-12):
    from learnafe.circuits import dssf, sky130_table

    q = dssf.q_for_crossing((8000 / 100) ** (1 / 15))
    d = dssf.design_channel(f0_hz, q, 1.0, c, sky130_table("tt"))
    return {"format": "learnafe-bank/1", "sample_rate": 20000.0,
            "gm_model": {"kind": "gmid_table", "path": "sky130-tt"},
            "channels": [{"I1": float(d["I1"]), "I2": float(d["I2"]), "C1": c, "C2": c,
                          "f0_hz": f0_hz, "q": q, "gain": 1.0}]}


def test_model_psd_integrates_to_the_closed_form():
    from learnafe.circuits import cost, sky130_table
    from learnafe.spice.netlist import Channel
    from learnafe.spice.noise import _band_integral, model_output_psd

    t = sky130_table("tt")
    ch = Channel(0, I1=3e-10, I2=2e-9, C1=5e-13, C2=1.5e-12)
    gm1, gm2 = float(t.gm("m1", ch.I1)), float(t.gm("m2", ch.I2))
    f = np.geomspace(1e-3, 1e9, 3000)
    var = _band_integral(f, model_output_psd(f, ch, gm1, gm2), 1e-3, 1e9)
    assert var == pytest.approx(float(cost.output_noise_variance(ch.I1, ch.I2, ch.C1, ch.C2, gm1, gm2)),
                                rel=1e-3)


def test_input_referred_std_reproduces_the_output_variance():
    from learnafe.circuits import dssf
    from learnafe.circuits.discretize import discretize
    from learnafe.spice.noise import input_noise_std

    beta, d1, d0 = dssf.s_coefficients_from_w0_q(2 * np.pi * np.array([300.0, 4000.0]),
                                                 np.array([3.0, 2.0]), np.array([1.0, 1.0]))
    b, a = discretize(-beta, d1, d0, 20000.0, "bilinear")
    noise = {"channels": [{"spice_output_vrms": 80e-6}, {"spice_output_vrms": 120e-6}]}
    std = input_noise_std(noise, b, a, full_scale_v=0.1)
    rng = np.random.default_rng(0)
    for c in range(2):
        y = lfilter(b[c], np.r_[1.0, a[c]], std[c] * rng.standard_normal(400_000))
        # output in volts = audio units * full scale
        assert np.std(y[1000:]) * 0.1 == pytest.approx(noise["channels"][c]["spice_output_vrms"], rel=0.02)
    with pytest.raises(ValueError, match="full_scale_v"):
        input_noise_std(noise, b, a, full_scale_v=0)


@needs_spice
def test_spice_noise_of_a_channel_against_the_kt_c_model(tmp_path):
    from learnafe.spice.noise import NoiseOptions, noise_verify

    spec = _channel_spec()
    diff = noise_verify(spec, tmp_path / "d", NoiseOptions(progress=False))["channels"][0]
    half = noise_verify(spec, tmp_path / "h", NoiseOptions(topology="half", progress=False))["channels"][0]
    # the half circuit (2 C1, 2 C2 to ground, doubled) is the differential circuit
    assert half["spice_output_vrms"] == pytest.approx(diff["spice_output_vrms"], rel=0.01)
    # the devices' channel (shot) noise is the model's 2 q I within the BSIM4 model's
    # weak-inversion accuracy; over all frequencies and over the audio band
    assert diff["spice_shot_vrms_all_frequencies"] == pytest.approx(
        diff["model_output_vrms_all_frequencies"], rel=0.2)
    assert 0.9 < diff["ratio_shot_to_model"] < 1.2
    # flicker noise comes on top: the circuit is noisier than kT/C, by less than 2x
    by = diff["spice_output_vrms_by_kind"]
    assert by["flicker"] > 0.2 * by["shot"] and by["other"] < 0.05 * by["shot"]
    assert 1.0 < diff["ratio_spice_to_model"] < 2.0


def test_calibrated_bank_carries_the_circuit_noise():
    import torch

    from learnafe.spice.calibrated import SpiceCalibratedBank, calibrated_frontend
    from learnafe.spice.noise import input_noise_std

    w0, bw = 2 * np.pi * np.array([500.0, 3000.0]), 2 * np.pi * np.array([150.0, 1000.0])
    ac = {"sample_rate": 20000.0,
          "features": {"hop": 200, "tau": 0.005, "log": False, "normalize": "none"},
          "channels": [{"spice": {"b": [0.0, -float(g), 0.0], "a": [float(g), float(w * w)]}}
                       for w, g in zip(w0, bw)]}
    noise = {"noise_config": {"mode": "always", "full_scale_v": 0.1}, "band_hz": [20.0, 10000.0],
             "corner": "tt", "channels": [{"spice_output_vrms": 1e-4}, {"spice_output_vrms": 2e-4}]}
    quiet = calibrated_frontend(ac, method="bilinear")
    noisy = calibrated_frontend(ac, method="bilinear", noise=noise)
    np.testing.assert_allclose(noisy.input_noise_std().numpy(),
                               input_noise_std(noise, quiet.b.numpy(), quiet.a.numpy(), 0.1), rtol=1e-12)
    x = torch.zeros(2, 20000, dtype=torch.float64)
    assert quiet.input_noise_std() is None and torch.all(quiet(x) == 0)
    torch.manual_seed(7)
    f1, f2 = noisy(x), noisy(x)
    assert torch.all(f1 > 0) and not torch.equal(f1, f2)
    torch.manual_seed(7)
    assert torch.equal(noisy(x), f1)  # torch's seed fixes the in-op noise
    # the envelope of the noise alone: mean |y| of Gaussian noise = sqrt(2/pi) * output std
    expected = np.sqrt(2 / np.pi) * np.array([1e-4, 2e-4]) / 0.1
    np.testing.assert_allclose(f1[..., 5:].mean(dim=(0, 2)).numpy(), expected, rtol=0.05)
    again = SpiceCalibratedBank.from_dict(noisy.to_dict())
    assert again.noise_mode == "always" and torch.equal(again.noise_std, noisy.noise_std)
    off = calibrated_frontend(ac, method="bilinear", noise=noise, noise_mode="off")
    assert torch.all(off(x) == 0)
