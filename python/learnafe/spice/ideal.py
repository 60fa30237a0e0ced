"""The ideal model of a circuit spec's channels: what the SPICE results are compared to.

f0, Q, peak gain, s-domain coefficients and power of every channel from the
equations of :mod:`learnafe.circuits` (``dssf``, ``cost``), with the spec's own
transconductance model unless another is named.
"""

from __future__ import annotations

import numpy as np

from learnafe.circuits import cost, dssf
from learnafe.circuits.transconductance import load_gm_model
from learnafe.frontends.spec import BankSpec
from learnafe.spice.netlist import load_spec

__all__ = ["spec_gm_model", "ideal_channels"]


def spec_gm_model(spec: BankSpec, gm_model=None):
    """The transconductance model ``gm_model`` names (anything :func:`~learnafe.circuits.load_gm_model`
    takes), or the spec's own."""
    if gm_model is not None:
        return load_gm_model(gm_model)
    return spec.gm()


def ideal_channels(spec, gm_model=None) -> dict[str, np.ndarray]:
    """Ideal f0 (Hz), Q, |gain|, s-domain coefficients and power of each channel (with the
    devices' output conductance when the spec's bank uses it)."""
    spec = load_spec(spec)
    chans = list(spec.channels)
    i1, i2, c1, c2 = (np.array([getattr(c, k) for c in chans]) for k in ("I1", "I2", "C1", "C2"))
    model = spec_gm_model(spec, gm_model)
    p = dssf.channel_parameters(i1, i2, c1, c2, model, output_conductance=bool(spec.output_conductance))
    beta, d1, d0 = dssf.s_coefficients(p.gm1, p.gm2, c1, c2, p.gds1, p.gds2)
    return {"f0_hz": np.asarray(p.f0_hz), "q": np.asarray(p.q), "gain": np.asarray(p.gain),
            "beta": np.asarray(beta), "d1": np.asarray(d1), "d0": np.asarray(d0),
            "power_w": np.asarray(cost.channel_power_w(i1, i2)), "gm_model": model}
