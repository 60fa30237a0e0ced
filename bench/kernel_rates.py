"""Where the time of the filter-bank op goes: the kernels called directly (no torch).

``python bench/kernel_rates.py`` prints nanoseconds per sample-channel (best of
the repeats; B x 20000 samples, 16 channels, float32) of: filling an output of
the op's size (``fill``: the memory-write limit), the forward kernel into a
preallocated output, the backward kernel with the forward's checkpoints and
without them (recomputing the state in an extra pass), for

* B=1, 1 thread: the output (1.3 MB) stays in the caches, so this is the
  kernels' compute cost;
* B=32, 1 and 2 threads: the 41 MB output goes to memory.
"""

import time

import numpy as np

from learnafe import _core
from learnafe.benchmarks._ops_reference import bank


def rates(B: int, threads: int, repeats: int, T: int = 20000, C: int = 16) -> dict:
    b, a = bank(C)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T)).astype(np.float32)
    g = rng.standard_normal((B, C, T)).astype(np.float32)
    y = np.empty((B, C, T), np.float32)
    zf = np.empty((B, C, 2), np.float32)
    ck = np.empty(_core.biquad_checkpoint_size(B, T, C))
    gx = np.empty((B, T), np.float32)
    gb, ga = np.empty((C, 3)), np.empty((C, 2))
    paths = {
        "fill": lambda: y.fill(1.0),
        "forward": lambda: _core.biquad_forward_f32(x, b, a, None, y, zf, threads, ck),
        "backward": lambda: _core.biquad_backward_f32(x, b, a, None, g, None, gx, gb, ga, None,
                                                      threads, ck),
        "backward_no_checkpoints": lambda: _core.biquad_backward_f32(x, b, a, None, g, None, gx, gb,
                                                                     ga, None, threads),
    }
    out = {}
    for name, fn in paths.items():
        fn()
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        out[name] = best / (B * C * T) * 1e9
    return out


if __name__ == "__main__":
    for B, threads, repeats in ((1, 1, 200), (32, 1, 10), (32, 2, 10)):
        r = rates(B, threads, repeats)
        print(f"B={B:2d} threads={threads}: " + "  ".join(f"{k} {v:.3f}" for k, v in r.items())
              + "  (ns per sample-channel, best)")
