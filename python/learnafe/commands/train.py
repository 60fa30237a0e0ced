"""Sub-commands ``train``, ``evaluate``, ``finetune``, ``report`` and ``demo``."""

from __future__ import annotations

import argparse
import json

from learnafe.commands._help import RawDescriptionHelpFormatter

_EPILOG_TRAIN = """\
Every training option is a flag (see docs/training.md); --config FILE loads a JSON
file of options first, flags override it.  Examples:
  learnafe train --out runs/cd --mode codesign --epochs 12
  learnafe train --out runs/conv --mode conventional
  torchrun --nproc_per_node 2 -m learnafe train --out runs/cd2 --threads 1
An interrupted run resumes when started again with the same --out and options."""


def _field_flag(parser, name: str, f, default) -> None:
    """The flag ``--name`` (the option's flat name) of option field ``f``; the value lands in
    ``args.<name>``."""
    flag = "--" + name.replace("_", "-")
    t = f.type if not isinstance(f.type, str) else {"int": int, "float": float, "str": str, "tuple": _names,
                                                    "bool": bool, "list": list, "dict": dict}[f.type]
    help_ = f"{f.metadata['help']} (default: {json.dumps(default)})"
    if t is bool:
        parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction,
                            default=argparse.SUPPRESS, help=help_)
    elif name == "sources":
        parser.add_argument(flag, dest=name, nargs="+", type=_source_spec, default=argparse.SUPPRESS,
                            metavar="PATH[:WEIGHT[:USE]]", help=help_)
    elif t is list:
        parser.add_argument(flag, dest=name, nargs="+", type=float, default=argparse.SUPPRESS,
                            metavar="DB", help=help_)
    elif t is dict:
        parser.add_argument(flag, dest=name, type=_json_object, default=argparse.SUPPRESS,
                            metavar="JSON", help=help_)
    else:
        parser.add_argument(flag, dest=name, type=t, default=argparse.SUPPRESS, help=help_)


def _names(s: str) -> list[str]:
    """A comma-separated list of names (``tt,ss``; "": none)."""
    return [x.strip() for x in s.split(",") if x.strip()]


_USES = ("auto", "train", "all", "speaker-train", "speaker-val")


def _source_spec(s: str) -> dict:
    """``PATH[:WEIGHT[:USE]]`` or a JSON object -> a source spec dict."""
    if s.lstrip().startswith("{"):
        return _json_object(s)
    parts = s.split(":")
    use = parts.pop() if len(parts) >= 2 and parts[-1] in _USES else None
    weight = float(parts.pop()) if len(parts) >= 2 and _is_number(parts[-1]) else None
    spec = {"path": ":".join(parts)}
    if weight is not None:
        spec["weight"] = weight
    if use is not None:
        spec["use"] = use
    return spec


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _json_object(s: str) -> dict:
    try:
        v = json.loads(s)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from exc
    if not isinstance(v, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"noise\": true}'")
    return v


def register(sub) -> None:
    _add_train(sub)
    _add_evaluate(sub)
    _add_finetune(sub)
    _add_report(sub)
    _add_demo(sub)


def _add_train(sub) -> None:
    """``learnafe train``: every TrainConfig field is an option (its flat name, grouped by
    section), with its documentation as help."""
    from learnafe.training.config import SECTIONS, TrainConfig

    defaults = TrainConfig.defaults()
    p = sub.add_parser("train", help="train a co-designed or conventional front end + DSCNN",
                       description="Train the filter bank and the DSCNN classifier against L_BPF "
                                   "and write a run directory.",
                       epilog=_EPILOG_TRAIN, formatter_class=RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="run directory to write (resumed if it exists)")
    p.add_argument("--config", help="JSON file of training options")
    p.add_argument("--no-resume", action="store_true", help="refuse to continue an existing run")
    p.add_argument("--no-test", action="store_true", help="skip the final test-split evaluation")
    groups = {}
    for dotted, f in TrainConfig.fields():
        section = dotted.split(".")[0]
        if section not in groups:
            doc = (SECTIONS[section].__doc__ or "").strip().splitlines()[0]
            groups[section] = p.add_argument_group(f"{section} options", doc)
        _field_flag(groups[section], TrainConfig.flag(dotted), f, defaults[dotted])
    p.set_defaults(func=_train, _config_fields=[TrainConfig.flag(d) for d, _ in TrainConfig.fields()])


def _add_evaluate(sub) -> None:
    """``learnafe evaluate``: a run's accuracy per SNR, optionally over mismatched chips."""
    from learnafe.circuits.transconductance import SKY130_CORNERS

    p = sub.add_parser("evaluate", help="accuracy of a run per SNR on any data folder",
                       description="Evaluate a run's best model clean and at fixed SNRs on a data "
                                   "folder in either layout (Speech Commands or 12-class test).")
    p.add_argument("run", help="run directory")
    p.add_argument("--data", help="data folder (default: the run's own real validation speakers, "
                                  "less the clips that chose its best epoch, for a run trained with --real)")
    p.add_argument("--json", help="write the result to this JSON file")
    p.add_argument("--split", default="test", help="split of a Speech Commands folder (default test)")
    p.add_argument("--noise", help="noise folder (default: the folder's _background_noise_, "
                                   "else the run's training noise)")
    p.add_argument("--snrs", nargs="+", type=float, metavar="DB", help="SNRs in dB (default 5 10 15 20)")
    p.add_argument("--mismatch", type=int, default=0, metavar="N",
                   help="yield analysis: accuracy over N sampled chips (mean, std, 5th percentile, min) with "
                        "SKY130 mismatch, plus the nominal chip of every process corner; written to "
                        "--yield-out (JSON, PNG histogram, log, resumable journal)")
    p.add_argument("--mismatch-source", choices=("sky130", "uniform"), default="sky130",
                   help="sky130: per-channel sigmas from the SKY130 model files (current mirrors' V_th "
                        "mismatch x gm/Id, MIM matching); uniform: --sigma-i/--sigma-c (default sky130)")
    p.add_argument("--sigma-i", type=float, default=0.02,
                   help="relative 1-sigma mismatch of the bias currents with --mismatch-source uniform (default 0.02)")
    p.add_argument("--sigma-c", type=float, default=0.01,
                   help="relative 1-sigma mismatch of the capacitors with --mismatch-source uniform (default 0.01)")
    p.add_argument("--circuit-noise", choices=("as-trained", "off"), default="as-trained",
                   help="the bank's kT/C noise model as trained (default) or switched off")
    p.add_argument("--corners", nargs="*", default=None, choices=SKY130_CORNERS, metavar="CORNER",
                   help="process corners evaluated with --mismatch (default: tt ss ff; give none for no corners)")
    p.add_argument("--yield-snrs", nargs="*", type=float, metavar="DB",
                   help="SNRs of the chip evaluations (default: those of --snrs; give none for clean only); clean is always included")
    p.add_argument("--yield-out", help="folder of the yield analysis (default RUN/yield)")
    p.add_argument("--seed", type=int, default=None, help="seed of chip 0 (default: the run's eval_seed)")
    p.add_argument("--batch-size", type=int, default=128, help="clips per evaluation batch (default 128)")
    p.add_argument("--chips-per-call", type=int, default=8, metavar="K",
                   help="with --mismatch: sampled chips evaluated in one batched front-end call; a call holds "
                        "K x --batch-size clips (memory ~ K x batch x clip samples x 4 bytes), the results do "
                        "not depend on K (default 8)")
    p.set_defaults(func=_evaluate)


def _add_finetune(sub) -> None:
    """``learnafe finetune``: the classifier on another front end's features."""
    p = sub.add_parser("finetune", help="fine-tune the classifier on another front end's features",
                       description="Freeze the front end and fine-tune the classifier on the "
                                   "features of the SPICE-calibrated bank (--spice) or on a "
                                   "speaker-disjoint half of real recordings (--real DIR); accuracy "
                                   "before and after is reported per SNR.")
    p.add_argument("run", help="run directory")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--spice", action="store_true",
                     help="use learnafe.spice.calibrated_frontend(RUN) (run `learnafe verify RUN` first)")
    src.add_argument("--real", metavar="DIR", help="12-class folder of real recordings: fine-tune on "
                                                  "one speaker half, evaluate on the other")
    p.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs (default 5)")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate of the classifier (default 0.001)")
    p.add_argument("--out", help="output directory (default RUN/finetune-spice or RUN/finetune-real)")
    p.add_argument("--seed", type=int, default=0, help="seed of data order and augmentation (default 0)")
    p.set_defaults(func=_finetune)


def _add_report(sub) -> None:
    """``learnafe report``: the Markdown report of runs."""
    p = sub.add_parser("report", help="Markdown report with plots for one or more runs",
                       description="Write a Markdown report (PNG plots next to it): responses "
                                   "before/after, accuracy vs SNR, power/area/accuracy table, "
                                   "confusion matrices, plus SPICE/search/Xylo sections when present.")
    p.add_argument("runs", nargs="+", help="run directories")
    p.add_argument("--out", default=None, help="report file (default: report.md next to the first run)")
    p.add_argument("--search", help="search journal/directory to include (learnafe.search.report_section)")
    p.set_defaults(func=_report)


def _add_demo(sub) -> None:
    """``learnafe demo``: the whole story end to end."""
    p = sub.add_parser("demo", help="the whole story end to end on the embedded data set",
                       description="Synthesise the small data set (if missing), train the "
                                   "conventional and the co-designed bank, evaluate both at every "
                                   "SNR (and on real recordings when available), write the report.")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--size", default="small", help="synthetic data set size (default small)")
    p.add_argument("--data", help="use this data folder instead of synthesising one")
    p.add_argument("--real", help="labelled folder of real recordings, split by speaker into "
                                  "training and validation speakers (default "
                                  "../shared/data/gsc-v2-testset-dev when it exists)")
    p.add_argument("--unknown", help="folder of extra real `unknown` words (default "
                                     "../shared/data/gsc-unknown-words when it exists)")
    p.add_argument("--noise", help="folder of real background-noise recordings for training and the "
                                   "fixed-SNR evaluation (default ../shared/data/gsc-background-noise "
                                   "when it exists)")
    p.add_argument("--synthetic-only", action="store_true",
                   help="train on the synthetic set alone even when real folders exist (a --real "
                        "folder given explicitly then only validates)")
    p.add_argument("--epochs", type=int, help="training epochs (default: the demo's setting)")
    p.add_argument("--seed", type=int, default=0, help="seed of both trainings and the real-speech fine-tuning (default 0)")
    p.set_defaults(func=_demo)


def _train(args) -> int:
    import logging

    from learnafe.training.config import resolve_config
    from learnafe.training.trainer import train

    overrides = {k: getattr(args, k) for k in args._config_fields if hasattr(args, k)}
    cfg = resolve_config(args.config, **overrides)
    m = train(cfg, args.out, resume=not args.no_resume, test=not args.no_test)
    if m.get("status") == "finished":
        log = logging.getLogger("learnafe.training")
        log.info("metrics: %s/metrics.json (val error %.4f, power %.4g W (%+.1f %%), area %.4g um^2 "
                 "(%+.1f %%))", args.out, m["val_error"], m["power_w"], -100 * m["power_saving"],
                 m["area_um2"], -100 * m["area_saving"])
    return 0


def _print_eval(res: dict) -> None:
    acc = res["accuracy"]
    print(f"{res['n']} clips from {res['data']}")
    print("  ".join(f"{k:>6}" for k in acc) + "    mean")
    print("  ".join(f"{100 * v:6.2f}" for v in acc.values()) + f"  {100 * res['mean_accuracy']:6.2f}")


def _evaluate(args) -> int:
    from pathlib import Path

    from learnafe.circuits.transconductance import SKY130_CORNERS
    from learnafe.training.run_evaluation import EvaluateOptions, FabOptions, evaluate_run
    from learnafe.training.rundir import write_json

    fab = args.mismatch > 0
    corners = (list(SKY130_CORNERS) if args.corners is None else args.corners) if fab else []
    options = EvaluateOptions(snrs=args.snrs, noise=args.noise, split=args.split, batch_size=args.batch_size,
                              circuit_noise=args.circuit_noise, progress=True)
    fab_options = FabOptions(chips=args.mismatch, source=args.mismatch_source if fab else None,
                             sigma_i=args.sigma_i, sigma_c=args.sigma_c, corners=corners, snrs=args.yield_snrs,
                             out_dir=(args.yield_out or Path(args.run) / "yield") if fab else None, seed=args.seed,
                             chips_per_call=args.chips_per_call)
    res = evaluate_run(args.run, args.data, options, fab_options)
    _print_eval(res)
    if "yield" in res:
        from learnafe.training.chips import summary_line

        y = res["yield"]
        print(f"fab variation ({y['source']} mismatch): {summary_line(y)}")
        print("  ".join(f"{k}: mean {100 * d['mean']:.2f} std {100 * d['std']:.2f} p5 {100 * d['p5']:.2f} "
                        f"min {100 * d['min']:.2f}" for k, d in y["distribution"].items()))
        print(f"written to {args.yield_out or Path(args.run) / 'yield'} (yield.json, yield.png, yield.log)")
    if "mismatch" in res:
        mm = res["mismatch"]
        print(f"mismatch Monte Carlo, {mm['n_chips']} chips (sigma_I {mm['sigma_i']:g}, "
              f"sigma_C {mm['sigma_c']:g}): " + "  ".join(
                  f"{k}: {100 * mm['mean'][k]:.2f}+-{100 * mm['std'][k]:.2f}" for k in mm["mean"]))
    if args.json:
        write_json(args.json, res)
    return 0


def _finetune(args) -> int:
    from learnafe.training.finetune import finetune_real

    if args.spice:
        from learnafe.spice.finetune import finetune_spice

        res = finetune_spice(args.run, epochs=args.epochs, out_dir=args.out, lr=args.lr, seed=args.seed)
    else:
        res = finetune_real(args.run, args.real, epochs=args.epochs, out_dir=args.out, lr=args.lr,
                            seed=args.seed)
    for when in ("before", "after"):
        print(when, " ".join(f"{k}:{100 * v:.2f}" for k, v in res[when]["accuracy"].items()))
    print(f"written to {res['out_dir']}")
    return 0


def _report(args) -> int:
    from learnafe.reporting import write_report

    path = write_report(args.runs, args.out, search=args.search)
    print(f"report: {path}")
    return 0


def _demo(args) -> int:
    from learnafe.demo import DemoOptions, run_demo

    res = run_demo(DemoOptions(out=args.out, size=args.size, data=args.data, real=args.real,
                               unknown=args.unknown, noise=args.noise, synthetic_only=args.synthetic_only,
                               epochs=args.epochs, seed=args.seed))
    print(f"report: {res['report']}")
    return 0

