"""Scaling of the co-design training step over processes: ``torchrun`` (DDP, gloo) against one process.

:func:`scaling` runs the same timed loop (:func:`main`) once as a single process and
once under ``torch.distributed.run --standalone --nproc-per-node N`` with one
thread per process, and reports the clips/s of each and their ratio.  Each run
makes the co-design model of :func:`learnafe.benchmarks._step.make_setup`
(kT/C noise on, batch ``batch`` over all processes, so a rank takes
``batch / N`` clips), wraps it in DistributedDataParallel when there are several
ranks, warms up, then times ``steps`` whole steps (forward, L_BPF, backward with
the gradient all-reduce, AdamW, projection).  A step lasts as long as its slowest
rank; rank 0 prints one JSON line with the median step time.

Run by hand: ``python -m learnafe.benchmarks._ddp --batch 32 --steps 10`` (one
process) or ``python -m torch.distributed.run --standalone --nproc-per-node 2 -m
learnafe.benchmarks._ddp ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

MARK = "learnafe-ddp-bench "


def main(argv: list[str] | None = None) -> int:
    """One timed run in this process (a rank of torchrun, or alone)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32, help="clips per step over all processes")
    ap.add_argument("--steps", type=int, default=10, help="timed steps (after 2 warm-up steps)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the model and the batch")
    args = ap.parse_args(argv)

    import torch

    from learnafe.benchmarks._step import make_setup, train_step
    from learnafe.training import distributed

    torch.set_num_threads(1)
    ctx = distributed.init()
    try:
        if args.batch <= 0 or args.batch % ctx.world_size:
            raise SystemExit(f"--batch {args.batch} must be a positive multiple of the {ctx.world_size} "
                             "process(es)")
        s = make_setup("codesign", True, args.batch // ctx.world_size, args.seed + ctx.rank)
        if ctx.distributed:
            s["model"] = torch.nn.parallel.DistributedDataParallel(s["model"])
        times = []
        for i in range(args.steps + 2):
            ctx.barrier()
            t0 = time.perf_counter()
            train_step(s)
            dt = torch.tensor([time.perf_counter() - t0], dtype=torch.float64)
            if ctx.distributed:
                torch.distributed.all_reduce(dt, op=torch.distributed.ReduceOp.MAX)
            if i >= 2:
                times.append(float(dt))
        if ctx.is_main:
            times.sort()
            step = times[len(times) // 2]
            print(MARK + json.dumps({"world_size": ctx.world_size, "batch": args.batch, "steps": args.steps,
                                     "step_s": step, "clips_per_s": args.batch / step}), flush=True)
    finally:
        distributed.shutdown(ctx)
    return 0


def _run(cmd: list[str], timeout: float) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")


def scaling(nproc: int = 2, batch: int = 32, steps: int = 10, seed: int = 0, timeout: float = 900.0) -> dict:
    """clips/s of one process (1 thread) and of ``nproc`` torchrun processes (1 thread each)."""
    if nproc < 2 or batch % nproc:
        raise ValueError(f"scaling: batch={batch} must be a multiple of nproc={nproc} (>= 2), so that every "
                         "process takes the same share of a step")
    opts = ["--batch", str(batch), "--steps", str(steps), "--seed", str(seed)]
    one = _run([sys.executable, "-m", "learnafe.benchmarks._ddp", *opts], timeout)
    many = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
                 "-m", "learnafe.benchmarks._ddp", *opts], timeout)
    return {"nproc": nproc, "batch": batch, "steps": steps, "one_process": one, "torchrun": many,
            "speedup": many["clips_per_s"] / one["clips_per_s"], "load_average": list(os.getloadavg())}


def format_scaling(d: dict) -> str:
    return (f"torchrun --nproc-per-node {d['nproc']} (gloo, 1 thread each), co-design step with noise, "
            f"batch {d['batch']}: {d['torchrun']['clips_per_s']:.1f} clips/s against "
            f"{d['one_process']['clips_per_s']:.1f} in one process (1 thread): {d['speedup']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
