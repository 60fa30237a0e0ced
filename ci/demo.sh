#!/usr/bin/env bash
# Set up everything and run the main job end to end on the embedded default
# data set.  Extra arguments go to `learnafe demo`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/ci/setup.sh"
cd "$ROOT"
learnafe demo "$@"
