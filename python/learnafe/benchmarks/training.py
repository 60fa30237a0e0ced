"""``learnafe bench --only training``: throughput of one co-design training step.

A step is what :class:`learnafe.training.trainer.Trainer` does per batch:
front end (fused filter-bank envelope op) -> DSCNN -> L_BPF -> backward ->
AdamW (:func:`learnafe.training.loop.optimizer_step`), on random 1 s clips at 20 kHz.  Measured for the conventional mode
(front end frozen) and co-design (front end trained), with and without the
circuit's kT/C noise, as clips per wall-clock second and clips per CPU-second
(process CPU time; with one thread, what one free core delivers).  Data loading
and augmentation are not included (about 1 ms per clip, see docs/training.md).

The same step eager and with the model under ``torch.compile(fullgraph=True)``
(inductor; the filter-bank op is a custom operator, docs/ops.md) is measured
side by side for co-design without noise (:func:`compile_comparison`), with
the one-off compile time.  (Equality of compiled and eager results is a test,
tests/test_ops_compile.py; here dropout draws differ between the two.)
"""

from __future__ import annotations

import time

TITLE = "training step throughput (front end + DSCNN + L_BPF + AdamW), clips/s"


def _step_fn(mode: str, noise: bool, batch: int, seed: int):
    import torch

    from learnafe.training.config import TrainConfig
    from learnafe.training.loop import optimizer_step
    from learnafe.training.loss import BPFLoss
    from learnafe.training.model import CoDesignModel, build_classifier, build_frontend

    cfg = TrainConfig(mode=mode, frontend={"noise": {"mode": "always"}} if noise else {})
    torch.manual_seed(seed)
    fe = build_frontend(cfg)
    if mode == "conventional":
        fe.requires_grad_(False)
    model = CoDesignModel(fe, build_classifier(cfg, cfg.n_channels)).train()
    loss_fn = BPFLoss(fe.reference_power(), fe.reference_area(), lambda_i=0.05, lambda_c=0.05)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    audio = 0.1 * torch.randn(batch, cfg.sample_rate, generator=gen)
    labels = torch.randint(0, 12, (batch,), generator=gen)

    def step():
        out = model(audio)
        loss, _ = loss_fn(out["logits"], labels, out["power"], out["area"])
        optimizer_step(opt, loss)
        if mode == "codesign":
            fe.project_()

    return step


def run(args) -> dict:
    import torch

    from learnafe import ops

    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    ops.set_num_threads(threads)
    batch, steps = (8, 2) if args.quick else (32, 5)
    rows = []
    for noise in (False, True):
        for mode in ("conventional", "codesign"):
            step = _step_fn(mode, noise, batch, args.seed)
            step()  # warm-up
            w, c = time.perf_counter(), time.process_time()
            for _ in range(steps):
                step()
            wall, cpu = time.perf_counter() - w, time.process_time() - c
            rows.append({"mode": mode, "noise": noise, "batch": batch, "steps": steps,
                         "clips_per_s": batch * steps / wall, "clips_per_cpu_s": batch * steps / cpu})
    result = {"threads": threads, "rows": rows}
    result["compiled"] = compile_comparison(batch, steps, args.seed)
    return result


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

    cfg = TrainConfig(mode="codesign")
    gen = torch.Generator().manual_seed(seed)
    audio = 0.1 * torch.randn(batch, cfg.sample_rate, generator=gen)
    labels = torch.randint(0, 12, (batch,), generator=gen)

    def make(compiled: bool):
        torch.manual_seed(seed)
        fe = build_frontend(cfg)
        model = CoDesignModel(fe, build_classifier(cfg, cfg.n_channels)).train()
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
            "eager_clips_per_s": batch / best["eager"], "compiled_clips_per_s": batch / best["compiled"],
            "speedup": best["eager"] / best["compiled"], "compile_s": compile_s}


def _format_compiled(c: dict) -> list[str]:
    return [f"eager vs torch.compile(fullgraph=True), {c['mode']}, noise off, batch {c['batch']} "
            f"(best of {c['rounds']} alternating steps):",
            f"  eager {c['eager_clips_per_s']:.1f} clips/s, compiled {c['compiled_clips_per_s']:.1f} clips/s, "
            f"compiled/eager speed {c['speedup']:.2f}x; compile (first call) {c['compile_s']:.1f} s"]


def format(result: dict) -> str:  # noqa: A001 - the section interface
    lines = [f"threads {result['threads']}",
             f"{'mode':<13}{'kT/C noise':<12}{'batch':>6}{'clips/s':>10}{'clips/CPU-s':>13}"]
    for r in result["rows"]:
        lines.append(f"{r['mode']:<13}{'on' if r['noise'] else 'off':<12}{r['batch']:>6}"
                     f"{r['clips_per_s']:>10.1f}{r['clips_per_cpu_s']:>13.1f}")
    if "compiled" in result:
        lines += _format_compiled(result["compiled"])
    return "\n".join(lines)
