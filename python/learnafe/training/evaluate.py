"""Evaluation: accuracy at fixed SNRs, confusion matrices, power and area.

The protocol is fixed so that numbers compare across runs: every clip is
scored clean and mixed with background noise at 5, 10, 15 and 20 dB (active-
part SNR, see :mod:`learnafe.data.noise`); the noise segment of a clip is
chosen from the data set's seed and the clip index only, so it is the same on
every run and at every SNR.  ``silence`` clips are never mixed.

The result (the core of what ``learnafe evaluate --json`` writes,
:mod:`learnafe.training.run_evaluation`)::

    {"n": 2224, "data": "...", "noise": "...",
     "accuracy": {"clean": 0.93, "5": 0.81, "10": 0.86, "15": 0.89, "20": 0.91},
     "mean_accuracy": ..,            # mean over the conditions above
     "class_counts": {"yes": 192, ...},
     "per_class_accuracy": {"clean": {"yes": .., ...}, ...},
     "confusion": {"clean": [[..12..], ...], ...},   # rows = true class, columns = predicted
     "power_w": .., "area_um2": ..}

A folder without its own ``_background_noise_`` (e.g. real recordings in the
12-class layout) is mixed with the noise of the run's training data set (its
test portion, 90-100 % of every recording); without any noise source only
"clean" is reported, with a warning.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from learnafe._progress import progress as progress_bar
from learnafe.data import CLASSES
from learnafe.training.data import ClipSubset, eval_noise_folder, open_split, real_report_set
from learnafe.training.distributed import DistContext, all_reduce_sum
from learnafe.training.model import CoDesignModel, chip_frontend, hardware_cost

__all__ = ["confusion_matrix", "accuracy_of", "evaluate_dataset", "evaluation_views", "EVAL_TORCH_SEED", "snr_key", "mismatch_monte_carlo",
           "heldout_sets", "compare_frontends", "heldout_markdown"]

log = logging.getLogger(__name__)


def snr_key(snr: float | None) -> str:
    """JSON key of an evaluation condition: ``"clean"`` or the dB value (``"5"``, ``"12.5"``)."""
    return "clean" if snr is None else f"{float(snr):g}"


@torch.no_grad()
def confusion_matrix(model: torch.nn.Module, dataset: Dataset, *, batch_size: int = 128, ctx: DistContext | None = None,
                     progress: bool = False, desc: str = "eval") -> np.ndarray:
    """``[K, K]`` int64 counts (rows true, columns predicted) of ``model`` on ``dataset``.

    ``model`` maps audio ``[B, T]`` to a dict with ``logits`` (a
    :class:`~learnafe.training.model.CoDesignModel`) or to logits directly.
    With a distributed context each rank scores every ``world``-th clip and
    the counts are summed over ranks.
    """
    ctx = ctx or DistContext()
    k = len(CLASSES)
    cm = torch.zeros(k, k, dtype=torch.int64)
    idx = np.arange(ctx.rank, len(dataset), ctx.world_size)
    was = model.training
    model.eval()
    # A front end with circuit noise in evaluation draws from torch's RNG: fix it here
    # (without disturbing the caller's stream) so that evaluation is reproducible.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(EVAL_TORCH_SEED + ctx.rank)
        _accumulate(model, dataset, idx, cm, batch_size, progress and ctx.is_main, desc)
    model.train(was)
    return all_reduce_sum(cm, ctx).numpy()


#: Seed of torch's RNG during evaluation (circuit noise of a front end in "always" mode).
EVAL_TORCH_SEED = 1234567


def _accumulate(model, dataset, idx, cm, batch_size, progress, desc) -> None:
    bar = progress_bar(total=len(idx), desc=desc, unit="clip", disable=not progress, leave=False)
    for s in range(0, len(idx), batch_size):
        chunk = idx[s:s + batch_size]
        x = torch.from_numpy(np.stack([dataset.waveform(int(i)) for i in chunk]))
        y = torch.from_numpy(dataset.labels[chunk].astype(np.int64))
        out = model(x)
        logits = out["logits"] if isinstance(out, dict) else out
        pred = logits.argmax(dim=1)
        cm.index_put_((y, pred), torch.ones_like(y), accumulate=True)
        bar.update(len(chunk))
    bar.close()


def accuracy_of(cm: np.ndarray) -> float:
    """Accuracy of a confusion matrix (rows true, columns predicted); NaN when it counts nothing."""
    n = cm.sum()
    return float(np.trace(cm) / n) if n else float("nan")


def _summary(cms: dict, class_counts: dict) -> dict:
    acc, per_class = {}, {}
    for key, cm in cms.items():
        acc[key] = accuracy_of(cm)
        rows = cm.sum(axis=1)
        per_class[key] = {c: (float(cm[i, i] / rows[i]) if rows[i] else None)
                          for i, c in enumerate(CLASSES)}
    return {"accuracy": acc, "mean_accuracy": float(np.mean(list(acc.values()))),
            "per_class_accuracy": per_class,
            "confusion": {k: cm.astype(int).tolist() for k, cm in cms.items()},
            "class_counts": class_counts}


def evaluation_views(dataset: Dataset, snrs: Sequence[float | None], noise: Any = None, *,
                     stacklevel: int = 2) -> dict:
    """The evaluation conditions of ``dataset``: ``{"clean": view, "5": view, ...}`` (clean, then each
    SNR in ``snrs`` mixed with ``noise``); clean only, with a warning, when there is no noise source."""
    conditions = [None] + [float(s) for s in snrs]
    if snrs and noise is None and not (Path(dataset.root) / "_background_noise_").is_dir():
        warnings.warn(f"no background noise for {dataset.root}: evaluating clean only "
                      "(pass noise=FOLDER)", stacklevel=stacklevel)
        conditions = [None]
    return {snr_key(snr): dataset.with_snr(snr, noise) if snr is not None else dataset.with_snr(None)
            for snr in conditions}


def evaluate_dataset(model: torch.nn.Module, dataset: Dataset, *,
                     snrs: Sequence[float | None] = (5.0, 10.0, 15.0, 20.0), noise: Any = None,
                     batch_size: int = 128, ctx: DistContext | None = None,
                     progress: bool = False) -> dict:
    """Accuracy of ``model`` on ``dataset`` (a :class:`~learnafe.data.KeywordDataset`)
    clean and at each SNR in ``snrs``; see the module doc for the result."""
    cms = {}
    for key, view in evaluation_views(dataset, snrs, noise, stacklevel=3).items():
        cms[key] = confusion_matrix(model, view, batch_size=batch_size, ctx=ctx, progress=progress,
                                    desc=f"eval {key}")
    out = {"n": len(dataset), "data": str(dataset.root), "split": dataset.split,
           "noise": str(noise) if noise else None}
    out.update(_summary(cms, dataset.class_counts()))
    frontend = getattr(model, "frontend", None)
    if frontend is not None:
        with torch.no_grad():
            p, a = hardware_cost(frontend)
        out["power_w"], out["area_um2"] = float(p), float(a)
    return out


#: Default mismatch of the Monte Carlo (relative 1-sigma): bias currents 2 %, capacitors 1 %.
#: Assumed values of the order of matched current mirrors and of small MIM capacitors;
#: not process data -- set them from the PDK's matching data for a real design.
SIGMA_I, SIGMA_C = 0.02, 0.01


def mismatch_monte_carlo(model: torch.nn.Module, dataset: Dataset, n_chips: int, *, seed: int = 0,
                         snrs: Sequence[float | None] = (5.0, 10.0, 15.0, 20.0), noise: Any = None,
                         sigma_i: float = SIGMA_I, sigma_c: float = SIGMA_C,
                         batch_size: int = 128, progress: bool = False) -> dict:
    """Accuracy over ``n_chips`` sampled chips: the bank's currents and capacitors get
    fixed random relative errors (``sigma_i``, ``sigma_c``; chip k drawn from
    ``seed + k``); returns the mean and standard deviation per condition and every
    chip's accuracies."""
    if n_chips < 1:
        raise ValueError(f"n_chips must be >= 1, got {n_chips}")
    chips = []
    for k in progress_bar(range(n_chips), desc="mismatch chips", unit="chip", disable=not progress):
        chip = CoDesignModel(chip_frontend(model.frontend, seed + k, sigma_i, sigma_c), model.classifier)
        r = evaluate_dataset(chip, dataset, snrs=snrs, noise=noise, batch_size=batch_size)
        chips.append(r["accuracy"])
    keys = list(chips[0])
    return {"n_chips": n_chips, "seed": seed, "sigma_i": sigma_i, "sigma_c": sigma_c,
            "mean": {k: float(np.mean([c[k] for c in chips])) for k in keys},
            "std": {k: float(np.std([c[k] for c in chips], ddof=1)) if n_chips > 1 else 0.0 for k in keys},
            "chips": chips}


def heldout_sets(cfg, *, data: str | os.PathLike | None = None, limit: int = 0,
                 progress: bool = False) -> dict:
    """The held-out sets a deployed front end is judged on, as ``{name: (dataset, noise)}``.

    ``"test"``: the run's test split (or ``data``'s ``test`` split), mixed with the run's
    noise folder (or the data set's own, see the module doc).  ``"real_validation"``: for a
    run trained with real speakers (and no ``data`` given), its real validation speakers
    less the clips that chose the best epoch (:func:`learnafe.training.data.real_report_set`),
    the set its headline numbers come from.  Neither set informed any choice of the run.
    ``limit``: at most that many clips per set, stratified by class (``cfg.evaluation.eval_seed``).
    """
    root = Path(data) if data is not None else Path(cfg.data.root)
    ds = open_split(root, cfg.data.test_split if data is None else "test", cfg, progress=progress)
    sets = {"test": (ds, cfg.data.noise or eval_noise_folder(ds.root, cfg.data.root))}
    if data is None and cfg.data.real:
        sets["real_validation"] = real_report_set(cfg, progress=progress)
    if limit:
        sets = {k: (ClipSubset.stratified(d, limit, seed=cfg.evaluation.eval_seed) if limit < len(d) else d, n)
                for k, (d, n) in sets.items()}
    return sets


def compare_frontends(classifier: torch.nn.Module, frontends: dict, sets: dict, *,
                      snrs: Sequence[float | None], progress: bool = False) -> dict:
    """The same classifier on several front ends (``{name: module}``) over the held-out
    ``sets`` (:func:`heldout_sets`).

    Returns ``{"sets": {set: {"n": .., front end: {"accuracy": {..}, "mean_accuracy": ..}}},
    "pooled": {"n": .., front end: {...}}}``; the pooled accuracy of a condition counts every
    clip of every set once (clip-weighted), its mean is over the conditions.  A deployment
    gate judged on the pooled clips is less at the mercy of a few borderline clips than one
    judged on a small test split.
    """
    out: dict = {"sets": {}, "pooled": {}}
    for set_name, (ds, noise) in sets.items():
        row: dict = {"n": len(ds)}
        for name, fe in frontends.items():
            r = evaluate_dataset(CoDesignModel(fe, classifier).eval(), ds, snrs=snrs, noise=noise,
                                 progress=progress)
            row[name] = {"accuracy": r["accuracy"], "mean_accuracy": r["mean_accuracy"]}
            log.info("%s on %s (%d clips): mean accuracy %.4f (%s)", name, set_name, len(ds),
                     r["mean_accuracy"], ", ".join(f"{k} {v:.3f}" for k, v in r["accuracy"].items()))
        out["sets"][set_name] = row
    rows = list(out["sets"].values())
    total = sum(r["n"] for r in rows)
    out["pooled"]["n"] = total
    for name in frontends:
        keys = [k for k in rows[0][name]["accuracy"] if all(k in r[name]["accuracy"] for r in rows)]
        acc = {k: sum(r["n"] * r[name]["accuracy"][k] for r in rows) / total for k in keys}
        out["pooled"][name] = {"accuracy": acc, "mean_accuracy": float(np.mean(list(acc.values())))}
    return out


def heldout_markdown(held: dict, labels: dict) -> str:
    """A markdown table of :func:`compare_frontends`: one row per set and front end
    (``labels``: front-end key -> row label), then the pooled rows; accuracies in %."""
    sets = held["sets"]
    first = next(iter(sets.values()))
    name0 = next(k for k in labels if k in first)
    keys = list(first[name0]["accuracy"])
    lines = ["| set (clips) | front end | " + " | ".join(keys) + " | mean |",
             "| --- | --- | " + " | ".join("---:" for _ in keys) + " | ---: |"]
    rows = [(f"{k} ({v['n']})", v) for k, v in sets.items()]
    if len(sets) > 1:
        rows.append((f"pooled ({held['pooled']['n']})", held["pooled"]))
    for set_label, row in rows:
        for key, label in labels.items():
            if key not in row:
                continue
            a = row[key]
            lines.append(f"| {set_label} | {label} | " + " | ".join(f"{100 * a['accuracy'][c]:.2f}" for c in keys)
                         + f" | {100 * a['mean_accuracy']:.2f} |")
    return "\n".join(lines) + "\n"
