"""Run one script under every kernel ISA path and check the outputs are bitwise the same."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

ISAS = ("generic", "avx2", "default")


def assert_same_on_every_isa(code: str, tmp_path, keys) -> None:
    """Run ``code`` (a script that saves an ``.npz`` to ``sys.argv[1]`` and prints
    ``ops.kernel_isa()``) in a fresh interpreter with ``LEARNAFE_ISA`` forced to each
    path (and unset: the default), then require every array under ``keys`` to equal
    the generic path's bit for bit."""
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
        for key in keys:
            np.testing.assert_array_equal(outs[isa][key], outs["generic"][key], err_msg=f"{isa} {key}")
