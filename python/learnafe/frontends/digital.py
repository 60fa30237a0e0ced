"""A fixed digital biquad filter bank with the same feature path as the analog front end.

Built either from (centre, Q) lists -- band-pass ``+gain (w0/Q) s / (s^2 + (w0/Q) s + w0^2)``
mapped to z by :func:`learnafe.circuits.discretize` (pre-warped bilinear by default) --
or from explicit ``(b [C, 3], a [C, 2])`` coefficients (e.g. biquads fitted to a
SPICE-simulated circuit).  Nothing is learnable; the coefficients are buffers.
"""

from __future__ import annotations

import math
from typing import Sequence, Union

import numpy as np
import torch

from learnafe import ops
from learnafe.circuits import dssf
from learnafe.circuits._array import check_positive
from learnafe.circuits.discretize import digital_response, discretize
from learnafe.frontends import features as feat
from learnafe.frontends.base import FrontEnd
from learnafe.frontends.features import FeatureConfig

#: Coefficients or per-channel values: a sequence, a NumPy array or a tensor.
ArrayLike = Union[Sequence[float], Sequence[Sequence[float]], np.ndarray, torch.Tensor, float]

SPEC_FORMAT = "learnafe-digital-bank/1"


def peak_frequencies(b: np.ndarray, a: np.ndarray, sample_rate: float, n_grid: int = 4096) -> np.ndarray:
    """Frequency (Hz) of the largest |H| of each biquad, on a log grid refined by golden-section search."""
    b = np.asarray(b, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    nyq = sample_rate / 2
    grid = np.geomspace(nyq * 1e-5, nyq * (1 - 1e-9), n_grid)
    mag = np.abs(digital_response(grid, b, a, sample_rate))
    out = np.empty(b.shape[0])
    g = (math.sqrt(5) - 1) / 2
    for c in range(b.shape[0]):
        k = int(np.argmax(mag[c]))
        lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, n_grid - 1)]

        def m(f, c=c):
            return float(np.abs(digital_response([f], b[c:c + 1], a[c:c + 1], sample_rate))[0, 0])

        x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
        f1, f2 = m(x1), m(x2)
        for _ in range(100):
            if f1 < f2:
                lo, x1, f1 = x1, x2, f2
                x2 = lo + g * (hi - lo)
                f2 = m(x2)
            else:
                hi, x2, f2 = x2, x1, f1
                x1 = hi - g * (hi - lo)
                f1 = m(x1)
        out[c] = 0.5 * (lo + hi)
    return out


class DigitalFilterBank(FrontEnd):
    """Fixed biquad bank ``(b [C, 3], a [C, 2])`` at ``sample_rate`` -> features ``[B, C, F]``.

    Args:
        b, a: coefficients (a0 = 1), array-likes or tensors; must be stable.
        sample_rate: Hz.
        features: :class:`~learnafe.frontends.features.FeatureConfig` or dict.
        centers_hz, q: the design values, if the bank was designed from them (kept in the spec).

    A :class:`~learnafe.frontends.base.FrontEnd` without a hardware cost and without
    trainable parameters; :meth:`save` / :meth:`load` go through :meth:`to_dict`.
    """

    spec_format = SPEC_FORMAT

    def __init__(self, b: ArrayLike, a: ArrayLike, sample_rate: float = 20000.0,
                 features: FeatureConfig | dict | None = None, centers_hz: ArrayLike | None = None,
                 q: ArrayLike | None = None) -> None:
        super().__init__()

        b = np.asarray(b.detach().cpu() if isinstance(b, torch.Tensor) else b, dtype=np.float64)
        a = np.asarray(a.detach().cpu() if isinstance(a, torch.Tensor) else a, dtype=np.float64)
        if b.ndim != 2 or b.shape[1] != 3 or a.shape != (b.shape[0], 2):
            raise ValueError(f"b must be [C, 3] and a [C, 2] (a0 = 1 implied), got b {b.shape} and a {a.shape}")
        if not (np.all(np.isfinite(b)) and np.all(np.isfinite(a))):
            raise ValueError("b and a must be finite")
        ops.check_stable(a)
        sample_rate = float(sample_rate)
        if not (math.isfinite(sample_rate) and sample_rate > 0):
            raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate!r}")
        self.sample_rate = sample_rate
        self.features = feat.FeatureConfig.from_dict(features)
        self.centers_hz = None if centers_hz is None else [float(v) for v in np.asarray(centers_hz).reshape(-1)]
        self.q_values = None if q is None else [float(v) for v in np.broadcast_to(np.asarray(q, dtype=np.float64),
                                                                                   (b.shape[0],))]
        self.register_buffer("b", torch.as_tensor(b))
        self.register_buffer("a", torch.as_tensor(a))

    @classmethod
    def from_center_q(cls, centers_hz: ArrayLike, q: ArrayLike, sample_rate: float = 20000.0,
                      gain: ArrayLike = 1.0, method: str = "bilinear",
                      features=None) -> "DigitalFilterBank":
        """Band-pass biquads with peak gain ``gain`` at ``centers_hz`` and quality factor ``q``."""
        centres = np.asarray(centers_hz, dtype=np.float64).reshape(-1)
        check_positive("centers_hz", centres, "centre frequencies are in Hz")
        q_arr = np.broadcast_to(np.asarray(q, dtype=np.float64), centres.shape)
        check_positive("q", q_arr)
        check_positive("gain", gain)
        beta, d1, d0 = dssf.s_coefficients_from_w0_q(2 * np.pi * centres, q_arr, np.asarray(gain, dtype=np.float64))
        b, a = discretize(-beta, d1, d0, sample_rate, method)
        return cls(b, a, sample_rate, features=features, centers_hz=centres, q=q_arr)

    @classmethod
    def from_coefficients(cls, b: ArrayLike, a: ArrayLike, sample_rate: float = 20000.0,
                          features: FeatureConfig | dict | None = None) -> "DigitalFilterBank":
        """A bank from explicit biquads, e.g. fitted to a circuit simulation."""
        return cls(b, a, sample_rate, features=features)

    @property
    def n_channels(self) -> int:
        return int(self.b.shape[0])

    def coefficients(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.b, self.a

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio ``[B, T]`` -> features ``[B, C, T // hop]``."""
        return feat.features(audio, self.b, self.a, self.sample_rate, self.features)

    def frequency_response(self, freqs_hz: ArrayLike) -> torch.Tensor:
        """Complex response [C, F] at ``freqs_hz`` (float64 tensor)."""
        return digital_response(freqs_hz, self.b, self.a, self.sample_rate)

    def peak_frequencies(self) -> np.ndarray:
        return peak_frequencies(self.b.cpu().numpy(), self.a.cpu().numpy(), self.sample_rate)

    def center_frequencies(self) -> np.ndarray:
        """The design centres if known, else the numerically located response peaks (Hz)."""
        return np.asarray(self.centers_hz) if self.centers_hz is not None else self.peak_frequencies()

    def to_dict(self) -> dict:
        return {"format": SPEC_FORMAT, "sample_rate": self.sample_rate, "features": self.features.to_dict(),
                "b": self.b.cpu().tolist(), "a": self.a.cpu().tolist(),
                "centers_hz": self.centers_hz, "q": self.q_values}

    @classmethod
    def from_dict(cls, spec: dict) -> "DigitalFilterBank":
        if not isinstance(spec, dict) or spec.get("format") != SPEC_FORMAT:
            got = spec.get("format") if isinstance(spec, dict) else type(spec).__name__
            raise ValueError(f"digital bank spec must have format {SPEC_FORMAT!r}, got {got!r}")
        for key in ("b", "a"):
            if key not in spec:
                raise ValueError(f"digital bank spec lacks {key!r} (the biquad coefficients, "
                                 "b [C, 3] and a [C, 2])")
        return cls(spec["b"], spec["a"], spec.get("sample_rate", 20000.0), features=spec.get("features"),
                   centers_hz=spec.get("centers_hz"), q=spec.get("q"))

    def extra_repr(self) -> str:
        return f"n_channels={self.n_channels}, sample_rate={self.sample_rate}"


__all__ = ["DigitalFilterBank", "peak_frequencies", "SPEC_FORMAT"]
