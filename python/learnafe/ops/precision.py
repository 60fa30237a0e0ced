"""Float32 accuracy of biquad section structures (the measurement behind the op's design).

For a bank of band-pass sections, filters float32 white noise with

* the op as built (float64 state, float64 coefficients, float32 in/out);
* the op with float32-rounded coefficients (float64 state);
* three all-float32 section structures, emulated in NumPy float32 arithmetic
  (every operation rounded to float32, as a float32 kernel would do):
  direct form II (all-pole then FIR), direct form I (FIR then all-pole) and
  transposed direct form II;

and reports, per channel, ``max |y - y_ref| / max |y_ref|`` against scipy's
``lfilter`` in float64 with the float64 coefficients on the same (float32)
input.
"""

from __future__ import annotations

import numpy as np

from learnafe.ops.api import biquad_filterbank

STRUCTURES = ("op_f64_state_f64_coef", "op_f64_state_f32_coef", "df2_f32", "df1_f32", "tdf2_f32")


def _emulate_f32(x: np.ndarray, b: np.ndarray, a: np.ndarray, structure: str) -> np.ndarray:
    """[T] float32 signal through C sections in float32 arithmetic -> [C, T] float32."""
    f = np.float32
    b = b.astype(f)
    a = a.astype(f)
    b0, b1, b2 = b[:, 0].copy(), b[:, 1].copy(), b[:, 2].copy()
    a1, a2 = a[:, 0].copy(), a[:, 1].copy()
    C, T = b.shape[0], x.shape[0]
    y = np.empty((C, T), dtype=f)
    s1 = np.zeros(C, f)
    s2 = np.zeros(C, f)
    xs = x.astype(f)
    if structure == "df2_f32":        # s1, s2 = v[n-1], v[n-2]
        for n in range(T):
            v = (xs[n] - a1 * s1) - a2 * s2
            y[:, n] = (b0 * v + b1 * s1) + b2 * s2
            s2 = s1
            s1 = v
    elif structure == "df1_f32":      # x delays scalar, y delays per channel
        x1 = x2 = f(0)
        for n in range(T):
            yn = ((((b0 * xs[n] + b1 * x1) + b2 * x2) - a1 * s1) - a2 * s2)
            y[:, n] = yn
            x2, x1 = x1, xs[n]
            s2 = s1
            s1 = yn
    elif structure == "tdf2_f32":
        for n in range(T):
            yn = b0 * xs[n] + s1
            s1 = (b1 * xs[n] - a1 * yn) + s2
            s2 = b2 * xs[n] - a2 * yn
            y[:, n] = yn
    else:
        raise ValueError(f"structure must be one of {STRUCTURES}, got {structure!r}")
    return y


def float32_errors(b: np.ndarray, a: np.ndarray, sample_rate: float, seconds: float = 1.0,
                   seed: int = 0, structures=STRUCTURES) -> dict[str, list[float]]:
    """Per-channel relative float32 error (see module docstring) for each structure."""
    import scipy.signal as ss

    b = np.asarray(b, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    x = np.random.default_rng(seed).standard_normal(int(round(seconds * sample_rate))).astype(np.float32)
    x64 = x.astype(np.float64)
    ref = np.stack([ss.lfilter(b[c], np.r_[1.0, a[c]], x64) for c in range(b.shape[0])])
    peak = np.abs(ref).max(axis=-1)
    out = {}
    for s in structures:
        if s == "op_f64_state_f64_coef":
            y = biquad_filterbank(x, b, a)
        elif s == "op_f64_state_f32_coef":
            y = biquad_filterbank(x, b.astype(np.float32), a.astype(np.float32))
        else:
            y = _emulate_f32(x, b, a, s)
        out[s] = (np.abs(y.astype(np.float64) - ref).max(axis=-1) / peak).tolist()
    return out
