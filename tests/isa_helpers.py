"""Run one script under every kernel ISA path and check the outputs are bitwise the same."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

ISAS = ("generic", "avx2", "default")


_THREAD_COUNTS_EPILOGUE = """
import sys as _sys
import numpy as _np
from learnafe import ops as _ops
_res = {_nt: compute(_nt) for _nt in THREAD_COUNTS}
for _nt in THREAD_COUNTS[1:]:
    for _k, _v in _res[_nt].items():
        assert _np.array_equal(_np.asarray(_v), _np.asarray(_res[THREAD_COUNTS[0]][_k])), (_k, _nt)
_np.savez(_sys.argv[1], **_res[THREAD_COUNTS[0]])
print(_ops.kernel_isa())
"""


def assert_same_on_every_isa_and_thread_count(code: str, tmp_path, thread_counts=(1, 2, 3)) -> None:
    """``code`` defines ``compute(num_threads) -> dict`` of arrays; in each ISA path's interpreter
    every thread count must give every array bit for bit, and every path the generic one's."""
    assert_same_on_every_isa(f"THREAD_COUNTS = {tuple(thread_counts)!r}\n{code}\n{_THREAD_COUNTS_EPILOGUE}",
                             tmp_path, None)


def assert_same_on_every_isa(code: str, tmp_path, keys) -> None:
    """Run ``code`` (a script that saves an ``.npz`` to ``sys.argv[1]`` and prints
    ``ops.kernel_isa()``) in a fresh interpreter with ``LEARNAFE_ISA`` forced to each
    path (and unset: the default), then require every array under ``keys`` (None: every
    array the generic path saved) to equal the generic path's bit for bit."""
    outs = {}
    for isa in ISAS:
        env = dict(os.environ)
        env.pop("LEARNAFE_ISA", None)
        if isa != "default":
            env["LEARNAFE_ISA"] = isa
        path = tmp_path / f"{isa}.npz"
        proc = subprocess.run([sys.executable, "-c", code, str(path)], env=env, capture_output=True,
                              text=True)
        assert proc.returncode == 0, proc.stderr
        if isa == "generic":
            assert proc.stdout.strip() == "generic"
        outs[isa] = np.load(path)
    for isa in ISAS[1:]:
        for key in outs["generic"].files if keys is None else keys:
            np.testing.assert_array_equal(outs[isa][key], outs["generic"][key], err_msg=f"{isa} {key}")
