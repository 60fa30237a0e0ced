"""The spike features XyloAudio 3 computes after its filter bank.

rockpool's ``AFESim`` chains the filter bank, a divisive-normalisation (DN)
spike generator and a rasteriser.  Per channel and sample (all int64):

- rectification ``r = |y|``;
- a low-pass power estimate: ``M = H >> low_pass_shift`` (before the update),
  ``H <- H - M + r`` (an averaging window of ``2^low_pass_shift`` samples);
- the threshold: adaptive ``max(M, eps) << b1 - max(M, eps) << b2`` (the
  maximum over channels with joint normalisation, rockpool's setting) or a
  fixed one;
- an integrate-and-fire neuron: ``V += r``; one spike and ``V -= threshold``
  when ``V >= threshold``;
- rastering: spike counts per ``raster_factor`` samples, clipped at
  ``max_spikes`` (the SNN core's input registers).

:func:`spike_raster` runs all of it fused in C++ (the per-sample spikes are
never stored) and equals rockpool's python spike generator and ``Raster``
(tested).  :func:`spike_features` goes from audio to counts in one pass, the
filter bank fused with the spike generator (the ``[B, C, T]`` filter output
is never formed), with the same result.  Layout: counts ``[B, C, F]``
(rockpool's raster is ``[F, C]``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from learnafe import _core
from learnafe.xylo import kernel
from learnafe.xylo.bank import XyloA3FilterBank, quantize_audio, resample_to_chip
from learnafe.xylo.design import XYLO_SAMPLE_RATE

MODES = ("divisive_norm", "threshold")


@dataclass(frozen=True)
class SpikeConfig:
    """Spike generation and raster settings (defaults: rockpool's ``AFESimExternal``)."""

    mode: str = "divisive_norm"
    rate_scale_bitshift: tuple = (6, 0)
    low_pass_bitshift: int = 12
    eps: int = 1
    fixed_threshold: int = 1 << 27
    down_sampling_factor: int = 50
    max_spikes: int = 15
    joint_normalization: bool = True

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        b1, b2 = self.rate_scale_bitshift
        if not 0 <= b2 < b1 <= 30:
            raise ValueError(f"rate_scale_bitshift (b1, b2) needs 0 <= b2 < b1 <= 30, got "
                             f"{self.rate_scale_bitshift}")
        object.__setattr__(self, "rate_scale_bitshift", (int(b1), int(b2)))
        if not 0 <= int(self.low_pass_bitshift) <= 30:
            raise ValueError(f"low_pass_bitshift must be in 0..30, got {self.low_pass_bitshift}")
        if int(self.down_sampling_factor) < 1:
            raise ValueError(f"down_sampling_factor must be >= 1, got {self.down_sampling_factor}")
        if int(self.max_spikes) < 1:
            raise ValueError(f"max_spikes must be >= 1, got {self.max_spikes}")
        if np.any(np.asarray(self.fixed_threshold) < 1):
            raise ValueError("fixed_threshold must be >= 1")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rate_scale_bitshift"] = list(self.rate_scale_bitshift)
        return d

    @property
    def frame_seconds(self) -> float:
        return self.down_sampling_factor / XYLO_SAMPLE_RATE


def _per_channel(v, C: int, name: str) -> np.ndarray:
    arr = np.asarray(v, dtype=np.int64)
    if arr.ndim > 1 or (arr.ndim == 1 and arr.size not in (1, C)):
        raise ValueError(f"SpikeConfig.{name} must be one integer or one per channel ({C}), "
                         f"got shape {arr.shape}")
    return np.ascontiguousarray(np.broadcast_to(arr.reshape(-1) if arr.ndim else arr, (C,)))


def spike_raster(y, cfg: SpikeConfig = SpikeConfig(), *, prepend_reversed: bool = True,
                 num_threads: int | None = None) -> np.ndarray:
    """Filter outputs int ``[B, C, T]`` (or ``[C, T]``) -> spike counts int64 ``[B, C, F]``.

    ``prepend_reversed`` applies the reference's trick (the spike generator
    first runs over the time-reversed signal), as rockpool's ``AFESim`` does.
    """
    arr = np.asarray(y)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"y must be the integer output of XyloA3FilterBank.filter, got {arr.dtype}")
    if arr.ndim not in (2, 3):
        raise ValueError(f"y must have shape [C, T] or [B, C, T], got {arr.shape}")
    single = arr.ndim == 2
    arr = np.ascontiguousarray(arr[None] if single else arr, dtype=np.int64)
    C = arr.shape[1]
    counts = _core.xylo_spike_raster(
        arr, *_spike_args(cfg, C), bool(prepend_reversed), 0 if num_threads is None else int(num_threads))
    out = np.ascontiguousarray(counts.transpose(0, 2, 1))
    return out[0] if single else out


def _spike_args(cfg: SpikeConfig, C: int) -> tuple:
    b1, b2 = cfg.rate_scale_bitshift
    adaptive = np.full(C, 1 if cfg.mode == "divisive_norm" else 0, dtype=np.uint8)
    return (_per_channel(b1, C, "b1"), _per_channel(b2, C, "b2"),
            _per_channel(cfg.low_pass_bitshift, C, "low_pass_bitshift"), _per_channel(cfg.eps, C, "eps"),
            _per_channel(cfg.fixed_threshold, C, "fixed_threshold"), adaptive,
            bool(cfg.joint_normalization), int(cfg.down_sampling_factor), int(cfg.max_spikes))


def spike_features(x, bank: XyloA3FilterBank | None = None, cfg: SpikeConfig = SpikeConfig(), *,
                   prepend_reversed: bool = True, overflow: str = "raise",
                   num_threads: int | None = None) -> np.ndarray:
    """14-bit integer audio ``[T]`` or ``[B, T]`` -> spike counts int64 ``[C, F]`` / ``[B, C, F]``.

    The filter bank and the spike generator fused in C++ (one pass per
    signal; the ``[B, C, T]`` filter output is never formed): equal to
    ``spike_raster(bank.filter(x, prepend_reversed=True), cfg)``, and so to
    rockpool's ``AFESim`` chain (tested).  ``overflow`` as in
    :meth:`XyloA3FilterBank.filter` (``"raise"`` or ``"report"``, the counts
    are those of the overflowing filter output then).
    """
    bank = bank or XyloA3FilterBank.default()
    if overflow not in ("raise", "report"):
        raise ValueError(f"overflow must be 'raise' or 'report', got {overflow!r}")
    xb, single = kernel.as_int_signal(x)
    counts = kernel.spike_features(bank.channels, xb, _spike_args(cfg, len(bank)), prepend_reversed,
                                   0 if num_threads is None else int(num_threads), overflow)
    out = np.ascontiguousarray(counts.transpose(0, 2, 1))
    return out[0] if single else out


class XyloA3SpikeFeatures:
    """Audio -> XyloAudio 3 spike-count rasters ``[B, C, F]`` (rockpool's ``AFESimExternal``
    path: resample to the chip rate, 14-bit quantisation, bit-exact filter bank,
    divisive normalisation spikes, raster)."""

    def __init__(self, bank: XyloA3FilterBank | None = None, config: SpikeConfig | None = None,
                 input_scale: float = 1.0):
        self.bank = bank or XyloA3FilterBank.default()
        self.config = config or SpikeConfig()
        self.input_scale = float(input_scale)

    def from_quantized(self, x, num_threads: int | None = None) -> np.ndarray:
        """14-bit audio at the chip rate -> counts (fused bank + spikes: :func:`spike_features`)."""
        return spike_features(x, self.bank, self.config, num_threads=num_threads)

    def __call__(self, audio, sample_rate: float, num_threads: int | None = None) -> np.ndarray:
        q = quantize_audio(resample_to_chip(audio, sample_rate), scale=self.input_scale)
        return self.from_quantized(q, num_threads)
