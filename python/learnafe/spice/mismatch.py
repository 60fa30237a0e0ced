"""Local mismatch of the filter's devices, read from the SKY130 model files and checked by Monte Carlo.

The SKY130 models carry their own mismatch ("Matching constants" in
``models_global.spice``), switched on by ``MC_MM_SWITCH=1``:

- MOSFET threshold voltage: each ``sky130_fd_pr__{n,p}fet_01v8`` subcircuit
  (``models_fet.spice``) adds ``sw_mm_vth0_<device> * AGAUSS(0,1,1) / sqrt(l w mult)``
  (W, L in um) to its ``delvto``; for ``nfet_01v8`` that sum is then multiplied by
  the subcircuit's geometry factors.  :func:`extract` evaluates the device's own
  ``delvto`` expression at the filter's sizes with the random draw at 1 and at 0:
  the difference is the per-device 1-sigma V_th shift.
- MIM capacitor (``sky130_fd_pr__cap_mim_m3_1``, ``models_capacitors.spice``):
  ``carea = ca (W+dw)(L+dw) (1 + AGAUSS(0,1,1) sw_mm_cmim / sqrt((W+dw)(L+dw) mult))``,
  so ``sigma_C / C = sw_mm_cmim / sqrt((W+dw)(L+dw)) = sw_mm_cmim sqrt(ca / C)``.

:func:`monte_carlo` checks these numbers with ngspice itself: one netlist of
``n`` instances of each device with the mismatch switched on (every instance
draws its own sample), the spread of their weak-inversion drain currents at a
common gate voltage divided by gm/Id (= sigma of V_th), and the spread of
``n`` MIM capacitors from an ``.ac`` current.

``learnafe spice mismatch --out FILE`` writes both into the data file
(``learnafe-mismatch/1``) that :func:`learnafe.circuits.mismatch.sky130_mismatch`
reads; the package ships ``learnafe/circuits/data/sky130_mismatch.json``.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from learnafe._jsonio import write_json
from learnafe.circuits.transconductance import SKY130_CORNERS, sky130_table
from learnafe.spice.locate import find_ngspice, ngspice_version, sky130_models_dir
from learnafe.spice.models import MIM_CAP, NFET, PFET, mim_parameters, model_files, model_fingerprint
from learnafe.spice.netlist import M1_L_UM, M1_W_UM, M2_L_UM, M2_W_UM
from learnafe.spice.runner import run_netlist

log = logging.getLogger(__name__)

FORMAT = "learnafe-mismatch/1"
_ASSIGN = re.compile(r"(\w+)\s*=\s*(\{[^{}]*\}|'[^']*'|[^\s;]+)")


def _global_matching_constants(text: str) -> dict[str, tuple[float, str]]:
    """``sw_mm_*`` numbers of ``models_global.spice`` with their comment."""
    out = {}
    for m in re.finditer(r"^\+\s*(sw_mm_\w+)\s*=\s*([0-9.eE+-]+)\s*;?\s*(.*)$", text, re.M):
        out[m.group(1)] = (float(m.group(2)), m.group(3).strip())
    return out


def _subckt_assignments(text: str, name: str) -> tuple[dict[str, str], int]:
    """Parameter assignments (``.param`` and ``+`` lines) of a subcircuit up to its first
    ``.model`` card, and the line number of its ``.subckt`` line."""
    m = re.search(rf"^\.subckt\s+{re.escape(name)}\s", text, re.M | re.I)
    if not m:
        raise RuntimeError(f"subcircuit {name} not found in the model file")
    line_no = text.count("\n", 0, m.start()) + 1
    body = text[m.start():]
    stop = re.search(r"^\.(model|ends)\b", body, re.M | re.I)
    body = body[:stop.start()] if stop else body
    assigns: dict[str, str] = {}
    for line in body.splitlines()[1:]:
        s = line.strip()
        if not s or s.startswith("*"):
            continue
        if s.lower().startswith(".param"):
            s = s[len(".param"):]
        elif s.startswith("+"):
            s = s[1:]
        else:
            continue  # the device line itself
        for key, value in _ASSIGN.findall(s):
            assigns[key] = value.strip("{}'")
    return assigns, line_no


class _Scope(dict):
    """Names of a model expression: subcircuit parameters evaluated lazily, globals,
    and every other ``sw_*`` process/corner shift at 0 (only the mismatch term is wanted)."""

    def __init__(self, assigns: dict[str, str], values: dict[str, float]):
        super().__init__()
        self.assigns, self.values = assigns, values

    def __missing__(self, key):
        if key in self.values:
            return self.values[key]
        if key in self.assigns:
            v = _eval(self.assigns[key], self)
            self[key] = v
            return v
        if key.startswith("sw_"):
            return 0.0
        raise KeyError(f"model expression uses {key!r}, which the extraction does not know")


def _eval(expr: str, scope: _Scope) -> float:
    return float(eval(expr.replace("^", "**"), {"__builtins__": {}}, scope))  # noqa: S307


def vth_sigma(device: str, w_um: float, l_um: float, models_dir=None) -> dict[str, Any]:
    """1-sigma threshold-voltage mismatch (V) of one device from the model files, with its source."""
    root = sky130_models_dir(models_dir)
    glob_text = (root / "models_global.spice").read_text()
    consts = _global_matching_constants(glob_text)
    key = f"sw_mm_vth0_{device}"
    if key not in consts:
        raise RuntimeError(f"{key} not found in models_global.spice")
    fet_text = (root / "models_fet.spice").read_text()
    assigns, line_no = _subckt_assignments(fet_text, device)
    if "delvto" not in assigns:
        raise RuntimeError(f"subcircuit {device} has no delvto expression")
    base = {"l": l_um, "w": w_um, "mult": 1.0, "mismatch_factor": 1.0, "MC_MM_SWITCH": 1.0,
            "sqrt": math.sqrt, "max": max, "min": min}
    base.update({k: v for k, (v, _) in consts.items()})
    on = _eval(assigns["delvto"], _Scope(assigns, dict(base, AGAUSS=lambda *a: 1.0)))
    off = _eval(assigns["delvto"], _Scope(assigns, dict(base, AGAUSS=lambda *a: 0.0)))
    sigma = abs(on - off)
    plain = consts[key][0] / math.sqrt(w_um * l_um)
    return {"model": device, "W_um": w_um, "L_um": l_um, "sigma_vth_v": sigma,
            "matching_constant_v_um": consts[key][0],
            "geometry_factor": sigma / plain,
            "source": {"file": "models_global.spice", "parameter": key, "value": consts[key][0],
                       "comment": consts[key][1],
                       "expression_file": "models_fet.spice",
                       "expression": f"delvto of .subckt {device} (line {line_no}): "
                                     + assigns["delvto"]
                                     + ("; swx_vth = " + assigns["swx_vth"] if "swx_vth" in assigns
                                        else "")}}


def mim_sigma_constant(models_dir=None) -> dict[str, Any]:
    """The MIM capacitor matching constant and density, with their sources."""
    root = sky130_models_dir(models_dir)
    consts = _global_matching_constants((root / "models_global.spice").read_text())
    if "sw_mm_cmim" not in consts:
        raise RuntimeError("sw_mm_cmim not found in models_global.spice")
    cap_text = (root / "models_capacitors.spice").read_text()
    assigns, line_no = _subckt_assignments(cap_text, MIM_CAP)
    ca, dw = mim_parameters(models_dir)
    return {"model": MIM_CAP, "matching_constant_um": consts["sw_mm_cmim"][0],
            "ca_f_per_um2": ca, "dw_um": dw,
            "formula": "sigma_C / C = sw_mm_cmim / sqrt((W + dw) (L + dw)) = sw_mm_cmim * sqrt(ca / C)",
            "source": {"file": "models_global.spice", "parameter": "sw_mm_cmim",
                       "value": consts["sw_mm_cmim"][0], "comment": consts["sw_mm_cmim"][1],
                       "expression_file": "models_capacitors.spice",
                       "expression": f"carea of .subckt {MIM_CAP} (line {line_no}): "
                                     + assigns.get("carea", "?"),
                       "density": "sw_cap_mim_ca, sw_cap_mim_dw of parameters_cap_nom.spice"}}


def extract(models_dir=None) -> dict[str, Any]:
    """Per-device V_th mismatch of M1, M2 and the MIM matching constant (no simulation)."""
    return {"format": FORMAT,
            "devices": {"m1": vth_sigma(PFET, M1_W_UM, M1_L_UM, models_dir),
                        "m2": vth_sigma(NFET, M2_W_UM, M2_L_UM, models_dir)},
            "mim": mim_sigma_constant(models_dir)}


# Gate drive of the Monte Carlo check: weak inversion, well above the leakage floor
# (about 1 pA for both devices at these sizes): about 60 pA and 120 pA.
MC_VGS_V = {"m1": 0.62, "m2": 0.3}
MC_CAP_SIDE_UM = 5.0
MC_FREQ_HZ = 1e6


def monte_carlo_netlist(n: int, models_dir=None, corner: str = "tt", seed: int = 1) -> str:
    """One netlist with ``n`` mismatched instances each of M1, M2 and a 5x5 um MIM capacitor."""
    root = sky130_models_dir(models_dir)
    lines = ["* LearnAFE mismatch Monte Carlo (MC_MM_SWITCH=1)",
             ".param MC_MM_SWITCH=1 MC_PR_SWITCH=0 corner_factor=1 process_mc_factor=1",
             ".param mismatch_factor=1"]
    lines += [f'.include "{root / f}"' for f in model_files(corner)]
    lines += [f"VS1 s1 0 DC {1.8:g}", f"VG1 s1 g1 DC {MC_VGS_V['m1']:g}", "VD1 d1 0 DC 0.95",
              f"VG2 g2 0 DC {MC_VGS_V['m2']:g}", "VD2 d2 0 DC 1.25"]
    for k in range(n):
        lines += [f"VA{k} d1 a{k} DC 0", f"XA{k} a{k} g1 s1 s1 {PFET} W={M1_W_UM:g} L={M1_L_UM:g}",
                  f"VB{k} d2 b{k} DC 0", f"XB{k} b{k} g2 0 0 {NFET} W={M2_W_UM:g} L={M2_L_UM:g}",
                  f"VC{k} c{k} 0 DC 0 AC 1",
                  f"XC{k} c{k} 0 {MIM_CAP} W={MC_CAP_SIDE_UM:g} L={MC_CAP_SIDE_UM:g}"]
    lines += [f".options seed={int(seed)}", ".op", f".ac lin 1 {MC_FREQ_HZ:g} {MC_FREQ_HZ:g}",
              ".end", ""]
    return "\n".join(lines)


def monte_carlo(n: int, work_dir, *, models_dir=None, corner: str = "tt", seed: int = 1,
                gm_table=None, timeout: float = 300.0) -> dict[str, Any]:
    """ngspice Monte Carlo of the model files' mismatch: measured sigma of V_th (M1, M2) and of C."""
    if n < 10:
        raise ValueError(f"n={n}: a spread needs at least 10 samples")
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / "mismatch_mc.cir"
    path.write_text(monte_carlo_netlist(n, models_dir, corner, seed))
    res = run_netlist(path, timeout=timeout)
    op, ac = res.plot("Operating"), res.plot("AC")
    if gm_table is None:
        gm_table = sky130_table(corner if corner in SKY130_CORNERS else "tt")
    out: dict[str, Any] = {"n": n, "seed": seed, "corner": corner}
    for dev, prefix in (("m1", "va"), ("m2", "vb")):
        i = np.abs(np.array([op[f"i({prefix}{k})"][0].real for k in range(n)]))
        log_i = np.log(i)
        gm_id = float(gm_table.gm_over_id(dev, float(np.exp(log_i.mean()))))
        out[dev] = {"vgs_v": MC_VGS_V[dev], "median_current_a": float(np.median(i)),
                    "sigma_ln_current": float(log_i.std(ddof=1)), "gm_over_id": gm_id,
                    "sigma_vth_v": float(log_i.std(ddof=1) / gm_id)}
    c = np.array([abs(ac[f"i(vc{k})"][0]) for k in range(n)]) / (2 * math.pi * MC_FREQ_HZ)
    out["mim"] = {"W_um": MC_CAP_SIDE_UM, "L_um": MC_CAP_SIDE_UM, "mean_f": float(c.mean()),
                  "sigma_rel": float(c.std(ddof=1) / c.mean())}
    return out


def write_mismatch_file(out, *, work_dir, n: int = 400, models_dir=None, seed: int = 1,
                        command: str | None = None) -> dict[str, Any]:
    """Extract, check by Monte Carlo and write the ``learnafe-mismatch/1`` data file."""
    data = extract(models_dir)
    mc = monte_carlo(n, work_dir, models_dir=models_dir, seed=seed)
    ca = data["mim"]["ca_f_per_um2"]
    side = MC_CAP_SIDE_UM + data["mim"]["dw_um"]
    mc["mim"]["expected_sigma_rel"] = data["mim"]["matching_constant_um"] / side
    for dev in ("m1", "m2"):
        mc[dev]["expected_sigma_vth_v"] = data["devices"][dev]["sigma_vth_v"]
    mc["mim"]["expected_mean_f"] = ca * side * side
    data["monte_carlo_check"] = mc
    data["command"] = command or f"learnafe spice mismatch --out {Path(out).name} --samples {n}"
    data["simulator"] = ngspice_version(str(find_ngspice()))
    data["models"] = model_fingerprint("tt", models_dir)
    data["current_mirror"] = (
        "Bias currents are copies of a reference made by 1:1 current mirrors of devices with "
        "the type and size of the filter device that carries them (I1: M1, I2: M2); in weak "
        "inversion a mirror's relative output error is (gm/Id) * dVth, dVth the difference of "
        "two devices' V_th (sigma sqrt(2) sigma_Vth).  The filter devices' own V_th mismatch "
        "does not move the filter: their currents are forced and gm = Id * (gm/Id) does not "
        "depend on V_th.")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, data, indent=1)
    return data


__all__ = ["extract", "vth_sigma", "mim_sigma_constant", "monte_carlo", "monte_carlo_netlist",
           "write_mismatch_file", "FORMAT"]
