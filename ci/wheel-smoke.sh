#!/usr/bin/env bash
# Build the wheel once and smoke-test it the way a user installs it: a fresh
# virtual environment, no compiler and no CMake on PATH, LearnAFE from the
# wheel only (--no-index), its dependencies from the package index.
#   1. the NumPy path without torch installed (against scipy lfilter);
#   2. _core links neither libtorch nor libc10 (readelf -d), the metadata does
#      not pin torch, py.typed ships;
#   3. torch==2.13.0 installed afterwards: the torch path, the custom operators
#      (opcheck) and torch.compile(fullgraph=True).
# Usage: bash ci/wheel-smoke.sh [WORKDIR]   (default: a temporary directory)
# Run from an environment that can build LearnAFE (ci/setup.sh): the wheel is
# built with that environment's scikit-build-core and pybind11
# (--no-build-isolation), reusing its CMake build directory.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${1:-$(mktemp -d -t learnafe-wheel-XXXXXX)}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
log() { printf '[wheel-smoke] %s\n' "$*"; }
export PIP_DISABLE_PIP_VERSION_CHECK=1
PY="${PYTHON:-python}"

log "building the wheel into $WORK/dist"
rm -rf "$WORK/dist"
"$PY" -m pip wheel "$ROOT" -w "$WORK/dist" --no-deps --no-build-isolation -q
WHEEL="$(ls "$WORK"/dist/learnafe-*.whl)"
log "built $(basename "$WHEEL")"

# --- the wheel's contents and metadata ----------------------------------------
"$PY" - "$WHEEL" <<'PYEOF'
import re, sys, zipfile
whl = zipfile.ZipFile(sys.argv[1])
names = whl.namelist()
assert "learnafe/py.typed" in names, "py.typed missing from the wheel"
assert "learnafe/ops/operators.py" in names, "learnafe/ops/operators.py missing from the wheel"
assert any(re.fullmatch(r"learnafe/_core\..*\.so", n) for n in names), "compiled extension missing"
meta = whl.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
torch_reqs = [l for l in meta.splitlines() if l.startswith("Requires-Dist: torch")]
assert torch_reqs, "no torch extra in the metadata"
for req in torch_reqs:
    assert 'extra == "torch"' in req, f"torch must stay an optional extra: {req}"
    assert "==" not in req.split(";")[0], f"torch is pinned in the metadata: {req}"
print("[wheel-smoke] metadata:", "; ".join(torch_reqs))
PYEOF

# --- a fresh environment without compiler or CMake -----------------------------
VENV="$WORK/venv"
rm -rf "$VENV"
"$PY" -m venv "$VENV"
CLEAN_PATH="$VENV/bin"
for tool in gcc g++ cc c++ cmake ninja; do
  if PATH="$CLEAN_PATH" command -v "$tool" >/dev/null 2>&1; then
    echo "[wheel-smoke] $tool is on the restricted PATH" >&2; exit 1
  fi
done
# (pip warns about configured index locations that do not exist on some
# machines; those lines are noise and are filtered out, as in ci/setup.sh.)
vpip() {
  PATH="$CLEAN_PATH" "$VENV/bin/python" -m pip install -q "$@" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
log "installing the dependencies (package index), then learnafe from the wheel only"
vpip numpy scipy matplotlib tqdm
vpip --no-index --find-links "$WORK/dist" --no-deps learnafe
PATH="$CLEAN_PATH" "$VENV/bin/python" -c "import cmake" 2>/dev/null \
  && { echo "[wheel-smoke] cmake is importable in the fresh environment" >&2; exit 1; }

cd "$WORK"   # not the source tree: import the installed package
SO="$(PATH="$CLEAN_PATH" "$VENV/bin/python" -c 'import learnafe._core as c; print(c.__file__)')"
log "checking $SO does not link libtorch or libc10"
needed="$(readelf -d "$SO" | grep NEEDED || true)"
echo "$needed" | sed 's/^/[wheel-smoke]   /'
if echo "$needed" | grep -Eq 'libtorch|libc10'; then
  echo "[wheel-smoke] _core links libtorch/libc10" >&2; exit 1
fi
if ldd "$SO" | grep -Eq 'libtorch|libc10'; then
  echo "[wheel-smoke] _core resolves libtorch/libc10 (ldd)" >&2; exit 1
fi

log "NumPy path without torch"
PATH="$CLEAN_PATH" "$VENV/bin/python" - <<'PYEOF'
import importlib.util, pathlib, sys
import numpy as np, scipy.signal as ss
assert importlib.util.find_spec("torch") is None, "torch must not be installed yet"
import learnafe, learnafe.ops as ops
assert (pathlib.Path(learnafe.__file__).parent / "py.typed").is_file()
rng = np.random.default_rng(0)
r, th = rng.uniform(0.3, 0.99, 8), rng.uniform(0.05, 3.0, 8)
a = np.stack([-2 * r * np.cos(th), r * r], 1); b = rng.standard_normal((8, 3))
x = rng.standard_normal((3, 2000))
y = ops.biquad_filterbank(x, b, a)
ref = np.stack([np.stack([ss.lfilter(b[c], np.r_[1.0, a[c]], xi) for c in range(8)]) for xi in x])
np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-10)
env = ops.filterbank_envelope(x.astype(np.float32), b, a, hop=100, tau=0.01, sample_rate=20000.0)
assert env.shape == (3, 8, 20) and env.dtype == np.float32 and np.isfinite(env).all()
try:
    ops.biquad_filterbank(x, b, np.array([[0.5, 1.0]] * 8))
except ValueError as e:
    assert "channel 0 is unstable" in str(e)
else:
    raise AssertionError("unstable sections were accepted")
assert "torch" not in sys.modules
print("[wheel-smoke] NumPy path OK, kernel ISA", ops.kernel_isa())
PYEOF

log "installing torch==2.13.0"
vpip torch==2.13.0
log "torch path"
PATH="$CLEAN_PATH" "$VENV/bin/python" - <<'PYEOF'
import numpy as np, torch
import learnafe.ops.operators as torch_ops
from learnafe import ops
from learnafe.frontends import AnalogFilterBank
from learnafe.models import DSCNN
assert torch.__version__.startswith("2.13.0"), torch.__version__
rng = np.random.default_rng(1)
r, th = rng.uniform(0.3, 0.95, 4), rng.uniform(0.05, 3.0, 4)
a = torch.tensor(np.stack([-2 * r * np.cos(th), r * r], 1), requires_grad=True)
b = torch.tensor(rng.standard_normal((4, 3)), requires_grad=True)
x = torch.randn(2, 64, dtype=torch.float64, requires_grad=True)
for name in torch_ops.OPS:
    assert hasattr(torch.ops.learnafe, name), name
std = torch.tensor([0.1, 0.2, 0.05, 0.3], dtype=torch.float64, requires_grad=True)
res = torch.library.opcheck(torch.ops.learnafe.filterbank_envelope.default,
                            (x, b, a, std, 7, 8, 0.2, "abs", True, 0))
assert all(v == "SUCCESS" for v in res.values()), res
assert torch.autograd.gradcheck(
    lambda *t: ops.filterbank_envelope(*t[:3], hop=8, tau=1e-3, sample_rate=8000.0, noise_std=t[3], seed=5),
    (x, b, a, std))
torch.manual_seed(0)
model = torch.nn.Sequential(AnalogFilterBank.conventional(8, f_hi=4000.0, sample_rate=10000.0,
                                                          features={"hop": 100}),
                            DSCNN(8, 4, width=8, depth=1, dropout=0.0)).eval()
audio = 0.1 * torch.randn(2, 2000)
with torch.no_grad():
    eager = model(audio)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")(audio)
torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)
print("[wheel-smoke] torch path OK (opcheck, gradcheck, compile fullgraph)")
PYEOF
log "OK"
