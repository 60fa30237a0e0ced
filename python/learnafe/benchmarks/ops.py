"""``learnafe bench`` section ``ops``: the biquad filter-bank op against scipy and PyTorch.

All numbers come from one run on one machine, so the ratios compare like with
like.  Throughput is in sample-channels per second (B * C * T / seconds).
Paths are timed in interleaved rounds (one warm-up round, then ``repeats``
rounds, each timing every path once) and each path's time is its best round,
so a burst of load from other processes affects all paths alike.

Paths (float32 signal, float64 coefficients, ``B x T`` input, C channels):

* ``op forward``: :func:`learnafe.ops.biquad_filterbank` on torch tensors
  without autograd (output allocation included, through the op's output
  cache, which hands back the previous call's buffer once it was dropped);
* ``op forward no cache``: the same with the output cache disabled, i.e.
  every call maps and first-touches a fresh ``[B, C, T]`` output;
* ``op forward into out``: the same writing into a preallocated output
  (``out=``), i.e. without allocating and first-touching a fresh
  ``[B, C, T]`` array (the kernel's own speed);
* ``op forward+backward``: the same with ``requires_grad`` on x, b and a and
  ``y.backward(g)`` with a fixed random ``g``;
* ``fill output``: ``Tensor.fill_`` of a preallocated float32 tensor of the
  output's size ``[B, C, T]`` with the same threads: the time to write the
  output once, the memory-bandwidth limit the op is measured against
  (``forward_over_fill``, ``forward_backward_over_fill``);
* ``scipy sosfilt``: ``scipy.signal.sosfilt`` over the time axis of the
  ``[B, T]`` batch, one call per channel (scipy has no gradients);
* ``scipy lfilter``: the same with ``scipy.signal.lfilter``;
* ``torch loop``: the recursion written as a Python loop over time on
  ``[B, C]`` tensors (autograd through it for forward+backward), measured on
  the first ``torch_loop_samples`` samples (its cost per sample does not
  depend on T);
* ``torchlpc``: the all-pole part only (``v = x / A(z)``, what
  ``torchlpc.sample_wise_lpc`` computes, with its own gradients) on the
  ``[B * C, T]`` rows of the input repeated per channel, coefficients
  ``[B * C, T, 2]`` (time-invariant, expanded); forward and
  forward+backward.  Optional (``pip install torchlpc``); skipped with a
  note when it is not installed;
* ``fused envelope``: :func:`learnafe.ops.filterbank_envelope` forward +
  backward;
* ``unfused envelope``: the same features composed from the op:
  ``biquad_filterbank`` -> ``abs`` -> a one-pole low-pass run through
  ``biquad_filterbank`` on the ``[B * C, T]`` rectified signals -> every
  hop-th sample, forward + backward.

Peak memory of the two envelope paths is the growth of the resident set
(Linux ``VmHWM`` after resetting it through ``/proc/self/clear_refs``; else
the ``ru_maxrss`` high-water mark) over one forward + backward, measured in a
fresh Python process per path after one warm-up step with the inputs already
allocated, so every allocator (torch's included) is counted; the op's output
cache is disabled there (``LEARNAFE_OUTPUT_CACHE_MB=0``), so buffers it would
keep from the warm-up step count too.
"""

from __future__ import annotations

import logging
import os
import platform
import statistics
import time

import numpy as np

from learnafe.benchmarks._ops_memory import memory_in_subprocess
from learnafe.benchmarks._ops_reference import (
    SAMPLE_RATE,
    TAU_S,
    bank,
    bench_tensors,
    envelope_step,
    torch_loop,
    torchlpc_allpole,
    torchlpc_available,
    unfused_envelope,
)

TITLE = "biquad filter-bank op (forward, adjoint, fused envelope) vs scipy, PyTorch and torchlpc"

log = logging.getLogger("learnafe.bench.ops")

FULL = dict(batch=32, samples=20000, channels=16, hop=200, repeats=5, torch_loop_samples=1000)
QUICK = dict(batch=8, samples=4000, channels=16, hop=200, repeats=2, torch_loop_samples=400)
TARGETS = {
    "forward_vs_sosfilt": 30.0,            # op forward >= 30x scipy sosfilt
    "forward_backward_vs_sosfilt": 5.0,    # op fwd+bwd >= 5x faster than sosfilt forward
    "fused_vs_unfused_speed": 2.0,         # fused env fwd+bwd >= 2x faster than unfused
    "fused_vs_unfused_memory": 8.0,        # fused peak memory <= 1/8 of unfused
}
# Upper bounds: the op against the time to fill its output once (the memory limit).
LIMITS = {
    "forward_over_fill": 1.6,              # op forward <= 1.6x the fill time
    "forward_backward_over_fill": 5.0,     # op fwd+bwd (y.backward(g)) <= 5x the fill time
}


def run(args) -> dict:
    """Measure every path of the section; returns a JSON-serialisable dict."""
    from learnafe import ops
    from learnafe.benchmarks._environment import section_settings

    cfg, seed, threads = section_settings(args, QUICK, FULL)
    log.info("ops benchmark: B=%d T=%d C=%d hop=%d, %d thread(s), kernels=%s, best of %d",
             cfg["batch"], cfg["samples"], cfg["channels"], cfg["hop"], threads, ops.kernel_isa(),
             cfg["repeats"])
    data = _bench_inputs(cfg, seed)
    lpc_ok, lpc_note = torchlpc_available()
    if not lpc_ok:
        log.info("%s", lpc_note)
    paths = [*_op_paths(data), *_reference_paths(data, lpc_ok),
             ("fused_envelope_forward_backward", envelope_step("fused", cfg, seed), data["work"]),
             ("unfused_envelope_forward_backward", envelope_step("unfused", cfg, seed), data["work"])]
    timings, memory = _time_paths(paths, cfg, seed, threads)
    return _result(cfg, seed, threads, data, timings, memory, lpc_ok, lpc_note)


def _bench_inputs(cfg: dict, seed: int) -> dict:
    """The section's inputs: NumPy and torch signals and banks, the output gradient, the torch
    loop's shorter signal, the per-example banks."""
    import torch

    B, T, C = cfg["batch"], cfg["samples"], cfg["channels"]
    x, b, a, xt, bt, at = bench_tensors(cfg, seed, False)
    TL = min(cfg["torch_loop_samples"], T)
    gy = torch.tensor(np.random.default_rng(seed + 2).standard_normal((B, C, T)), dtype=torch.float32)
    # Per-example banks of the same sizes: every batch item its own numerators (the shared ones
    # perturbed by 1 %), the denominators repeated: one [B, C, 3] / [B, C, 2] call.
    rng_pe = np.random.default_rng(seed + 3)
    bpe = (bt.detach()[None] * torch.from_numpy(1 + 0.01 * rng_pe.standard_normal((B, C, 3)))).contiguous()
    ape = at.detach()[None].expand(B, C, 2).contiguous()
    return {"x": x, "b": b, "a": a, "xt": xt, "bt": bt, "at": at, "gy": gy, "TL": TL, "bpe": bpe, "ape": ape,
            "shape": (B, C, T), "work": B * C * T}


def _op_paths(d: dict) -> list:
    """(name, call, sample-channels) of the op's own paths and of the memory limit (a fill)."""
    import torch

    from learnafe import ops
    from learnafe.ops.buffers import output_cache_disabled

    xt, bt, at, gy, work = d["xt"], d["bt"], d["at"], d["gy"], d["work"]
    xg, bg, ag = (t.detach().clone().requires_grad_(True) for t in (xt, bt, at))
    y_out = torch.empty(d["shape"], dtype=torch.float32)
    y_fill = torch.empty(d["shape"], dtype=torch.float32)

    def op_fwd():
        with torch.no_grad():
            ops.biquad_filterbank(xt, bt, at)

    def op_fwd_no_cache():
        with output_cache_disabled(), torch.no_grad():
            ops.biquad_filterbank(xt, bt, at)

    def op_fwd_per_example():
        with torch.no_grad():
            ops.biquad_filterbank(xt, d["bpe"], d["ape"])

    def op_fwd_out():
        with torch.no_grad():
            ops.biquad_filterbank(xt, bt, at, out=y_out)

    def op_fwd_bwd():
        xg.grad = bg.grad = ag.grad = None
        ops.biquad_filterbank(xg, bg, ag).backward(gy)

    return [("fill_output", lambda: y_fill.fill_(1.0), work), ("op_forward", op_fwd, work),
            ("op_forward_per_example", op_fwd_per_example, work), ("op_forward_no_cache", op_fwd_no_cache, work),
            ("op_forward_into_out", op_fwd_out, work), ("op_forward_backward", op_fwd_bwd, work)]


def _reference_paths(d: dict, lpc_ok: bool) -> list:
    """(name, call, sample-channels) of the alternatives: scipy, a plain torch loop, torchlpc."""
    import scipy.signal as ss
    import torch

    x, b, a, xt, bt, at, gy, TL, work = (d[k] for k in ("x", "b", "a", "xt", "bt", "at", "gy", "TL", "work"))
    B, C, _ = d["shape"]
    sos = [np.concatenate([b[c], [1.0], a[c]])[None, :] for c in range(C)]
    xl = xt[:, :TL].detach().clone()
    xlg, blg, alg = (t.detach().clone().float().requires_grad_(True) for t in (xl, bt, at))
    gl = gy[:, :, :TL].contiguous()

    def loop_fwd():
        with torch.no_grad():
            torch_loop(xl, bt.float(), at.float())

    def loop_fwd_bwd():
        xlg.grad = blg.grad = alg.grad = None
        torch_loop(xlg, blg, alg).backward(gl)

    paths = [
        ("scipy_sosfilt_forward", lambda: [ss.sosfilt(s, x, axis=-1) for s in sos], work),
        ("scipy_lfilter_forward", lambda: [ss.lfilter(b[c], np.r_[1.0, a[c]], x, axis=-1)
                                           for c in range(C)], work),
        ("torch_loop_forward", loop_fwd, B * C * TL),
        ("torch_loop_forward_backward", loop_fwd_bwd, B * C * TL),
    ]
    if lpc_ok:
        xq, aq = xt.detach().clone(), at.detach().clone().float()
        xqg, aqg = xq.clone().requires_grad_(True), aq.clone().requires_grad_(True)

        def lpc_fwd():
            with torch.no_grad():
                torchlpc_allpole(xq, aq)

        def lpc_fwd_bwd():
            xqg.grad = aqg.grad = None
            torchlpc_allpole(xqg, aqg).backward(gy)

        paths += [("torchlpc_allpole_forward", lpc_fwd, work),
                  ("torchlpc_allpole_forward_backward", lpc_fwd_bwd, work)]
    return paths


def _time_paths(paths: list, cfg: dict, seed: int, threads: int) -> tuple[dict, dict]:
    """Interleaved rounds: every round times each path once, so load bursts from other processes
    hit all paths alike; a path's time is its best round.  Then the envelopes' peak memory."""
    from learnafe._progress import progress

    reps = cfg["repeats"]
    times: dict[str, list[float]] = {name: [] for name, _, _ in paths}
    with progress(total=(reps + 1) * len(paths) + 2, desc="bench ops", unit="step") as bar:
        for rnd in range(reps + 1):  # round 0 is the warm-up
            for name, fn, _ in paths:
                bar.set_postfix_str(f"round {rnd}: {name}")
                t = time.perf_counter()
                fn()
                if rnd:
                    times[name].append(time.perf_counter() - t)
                bar.update()
        timings: dict[str, dict] = {}
        for name, _, work in paths:
            best = min(times[name])
            timings[name] = {"best_s": best, "median_s": statistics.median(times[name]),
                             "sample_channels_per_s": work / best, "sample_channels": work}
            log.info("%-36s %8.2f ms  %.3g sample-channels/s", name, best * 1e3, work / best)
        memory = {}
        for path in ("fused", "unfused"):
            bar.set_postfix_str(f"peak memory {path}")
            memory[path] = memory_in_subprocess(path, cfg, seed, threads)
            log.info("peak memory %-8s %.1f MiB (%s)", path, memory[path]["peak_bytes"] / 2**20,
                     memory[path]["method"])
            bar.update()
    return timings, memory


def _ratios(timings: dict, memory: dict, lpc_ok: bool) -> tuple[dict, dict]:
    """The speed ratios against the alternatives and the times against the fill (memory limit)."""
    rate = {k: v["sample_channels_per_s"] for k, v in timings.items()}
    best = {k: v["best_s"] for k, v in timings.items()}
    limits = {
        "forward_over_fill": best["op_forward"] / best["fill_output"],
        "forward_into_out_over_fill": best["op_forward_into_out"] / best["fill_output"],
        "forward_backward_over_fill": best["op_forward_backward"] / best["fill_output"],
        "fused_envelope_forward_backward_over_fill":
            best["fused_envelope_forward_backward"] / best["fill_output"],
    }
    ratios = {
        "forward_vs_sosfilt": rate["op_forward"] / rate["scipy_sosfilt_forward"],
        "forward_no_cache_vs_sosfilt": rate["op_forward_no_cache"] / rate["scipy_sosfilt_forward"],
        "forward_into_out_vs_sosfilt": rate["op_forward_into_out"] / rate["scipy_sosfilt_forward"],
        "forward_vs_lfilter": rate["op_forward"] / rate["scipy_lfilter_forward"],
        "forward_vs_torch_loop": rate["op_forward"] / rate["torch_loop_forward"],
        "forward_backward_vs_sosfilt": rate["op_forward_backward"] / rate["scipy_sosfilt_forward"],
        "forward_backward_vs_torch_loop": rate["op_forward_backward"] / rate["torch_loop_forward_backward"],
        "fused_vs_unfused_speed": rate["fused_envelope_forward_backward"]
        / rate["unfused_envelope_forward_backward"],
        "fused_vs_unfused_memory": memory["unfused"]["peak_bytes"] / max(memory["fused"]["peak_bytes"], 1),
        "fused_envelope_vs_op_forward_backward": rate["fused_envelope_forward_backward"]
        / rate["op_forward_backward"],
    }
    if lpc_ok:
        ratios["forward_vs_torchlpc"] = rate["op_forward"] / rate["torchlpc_allpole_forward"]
        ratios["forward_backward_vs_torchlpc"] = (rate["op_forward_backward"]
                                                  / rate["torchlpc_allpole_forward_backward"])
    return ratios, limits


def _result(cfg: dict, seed: int, threads: int, d: dict, timings: dict, memory: dict, lpc_ok: bool,
            lpc_note: str) -> dict:
    """The section's JSON: configuration, timings, ratios, targets, and the two sanity checks."""
    import torch

    from learnafe import ops

    xt, bt, at, hop = d["xt"], d["bt"], d["at"], cfg["hop"]
    # Sanity: the fused op equals the unfused composition on this data.
    with torch.no_grad():
        fused = ops.filterbank_envelope(xt, bt, at, hop=hop, tau=TAU_S, sample_rate=SAMPLE_RATE)
        unfused = unfused_envelope(xt, bt, at, hop=hop, tau=TAU_S, sample_rate=SAMPLE_RATE)
        fused_err = float((fused - unfused).abs().max() / unfused.abs().max())
    ratios, limits = _ratios(timings, memory, lpc_ok)
    best = {k: v["best_s"] for k, v in timings.items()}
    return {
        "config": {**cfg, "threads": threads, "dtype": "float32 signal, float64 coefficients",
                   "sample_rate": SAMPLE_RATE, "tau_s": TAU_S, "seed": seed,
                   "kernel_isa": ops.kernel_isa(), "torch": torch.__version__,
                   "numpy": np.__version__, "machine": platform.machine(),
                   "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                   "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None},
        "timings": timings,
        "peak_memory": memory,
        "ratios": ratios,
        # per-example coefficients cost: per-example forward time / shared forward time (same sizes)
        "per_example_forward_over_shared_forward": best["op_forward_per_example"] / best["op_forward"],
        "memory_limit": limits,
        "torchlpc": "measured (all-pole part only)" if lpc_ok else lpc_note,
        "targets": {**{k: {"target": v, "measured": ratios[k], "met": bool(ratios[k] >= v)}
                       for k, v in TARGETS.items()},
                    **{k: {"target": v, "measured": limits[k], "met": bool(limits[k] <= v), "upper": True}
                       for k, v in LIMITS.items()}},
        "fused_vs_unfused_max_rel_diff": fused_err,
        "float32_precision": float32_precision(seed),
    }


def float32_precision(seed: int = 0) -> dict:
    """Per-channel float32 error of the section structures (learnafe.ops.precision) for the
    16-channel 100 Hz - 8 kHz bank at 20 kHz and a 100 Hz channel at 48.8 kHz (1 s of noise)."""
    from learnafe.ops.precision import float32_errors

    out = {}
    for name, fs, lo, hi, C in (("bank_20k", SAMPLE_RATE, 100.0, 8000.0, 16),
                                ("100hz_48k8", 50e6 / 1024, 100.0, 100.0, 1)):
        b, a = bank(C, fs, f_lo=lo, f_hi=hi)
        out[name] = {"sample_rate": fs, "centres_hz": np.geomspace(lo, hi, C).tolist(), "q": 3.0,
                     "errors": float32_errors(b, a, fs, seed=seed)}
    return out


def format_precision(precision: dict) -> str:
    """Table of float32 errors (max |error| / peak per channel) by structure."""
    lines = []
    for name, d in precision.items():
        structures = list(d["errors"])
        lines.append(f"float32 error / output peak, {name} (fs={d['sample_rate']:g} Hz, Q={d['q']:g}):")
        lines.append(f"  {'centre Hz':>9s} " + " ".join(f"{s:>22s}" for s in structures))
        for i, fc in enumerate(d["centres_hz"]):
            lines.append(f"  {fc:9.0f} " + " ".join(f"{d['errors'][s][i]:22.2e}" for s in structures))
    return "\n".join(lines)


def plot(result: dict, path) -> None:
    """Bar chart of throughput per path (log scale) and the fused/unfused peak memory."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg, t, mem = result["config"], result["timings"], result["peak_memory"]
    names = list(t)
    rates = [t[n]["sample_channels_per_s"] for n in names]
    colors = ["tab:blue" if n.startswith(("op_", "fused")) else "tab:gray" for n in names]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 1]})
    ax.barh(range(len(names)), rates, color=colors)
    ax.set_yticks(range(len(names)), [n.replace("_", " ") for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("sample-channels / s")
    ax.set_title(f"B={cfg['batch']} T={cfg['samples']} C={cfg['channels']}, {cfg['threads']} thread(s), "
                 f"{cfg['kernel_isa']}", fontsize=9)
    ax.grid(axis="x", which="both", alpha=0.3)
    mib = [mem["fused"]["peak_bytes"] / 2**20, mem["unfused"]["peak_bytes"] / 2**20]
    ax2.bar(["fused", "unfused"], mib, color=["tab:blue", "tab:gray"])
    ax2.set_ylabel("peak memory growth, fwd+bwd (MiB)")
    ax2.set_title(f"envelope, hop={cfg['hop']}", fontsize=9)
    for i, v in enumerate(mib):
        ax2.text(i, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt_rate(v: float) -> str:
    return f"{v:.3g}"


def format(result: dict) -> str:  # noqa: A001 - the section interface
    cfg, t, r = result["config"], result["timings"], result["ratios"]
    lines = [f"B={cfg['batch']} T={cfg['samples']} C={cfg['channels']} hop={cfg['hop']}, "
             f"{cfg['threads']} thread(s), kernels {cfg['kernel_isa']}, {cfg['dtype']}, "
             f"best of {cfg['repeats']}"
             + (f", load average {cfg['load_average_1min']:.1f}" if cfg.get("load_average_1min") is not None
                else ""),
             "",
             f"{'path':36s} {'time':>10s} {'sample-ch/s':>12s}"]
    for name, v in t.items():
        note = f"  (first {cfg['torch_loop_samples']} samples)" if name.startswith("torch_loop") else ""
        lines.append(f"{name:36s} {v['best_s'] * 1e3:8.2f}ms {_fmt_rate(v['sample_channels_per_s']):>12s}{note}")
    mem = result["peak_memory"]
    lines += ["",
              f"peak memory fwd+bwd: fused {mem['fused']['peak_bytes'] / 2**20:.1f} MiB, "
              f"unfused {mem['unfused']['peak_bytes'] / 2**20:.1f} MiB ({mem['fused']['method']})",
              f"fused vs unfused max relative difference: {result['fused_vs_unfused_max_rel_diff']:.2e}",
              "",
              "ratios:"]
    for k, v in r.items():
        lines.append(f"  {k:34s} {v:8.2f}x")
    if "per_example_forward_over_shared_forward" in result:
        lines += ["", f"per-example coefficients [B, C, 3]: forward time / shared forward time "
                      f"{result['per_example_forward_over_shared_forward']:6.2f}x"]
    if "memory_limit" in result:
        lines += ["", "memory limit (time / time to fill a preallocated output of [B, C, T] float32):"]
        for k, v in result["memory_limit"].items():
            lines.append(f"  {k:42s} {v:6.2f}x")
    if "torchlpc" in result:
        lines.append(f"torchlpc: {result['torchlpc']}")
    lines += ["", format_precision(result["float32_precision"]), "", "targets:"]
    for k, v in result["targets"].items():
        rel = "<=" if v.get("upper") else ">="
        lines.append(f"  {k:34s} {v['measured']:8.2f}x  (target {rel} {v['target']:g}x)  "
                     f"{'met' if v['met'] else 'NOT met'}")
    return "\n".join(lines)
