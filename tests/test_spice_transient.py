"""Transient check like with like: the circuit against the continuous-time model it implements
(scipy lsim on the same input at the simulator's step) and against the discrete models."""

from __future__ import annotations

import numpy as np

from spice_helpers import needs_spice


@needs_spice
def test_top_channel_is_its_continuous_model_and_the_gap_is_the_discretisation(tmp_path):
    from learnafe.circuits import dssf, sky130_table
    from learnafe.spice.transient import TransientOptions, transient_check
    from learnafe.spice.verify import AcOptions, ac_verify

    q = dssf.q_for_crossing((8000 / 100) ** (1 / 15))
    d = dssf.design_channel(8000.0, q, 1.0, 1e-12, sky130_table("tt"))
    spec = {"format": "learnafe-bank/1", "sample_rate": 20000.0,
            "gm_model": {"kind": "gmid_table", "path": "sky130-tt"},
            "features": {"hop": 100, "tau": 0.005, "log": True, "normalize": "none"},
            "channels": [{"I1": float(d["I1"]), "I2": float(d["I2"]), "C1": 1e-12, "C2": 1e-12,
                          "f0_hz": 8000.0, "q": q, "gain": 1.0}]}
    ac = ac_verify(spec, tmp_path / "ac", AcOptions(workers=1, progress=False, plot=False))
    clip = np.random.default_rng(3).standard_normal(600)  # 30 ms of white noise at 20 kHz
    s = transient_check(spec, ac, [clip], tmp_path / "tr", TransientOptions(
        duration_s=0.03, t_step=2e-6, workers=1, progress=False))["summary"]
    # the circuit is the continuous model fitted to its AC response (integration error only)
    assert s["per_channel_vs_fitted_continuous"][0] < 0.03
    # against the bank's own H(s): the circuit's gain / Q deficit (about 5 %) and f0 error
    assert s["per_channel_envelope_vs_continuous_model"][0] < 0.1
    # the 20 kHz bilinear model the classifier saw is far from both near Nyquist; the
    # magnitude-matched mapping is much closer to the continuous model
    by = s["discrete_vs_continuous_by_method"]
    assert by["bilinear"]["envelope"][0] > 0.2
    assert by["magnitude_matched"]["envelope"][0] < 0.5 * by["bilinear"]["envelope"][0]
    assert s["per_channel_envelope_vs_bank_discrete"][0] > 0.2


def test_continuous_reference_is_lsim():
    from scipy.signal import lsim

    from learnafe.spice.transient import _lsim

    w0 = 2 * np.pi * 5000.0
    system = ([-w0 / 3, 0.0], [1.0, w0 / 3, w0 * w0])
    x = np.random.default_rng(0).standard_normal(4000)
    x[0] = 0.0  # the faded clips start at zero
    t = np.arange(x.size) * 2e-6
    np.testing.assert_allclose(_lsim(system, x, 2e-6), lsim(system, x, t)[1], atol=1e-9)
