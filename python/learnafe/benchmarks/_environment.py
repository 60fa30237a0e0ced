"""Where a benchmark ran: the record every ``learnafe bench`` JSON carries.

:func:`run_environment` describes the process and machine (kernel ISA path,
CPU model and flags, core and thread counts, load average, torch, Python and
the compiler the extension was built with); :func:`isa_available` says
whether this CPU can run one of the kernels' ISA paths.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

# The kernels' ISA paths (LEARNAFE_ISA values) and the CPU flags each needs.
ISA_PATHS = ("generic", "avx2", "avx512")
ISA_FLAGS = {
    "generic": frozenset(),
    "avx2": frozenset({"avx2", "fma"}),
    "avx512": frozenset({"avx512f", "avx512dq", "avx512vl", "avx512bw"}),
}


def _cpuinfo_field(field: str, path: str = "/proc/cpuinfo") -> str | None:
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == field:
            return value.strip()
    return None


def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo``), else :func:`platform.processor`."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where it is not readable)."""
    return frozenset((_cpuinfo_field("flags") or "").split())


def isa_available(name: str, flags: frozenset[str] | None = None) -> bool:
    """Whether a CPU with ``flags`` (default: this one) can run ISA path ``name``."""
    if name not in ISA_FLAGS:
        raise ValueError(f"unknown ISA path {name!r}; choose one of {', '.join(ISA_PATHS)} or 'all'")
    return ISA_FLAGS[name] <= (cpu_flags() if flags is None else flags)


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or None where the OS has none."""
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def build_info() -> dict:
    """How the compiled extension was built (its ``build_info()``)."""
    from learnafe.ops import extension

    return dict(extension.core.build_info())


def run_environment(threads: int | None = None) -> dict:
    """The record of where this process runs its benchmarks (JSON-serialisable)."""
    import torch

    from learnafe import ops

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    return {
        "kernel_isa": ops.kernel_isa(),
        "isa_requested": os.environ.get("LEARNAFE_ISA"),
        "cpu_model": cpu_model(),
        "cpu_isa_flags": sorted(cpu_flags() & frozenset().union(*ISA_FLAGS.values())),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cores_usable": cores,
        "threads": threads if threads is not None else torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "build": build_info(),
        "load_average": load_average(),
    }


def section_settings(args, quick: dict, full: dict) -> tuple[dict, int, int]:
    """``(sizes, seed, threads)`` of a kernel section from its ``learnafe bench`` arguments:
    ``quick`` or ``full`` sizes (a copy), the seed (default 0) and the thread count (default
    the kernels'), which is set for both torch and the kernels."""
    import torch

    from learnafe import ops

    cfg = dict(quick if getattr(args, "quick", False) else full)
    seed = int(getattr(args, "seed", 0) or 0)
    threads = int(getattr(args, "threads", None) or ops.get_num_threads())
    torch.set_num_threads(threads)
    ops.set_num_threads(threads)
    return cfg, seed, threads
