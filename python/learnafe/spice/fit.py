"""Fit an s-domain biquad to a simulated complex frequency response.

The model is a general second-order section

    H(s) = (b2 s^2 + b1 s + b0) / (s^2 + a1 s + a0)

whose denominator gives the channel's ``f0 = sqrt(a0) / 2 pi`` and
``Q = sqrt(a0) / a1``.  The numerator keeps what the ideal band-pass lacks
(finite output resistance gives ``b0 != 0``, gate-drain feed-through ``b2 != 0``),
so the fitted section doubles as the circuit-calibrated model of the channel.

Fitting: Sanathanan-Koerner iterations of the linearised problem
``N - H D = 0`` (relative weights, frequency normalised to the centre for
conditioning), then a nonlinear least-squares polish of the relative complex
error.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import least_squares


def biquad_response(freqs_hz, b, a) -> np.ndarray:
    """Complex ``H(j 2 pi f)`` of ``b = (b2, b1, b0)``, ``a = (a1, a0)`` (monic denominator)."""
    s = 2j * np.pi * np.asarray(freqs_hz, dtype=np.float64)
    b2, b1, b0 = b
    a1, a0 = a
    return (b2 * s * s + b1 * s + b0) / (s * s + a1 * s + a0)


def _model(theta, x):
    b2, b1, b0, a1, a0 = theta
    return (b2 * x * x + b1 * x + b0) / (x * x + a1 * x + a0)


def fit_biquad(freqs_hz, response, *, f_ref: float | None = None, band: tuple[float, float] = (0.2, 5.0),
               iterations: int = 12) -> dict:
    """Fit the general biquad to ``response`` over ``band`` x ``f_ref``.

    Args:
        freqs_hz: frequencies (Hz) of the simulated points.
        response: complex response at those frequencies.
        f_ref: reference frequency (Hz) for normalisation and the band; default the
            frequency of the largest magnitude.
        band: fit range as multiples of ``f_ref``.
    Returns a dict: ``b`` (b2, b1, b0), ``a`` (a1, a0), ``f0_hz``, ``q``, ``peak_gain``
    (max |H| of the fit), ``peak_hz``, ``gain_at_f0`` and ``fit_rel_rms`` (rms relative
    error over the band).
    """
    f = np.asarray(freqs_hz, dtype=np.float64)
    h = np.asarray(response, dtype=np.complex128)
    if f.shape != h.shape or f.ndim != 1:
        raise ValueError("freqs_hz and response must be 1-D arrays of equal length")
    if f_ref is None:
        f_ref = float(f[np.argmax(np.abs(h))])
    sel = (f >= band[0] * f_ref) & (f <= band[1] * f_ref)
    if sel.sum() < 8:
        raise ValueError(f"only {int(sel.sum())} points in the fit band "
                         f"[{band[0] * f_ref:.4g}, {band[1] * f_ref:.4g}] Hz; simulate more points")
    x = 1j * f[sel] / f_ref
    hs = h[sel]
    wrel = 1.0 / np.abs(hs)
    den_prev = np.ones_like(x)
    theta = None
    for _ in range(iterations):
        w = wrel / np.abs(den_prev)
        # unknowns (b2, b1, b0, a1, a0): N(x) - H (a1 x + a0) = H x^2
        cols = np.stack([x * x, x, np.ones_like(x), -hs * x, -hs], axis=1) * w[:, None]
        rhs = hs * x * x * w
        A = np.concatenate([cols.real, cols.imag])
        y = np.concatenate([rhs.real, rhs.imag])
        theta_new, *_ = np.linalg.lstsq(A, y, rcond=None)
        den_prev = x * x + theta_new[3] * x + theta_new[4]
        if theta is not None and np.allclose(theta_new, theta, rtol=1e-10, atol=1e-14):
            theta = theta_new
            break
        theta = theta_new

    def resid(t):
        r = (_model(t, x) - hs) * wrel
        return np.concatenate([r.real, r.imag])

    sol = least_squares(resid, theta, method="lm", xtol=1e-14, ftol=1e-14, gtol=1e-14)
    t = sol.x
    if t[3] <= 0 or t[4] <= 0:
        raise RuntimeError("the fitted denominator is not a stable complex pole pair; "
                           "the simulated response is not a second-order band-pass")
    wr = 2 * math.pi * f_ref
    # H(x = s/wr) = (t0 x^2 + t1 x + t2) / (x^2 + t3 x + t4): multiply through by wr^2
    b = (float(t[0]), float(t[1] * wr), float(t[2] * wr ** 2))
    a = (float(t[3] * wr), float(t[4] * wr ** 2))
    w0 = math.sqrt(a[1])
    rel = np.abs(_model(t, x) - hs) / np.abs(hs)
    fine = np.geomspace(f[sel][0], f[sel][-1], 4001)
    mag = np.abs(biquad_response(fine, b, a))
    k = int(np.argmax(mag))
    return {"b": b, "a": a, "f0_hz": w0 / (2 * math.pi), "q": w0 / a[0],
            "peak_gain": float(mag[k]), "peak_hz": float(fine[k]),
            "gain_at_f0": float(abs(biquad_response([w0 / (2 * math.pi)], b, a)[0])),
            "fit_rel_rms": float(np.sqrt(np.mean(rel ** 2))),
            "band_hz": [float(band[0] * f_ref), float(band[1] * f_ref)]}


def fit_digital_biquad(freqs_hz, response, sample_rate: float, *, band: tuple[float, float],
                       iterations: int = 12) -> dict:
    """Least-squares z-domain biquad ``(b0 + b1 q + b2 q^2) / (1 + a1 q + a2 q^2)``,
    ``q = exp(-j 2 pi f / fs)``, fitted to an analog response over ``band`` (Hz, below
    the Nyquist frequency), absolute complex error.

    Unlike a bilinear mapping (exact at one frequency, compressing the band towards
    Nyquist), this gives the digital section closest to the circuit's response over the
    whole audio band: what the calibrated front end needs for channels near fs/2.
    Returns ``b`` (b0, b1, b2), ``a`` (a1, a2), ``fit_rel_rms`` (RMS error over the band
    relative to the peak magnitude) and ``stable``.
    """
    f = np.asarray(freqs_hz, dtype=np.float64)
    h = np.asarray(response, dtype=np.complex128)
    lo, hi = band
    if not 0 < lo < hi < sample_rate / 2:
        raise ValueError(f"band must satisfy 0 < lo < hi < fs/2, got {band} at fs={sample_rate}")
    sel = (f >= lo) & (f <= hi)
    if sel.sum() < 8:
        raise ValueError(f"only {int(sel.sum())} points in [{lo:.4g}, {hi:.4g}] Hz; simulate more points")
    q = np.exp(-2j * np.pi * f[sel] / sample_rate)
    hs = h[sel]
    den_prev = np.ones_like(q)
    theta = None
    for _ in range(iterations):
        w = 1.0 / np.abs(den_prev)
        cols = np.stack([np.ones_like(q), q, q * q, -hs * q, -hs * q * q], axis=1) * w[:, None]
        rhs = hs * w
        A = np.concatenate([cols.real, cols.imag])
        y = np.concatenate([rhs.real, rhs.imag])
        theta_new, *_ = np.linalg.lstsq(A, y, rcond=None)
        den_prev = 1 + theta_new[3] * q + theta_new[4] * q * q
        if theta is not None and np.allclose(theta_new, theta, rtol=1e-10, atol=1e-14):
            theta = theta_new
            break
        theta = theta_new

    def model(t):
        return (t[0] + t[1] * q + t[2] * q * q) / (1 + t[3] * q + t[4] * q * q)

    def resid(t):
        r = model(t) - hs
        return np.concatenate([r.real, r.imag])

    t = least_squares(resid, theta, method="lm", xtol=1e-14, ftol=1e-14, gtol=1e-14).x
    stable = bool(np.all(np.abs(np.roots([1.0, t[3], t[4]])) < 1.0))
    err = np.abs(model(t) - hs)
    return {"b": [float(v) for v in t[:3]], "a": [float(t[3]), float(t[4])],
            "fit_rel_rms": float(np.sqrt(np.mean(err ** 2)) / np.abs(hs).max()),
            "stable": stable, "band_hz": [float(lo), float(hi)]}
