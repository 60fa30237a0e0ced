"""``learnafe bench`` section: the XyloAudio 3 fixed-point bank against rockpool.

Both sides filter the chip's 16 default channels with the reference's
reverse-and-prepend convention (2T samples processed per T output samples)
in the same run: the C++ kernel on a batch of 1 s signals at 48828.125 Hz,
rockpool's pure-python ``ChipButterworth`` path on one shorter signal.
Throughput is in output sample-channels per second, best of the repeats, in
wall-clock time and in CPU time of this process (on a shared machine the CPU
time of the single-threaded runs is the fairer per-core comparison); the
outputs are checked for equality on the reference's signal.
"""

from __future__ import annotations

import time

import numpy as np

TITLE = "XyloAudio 3 fixed-point filter bank (bit-exact) vs rockpool ChipButterworth"

TARGET_RATIO = 1000.0


def _best(fn, repeat: int) -> tuple[float, float]:
    """(best wall-clock seconds, best CPU seconds of this process) over ``repeat`` calls."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, max(cpu, 1e-9)


def run(args=None) -> dict:
    """Measure; ``args`` may carry ``quick`` (bool), ``threads`` (int) and ``seed``."""
    from learnafe import _core
    from learnafe.xylo import XyloA3FilterBank
    from learnafe.xylo.design import XYLO_SAMPLE_RATE

    quick = bool(getattr(args, "quick", False))
    threads = getattr(args, "threads", None) or None
    seed = int(getattr(args, "seed", 0) or 0)
    rng = np.random.default_rng(seed)
    full = (1 << 13) - 1
    bank = XyloA3FilterBank.default()
    C = len(bank)
    batch, seconds = (4, 0.5) if quick else (16, 1.0)
    T = int(seconds * XYLO_SAMPLE_RATE)
    x = rng.integers(-full, full + 1, size=(batch, T))
    repeat = 3 if quick else 25  # calls of ~10 ms: enough repeats for a stable best
    bank.filter(x[:1, :1000], prepend_reversed=True, num_threads=threads)  # warm-up
    t_ours, _ = _best(lambda: bank.filter(x, prepend_reversed=True, num_threads=threads), repeat)
    t_ours_1, c_ours_1 = _best(lambda: bank.filter(x, prepend_reversed=True, num_threads=1),
                               repeat)
    # The same call with the shared output cache switched off: every call then
    # pays for fresh output pages (shown so that the cache's share is visible).
    from learnafe._buffers import set_output_cache_limit

    prev = set_output_cache_limit(0)
    try:
        t_nocache, _ = _best(lambda: bank.filter(x, prepend_reversed=True, num_threads=threads),
                             repeat)
    finally:
        set_output_cache_limit(prev)
    work = batch * T * C
    result = {
        "ours_no_cache_sc_per_s": work / t_nocache,
        "channels": C, "batch": batch, "samples_per_signal": T,
        "sample_rate_hz": XYLO_SAMPLE_RATE, "threads": threads or _core.omp_default_threads(),
        "ours_seconds": t_ours, "ours_sc_per_s": work / t_ours,
        "ours_1thread_sc_per_s": work / t_ours_1,
        "ours_1thread_cpu_sc_per_s": work / c_ours_1,
        "realtime_factor": batch * seconds / t_ours,
    }
    try:
        from learnafe.xylo import reference as ref_mod

        if not ref_mod.rockpool_available():
            raise ImportError("rockpool is not installed")
        ref = ref_mod.reference_filterbank()
        T_ref = int((0.1 if quick else 0.4) * XYLO_SAMPLE_RATE)
        xr = x[0, :T_ref]
        holder = {}
        t_ref, c_ref = _best(lambda: holder.__setitem__("y", ref_mod.reference_filter(ref, xr)),
                             2 if quick else 3)
        ours = bank.filter(xr, prepend_reversed=True)[0]
        result.update({
            "reference": "rockpool ChipButterworth, python path (_filter per channel)",
            "reference_samples": T_ref, "reference_seconds": t_ref,
            "reference_sc_per_s": T_ref * C / t_ref,
            "reference_cpu_sc_per_s": T_ref * C / c_ref,
            "bit_exact": bool(np.array_equal(holder["y"], ours)),
        })
        result["speedup"] = result["ours_sc_per_s"] / result["reference_sc_per_s"]
        result["speedup_no_cache"] = result["ours_no_cache_sc_per_s"] / result["reference_sc_per_s"]
        result["speedup_1thread"] = result["ours_1thread_sc_per_s"] / result["reference_sc_per_s"]
        result["speedup_1thread_cpu"] = (result["ours_1thread_cpu_sc_per_s"]
                                         / result["reference_cpu_sc_per_s"])
        result["target_speedup"] = TARGET_RATIO
        result["target_met"] = max(result["speedup"], result["speedup_1thread_cpu"]) >= TARGET_RATIO
    except ImportError as exc:
        result["reference"] = f"unavailable ({exc})"
    return result


def format(result: dict) -> str:  # noqa: A001 - the section interface's name
    lines = [f"16-channel bank, {result['batch']} x {result['samples_per_signal']} samples "
             f"(reverse-and-prepend), {result['threads']} thread(s):",
             f"  learnafe C++ kernel: {result['ours_sc_per_s']:.3e} sample-channels/s "
             f"({result['realtime_factor']:.0f}x real time); 1 thread "
             f"{result['ours_1thread_sc_per_s']:.3e} (CPU time: "
             f"{result['ours_1thread_cpu_sc_per_s']:.3e}); output cache off "
             f"{result['ours_no_cache_sc_per_s']:.3e}"]
    if "reference_sc_per_s" in result:
        lines += [f"  rockpool python path: {result['reference_sc_per_s']:.3e} sample-channels/s "
                  f"(CPU time: {result['reference_cpu_sc_per_s']:.3e}; "
                  f"{result['reference_samples']} samples)",
                  f"  speed-up: {result['speedup']:.0f}x wall-clock (1 thread "
                  f"{result['speedup_1thread']:.0f}x; 1 thread in CPU time "
                  f"{result['speedup_1thread_cpu']:.0f}x; output cache off "
                  f"{result['speedup_no_cache']:.0f}x); target {result['target_speedup']:.0f}x: "
                  f"{'met' if result['target_met'] else 'NOT met'}; outputs bit-exact: "
                  f"{result['bit_exact']}"]
    else:
        lines.append(f"  reference: {result['reference']}")
    return "\n".join(lines)
