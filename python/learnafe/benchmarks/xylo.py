"""``learnafe bench`` section: the XyloAudio 3 fixed-point bank and spike features
against rockpool.

Both sides filter the chip's 16 default channels with the reference's
reverse-and-prepend convention (2T samples processed per T output samples)
in the same run: the C++ kernel on a batch of 8 signals of 48,000 samples
at 48828.125 Hz, rockpool's pure-python ``ChipButterworth`` path on one
shorter signal.  The spike features (rockpool's ``AFESim`` chain: filter
bank, divisive-normalisation spikes, raster) are timed the same way: the
fused one-pass kernel (``learnafe.xylo.features.spike_features``) and the
two-step path (bank, then ``spike_raster``) on the batch, rockpool's python
filter, ``py_spike_gen`` and ``Raster`` on the shorter signal.  Throughput
is in output sample-channels per second, best of the repeats, in wall-clock
time and in CPU time of this process (on a shared machine the CPU time of the
single-threaded runs is the fairer per-core comparison); speed-ups are rate
ratios, i.e. per signal of the batch's length.  Outputs are checked for
equality on the reference's signal.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

TITLE = "XyloAudio 3 fixed-point filter bank and spike features (bit-exact) vs rockpool"

#: Speed-up targets against rockpool: the bit-exact bank, and the fused spike features.
TARGET_RATIO = 1000.0
FEATURES_TARGET_RATIO = 2000.0


def _best(fn, repeat: int) -> tuple[float, float]:
    """(best wall-clock seconds, best CPU seconds of this process) over ``repeat`` calls."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, max(cpu, 1e-9)


@dataclass(frozen=True)
class _Setup:
    """What every step of :func:`run` measures on: the bank, the batch and the repeats."""

    bank: Any
    x: np.ndarray
    threads: int | None
    repeat: int
    quick: bool
    sample_rate: float

    @property
    def work(self) -> int:
        """Output sample-channels of one call on the batch."""
        return self.x.shape[0] * self.x.shape[1] * len(self.bank)


def _setup(args) -> _Setup:
    """The default bank and a random integer batch from ``args`` (quick, threads, seed)."""
    from learnafe.xylo import XyloA3FilterBank
    from learnafe.xylo.design import XYLO_SAMPLE_RATE

    quick = bool(getattr(args, "quick", False))
    rng = np.random.default_rng(int(getattr(args, "seed", 0) or 0))
    full = (1 << 13) - 1
    batch, T = (4, 12000) if quick else (8, 48000)
    return _Setup(bank=XyloA3FilterBank.default(), x=rng.integers(-full, full + 1, size=(batch, T)),
                  threads=getattr(args, "threads", None) or None,
                  repeat=3 if quick else 25,  # calls of ~10 ms: enough repeats for a stable best
                  quick=quick, sample_rate=XYLO_SAMPLE_RATE)


def _time_bank(s: _Setup) -> dict:
    """The C++ bank on the batch: at ``threads``, one thread, and with the output cache off."""
    from learnafe import _core
    from learnafe.ops import set_output_cache_limit

    bank, x, threads, repeat = s.bank, s.x, s.threads, s.repeat
    bank.filter(x[:1, :1000], prepend_reversed=True, num_threads=threads)  # warm-up
    t_ours, _ = _best(lambda: bank.filter(x, prepend_reversed=True, num_threads=threads), repeat)
    t_ours_1, c_ours_1 = _best(lambda: bank.filter(x, prepend_reversed=True, num_threads=1),
                               repeat)
    # The same call with the shared output cache switched off: every call then
    # pays for fresh output pages (shown so that the cache's share is visible).
    prev = set_output_cache_limit(0)
    try:
        t_nocache, _ = _best(lambda: bank.filter(x, prepend_reversed=True, num_threads=threads),
                             repeat)
    finally:
        set_output_cache_limit(prev)
    batch, T = x.shape
    return {
        "ours_no_cache_sc_per_s": s.work / t_nocache,
        "channels": len(bank), "batch": batch, "samples_per_signal": T,
        "sample_rate_hz": s.sample_rate, "threads": threads or _core.omp_default_threads(),
        "ours_seconds": t_ours, "ours_sc_per_s": s.work / t_ours,
        "ours_1thread_sc_per_s": s.work / t_ours_1,
        "ours_1thread_cpu_sc_per_s": s.work / c_ours_1,
        "realtime_factor": batch * (T / s.sample_rate) / t_ours,
    }


def _time_features(s: _Setup, cfg) -> dict:
    """The fused spike features on the batch (``threads``, one thread) and the two-step path."""
    from learnafe.xylo.features import spike_features, spike_raster

    bank, x, threads, repeat = s.bank, s.x, s.threads, s.repeat
    spike_features(x[:1, :1000], bank, cfg, num_threads=threads)  # warm-up
    t_feat, _ = _best(lambda: spike_features(x, bank, cfg, num_threads=threads), repeat)
    t_feat_1, c_feat_1 = _best(lambda: spike_features(x, bank, cfg, num_threads=1), repeat)
    t_two, _ = _best(lambda: spike_raster(bank.filter(x, prepend_reversed=True, num_threads=threads),
                                          cfg, num_threads=threads), max(3, repeat // 5))
    return {
        "features_sc_per_s": s.work / t_feat, "features_seconds": t_feat,
        "features_1thread_sc_per_s": s.work / t_feat_1,
        "features_1thread_cpu_sc_per_s": s.work / c_feat_1,
        "features_two_step_sc_per_s": s.work / t_two,
        "features_config": cfg.to_dict(),
    }


def _reference_bank(s: _Setup, ref_mod, ref, result: dict) -> dict:
    """rockpool's python filter on a shorter signal, the speed-ups and the bit-exact check."""
    C = len(s.bank)
    T_ref = int((0.1 if s.quick else 0.4) * s.sample_rate)
    xr = s.x[0, :T_ref]
    holder = {}
    t_ref, c_ref = _best(lambda: holder.__setitem__("y", ref_mod.reference_filter(ref, xr)),
                         2 if s.quick else 3)
    ours = s.bank.filter(xr, prepend_reversed=True)[0]
    out = {
        "reference": "rockpool ChipButterworth, python path (_filter per channel)",
        "reference_samples": T_ref, "reference_seconds": t_ref,
        "reference_sc_per_s": T_ref * C / t_ref,
        "reference_cpu_sc_per_s": T_ref * C / c_ref,
        "bit_exact": bool(np.array_equal(holder["y"], ours)),
    }
    out["speedup"] = result["ours_sc_per_s"] / out["reference_sc_per_s"]
    out["speedup_no_cache"] = result["ours_no_cache_sc_per_s"] / out["reference_sc_per_s"]
    out["speedup_1thread"] = result["ours_1thread_sc_per_s"] / out["reference_sc_per_s"]
    out["speedup_1thread_cpu"] = (result["ours_1thread_cpu_sc_per_s"]
                                  / out["reference_cpu_sc_per_s"])
    out["target_speedup"] = TARGET_RATIO
    out["target_met"] = max(out["speedup"], out["speedup_1thread_cpu"]) >= TARGET_RATIO
    return out


def _reference_features(s: _Setup, ref_mod, ref, cfg, result: dict) -> dict:
    """The AFESim chain (filter bank + spikes + raster) of rockpool on the reference's signal."""
    from learnafe.xylo.features import spike_features

    C = len(s.bank)
    T_feat = int((0.05 if s.quick else 0.1) * s.sample_rate)
    xf = s.x[0, :T_feat]
    holder = {}
    t_fref, c_fref = _best(
        lambda: holder.__setitem__("c", ref_mod.reference_features(ref, xf, cfg)), 2 if s.quick else 3)
    out = {
        "features_reference": "rockpool AFESim chain, python paths (ChipButterworth._filter, "
                              "py_spike_gen, Raster)",
        "features_reference_samples": T_feat, "features_reference_seconds": t_fref,
        "features_reference_sc_per_s": T_feat * C / t_fref,
        "features_reference_cpu_sc_per_s": T_feat * C / c_fref,
        "features_bit_exact": bool(np.array_equal(holder["c"], spike_features(xf, s.bank, cfg))),
    }
    out["features_speedup"] = result["features_sc_per_s"] / out["features_reference_sc_per_s"]
    out["features_speedup_1thread_cpu"] = (result["features_1thread_cpu_sc_per_s"]
                                           / out["features_reference_cpu_sc_per_s"])
    out["features_target_speedup"] = FEATURES_TARGET_RATIO
    out["features_target_met"] = max(out["features_speedup"],
                                     out["features_speedup_1thread_cpu"]) >= FEATURES_TARGET_RATIO
    return out


def run(args=None) -> dict:
    """Measure; ``args`` may carry ``quick`` (bool), ``threads`` (int) and ``seed``.  The steps:
    set-up, the bank, the spike features, then (with rockpool) the two references."""
    from learnafe.xylo.features import SpikeConfig

    s = _setup(args)
    cfg = SpikeConfig()
    bank = _time_bank(s)
    result = {**_time_features(s, cfg), **bank}
    try:
        from learnafe.xylo import reference as ref_mod

        if not ref_mod.rockpool_available():
            raise ImportError("rockpool is not installed")
        ref = ref_mod.reference_filterbank()
        result.update(_reference_bank(s, ref_mod, ref, result))
        result.update(_reference_features(s, ref_mod, ref, cfg, result))
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
    if "features_sc_per_s" in result:
        lines += ["spike features (filter bank + divisive-normalisation spikes + raster), same batch:",
                  f"  learnafe fused one pass: {result['features_sc_per_s']:.3e} sample-channels/s "
                  f"({result['features_seconds'] * 1e3:.1f} ms); 1 thread "
                  f"{result['features_1thread_sc_per_s']:.3e} (CPU time: "
                  f"{result['features_1thread_cpu_sc_per_s']:.3e}); two-step path "
                  f"{result['features_two_step_sc_per_s']:.3e}"]
        if "features_reference_sc_per_s" in result:
            lines += [f"  rockpool AFESim python path: {result['features_reference_sc_per_s']:.3e} "
                      f"sample-channels/s (CPU time: {result['features_reference_cpu_sc_per_s']:.3e}; "
                      f"{result['features_reference_samples']} samples)",
                      f"  speed-up: {result['features_speedup']:.0f}x wall-clock (1 thread in CPU time "
                      f"{result['features_speedup_1thread_cpu']:.0f}x); target "
                      f"{result['features_target_speedup']:.0f}x: "
                      f"{'met' if result['features_target_met'] else 'NOT met'}; counts bit-exact: "
                      f"{result['features_bit_exact']}"]
    return "\n".join(lines)
