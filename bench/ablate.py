"""Ablations on the demo's real validation speakers, one reduced training run per row.

``python bench/ablate.py augment --out runs/ablate-augment`` trains one co-design run per row
of the voice/room augmentation ablation (off, the defaults, each effect alone);
``python bench/ablate.py unknown --out runs/ablate-unknown --near-miss DIR`` the rows of the
``unknown`` class (near-miss synthetic unknowns, its class weight);
``python bench/ablate.py average --out runs/ablate-average`` the weight average
(``optimiser.ema_decay``) against the raw weights, at two seeds;
``python bench/ablate.py recipe --out runs/ablate-recipe`` mixup (``augment.mixup_alpha``), the
classifier learning rate and label smoothing.  Every row starts from the
demo's configuration with real recordings (:data:`learnafe.demo.DEMO_CONFIG` +
:data:`learnafe.demo.REAL_RECIPE`, the real training speakers, the extra ``unknown`` words and
the real noise found by :func:`learnafe.demo.demo_data`) at a reduced budget (``--epochs``
epochs of ``--clips`` clips, one thread per run, no teacher), the same seed for every row;
the baseline runs twice, with ``--seed`` and ``--seed`` + 1, to show the protocol's noise.

Protocol: the best epoch of a row is chosen on the stratified ``data.limit_val`` clips of the
real validation speakers (the *selection* clips: metrics.json ``validation``); settings are
compared on those.  The *report* clips are their complement (``real_validation``), with noise
from the last 10 % of every noise recording; they informed no choice.

Rows run ``--jobs`` at a time (spawned processes).  A finished row (its ``metrics.json`` says
``finished``) is not rerun; an interrupted one resumes from its last checkpoint.  After every
row ``OUT/ablation.json`` (written atomically) and ``OUT/ablation.md`` (the table) are
rewritten from the rows' metrics.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from learnafe._jsonio import read_json, write_json
from learnafe.demo import DEMO_CONFIG, demo_data, real_recipe

EFFECTS = ("formant", "pitch", "tempo", "eq", "reverb", "level", "clipping")


def _alone(effect: str) -> dict:
    """The voice augmentation with ``effect`` alone on (its default probability and range)."""
    return {"enabled": True, **{e: e == effect for e in EFFECTS}}


def augment_rows(seed: int) -> dict:
    """Rows of the voice/room augmentation ablation: {name: (description, overrides)}."""
    rows = {"off": ("voice augmentation off (the demo)", {}),
            f"off-seed{seed + 1}": (f"off, seed {seed + 1}", {"output.seed": seed + 1}),
            "all": ("every effect on (the defaults)", {"augment.voice_augment": {"enabled": True}})}
    for e in EFFECTS:
        rows[e] = (f"{e} alone", {"augment.voice_augment": _alone(e)})
    return rows


def unknown_rows(seed: int, near_miss: str | None, weights=(1.5, 2.0, 3.0), near_miss_weight: float = 0.3,
                 combine=()) -> dict:
    """Rows of the ``unknown`` ablation: near-miss synthetic unknowns (a source folder, e.g.
    ``learnafe data near-miss --out DIR``) and the class weight of ``unknown`` in the
    cross-entropy."""
    rows = {"off": ("the demo's unknowns (synthetic + real bed/cat/happy)", {}),
            f"off-seed{seed + 1}": (f"the same, seed {seed + 1}", {"output.seed": seed + 1})}
    if near_miss:
        rows["near-miss"] = (f"+ near-miss synthetic unknowns (weight {near_miss_weight:g})",
                             {"extra_sources": [{"path": near_miss, "weight": near_miss_weight, "use": "all",
                                                 "name": "near-miss"}]})
    for w in weights:
        rows[f"weight-{w:g}"] = (f"unknown class weight {w:g}", {"cost.unknown_weight": float(w)})
    for w in combine:
        if not near_miss:
            raise SystemExit("ablate: --combine needs --near-miss DIR")
        rows[f"near-miss+weight-{w:g}"] = (f"near-miss unknowns + class weight {w:g}",
                                           {**rows["near-miss"][1], "cost.unknown_weight": float(w)})
    return rows


def average_rows(seed: int, decays=(0.99,)) -> dict:
    """Rows of the weight-average ablation (``optimiser.ema_decay``), each at two seeds."""
    rows = {}
    for s in (seed, seed + 1):
        tag = "" if s == seed else f"-seed{s}"
        rows[f"off{tag}"] = (f"raw weights (the demo), seed {s}", {"output.seed": s})
        for d in decays:
            rows[f"ema-{d:g}{tag}"] = (f"weight average, decay {d:g}, seed {s}",
                                       {"output.seed": s, "optimiser.ema_decay": float(d)})
    return rows


def recipe_rows(seed: int, mixups=(0.4,)) -> dict:
    """Training-recipe levers of the classifier: mixup of the batches, a larger classifier
    learning rate, more label smoothing (each alone, on the demo's recipe)."""
    rows = {"off": ("the demo's recipe", {})}
    for a in mixups:
        rows[f"mixup-{a:g}"] = (f"mixup, alpha {a:g}", {"augment.mixup_alpha": float(a)})
    rows["lr-0.01"] = ("classifier learning rate 0.01 (0.005)", {"optimiser.lr_classifier": 0.01})
    rows["ls-0.1"] = ("label smoothing 0.1 (0.05)", {"cost.label_smoothing": 0.1})
    return rows


def base_config(data_root: str, epochs: int, clips: int, seed: int) -> dict:
    """The demo's configuration with real recordings, at the reduced budget (co-design bank)."""
    found = demo_data()
    if not found["real"]:
        raise SystemExit("ablate: no labelled real folder found (../shared/data/gsc-v2-testset-dev); "
                         "the ablation is measured on its validation speakers")
    return {**DEMO_CONFIG, "data.sources": [], **real_recipe(found), "data.root": data_root,
            "data.epoch_clips": int(clips), "schedule.epochs": int(epochs), "output.seed": int(seed),
            "output.progress": False, "output.threads": 1, "bank.mode": "codesign"}


def row_config(base: dict, overrides: dict) -> dict:
    cfg = {**base, **{k: v for k, v in overrides.items() if k != "extra_sources"}}
    cfg["data.sources"] = list(base["data.sources"]) + list(overrides.get("extra_sources", []))
    return cfg


def _metrics(run: Path) -> dict | None:
    try:
        m = read_json(run / "metrics.json")
    except (FileNotFoundError, ValueError):
        return None
    return m if m.get("status") == "finished" and m.get("real_validation") else None


def _train_row(cfg: dict, run_dir: str) -> str:
    logging.basicConfig(level=logging.WARNING)
    from learnafe.training.trainer import train

    train(cfg, run_dir, test=False)
    return run_dir


def summarise(rows: dict, out: Path, protocol: dict) -> dict:
    """``ablation.json`` content: per row the selection and report accuracies."""
    result = {"format": "learnafe-ablation/1", "protocol": protocol, "rows": {}}
    for name, (what, overrides) in rows.items():
        m = _metrics(out / name)
        if m is None:
            continue
        rep = m["real_validation"]
        result["rows"][name] = {
            "what": what, "overrides": overrides, "best_epoch": m["best_epoch"],
            "selection": {"n": m["n_val"], "accuracy": m["validation"]["accuracy"],
                          "mean_accuracy": m["validation"]["mean_accuracy"]},
            "report": {"n": rep["n"], "accuracy": rep["accuracy"], "mean_accuracy": rep["mean_accuracy"],
                       "per_class_clean": rep["per_class_accuracy"]["clean"]},
            "clips_per_s": m.get("throughput_clips_per_s"), "train_seconds": m.get("train_seconds"),
            "power_saving": m.get("power_saving"), "area_saving": m.get("area_saving")}
    return result


def markdown(result: dict) -> str:
    snrs = ("clean", "20", "15", "10", "5")
    lines = ["| row | selection mean | report " + " | ".join(s if s == "clean" else f"{s} dB" for s in snrs)
             + " | report mean | report unknown (clean) | train s |",
             "| --- | ---: | " + " | ".join("---:" for _ in snrs) + " | ---: | ---: | ---: |"]
    for r in result["rows"].values():
        acc = r["report"]["accuracy"]
        lines.append(f"| {r['what']} | {r['selection']['mean_accuracy']:.3f} | "
                     + " | ".join(f"{acc[s]:.3f}" for s in snrs)
                     + f" | {r['report']['mean_accuracy']:.3f} | {r['report']['per_class_clean']['unknown']:.3f}"
                     f" | {r['train_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("table", choices=("augment", "unknown", "average", "recipe"))
    ap.add_argument("--out", required=True, help="folder of the rows' runs and the table")
    ap.add_argument("--data", default="data/synth-small", help="the synthetic training set (the demo's)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--clips", type=int, default=2000, help="training clips per epoch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2, help="rows trained at the same time")
    ap.add_argument("--near-miss", default=None, help="unknown table: folder of near-miss unknowns")
    ap.add_argument("--weights", default="1.5,2,3", help="unknown table: class weights to try")
    ap.add_argument("--decays", default="0.99", help="average table: weight-average decays to try "
                                                     "(comma-separated)")
    ap.add_argument("--mixups", default="0.4", help="recipe table: mixup alphas to try (comma-separated)")
    ap.add_argument("--combine", default="", help="unknown table: class weights to combine with the "
                                                   "near-miss unknowns (comma-separated)")
    ap.add_argument("--rows", default="", help="comma-separated subset of the rows (default: all)")
    ap.add_argument("--extra", default="{}", help="JSON object of overrides for every row")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.table == "augment":
        rows = augment_rows(args.seed)
    elif args.table == "recipe":
        rows = recipe_rows(args.seed, tuple(float(a) for a in args.mixups.split(",") if a))
    elif args.table == "average":
        rows = average_rows(args.seed, tuple(float(d) for d in args.decays.split(",") if d))
    else:
        rows = unknown_rows(args.seed, args.near_miss, tuple(float(w) for w in args.weights.split(",") if w),
                            combine=tuple(float(w) for w in args.combine.split(",") if w))
    extra = json.loads(args.extra)
    if not isinstance(extra, dict):
        raise SystemExit("ablate: --extra must be a JSON object of option overrides")
    for name, (what, ov) in list(rows.items()):
        rows[name] = (what, {**extra, **ov})
    if args.rows:
        keep = args.rows.split(",")
        unknown = sorted(set(keep) - set(rows))
        if unknown:
            raise SystemExit(f"ablate: unknown row(s) {unknown}; rows: {sorted(rows)}")
        rows = {k: rows[k] for k in keep}
    base = base_config(args.data, args.epochs, args.clips, args.seed)
    protocol = {"command": "python bench/ablate.py " + " ".join(argv or __import__("sys").argv[1:]),
                "base": {k: v for k, v in base.items() if k != "output.progress"},
                "selection": f"best epoch and settings chosen on the {base['data.limit_val']} stratified "
                             "clips of the real validation speakers (metrics.json validation)",
                "report": "the other clips of the real validation speakers (real_validation), noise from "
                          "the last 10 % of every recording"}

    def write() -> None:
        result = summarise(rows, out, protocol)
        write_json(out / "ablation.json", result)
        (out / "ablation.md").write_text(markdown(result))

    todo = {n: row_config(base, ov) for n, (_, ov) in rows.items() if _metrics(out / n) is None}
    print(f"ablate {args.table}: {len(rows) - len(todo)} rows done, {len(todo)} to train", flush=True)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=max(1, args.jobs), mp_context=multiprocessing.get_context("spawn")) as ex:
        futs = {ex.submit(_train_row, cfg, str(out / n)): n for n, cfg in todo.items()}
        for f in as_completed(futs):
            f.result()
            print(f"  {futs[f]} done after {time.perf_counter() - t0:.0f} s", flush=True)
            write()
    write()
    print((out / "ablation.md").read_text())


if __name__ == "__main__":
    main()
