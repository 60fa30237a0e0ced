"""Trial functions used by the search tests (importable by spawned worker processes)."""

from __future__ import annotations

import os

from learnafe.search.trials import analytic_objectives


def threads_trial(params, ctx):
    """The analytic objectives plus the thread limits the worker actually applied."""
    import torch

    out = analytic_objectives(params)
    out.update(torch_threads=torch.get_num_threads(), omp_env=int(os.environ["OMP_NUM_THREADS"]),
               ctx_threads=ctx.threads, pid=os.getpid())
    return out


def bad_result_trial(params, ctx):
    """Returns a non-finite objective (a diverged training run)."""
    return {"error": float("nan"), "power_w": 1e-8, "area_um2": 1e4}


def report_trial(params, ctx):
    """The analytic objectives plus a held-out ``report_accuracy`` metric (as a real-speaker trial's)."""
    out = analytic_objectives(params)
    out["report_accuracy"] = 0.9 - out["error"]
    return out


def report_reference(params, ctx):
    """The analytic reference plus its ``report_accuracy``."""
    out = analytic_objectives({"lr": 3e-3})
    out["report_accuracy"] = 0.9 - out["error"]
    return out
