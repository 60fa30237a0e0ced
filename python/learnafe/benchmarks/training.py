"""``learnafe bench --only training``: throughput of one co-design training step and where it goes.

A step is what :class:`learnafe.training.trainer.Trainer` does per batch: data
loading and augmentation (:class:`learnafe.training.data.Augmenter`), front end
(fused filter-bank envelope op, with the circuit's kT/C noise drawn inside the
op when on) -> DSCNN -> L_BPF -> backward -> AdamW
(:func:`learnafe.training.loop.optimizer_step`), 1 s clips at 20 kHz, batch 32.

Measured for the conventional mode (front end frozen) and co-design (front end
trained), kT/C noise off and on, with 1 and 2 threads (``--threads N``: only N):

* ``clips/s``: whole training steps (front end + DSCNN + loss + backward +
  optimiser, the clips in memory), median step time over the rounds (the four
  configurations of a thread count run in interleaved rounds, so that load
  changes hit them alike; ``spread`` is (max - min) / median of the step times);
* ``with data``: the same plus loading and augmenting the batch (the
  ``data`` and ``aug`` parts below), i.e. what a single-process trainer gets;
* the parts of one step, timed one after the other on the same batch:
  ``data`` (reading the clips: decoded-audio cache, crop, SNR-aware noise
  mixing), ``aug`` (speed/pitch, shift, gain, masks), ``fe fwd`` (features),
  ``net fwd`` (mask, DSCNN, L_BPF), ``net bwd`` (backward through the DSCNN and
  the cost terms), ``fe bwd`` (backward through the front end, co-design only),
  ``opt`` (AdamW and the projection of the circuit parameters); medians over
  the rounds and their shares of the sum.

Data come from the default training set (``data/synth-small``) when present,
else from ``../shared/data/gsc-v2-testset-dev`` with the training SNR range
and ``../shared/data/gsc-background-noise``; without either the data parts
are skipped (noted in the output).  Also timed: the envelope kernels alone
with and without noise and the noise generator alone (process CPU time, best
of the rounds).  The issue's targets are checked on the co-design rows: front end (fwd + bwd) with noise at most 1.5x without, and at
most a third of the DSCNN's (fwd + bwd).

The scaling of the step over processes: ``torchrun --nproc-per-node 2`` (gloo,
one thread each) against one process (:mod:`learnafe.benchmarks._ddp`).

The same co-design step (noise off) eager and with the model under
``torch.compile(fullgraph=True)`` (inductor; the filter-bank op is a custom
operator, docs/ops.md) side by side (:func:`compile_comparison`), with the
one-off compile time.  (Equality of compiled and eager results is a test,
tests/test_ops_compile.py; here dropout draws differ between the two.)
"""

from __future__ import annotations

import os
import time

import numpy as np

from learnafe.benchmarks._step import make_setup, train_step

TITLE = "training step: clips/s and the share of each part (data, augmentation, front end, DSCNN, optimiser)"

PARTS = ("data", "aug", "fe_fwd", "net_fwd", "net_bwd", "fe_bwd", "opt")
SHARED_DATA = "../shared/data/gsc-v2-testset-dev"
SHARED_NOISE = "../shared/data/gsc-background-noise"


# ------------------------------------------------------------------ setup ---

def step_parts(s: dict) -> dict:
    """The same step split into front end / DSCNN / optimiser parts, each timed (seconds)."""
    from learnafe.training.model import apply_feature_mask

    fe, model, opt = s["fe"], s["model"], s["opt"]
    t = {}
    w = time.perf_counter()
    feats, power, area = fe.forward_with_cost(s["audio"])  # one design-map pass, as in the step
    t["fe_fwd"] = time.perf_counter() - w
    w = time.perf_counter()
    f = feats.detach().requires_grad_(feats.requires_grad)
    logits = model.classifier(apply_feature_mask(f, s["mask"]))
    loss, _ = s["loss_fn"](logits, s["labels"], power, area)
    t["net_fwd"] = time.perf_counter() - w
    w = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    # The power and area terms share the design map with the features
    # (forward_with_cost): keep that graph for the front end's backward below.
    loss.backward(retain_graph=feats.requires_grad)
    t["net_bwd"] = time.perf_counter() - w
    w = time.perf_counter()
    if feats.requires_grad:
        feats.backward(f.grad)
    t["fe_bwd"] = time.perf_counter() - w
    w = time.perf_counter()
    opt.step()
    if s["mode"] == "codesign":
        fe.project_()
    t["opt"] = time.perf_counter() - w
    return t


# ------------------------------------------------------------------- data ---

def open_data(cfg):
    """``(dataset, description)`` for timing data loading, or ``(None, reason)``."""
    from learnafe.training.data import CACHE_DIR, open_split

    if os.path.isdir(cfg.data.root):
        return open_split(cfg.data.root, cfg.data.train_split, cfg, snr="train"), cfg.data.root
    if os.path.isdir(SHARED_DATA):
        from learnafe.data import ClipOptions, KeywordDataset, LoadOptions

        noise = SHARED_NOISE if os.path.isdir(SHARED_NOISE) else None
        clips = ClipOptions(sample_rate=cfg.data.sample_rate, snr_db=(cfg.augment.snr_low_db, cfg.augment.snr_high_db),
                            noise=noise, noise_prob=cfg.augment.p_noise, seed=cfg.output.seed)
        ds = KeywordDataset(SHARED_DATA, "test", clips, LoadOptions(cache_dir=CACHE_DIR, progress=False),
                            random_shift=True)
        return ds, f"{SHARED_DATA} (training SNR range, {'its' if noise is None else SHARED_NOISE} noise)"
    return None, f"no data set ({cfg.data.root} or {SHARED_DATA}): data loading not measured"


def data_parts(ds, cfg, batch: int, rounds: int, seed: int) -> dict:
    """Median seconds per batch of reading (``data``) and augmenting (``aug``) ``batch`` clips."""
    from learnafe.training.data import Augmenter
    from learnafe.training.model import build_frontend, feature_shape

    aug = Augmenter(cfg, *feature_shape(build_frontend(cfg), cfg.data.sample_rate))
    rng = np.random.default_rng(seed)
    times = {"data": [], "aug": []}
    for r in range(rounds):
        idx = rng.choice(len(ds), size=batch, replace=len(ds) < batch)
        w = time.perf_counter()
        xs = [ds.waveform(int(i)) for i in idx]
        times["data"].append(time.perf_counter() - w)
        w = time.perf_counter()
        for i, x in zip(idx, xs):
            aug.waveform(x, int(ds.labels[int(i)]), r, int(i))
        times["aug"].append(time.perf_counter() - w)
    return {k: float(np.median(v)) for k, v in times.items()}


# ------------------------------------------------------------ measurement ---

CONFIGS = (("conventional", False), ("codesign", False), ("conventional", True), ("codesign", True))


def measure(threads: int, batch: int, rounds: int, seed: int, data: dict | None, configs=CONFIGS) -> list:
    """One row per (mode, noise): whole-step clips/s and the median time of each part.

    The configurations are measured in interleaved rounds (every configuration once per
    round), so that a change of the machine's load hits all of them alike and their
    ratios stay meaningful.
    """
    import torch

    from learnafe import ops

    torch.set_num_threads(threads)
    ops.set_num_threads(threads)
    setups = [make_setup(mode, noise, batch, seed) for mode, noise in configs]
    for s in setups:
        train_step(s)  # warm-up (first-touch allocations, oneDNN primitive creation)
    parts = [{k: [] for k in PARTS[2:]} for _ in setups]
    steps = [[] for _ in setups]
    for _ in range(rounds):
        for s, p, st in zip(setups, parts, steps):
            for k, v in step_parts(s).items():
                p[k].append(v)
            w = time.perf_counter()
            train_step(s)
            st.append(time.perf_counter() - w)
    rows = []
    for (mode, noise), p, st in zip(configs, parts, steps):
        med = {k: float(np.median(v)) for k, v in p.items()}
        if data is not None:
            med.update(data)
        step = float(np.median(st))
        row = {"mode": mode, "noise": noise, "threads": threads, "batch": batch, "rounds": rounds,
               "step_s": step, "clips_per_s": batch / step, "parts_s": med,
               "step_spread": float((max(st) - min(st)) / step)}
        if data is not None:
            row["clips_per_s_with_data"] = batch / (step + data["data"] + data["aug"])
        total = sum(med.values())
        row["shares"] = {k: v / total for k, v in med.items()}
        rows.append(row)
    return rows


def dscnn_layouts(threads: int, batch: int, rounds: int, seed: int) -> dict:
    """DSCNN fwd+bwd in the default (NCHW) layout against channels_last, and how far the results move."""
    import torch

    from learnafe.models.dscnn import DSCNN

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    ref = DSCNN(16).train()
    cl = DSCNN(16).train()
    cl.load_state_dict(ref.state_dict())
    cl = cl.to(memory_format=torch.channels_last)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 16, 100, generator=gen)
    y = torch.randint(0, 12, (batch,), generator=gen)

    def fwd_bwd(m):
        m.zero_grad(set_to_none=True)
        torch.manual_seed(seed)  # same dropout mask
        out = m(x)
        torch.nn.functional.cross_entropy(out, y).backward()
        return out.detach(), [p.grad.detach().clone() for p in m.parameters()]

    times = {"nchw": [], "channels_last": []}
    for m in (ref, cl):
        fwd_bwd(m)
    for _ in range(rounds):
        for name, m in (("nchw", ref), ("channels_last", cl)):
            w = time.perf_counter()
            fwd_bwd(m)
            times[name].append(time.perf_counter() - w)
    o1, g1 = fwd_bwd(ref)
    o2, g2 = fwd_bwd(cl)
    rel = max(float((a - b).abs().max() / a.abs().max().clamp_min(1e-30)) for a, b in zip(g1, g2))
    return {"threads": threads, "nchw_s": float(np.median(times["nchw"])),
            "channels_last_s": float(np.median(times["channels_last"])),
            "max_abs_logit_diff": float((o1 - o2).abs().max()), "max_rel_grad_diff": rel,
            "bitwise_equal": bool(torch.equal(o1, o2) and all(torch.equal(a, b) for a, b in zip(g1, g2)))}


def noise_kernel_cost(threads: int, rounds: int, seed: int, batch: int = 32) -> dict:
    """The envelope kernels alone (batch x 1 s at 20 kHz, 16 channels, hop 200, float32) with and
    without noise, and the generator alone: process CPU time, best of the rounds."""
    from learnafe import _core, ops
    from learnafe.benchmarks._ops_reference import bank

    b, a = bank(16)
    x = (0.1 * np.random.default_rng(seed).standard_normal((batch, 20000))).astype(np.float32)
    C, T, hop = 16, 20000, 200
    alpha = ops.envelope_alpha(0.01, 20000.0)
    std = np.full(C, 0.01)
    ck = np.empty((batch, _core.envelope_checkpoint_size(C, T, hop)))
    out = np.empty((batch, C, T // hop), np.float32)
    gout = np.ones_like(out)
    gx, gb, ga, gs = np.empty_like(x), np.empty((C, 3)), np.empty((C, 2)), np.empty(C)
    noise = np.empty((1, C, 16384))
    t = {"fwd": [], "bwd": [], "fwd_noise": [], "bwd_noise": [], "generator_ns": []}
    for r in range(rounds):
        for nz in (False, True):
            kw = {"noise_std": std, "seed": seed + r} if nz else {}
            c = time.process_time()
            _core.envelope_forward_f32(x, b, a, hop, alpha, "abs", out, threads, ck=ck, **kw)
            t["fwd_noise" if nz else "fwd"].append(time.process_time() - c)
            c = time.process_time()
            _core.envelope_backward_f32(x, b, a, hop, alpha, "abs", gout, gx, gb, ga, threads, ck=ck,
                                        gstd=gs if nz else None, **kw)
            t["bwd_noise" if nz else "bwd"].append(time.process_time() - c)
        c = time.process_time()
        _core.gaussian_noise(seed + r, noise, 1)
        t["generator_ns"].append((time.process_time() - c) / noise.size * 1e9)
    res = {k: float(min(v)) for k, v in t.items()}
    res["threads"] = threads
    res["ratio"] = (res["fwd_noise"] + res["bwd_noise"]) / (res["fwd"] + res["bwd"])
    return res


def targets(rows: list) -> list:
    """The issue's targets on the co-design rows, per thread count."""
    out = []
    for th in sorted({r["threads"] for r in rows}):
        by = {r["noise"]: r for r in rows if r["threads"] == th and r["mode"] == "codesign"}
        if set(by) != {False, True}:
            continue
        fe = {k: r["parts_s"]["fe_fwd"] + r["parts_s"]["fe_bwd"] for k, r in by.items()}
        net = by[True]["parts_s"]["net_fwd"] + by[True]["parts_s"]["net_bwd"]
        out.append({"threads": th, "fe_noise_over_fe_clean": fe[True] / fe[False],
                    "fe_noise_over_dscnn": fe[True] / net,
                    "fe_share_of_step": fe[True] / (fe[True] + net + by[True]["parts_s"]["opt"])})
    return out


def run(args) -> dict:
    import torch

    threads_list = [args.threads] if args.threads else [1, 2]
    batch, rounds = (8, 2) if args.quick else (32, 7)
    saved = torch.get_num_threads()
    from learnafe.training.config import TrainConfig

    cfg = TrainConfig()
    ds, data_note = open_data(cfg)
    rows, layouts, kernels = [], [], []
    try:
        for th in threads_list:
            torch.set_num_threads(th)
            data = data_parts(ds, cfg, batch, rounds, args.seed) if ds is not None else None
            rows.extend(measure(th, batch, rounds, args.seed, data))
            layouts.append(dscnn_layouts(th, batch, rounds, args.seed))
            kernels.append(noise_kernel_cost(th, rounds, args.seed, batch))
    finally:
        torch.set_num_threads(saved)
    from learnafe.benchmarks._ddp import scaling

    result = {"batch": batch, "rounds": rounds, "data": data_note, "rows": rows, "targets": targets(rows),
              "dscnn_layouts": layouts, "noise_kernels": kernels,
              "compiled": compile_comparison(batch, rounds, args.seed),
              "ddp": scaling(2, batch, 3 if args.quick else 10, args.seed), "load_average": list(os.getloadavg())}
    result["ratios"] = summary_ratios(result)
    return result


def summary_ratios(result: dict) -> dict:
    """The section's headline numbers, one per name (``<name>_<threads>t``), for the table that
    compares ISA paths (``bench --isa all``)."""
    out = {}
    for t in result["targets"]:
        for k in ("fe_share_of_step", "fe_noise_over_fe_clean", "fe_noise_over_dscnn"):
            out[f"{k}_{t['threads']}t"] = t[k]
    for k in result["noise_kernels"]:
        out[f"envelope_kernels_noise_on_over_off_{k['threads']}t"] = k["ratio"]
    for r in result["rows"]:
        if r["mode"] == "codesign" and r["noise"]:
            out[f"codesign_noisy_step_clips_per_s_{r['threads']}t"] = r["clips_per_s"]
    ddp = result.get("ddp") or {}
    if "speedup" in ddp:
        out["torchrun_2proc_over_1proc"] = ddp["speedup"]
    return out


def compile_comparison(batch: int, steps: int, seed: int) -> dict:
    """Co-design step (noise off) eager vs ``torch.compile(model, fullgraph=True)``: clips/s each.

    Both models start from the same weights; the compiled one is warmed up
    (compiled) first and its compile time reported.  Steps alternate between
    the two, best of ``steps`` rounds each, so load changes hit both alike.
    """
    import torch

    from learnafe.training.config import TrainConfig
    from learnafe.training.loss import BPFLoss
    from learnafe.training.model import CoDesignModel, build_classifier, build_frontend

    cfg = TrainConfig.from_dict({"bank.mode": "codesign"})
    gen = torch.Generator().manual_seed(seed)
    audio = 0.1 * torch.randn(batch, cfg.data.sample_rate, generator=gen)
    labels = torch.randint(0, 12, (batch,), generator=gen)

    def make(compiled: bool):
        torch.manual_seed(seed)
        fe = build_frontend(cfg)
        model = CoDesignModel(fe, build_classifier(cfg, cfg.bank.n_channels)).train()
        call = torch.compile(model, fullgraph=True) if compiled else model
        loss_fn = BPFLoss(fe.reference_power(), fe.reference_area(), lambda_i=0.05, lambda_c=0.05)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)

        def step():
            out = call(audio)
            loss, _ = loss_fn(out["logits"], labels, out["power"], out["area"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            fe.project_()

        return step

    eager, compiled = make(False), make(True)
    eager()  # warm-up
    t = time.perf_counter()
    compiled()  # compiles
    compile_s = time.perf_counter() - t
    best = {"eager": float("inf"), "compiled": float("inf")}
    for _ in range(steps):
        for name, fn in (("eager", eager), ("compiled", compiled)):
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return {"mode": "codesign", "noise": False, "batch": batch, "rounds": steps,
            "threads": torch.get_num_threads(),
            "eager_clips_per_s": batch / best["eager"], "compiled_clips_per_s": batch / best["compiled"],
            "speedup": best["eager"] / best["compiled"], "compile_s": compile_s}


def _format_compiled(c: dict) -> list[str]:
    return [f"eager vs torch.compile(fullgraph=True), {c['mode']}, noise off, batch {c['batch']}, "
            f"{c.get('threads', '?')} thread(s) (best of {c['rounds']} alternating steps):",
            f"  eager {c['eager_clips_per_s']:.1f} clips/s, compiled {c['compiled_clips_per_s']:.1f} clips/s, "
            f"compiled/eager speed {c['speedup']:.2f}x; compile (first call) {c['compile_s']:.1f} s"]


def format(result: dict) -> str:  # noqa: A001 - the section interface
    lines = [f"batch {result['batch']}, 1 s clips at 20 kHz, median of {result['rounds']} rounds; "
             f"data: {result['data']}",
             f"{'mode':<13}{'noise':<6}{'thr':>4}{'clips/s':>9}{'+data':>8}   "
             + "".join(f"{p:>9}" for p in PARTS) + "   (ms, share)"]
    for r in result["rows"]:
        parts = r["parts_s"]
        cells = "".join(f"{1e3 * parts[p]:>6.1f}{100 * r['shares'][p]:>3.0f}%" if p in parts else f"{'-':>9}"
                        for p in PARTS)
        wd = r.get("clips_per_s_with_data")
        lines.append(f"{r['mode']:<13}{'on' if r['noise'] else 'off':<6}{r['threads']:>4}{r['clips_per_s']:>9.1f}"
                     f"{(f'{wd:.1f}' if wd else '-'):>8}   {cells}   spread {100 * r['step_spread']:.0f} %")
    for t in result["targets"]:
        lines.append(f"co-design, {t['threads']} thread(s): front end fwd+bwd noise on / off "
                     f"{t['fe_noise_over_fe_clean']:.2f}x (target <= 1.5), / DSCNN fwd+bwd "
                     f"{t['fe_noise_over_dscnn']:.2f} (target <= 0.33), front end share of the step "
                     f"{100 * t['fe_share_of_step']:.0f} % (target <= 25 %)")
    for d in result["dscnn_layouts"]:
        lines.append(f"DSCNN fwd+bwd, {d['threads']} thread(s): NCHW {1e3 * d['nchw_s']:.1f} ms, channels_last "
                     f"{1e3 * d['channels_last_s']:.1f} ms; results {'bitwise equal' if d['bitwise_equal'] else 'differ'}"
                     f" (max |logit diff| {d['max_abs_logit_diff']:.1e}, max rel. grad diff "
                     f"{d['max_rel_grad_diff']:.1e})")
    for k in result.get("noise_kernels", []):
        lines.append(f"envelope kernels alone, {k['threads']} thread(s), CPU time: fwd {1e3 * k['fwd']:.1f} / "
                     f"{1e3 * k['fwd_noise']:.1f} ms, bwd {1e3 * k['bwd']:.1f} / {1e3 * k['bwd_noise']:.1f} ms "
                     f"(noise off / on; fwd+bwd {k['ratio']:.2f}x); generator alone "
                     f"{k['generator_ns']:.2f} ns per normal")
    if "compiled" in result:
        lines += _format_compiled(result["compiled"])
    if "ddp" in result:
        from learnafe.benchmarks._ddp import format_scaling

        lines.append(format_scaling(result["ddp"]))
    lines.append(f"load average at the end {', '.join(f'{v:.2f}' for v in result['load_average'])}")
    return "\n".join(lines)
