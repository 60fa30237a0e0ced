"""Trial functions for the search.

A trial function is any module-level callable ``fn(params: dict, ctx: TrialContext) -> dict``
(see :class:`learnafe.search.trial_context.TrialContext`) that returns at least
``error`` (a fraction, lower is better), ``power_w`` (W) and ``area_um2`` (um^2);
any other numbers it returns are kept in the journal as metrics.  A search
config names it as ``[trial] function = "package.module:name"``, and optionally a
``reference`` function with the same signature that evaluates the conventional
design once per search (shown on the plots and used to normalise power and area).

- :func:`training_trial` / :func:`training_reference` (the default): a short
  training run through :mod:`learnafe.training`, co-design vs the conventional
  bank.
- :func:`analytic_trial` / :func:`analytic_reference`: a closed-form stand-in
  with the same three-way trade-off (a larger power or area weight saves power
  or area and costs accuracy; a learning rate away from its optimum costs
  accuracy).  It runs in microseconds, so it serves to test and demonstrate the
  search machinery itself (executors, journal, resume, Pareto set).
"""

from __future__ import annotations

import copy
import math
import os
import time

from learnafe._migrate import FLAT_NAMES, dotted_options, flag_name
from learnafe.search.trial_context import TrialContext, set_path

#: Defaults of the analytic stand-in; override any of them in ``[trial.settings]``.
ANALYTIC_DEFAULTS = {
    "base_error": 0.10,      # error of the conventional design at the best learning rate
    "best_lr": 3e-3,         # learning rate with the lowest error
    "lr_cost": 0.04,         # error added per decade^2 away from best_lr
    "saving": 0.30,          # largest relative power/area saving (weight share -> 1)
    "saving_cost": 0.25,     # error added per (weight share)^2
    "channel_cost": 0.02,    # error added per (16/n_channels - 1)
    "power_w": 1.0e-8,       # conventional bank power (W) at 16 channels
    "area_um2": 1.6e4,       # conventional bank capacitor area (um^2) at 16 channels
    "sleep_s": 0.0,          # pretend to work for this long (tests of concurrency and kills)
    "fail_trials": [],       # trial ids that raise (tests of failure handling)
    "crash_trials": [],      # trial ids whose worker process dies (tests of broken workers)
}


def _leaf(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _analytic_settings(settings: dict) -> dict:
    unknown = sorted(set(settings) - set(ANALYTIC_DEFAULTS))
    if unknown:
        raise ValueError(f"analytic trial: unknown setting(s) {unknown}; known: {sorted(ANALYTIC_DEFAULTS)}")
    out = dict(ANALYTIC_DEFAULTS)
    out.update(settings)
    return out


def analytic_objectives(params: dict, settings: dict | None = None) -> dict:
    """The closed-form objectives of the analytic stand-in (deterministic).

    Parameters are looked up by the last part of their dotted name:
    every ``lr*`` (geometric mean if several), ``lambda_ce``, ``lambda_i``,
    ``lambda_c`` and ``n_channels``; missing ones take the conventional value.
    """
    s = _analytic_settings(settings or {})
    leaves = {_leaf(k): v for k, v in params.items()}
    lrs = [float(v) for k, v in leaves.items() if k.startswith("lr")]
    lr = math.exp(sum(math.log(v) for v in lrs) / len(lrs)) if lrs else s["best_lr"]
    if lr <= 0:
        raise ValueError(f"analytic trial: learning rates must be positive, got {lrs}")
    lce = float(leaves.get("lambda_ce", 1.0))
    li = float(leaves.get("lambda_i", 0.0))
    lc = float(leaves.get("lambda_c", 0.0))
    total = lce + li + lc
    if min(lce, li, lc) < 0 or total <= 0:
        raise ValueError(f"analytic trial: loss weights must be >= 0 and not all zero, got {lce}, {li}, {lc}")
    share_i, share_c = li / total, lc / total
    channels = float(leaves.get("n_channels", 16))
    error = (s["base_error"] + s["lr_cost"] * math.log10(lr / s["best_lr"]) ** 2
             + s["saving_cost"] * (share_i ** 2 + share_c ** 2) + s["channel_cost"] * (16.0 / channels - 1.0))
    return {"error": min(1.0, max(0.0, error)),
            "power_w": s["power_w"] * channels / 16.0 * (1.0 - s["saving"] * share_i),
            "area_um2": s["area_um2"] * channels / 16.0 * (1.0 - s["saving"] * share_c)}


def analytic_trial(params: dict, ctx: TrialContext) -> dict:
    """Closed-form stand-in for a training run (see :func:`analytic_objectives`)."""
    _pretend(ctx)
    return analytic_objectives(params, ctx.settings)


def analytic_reference(params: dict, ctx: TrialContext) -> dict:
    """The conventional design of the analytic stand-in (no hardware weights, best learning rate)."""
    _pretend(ctx)
    return analytic_objectives({"lr": _analytic_settings(ctx.settings)["best_lr"]}, ctx.settings)


def _pretend(ctx: TrialContext) -> None:
    """Sleep, crash or fail as ``sleep_s``/``crash_trials``/``fail_trials`` ask (the reference is trial -1)."""
    s = _analytic_settings(ctx.settings)
    if s["sleep_s"]:
        time.sleep(float(s["sleep_s"]))
    if ctx.trial in s["crash_trials"]:
        os._exit(3)  # simulate a worker killed by a segfault or the OOM killer
    if ctx.trial in s["fail_trials"]:
        raise RuntimeError(f"analytic trial {ctx.trial} fails on purpose (fail_trials setting)")


# ------------------------------------------------------------ training trial
def _training_config(params: dict, ctx: TrialContext, mode: str) -> dict:
    """The training options of one trial: ``[trial.settings]`` + the searched values + bookkeeping.

    ``[trial.settings]`` holds :class:`learnafe.training.TrainConfig` options by dotted name
    (e.g. ``schedule.epochs``, ``data.limit_train``, ``data.root``; the flat names of earlier
    files read through :mod:`learnafe._migrate`), optionally with
    ``config = "path.json"``, a training config file they are applied on top of.
    """
    from learnafe.training import TrainConfig

    settings = copy.deepcopy(ctx.settings)
    base = settings.pop("config", None)
    settings = {_flat_path(k): v for k, v in dotted_options(settings).items()}
    for key in ("mode", "seed", "threads", "progress"):
        if key in settings:
            raise ValueError(f"[trial.settings] must not set {key!r}: the search sets it for every trial "
                             "(mode: codesign for trials, conventional for the reference; seed: "
                             "[search] seed + trial id; threads: --threads-per-trial)")
    options = {flag_name(k): v for k, v in TrainConfig.from_file(base).to_dotted().items()} if base else {}
    options.update(settings)
    for name, value in params.items():
        set_path(options, _flat_path(name), value)
    options.update(mode=mode, seed=ctx.seed, threads=ctx.threads, progress=False)
    return options


def _flat_path(name: str) -> str:
    """The path of a searched or set option ``name`` in the flat options of a trial: a dotted
    option (``optimiser.lr_frontend``, ``bank.options.noise.mode``) by the flat name of its
    field (``lr_frontend``, ``frontend.noise.mode``); a flat name unchanged."""
    parts = name.split(".")
    if len(parts) >= 2 and f"{parts[0]}.{parts[1]}" in FLAT_NAMES.values():
        return ".".join([flag_name(f"{parts[0]}.{parts[1]}"), *parts[2:]])
    return name


def _check_real_protocol(options: dict) -> None:
    """Refuse a trial on real speakers whose report clips would be the clips it is chosen on.

    With ``data.real`` the trainer validates on the real validation speakers: it chooses the best
    epoch (and the search its objective) on the ``data.limit_val`` stratified selection clips and
    reports on the complement (``real_report_set``).  Without ``limit_val`` the two are the same
    clips, so a trial's report-clip accuracy would not be held out."""
    from learnafe.training import TrainConfig

    cfg = TrainConfig.from_dict(options)
    if cfg.data.real and not cfg.data.limit_val:
        raise ValueError("[trial.settings] sets data.real but not data.limit_val: the search's objective is the "
                         "error on the limit_val selection clips of the real validation speakers and the "
                         "report metric the other clips, so set data.limit_val (e.g. half of the validation "
                         "speakers' clips, 550 for gsc-v2-testset-dev at data.real_val_fraction = 0.5)")


def _training_result(metrics: dict) -> dict:
    """The objectives and metrics of a finished training run.

    ``error`` is the best epoch's ``val_error``: on the clips that chose the epoch (with
    ``data.real``, the ``limit_val`` selection clips of the real validation speakers).  With
    ``data.real`` the metrics also hold the accuracy on the other clips of those speakers
    (``report_accuracy``, mean over clean and the SNRs, and ``report_accuracy_<condition>``),
    which the optimiser is not told."""
    out = {"error": metrics["val_error"], "power_w": metrics["power_w"], "area_um2": metrics["area_um2"]}
    for key in ("val_accuracy", "power_saving", "area_saving", "n_params_classifier", "epochs_run", "steps",
                "throughput_clips_per_s", "train_seconds", "best_epoch"):
        if key in metrics:
            out[key] = metrics[key]
    out["selection_clips"] = metrics.get("n_val")
    report = metrics.get("real_validation")
    if report is not None:
        out["report_accuracy"] = report["mean_accuracy"]
        out["report_clips"] = report["n"]
        for condition, value in report["accuracy"].items():
            out[f"report_accuracy_{condition}"] = value
    return out


def _train(options: dict, ctx: TrialContext) -> dict:
    from learnafe.training import train

    _check_real_protocol(options)
    return _training_result(train(options, ctx.run_dir, test=False))


def training_trial(params: dict, ctx: TrialContext) -> dict:
    """A co-design training run (:func:`learnafe.training.train`) with the searched values.

    Searched parameter names are training options by dotted name
    (``optimiser.lr_frontend``, ``cost.lambda_i``, ``bank.n_channels``, ...; a longer
    path reaches into a dict option such as ``bank.options.<key>``; flat names of
    earlier files such as ``lr_frontend`` or ``frontend.<key>`` name the same options).  The objectives are the best
    epoch's validation error (1 - mean accuracy over clean and 5/10/15/20 dB)
    and the bank's power and capacitor area at that epoch; with ``data.real`` the validation
    error is on the real validation speakers' ``limit_val`` selection clips, and the metric
    ``report_accuracy`` on their other clips (:func:`_training_result`).  The run directory
    is the trial's directory, so every trial keeps its ``bank.json`` and
    checkpoints.
    """
    return _train(_training_config(params, ctx, "codesign"), ctx)


def training_reference(params: dict, ctx: TrialContext) -> dict:
    """The conventional design: the classifier trained with the hand-designed bank frozen.

    It uses ``[trial.settings]`` only (not the searched values), so it is the
    baseline the search tries to beat at the same training budget.
    """
    return _train(_training_config({}, ctx, "conventional"), ctx)
