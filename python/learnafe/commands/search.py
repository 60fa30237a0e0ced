"""``learnafe search``: Nevergrad design-space search (accuracy-power-area Pareto front)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from learnafe._jsonio import write_json

log = logging.getLogger("learnafe.search")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "search",
        help="design-space search: Pareto front of error, power and area (Nevergrad)",
        description=(
            "Search training hyper-parameters, loss weights and architecture knobs with Nevergrad. "
            "Each trial is a short training run (or the trial function named in the config); the "
            "objectives are validation error, power and capacitor area. Trials run in parallel in local "
            "worker processes or on a Dask cluster. Every finished trial is appended to OUT/journal.jsonl: "
            "running the same command again resumes the search, and a larger --budget extends it. "
            "Writes OUT/trials.csv, trials.json, pareto.json, summary.json and pareto.png."))
    p.add_argument("config", help="search config file (.toml or .json), e.g. configs/search_small.toml")
    p.add_argument("--budget", type=int, default=None, help="total number of trials (default: the config's)")
    p.add_argument("--workers", type=int, default=None,
                   help="trials running at the same time (default: the config's)")
    p.add_argument("--dask", metavar="ADDRESS", default=None,
                   help="run trials on a Dask cluster, e.g. tcp://scheduler:8786 (default: local processes)")
    p.add_argument("--out", default=None, help="search directory (default: runs/search/<config name>)")
    p.add_argument("--optimizer", default=None, help="nevergrad optimizer name (overrides the config)")
    p.add_argument("--mode", choices=("multi", "scalar"), default=None,
                   help="multi: Pareto front of (error, power, area); scalar: weighted L_BPF-form sum")
    p.add_argument("--seed", type=int, default=None, help="seed of the optimiser and the trials")
    p.add_argument("--threads-per-trial", type=int, default=None,
                   help="cores per trial (default: cores // workers locally, 1 on Dask)")
    p.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE",
                   help="override one [trial.settings] entry (VALUE read as JSON, else as text), e.g. "
                        "--setting data=data/my-set --setting epochs=6; repeatable")
    p.add_argument("--no-plot", action="store_true", help="do not write pareto.png")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", metavar="PATH", default=None, help="also write the summary JSON here")
    p.set_defaults(func=run)


def run(args) -> int:
    from learnafe.search.space import load_config

    config = load_config(args.config)
    for item in args.setting:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--setting {item!r}: write it as KEY=VALUE, e.g. --setting epochs=6")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        config.settings[key.strip()] = value
    for key in ("optimizer", "mode", "seed"):
        value = getattr(args, key)
        if value is not None:
            setattr(config, key, value)
    config.__post_init__()  # re-validate the overrides
    if args.budget is not None and args.budget < 1:
        raise ValueError(f"--budget must be at least 1, got {args.budget}")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    if args.threads_per_trial is not None and args.threads_per_trial < 1:
        raise ValueError(f"--threads-per-trial must be at least 1, got {args.threads_per_trial}")
    out = Path(args.out) if args.out else Path("runs") / "search" / Path(args.config).stem

    from learnafe.search.runner import run_search

    result = run_search(config, out, budget=args.budget, workers=args.workers, dask_address=args.dask,
                        threads_per_trial=args.threads_per_trial, progress=not args.no_progress,
                        plot=not args.no_plot)
    s = result.summary
    print(f"{s['trials']} trials ({s['ok']} ok, {s['failed']} failed), {len(s['pareto'])} on the Pareto front; "
          f"results in {out}")
    for p in s["pareto"]:
        o = p["objectives"]
        v = p["versus_reference"]
        extra = (f"  [vs conventional: error {v['error_change_points']:+.2f} points, "
                 f"power {-v['power_saving_pct']:+.1f} %, area {-v['area_saving_pct']:+.1f} %]") if v else ""
        print(f"  trial {p['trial']:4d}: error {100 * o['error']:6.2f} %  power {o['power_w']:.4g} W  "
              f"area {o['area_um2']:.4g} um^2{extra}")
    if args.json:
        write_json(args.json, s)
    return 0
