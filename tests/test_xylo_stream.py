"""The XyloAudio 3 bank's streaming (non-temporal) output stores.

Outputs of at least 8 MiB (``kStreamBytes`` in cpp/xylo_lanes.h) written into
a reused buffer (the output cache's) are written with streaming stores by the
vector lanes; smaller ones, and fresh arrays (the cache off), with normal
stores.  Both sides of that threshold, aligned and unaligned rows (T a multiple
of 8 or not), cache on and off, one and two threads, and every ISA path must
give the int64 path's outputs, which equal rockpool's.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from learnafe.xylo.bank import XyloA3FilterBank

ref_mod = pytest.importorskip("learnafe.xylo.reference")

FULL = (1 << 13) - 1
C = 16
STREAM_BYTES = 8 << 20
#: (B, T): below the threshold, above it with T % 8 == 0, above it with odd T.
CASES = [(2, 32000), (2, 33000), (3, 22001)]

_CODE = """
import numpy as np, sys
from learnafe.ops import set_output_cache_limit
from learnafe.xylo import XyloA3FilterBank as B
bank = B.default()
xs = np.load(sys.argv[1], allow_pickle=True)
out = {}
for i, x in enumerate(xs):
    for cache in (True, False):
        prev = set_output_cache_limit(1 << 30 if cache else 0)
        for th in (1, 2):
            y, k, w = bank.filter(x, prepend_reversed=True, overflow="report",
                                  return_overflow=True, num_threads=th)
            out[f"y{i}_{int(cache)}_{th}"] = y
            out[f"k{i}_{int(cache)}_{th}"] = k
        set_output_cache_limit(prev)
np.savez(sys.argv[2], **out)
"""


def _inputs() -> list[np.ndarray]:
    rng = np.random.default_rng(21)
    return [rng.integers(-FULL, FULL + 1, size=(b, t)) for b, t in CASES]


def _run(tmp_path, env_set: dict) -> dict:
    xs = np.empty(len(CASES), dtype=object)
    xs[:] = _inputs()
    np.save(tmp_path / "x.npy", xs, allow_pickle=True)
    env = {k: v for k, v in os.environ.items() if k not in ("LEARNAFE_XYLO_SIMD", "LEARNAFE_ISA")}
    env.update(env_set)
    out = tmp_path / f"o{len(list(tmp_path.iterdir()))}.npz"
    subprocess.run([sys.executable, "-c", _CODE, str(tmp_path / "x.npy"), str(out)],
                   check=True, env=env, timeout=300)
    return dict(np.load(out))


def test_cases_straddle_the_threshold():
    sizes = [b * C * t * 8 for b, t in CASES]
    assert sizes[0] < STREAM_BYTES <= sizes[1] and sizes[2] >= STREAM_BYTES
    assert CASES[1][1] % 8 == 0 and CASES[2][1] % 4 != 0


@pytest.mark.parametrize("env_set", [{"LEARNAFE_ISA": "avx2"}, {"LEARNAFE_ISA": "avx512"}, {}],
                         ids=["avx2", "avx512", "default"])
def test_streamed_outputs_equal_the_int64_path(tmp_path, env_set):
    """Every case, cache on and off, 1 and 2 threads, on a forced ISA path, equals the
    pure int64 path (LEARNAFE_XYLO_SIMD=0)."""
    ref = _run(tmp_path, {"LEARNAFE_XYLO_SIMD": "0"})
    got = _run(tmp_path, env_set)
    assert set(got) == set(ref)
    for key in ref:
        np.testing.assert_array_equal(got[key], ref[key], err_msg=key)
    assert not any(ref[k].any() for k in ref if k.startswith("k"))  # no overflow


def test_streamed_output_matches_rockpool():
    """Above the threshold (in-process, default path) the first signal equals rockpool's
    python filter."""
    x = _inputs()[1]
    y = XyloA3FilterBank.default().filter(x, prepend_reversed=True)
    ref = ref_mod.reference_filterbank()
    np.testing.assert_array_equal(y[0], ref_mod.reference_filter(ref, x[0]))


def test_reused_out_flag_of_the_binding():
    """``_core.xylo_filterbank`` with and without streaming (reused_out), into a given
    buffer or a fresh one, writes the same output."""
    from learnafe import _core
    from learnafe.xylo.kernel import kernel_columns

    bank = XyloA3FilterBank.default()
    x = _inputs()[1]
    cols = kernel_columns(bank.channels)
    outs = []
    for reused in (True, False):
        out = np.full((x.shape[0], C, x.shape[1]), -7, dtype=np.int64)
        outs.append(_core.xylo_filterbank(x, *cols, True, 2, out, reused_out=reused)[0])
        outs.append(_core.xylo_filterbank(x, *cols, True, 2, None, reused_out=reused)[0])
    for y in outs[1:]:
        np.testing.assert_array_equal(y, outs[0])
