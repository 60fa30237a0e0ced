"""Transconductance models: bias current -> gm of the two filter transistors.

The DSSF-BPF has two transistor roles: ``m1`` (the source follower, carrying
I1, gives gm1) and ``m2`` (the feedback device, carrying I2, gives gm2).  A
model maps currents to transconductances, differentiably for torch tensors,
and back (for design).  Two models:

* :class:`WeakInversion` -- the textbook ``gm = I / (n U_T)`` with one slope
  factor for both devices;
* :class:`GmIdTable` -- a per-device gm/Id table in the ``learnafe-gmid/1`` JSON
  format (docs/ARCHITECTURE.md, written by ``learnafe spice characterize``),
  interpolated linearly in log(I).  With it the ideal model follows the real
  devices, whose gm/Id falls at both ends of the weak-inversion range.

Both serialise to a small dict (the ``gm_model`` entry of a bank spec).

Characterised SKY130 tables of the filter's devices ship with the package
(``learnafe/circuits/data/sky130_gmid_<corner>.json``, corners tt, ss, ff, made
by ``learnafe spice characterize``; each file records its command, device sizes,
simulator and model-file fingerprint): :func:`sky130_table` loads one, and
:func:`load_gm_model` accepts their names ``"sky130-tt"``, ``"sky130-ss"``,
``"sky130-ff"``.

The tt table is the default model (:data:`DEFAULT_GM_MODEL`, ``load_gm_model(None)``) of
design, training, the conventional baseline and the cost model: the bank is trained on the
circuit that is built.  A bank spec records the model it uses.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from learnafe._tracing import is_tracing
from learnafe.circuits import constants
from learnafe.circuits._array import as_array, check_positive, namespace, to_numpy

DEVICES = ("m1", "m2")
GMID_FORMAT = "learnafe-gmid/1"
#: Process corners of the shipped SKY130 gm/Id tables.
SKY130_CORNERS = ("tt", "ss", "ff")
_DATA_DIR = Path(__file__).resolve().parent / "data"


def sky130_table_path(corner: str = "tt") -> Path:
    """Path of the shipped SKY130 gm/Id table of ``corner`` (tt, ss or ff)."""
    if corner not in SKY130_CORNERS:
        raise ValueError(f"corner={corner!r}: the shipped SKY130 gm/Id tables are "
                         f"{', '.join(SKY130_CORNERS)}; characterise other corners with "
                         "`learnafe spice characterize --corner ...`")
    path = _DATA_DIR / f"sky130_gmid_{corner}.json"
    if not path.is_file():
        raise FileNotFoundError(f"shipped gm/Id table {path.name} is missing from the installed "
                                "package; reinstall learnafe")
    return path


def _shipped_corner(name) -> str | None:
    """``"tt"`` for ``"sky130-tt"`` (a shipped table's name), else None."""
    if isinstance(name, str) and name.startswith("sky130-") and not Path(name).is_file():
        return name[len("sky130-"):]
    return None


class TransconductanceModel:
    """Base class: ``gm(device, current)`` and its inverse ``current(device, gm)``."""

    kind = "base"

    def gm(self, device: str, current):
        raise NotImplementedError

    def current(self, device: str, gm) -> np.ndarray:
        raise NotImplementedError

    def gm1(self, i1):
        return self.gm("m1", i1)

    def gm2(self, i2):
        return self.gm("m2", i2)

    def gds(self, device: str, current):
        """Output conductance (S) at ``current``; zero unless the model knows it (a gm/Id
        table with ``gds_over_id``)."""
        _check_device(device)
        return current * 0.0

    @property
    def has_gds(self) -> bool:
        """Whether :meth:`gds` comes from data (False: it is zero)."""
        return False

    def current_range(self, device: str) -> tuple[float, float]:
        """Currents (A) over which the model is valid."""
        return (0.0, float("inf"))

    def to_dict(self) -> dict:
        raise NotImplementedError

    @staticmethod
    def from_dict(d: dict) -> "TransconductanceModel":
        """Rebuild a model from its ``to_dict()`` (the ``gm_model`` entry of a bank spec)."""
        if not isinstance(d, dict) or "kind" not in d:
            raise ValueError("gm_model must be a dict with a 'kind' key ('weak_inversion' or 'gmid_table')")
        if d["kind"] == WeakInversion.kind:
            return WeakInversion(n=d["n"], temperature_k=d.get("temperature_k", constants.TEMPERATURE_K))
        if d["kind"] == GmIdTable.kind:
            if "table" in d:
                return GmIdTable(d["table"], source_path=d.get("path"))
            if "path" in d:
                return GmIdTable.load(d["path"])
            raise ValueError("gm_model of kind 'gmid_table' needs 'table' (the learnafe-gmid/1 dict) or 'path'")
        raise ValueError(f"gm_model kind {d['kind']!r} unknown; use 'weak_inversion' or 'gmid_table'")


def _check_device(device: str) -> None:
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES} (m1 carries I1, m2 carries I2), got {device!r}")


class WeakInversion(TransconductanceModel):
    """``gm = I / (n U_T)`` for both devices (subthreshold saturation, bulk tied to source).

    Args:
        n: slope factor, default :data:`constants.SLOPE_FACTOR_N` (SKY130, extracted
            from SPICE; see the constant's comment).
        temperature_k: temperature for U_T = kT/q.
    """

    kind = "weak_inversion"

    def __init__(self, n: float = constants.SLOPE_FACTOR_N, temperature_k: float = constants.TEMPERATURE_K):
        n = float(n)
        if not (np.isfinite(n) and 1.0 <= n <= 3.0):
            raise ValueError(f"slope factor n must be in [1, 3] (typical 1.2-1.5), got {n!r}")
        self.n = n
        self.temperature_k = float(temperature_k)
        self.u_t = constants.thermal_voltage(self.temperature_k)

    def gm(self, device: str, current):
        _check_device(device)
        return current / (self.n * self.u_t)

    def current(self, device: str, gm) -> np.ndarray:
        _check_device(device)
        check_positive("gm", gm)
        return to_numpy(gm) * (self.n * self.u_t)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "n": self.n, "temperature_k": self.temperature_k}

    def __repr__(self) -> str:
        return f"WeakInversion(n={self.n}, temperature_k={self.temperature_k})"


class GmIdTable(TransconductanceModel):
    """gm from a per-device gm/Id table, interpolated linearly in log(I).

    Args:
        table: a ``learnafe-gmid/1`` dict (see docs/ARCHITECTURE.md) with devices
            ``m1`` and ``m2``, each ``id_a`` (ascending, > 0) and ``gm_over_id`` (1/V).
        source_path: where the table was read from (kept in ``to_dict`` for provenance).

    Currents outside a device's table are refused (no extrapolation).
    """

    kind = "gmid_table"

    def __init__(self, table: dict, source_path: str | None = None):
        if not isinstance(table, dict) or table.get("format") != GMID_FORMAT:
            got = table.get("format") if isinstance(table, dict) else type(table).__name__
            raise ValueError(f"gm/Id table must be a dict with format {GMID_FORMAT!r}, got {got!r}")
        devices = table.get("devices")
        if not isinstance(devices, dict) or any(d not in devices for d in DEVICES):
            raise ValueError(f"gm/Id table needs 'devices' with entries {DEVICES}")
        self.table = json.loads(json.dumps(table))  # private deep copy, JSON-clean
        self.source_path = None if source_path is None else str(source_path)
        self._log_i: dict[str, np.ndarray] = {}
        self._gmid: dict[str, np.ndarray] = {}
        for dev in DEVICES:
            entry = devices[dev]
            i = np.asarray(entry.get("id_a", []), dtype=np.float64)
            g = np.asarray(entry.get("gm_over_id", []), dtype=np.float64)
            if i.ndim != 1 or i.shape != g.shape or i.size < 2:
                raise ValueError(f"gm/Id table device {dev}: id_a and gm_over_id must be equal-length lists (>= 2 points)")
            if not (np.all(np.isfinite(i)) and np.all(i > 0) and np.all(np.diff(i) > 0)):
                raise ValueError(f"gm/Id table device {dev}: id_a must be > 0 and strictly ascending")
            if not (np.all(np.isfinite(g)) and np.all(g > 0)):
                raise ValueError(f"gm/Id table device {dev}: gm_over_id must be finite and > 0")
            if np.any(np.diff(i * g) <= 0):
                raise ValueError(f"gm/Id table device {dev}: gm = Id * (gm/Id) must increase with Id "
                                 "(check the sweep: the device left saturation or the data is noisy)")
            self._log_i[dev] = np.log(i)
            self._gmid[dev] = g
        # the table's current range as Python floats (no array access on the hot path, none while tracing)
        self._range = {dev: (float(np.exp(li[0])), float(np.exp(li[-1]))) for dev, li in self._log_i.items()}
        self._gdsid: dict[str, np.ndarray] = {}
        if all("gds_over_id" in devices[dev] for dev in DEVICES):
            for dev in DEVICES:
                r = np.asarray(devices[dev]["gds_over_id"], dtype=np.float64)
                if r.shape != self._gmid[dev].shape or not np.all(np.isfinite(r) & (r >= 0)):
                    raise ValueError(f"gm/Id table device {dev}: gds_over_id must be finite, >= 0 and "
                                     "as long as id_a")
                self._gdsid[dev] = r

    @classmethod
    def load(cls, path) -> "GmIdTable":
        """Read a ``learnafe-gmid/1`` JSON file (or a shipped table by name, ``"sky130-tt"``)."""
        corner = _shipped_corner(path)
        if corner is not None:
            return sky130_table(corner)
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"gm/Id table {path} not found (write one with `learnafe spice characterize`)")
        with open(path) as f:
            return cls(json.load(f), source_path=str(path))

    def current_range(self, device: str) -> tuple[float, float]:
        _check_device(device)
        return self._range[device]

    def gm_over_id(self, device: str, current):
        """gm/Id (1/V) at ``current`` (A), linear in log(I) between table points."""
        return self._interp(device, current, self._gmid[device])

    def _interp(self, device: str, current, values: np.ndarray):
        """``values`` of a device's table at ``current``, linear in log(I) (NumPy or torch)."""
        _check_device(device)
        lo, hi = self.current_range(device)
        xp = namespace(current)
        if xp is not np and is_tracing(current):
            pass  # no data while tracing: the eager call (same code, real tensors) checks the range
        elif np.any(~np.isfinite(v := to_numpy(current))) or np.any(v < lo * (1 - 1e-12)) \
                or np.any(v > hi * (1 + 1e-12)):
            bad = v[~(np.isfinite(v) & (v >= lo * (1 - 1e-12)) & (v <= hi * (1 + 1e-12)))].ravel()[0]
            raise ValueError(f"current {bad!r} A for device {device} is outside its gm/Id table "
                             f"[{lo:.3g}, {hi:.3g}] A; characterise a wider range or keep the bias inside it")
        xs = as_array(self._log_i[device], like=current)
        ys = as_array(values, like=current)
        xq = xp.log(current)
        if xp is np:
            return np.interp(xq, xs, ys)
        import torch

        flat = xq.reshape(-1)
        idx = torch.searchsorted(xs.detach(), flat.detach()).clamp(1, xs.numel() - 1)
        x0, x1 = xs[idx - 1], xs[idx]
        y0, y1 = ys[idx - 1], ys[idx]
        t = (flat - x0) / (x1 - x0)
        return (y0 + t * (y1 - y0)).reshape(xq.shape)

    def gm(self, device: str, current):
        return current * self.gm_over_id(device, current)

    @property
    def has_gds(self) -> bool:
        return bool(self._gdsid)

    def gds(self, device: str, current):
        """Output conductance (S): ``current * gds/Id``, linear in log(I) like gm/Id (NumPy or
        torch, differentiable); zero when the table has no ``gds_over_id``."""
        _check_device(device)
        if not self._gdsid:
            return current * 0.0
        return current * self._interp(device, current, self._gdsid[device])

    def current(self, device: str, gm) -> np.ndarray:
        """Invert gm(I) by bisection in log(I) (gm is increasing, checked at load)."""
        _check_device(device)
        check_positive("gm", gm)
        target = to_numpy(gm)
        li = self._log_i[device]
        g = self._gmid[device]
        gm_lo, gm_hi = np.exp(li[0]) * g[0], np.exp(li[-1]) * g[-1]
        if np.any(target < gm_lo * (1 - 1e-12)) or np.any(target > gm_hi * (1 + 1e-12)):
            raise ValueError(f"gm {target.min():.3g}..{target.max():.3g} S for device {device} is outside what its "
                             f"gm/Id table reaches ({gm_lo:.3g}..{gm_hi:.3g} S); change the capacitor or the table")
        lo = np.full(target.shape, li[0])
        hi = np.full(target.shape, li[-1])
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            above = np.exp(mid) * np.interp(mid, li, g) > target
            hi = np.where(above, mid, hi)
            lo = np.where(above, lo, mid)
        return np.exp(0.5 * (lo + hi))

    def to_dict(self) -> dict:
        d = {"kind": self.kind, "table": json.loads(json.dumps(self.table))}
        if self.source_path is not None:
            d["path"] = self.source_path
        return d

    def __repr__(self) -> str:
        ranges = ", ".join(f"{d}: {self.current_range(d)[0]:.3g}..{self.current_range(d)[1]:.3g} A" for d in DEVICES)
        return f"GmIdTable({ranges})"


def sky130_table(corner: str = "tt") -> GmIdTable:
    """The shipped, characterised SKY130 gm/Id table of the filter's devices at ``corner``.

    M1 ``pfet_01v8`` W=8 L=2 um (bulk = source) and M2 ``nfet_01v8`` W=1 L=4 um, 27 degC,
    from about 1 pA (the devices' junction-leakage floor) to 1 uA.  ``to_dict()`` keeps
    the name ``"sky130-<corner>"`` as its path, so a bank spec names the table it used.
    The file is read once per process; every call returns the same (read-only) model.
    """
    sky130_table_path(corner)  # checks the corner name and that the file is installed
    return _sky130_table_cached(corner)


@lru_cache(maxsize=None)
def _sky130_table_cached(corner: str) -> GmIdTable:
    with open(sky130_table_path(corner)) as f:
        table = json.load(f)
    return GmIdTable(table, source_path=f"sky130-{corner}")


#: The default transconductance model of design, training, the conventional baseline and
#: the cost model: the shipped SKY130 tt table of the circuit that is built
#: (``load_gm_model(None)``).  ``"weak_inversion"`` selects the textbook model.
DEFAULT_GM_MODEL = "sky130-tt"
#: Names :func:`load_gm_model` accepts for the textbook weak-inversion model.
WEAK_INVERSION_NAMES = ("weak_inversion", "weak-inversion")


def default_gm_model() -> TransconductanceModel:
    """The default model (:data:`DEFAULT_GM_MODEL`, the shipped SKY130 tt gm/Id table)."""
    return load_gm_model(DEFAULT_GM_MODEL)


def load_gm_model(spec) -> TransconductanceModel:
    """A model from a model instance, a ``gm_model`` dict, a gm/Id JSON path, a shipped
    table's name (``"sky130-tt"``, ``"sky130-ss"``, ``"sky130-ff"``), ``"weak_inversion"``
    (the textbook model with the default slope factor), or None (the default,
    :data:`DEFAULT_GM_MODEL`: the shipped SKY130 tt table)."""
    if spec is None:
        return sky130_table("tt")
    if isinstance(spec, str) and spec in WEAK_INVERSION_NAMES:
        return WeakInversion()
    if isinstance(spec, TransconductanceModel):
        return spec
    if isinstance(spec, dict):
        if spec.get("format") == GMID_FORMAT:
            return GmIdTable(spec)
        return TransconductanceModel.from_dict(spec)
    if isinstance(spec, (str, Path)):
        return GmIdTable.load(spec)
    raise ValueError(f"gm_model must be a TransconductanceModel, a dict, a gm/Id JSON path, 'sky130-tt'/'-ss'/'-ff', "
                     f"'weak_inversion' or None (the default, {DEFAULT_GM_MODEL}), got {type(spec).__name__}")


__all__ = ["TransconductanceModel", "WeakInversion", "GmIdTable", "load_gm_model", "sky130_table",
           "default_gm_model", "DEFAULT_GM_MODEL", "WEAK_INVERSION_NAMES",
           "sky130_table_path", "SKY130_CORNERS", "DEVICES", "GMID_FORMAT"]
