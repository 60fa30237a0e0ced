"""Peak memory of one envelope forward + backward, in a fresh process (the ``ops`` bench section).

The growth of the resident set (Linux ``VmHWM`` after resetting it through
``/proc/self/clear_refs``; else the ``ru_maxrss`` high-water mark) over one step, after one
warm-up step with the inputs already allocated.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

from learnafe.benchmarks._ops_reference import envelope_step

__all__ = ["rss_kib", "memory_probe", "memory_in_subprocess"]


def rss_kib() -> tuple[int, int]:
    """(VmRSS, VmHWM) in KiB from /proc/self/status."""
    vals = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                vals[line.split(":")[0]] = int(line.split()[1])
    return vals["VmRSS"], vals["VmHWM"]


def memory_probe(path: str, cfg: dict, seed: int, threads: int) -> dict:
    """Peak resident-set growth (bytes) of one envelope forward + backward in this process."""
    import torch

    from learnafe import ops

    torch.set_num_threads(threads)
    ops.set_num_threads(threads)
    step = envelope_step(path, cfg, seed)
    step()  # warm-up: one-time allocations (autograd engine, thread pools) are not the op's
    method = "ru_maxrss"
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current RSS
        base, _ = rss_kib()
        step()
        _, peak = rss_kib()
        method = "VmHWM"
    except OSError:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        step()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_bytes": max(0, peak - base) * 1024, "method": method}


def memory_in_subprocess(path: str, cfg: dict, seed: int, threads: int) -> dict:
    """:func:`memory_probe` in a fresh Python process (every allocator counted, the op's output
    cache off)."""
    code = ("import json, sys\n"
            "from learnafe.benchmarks._ops_memory import memory_probe\n"
            "print(json.dumps(memory_probe(sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), "
            "int(sys.argv[4]))))\n")
    env = dict(os.environ)
    pkg_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["LEARNAFE_OUTPUT_CACHE_MB"] = "0"  # count every buffer of the step (see the module doc)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_parent, env.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, "-c", code, path, json.dumps(cfg), str(seed), str(threads)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"memory probe for the {path} envelope failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
