#!/usr/bin/env bash
# Set up everything and run the whole test suite (slow end-to-end tests
# included).  Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/ci/setup.sh"
cd "$ROOT"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
set +e
# Run against the installed package, not the source tree.
python -m pytest -p no:cacheprovider --benchmark-disable "$@" tests
rc=$?
set -e
if [ $rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi
exit $rc
