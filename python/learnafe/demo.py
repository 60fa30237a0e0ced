"""The end-to-end demo (``learnafe demo``): the whole co-design story on the
embedded synthetic data set plus the real recordings it finds, within 20 minutes
on 2 cores.

The demo uses what it has.  When the real Speech Commands folders are there
(``--real``, ``--unknown``, ``--noise``; by default ``gsc-v2-testset-dev``,
``gsc-unknown-words`` and ``gsc-background-noise`` under ``../shared/data``, see
:func:`learnafe.data.sources.find_shared`) it trains on the synthetic set plus
the training speakers of the labelled real folder and the extra ``unknown``
words, mixes the real background noise in, and chooses and reports on the
held-out real speakers (:data:`REAL_RECIPE`); without them it trains on the
synthetic set alone.  The log, ``summary.json`` and the report say which.

1. synthesise the small keyword data set into ``data/synth-<size>`` (resumable;
   clips already present are kept);
2. train the conventional bank (front end frozen at the hand design) and the
   co-designed bank (front end trained against L_BPF) with the same classifier,
   data, augmentation and budget -> ``OUT/conventional/``, ``OUT/codesign/``.
   With two or more cores the two runs train at the same time, one process
   and one thread each (on a shared machine one thread per process is much
   faster than OpenMP threads competing for cores);
3. evaluate both on the test split of the synthetic set and (with real data) on
   the real validation speakers, clean and at 5/10/15/20 dB;
4. when a labelled real folder exists: evaluate both on all of it
   (``RUN/eval/real.json``; it includes the training speakers when the models
   trained on them), then fine-tune the classifier of each on the training
   speakers and evaluate on the validation speakers (``RUN/finetune-real/``);
5. write ``OUT/report.md`` (+ PNGs) and ``OUT/summary.json``.

Every step is resumable: running the demo again continues where it stopped.
It uses training (:mod:`learnafe.training`) and the report
(:mod:`learnafe.reporting`), so it sits in the layer above both.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields, replace
from pathlib import Path

from learnafe.data.sources import SHARED_SETS, find_shared
from learnafe.training.config import TrainConfig
from learnafe.training.rundir import METRICS, read_json, write_json

__all__ = ["run_demo", "DemoOptions", "DEMO_CONFIG", "REAL_RECIPE", "DEFAULT_REAL", "demo_data", "real_recipe"]

log = logging.getLogger(__name__)
DEFAULT_REAL = "../shared/data/gsc-v2-testset-dev"

#: The demo's training options (both runs; only ``mode`` differs).  kT/C noise is
#: on in training and evaluation, so smaller capacitors really cost accuracy; its level is
#: drawn per training batch (0 on a quarter of the batches, else 0-1.5x the nominal std) and
#: the log features have a floor of 3e-3 of full scale (4x the demo bank's noise rms), so the
#: classifier does not lean on the noise floor and keeps its accuracy on front ends without that
#: noise (the noise model switched off, the SPICE-calibrated and the XyloAudio 3 banks;
#: docs/training.md).
DEMO_CONFIG = {
    "schedule.epochs": 12,
    "optimiser.batch_size": 32,
    "optimiser.lr_frontend": 0.005,
    "optimiser.lr_classifier": 0.005,
    "cost.lambda_i": 0.05,
    "cost.lambda_c": 0.05,
    "schedule.warmup_steps": 30,
    "output.threads": 1,
    "noise.mode": "always",
    "noise.full_scale_v": 0.1,
    "noise.train_scale_min": 0.0,
    "noise.train_scale_max": 1.5,
    "noise.train_p_zero": 0.25,
    "bank.options": {"features": {"log_eps": 0.003}},
}


#: What the demo adds when real recordings are there (docs/training.md, "Real voices"):
#: the training speakers of the labelled folder next to the synthetic set, the extra
#: `unknown` words at a small weight (``UNKNOWN_WEIGHT``), the real noise, validation on
#: the other speakers.
REAL_RECIPE = {
    "data.data_weight": 1.0,     # synthetic set : real training speakers = 1 : 2 of every epoch
    "data.real_weight": 2.0,
    "data.real_val_fraction": 0.5,  # half of every class's real clips are validation speakers
    "data.epoch_clips": 2000,
    "schedule.epochs": 36,       # 36 epochs x 2,000 clips: about 12 minutes end to end on 2 cores;
                                 # the real validation speakers still gain at epoch 36 (with 12 the best was the last too)
    "data.limit_val": 550,       # best epoch chosen on a stratified half of the validation
                                 # speakers' clips (the final report uses the other half)
    "augment.time_masks": 0,     # no SpecAugment-style masks: they cost about 5 points on the
    "augment.freq_masks": 0,     # real speakers (docs/training.md, "Real voices")
}
UNKNOWN_WEIGHT = 0.3

#: The teacher the demo's two runs distil when real recordings are there (docs/training.md,
#: "A teacher"): a DSCNN of width 128 (78k parameters, 3.4x the deployed 22.7k) on the frozen
#: conventional bank, trained first on the same data for ``TEACHER_EPOCH_SHARE`` of the
#: students' epochs with both threads.  The deployed classifiers stay the 22.7k DSCNN; their
#: loss is (1 - 0.5) CE + 0.5 T^2 KL(teacher_T || student_T) plus the hardware terms.
TEACHER_RECIPE = {"bank.mode": "conventional", "classifier.width": 128, "classifier.depth": 4,
                  "output.threads": 2}
TEACHER_EPOCH_SHARE = 0.5
DISTILL_RECIPE = {"distill.distill_weight": 0.5, "distill.distill_temperature": 4.0}


def demo_data(*, real=None, unknown=None, noise=None, synthetic_only: bool = False) -> dict:
    """The real folders the demo uses: given ones (which must exist) or the shared
    ones found by :func:`~learnafe.data.sources.find_shared`; ``synthetic_only``
    ignores the shared ones.  Returns ``{"real", "unknown", "noise"}`` (paths or None)."""
    out = {}
    for key, given in (("real", real), ("unknown", unknown), ("noise", noise)):
        if given is not None:
            if not Path(given).is_dir():
                raise FileNotFoundError(f"demo: --{key} {given} is not a folder")
            out[key] = str(given)
        else:
            found = None if synthetic_only else find_shared(SHARED_SETS[key])
            out[key] = str(found) if found is not None else None
    return out


def real_recipe(found: dict) -> dict:
    """The options the demo adds with the real folders ``found`` (:func:`demo_data`; ``real``
    given): :data:`REAL_RECIPE`, the labelled folder, the extra ``unknown`` words at
    :data:`UNKNOWN_WEIGHT` and the real noise, when found."""
    cfg = {**REAL_RECIPE, "data.real": found["real"]}
    if found["unknown"]:
        cfg["data.sources"] = [{"path": found["unknown"], "weight": UNKNOWN_WEIGHT, "use": "all",
                                "name": "unknown-words"}]
    if found["noise"]:
        cfg["data.noise"] = found["noise"]
    return cfg


def _train_child(cfg_dict: dict, run_dir: str) -> dict:
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {cfg_dict['bank']['mode']}: %(message)s",
                        datefmt="%H:%M:%S")
    from learnafe.training.trainer import train

    cfg_dict = {**cfg_dict, "output": {**cfg_dict["output"], "progress": False}}
    return {k: v for k, v in train(cfg_dict, run_dir).items() if k != "history"}


def _real_child(run_dir: str, real: str, seed: int) -> dict:
    """Evaluate a run on all real recordings (RUN/eval/real.json), then fine-tune on
    speaker half A and evaluate on half B (RUN/finetune-real/)."""
    import torch

    from learnafe.reporting import EVAL_DIR
    from learnafe.training.finetune import finetune_real
    from learnafe.training.run_evaluation import EvaluateOptions, evaluate_run

    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {Path(run_dir).name}: %(message)s",
                        datefmt="%H:%M:%S")
    torch.set_num_threads(1)
    target = Path(run_dir) / EVAL_DIR / "real.json"
    if target.is_file():
        res = read_json(target)
    else:
        res = evaluate_run(run_dir, real, EvaluateOptions(progress=False))
        write_json(target, res)
    ft = finetune_real(run_dir, real, epochs=5, seed=seed, progress=False)
    return {"all": res["accuracy"], "all_mean": res["mean_accuracy"],
            "half_b_before": ft["before"]["accuracy"], "half_b_before_mean": ft["before"]["mean_accuracy"],
            "half_b_after": ft["after"]["accuracy"], "half_b_after_mean": ft["after"]["mean_accuracy"],
            "protocol": ft["protocol"]}


def _epochs_done(run_dir: Path) -> int:
    try:
        return len(read_json(run_dir / METRICS).get("history", []))
    except (FileNotFoundError, ValueError):
        return 0


def _train_parallel(cfgs: dict, runs: dict, progress: bool) -> None:
    import multiprocessing

    from learnafe._progress import progress as progress_bar

    total = sum(c.schedule.epochs for c in cfgs.values())
    with ProcessPoolExecutor(max_workers=len(runs), mp_context=multiprocessing.get_context("spawn")) as ex:
        futs = [ex.submit(_train_child, cfgs[m].to_dict(), str(runs[m])) for m in runs]
        with progress_bar(total=total, desc="training (both runs)", unit="epoch", disable=not progress) as bar:
            while not all(f.done() for f in futs):
                time.sleep(2.0)
                done = min(total, sum(_epochs_done(r) for r in runs.values()))
                bar.update(done - bar.n)
        for f in futs:
            f.result()  # re-raise a child's error


@dataclass(frozen=True)
class DemoOptions:
    """The options of one demo run (:func:`run_demo`): output folder, synthetic set size (or
    a given ``data`` folder), the real folders (``real``, ``unknown``, ``noise``; None: the
    shared folders when they exist), ``synthetic_only``, the epoch budget (None: the demo's),
    seed, progress bars and training-option ``overrides`` of both runs."""

    out: Path = Path("runs/demo")
    size: str = "small"
    data: Path | None = None
    real: str | None = None
    unknown: str | None = None
    noise: str | None = None
    synthetic_only: bool = False
    epochs: int | None = None
    seed: int = 0
    progress: bool = True
    overrides: dict | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        if self.data is not None:
            object.__setattr__(self, "data", Path(self.data))


def _demo_data_folder(opts: DemoOptions, timings: dict) -> Path:
    """Step 1: the training folder, the given one or the synthetic set (synthesised, resumable)."""
    data, size, progress = opts.data, opts.size, opts.progress
    if data is None:
        data = Path(f"data/synth-{size}")
        t0 = time.perf_counter()
        from learnafe.data.synth import synthesize

        if (data / "synth_summary.json").is_file():
            log.info("demo 1/5: using the %s data set already in %s", size, data)
        else:
            log.info("demo 1/5: synthesising the %s data set into %s (resumes a partial one)", size, data)
            try:
                synthesize(data, size, seed=0, workers=2, progress=progress)
            except ValueError as exc:
                raise ValueError(f"{exc}. To use the existing folder as it is, run "
                                 f"`learnafe demo --data {data}`; to regenerate it, delete {data}") from exc
        timings["synth_s"] = time.perf_counter() - t0
    data = Path(data)
    if not data.is_dir():
        raise FileNotFoundError(f"demo: data folder {data} does not exist")
    return data


def _demo_configs(opts: DemoOptions, data: Path) -> tuple[str, dict, dict, dict]:
    """The data mode, the real folders found, and the two runs' folders and configurations."""
    found = demo_data(real=opts.real, unknown=opts.unknown, noise=opts.noise,
                      synthetic_only=opts.synthetic_only)
    cfg = dict(DEMO_CONFIG)
    cfg.update({"data.root": str(data), "output.seed": opts.seed, "output.progress": opts.progress})
    if found["real"] and not opts.synthetic_only:
        mode = "synthetic + real"
        cfg.update(real_recipe(found))
    else:
        mode = "synthetic only"
        if found["real"]:  # given explicitly with synthetic_only: validation speakers only
            cfg.update({"data.real": found["real"], "data.real_weight": 0.0})
            if found["noise"]:
                cfg["data.noise"] = found["noise"]
    if opts.epochs is not None:
        cfg["schedule.epochs"] = int(opts.epochs)
    cfg.update(opts.overrides or {})
    runs = {m: Path(opts.out) / m for m in ("conventional", "codesign")}
    teacher = None
    if mode == "synthetic + real":
        base = TrainConfig.from_dict(cfg)
        epochs = max(1, round(TEACHER_EPOCH_SHARE * base.schedule.epochs))
        teacher = (Path(opts.out) / "teacher",
                   TrainConfig.from_dict({**cfg, **TEACHER_RECIPE, "schedule.epochs": epochs}))
        cfg = {**cfg, **DISTILL_RECIPE, "distill.teacher": str(teacher[0])}
    cfgs = {m: TrainConfig.from_dict({**cfg, "bank.mode": m}) for m in runs}
    return mode, found, runs, cfgs, teacher


def _demo_teacher(teacher, timings: dict) -> None:
    """Step 2 with real recordings: the teacher both runs distil (resumes a partial one)."""
    if teacher is None:
        return
    from learnafe.training.trainer import train

    t0 = time.perf_counter()
    run_dir, cfg = teacher
    log.info("demo 2/5: training the teacher (DSCNN width %d on the conventional bank, %d epochs) "
             "into %s", cfg.classifier.width, cfg.schedule.epochs, run_dir)
    train(cfg, run_dir)
    timings["teacher_s"] = time.perf_counter() - t0


def _demo_train(runs: dict, cfgs: dict, progress: bool, timings: dict) -> None:
    """Steps 2-3: train both banks (in parallel with two or more cores)."""
    from learnafe.training.trainer import train

    t0 = time.perf_counter()
    if (os.cpu_count() or 1) >= 2:
        log.info("demo 2-3/5: training the conventional and the co-designed bank in parallel "
                 "into %s and %s (per-epoch progress in their log.txt)", runs["conventional"],
                 runs["codesign"])
        _train_parallel(cfgs, runs, progress)
    else:
        for k, m in enumerate(runs):
            log.info("demo %d/5: training the %s bank into %s", k + 2, m, runs[m])
            train(cfgs[m], runs[m])
    timings["train_s"] = time.perf_counter() - t0


def _demo_real(runs: dict, found: dict, seed: int, timings: dict) -> dict:
    """Step 4: both runs on the real folder (all of it, then fine-tuned on its training speakers)."""
    real_results = {}
    if found["real"]:
        t0 = time.perf_counter()
        log.info("demo 4/5: evaluating both runs on all the real recordings in %s, then fine-tuning "
                 "each classifier on the training speakers and testing on the validation speakers",
                 found["real"])
        jobs = [(str(runs[m]), found["real"], seed) for m in runs]
        if (os.cpu_count() or 1) >= 2:
            import multiprocessing

            with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as ex:
                results = list(ex.map(_real_child, *zip(*jobs)))
        else:
            results = [_real_child(*j) for j in jobs]
        real_results = dict(zip(runs, results))
        timings["real_s"] = time.perf_counter() - t0
    else:
        log.info("demo 4/5: no real recordings (pass --real DIR); skipped")
    return real_results


def _teacher_summary(cfg: TrainConfig) -> dict | None:
    """The distilled teacher: its folder, size and accuracy on the real validation speakers."""
    if not cfg.distill.teacher:
        return None
    m = read_json(Path(cfg.distill.teacher) / METRICS)
    d = {"run": cfg.distill.teacher, "classifier_params": m.get("n_params_classifier"),
         "distill_weight": cfg.distill.distill_weight, "distill_temperature": cfg.distill.distill_temperature}
    if m.get("real_validation"):
        d["real_validation_mean"] = m["real_validation"]["mean_accuracy"]
        d["real_validation_accuracy"] = m["real_validation"]["accuracy"]
    return d


def _demo_summary(opts: DemoOptions, data: Path, mode: str, found: dict, runs: dict, cfgs: dict,
                  trained_on: str, real_results: dict, timings: dict, t_start: float) -> dict:
    """Step 5: the report and ``OUT/summary.json``; returns the summary."""
    from learnafe.reporting import write_report

    out = Path(opts.out)
    log.info("demo 5/5: writing the report")
    report = write_report([runs["conventional"], runs["codesign"]], out / "report.md")
    mc, mk = (read_json(runs[m] / METRICS) for m in ("conventional", "codesign"))

    def side(m):
        d = {"test_accuracy": m["test"]["accuracy"], "mean": m["test"]["mean_accuracy"],
             "test_measured_on": f"{m['test']['n']} clips of the test split of {m['test']['data']}",
             "power_w": m["power_w"], "area_um2": m["area_um2"]}
        if m.get("real_validation"):
            rv = m["real_validation"]
            d["real_validation_accuracy"] = rv["accuracy"]
            d["real_validation_mean"] = rv["mean_accuracy"]
            d["real_validation_measured_on"] = (f"{rv['n']} clips of the validation speakers of "
                                                f"{rv.get('data', found['real'])} (no model trained on "
                                                "them, none chose the epoch)")
        return d

    if mode == "synthetic + real":
        # the models trained on the training speakers of the real folder: its "all" evaluation
        # is not an accuracy; the held-out numbers are the fine-tuning's half B
        for res in real_results.values():
            res.pop("all", None)
            res.pop("all_mean", None)
            res["all_note"] = ("not reported: all of the real folder includes the speakers the "
                               "models trained on")

    summary = {
        "report": str(report), "data": str(data), "data_mode": mode, "trained_on": trained_on,
        "real": found["real"], "unknown": found["unknown"] if mode != "synthetic only" else None,
        "noise": cfgs["codesign"].data.noise or None,
        "conventional": side(mc), "codesign": side(mk),
        "power_saving": 1 - mk["power_w"] / mc["power_w"],
        "area_saving": 1 - mk["area_um2"] / mc["area_um2"],
        "mean_accuracy_change_points": 100 * (mk["test"]["mean_accuracy"] - mc["test"]["mean_accuracy"]),
        "throughput_clips_per_s": {"conventional": mc["throughput_clips_per_s"],
                                   "codesign": mk["throughput_clips_per_s"]},
        "teacher": _teacher_summary(cfgs["codesign"]),
        "real_recordings": real_results, "timings_s": timings,
        "total_s": time.perf_counter() - t_start,
    }
    if mc.get("real_validation") and mk.get("real_validation"):
        summary["real_mean_accuracy_change_points"] = 100 * (
            mk["real_validation"]["mean_accuracy"] - mc["real_validation"]["mean_accuracy"])
        d_acc, judged = summary["real_mean_accuracy_change_points"], "real validation speakers"
    else:
        d_acc, judged = summary["mean_accuracy_change_points"], f"test split of {data}"
    summary["savings_verdict"] = {
        "judged_on": judged, "mean_accuracy_change_points": d_acc,
        "met": bool(summary["power_saving"] >= 0.08 and summary["area_saving"] >= 0.10 and d_acc >= -1.0),
        "goal": ">= 8 % less power and >= 10 % less capacitor area at <= 1 point mean accuracy loss"}
    write_json(out / "summary.json", summary)
    real_msg = ""
    if "real_mean_accuracy_change_points" in summary:
        real_msg = (f"; real validation speakers: conventional {100 * mc['real_validation']['mean_accuracy']:.1f} %, "
                    f"co-design {100 * mk['real_validation']['mean_accuracy']:.1f} % mean accuracy")
    log.info("demo (%s) done in %.0f s: power %+.1f %%, area %+.1f %%, mean test accuracy %+.2f points%s; "
             "report %s", mode, summary["total_s"], -100 * summary["power_saving"],
             -100 * summary["area_saving"], summary["mean_accuracy_change_points"], real_msg, report)
    return summary


def run_demo(options: DemoOptions | None = None, **changes) -> dict:
    """Run the demo (see the module doc) with ``options`` (None: the defaults), any field of
    :class:`DemoOptions` given by name replacing it (``run_demo(out="runs/demo2", epochs=3)``);
    returns the summary dict (also ``OUT/summary.json``).

    ``real``/``unknown``/``noise``: a labelled real folder (split by speaker), a folder
    of extra ``unknown`` words, a folder of background-noise recordings; default: the
    shared folders when they exist (``synthetic_only=True``: train on the synthetic set
    alone; a ``real`` folder given explicitly then only validates).
    """
    if options is not None and not isinstance(options, DemoOptions):
        raise TypeError(f"run_demo: options must be a DemoOptions, got {options!r}; give the output "
                        "folder as DemoOptions(out=...) or out=...")
    known = {f.name for f in fields(DemoOptions)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise TypeError(f"run_demo got unexpected option(s) {unknown}; DemoOptions has {sorted(known)}")
    opts = replace(options or DemoOptions(), **changes)
    t_start = time.perf_counter()
    opts.out.mkdir(parents=True, exist_ok=True)
    timings: dict = {}
    data = _demo_data_folder(opts, timings)
    mode, found, runs, cfgs, teacher = _demo_configs(opts, data)
    from learnafe.training.data import describe_training_data

    trained_on = describe_training_data(cfgs["codesign"])
    log.info("demo data: %s -- training on %s", mode, trained_on)
    _demo_teacher(teacher, timings)
    _demo_train(runs, cfgs, opts.progress, timings)
    real_results = _demo_real(runs, found, opts.seed, timings)
    return _demo_summary(opts, data, mode, found, runs, cfgs, trained_on, real_results, timings, t_start)
