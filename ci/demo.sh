#!/usr/bin/env bash
# Set up everything and run the main job end to end on the embedded default
# data set, plus the real Speech Commands folders when ../shared/data/ has them
# (gsc-v2-testset-dev, gsc-unknown-words, gsc-background-noise; or pass --real,
# --unknown, --noise; --synthetic-only ignores them).  Extra arguments go to
# `learnafe demo`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/ci/setup.sh"
cd "$ROOT"
learnafe demo "$@"
