"""Voice and room augmentation: new speakers and rooms from real recordings.

:class:`VoiceAugment` turns one clean recording into one that sounds like
another person in another room, from a random generator seeded per clip (the
data set passes ``(seed, stream, epoch, clip index)``), so the same seed gives
the same output.  Each effect has a switch and a probability in the frozen
:class:`VoiceAugmentConfig`; the effects run in this order:

- **formant warping** (vocal-tract length): the spectral envelope of every
  STFT frame (cepstral smoothing) is scaled in frequency by ``alpha`` while the
  harmonics (pitch) and the duration stay;
- **pitch shift** at constant duration: a phase-vocoder time stretch by
  ``p`` followed by resampling by ``1/p`` (``p`` a rational number), so every
  frequency, F0 included, moves by ``p``;
- **tempo change** at constant pitch: a phase-vocoder time stretch, the
  duration is scaled by ``1/rate``;

  the three share one STFT (:func:`warp_shift_stretch`): the envelope is warped
  in the analysis spectrum, one phase-vocoder pass stretches by ``rate / p``
  and one polyphase resampling (filter cached per factor) reads the result
  ``p`` times faster; the STFT is float32 (Hann 512, hop 128, ``scipy.fft``);
- **random equalisation**: ``eq_bands`` peaking biquads (RBJ audio-EQ
  cookbook) at log-uniform centres of 150 Hz..0.35 fs, gains uniform in
  +-``eq_gain_db``, Q log-uniform in 0.5..3;
- **reverberation**: convolution with a generated room impulse response
  (:func:`learnafe.data.synth.effects.room_impulse_response`: exponential
  decay of 60 dB in ``rt60``, direct-to-reverberant ratio ``drr_db``);
- **level**: a gain uniform in ``level_db`` dB;
- **clipping**: hard clipping at ``clip_db`` dB below the clip's peak.

The output is always limited to [-1, 1] (a converter's full scale).  The
data set applies the augmentation to the clean speech before the background
noise is mixed in (``KeywordDataset(augment=...)``), never to ``silence``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any, Mapping

import numpy as np
from scipy import fft as sp_fft
from scipy import signal

__all__ = ["VoiceAugmentConfig", "VoiceAugment", "time_stretch", "pitch_shift", "formant_warp",
           "warp_shift_stretch", "peaking_sos", "random_eq_bands"]

_N_FFT = 512
_HOP = 128


@dataclass(frozen=True)
class VoiceAugmentConfig:
    """Switches, probabilities and ranges of the voice/room augmentation (module doc).

    ``enabled`` False (the default) turns everything off; ranges are ``[low, high]``
    drawn log-uniformly for factors (formant, pitch, tempo) and uniformly for dB values.
    """

    enabled: bool = False
    formant: bool = True
    formant_prob: float = 0.5
    formant_range: tuple = (0.85, 1.18)
    pitch: bool = True
    pitch_prob: float = 0.5
    pitch_range: tuple = (0.8, 1.25)
    tempo: bool = True
    tempo_prob: float = 0.5
    tempo_range: tuple = (0.85, 1.18)
    eq: bool = True
    eq_prob: float = 0.5
    eq_bands: int = 3
    eq_gain_db: float = 8.0
    reverb: bool = True
    reverb_prob: float = 0.3
    rt60_range: tuple = (0.1, 0.6)
    drr_range_db: tuple = (0.0, 15.0)
    level: bool = True
    level_prob: float = 0.5
    level_db: tuple = (-12.0, 6.0)
    clipping: bool = True
    clip_prob: float = 0.1
    clip_db: tuple = (1.0, 10.0)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name.endswith(("_range", "_range_db")) or f.name in ("level_db", "clip_db"):
                if not (isinstance(v, (list, tuple)) and len(v) == 2
                        and all(isinstance(a, (int, float)) for a in v) and v[0] <= v[1]):
                    raise ValueError(f"voice_augment option {f.name}={v!r} is invalid: give "
                                     "[low, high] with low <= high")
                object.__setattr__(self, f.name, (float(v[0]), float(v[1])))
            elif f.name.endswith("_prob"):
                if not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
                    raise ValueError(f"voice_augment option {f.name}={v!r} is invalid: must be a "
                                     "probability in [0, 1]")
            elif f.type in ("bool", bool) and not isinstance(v, bool):
                raise ValueError(f"voice_augment option {f.name}={v!r} is invalid: must be true or false")
        for name in ("formant_range", "pitch_range", "tempo_range"):
            lo, hi = getattr(self, name)
            if not (0.5 <= lo and hi <= 2.0):
                raise ValueError(f"voice_augment option {name}={[lo, hi]} is invalid: factors must "
                                 "lie in [0.5, 2]")
        if self.rt60_range[0] < 0.05 or self.rt60_range[1] > 2.0:
            raise ValueError(f"voice_augment option rt60_range={list(self.rt60_range)} is invalid: "
                             "use RT60 values in [0.05, 2] s")
        if self.clip_db[0] < 0:
            raise ValueError(f"voice_augment option clip_db={list(self.clip_db)} is invalid: "
                             "dB below the peak must be >= 0")
        if not (isinstance(self.eq_bands, int) and 0 <= self.eq_bands <= 8):
            raise ValueError(f"voice_augment option eq_bands={self.eq_bands!r} is invalid: use 0..8")
        if not self.eq_gain_db >= 0:
            raise ValueError(f"voice_augment option eq_gain_db={self.eq_gain_db!r} is invalid: must be >= 0")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "VoiceAugmentConfig":
        """From the ``voice_augment`` section of a training configuration ({} or None: off);
        an unknown key is an error listing the valid ones."""
        if not d:
            return cls()
        if not isinstance(d, Mapping):
            raise ValueError(f"voice_augment must be a JSON object, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown voice_augment option(s) {unknown}; valid options: {sorted(names)}")
        return cls(**dict(d))

    def to_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}


# --- signal processing ---------------------------------------------------------
@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    w = signal.get_window("hann", _N_FFT).astype(np.float32)
    w.setflags(write=False)
    return w


@lru_cache(maxsize=8)
def _ola_norm(n_frames: int) -> np.ndarray:
    """The overlap-added squared window of ``n_frames`` frames (the WOLA normaliser)."""
    ww = np.broadcast_to(_window() ** 2, (n_frames, _N_FFT))
    norm = _overlap_add(np.ascontiguousarray(ww))
    out = (1.0 / np.maximum(norm, 1e-8)).astype(np.float32)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=64)
def _resample_filter(up: int, down: int) -> np.ndarray:
    """The low-pass FIR that :func:`scipy.signal.resample_poly` designs for ``up/down``."""
    max_rate = max(up, down)
    return signal.firwin(2 * 10 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0))


@lru_cache(maxsize=1)
def _omega() -> np.ndarray:
    """The phase advance of every bin over one hop, ``[n_fft/2 + 1]``."""
    return (2.0 * np.pi * _HOP * np.arange(_N_FFT // 2 + 1) / _N_FFT).astype(np.float32)


def _overlap_add(frames: np.ndarray) -> np.ndarray:
    """Overlap-add of ``[frames, n_fft]`` at hop ``_HOP``."""
    n_t = frames.shape[0]
    k = _N_FFT // _HOP
    out = np.zeros(((n_t - 1) + k, _HOP), frames.dtype)
    blocks = frames.reshape(n_t, k, _HOP)
    for j in range(k):  # one shifted block column at a time
        out[j:j + n_t] += blocks[:, j]
    return out.reshape(-1)


def _stft(x: np.ndarray) -> np.ndarray:
    """``[frames, n_fft/2 + 1]`` complex64 STFT, Hann window, hop ``_HOP``, frames centred (zero padding)."""
    pad = _N_FFT // 2
    xp = np.concatenate([np.zeros(pad, np.float32), np.asarray(x, np.float32),
                         np.zeros(pad + _N_FFT, np.float32)])
    n_frames = 1 + (xp.shape[0] - _N_FFT) // _HOP
    frames = np.lib.stride_tricks.as_strided(
        xp, (n_frames, _N_FFT), (xp.strides[0] * _HOP, xp.strides[0]), writeable=False)
    return sp_fft.rfft(frames * _window(), axis=1, workers=1)


def _istft(spec: np.ndarray, length: int) -> np.ndarray:
    """Weighted overlap-add inverse of :func:`_stft`, ``length`` float32 samples."""
    frames = sp_fft.irfft(spec, n=_N_FFT, axis=1, workers=1).astype(np.float32, copy=False)
    frames *= _window()
    out = _overlap_add(frames) * _ola_norm(frames.shape[0])
    pad = _N_FFT // 2
    y = out[pad:pad + length]
    return np.pad(y, (0, max(0, length - y.shape[0])))


def _envelope_gain(spec: np.ndarray, sample_rate: int, alpha: float) -> np.ndarray:
    """Per bin and frame, ``E(f / alpha) / E(f)``, ``E`` the cepstrally smoothed envelope
    (quefrencies below 2 ms) of the frame's magnitude."""
    logm = np.log(np.abs(spec) + 1e-9)
    cep = sp_fft.irfft(logm, n=_N_FFT, axis=1, workers=1)
    n_lift = max(4, int(0.002 * sample_rate))
    cep[:, n_lift:_N_FFT - n_lift + 1] = 0.0
    log_env = sp_fft.rfft(cep, axis=1, workers=1).real
    n_bins = spec.shape[1]
    pos = np.minimum(np.arange(n_bins) / alpha, n_bins - 1.0)
    i0 = np.minimum(pos.astype(np.int64), n_bins - 2)
    frac = (pos - i0).astype(np.float32)
    warped = (1.0 - frac) * log_env[:, i0] + frac * log_env[:, i0 + 1]
    return np.exp(np.clip(warped - log_env, -12.0, 12.0))


def _vocode(x: np.ndarray, sample_rate: int, alpha: float, rate: float, n_out: int) -> np.ndarray:
    """One STFT pass: the spectral envelope warped by ``alpha`` (1: unchanged), then a
    phase-vocoder time stretch by ``rate`` (1: none), ``n_out`` samples."""
    spec = _stft(x)
    if alpha != 1.0:
        spec = spec * _envelope_gain(spec, sample_rate, alpha)
    if rate == 1.0:
        return _istft(spec, n_out)
    n_frames = spec.shape[0]
    steps = np.arange(0.0, n_frames - 1, rate)
    i0 = steps.astype(np.int64)
    frac = (steps - i0).astype(np.float32)[:, None]
    mag = np.abs(spec)
    ph = np.angle(spec)
    out_mag = (1.0 - frac) * mag[i0] + frac * mag[i0 + 1]
    omega = _omega()
    dphi = ph[i0 + 1] - ph[i0] - omega
    dphi -= np.float32(2.0 * np.pi) * np.round(dphi / np.float32(2.0 * np.pi))
    dphi += omega
    phase = np.empty_like(dphi)
    phase[0] = ph[0]
    np.cumsum(dphi[:-1], axis=0, out=phase[1:])
    phase[1:] += ph[:1]
    out = np.empty(phase.shape, np.complex64)  # out_mag * exp(i phase), without a complex exp
    np.multiply(out_mag, np.cos(phase), out=out.real)
    np.multiply(out_mag, np.sin(phase), out=out.imag)
    return _istft(out, n_out)


def _resample(y: np.ndarray, fr: Fraction) -> np.ndarray:
    """``y`` read ``fr`` times faster (polyphase resampling by ``1/fr``, cached filter)."""
    return signal.resample_poly(y, fr.denominator, fr.numerator,
                                window=_resample_filter(fr.denominator, fr.numerator)).astype(np.float32)


def _pitch_fraction(factor: float) -> Fraction:
    return Fraction(factor).limit_denominator(32)


def warp_shift_stretch(x: np.ndarray, sample_rate: int, alpha: float = 1.0, pitch: float = 1.0,
                       tempo: float = 1.0) -> np.ndarray:
    """Formant warping by ``alpha``, pitch shift by ``pitch`` and tempo change by ``tempo`` in
    one STFT pass: the envelope is warped in the analysis spectrum, the phase vocoder stretches
    by ``tempo / pitch`` and one polyphase resampling by ``1 / pitch`` (``pitch`` a fraction
    with a denominator <= 32) moves every frequency by ``pitch``; ``round(len(x) / tempo)``
    samples."""
    for name, v in (("alpha", alpha), ("pitch", pitch), ("tempo", tempo)):
        if not v > 0:
            raise ValueError(f"warp_shift_stretch: {name} must be > 0, got {v}")
    x = np.asarray(x, np.float32)
    n = x.shape[0]
    n_out = int(round(n / tempo))
    fr = _pitch_fraction(pitch)
    if x.shape[0] < _N_FFT or (alpha == 1.0 and fr == 1 and tempo == 1.0):
        return x.copy()
    rate = tempo / float(fr)
    if fr == 1:
        return _vocode(x, sample_rate, alpha, rate, n_out)
    y = _vocode(x, sample_rate, alpha, rate, int(round(n / rate)))
    y = _resample(y, fr)
    return np.pad(y[:n_out], (0, max(0, n_out - y.shape[0])))


def time_stretch(x: np.ndarray, rate: float) -> np.ndarray:
    """``x`` played ``rate`` times faster at the same pitch (phase vocoder): about
    ``len(x) / rate`` samples."""
    if not rate > 0:
        raise ValueError(f"time_stretch: rate must be > 0, got {rate}")
    n_out = int(round(x.shape[0] / rate))
    if rate == 1.0 or x.shape[0] < _N_FFT:
        return np.asarray(x, np.float32)
    return _vocode(x, 0, 1.0, rate, n_out)


def pitch_shift(x: np.ndarray, factor: float) -> np.ndarray:
    """Every frequency of ``x`` times ``factor`` (approximated by a fraction with a
    denominator <= 32), duration unchanged."""
    if not factor > 0:
        raise ValueError(f"pitch_shift: factor must be > 0, got {factor}")
    if _pitch_fraction(factor) == 1:
        return np.asarray(x, np.float32)
    return warp_shift_stretch(x, 0, pitch=factor)


def formant_warp(x: np.ndarray, sample_rate: int, alpha: float) -> np.ndarray:
    """The spectral envelope of ``x`` scaled in frequency by ``alpha`` (formants move,
    harmonics and duration stay): per STFT frame, the magnitude is multiplied by
    ``E(f / alpha) / E(f)``, ``E`` the cepstrally smoothed envelope (quefrencies below 2 ms)."""
    if not alpha > 0:
        raise ValueError(f"formant_warp: alpha must be > 0, got {alpha}")
    if alpha == 1.0 or x.shape[0] < _N_FFT:
        return np.asarray(x, np.float32)
    return _vocode(x, sample_rate, alpha, 1.0, x.shape[0])


def _fft_reverb(y: np.ndarray, h: np.ndarray) -> np.ndarray:
    """The first ``len(y)`` samples of ``y * h`` (FFT convolution at the next fast length)."""
    n = sp_fft.next_fast_len(y.shape[0] + h.shape[0] - 1, real=True)
    spec = sp_fft.rfft(y.astype(np.float32), n, workers=1) * sp_fft.rfft(np.asarray(h, np.float32), n, workers=1)
    return sp_fft.irfft(spec, n, workers=1)[:y.shape[0]].astype(np.float32)


def peaking_sos(bands, sample_rate: int) -> np.ndarray:
    """Second-order sections of peaking filters ``[(f0_hz, gain_db, q), ...]`` (RBJ
    audio-EQ cookbook): gain ``gain_db`` at ``f0``, 0 dB far from it."""
    rows = []
    for f0, gain_db, q in bands:
        a = 10.0 ** (gain_db / 40.0)
        w0 = 2.0 * np.pi * f0 / sample_rate
        al = np.sin(w0) / (2.0 * q)
        b = np.array([1 + al * a, -2 * np.cos(w0), 1 - al * a])
        d = np.array([1 + al / a, -2 * np.cos(w0), 1 - al / a])
        rows.append(np.concatenate([b / d[0], d / d[0]]))
    return np.array(rows).reshape(-1, 6)


def random_eq_bands(rng: np.random.Generator, sample_rate: int, n_bands: int,
                    gain_db: float) -> list[tuple[float, float, float]]:
    """``n_bands`` random peaking bands (module doc)."""
    lo, hi = np.log(150.0), np.log(0.35 * sample_rate)
    return [(float(np.exp(rng.uniform(lo, hi))), float(rng.uniform(-gain_db, gain_db)),
             float(np.exp(rng.uniform(np.log(0.5), np.log(3.0))))) for _ in range(n_bands)]


def _log_uniform(rng: np.random.Generator, lo_hi) -> float:
    lo, hi = lo_hi
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if hi > lo else float(lo)


class VoiceAugment:
    """The augmentation of a :class:`VoiceAugmentConfig` at ``sample_rate``;
    ``aug(x, rng)`` returns the augmented float32 copy of the clip ``x``."""

    def __init__(self, config: VoiceAugmentConfig | Mapping[str, Any] | None, sample_rate: int):
        self.config = (config if isinstance(config, VoiceAugmentConfig)
                       else VoiceAugmentConfig.from_dict(config))
        self.sample_rate = int(sample_rate)

    @property
    def enabled(self) -> bool:
        return bool(self.config.enabled)

    def draw(self, rng: np.random.Generator) -> dict:
        """The parameters of one clip: ``{effect: value}`` for the effects that fire."""
        c, p = self.config, {}
        if c.formant and rng.random() < c.formant_prob:
            p["formant"] = _log_uniform(rng, c.formant_range)
        if c.pitch and rng.random() < c.pitch_prob:
            p["pitch"] = _log_uniform(rng, c.pitch_range)
        if c.tempo and rng.random() < c.tempo_prob:
            p["tempo"] = _log_uniform(rng, c.tempo_range)
        if c.eq and c.eq_bands and rng.random() < c.eq_prob:
            p["eq"] = random_eq_bands(rng, self.sample_rate, c.eq_bands, c.eq_gain_db)
        if c.reverb and rng.random() < c.reverb_prob:
            p["reverb"] = (float(rng.uniform(*c.rt60_range)), float(rng.uniform(*c.drr_range_db)),
                           int(rng.integers(0, 2 ** 31)))
        if c.level and rng.random() < c.level_prob:
            p["level"] = float(rng.uniform(*c.level_db))
        if c.clipping and rng.random() < c.clip_prob:
            p["clip"] = float(rng.uniform(*c.clip_db))
        return p

    def rir(self, rt60: float, drr_db: float, seed: int) -> np.ndarray:
        """The room impulse response of one clip's reverberation."""
        from learnafe.data.synth.effects import room_impulse_response

        return room_impulse_response(np.random.default_rng(seed), self.sample_rate, rt60, drr_db)

    def apply(self, x: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
        """``x`` with the effects of ``params`` (from :meth:`draw`)."""
        y = np.asarray(x, np.float32)
        if not y.shape[0]:
            return y.copy()
        if "formant" in params or "pitch" in params or "tempo" in params:
            y = warp_shift_stretch(y, self.sample_rate, params.get("formant", 1.0),
                                   params.get("pitch", 1.0), params.get("tempo", 1.0))
        if "eq" in params:
            y = signal.sosfilt(peaking_sos(params["eq"], self.sample_rate), y)
        if "reverb" in params:
            h = self.rir(*params["reverb"])
            peak = float(np.max(np.abs(y)))
            y = _fft_reverb(y, h)
            top = float(np.max(np.abs(y)))
            if top > 0:  # keep the level of the dry clip's peak
                y *= peak / top
        if "level" in params:
            y = y * 10.0 ** (params["level"] / 20.0)
        if "clip" in params:
            t = float(np.max(np.abs(y))) * 10.0 ** (-params["clip"] / 20.0)
            y = np.clip(y, -t, t)
        return np.clip(y, -1.0, 1.0).astype(np.float32)

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if not self.enabled:
            return np.asarray(x, np.float32)
        return self.apply(x, self.draw(rng))
