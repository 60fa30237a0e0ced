"""The circuit spec of an analog bank (``learnafe-bank/1``): parsed and checked in one place.

A spec is what :meth:`learnafe.frontends.AnalogFilterBank.to_dict` writes and a
run's ``bank.json`` holds (format in docs/ARCHITECTURE.md).  :class:`BankSpec`
is its typed, frozen form; every reader of the format (the analog front end,
the SPICE netlists and verification, XyloAudio 3 deployment, ``plot-bank``)
goes through :meth:`BankSpec.from_dict` / :meth:`BankSpec.load`, and
:meth:`BankSpec.to_dict` / :meth:`BankSpec.save` write the same JSON back (same
keys, same order).

Sections: ``channels`` (I1, I2 in A, C1, C2 in F, plus the derived f0_hz, q,
gain, power_w, area_um2, output_noise_vrms when present), ``sample_rate`` (Hz),
``gm_model`` (kept as its dict; :meth:`BankSpec.gm` builds the model),
``output_conductance`` (whether f0, Q and the bank's filters include the devices' gds
from the gm/Id table; absent: they do not),
``features`` (:class:`~learnafe.frontends.features.FeatureConfig`),
``discretization``, ``bounds``/``noise``/``mismatch``/``corners`` (:class:`Bounds` and the
variation settings of :mod:`learnafe.circuits.variation`: :class:`NoiseConfig`,
:class:`MismatchConfig`, :class:`CornerConfig`), ``min_spacing``
(smallest ratio of neighbouring centres the design map enforces; 0 or absent:
a free bank), the totals, and the learnable
state ``reference``/``phi`` that restores a trained bank exactly.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from learnafe._jsonio import read_json, write_json
from learnafe._migrate import SPEC_GM_MODEL
from learnafe.circuits import constants
from learnafe.circuits._section import SpecSection
from learnafe.circuits.discretize import METHODS
from learnafe.circuits.transconductance import load_gm_model
from learnafe.circuits.variation import CORNERS, CornerConfig, MismatchConfig, NoiseConfig
from learnafe.frontends.features import FeatureConfig

SPEC_FORMAT = "learnafe-bank/1"
UNITS = {"I1": "A", "I2": "A", "C1": "F", "C2": "F", "f0_hz": "Hz", "power": "W", "area": "um^2",
         "output_noise_vrms": "V"}
KEYS = ("I1", "I2", "C1", "C2")
#: Derived per-channel values a spec may carry after the four circuit values, in file order.
DERIVED = ("f0_hz", "q", "gain", "power_w", "area_um2", "output_noise_vrms")
#: Default minimum ratio of neighbouring centre frequencies of a new bank (each centre
#: at least 10 % above its lower neighbour); 0 switches the constraint off.
DEFAULT_MIN_SPACING = 1.1


@dataclass(frozen=True)
class Bounds(SpecSection):
    """Physical range of the learnable circuit (defaults: :mod:`learnafe.circuits.constants`)."""

    section = "bounds"
    i_min: float = constants.I_MIN_A
    i_max: float = constants.I_MAX_A
    c_min: float = constants.C_MIN_F
    c_max: float = constants.C_MAX_F
    f0_max_fraction: float = constants.F0_MAX_FRACTION_OF_FS

    def __post_init__(self):
        if not (0 < self.i_min < self.i_max and math.isfinite(self.i_max)):
            raise ValueError(f"bounds need 0 < i_min < i_max (A), got i_min={self.i_min!r}, i_max={self.i_max!r}")
        if not (0 < self.c_min < self.c_max and math.isfinite(self.c_max)):
            raise ValueError(f"bounds need 0 < c_min < c_max (F), got c_min={self.c_min!r}, c_max={self.c_max!r}")
        if not 0 < self.f0_max_fraction < 0.5:
            raise ValueError(f"bounds.f0_max_fraction must be in (0, 0.5) (below Nyquist), got {self.f0_max_fraction!r}")


def check_min_spacing(value: Any, where: str = "min_spacing") -> float:
    """A minimum centre ratio: 0 (off) or a number >= 1 (1: ascending only; 1.1: 10 % apart)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not (value == 0 or 1.0 <= value <= 4.0):
        raise ValueError(f"{where} is the smallest ratio f0[k+1]/f0[k] of neighbouring centres: 0 (off, a free "
                         f"bank) or a number in [1, 4] (1.1: each centre at least 10 % above its lower "
                         f"neighbour), got {value!r}")
    return float(value)


def _num(value: Any, where: str, lo: float, hi: float, unit: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be a number in {unit}, got {value!r}") from None
    if not math.isfinite(x) or x <= 0:
        raise ValueError(f"{where} = {value!r} {unit}: must be positive and finite "
                         "(bias currents and capacitors are magnitudes)")
    if not lo <= x <= hi:
        raise ValueError(f"{where} = {x:.3g} {unit} is outside the physical range "
                         f"[{lo:.0e}, {hi:.0e}] {unit}; check the units (SI: A and F)")
    return x


@dataclass(frozen=True)
class ChannelSpec:
    """One channel: bias currents (A), capacitors (F) and the derived values written with them."""

    index: int
    I1: float | None = None
    I2: float | None = None
    C1: float | None = None
    C2: float | None = None
    f0_hz: float | None = None
    q: float | None = None
    gain: float | None = None
    power_w: float | None = None
    area_um2: float | None = None
    output_noise_vrms: float | None = None

    @classmethod
    def from_dict(cls, index: int, d: Any, required: tuple[str, ...] = KEYS) -> "ChannelSpec":
        """One channel of ``spec['channels']``; ``required``: the keys the reader needs."""
        where = f"spec['channels'][{index}]"
        if not isinstance(d, Mapping):
            raise ValueError(f"{where} must be a dict of I1, I2 (A) and C1, C2 (F), got {type(d).__name__}")
        for key in required:
            if d.get(key) is None:
                raise ValueError(f"{where} lacks {key!r}; this reader needs {', '.join(required)} in every channel")
        circuit = {}
        for key in KEYS:
            if d.get(key) is None:
                continue
            lo, hi, unit = ((*constants.SPEC_I_RANGE_A, "A") if key[0] == "I" else (*constants.SPEC_C_RANGE_F, "F"))
            circuit[key] = _num(d[key], f"{where}[{key!r}]", lo, hi, unit)
        derived = {}
        for key in DERIVED:
            v = d.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise ValueError(f"{where}[{key!r}] must be a number, got {v!r}")
            derived[key] = v
        return cls(index=index, **circuit, **derived)

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in KEYS if getattr(self, k) is not None}
        out.update({k: getattr(self, k) for k in DERIVED if getattr(self, k) is not None})
        return out


# Top-level keys in file order, after "format" and "units".
_ORDER = ("sample_rate", "gm_model", "output_conductance", "features", "discretization", "bounds", "min_spacing", "noise", "mismatch",
          "corners", "channels",
          "total_power_w", "total_cap_area_um2", "reference", "phi", "reference_power_w", "reference_cap_area_um2")


@dataclass(frozen=True)
class BankSpec:
    """A checked ``learnafe-bank/1`` circuit spec (see the module docstring).

    Sections absent from a hand-written spec are ``None`` and keep their
    defaults where they are used; :meth:`to_dict` leaves them out again.
    """

    channels: tuple[ChannelSpec, ...]
    sample_rate: float | None = None
    gm_model: Mapping[str, Any] | None = None
    output_conductance: bool | None = None
    features: FeatureConfig | None = None
    discretization: str | None = None
    bounds: Bounds | None = None
    min_spacing: float | None = None
    noise: NoiseConfig | None = None
    mismatch: MismatchConfig | None = None
    corners: CornerConfig | None = None
    total_power_w: float | None = None
    total_cap_area_um2: float | None = None
    reference: Mapping[str, list] | None = None
    phi: Mapping[str, list] | None = None
    reference_power_w: float | None = None
    reference_cap_area_um2: float | None = None
    units: Mapping[str, str] | None = None
    format: str | None = SPEC_FORMAT
    extra: Mapping[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------- reading ---

    @classmethod
    def from_dict(cls, d: Any, *, require_format: bool = True, required: tuple[str, ...] = KEYS) -> "BankSpec":
        """Check and type a spec dict (a :class:`BankSpec` is returned as is).

        ``require_format=False`` also accepts a hand-written spec without a
        ``"format"`` key (the SPICE tools take such specs); a wrong format is
        always refused.  ``required``: the channel keys the reader needs (the
        circuit values I1, I2, C1, C2 by default; XyloAudio 3 deployment needs
        only f0_hz and q).
        """
        if isinstance(d, BankSpec):
            for ch in d.channels:
                ChannelSpec.from_dict(ch.index, ch.to_dict(), required)
            return d
        if not isinstance(d, Mapping):
            raise ValueError(f"a bank spec must be a dict ({SPEC_FORMAT}), got {type(d).__name__}")
        fmt = d.get("format")
        if fmt != SPEC_FORMAT and (require_format or fmt is not None):
            raise ValueError(f"bank spec must have format {SPEC_FORMAT!r}, got {fmt!r}; give a run's bank.json "
                             "or the output of AnalogFilterBank.to_dict()")
        channels = d.get("channels")
        if not isinstance(channels, list) or not channels:
            raise ValueError("spec['channels'] must be a non-empty list of {I1, I2, C1, C2} dicts")
        chans = tuple(ChannelSpec.from_dict(k, ch, required) for k, ch in enumerate(channels))
        sr = d.get("sample_rate")
        if sr is not None and not (isinstance(sr, (int, float)) and not isinstance(sr, bool)
                                   and math.isfinite(sr) and sr > 0):
            raise ValueError(f"spec['sample_rate'] must be a positive number of Hz, got {sr!r}")
        gm = d.get("gm_model")
        if gm is not None and not isinstance(gm, Mapping):
            raise ValueError(f"spec['gm_model'] must be a dict (GmIdTable/WeakInversion.to_dict()), "
                             f"got {type(gm).__name__}")
        oc = d.get("output_conductance")
        if oc is not None and not isinstance(oc, bool):
            raise ValueError(f"spec['output_conductance'] must be true or false, got {oc!r}")
        disc = d.get("discretization")
        if disc is not None and disc not in METHODS:
            raise ValueError(f"spec['discretization'] must be one of {METHODS}, got {disc!r}")
        ms = d.get("min_spacing")
        if ms is not None:
            check_min_spacing(ms, "spec['min_spacing']")
        n = len(chans)
        state = {}
        for name in ("reference", "phi"):
            v = d.get(name)
            if v is not None:
                if not isinstance(v, Mapping) or any(k not in v for k in KEYS):
                    raise ValueError(f"spec[{name!r}] must map each of {KEYS} to {n} values")
                for k in KEYS:
                    if not isinstance(v[k], list) or len(v[k]) != n:
                        raise ValueError(f"bank spec {name}.{k} must have {n} values (one per channel)")
            state[name] = v
        known = {"format", "units", *_ORDER}
        return cls(
            channels=chans, sample_rate=sr, gm_model=gm, output_conductance=oc,
            features=None if d.get("features") is None else FeatureConfig.from_dict(d["features"]),
            discretization=disc,
            bounds=None if d.get("bounds") is None else Bounds.from_dict(d["bounds"]),
            min_spacing=ms,
            noise=None if d.get("noise") is None else NoiseConfig.from_dict(d["noise"]),
            mismatch=None if d.get("mismatch") is None else MismatchConfig.from_dict(d["mismatch"]),
            corners=None if d.get("corners") is None else CornerConfig.from_dict(d["corners"]),
            total_power_w=d.get("total_power_w"), total_cap_area_um2=d.get("total_cap_area_um2"),
            reference=state["reference"], phi=state["phi"],
            reference_power_w=d.get("reference_power_w"), reference_cap_area_um2=d.get("reference_cap_area_um2"),
            units=d.get("units"), format=fmt,
            extra={k: v for k, v in d.items() if k not in known})

    @classmethod
    def load(cls, path: str | os.PathLike, *, require_format: bool = True,
             required: tuple[str, ...] = KEYS) -> "BankSpec":
        """Read and check a spec file (a run's ``bank.json``); options as :meth:`from_dict`."""
        return cls.from_dict(read_json(path, "bank spec", "give a run's bank.json or a learnafe-bank/1 JSON file"),
                             require_format=require_format, required=required)

    # ------------------------------------------------------------- writing ---

    def to_dict(self) -> dict:
        """The JSON form: the keys of the file this spec was read from, in the same order."""
        out: dict[str, Any] = {}
        if self.format is not None:
            out["format"] = self.format
        if self.units is not None:
            out["units"] = dict(self.units)
        for key in _ORDER:
            v = getattr(self, key)
            if v is None:
                continue
            if key == "channels":
                v = [ch.to_dict() for ch in v]
            elif isinstance(v, SpecSection):
                v = v.to_dict()
            elif isinstance(v, Mapping):
                v = dict(v)
            out[key] = v
        out.update(self.extra)
        return out

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_dict` as JSON, atomically, in the format of a run's ``bank.json``."""
        write_json(path, self.to_dict(), indent=2, allow_nan=False)

    # ------------------------------------------------------------ accessors ---

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    def values(self, key: str) -> list[float]:
        """One circuit value (``"I1"``, ``"I2"``, ``"C1"``, ``"C2"`` or a derived key) per channel."""
        if key not in KEYS and key not in DERIVED:
            raise ValueError(f"unknown channel key {key!r}; use one of {KEYS + DERIVED}")
        return [getattr(ch, key) for ch in self.channels]

    def gm(self):
        """The transconductance model of the spec; one that names none is read with the model
        such specs were written with (:data:`learnafe._migrate.SPEC_GM_MODEL`)."""
        return load_gm_model(SPEC_GM_MODEL if self.gm_model is None else dict(self.gm_model))

    @property
    def uses_output_conductance(self) -> bool:
        """Whether the spec's own f0 and Q include the devices' output conductance (a spec
        without the key was written before it existed and does not)."""
        return bool(self.output_conductance) and self.gm().has_gds


__all__ = ["BankSpec", "ChannelSpec", "Bounds", "NoiseConfig", "MismatchConfig", "CornerConfig", "SPEC_FORMAT",
           "UNITS", "KEYS", "DERIVED", "DEFAULT_MIN_SPACING", "CORNERS", "check_min_spacing"]
