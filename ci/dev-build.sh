#!/usr/bin/env bash
# Developer build: compile the extension into build/dev and drop it next to the
# Python sources (python/learnafe/_core*.so, git-ignored), so that
# `PYTHONPATH=python python -m learnafe` and pytest use the fresh kernels.
# Serialised with a lock so that parallel callers do not race.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
exec 9>/tmp/learnafe-dev-build.lock
flock 9
if [ ! -f build/dev/CMakeCache.txt ]; then
  cmake -S . -B build/dev -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DPython_EXECUTABLE="$($PY -c 'import sys; print(sys.executable)')" \
    -Dpybind11_DIR="$($PY -m pybind11 --cmakedir)" >/dev/null
fi
cmake --build build/dev -j 2
# A new inode (not an in-place overwrite), so running processes that mapped the
# old extension keep working instead of crashing.
cp --remove-destination build/dev/_core*.so python/learnafe/
