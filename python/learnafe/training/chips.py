"""Robustness to the fab: accuracy over sampled chips (mismatch) and over process corners.

A trained run is one design; silicon gives many chips.  :func:`yield_analysis`
evaluates the run's classifier on

* ``n_chips`` sampled chips: the bank's I1, I2, C1, C2 with fixed random relative
  errors (chip ``k`` drawn from ``seed + k``), by default with the per-channel SKY130
  figures of :func:`learnafe.circuits.mismatch.sky130_mismatch` (bias-current mirrors:
  V_th mismatch of the model files times gm/Id; MIM capacitors: the model files'
  matching constant), at the nominal (tt) process;
* one nominal chip per process corner (tt, ss, ff): the same currents and capacitors
  with the corner's SKY130 gm/Id table (the bias currents are taken as forced by ideal
  references, so a corner moves gm/Id, hence centres and Q);

and reports the accuracy distribution (mean, std, 5th percentile, min, max) per
evaluation condition and for the mean over conditions, the sigma figures with where
each comes from, and the measured spread of the drawn factors (RMS of
``(factor - 1) / sigma``, 1 when the draws have the stated spread).

The sampled chips go through in groups of ``chips_per_call``: one
:class:`~learnafe.frontends.ChipStack` per group (per-example coefficients of the
chips, :meth:`~learnafe.frontends.AnalogFilterBank.chip_stack`), one front-end call and
the classifier on each chip's rows of the stacked features, per batch of clips
(:func:`stacked_confusion_matrices`); each corner is a stack of its own (its gm/Id range
bounds its design map).  Every chip's features equal those of the chip built on its own
(:func:`sample_chip`), so the results do not depend on ``chips_per_call``.

Every chip's result is appended to a journal (``chips.jsonl``, one JSON line per
chip, flushed and fsynced) as soon as its group is scored, so an interrupted analysis resumes
where it stopped and a larger ``n_chips`` reuses the chips already evaluated; the
journal's header records the settings and a different setting is refused.  Output
folder: ``yield.json`` (the result, written atomically), ``yield.png`` (histogram of
the chips' accuracy with the corners marked), ``yield.log``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from learnafe._jsonio import append_json_line, atomic_write, write_json
from learnafe._progress import progress as progress_bar
from learnafe.circuits.mismatch import sky130_mismatch
from learnafe.circuits.transconductance import SKY130_CORNERS
from learnafe.data import CLASSES
from learnafe.training.evaluate import EVAL_TORCH_SEED, accuracy_of, evaluation_views
from learnafe.training.model import frontend_from_dict

__all__ = ["YIELD_FORMAT", "YieldOptions", "sample_chip", "yield_analysis", "stacked_confusion_matrices", "distribution",
           "plot_yield", "CORNERS"]

log = logging.getLogger(__name__)
YIELD_FORMAT = "learnafe-yield/1"
CORNERS = SKY130_CORNERS  # the corners of a yield analysis: every shipped SKY130 gm/Id table
JOURNAL, RESULT, PLOT, LOG = "chips.jsonl", "yield.json", "yield.png", "yield.log"


def sample_chip(frontend, *, seed: int | None = None, source: str = "sky130", sigma_i: float = 0.0,
                sigma_c: float = 0.0, corner: str | None = None):
    """One chip of the analog bank ``frontend`` (eval mode): mismatch drawn from ``seed`` (None: no
    mismatch) with the SKY130 figures (``source="sky130"``) or ``sigma_i``/``sigma_c`` for every
    device (``"uniform"``), at process ``corner`` (None: the bank's own gm model)."""
    if not hasattr(frontend, "mismatch_sigmas"):
        raise ValueError(f"sampling chips needs an AnalogFilterBank front end, got {type(frontend).__name__}")
    spec = frontend.to_dict()
    if seed is None:
        spec["mismatch"] = {"mode": "off"}
    else:
        spec["mismatch"] = {"mode": "fixed", "seed": int(seed), "source": source,
                            "sigma_i": float(sigma_i) if source == "uniform" else 0.0,
                            "sigma_c": float(sigma_c) if source == "uniform" else 0.0}
    spec["corners"] = {"mode": "fixed", "corners": [corner]} if corner else {"mode": "off"}
    chip = frontend_from_dict(spec)
    chip.eval()
    return chip


def distribution(values) -> dict:
    """``{"n", "mean", "std", "p5", "min", "max"}`` of a list of accuracies (std with ddof=1;
    p5 the 5th percentile, linear interpolation)."""
    a = np.asarray(values, dtype=np.float64)
    return {"n": int(a.size), "mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else 0.0,
            "p5": float(np.percentile(a, 5)), "min": float(a.min()), "max": float(a.max())}


def _with_mean(acc: dict) -> dict:
    return {**acc, "mean": float(np.mean(list(acc.values())))}


def _read_journal(path: Path) -> tuple[dict | None, list[dict]]:
    header, records = None, []
    if not path.is_file():
        return None, []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a line cut by a crash: that chip is evaluated again
            continue
        if rec.get("kind") == "header":
            header = rec
        else:
            records.append(rec)
    return header, records


@dataclass(frozen=True)
class YieldOptions:
    """The settings of one yield analysis (:func:`yield_analysis`); the journal's header records them."""

    #: Seed of chip k (``seed + k``).
    seed: int = 0
    #: Fixed SNRs (dB) of the evaluation conditions besides clean.
    snrs: Sequence[float] = (5.0, 10.0, 15.0, 20.0)
    #: Background-noise folder of the fixed-SNR conditions (None: as :func:`evaluate_dataset`).
    noise: str | os.PathLike | None = None
    #: "sky130" (per-channel figures of the SKY130 model files) or "uniform" (``sigma_i``, ``sigma_c``).
    source: str = "sky130"
    #: Relative standard deviation of the bias currents (uniform source).
    sigma_i: float = 0.0
    #: Relative standard deviation of the capacitors (uniform source).
    sigma_c: float = 0.0
    #: Process corners whose nominal chip is scored.
    corners: Sequence[str] = CORNERS
    #: Clips per evaluation batch.
    batch_size: int = 128
    #: Sampled chips evaluated in one stacked front-end call (a batch holds chips x ``batch_size``
    #: clips, so memory grows with both); the results do not depend on it.
    chips_per_call: int = 8
    #: Free text stored in the journal's header (e.g. the run path).
    tag: str = ""


def yield_analysis(model, dataset, n_chips: int, options: YieldOptions = YieldOptions(), *, out_dir=None,
                   progress: bool = True) -> dict:
    """Accuracy of ``model`` (a :class:`~learnafe.training.model.CoDesignModel` with an analog bank)
    on ``dataset`` over ``n_chips`` sampled chips and the nominal chip of every corner in
    ``options.corners``.

    ``out_dir``: where the journal, ``yield.json``, ``yield.png`` and ``yield.log`` go (None: nothing
    is written and nothing resumed).  Returns the ``learnafe-yield/1`` result (module docstring).
    """
    corners = _checked_corners(n_chips, options)
    header = _journal_header(model, dataset, options)
    handler = _attach_log(out_dir)
    try:
        journal, done = _open_journal(out_dir, header)
        spread = _evaluate_chips(model, dataset, n_chips, corners, options, done, journal, progress)
        res = _result(model.frontend, n_chips, corners, options, header, done, spread)
        if out_dir is not None:
            write_json(Path(out_dir) / RESULT, res, indent=2, allow_nan=False)
            if res["chips"] or corners:
                plot_yield(res, Path(out_dir) / PLOT)
            log.info("yield: %s", summary_line(res))
        return res
    finally:
        if handler is not None:
            logging.getLogger("learnafe").removeHandler(handler)
            handler.close()


def _checked_corners(n_chips, options: YieldOptions) -> list:
    """The corners to score, after checking ``n_chips`` and the mismatch source."""
    if isinstance(n_chips, bool) or not isinstance(n_chips, int) or n_chips < 0:
        raise ValueError(f"n_chips must be an integer >= 0, got {n_chips!r}")
    source = options.source
    if source not in ("sky130", "uniform"):
        raise ValueError(f"source must be 'sky130' (model-file figures) or 'uniform' (sigma_i, sigma_c), got {source!r}")
    if source == "uniform" and not (options.sigma_i > 0 or options.sigma_c > 0):
        raise ValueError("source='uniform' needs sigma_i or sigma_c > 0 (relative 1-sigma, e.g. 0.02)")
    cpc = options.chips_per_call
    if isinstance(cpc, bool) or not isinstance(cpc, int) or cpc < 1:
        raise ValueError(f"chips_per_call must be an integer >= 1 (chips per stacked call), got {cpc!r}")
    corners = list(options.corners or [])
    bad = [c for c in corners if c not in CORNERS]
    if bad:
        raise ValueError(f"corners {bad} unknown; the shipped SKY130 gm/Id tables are {CORNERS}")
    return corners


def _journal_header(model, dataset, options: YieldOptions) -> dict:
    """The journal's header: the settings, the data and fingerprints of the bank and classifier."""
    uniform = options.source == "uniform"
    spec = model.frontend.to_dict()
    return {"kind": "header", "format": YIELD_FORMAT, "seed": int(options.seed), "source": options.source,
            "sigma_i": float(options.sigma_i) if uniform else 0.0,
            "sigma_c": float(options.sigma_c) if uniform else 0.0,
            "snrs": [float(s) for s in options.snrs], "noise": str(options.noise) if options.noise else None,
            "data": str(getattr(dataset, "root", "")), "split": getattr(dataset, "split", None),
            "n_clips": len(dataset),
            "bank_sha1": hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest(),
            "classifier_sha1": hashlib.sha1(b"".join(
                t.detach().cpu().numpy().tobytes() for t in model.classifier.state_dict().values())).hexdigest(),
            "tag": options.tag}


def _attach_log(out_dir) -> logging.Handler | None:
    """A file handler writing the package's log to ``out_dir/yield.log`` (None without ``out_dir``)."""
    if out_dir is None:
        return None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(out_dir / LOG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger("learnafe")
    root.addHandler(handler)
    if root.level in (logging.NOTSET,) or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    return handler


def _open_journal(out_dir, header: dict) -> tuple[Path | None, dict]:
    """The journal path and the chips it already holds, keyed ``(kind, id)``; a journal of other
    settings is refused, a missing one is started with ``header``."""
    if out_dir is None:
        return None, {}
    journal = Path(out_dir) / JOURNAL
    old, records = _read_journal(journal)
    if old is not None:
        diff = sorted(k for k in header if k != "tag" and old.get(k) != header[k])
        if diff:
            raise ValueError(f"{journal} holds chips of another analysis (differs in {diff}); "
                             "choose another output folder or delete the journal")
    else:
        append_json_line(journal, header)
    return journal, {(rec["kind"], rec["id"]): rec for rec in records}


def _evaluate_chips(model, dataset, n_chips, corners, options: YieldOptions, done: dict, journal,
                    progress: bool) -> tuple[np.ndarray, int]:
    """Scores every chip and corner not in ``done`` (added there and to the journal), up to
    ``options.chips_per_call`` chips per stacked front-end call (:func:`_score_group`); returns
    the sums of squared normalised draws per quantity (I1, I2, C1, C2) over all chips and their count."""
    frontend, seed = model.frontend, options.seed
    jobs = [("chip", k) for k in range(n_chips)] + [("corner", c) for c in corners]
    todo = [j for j in jobs if j not in done]
    log.info("yield analysis: %d chips (%s mismatch, seed %d) + corners %s on %d clips x %d conditions; "
             "%d already in the journal; up to %d chips per call", n_chips, options.source, seed, corners or "none",
             len(dataset), 1 + len(options.snrs), len(jobs) - len(todo), options.chips_per_call)
    z_sums, z_n = _draw_spread(frontend, n_chips, options)
    bar = progress_bar(total=len(jobs), initial=len(jobs) - len(todo), desc="chips", unit="chip",
                       disable=not progress)
    for group in _groups(todo, options.chips_per_call):
        for rec in _score_group(frontend, model.classifier, dataset, group, options):
            done[(rec["kind"], rec["id"])] = rec
            if journal is not None:
                append_json_line(journal, rec)
            bar.update(1)
            bar.set_postfix(mean=f"{rec['accuracy']['mean']:.3f}")
            log.info("%s %s: %s", rec["kind"], rec["id"],
                     " ".join(f"{k}:{v:.4f}" for k, v in rec["accuracy"].items()))
    bar.close()
    return z_sums, z_n


def _draw_spread(frontend, n_chips: int, options: YieldOptions) -> tuple[np.ndarray, int]:
    """Sums over chips and channels of ``((factor - 1) / sigma)^2`` (0 where sigma is 0) per quantity."""
    z_sums, z_n = np.zeros(4), 0
    with torch.no_grad():
        s = frontend.sigmas_of(options.source, options.sigma_i, options.sigma_c)
        for k in range(n_chips):
            f = frontend.draw_factors(options.seed + k, options.source, options.sigma_i, options.sigma_c)
            z = torch.where(s > 0, (f - 1) / torch.where(s > 0, s, torch.ones_like(s)), torch.zeros_like(s))
            z_sums += (z ** 2).sum(dim=1).numpy()
            z_n += z.shape[1]
    return z_sums, z_n


def _groups(todo: list, size: int) -> list[list]:
    """``todo`` in groups of at most ``size`` jobs that share one base chip: the mismatch draws of the
    nominal process together, each corner alone (a corner's gm/Id range bounds its own design map)."""
    draws = [j for j in todo if j[0] == "chip"]
    return [draws[i:i + size] for i in range(0, len(draws), size)] + [[j] for j in todo if j[0] == "corner"]


def _score_group(frontend, classifier, dataset, group: list, options: YieldOptions) -> list[dict]:
    """The journal lines of a group of chips (or one corner), evaluated as one :class:`ChipStack`:
    every chip's accuracy per condition (and mean) and centres."""
    kind = group[0][0]
    with torch.no_grad():
        if kind == "corner":
            stack = sample_chip(frontend, corner=group[0][1]).chip_stack(corners=[group[0][1]])
        else:
            base = sample_chip(frontend)
            stack = base.chip_stack([base.draw_factors(options.seed + k, options.source, options.sigma_i,
                                                       options.sigma_c) for _, k in group])
    accuracy = [{} for _ in group]
    was = classifier.training
    classifier.eval()
    try:
        for key, view in evaluation_views(dataset, options.snrs, options.noise, stacklevel=5).items():
            for j, cm in enumerate(stacked_confusion_matrices(stack, classifier, view, options.batch_size)):
                accuracy[j][key] = accuracy_of(cm)
    finally:
        classifier.train(was)
    return [{"kind": k, "id": ident, "seed": options.seed + ident if k == "chip" else None,
             "accuracy": _with_mean(acc), "f0_hz": [float(v) for v in stack.f0_hz[j]]}
            for j, ((k, ident), acc) in enumerate(zip(group, accuracy))]


@torch.no_grad()
def stacked_confusion_matrices(stack, classifier, dataset, batch_size: int = 128) -> np.ndarray:
    """``[K, n_classes, n_classes]`` counts (rows true, columns predicted) of ``classifier`` on the
    features of every chip of ``stack`` (a :class:`~learnafe.frontends.ChipStack`), the clips in
    batches of ``batch_size``, all chips of a batch in one front-end call, then the classifier on
    each chip's rows of the stacked features; torch's generator is seeded as :func:`~learnafe.training.evaluate.confusion_matrix` seeds it,
    so each chip's circuit noise is the noise its own evaluation draws."""
    n_chips, k = stack.n_chips, len(CLASSES)
    cm = torch.zeros(n_chips, k, k, dtype=torch.int64)
    chip_index = torch.arange(n_chips)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(EVAL_TORCH_SEED)
        for s in range(0, len(dataset), batch_size):
            chunk = np.arange(s, min(s + batch_size, len(dataset)))
            x = torch.from_numpy(np.stack([dataset.waveform(int(i)) for i in chunk]))
            y = torch.from_numpy(dataset.labels[chunk].astype(np.int64))
            feats = stack(x)                                           # [K, B, C, F]
            # the classifier on each chip's B rows: a [K * B] batch would cost more per row
            # (the convolutions' working set outgrows the cache), and B rows give the logits
            # of the chip's own evaluation bit for bit
            pred = torch.stack([classifier(f).argmax(dim=1) for f in feats])
            cm.index_put_((chip_index[:, None].expand_as(pred), y.expand_as(pred), pred),
                          torch.ones_like(pred), accumulate=True)
    return cm.numpy()


def _result(frontend, n_chips, corners, options: YieldOptions, header: dict, done: dict, spread) -> dict:
    """The ``learnafe-yield/1`` result from the scored chips and corners in ``done``."""
    z_sums, z_n = spread
    chips = [done[("chip", k)] for k in range(n_chips)]
    keys = list(chips[0]["accuracy"]) if chips else []
    return {"format": YIELD_FORMAT, "n_chips": n_chips, "seed": options.seed, "source": options.source,
            "snrs": [float(s) for s in options.snrs], "data": header["data"], "split": header["split"],
            "n_clips": header["n_clips"],
            "distribution": {k: distribution([c["accuracy"][k] for c in chips]) for k in keys},
            "corners": {done[("corner", c)]["id"]: done[("corner", c)]["accuracy"] for c in corners},
            "corner_f0_hz": {c: done[("corner", c)]["f0_hz"] for c in corners},
            "chips": [{"seed": c["seed"], "accuracy": c["accuracy"]} for c in chips],
            "mismatch": _mismatch_figures(frontend, options.source, options.sigma_i, options.sigma_c),
            "measured_spread": {q: float(np.sqrt(z_sums[i] / z_n)) if z_n else None
                                for i, q in enumerate(("I1", "I2", "C1", "C2"))},
            "measured_spread_note": "RMS over chips and channels of (drawn factor - 1) / sigma: 1 when the "
                                    "draws have the stated spread",
            "corner_note": "nominal chip at each SKY130 corner: the design's currents and capacitors, gm "
                           "from the corner's gm/Id table (bias currents forced by ideal references)"}


def _mismatch_figures(frontend, source, sigma_i, sigma_c) -> dict:
    if source == "uniform":
        return {"source": "uniform", "sigma_I": float(sigma_i), "sigma_C": float(sigma_c),
                "sources": {"I": "given (--sigma-i)", "C": "given (--sigma-c)"}}

    with torch.no_grad():
        v = {k: t.detach().cpu().numpy() for k, t in frontend.circuit().items() if k in ("I1", "I2", "C1", "C2")}
    full = sky130_mismatch(v["I1"], v["I2"], v["C1"], v["C2"])
    return {"source": "sky130", "per_channel": {k: [float(x) for x in full[k]] for k in
                                                ("sigma_I1", "sigma_I2", "sigma_C1", "sigma_C2")},
            "sources": full["sources"]}


def summary_line(res: dict) -> str:
    d = res["distribution"].get("mean")
    parts = []
    if d:
        parts.append(f"{d['n']} chips, mean accuracy {100 * d['mean']:.2f} % +- {100 * d['std']:.2f}, "
                     f"p5 {100 * d['p5']:.2f} %, min {100 * d['min']:.2f} %")
    if res["corners"]:
        parts.append("corners " + ", ".join(f"{c}: {100 * a['mean']:.2f} %" for c, a in res["corners"].items()))
    return "; ".join(parts)


def plot_yield(res: dict, path) -> None:
    """Histogram of the chips' mean accuracy (and clean accuracy), 5th percentile and corners marked."""
    from matplotlib.figure import Figure  # no pyplot: leaves the user's backend alone

    fig = Figure(figsize=(6.4, 3.8), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    chips = res["chips"]
    for key, color in (("mean", "C0"), ("clean", "C1")):
        vals = [100 * c["accuracy"][key] for c in chips if key in c["accuracy"]]
        if vals:
            ax.hist(vals, bins=min(30, max(5, len(vals) // 3)), alpha=0.6, color=color,
                    label=f"{key} ({len(vals)} chips)")
    d = res["distribution"].get("mean")
    if d:
        ax.axvline(100 * d["p5"], color="C0", ls="--", label=f"p5 of mean: {100 * d['p5']:.2f} %")
    for j, (c, acc) in enumerate(res["corners"].items()):
        ax.axvline(100 * acc["mean"], color=f"C{j + 2}", ls=":", label=f"corner {c} (mean): {100 * acc['mean']:.2f} %")
    ax.set_xlabel("accuracy (%)")
    ax.set_ylabel("chips")
    ax.set_title(f"accuracy over sampled chips ({res['source']} mismatch)")
    ax.legend(fontsize=7)
    fig.tight_layout()

    atomic_write(path, lambda f: fig.savefig(f, format="png"))
