"""The differential super-source-follower band-pass filter (DSSF-BPF), one channel.

Transfer function (differential output over differential input)::

    H(s) = -(gm1 / (2 C1)) s / (s^2 + (gm1 / (2 C2)) s + gm1 gm2 / (4 C1 C2))

so ``w0 = sqrt(gm1 gm2 / (4 C1 C2))``, ``Q = sqrt(gm2 C2 / (gm1 C1))`` and the
gain at w0 is ``-C2 / C1`` (magnitude C2/C1, inverting).  Real devices add their
output conductances gds1, gds2 (:func:`s_coefficients`), which lower Q by a few per
cent and move w0 slightly; the characterised gm/Id tables carry gds, and
``output_conductance=True`` (the bank's default) takes it into account.  C1 and C2 are the
floating capacitors between the two half circuits (C1 across the outputs, M1's
drains; C2 across M1's sources), hence the factors of 2.

All functions take NumPy arrays (float64 results) or torch tensors (autograd
kept) of matching shape, one value per channel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from learnafe.circuits._array import as_array, check_positive, namespace, to_numpy
from learnafe.circuits.transconductance import TransconductanceModel, load_gm_model

#: The half-power level, -10 log10(2) = -3.0103 dB ("-3 dB").
HALF_POWER_DB = -10 * math.log10(2)


@dataclass
class ChannelParameters:
    """Small-signal view of a channel: transconductances (S), w0 (rad/s), Q, |peak gain|, and the
    output conductances (S) it was computed with (None: the ideal devices)."""

    gm1: object
    gm2: object
    w0: object
    q: object
    gain: object
    gds1: object = None
    gds2: object = None

    @property
    def f0_hz(self):
        return self.w0 / (2 * math.pi)


def check_circuit(i1, i2, c1, c2) -> None:
    """Refuse non-physical values with a message naming the argument."""
    check_positive("I1", i1, "bias currents are in amperes, e.g. 1e-9 for 1 nA")
    check_positive("I2", i2, "bias currents are in amperes, e.g. 1e-9 for 1 nA")
    check_positive("C1", c1, "capacitors are in farads, e.g. 1e-12 for 1 pF")
    check_positive("C2", c2, "capacitors are in farads, e.g. 1e-12 for 1 pF")


def output_conductances(gm_model: TransconductanceModel, i1, i2, output_conductance: bool = True):
    """``(gds1, gds2)`` of the devices at I1, I2 from ``gm_model`` (a gm/Id table with
    ``gds_over_id``), or ``(None, None)`` when ``output_conductance`` is off or the model has
    no output-conductance data (weak inversion): the ideal devices, bit for bit."""
    if not (output_conductance and gm_model.has_gds):
        return None, None
    return gm_model.gds("m1", i1), gm_model.gds("m2", i2)


def parameters_from_gm(gm1, gm2, c1, c2, gds1=None, gds2=None) -> ChannelParameters:
    """w0, Q and |peak gain| from the transconductances and capacitors (and the output
    conductances, see :func:`s_coefficients`)."""
    if gds1 is None and gds2 is None:
        return ChannelParameters(gm1=gm1, gm2=gm2, w0=natural_frequency(gm1, gm2, c1, c2),
                                 q=quality_factor(gm1, gm2, c1, c2), gain=c2 / c1)
    beta, d1, d0 = s_coefficients(gm1, gm2, c1, c2, gds1, gds2)
    w0 = namespace(gm1, gm2, c1, c2).sqrt(d0)
    return ChannelParameters(gm1=gm1, gm2=gm2, w0=w0, q=w0 / d1, gain=-beta / d1, gds1=gds1, gds2=gds2)


def channel_parameters(i1, i2, c1, c2, gm_model: TransconductanceModel | None = None,
                       validate: bool = True, output_conductance: bool = False) -> ChannelParameters:
    """(I1, I2, C1, C2) -> gm1, gm2, w0, Q, peak gain (see module docstring).

    ``gm_model``: anything :func:`~learnafe.circuits.load_gm_model` takes; None is the
    default, the shipped SKY130 tt gm/Id table.  ``output_conductance``: include the
    devices' gds (:func:`output_conductances`, :func:`s_coefficients`): w0 = sqrt(d0),
    Q = sqrt(d0) / d1 and the peak gain |beta| / d1 of the full denominator."""
    if validate:
        check_circuit(i1, i2, c1, c2)
    gm_model = load_gm_model(gm_model)
    gds1, gds2 = output_conductances(gm_model, i1, i2, output_conductance)
    return parameters_from_gm(gm_model.gm1(i1), gm_model.gm2(i2), c1, c2, gds1, gds2)


def natural_frequency(gm1, gm2, c1, c2):
    """``w0 = sqrt(gm1 gm2 / (4 C1 C2))`` (rad/s): the centre of the channel (NumPy or torch)."""
    return namespace(gm1, gm2, c1, c2).sqrt(gm1 * gm2 / (4 * c1 * c2))


def quality_factor(gm1, gm2, c1, c2):
    """``Q = sqrt(gm2 C2 / (gm1 C1))`` of the channel (NumPy or torch)."""
    return namespace(gm1, gm2, c1, c2).sqrt(gm2 * c2 / (gm1 * c1))


def s_coefficients(gm1, gm2, c1, c2, gds1=None, gds2=None):
    """H(s) = beta * s / (s^2 + d1 s + d0): returns (beta, d1, d0) (beta < 0).

    With the output conductances ``gds1`` (M1) and ``gds2`` (M2) the half-circuit nodes give
    the denominator ``s^2 + ((gm1 + gds1 + gds2) / (2 C2) + gds1 / (2 C1)) s +
    ((gm1 + gds1) gm2 + gds1 gds2) / (4 C1 C2)`` (and a numerator zero at -gds2 / (2 C2)
    instead of 0, dropped here); they lower Q by about (2 gds1 + gds2) / gm1.  Without
    them (default) the expressions are the ideal ones above.
    """
    if gds1 is None and gds2 is None:
        return -gm1 / (2 * c1), gm1 / (2 * c2), gm1 * gm2 / (4 * c1 * c2)
    gds1 = 0.0 if gds1 is None else gds1
    gds2 = 0.0 if gds2 is None else gds2
    return (-gm1 / (2 * c1), (gm1 + gds1 + gds2) / (2 * c2) + gds1 / (2 * c1),
            ((gm1 + gds1) * gm2 + gds1 * gds2) / (4 * c1 * c2))


def s_coefficients_from_w0_q(w0, q, gain):
    """The same (beta, d1, d0) from w0 (rad/s), Q and |peak gain|."""
    return -gain * w0 / q, w0 / q, w0 * w0


def analog_response(freqs_hz, beta, d1, d0):
    """Complex H(j 2 pi f) for every channel and frequency: shape [C, F] (or [F] for scalars)."""
    xp = namespace(beta, d1, d0, freqs_hz)
    f = as_array(freqs_hz, like=beta if xp is not np else None)
    if xp is np:
        s = 1j * 2 * np.pi * np.asarray(f, dtype=np.float64)
        beta, d1, d0 = (np.asarray(v, dtype=np.float64)[..., None] for v in (beta, d1, d0))
        return beta * s / (s * s + d1 * s + d0)
    import torch

    s = torch.complex(torch.zeros_like(f), 2 * math.pi * f)
    beta, d1, d0 = (v.unsqueeze(-1) for v in (beta, d1, d0))
    return beta * s / (s * s + d1 * s + d0)


def frequency_response(freqs_hz, i1, i2, c1, c2, gm_model: TransconductanceModel | None = None,
                       output_conductance: bool = False):
    """Complex analog response [C, F] of channels given by their circuit values."""
    p = channel_parameters(i1, i2, c1, c2, gm_model, output_conductance=output_conductance)
    return analog_response(freqs_hz, *s_coefficients(p.gm1, p.gm2, c1, c2, p.gds1, p.gds2))


#: Relative convergence of the inverse design with output conductance (fixed-point iteration).
DESIGN_RTOL = 1e-13
_DESIGN_MAX_ITER = 200


def design_channel(f0_hz, q, gain=1.0, c1=1e-12, gm_model: TransconductanceModel | None = None,
                   output_conductance: bool = False) -> dict:
    """Inverse design: the (I1, I2, C1, C2) that give centre f0, quality factor Q and |peak gain| ``gain``.

    Ideal devices: ``gm1 = 2 w0 C1 gain / Q``, ``gm2 = 2 w0 C1 Q`` and C2 = gain C1 (so that
    gm2/gm1 = Q^2/gain).  With ``output_conductance`` (and a model that knows gds,
    :func:`output_conductances`) the targets are those of the full denominator of
    :func:`s_coefficients`, ``d1 = w0 / Q`` and ``d0 = w0^2``, and the peak gain
    ``gm1 / (2 C1 d1)``: so ``gm1 = 2 C1 d1 gain`` as before, and
    ``C2 = (gm1 + gds1 + gds2) / (2 d1 - gds1 / C1)`` (a little above gain C1, since gds
    damps the filter) and ``gm2 = (4 C1 C2 d0 - gds1 gds2) / (gm1 + gds1)``, solved by
    fixed-point iteration on I2 (gds2 depends on it; it converges because gds is a small
    fraction of gm).  The currents come from the transconductance model's inverse
    (``gm_model``: anything :func:`~learnafe.circuits.load_gm_model` takes; None is the
    shipped SKY130 tt gm/Id table, ``"weak_inversion"`` the textbook model).  Returns
    float64 NumPy arrays under keys ``I1, I2, C1, C2`` (same broadcast shape).
    """
    check_positive("f0_hz", f0_hz, "centre frequencies are in Hz")
    check_positive("q", q, "Q is the centre frequency over the -3 dB bandwidth, e.g. 3.4")
    check_positive("gain", gain, "gain is the peak gain magnitude C2/C1, e.g. 1")
    check_positive("c1", c1, "capacitors are in farads, e.g. 1e-12 for 1 pF")
    f0, q, gain, c1 = np.broadcast_arrays(*(to_numpy(v) for v in (f0_hz, q, gain, c1)))
    gm_model = load_gm_model(gm_model)
    c1 = c1.astype(np.float64).copy()
    c2 = (gain * c1).astype(np.float64)
    w0 = 2 * np.pi * f0
    gm1 = 2 * w0 * c1 * gain / q
    gm2 = 2 * w0 * c1 * q
    i1, i2 = gm_model.current("m1", gm1), gm_model.current("m2", gm2)
    if output_conductance and gm_model.has_gds:
        d1, d0 = w0 / q, w0 * w0
        gds1 = gm_model.gds("m1", i1)
        room = 2 * d1 - gds1 / c1
        if np.any(room <= 0):   # 2 d1 (1 - gain gds1/gm1): the gain needs M1's intrinsic gain gm1/gds1
            k = int(np.argmax(room <= 0))
            raise ValueError(f"channel {k} ({np.ravel(f0)[k]:.4g} Hz): a peak gain of {np.ravel(gain)[k]:.4g} is "
                             "above M1's intrinsic gain gm1/gds1 at its bias; lower the gain")
        for _ in range(_DESIGN_MAX_ITER):
            gds2 = gm_model.gds("m2", i2)
            c2 = (gm1 + gds1 + gds2) / room
            gm2 = (4 * c1 * c2 * d0 - gds1 * gds2) / (gm1 + gds1)
            n2 = gm_model.current("m2", gm2)
            done = np.max(np.abs(n2 / i2 - 1)) <= DESIGN_RTOL
            i2 = n2
            if done:
                break
        else:
            raise RuntimeError("inverse design with output conductance did not converge in "
                               f"{_DESIGN_MAX_ITER} iterations; check the gm/Id table's gds_over_id")
        c2 = (gm1 + gds1 + gm_model.gds("m2", i2)) / room
    return {"I1": i1, "I2": i2, "C1": c1, "C2": c2}


def band_edges(f0_hz, q):
    """Analytic -3 dB frequencies (Hz) of a second-order band-pass: f0 (sqrt(1 + 1/(4Q^2)) -/+ 1/(2Q))."""
    xp = namespace(f0_hz, q)
    u = 1 / (2 * q)
    r = xp.sqrt(1 + u * u)
    return f0_hz * (r - u), f0_hz * (r + u)


def q_for_crossing(ratio: float, crossing_db: float = HALF_POWER_DB) -> float:
    """Constant Q so that neighbouring channels with centre ratio ``ratio`` cross at ``crossing_db``.

    A second-order band-pass is ``|H| = 1/sqrt(1 + Q^2 (x - 1/x)^2)`` with x = f/f0; the
    crossing of channels f0 and ratio*f0 is at x = sqrt(ratio) by symmetry in log f, so
    ``Q = sqrt(10^(-crossing_db/10) - 1) / (sqrt(ratio) - 1/sqrt(ratio))``; at the half-power point (-3.01 dB)
    this is ``1 / (2 sinh(ln(ratio)/2))``.
    """
    if not ratio > 1:
        raise ValueError(f"centre frequency ratio must be > 1, got {ratio!r}")
    if not crossing_db < 0:
        raise ValueError(f"crossing_db must be < 0 dB, got {crossing_db!r}")
    x = math.sqrt(ratio)
    return math.sqrt(10 ** (-crossing_db / 10) - 1) / (x - 1 / x)


__all__ = ["natural_frequency", "quality_factor", "ChannelParameters", "check_circuit", "channel_parameters",
           "output_conductances", "parameters_from_gm", "s_coefficients",
           "s_coefficients_from_w0_q", "analog_response", "frequency_response", "design_channel",
           "band_edges", "q_for_crossing"]
