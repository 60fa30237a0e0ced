"""The compiled extension of the ops: the ``learnafe._core`` module, its instruction set and threads.

Every kernel call of the package gets its thread count from
:func:`get_num_threads` (or an explicit ``num_threads`` checked by
:func:`check_threads`).  Results do not depend on the thread count.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from learnafe import _core

__all__ = ["core", "set_num_threads", "get_num_threads", "kernel_isa", "check_threads", "op_threads"]

#: The compiled module (C++/OpenMP kernels; it does not link libtorch).
core = _core

_num_threads: int | None = None


def check_threads(n: Any, name: str) -> int:
    """``n`` as a positive thread count; ValueError naming ``name`` otherwise."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or int(n) < 1:
        raise ValueError(f"{name} must be a positive integer number of threads, got {n!r}")
    return int(n)


def set_num_threads(n: int | None) -> None:
    """Set the number of threads of the kernels; ``None`` restores the default.

    The default follows ``torch.get_num_threads()`` when torch is imported,
    otherwise OpenMP's default (``OMP_NUM_THREADS`` or the number of cores).
    Results do not depend on the thread count.
    """
    global _num_threads
    if n is None:
        _num_threads = None
        return
    _num_threads = check_threads(n, "n")


def get_num_threads() -> int:
    """Number of threads the kernels use when ``num_threads`` is not given."""
    if _num_threads is not None:
        return _num_threads
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_num_threads"):
        return int(torch.get_num_threads())
    return int(_core.omp_default_threads())


def kernel_isa() -> str:
    """Instruction set the kernels dispatch to here: "avx512", "avx2" or "generic"."""
    return _core.biquad_isa()


def op_threads(num_threads: int | None) -> int:
    """``num_threads`` as the torch operators take it: 0 = the default at call time."""
    return 0 if num_threads is None else check_threads(num_threads, "num_threads")
