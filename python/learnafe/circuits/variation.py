"""The variation settings of a bank's circuit: kT/C noise, device mismatch, process corners.

Each is a frozen, checked section of a bank spec (``noise``, ``mismatch``, ``corners`` of
:mod:`learnafe.frontends.spec`), the one type the analog bank
(:class:`learnafe.frontends.AnalogFilterBank`) and the training configuration
(:mod:`learnafe.training.config`) hold these settings in.  The module needs neither torch
nor the front ends, so the configuration and the command line read it cheaply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from learnafe.circuits import constants
from learnafe.circuits._section import SpecSection
from learnafe.circuits.transconductance import SKY130_CORNERS

__all__ = ["NoiseConfig", "MismatchConfig", "CornerConfig", "NOISE_MODES", "MISMATCH_MODES",
           "MISMATCH_SOURCES", "CORNER_MODES", "CORNERS"]

NOISE_MODES = ("off", "train", "always")
MISMATCH_MODES = ("off", "per_batch", "fixed")
#: Where the mismatch sigmas come from: one ``sigma_i``/``sigma_c`` for every device
#: (``uniform``), or per channel from the SKY130 model files
#: (:func:`learnafe.circuits.mismatch.sky130_mismatch`, ``sky130``).
MISMATCH_SOURCES = ("uniform", "sky130")
CORNER_MODES = ("off", "per_batch", "fixed")
#: Process corners with a shipped gm/Id table (:func:`learnafe.circuits.sky130_table`), the one
#: list every corner option checks against.
CORNERS = SKY130_CORNERS


@dataclass(frozen=True)
class NoiseConfig(SpecSection):
    """kT/C thermal noise: ``mode`` off / train (training mode only) / always; audio 1.0 = ``full_scale_v``.

    Noise level drawn per batch (training mode only; evaluation always uses the nominal
    level): each training forward multiplies the noise standard deviation of every channel
    by one scale, 0 with probability ``train_p_zero``, else uniform in
    [``train_scale_min``, ``train_scale_max``].  The defaults (1, 1, 0) keep the nominal
    level and draw nothing.  A classifier trained over a range of noise levels including
    none does not depend on the noise floor of the front end it was trained with.
    """

    section = "noise"
    mode: str = "off"
    full_scale_v: float = 0.1
    train_scale_min: float = 1.0
    train_scale_max: float = 1.0
    train_p_zero: float = 0.0

    def __post_init__(self):
        if self.mode not in NOISE_MODES:
            raise ValueError(f"noise.mode must be one of {NOISE_MODES}, got {self.mode!r}")
        if not (isinstance(self.full_scale_v, (int, float)) and 0 < self.full_scale_v <= constants.VDD_V):
            raise ValueError(f"noise.full_scale_v (volts that audio amplitude 1.0 maps to) must be in "
                             f"(0, VDD={constants.VDD_V}], got {self.full_scale_v!r}")
        lo, hi = self.train_scale_min, self.train_scale_max
        if not (all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (lo, hi))
                and 0 <= lo <= hi <= 10):
            raise ValueError(f"noise.train_scale_min/train_scale_max (range of the per-batch noise scale) need "
                             f"0 <= min <= max <= 10, got {lo!r}, {hi!r} (1, 1 = nominal noise only)")
        p = self.train_p_zero
        if not (isinstance(p, (int, float)) and not isinstance(p, bool) and 0 <= p <= 1):
            raise ValueError(f"noise.train_p_zero (fraction of training batches without noise) must be in "
                             f"[0, 1], got {p!r}")

    @property
    def draws_scale(self) -> bool:
        """True when training draws a noise scale per batch (not the nominal level only)."""
        return not (self.train_scale_min == self.train_scale_max == 1.0 and self.train_p_zero == 0.0)


@dataclass(frozen=True)
class MismatchConfig(SpecSection):
    """Relative Gaussian error on currents (``sigma_i``) and capacitors (``sigma_c``).

    ``mode``: off; per_batch (fresh draw every training forward, from torch's global RNG);
    fixed (one chip, drawn from ``seed``, applied in training and evaluation).

    ``source``: ``uniform`` (``sigma_i``, ``sigma_c`` for every device) or ``sky130``: per-channel
    sigmas of the SKY130 model files (:func:`learnafe.circuits.mismatch.sky130_mismatch`: current
    mirrors' V_th mismatch times gm/Id, MIM capacitor matching), evaluated at the bank's nominal
    values; ``sigma_i``/``sigma_c`` must then be 0.  A spec written before ``source`` existed
    reads as ``uniform``, and ``to_dict`` leaves the key out for ``uniform``, so such specs
    round-trip unchanged.
    """

    section = "mismatch"
    mode: str = "off"
    sigma_i: float = 0.0
    sigma_c: float = 0.0
    seed: int = 0
    source: str = "uniform"

    def __post_init__(self):
        if self.mode not in MISMATCH_MODES:
            raise ValueError(f"mismatch.mode must be one of {MISMATCH_MODES}, got {self.mode!r}")
        for name in ("sigma_i", "sigma_c"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 <= v <= 0.2):
                raise ValueError(f"mismatch.{name} is a relative standard deviation in [0, 0.2] "
                                 f"(e.g. 0.02 for 2 %), got {v!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"mismatch.seed must be an integer, got {self.seed!r}")
        if self.source not in MISMATCH_SOURCES:
            raise ValueError(f"mismatch.source must be one of {MISMATCH_SOURCES}, got {self.source!r}")
        if self.source == "sky130" and (self.sigma_i or self.sigma_c):
            raise ValueError("mismatch.source='sky130' takes its sigmas from the SKY130 model files; "
                             "leave sigma_i and sigma_c at 0 (or use source='uniform')")

    def to_dict(self) -> dict:
        d = super().to_dict()
        if d["source"] == "uniform":
            del d["source"]
        return d


@dataclass(frozen=True)
class CornerConfig(SpecSection):
    """Global process variation: the gm/Id table (SKY130 corner) a forward pass uses.

    ``mode``: off (the bank's own ``gm_model``); per_batch (in training, every forward draws
    one of ``corners`` uniformly from torch's global RNG; evaluation uses the bank's own
    model); fixed (``corners[0]`` in training and evaluation: a chip from that corner).
    The corner changes gm at the bank's bias currents; the currents, capacitors and the
    design map (bounds, spacing) stay those of the nominal design.
    """

    section = "corners"
    mode: str = "off"
    corners: tuple = CORNERS

    def __post_init__(self):
        if self.mode not in CORNER_MODES:
            raise ValueError(f"corners.mode must be one of {CORNER_MODES}, got {self.mode!r}")
        c = self.corners
        if isinstance(c, str) or not isinstance(c, (list, tuple)) or not c or any(x not in CORNERS for x in c):
            raise ValueError(f"corners.corners must be a non-empty list of {CORNERS}, got {c!r}")
        object.__setattr__(self, "corners", tuple(c))

    def to_dict(self) -> dict:
        return {"mode": self.mode, "corners": list(self.corners)}
