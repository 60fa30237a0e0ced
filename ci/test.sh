#!/usr/bin/env bash
# Set up everything, lint the sources (ruff, configured in pyproject.toml), run
# the whole test suite (slow end-to-end tests included), then build the wheel
# once and smoke-test it in a fresh environment without compiler or CMake
# (ci/wheel-smoke.sh).  Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/ci/setup.sh"
cd "$ROOT"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
set +e
python -m ruff check python tests bench ci
lint_rc=$?
# Run against the installed package, not the source tree.
python -m pytest -p no:cacheprovider --benchmark-disable "$@" tests
rc=$?
set -e
if [ $rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi
if [ $lint_rc -ne 0 ]; then echo "ruff found problems (ruff check --fix fixes import order)" >&2; [ $rc -ne 0 ] || rc=$lint_rc; fi
# The wheel a user installs: built once, installed without compiler/CMake.
smoke_dir="$(mktemp -d -t learnafe-wheel-XXXXXX)"
set +e
bash "$ROOT/ci/wheel-smoke.sh" "$smoke_dir"
smoke_rc=$?
set -e
rm -rf "$smoke_dir"
if [ $smoke_rc -ne 0 ]; then echo "wheel smoke test failed" >&2; [ $rc -ne 0 ] || rc=$smoke_rc; fi
exit $rc
