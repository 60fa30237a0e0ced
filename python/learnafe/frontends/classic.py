"""Classic auditory filter banks as fixed front ends: gammatone, Butterworth band-pass, constant-Q.

Each channel is a cascade of second-order sections (SOS, rows ``(b0, b1, b2, 1, a1, a2)``),
designed here in float64 from the textbook formulas:

* ``gammatone`` -- order-4 gammatone filters (Slaney's four-section IIR realisation, bandwidth
  ``1.019 ERB(f)``, ``ERB(f) = f / 9.26449 + 24.7``), centres equally spaced on the ERB-rate
  scale ``log(f + 9.26449 * 24.7)`` from ``f_low`` to ``f_high``;
* ``butterworth`` -- Butterworth band-passes of ``order`` sections (order-``order`` low-pass
  prototype, low-pass to band-pass, bilinear transform with pre-warped edges), contiguous bands
  whose ``n_channels + 1`` edges are equally spaced on the mel scale from ``f_low`` to ``f_high``;
* ``constant_q`` -- the same Butterworth band-pass design at centres log-spaced from ``f_low`` to
  ``f_high``, every band ``f_c / q`` wide around ``f_c`` (geometric centre); ``q = 0`` picks the Q
  at which neighbours cross at their -3 dB edges.

Every channel has unit gain at its centre.  Filtering (:func:`sos_envelopes`) runs the cascade as
one :func:`learnafe.ops.biquad_filterbank` call per section (the first section on the mono audio
for all channels, the others channel by channel) and fuses the last section with the envelope
(:func:`learnafe.ops.filterbank_envelope`); the rest of the feature path (log, normalisation) is
:func:`learnafe.frontends.features.post_process`, as for the other banks.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from learnafe import ops
from learnafe.frontends import features as feat
from learnafe.frontends.base import FrontEnd
from learnafe.frontends.features import FeatureConfig

SPEC_FORMAT = "learnafe-classic-bank/1"
KINDS = ("gammatone", "butterworth", "constant_q")
#: Orders (sections per channel) of the Butterworth designs.
ORDER_RANGE = (2, 8)
#: The gammatone order (four second-order sections).
GAMMATONE_ORDER = 4


# --------------------------------------------------------------------------- design (float64)
#: Slaney's constants of the ERB scale (Glasberg and Moore): ``ERB(f) = f / EAR_Q + MIN_BW``.
EAR_Q, MIN_BW = 9.26449, 24.7


def erb_hz(f_hz):
    """Equivalent rectangular bandwidth (Hz) at ``f_hz``: ``f / EAR_Q + MIN_BW``."""
    return np.asarray(f_hz, dtype=np.float64) / EAR_Q + MIN_BW


def erb_space(f_low: float, f_high: float, n: int) -> np.ndarray:
    """``n`` frequencies equally spaced on the ERB-rate scale ``log(f + EAR_Q MIN_BW)`` from
    ``f_low`` to ``f_high`` (Hz)."""
    k = EAR_Q * MIN_BW
    return np.exp(np.linspace(math.log(f_low + k), math.log(f_high + k), n)) - k


def mel_space(f_low: float, f_high: float, n: int) -> np.ndarray:
    """``n`` frequencies equally spaced on the mel scale ``2595 log10(1 + f / 700)`` (Hz)."""
    lo, hi = (2595.0 * math.log10(1 + f / 700.0) for f in (f_low, f_high))
    return 700.0 * (10.0 ** (np.linspace(lo, hi, n) / 2595.0) - 1.0)


def sos_response(sos: np.ndarray, f_hz, sample_rate: float) -> np.ndarray:
    """Complex response of cascades ``sos`` ``[..., S, 6]`` at ``f_hz`` -> ``[..., F]``."""
    sos = np.asarray(sos, dtype=np.float64)
    z = np.exp(-1j * 2 * np.pi * np.asarray(f_hz, dtype=np.float64) / sample_rate)  # z^-1
    zz = np.stack([np.ones_like(z), z, z * z])                                       # [3, F]
    num = sos[..., :3] @ zz
    den = sos[..., 3:] @ zz
    return np.prod(num / den, axis=-2)


def _normalise(sos: np.ndarray, f_c: float, sample_rate: float) -> np.ndarray:
    """Scale the numerators of one cascade ``[S, 6]`` so that ``|H(f_c)| = 1`` (shared equally)."""
    g = abs(sos_response(sos, [f_c], sample_rate)[0])
    sos = sos.copy()
    sos[:, :3] /= g ** (1.0 / sos.shape[0])
    return sos


def butterworth_bandpass_sos(f1: float, f2: float, order: int, sample_rate: float) -> np.ndarray:
    """Digital Butterworth band-pass ``[order, 6]`` with -3 dB edges ``f1 < f2`` (Hz), unit gain at
    the centre: prototype poles ``exp(i pi (2k + order + 1) / (2 order))``, low-pass to band-pass
    ``s -> (s^2 + W0^2) / (s BW)`` with pre-warped edges ``W = 2 fs tan(pi f / fs)``, bilinear
    ``z = (2 fs + s) / (2 fs - s)``; each section has one zero at ``z = 1`` and one at ``z = -1``."""
    fs = float(sample_rate)
    w1, w2 = (2 * fs * math.tan(math.pi * f / fs) for f in (f1, f2))
    w0, bw = math.sqrt(w1 * w2), w2 - w1
    k = np.arange(order)
    proto = np.exp(1j * np.pi * (2 * k + order + 1) / (2 * order))
    half = proto * bw / 2
    root = np.sqrt(half * half - w0 * w0 + 0j)
    s_poles = np.concatenate([half + root, half - root])
    z_poles = (2 * fs + s_poles) / (2 * fs - s_poles)
    upper = z_poles[z_poles.imag > 1e-12]
    real = np.sort(z_poles[np.abs(z_poles.imag) <= 1e-12].real)
    pairs = [(p.real * 2, abs(p) ** 2) for p in upper]
    pairs += [(real[i] + real[i + 1], real[i] * real[i + 1]) for i in range(0, len(real), 2)]
    if len(pairs) != order:
        raise ValueError(f"Butterworth band {f1:g}-{f2:g} Hz at {fs:g} Hz: could not pair its poles "
                         "into sections; move the band edges away from 0 and the Nyquist frequency")
    sos = np.array([[1.0, 0.0, -1.0, 1.0, -s, p] for s, p in pairs])
    f_c = fs / math.pi * math.atan(w0 / (2 * fs))
    return _normalise(sos, f_c, fs)


def gammatone_sos(f_c: float, sample_rate: float) -> np.ndarray:
    """Order-4 gammatone filter at ``f_c`` as four sections ``[4, 6]`` (Slaney's IIR realisation:
    one conjugate pole pair ``exp((-B +- i w) T)`` per section, ``B = 2 pi 1.019 ERB(f_c)``, and the
    four zeros ``T (cos wT +- sqrt(3 +- 2^1.5) sin wT) / exp(BT)``), unit gain at ``f_c``."""
    t = 1.0 / float(sample_rate)
    w = 2 * math.pi * f_c
    bw = 2 * math.pi * 1.019 * float(erb_hz(f_c))
    e = math.exp(bw * t)
    c, s = math.cos(w * t), math.sin(w * t)
    rows = []
    for sign_outer in (1.0, -1.0):
        for sign_inner in (1.0, -1.0):
            r = math.sqrt(3 + sign_outer * 2 ** 1.5)
            b1 = -(c + sign_inner * r * s) * t / e
            rows.append([t, b1, 0.0, 1.0, -2 * c / e, math.exp(-2 * bw * t)])
    return _normalise(np.array(rows), f_c, sample_rate)


def crossing_q(f_low: float, f_high: float, n_channels: int) -> float:
    """The constant Q at which log-spaced neighbours (ratio ``r``) cross at their -3 dB edges:
    ``1 / (sqrt(r) - 1 / sqrt(r))``."""
    if n_channels < 2:
        return math.sqrt(2.0)
    r = (f_high / f_low) ** (1.0 / (n_channels - 1))
    return 1.0 / (math.sqrt(r) - 1.0 / math.sqrt(r))


def design(kind: str, n_channels: int, f_low: float, f_high: float, sample_rate: float,
           order: int = 4, q: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``(sos [C, S, 6], centres [C] Hz)`` of a classic bank (module docstring), arguments checked."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if isinstance(n_channels, bool) or not isinstance(n_channels, int) or n_channels < 1:
        raise ValueError(f"n_channels must be a positive integer, got {n_channels!r}")
    sample_rate = float(sample_rate)
    if not (math.isfinite(sample_rate) and sample_rate > 0):
        raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate!r}")
    nyq = sample_rate / 2
    if not (0 < f_low < f_high):
        raise ValueError(f"need 0 < f_low < f_high (Hz), got f_low={f_low!r}, f_high={f_high!r}")
    if kind != "gammatone" and (isinstance(order, bool) or not isinstance(order, int)
                                or not ORDER_RANGE[0] <= order <= ORDER_RANGE[1]):
        raise ValueError(f"order of a {kind} bank must be an integer number of second-order sections "
                         f"in {ORDER_RANGE[0]}..{ORDER_RANGE[1]}, got {order!r}")
    if not (isinstance(q, (int, float)) and math.isfinite(q) and q >= 0):
        raise ValueError(f"q must be >= 0 (0: neighbours cross at -3 dB), got {q!r}")
    if kind == "gammatone":
        if f_high >= nyq:
            raise ValueError(f"f_high={f_high:g} Hz: the highest gammatone centre must lie below the "
                             f"Nyquist frequency {nyq:g} Hz; lower f_high")
        centres = erb_space(f_low, f_high, n_channels)
        return np.stack([gammatone_sos(f, sample_rate) for f in centres]), centres
    if kind == "butterworth":
        edges = mel_space(f_low, f_high, n_channels + 1)
        lo, hi = edges[:-1], edges[1:]
        centres = np.sqrt(lo * hi)
        top = "f_high"
    else:
        centres = np.geomspace(f_low, f_high, n_channels)
        q_val = float(q) if q > 0 else crossing_q(f_low, f_high, n_channels)
        half = 1.0 / (2 * q_val)
        lo = centres * (math.sqrt(1 + half * half) - half)
        hi = centres * (math.sqrt(1 + half * half) + half)
        top = "f_high (with q)"
    if hi[-1] >= nyq:
        raise ValueError(f"{top}: the upper band edge {hi[-1]:g} Hz of the highest {kind} channel lies "
                         f"at or above the Nyquist frequency {nyq:g} Hz; lower f_high or raise q")
    sos = np.stack([butterworth_bandpass_sos(a, b, order, sample_rate) for a, b in zip(lo, hi)])
    return sos, centres


# --------------------------------------------------------------------------- filtering
def sos_envelopes(x: torch.Tensor, sos: torch.Tensor, sample_rate: float, cfg: FeatureConfig) -> torch.Tensor:
    """Envelopes ``[B, C, F]`` of audio ``x`` ``[B, T]`` through cascades ``sos`` ``[C, S, 6]``
    (a0 = 1): the one place the classic banks filter.  The first ``S - 1`` sections run as one
    fused cascade (:func:`learnafe.sosfilt`), the last one inside the envelope op, every
    (clip, channel) signal its own example with its channel's last section (per-example
    coefficients), so the whole bank is two kernel calls."""
    sos = sos.to(torch.float64)
    b, a = sos[..., :3], sos[..., 4:]
    n_sec = int(sos.shape[1])
    if n_sec == 1:
        return feat.envelopes(x, b[:, 0], a[:, 0], sample_rate, cfg)
    y = ops.sosfilt(sos[:, :-1], x)                                  # [B, C, T]
    B, C, T = y.shape
    b_last = b[:, -1].repeat(B, 1)[:, None, :]                       # [B*C, 1, 3]
    a_last = a[:, -1].repeat(B, 1)[:, None, :]
    env = feat.envelopes(y.reshape(B * C, T), b_last, a_last, sample_rate, cfg)  # [B*C, 1, F]
    return env.reshape(B, C, -1)


# --------------------------------------------------------------------------- front end
class ClassicFilterBank(FrontEnd):
    """A fixed classic bank (``kind`` in :data:`KINDS`) -> features ``[B, C, F]``.

    Args:
        kind: ``"gammatone"``, ``"butterworth"`` or ``"constant_q"`` (module docstring).
        n_channels: number of channels.
        f_low, f_high: lowest and highest centre (gammatone, constant-Q) or band edge
            (Butterworth), Hz.
        sample_rate: Hz.
        order: second-order sections per channel of the Butterworth designs, 2..8
            (gammatone: always 4).
        q: constant-Q bands' quality factor (0: -3 dB crossing of neighbours).
        features: :class:`~learnafe.frontends.features.FeatureConfig` or dict.

    No hardware cost and no trainable parameters; the sections are a buffer ``sos``
    ``[C, S, 6]`` (float64).  :meth:`to_dict` keeps the design arguments, from which
    :meth:`from_dict` rebuilds the same float64 sections.
    """

    spec_format = SPEC_FORMAT

    def __init__(self, kind: str = "gammatone", n_channels: int = 16, f_low: float = 100.0,
                 f_high: float = 8000.0, sample_rate: float = 20000.0, order: int = 4, q: float = 0.0,
                 features: FeatureConfig | dict | None = None) -> None:
        super().__init__()
        sos, centres = design(kind, n_channels, f_low, f_high, sample_rate, order=order, q=q)
        self.kind = kind
        self.f_low, self.f_high = float(f_low), float(f_high)
        self.sample_rate = float(sample_rate)
        self.order = GAMMATONE_ORDER if kind == "gammatone" else int(order)
        self.q = float(q)
        self.features = feat.FeatureConfig.from_dict(features)
        self.centers_hz = [float(f) for f in centres]
        self.register_buffer("sos", torch.as_tensor(sos))

    @property
    def n_channels(self) -> int:
        return int(self.sos.shape[0])

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio ``[B, T]`` (or ``[T]``) -> features ``[B, C, T // hop]`` (or ``[C, F]``)."""
        x2, was_1d = feat.check_audio(audio)
        out = feat.post_process(sos_envelopes(x2, self.sos, self.sample_rate, self.features), self.features)
        return out[0] if was_1d else out

    def frequency_response(self, freqs_hz) -> np.ndarray:
        """Complex response ``[C, F]`` at ``freqs_hz`` (float64)."""
        return sos_response(self.sos.cpu().numpy(), freqs_hz, self.sample_rate)

    def to_dict(self) -> dict:
        return {"format": SPEC_FORMAT, "kind": self.kind, "n_channels": self.n_channels,
                "f_low": self.f_low, "f_high": self.f_high, "sample_rate": self.sample_rate,
                "order": self.order, "q": self.q, "features": self.features.to_dict(),
                "centers_hz": self.centers_hz}

    @classmethod
    def from_dict(cls, spec: dict) -> "ClassicFilterBank":
        if not isinstance(spec, dict) or spec.get("format") != SPEC_FORMAT:
            got = spec.get("format") if isinstance(spec, dict) else type(spec).__name__
            raise ValueError(f"classic bank spec must have format {SPEC_FORMAT!r}, got {got!r}")
        if "kind" not in spec:
            raise ValueError(f"classic bank spec lacks 'kind' (one of {KINDS})")
        known = ("kind", "n_channels", "f_low", "f_high", "sample_rate", "order", "q", "features")
        return cls(**{k: spec[k] for k in known if k in spec})

    def extra_repr(self) -> str:
        return f"kind={self.kind}, n_channels={self.n_channels}, order={self.order}, sample_rate={self.sample_rate}"


__all__ = ["ClassicFilterBank", "KINDS", "SPEC_FORMAT", "design", "sos_envelopes", "sos_response",
           "butterworth_bandpass_sos", "gammatone_sos", "erb_space", "mel_space", "crossing_q"]
