"""Feature extraction shared by the front ends: fused filter + envelope op, then log and normalisation.

Configuration (stored in a bank spec under ``"features"``):

* ``hop`` -- frame hop in samples (200 at 20 kHz = 10 ms frames);
* ``tau`` -- time constant (s) of the first-order envelope low-pass;
* ``rectify`` -- ``"abs"`` or ``"square"``;
* ``log`` -- log compression ``log(envelope + log_eps)``;
* ``normalize`` -- ``"none"`` or ``"instance"``: per example and channel, subtract
  the mean over frames and divide by the standard deviation (+ ``norm_eps``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from learnafe import ops
from learnafe._tracing import is_tracing
from learnafe.circuits._section import SpecSection
from learnafe.ops.checks import first_non_finite

if TYPE_CHECKING:
    import torch

RECTIFY = ("abs", "square")
NORMALIZE = ("none", "instance")


@dataclass(frozen=True)
class FeatureConfig(SpecSection):
    section = "features"

    hop: int = 200
    tau: float = 0.01
    rectify: str = "abs"
    log: bool = True
    log_eps: float = 1e-5
    normalize: str = "instance"
    norm_eps: float = 1e-5

    def __post_init__(self):
        if isinstance(self.hop, bool) or not isinstance(self.hop, int) or self.hop < 1:
            raise ValueError(f"features.hop must be a positive integer number of samples, got {self.hop!r}")
        if not (isinstance(self.tau, (int, float)) and self.tau > 0):
            raise ValueError(f"features.tau must be a positive time constant in seconds, got {self.tau!r}")
        if self.rectify not in RECTIFY:
            raise ValueError(f"features.rectify must be one of {RECTIFY}, got {self.rectify!r}")
        if not isinstance(self.log, bool):
            raise ValueError(f"features.log must be true or false, got {self.log!r}")
        if not self.log_eps > 0:
            raise ValueError(f"features.log_eps must be > 0 (floor inside the log), got {self.log_eps!r}")
        if self.normalize not in NORMALIZE:
            raise ValueError(f"features.normalize must be one of {NORMALIZE}, got {self.normalize!r}")
        if not self.norm_eps > 0:
            raise ValueError(f"features.norm_eps must be > 0, got {self.norm_eps!r}")


def check_audio(x: torch.Tensor, name: str = "audio") -> tuple[torch.Tensor, bool]:
    """``x`` as a ``[B, T]`` floating tensor (``[T]`` gets a batch axis); returns (x2, was_1d)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch tensor [B, T] (use torch.from_numpy), got {type(x).__name__}")
    if x.dim() not in (1, 2):
        raise ValueError(f"{name} must have shape [B, T] or [T], got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be float32 or float64, got {x.dtype}")
    # Data-dependent: skipped while torch.compile/torch.export trace; the
    # filter-bank operator checks its input inside (docs/ops.md).
    if not is_tracing(x) and first_non_finite(x) is not None:
        raise ValueError(f"{name} contains NaN or inf samples")
    return (x.unsqueeze(0), True) if x.dim() == 1 else (x, False)


def envelopes(x: torch.Tensor, b: torch.Tensor, a: torch.Tensor, sample_rate: float, cfg: FeatureConfig,
              noise_std: torch.Tensor | None = None, seed: int | None = None,
              noise_batch: int | None = None) -> torch.Tensor:
    """Raw envelopes ``[B, C, F]`` through :func:`learnafe.ops.filterbank_envelope`.

    The coefficients go to the op in float64 whatever the audio dtype: rounding them to
    float32 would move the poles of low, narrow channels (radius 1 - 1e-4 and closer).
    ``noise_std`` (``[C]`` or ``[B, C]``, optional) adds white Gaussian input-referred noise per
    channel inside the op (``seed``: None draws it from torch's generator; ``noise_batch``: the
    op's keying of batch items, None for each item its own).
    """
    if noise_std is not None:
        noise_std = noise_std.to(torch.float64)
    return ops.filterbank_envelope(x, b.to(torch.float64), a.to(torch.float64), hop=cfg.hop, tau=cfg.tau,
                                   sample_rate=float(sample_rate), rectify=cfg.rectify, noise_std=noise_std,
                                   seed=seed, noise_batch=noise_batch)


def post_process(env: torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """Log compression and per-channel normalisation of envelopes ``[B, C, F]``."""
    out = torch.log(env + cfg.log_eps) if cfg.log else env
    if cfg.normalize == "instance":
        mean = out.mean(dim=-1, keepdim=True)
        std = out.std(dim=-1, keepdim=True, unbiased=False)
        out = (out - mean) / (std + cfg.norm_eps)
    return out


def features(x: torch.Tensor, b: torch.Tensor, a: torch.Tensor, sample_rate: float,
             cfg: FeatureConfig) -> torch.Tensor:
    """Audio ``[B, T]`` (or ``[T]``) -> features ``[B, C, F]`` (or ``[C, F]``)."""
    x2, was_1d = check_audio(x)
    out = post_process(envelopes(x2, b, a, sample_rate, cfg), cfg)
    return out[0] if was_1d else out
