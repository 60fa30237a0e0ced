"""SPICE verification of a trained run, as named steps.

:func:`verify_run` runs, under ``RUN/spice`` (or ``out_dir``), one step after
another, each reusing its file when its inputs are unchanged:

1. :func:`_characterize_step`: gm/Id table of the devices (``gmid.json``);
2. :func:`_ac_step`: AC verification against the bank's own model (``ac.json``,
   :func:`learnafe.spice.verify.ac_verify`), with the errors against the
   characterised table and with the devices' output conductance;
3. :func:`_noise_step`: ``.noise`` of every channel (``noise.json``);
4. :func:`_calibrated_step`: the SPICE-calibrated front end (``calibrated_bank.json``);
5. :func:`_accuracy_step`: held-out accuracy of the ideal and the calibrated bank
   (``heldout_eval.json``) and fine-tuning on the calibrated features;
6. :func:`_transient_step`: the transient check on audio clips (``transient.json``);

then the deployment gate and ``verify.json`` (:func:`_verify_result`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from learnafe import gate as gate_mod
from learnafe._jsonio import write_json
from learnafe.data import CLASSES, ClipOptions, KeywordDataset, LoadOptions
from learnafe.frontends.spec import BankSpec
from learnafe.spice.calibrated import calibrated_frontend
from learnafe.spice.characterize import characterize
from learnafe.spice.netlist import load_spec
from learnafe.spice.noise import NoiseOptions, noise_verify
from learnafe.spice.runner import DEFAULT_TIMEOUT_S
from learnafe.spice.transient import TransientOptions, transient_check
from learnafe.spice.verify import (
    AcOptions,
    ac_verify,
    errors_against,
    errors_with_output_conductance,
    spec_errors,
)
from learnafe.training import load_run
from learnafe.training.evaluate import compare_frontends, heldout_sets
from learnafe.training.finetune import finetune as run_finetune

log = logging.getLogger(__name__)


def _same_bank(ac: Mapping[str, Any], spec: BankSpec, corner: str, topology: str,
               caps: str) -> bool:
    """Whether the AC results ``ac`` are of ``spec``'s channels with this corner, topology and
    capacitors, against the bank's own model."""
    if (ac.get("corner"), ac.get("topology"), ac.get("caps")) != (corner, topology, caps):
        return False
    if ac.get("reference") != "spec":
        return False  # an ideal model other than the bank's own (older results)
    rows, chans = ac.get("channels", []), spec.channels
    return len(rows) == len(chans) and all(
        math.isclose(r[k], getattr(c, k), rel_tol=1e-12) for r, c in zip(rows, chans)
        for k in ("I1", "I2", "C1", "C2"))


def pick_clips(data: str | Path, split: str, sample_rate: int, n: int, seed: int = 0):
    """``n`` keyword clips (no silence/unknown) of a data set split, chosen by ``seed``."""
    ds = KeywordDataset(data, split, ClipOptions(sample_rate=sample_rate), LoadOptions(progress=False),
                        unknown_fraction=0.0, silence_fraction=0.0)
    keywords = [i for i, lab in enumerate(ds.labels) if CLASSES[int(lab)] not in ("unknown", "silence")]
    if not keywords:
        raise ValueError(f"no keyword clips in split {split!r} of {data}")
    rng = np.random.default_rng(seed)
    idx = rng.choice(keywords, size=min(n, len(keywords)), replace=False)
    clips, names = [], []
    for i in idx:
        x, lab = ds[int(i)]
        clips.append(np.asarray(x, dtype=np.float64))
        names.append(f"{CLASSES[int(lab)]}:{Path(str(ds.files[int(i)])).name}")
    return clips, names


@dataclass(frozen=True)
class VerifyOptions:
    """How :func:`verify_run` verifies a trained run."""

    #: process corner of the SKY130 models
    corner: str = "tt"
    #: "differential" (the balanced pair) or "half" (one half circuit)
    topology: str = "differential"
    #: "ideal" capacitors or the process's MIM capacitors
    caps: str = "ideal"
    #: simulations run in parallel
    workers: int = 2
    #: seconds one simulation may take (the transient check allows at least an hour)
    timeout: float = DEFAULT_TIMEOUT_S
    #: measure the accuracy of the calibrated bank (and fine-tune when ``epochs`` > 0)
    finetune: bool = True
    #: epochs of classifier fine-tuning on the calibrated features (0: none)
    epochs: int = 5
    #: run the transient check on audio clips
    transient: bool = True
    #: clips of the transient check
    clips: int = 3
    #: seconds of each clip simulated
    clip_seconds: float = 0.3
    #: simulator time step of the transient check (s)
    tran_step: float = 2e-6
    #: input level of the transient check, volts differential peak
    tran_amplitude: float = 1e-3
    #: data set the clips come from (its test split); None: the run's own data
    clip_data: str | Path | None = None
    #: seed of the clip choice and the fine-tuning
    seed: int = 0
    #: run the ``.noise`` analysis and give the calibrated bank the circuit's noise
    noise: bool = True
    #: :class:`learnafe.gate.GateThresholds`; None: 2 % f0, 5 % Q, 1 point of accuracy
    gate: Any = None
    #: redo finished steps even when their inputs are unchanged
    force: bool = False
    #: show progress bars
    progress: bool = True


def _reusable(path: Path, force: bool) -> dict | None:
    """The content of a finished step's JSON file, None when absent or ``force``."""
    return json.loads(path.read_text()) if path.is_file() and not force else None


def _characterize_step(out: Path, options: VerifyOptions) -> dict:
    """[1/6] the gm/Id table of the devices at the corner (``gmid.json``), reused when present."""
    gmid_path = out / "gmid.json"
    gmid = _reusable(gmid_path, options.force)
    if gmid is None or gmid.get("corner") != options.corner:
        log.info("[1/6] characterising the devices (%s)", options.corner)
        gmid = characterize(gmid_path, work_dir=out / "gmid", corner=options.corner,
                            workers=options.workers, timeout=options.timeout)
    return gmid


def _ac_step(spec: BankSpec, out: Path, options: VerifyOptions) -> tuple[dict, bool]:
    """[2/6] AC verification against the bank's own model (``ac.json``), reused when it is of
    the same bank; returns the results and whether they are fresh."""
    ac_path = out / "ac.json"
    ac = _reusable(ac_path, options.force)
    fresh = ac is None or not _same_bank(ac, spec, options.corner, options.topology, options.caps)
    if fresh:
        log.info("[2/6] AC verification of %d channels against the bank's own model",
                 spec.n_channels)
        ac = ac_verify(spec, out, AcOptions(corner=options.corner, topology=options.topology,
                                            caps=options.caps, workers=options.workers,
                                            timeout=options.timeout, progress=options.progress))
    else:
        log.info("[2/6] AC results in %s are up to date", ac_path)
    return ac, fresh


def _noise_step(spec: BankSpec, out: Path, fresh_ac: bool, options: VerifyOptions) -> dict:
    """[3/6] ``.noise`` of every channel (``noise.json``), reused when the AC results are and
    it is of the same corner, topology and capacitors."""
    noise_path = out / "noise.json"
    noise_res = _reusable(noise_path, options.force)
    setup = (options.corner, options.topology, options.caps)
    if (noise_res is None or fresh_ac
            or (noise_res.get("corner"), noise_res.get("topology"), noise_res.get("caps")) != setup):
        log.info("[3/6] noise of %d channels (.noise)", spec.n_channels)
        noise_res = noise_verify(spec, out, NoiseOptions(
            corner=options.corner, topology=options.topology, caps=options.caps,
            workers=options.workers, timeout=options.timeout, progress=options.progress))
    else:
        log.info("[3/6] noise results in %s are up to date", noise_path)
    return noise_res


def _calibrated_step(ac: dict, noise_res: dict | None, out: Path):
    """[4/6] the calibrated front end (``calibrated_bank.json``); records its input-referred
    noise in ``noise.json``."""
    log.info("[4/6] calibrated front end from the fitted biquads%s",
             " with the circuit's noise" if noise_res else "")
    frontend = calibrated_frontend(ac, noise=noise_res)
    frontend.save(out / "calibrated_bank.json")
    if noise_res is not None:
        std = frontend.input_noise_std()
        for r, v in zip(noise_res["channels"], std.tolist()):
            r["input_noise_std"] = v
        noise_res["full_scale_v"] = float((noise_res.get("noise_config") or {}).get("full_scale_v", 0.1))
        noise_res["frontend_noise_mode"] = frontend.noise_mode
        write_json(out / "noise.json", noise_res, indent=1, newline=False)
    return frontend


def _accuracy_step(run_dir: Path, frontend, out: Path, options: VerifyOptions) -> dict:
    """[5/6] held-out accuracy of the ideal and the calibrated bank with the run's classifier
    (``heldout_eval.json``), then fine-tuning on the calibrated features."""
    run = load_run(run_dir)
    cfg = run.config
    sets = heldout_sets(cfg, progress=options.progress)
    log.info("[5/6] accuracy of the ideal and the SPICE-calibrated bank before fine-tuning, same "
             "classifier, on %s", " + ".join(f"{k} ({len(d)} clips)" for k, (d, _) in sets.items()))
    held = compare_frontends(run.classifier, {"ideal": run.frontend, "spice_before": frontend}, sets,
                             snrs=cfg.evaluation.eval_snrs, progress=options.progress)
    write_json(out / "heldout_eval.json", held, indent=1, newline=False)
    epochs = options.epochs
    after = None
    if epochs > 0:
        log.info("[5/6] fine-tuning the classifier on the calibrated features (%d epochs)", epochs)
        after = run_finetune(run_dir, frontend, epochs=epochs, out_dir=out / "finetune",
                             seed=options.seed, progress=options.progress,
                             label="finetune-spice")["after"]
    test = held["sets"]["test"]
    return {
        "ideal": test["ideal"]["accuracy"], "spice_before": test["spice_before"]["accuracy"],
        "spice_after": None if after is None else after["accuracy"],
        "mean": {"ideal": test["ideal"]["mean_accuracy"], "spice_before": test["spice_before"]["mean_accuracy"],
                 "spice_after": None if after is None else after["mean_accuracy"]},
        "epochs": epochs, "finetune_dir": str(out / "finetune") if epochs > 0 else None,
        "held_out": held}


def _transient_step(run_dir: Path, spec: BankSpec, ac: dict, out: Path,
                    options: VerifyOptions) -> dict:
    """[6/6] the transient check on clips of the data (``transient.json``), reused when its
    step, level, clip count and data are unchanged."""
    tran = _reusable(out / "transient.json", options.force)
    cfg = load_run(run_dir).config
    data = str(options.clip_data or cfg.data.root)
    if (tran is not None and tran.get("t_step_s") == options.tran_step
            and tran.get("amplitude_v") == options.tran_amplitude
            and len(tran.get("clips", [])) == options.clips and tran.get("clip_data") == data):
        return tran
    audio, names = pick_clips(data, "test" if options.clip_data else cfg.data.test_split,
                              int(spec.sample_rate or cfg.data.sample_rate), options.clips, options.seed)
    log.info("[6/6] transient check on %d clips of %s", len(audio), data)
    tran = transient_check(spec, ac, audio, out, TransientOptions(
        t_step=options.tran_step, amplitude_v=options.tran_amplitude,
        duration_s=options.clip_seconds, corner=options.corner, topology=options.topology,
        caps=options.caps, workers=options.workers, timeout=max(options.timeout, 3600.0),
        clip_names=names, progress=options.progress))
    tran["clip_data"] = data
    write_json(out / "transient.json", tran, indent=1, newline=False)
    plot_transient(out / "tran" / "clip0_outputs.npz", out / "transient_features.png",
                   spec.sample_rate or 20000.0)
    return tran


def _timed(timings: dict[str, float], name: str, step, *args):
    """``step(*args)``, its duration recorded as ``timings[name]``."""
    t0 = time.perf_counter()
    result = step(*args)
    timings[name] = time.perf_counter() - t0
    return result


def _verify_result(run_dir: Path, out: Path, steps: dict[str, Any], timings: dict[str, float],
                   options: VerifyOptions) -> dict[str, Any]:
    """The ``verify.json`` content: the deployment gate and every step's summary."""
    ac, noise_res, accuracy, tran = steps["ac"], steps["noise"], steps["accuracy"], steps["transient"]
    f0_err, q_err = spec_errors(ac)
    gate_res = gate_mod.check_held_out(
        f0_error_pct=f0_err, q_error_pct=q_err, held_out=accuracy["held_out"] if accuracy else None,
        reference="ideal", deployed="spice_before", thresholds=options.gate,
        what="SPICE-calibrated bank")
    return {"format": "learnafe-spice-verify/1", "run": str(run_dir), "out_dir": str(out),
            "corner": options.corner, "topology": options.topology, "caps": options.caps,
            "workers": options.workers, "gate": gate_res,
            "spec_errors": {"f0_error_pct": f0_err, "q_error_pct": q_err},
            "ac_summary": ac["summary"], "vs_characterised": steps["characterised"],
            "vs_model_with_output_conductance": steps["with_gds"],
            "noise_summary": None if noise_res is None else noise_res["summary"],
            "accuracy": accuracy,
            "transient_summary": None if tran is None else tran["summary"],
            "seconds": timings,
            "files": {"gmid": "gmid.json", "ac": "ac.json", "overlay": "ac_overlay.png",
                      "noise": None if noise_res is None else "noise.json",
                      "calibrated_bank": "calibrated_bank.json",
                      "transient": None if tran is None else "transient.json"}}


def _ac_with_errors(spec: BankSpec, out: Path, gmid: dict, options: VerifyOptions):
    """The AC step and the errors against the characterised table and with output conductance."""
    ac, fresh = _ac_step(spec, out, options)
    with_gds = errors_with_output_conductance(ac, spec, gmid)
    if with_gds is not None:
        log.info("against the bank's own model with the devices' output conductance: max |f0 error| "
                 "%.2f %%, max |Q error| %.2f %%", with_gds["max_abs_f0_error_pct"],
                 with_gds["max_abs_q_error_pct"])
    return ac, fresh, errors_against(ac, spec, gmid), with_gds


def verify_run(run_dir: str | Path, out_dir: str | Path | None = None,
               options: VerifyOptions = VerifyOptions()) -> dict[str, Any]:
    """SPICE verification of a trained run: characterisation, AC, noise, calibrated bank,
    accuracy and fine-tuning, the transient check and the deployment gate, written under
    ``out_dir`` (default ``RUN/spice``).  Finished steps are reused when their inputs are
    unchanged (``options.force`` redoes them), so an interrupted verification resumes.

    The ideal reference is the bank's own model (its ``gm_model``); the errors against
    the freshly characterised gm/Id table are reported beside it.  The gate
    (``options.gate``) is judged before any fine-tuning.  ``options``:
    :class:`VerifyOptions`.
    """
    run_dir = Path(run_dir)
    bank_path = run_dir / "bank.json"
    if not bank_path.is_file():
        raise FileNotFoundError(f"{run_dir} has no bank.json; give a run directory written by "
                                "`learnafe train`")
    spec = load_spec(bank_path)
    out = Path(out_dir) if out_dir is not None else run_dir / "spice"
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    gmid = _timed(timings, "characterize", _characterize_step, out, options)
    ac, fresh_ac, characterised, with_gds = _timed(timings, "ac", _ac_with_errors, spec, out, gmid,
                                                   options)
    noise_res = (_timed(timings, "noise", _noise_step, spec, out, fresh_ac, options)
                 if options.noise else None)
    frontend = _calibrated_step(ac, noise_res, out)
    accuracy = (_timed(timings, "finetune", _accuracy_step, run_dir, frontend, out, options)
                if options.finetune else None)
    tran = (_timed(timings, "transient", _transient_step, run_dir, spec, ac, out, options)
            if options.transient else None)
    timings["total"] = time.perf_counter() - t_all
    steps = {"ac": ac, "noise": noise_res, "accuracy": accuracy, "transient": tran,
             "characterised": characterised, "with_gds": with_gds}
    result = _verify_result(run_dir, out, steps, timings, options)
    write_json(out / "verify.json", result, indent=1, newline=False)
    log.info("verification of %s written to %s (%.0f s)", run_dir, out, timings["total"])
    return result


def plot_transient(npz_path: str | Path, png_path: str | Path, sample_rate: float) -> Path:
    """Features of one clip: SPICE transient (top) and calibrated model (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = np.load(npz_path)
    fs_, fm = d["features_spice"], d["features_model"]
    lo, hi = float(min(fs_.min(), fm.min())), float(max(fs_.max(), fm.max()))
    fig, axes = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    for ax, f, name in zip(axes, (fs_, fm), ("SPICE transient", "calibrated model")):
        im = ax.imshow(f, aspect="auto", origin="lower", vmin=lo, vmax=hi, cmap="magma")
        ax.set_ylabel("channel")
        ax.set_title(f"features: {name}")
    axes[-1].set_xlabel("frame")
    fig.colorbar(im, ax=axes, shrink=0.8)
    png_path = Path(png_path)
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path
