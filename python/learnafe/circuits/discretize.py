"""Continuous to discrete: the DSSF band-pass ``H(s) = beta s / (s^2 + d1 s + d0)`` -> z-domain biquad.

Four mappings, all differentiable for torch tensors and returning the
``(b [C, 3], a [C, 2])`` layout that :mod:`learnafe.ops` takes (a0 = 1):

* ``"bilinear"`` (default): bilinear transform pre-warped at each channel's
  w0 = sqrt(d0), so centre frequency and peak gain are exact and the zeros sit
  at DC and Nyquist;
* ``"matched_z"``: poles mapped by z = exp(s T), zeros at z = 1 and z = -1, gain
  matched to |H(j w0)| at w0;
* ``"impulse_invariance"``: sampled impulse response (times T) with the
  half-sample correction for the step of h(t) at t = 0 (Jackson, "A correction
  to impulse invariance", IEEE SP Letters 7(10), 2000);
* ``"magnitude_matched"``: poles mapped by z = exp(s T), a zero at z = 1, and the
  other two numerator coefficients chosen so that |H_d| equals |H_a| exactly at
  DC, at w0 and at the Nyquist frequency (the idea of M. Vicanek, "Matched
  second order digital filters", 2016).  Much closer to the analog magnitude
  near Nyquist than the other three (see docs/circuits.md); not exact in phase.

Every mapping refuses channels whose centre frequency is at or above the
Nyquist frequency fs/2 (the bank keeps them below 0.45 fs).
"""

from __future__ import annotations

import math

import numpy as np

from learnafe._tracing import is_tracing
from learnafe.circuits._array import namespace, to_numpy

METHODS = ("bilinear", "matched_z", "impulse_invariance", "magnitude_matched")


def _stack(xp, parts):
    if xp is np:
        return np.stack(np.broadcast_arrays(*parts), axis=-1)
    import torch

    return torch.stack(torch.broadcast_tensors(*parts), dim=-1)


def check_below_nyquist(w0, sample_rate: float) -> None:
    """Raise ValueError if any w0 (rad/s) is not finite or at/above pi * sample_rate."""
    f0 = to_numpy(w0) / (2 * np.pi)
    bad = ~np.isfinite(f0) | (f0 >= sample_rate / 2)
    if np.any(bad):
        first = float(f0[bad].ravel()[0]) if f0.ndim else float(f0)
        raise ValueError(f"centre frequency {first:.6g} Hz is at or above the Nyquist frequency "
                         f"{sample_rate / 2:.6g} Hz of sample_rate={sample_rate:g}; lower the currents, "
                         "raise the capacitors or the sample rate")


def bilinear_prewarped(n2, n1, n0, d1, d0, w_warp, sample_rate: float):
    """The bilinear transform pre-warped at ``w_warp`` (rad/s) of a general biquad.

    ``H(s) = (n2 s^2 + n1 s + n0) / (s^2 + d1 s + d0)`` with
    ``s = K (1 - z^-1) / (1 + z^-1)``, ``K = w_warp / tan(w_warp / (2 fs))``, so the
    analog frequency ``w_warp`` lands exactly on the digital one.  Returns
    ``(b [..., 3], a [..., 2])`` (a0 = 1) for NumPy arrays or torch tensors
    (differentiable)::

        A0 = K^2 + d1 K + d0
        b  = (n2 K^2 + n1 K + n0, 2 (n0 - n2 K^2), n2 K^2 - n1 K + n0) / A0
        a  = (2 (d0 - K^2), K^2 - d1 K + d0) / A0

    ``n2 = n0 = None`` is the band-pass ``n1 s`` (no s^2 and no constant term):
    ``b = n1 K / A0 * (1, 0, -1)``.  The one implementation of the mapping: the
    learnable bank's ``"bilinear"`` method (band-pass, warped at its w0) and
    the SPICE-calibrated bank (fitted biquads,
    :func:`learnafe.spice.calibrated.discretize_fitted`) use it.
    """
    xp = namespace(n1, d1, d0, w_warp)
    k = w_warp / xp.tan(w_warp / (2 * sample_rate))
    a0 = k * k + d1 * k + d0
    a1 = 2 * (d0 - k * k) / a0
    a2 = (k * k - d1 * k + d0) / a0
    if n2 is None and n0 is None:
        g = n1 * k / a0
        return _stack(xp, [g, 0 * g, -g]), _stack(xp, [a1, a2])
    n2 = 0.0 if n2 is None else n2
    n0 = 0.0 if n0 is None else n0
    b0 = (n2 * k * k + n1 * k + n0) / a0
    b1 = 2 * (n0 - n2 * k * k) / a0
    b2 = (n2 * k * k - n1 * k + n0) / a0
    return _stack(xp, [b0, b1, b2]), _stack(xp, [a1, a2])


def _bilinear(beta, d1, d0, fs, xp):
    return bilinear_prewarped(None, beta, None, d1, d0, xp.sqrt(d0), fs)  # pre-warped at w0: exact there


def _pole_terms(d1, d0, t, xp):
    """e^{-sigma T}, cos/cosh(omega T) and sin/sinh(omega T)/omega of the pole pair."""
    sigma = d1 / 2
    disc = sigma * sigma - d0
    omega = xp.sqrt(xp.abs(disc))
    complex_pair = disc < 0
    theta = omega * t
    # sin(x)/x and sinh(x)/x with a series near x = 0 (critically damped, Q = 0.5).
    small = theta < 1e-4
    theta_safe = xp.where(small, xp.ones_like(theta), theta)
    sinc = xp.where(small, 1 - theta * theta / 6, xp.sin(theta_safe) / theta_safe)
    sinhc = xp.where(small, 1 + theta * theta / 6, xp.sinh(theta_safe) / theta_safe)
    c = xp.where(complex_pair, xp.cos(theta), xp.cosh(theta))
    s_over_omega = t * xp.where(complex_pair, sinc, sinhc)
    return xp.exp(-sigma * t), c, s_over_omega, sigma


def _matched_z(beta, d1, d0, fs, xp):
    t = 1.0 / fs
    r, c, _, _ = _pole_terms(d1, d0, t, xp)
    a1 = -2 * r * c
    a2 = r * r
    theta0 = xp.sqrt(d0) * t
    re = 1 + a1 * xp.cos(theta0) + a2 * xp.cos(2 * theta0)
    im = a1 * xp.sin(theta0) + a2 * xp.sin(2 * theta0)
    den_mag = xp.sqrt(re * re + im * im)
    g = (beta / d1) * den_mag / (2 * xp.sin(theta0))  # |H_d(w0)| = |H_a(j w0)| = |beta/d1|
    return _stack(xp, [g, 0 * g, -g]), _stack(xp, [a1, a2])


def _impulse_invariance(beta, d1, d0, fs, xp):
    t = 1.0 / fs
    r, c, s_over_omega, sigma = _pole_terms(d1, d0, t, xp)
    a1 = -2 * r * c
    a2 = r * r
    b0 = t * beta
    b1 = -t * beta * r * (c + sigma * s_over_omega)
    # h(t) = beta e^{-sigma t} (cos wt - (sigma/w) sin wt): h(0+) = beta; take h[0] = T beta / 2.
    h0 = t * beta / 2
    return _stack(xp, [b0 - h0, b1 - h0 * a1, -h0 * a2]), _stack(xp, [a1, a2])


def _magnitude_matched(beta, d1, d0, fs, xp):
    t = 1.0 / fs
    r, c, _, _ = _pole_terms(d1, d0, t, xp)
    a1 = -2 * r * c
    a2 = r * r
    w0 = xp.sqrt(d0)

    def analog_mag2(w):  # |beta j w / (d0 - w^2 + j d1 w)|^2
        return beta * beta * w * w / ((d0 - w * w) ** 2 + d1 * d1 * w * w)

    def den_mag2(theta):  # |1 + a1 e^{-j theta} + a2 e^{-2 j theta}|^2
        re = 1 + a1 * xp.cos(theta) + a2 * xp.cos(2 * theta)
        im = a1 * xp.sin(theta) + a2 * xp.sin(2 * theta)
        return re * re + im * im

    # B(z) = (1 - z^-1)(c0 + c1 z^-1):
    # |B|^2 = 4 sin^2(th/2) ((c0 + c1)^2 cos^2(th/2) + (c0 - c1)^2 sin^2(th/2)).
    m_nyq = analog_mag2(math.pi * fs + 0 * w0) * (1 - a1 + a2) ** 2
    diff = xp.sqrt(m_nyq) / 2
    theta0 = w0 * t
    s2, c2 = xp.sin(theta0 / 2) ** 2, xp.cos(theta0 / 2) ** 2
    m0 = analog_mag2(w0) * den_mag2(theta0)
    ssum2 = (m0 / (4 * s2) - diff * diff * s2) / c2
    ssum = xp.sqrt(xp.clamp(ssum2, min=0.0) if xp is not np else np.maximum(ssum2, 0.0))
    c0 = (ssum + diff) / 2
    c1 = (ssum - diff) / 2
    sign = xp.sign(beta)
    return _stack(xp, [sign * c0, sign * (c1 - c0), -sign * c1]), _stack(xp, [a1, a2])


def discretize(beta, d1, d0, sample_rate: float, method: str = "bilinear"):
    """(beta, d1, d0) of ``beta s / (s^2 + d1 s + d0)`` per channel -> (b [C, 3], a [C, 2]).

    NumPy in, float64 NumPy out; torch in, torch out with gradients.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    sample_rate = float(sample_rate)
    if not (math.isfinite(sample_rate) and sample_rate > 0):
        raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate!r}")
    xp = namespace(beta, d1, d0)
    if xp is np:
        beta, d1, d0 = (np.asarray(v, dtype=np.float64) for v in (beta, d1, d0))
    # Data-dependent checks: skipped while torch.compile/torch.export trace (the
    # filter-bank operator then checks the stability of the result inside).
    if xp is np or not is_tracing(beta, d1, d0):
        for name, v in (("d1", d1), ("d0", d0)):
            if np.any(~(to_numpy(v) > 0)):
                raise ValueError(f"{name} of the denominator s^2 + d1 s + d0 must be > 0 (a stable band-pass)")
        check_below_nyquist(xp.sqrt(d0), sample_rate)
    fn = {"bilinear": _bilinear, "matched_z": _matched_z, "impulse_invariance": _impulse_invariance,
          "magnitude_matched": _magnitude_matched}[method]
    return fn(beta, d1, d0, sample_rate, xp)


def digital_response(freqs_hz, b, a, sample_rate: float):
    """Complex H(e^{j 2 pi f / fs}) of biquads (b [C, 3], a [C, 2]) at ``freqs_hz``: shape [C, F]."""
    xp = namespace(b, a)
    if xp is np:
        b = np.asarray(b, dtype=np.float64)
        a = np.asarray(a, dtype=np.float64)
        z1 = np.exp(-1j * 2 * np.pi * np.asarray(freqs_hz, dtype=np.float64) / sample_rate)
        num = b[..., 0:1] + b[..., 1:2] * z1 + b[..., 2:3] * z1 * z1
        den = 1 + a[..., 0:1] * z1 + a[..., 1:2] * z1 * z1
        return num / den
    import torch

    f = torch.as_tensor(np.asarray(freqs_hz, dtype=np.float64), dtype=b.dtype, device=b.device)
    w = 2 * math.pi * f / sample_rate
    z1 = torch.complex(torch.cos(w), -torch.sin(w))
    num = b[..., 0:1] + b[..., 1:2] * z1 + b[..., 2:3] * z1 * z1
    den = 1 + a[..., 0:1] * z1 + a[..., 1:2] * z1 * z1
    return num / den


def noise_gain(b, a):
    """Sum over n of h[n]^2 for each biquad: output variance per unit white-input variance.

    Closed form through the autocorrelation of the all-pole part 1/A(z)
    (r0 = (1 + a2) / ((1 - a2)((1 + a2)^2 - a1^2)), r1 = -a1 r0 / (1 + a2),
    r2 = -a1 r1 - a2 r0) followed by the FIR part B(z).  Differentiable.
    """
    xp = namespace(b, a)
    if xp is np:
        b = np.asarray(b, dtype=np.float64)
        a = np.asarray(a, dtype=np.float64)
    a1, a2 = a[..., 0], a[..., 1]
    if (xp is np or not is_tracing(a)) and \
            np.any(~((np.abs(to_numpy(a2)) < 1) & (np.abs(to_numpy(a1)) < 1 + to_numpy(a2)))):
        raise ValueError("noise_gain needs stable biquads (|a2| < 1 and |a1| < 1 + a2)")
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    r0 = (1 + a2) / ((1 - a2) * ((1 + a2) ** 2 - a1 * a1))
    r1 = -a1 * r0 / (1 + a2)
    r2 = -a1 * r1 - a2 * r0
    return (b0 * b0 + b1 * b1 + b2 * b2) * r0 + 2 * (b0 * b1 + b1 * b2) * r1 + 2 * b0 * b2 * r2


__all__ = ["METHODS", "bilinear_prewarped", "discretize", "digital_response", "noise_gain", "check_below_nyquist"]
