"""The analog bank's less often changed settings as one frozen section, :class:`BankOptions`.

:class:`~learnafe.frontends.analog.AnalogFilterBank` takes them as ``options=BankOptions(...)``
(or a dict), as keywords of the constructor (``noise=..., min_spacing=...``), or both (a
keyword replaces that field of ``options``).  Every field is checked here, once, with an
error naming it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

from learnafe.circuits.discretize import METHODS
from learnafe.frontends.spec import (
    DEFAULT_MIN_SPACING,
    Bounds,
    CornerConfig,
    MismatchConfig,
    NoiseConfig,
    check_min_spacing,
)

__all__ = ["BankOptions"]


@dataclass(frozen=True)
class BankOptions:
    """Discretisation, bounds, spacing, device model details and training-time perturbations."""

    #: ``"bilinear"`` (pre-warped at w0), ``"matched_z"``, ``"impulse_invariance"`` or
    #: ``"magnitude_matched"`` (:mod:`learnafe.circuits.discretize`).
    discretization: str = "bilinear"
    #: :class:`~learnafe.frontends.spec.Bounds` or dict (None: the defaults).
    bounds: Bounds | dict | None = None
    #: :class:`~learnafe.frontends.spec.NoiseConfig` or dict (None: off).
    noise: NoiseConfig | dict | None = None
    #: :class:`~learnafe.frontends.spec.MismatchConfig` or dict (None: off).
    mismatch: MismatchConfig | dict | None = None
    #: Smallest ratio of neighbouring centres the design map enforces (1.1: 10 % apart; 1:
    #: ascending only; 0: off, a free bank).
    min_spacing: float = DEFAULT_MIN_SPACING
    #: :class:`~learnafe.frontends.spec.CornerConfig` or dict (None: off).
    corners: CornerConfig | dict | None = None
    #: Whether the devices' output conductance (gds of the gm/Id table) enters the filters.
    output_conductance: bool = True

    def __post_init__(self):
        if self.discretization not in METHODS:
            raise ValueError(f"discretization must be one of {METHODS}, got {self.discretization!r}")
        object.__setattr__(self, "bounds", Bounds.from_dict(self.bounds))
        object.__setattr__(self, "noise", NoiseConfig.from_dict(self.noise))
        object.__setattr__(self, "mismatch", MismatchConfig.from_dict(self.mismatch))
        object.__setattr__(self, "min_spacing", check_min_spacing(self.min_spacing))
        object.__setattr__(self, "corners", CornerConfig.from_dict(self.corners))
        if not isinstance(self.output_conductance, bool):
            raise ValueError(f"output_conductance must be True or False, got {self.output_conductance!r}")

    @classmethod
    def of(cls, options: BankOptions | Mapping[str, Any] | None, keywords: Mapping[str, Any]) -> BankOptions:
        """``options`` (an instance, a dict of fields or None) with the fields in ``keywords`` replaced;
        an unknown name is refused with the list of known ones."""
        known = [f.name for f in fields(cls)]
        if options is not None and not isinstance(options, (cls, Mapping)):
            raise ValueError(f"options must be a BankOptions or a dict of its fields {known}, "
                             f"got {type(options).__name__}")
        for name in (*(options if isinstance(options, Mapping) else ()), *keywords):
            if name not in known:
                raise TypeError(f"AnalogFilterBank got an unexpected option {name!r}; the options are {known}")
        base = options if isinstance(options, cls) else cls(**dict(options or {}))
        return replace(base, **keywords) if keywords else base
