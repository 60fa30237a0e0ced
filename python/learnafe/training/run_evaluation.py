"""The ``learnafe evaluate`` job: a run directory's best model scored on a data set, with fab variation.

:func:`evaluate_run` is three named steps: the model to score
(:func:`model_to_score`: the run's bank as trained, or with its kT/C noise
switched off), the clips to score it on (:func:`evaluation_set`), and the
optional fab-variation study (:func:`fab_variation`: the yield over sampled
chips and process corners of :mod:`learnafe.training.chips`, or the uniform
Monte Carlo of :func:`learnafe.training.evaluate.mismatch_monte_carlo`).  The
scoring protocol is :mod:`learnafe.training.evaluate`'s.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from learnafe.data import detect_layout
from learnafe.training.chips import YieldOptions, yield_analysis
from learnafe.training.data import eval_noise_folder, open_split, real_report_set
from learnafe.training.evaluate import SIGMA_C, SIGMA_I, evaluate_dataset, mismatch_monte_carlo
from learnafe.training.model import CoDesignModel, frontend_from_dict
from learnafe.training.rundir import load_run

__all__ = ["EvaluateOptions", "FabOptions", "evaluate_run", "model_to_score", "evaluation_set", "fab_variation"]

log = logging.getLogger(__name__)

#: The settings of the kT/C noise model that :class:`EvaluateOptions` accepts.
CIRCUIT_NOISE = ("as-trained", "off")


@dataclass(frozen=True)
class EvaluateOptions:
    """How :func:`evaluate_run` scores a model."""

    #: SNRs in dB (None: clean) to score at; None: the run's ``eval_snrs``.
    snrs: Sequence[float | None] | None = None
    #: Noise folder to mix in; None: the data set's own ``_background_noise_``, else the run's training data's.
    noise: Any = None
    #: Split of a folder in the training layout ("test" or "validation").
    split: str = "test"
    #: Clips per evaluation batch.
    batch_size: int = 128
    #: "as-trained" (the bank's own noise setting) or "off" (its kT/C noise model switched off).
    circuit_noise: str = "as-trained"
    #: Progress bars while reading and scoring.
    progress: bool = True

    def __post_init__(self) -> None:
        if self.circuit_noise not in CIRCUIT_NOISE:
            raise ValueError(f"circuit_noise must be one of {CIRCUIT_NOISE}, got {self.circuit_noise!r}")
        if isinstance(self.batch_size, bool) or int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")


@dataclass(frozen=True)
class FabOptions:
    """The fab-variation study of :func:`evaluate_run` (:func:`fab_variation`)."""

    #: Chips to sample (0: corners only).
    chips: int = 0
    #: "sky130" (per-channel figures of the SKY130 model files), "uniform" (``sigma_i``, ``sigma_c``), or None:
    #: the uniform Monte Carlo of :func:`~learnafe.training.evaluate.mismatch_monte_carlo` without corners.
    source: str | None = None
    #: Relative standard deviation of the bias currents (uniform source).
    sigma_i: float = SIGMA_I
    #: Relative standard deviation of the capacitors (uniform source).
    sigma_c: float = SIGMA_C
    #: Process corners to score (e.g. ("tt", "ss", "ff")).
    corners: Sequence[str] = ()
    #: SNRs of the yield study; None: those of the evaluation.
    snrs: Sequence[float | None] | None = None
    #: Folder of the yield journal and results; None: no files.
    out_dir: str | os.PathLike | None = None
    #: Seed of chip k (``seed + k``); None: the run's ``eval_seed``.
    seed: int | None = None
    #: Sampled chips evaluated in one stacked front-end call (:class:`~learnafe.training.chips.YieldOptions`).
    chips_per_call: int = 8


def model_to_score(run, circuit_noise: str) -> torch.nn.Module:
    """The run's best model, or (``circuit_noise="off"``) the same bank with its kT/C noise model off."""
    if circuit_noise == "as-trained":
        return run.model

    spec = dict(run.model.frontend.to_dict())
    spec["noise"] = dict(spec["noise"], mode="off")
    return CoDesignModel(frontend_from_dict(spec), run.classifier).eval()


def evaluation_set(run, data: str | os.PathLike | None, options: EvaluateOptions) -> tuple[Any, Any, str, Any]:
    """``(dataset, data label, split label, noise)`` of the clips :func:`evaluate_run` scores.

    ``data`` None: the run's own real validation speakers less the clips that chose its best
    epoch (:func:`learnafe.training.data.real_report_set`); a folder in the 12-class test
    layout without split lists is read whole.
    """
    cfg = run.config
    noise = options.noise
    if data is None:  # the run's own real validation speakers, as its metrics report them
        if not cfg.data.real:
            raise ValueError(f"{run.path} was not trained with real validation speakers (--real): "
                             "give a data folder (--data DIR)")
        ds, real_noise = real_report_set(cfg, progress=options.progress)
        return ds, cfg.data.real, "validation speakers (clips that did not choose the epoch)", noise or real_noise
    data = Path(data)
    if not data.is_dir():
        raise FileNotFoundError(f"--data {data} is not a folder")
    noise = noise or cfg.data.noise or eval_noise_folder(data, cfg.data.root)
    split = options.split
    if detect_layout(data) == "test12" and not ((data / "validation_list.txt").is_file()
                                                  or (data / "testing_list.txt").is_file()):
        split = "test"  # the whole folder is one evaluation set
    return open_split(data, split, cfg, progress=options.progress), data, split, noise


def fab_variation(run, model, ds, snrs, noise, options: EvaluateOptions, fab: FabOptions) -> dict:
    """``{"yield": ...}`` (with a mismatch source or corners) or ``{"mismatch": ...}`` (uniform Monte Carlo)."""
    seed = run.config.evaluation.eval_seed if fab.seed is None else int(fab.seed)
    if fab.source is not None or fab.corners:
        settings = YieldOptions(seed=seed, snrs=snrs if fab.snrs is None else list(fab.snrs), noise=noise,
                                source=fab.source or "sky130", sigma_i=fab.sigma_i, sigma_c=fab.sigma_c,
                                corners=fab.corners, batch_size=options.batch_size, chips_per_call=fab.chips_per_call,
                                tag=str(run.path))
        return {"yield": yield_analysis(model, ds, int(fab.chips), settings, out_dir=fab.out_dir,
                                        progress=options.progress)}
    if fab.chips:
        return {"mismatch": mismatch_monte_carlo(model, ds, fab.chips, seed=run.config.evaluation.eval_seed, snrs=snrs,
                                                 noise=noise, sigma_i=fab.sigma_i, sigma_c=fab.sigma_c,
                                                 batch_size=options.batch_size, progress=options.progress)}
    return {}


def evaluate_run(run_dir: str | os.PathLike, data: str | os.PathLike | None = None,
                 options: EvaluateOptions | None = None, fab: FabOptions | None = None) -> dict:
    """Evaluate a run directory's best model on the data set folder ``data`` (see the module doc).

    The result is :func:`~learnafe.training.evaluate.evaluate_dataset`'s, with ``run``,
    ``circuit_noise`` and, with ``fab``, ``yield`` or ``mismatch``.
    """
    options = options or EvaluateOptions()
    run = load_run(run_dir)
    model = model_to_score(run, options.circuit_noise)
    snrs = run.config.evaluation.eval_snrs if options.snrs is None else list(options.snrs)
    ds, data_label, split, noise = evaluation_set(run, data, options)
    log.info("evaluating %s on %s (%s split, %d clips, noise %s)", run_dir, data_label, split, len(ds),
             noise or "none")
    out = evaluate_dataset(model, ds, snrs=snrs, noise=noise, batch_size=options.batch_size,
                           progress=options.progress)
    out["run"] = str(run_dir)
    out["circuit_noise"] = options.circuit_noise
    if fab is not None:
        out.update(fab_variation(run, model, ds, snrs, noise, options, fab))
    return out

