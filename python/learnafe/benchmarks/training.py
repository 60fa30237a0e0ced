"""``learnafe bench --only training``: throughput of one co-design training step.

A step is what :class:`learnafe.training.trainer.Trainer` does per batch:
front end (fused filter-bank envelope op) -> DSCNN -> L_BPF -> backward ->
AdamW (:func:`learnafe.training.loop.optimizer_step`), on random 1 s clips at 20 kHz.  Measured for the conventional mode
(front end frozen) and co-design (front end trained), with and without the
circuit's kT/C noise, as clips per wall-clock second and clips per CPU-second
(process CPU time; with one thread, what one free core delivers).  Data loading
and augmentation are not included (about 1 ms per clip, see docs/training.md).
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
    return {"threads": threads, "rows": rows}


def format(result: dict) -> str:  # noqa: A001 - the section interface
    lines = [f"threads {result['threads']}",
             f"{'mode':<13}{'kT/C noise':<12}{'batch':>6}{'clips/s':>10}{'clips/CPU-s':>13}"]
    for r in result["rows"]:
        lines.append(f"{r['mode']:<13}{'on' if r['noise'] else 'off':<12}{r['batch']:>6}"
                     f"{r['clips_per_s']:>10.1f}{r['clips_per_cpu_s']:>13.1f}")
    return "\n".join(lines)
