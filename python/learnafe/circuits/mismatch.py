"""Local (random) mismatch of a channel's bias currents and capacitors in SKY130.

:func:`sky130_mismatch` gives the relative 1-sigma errors of I1, I2, C1, C2 of each
channel, from the mismatch parameters of the SKY130 model files, read by
``learnafe spice mismatch`` (:mod:`learnafe.spice.mismatch`) into the shipped data
file ``learnafe/circuits/data/sky130_mismatch.json`` (with an ngspice Monte Carlo
check of every number).  Sources:

- **MOSFET V_th** (``models_global.spice``: ``sw_mm_vth0_sky130_fd_pr__pfet_01v8`` =
  5.856 mV um, ``sw_mm_vth0_sky130_fd_pr__nfet_01v8`` = 3.356 mV um; applied per device
  as ``AGAUSS(0,1,1) / sqrt(W L)`` in the ``delvto`` of each subcircuit of
  ``models_fet.spice``, the nfet's times its geometry factor, 1.236 at W=1 L=4):
  sigma_Vth = 1.46 mV for M1 (pfet W=8 L=2), 2.07 mV for M2 (nfet W=1 L=4).
- **Bias currents.** The netlist biases the filter with ideal sources; on silicon each
  bias current is a copy of a reference by a 1:1 current mirror.  Assumption (not in
  the model files): the mirror devices have the type and size of the filter device
  the current feeds (I1: M1, I2: M2).  In weak inversion a mirror's output error is
  ``(gm/Id) dVth`` with ``dVth`` the difference of two devices, so
  ``sigma_I / I = sqrt(2) sigma_Vth gm/Id(I)``, gm/Id from the shipped gm/Id table at
  the channel's current (about 6 % for I1 and 7.5 % for I2 at 100 pA).  The filter
  devices' own V_th mismatch does not move the filter: their currents are forced and
  gm = Id gm/Id does not depend on V_th.
- **MIM capacitors** (``sw_mm_cmim`` = 4.7e-3 um in ``models_global.spice``, applied
  in ``carea`` of ``sky130_fd_pr__cap_mim_m3_1`` as ``sw_mm_cmim / sqrt((W+dw)(L+dw))``):
  ``sigma_C / C = sw_mm_cmim sqrt(ca / C)`` with ``ca`` = 2 fF/um^2: 0.021 % at 1 pF,
  0.094 % at 50 fF.  Much smaller than the current mismatch.

Global process variation (all devices of a die together) is the corners
(``learnafe.circuits.sky130_table("ss")`` etc.), not this.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from learnafe.circuits._array import check_positive
from learnafe.circuits.transconductance import sky130_table

MISMATCH_FORMAT = "learnafe-mismatch/1"
_DATA = Path(__file__).resolve().parent / "data" / "sky130_mismatch.json"


@lru_cache(maxsize=1)
def sky130_mismatch_data() -> dict:
    """The shipped ``learnafe-mismatch/1`` data (parameters, sources, Monte Carlo check)."""
    if not _DATA.is_file():
        raise FileNotFoundError(f"shipped mismatch data {_DATA.name} is missing from the installed "
                                "package; reinstall learnafe")
    data = json.loads(_DATA.read_text())
    if data.get("format") != MISMATCH_FORMAT:
        raise ValueError(f"{_DATA.name} has format {data.get('format')!r}, expected {MISMATCH_FORMAT!r}")
    return data


def sky130_mismatch(i1, i2, c1, c2, *, corner: str = "tt", mirror_pair: bool = True) -> dict:
    """Relative 1-sigma mismatch of each channel's I1, I2, C1, C2 in SKY130.

    Args:
        i1, i2: bias currents (A), arrays of the channels (or scalars).
        c1, c2: capacitors (F), same shape (MIM capacitors).
        corner: gm/Id table used for gm/Id at the bias current (tt, ss, ff).
        mirror_pair: each current is the copy of a reference by a 1:1 mirror (the
            difference of two devices, factor sqrt(2)); False: one device's V_th
            spread at a fixed gate voltage.

    Returns:
        ``{"sigma_I1", "sigma_I2", "sigma_C1", "sigma_C2"}``: float64 arrays of relative
        standard deviations (0.05 = 5 %), and ``"sources"``: where each number comes from.
    """
    arrs = {}
    for name, v, unit in (("i1", i1, "A"), ("i2", i2, "A"), ("c1", c1, "F"), ("c2", c2, "F")):
        a = np.asarray(v.detach().cpu() if hasattr(v, "detach") else v, dtype=np.float64)
        check_positive(name, a, f"in {unit}")
        arrs[name] = a
    data = sky130_mismatch_data()
    table = sky130_table(corner)
    factor = math.sqrt(2.0) if mirror_pair else 1.0
    out = {}
    for key, dev in (("I1", "m1"), ("I2", "m2")):
        i = arrs[key.lower()]
        lo, hi = table.current_range(dev)
        gm_id = table.gm_over_id(dev, np.clip(i, lo, hi))
        out[f"sigma_{key}"] = factor * data["devices"][dev]["sigma_vth_v"] * gm_id
    mim = data["mim"]
    for key in ("C1", "C2"):
        out[f"sigma_{key}"] = mim["matching_constant_um"] * np.sqrt(mim["ca_f_per_um2"] / arrs[key.lower()])
    m1, m2 = data["devices"]["m1"], data["devices"]["m2"]
    out["sources"] = {
        "I1": f"sqrt(2) * sigma_Vth(M1 {m1['model']} W={m1['W_um']:g} L={m1['L_um']:g}) * gm/Id(I1); "
              f"sigma_Vth = {m1['sigma_vth_v'] * 1e3:.3f} mV from {m1['source']['parameter']} "
              f"({m1['source']['file']}) / sqrt(W L); gm/Id: sky130-{corner} table; "
              "1:1 mirror of M1-sized devices assumed",
        "I2": f"sqrt(2) * sigma_Vth(M2 {m2['model']} W={m2['W_um']:g} L={m2['L_um']:g}) * gm/Id(I2); "
              f"sigma_Vth = {m2['sigma_vth_v'] * 1e3:.3f} mV from {m2['source']['parameter']} "
              f"({m2['source']['file']}) * geometry factor {m2['geometry_factor']:.4f} / sqrt(W L); "
              f"gm/Id: sky130-{corner} table; 1:1 mirror of M2-sized devices assumed",
        "C": f"{mim['formula']}; sw_mm_cmim = {mim['matching_constant_um']:g} um "
             f"({mim['source']['file']}), ca = {mim['ca_f_per_um2'] * 1e15:g} fF/um^2 "
             "(parameters_cap_nom.spice)",
        "data_file": _DATA.name, "command": data.get("command")}
    if not mirror_pair:
        for k in ("I1", "I2"):
            out["sources"][k] = out["sources"][k].replace("sqrt(2) * ", "").replace(
                "1:1 mirror of", "one device of").replace("-sized devices assumed", " size")
    return out


__all__ = ["sky130_mismatch", "sky130_mismatch_data", "MISMATCH_FORMAT"]
