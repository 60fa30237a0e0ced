"""Signal processing that turns an engine's raw word into a varied 1 s clip.

All functions are pure NumPy/SciPy and take an explicit random generator, so
the same generator state gives the same output.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from ..audio import resample
from ..noise import active_mask

__all__ = ["formant_shift", "trim_silence", "room_impulse_response", "reverberate",
           "microphone_response", "coloured_noise", "set_active_level"]


def formant_shift(x: np.ndarray, rate: int, alpha: float) -> np.ndarray:
    """Scale every frequency of ``x`` by ``alpha`` (and its duration by ``1/alpha``).

    ``x`` at ``rate`` is resampled to ``rate / alpha`` and then read as if it
    were at ``rate``: y(t) = x(alpha t).  Combined with an engine pitch of
    ``pitch / alpha`` and speed of ``speed / alpha`` this moves the formants
    (vocal-tract length) by ``alpha`` while keeping the intended pitch and
    speed.  The ratio is rounded to an integer intermediate rate.
    """
    if not alpha > 0:
        raise ValueError(f"formant_shift: alpha must be > 0, got {alpha}")
    mid = int(round(rate / alpha))
    return resample(x, rate, mid) if mid != rate else np.asarray(x, np.float32)


def trim_silence(x: np.ndarray, rate: int, *, threshold_db: float = 45.0,
                 margin_s: float = 0.03) -> np.ndarray:
    """Cut leading and trailing frames more than ``threshold_db`` below the loudest one,
    keeping ``margin_s`` of context on each side."""
    m = active_mask(x, rate, threshold_db=threshold_db)
    if not m.any():
        return x[:0]
    idx = np.flatnonzero(m)
    margin = int(margin_s * rate)
    return x[max(0, idx[0] - margin):min(x.shape[0], idx[-1] + 1 + margin)]


def room_impulse_response(rng: np.random.Generator, rate: int, rt60: float,
                          drr_db: float) -> np.ndarray:
    """A synthetic room impulse response.

    A direct-path impulse followed (after a 1-5 ms gap) by exponentially
    decaying Gaussian noise whose energy decays by 60 dB in ``rt60`` seconds,
    low-pass filtered progressively (air and wall absorption), scaled so the
    direct-to-reverberant energy ratio is ``drr_db``.
    """
    n = max(8, int(rt60 * rate))
    t = np.arange(n) / rate
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)  # 60 dB energy decay
    # Darken the tail: blend with a smoothed copy, more as time goes on.
    sos = signal.butter(2, min(0.45, 3000.0 / rate), output="sos")
    smooth = signal.sosfilt(sos, tail)
    w = np.clip(t / rt60, 0.0, 1.0)
    tail = (1.0 - w) * tail + w * smooth
    gap = int(rng.uniform(0.001, 0.005) * rate)
    tail[:gap] = 0.0
    e_tail = float(np.sum(tail ** 2))
    h = tail * np.sqrt(10.0 ** (-drr_db / 10.0) / max(e_tail, 1e-20))
    h[0] = 1.0
    return h


def reverberate(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Convolve with an impulse response, keeping the reverberant tail."""
    return signal.fftconvolve(x, h)[: x.shape[0] + h.shape[0] - 1].astype(np.float32)


def microphone_response(x: np.ndarray, rate: int, highpass_hz: float,
                        lowpass_hz: float | None) -> np.ndarray:
    """A cheap microphone/channel colouring: 2nd-order high-pass, optional 4th-order low-pass."""
    y = signal.sosfilt(signal.butter(2, highpass_hz, "highpass", fs=rate, output="sos"), x)
    if lowpass_hz is not None and lowpass_hz < 0.49 * rate:
        y = signal.sosfilt(signal.butter(4, lowpass_hz, "lowpass", fs=rate, output="sos"), y)
    return y.astype(np.float32)


def coloured_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Gaussian noise with power spectrum ~ 1/f^exponent (0 white, 1 pink, 2 brown),
    unit RMS, DC removed."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 1 else 1.0
    spec *= f ** (-exponent / 2.0)
    spec[0] = 0.0
    y = np.fft.irfft(spec, n)
    rms = np.sqrt(np.mean(y ** 2))
    return (y / rms if rms > 0 else y).astype(np.float32)


def set_active_level(x: np.ndarray, rate: int, level_db: float, *, peak: float = 0.99) -> np.ndarray:
    """Scale so the RMS over the active part is ``level_db`` dBFS, never peaking above ``peak``."""
    m = active_mask(x, rate)
    if not m.any():
        return x.astype(np.float32)
    rms = float(np.sqrt(np.mean(np.asarray(x, np.float64)[m] ** 2)))
    g = 10.0 ** (level_db / 20.0) / rms
    top = float(np.max(np.abs(x))) * g
    if top > peak:
        g *= peak / top
    return (x * g).astype(np.float32)

