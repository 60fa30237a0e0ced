"""The teacher of a distilling run: a trained run's model, frozen, checked against the student."""

from __future__ import annotations

import logging
from pathlib import Path

from learnafe.training.config import TrainConfig
from learnafe.training.model import CoDesignModel, feature_shape
from learnafe.training.rundir import CONFIG

__all__ = ["load_teacher"]

log = logging.getLogger("learnafe.training")


def load_teacher(cfg: TrainConfig, n_classes: int, shape: tuple[int, int]) -> CoDesignModel:
    """The frozen teacher model (eval mode, best weights) of ``cfg.distill.teacher``; refused with a
    ValueError unless it was trained on the same classes, sample rate, clip length and
    feature shape ``(C, F)`` as the student."""
    from learnafe.training.rundir import load_run

    path = Path(cfg.distill.teacher)
    if not (path / CONFIG).is_file():
        raise ValueError(f"training option distill.teacher={cfg.distill.teacher!r}: no run directory there (no "
                         f"{CONFIG}); train the teacher first with `learnafe train --out DIR`")
    try:
        run = load_run(path)
    except FileNotFoundError as exc:
        raise ValueError(f"training option distill.teacher={cfg.distill.teacher!r}: {exc}") from None
    except RuntimeError as exc:  # weights that do not fit the classifier its config describes
        raise ValueError(f"training option distill.teacher={cfg.distill.teacher!r}: its weights do not fit its "
                         f"configuration (another number of classes or layers?): "
                         f"{str(exc).splitlines()[0]}") from None
    tcfg = run.config
    for name in ("sample_rate", "clip_seconds"):
        theirs, ours = getattr(tcfg.data, name), getattr(cfg.data, name)
        if theirs != ours:
            raise ValueError(f"training option distill.teacher={cfg.distill.teacher!r}: the teacher was "
                             f"trained with data.{name}={theirs!r}, this run uses {ours!r}; "
                             "train a teacher with the same setting")
    t_classes = int(getattr(run.classifier, "n_classes", -1))
    if t_classes != n_classes:
        raise ValueError(f"training option distill.teacher={cfg.distill.teacher!r}: the teacher has {t_classes} "
                         f"classes, this run {n_classes}; train a teacher on the same classes")
    t_shape = feature_shape(run.frontend, int(round(cfg.data.sample_rate * cfg.data.clip_seconds)))
    if t_shape != tuple(shape):
        raise ValueError(f"training option distill.teacher={cfg.distill.teacher!r}: the teacher's front end makes "
                         f"features of shape {t_shape} (channels, frames), this run's {tuple(shape)}; "
                         "train a teacher with the same n_channels and feature settings")
    log.info("teacher %s: %s (%s bank), distillation weight %g, temperature %g", path,
             run.classifier.summary() if hasattr(run.classifier, "summary") else "classifier",
             tcfg.bank.mode, cfg.distill.distill_weight, cfg.distill.distill_temperature)
    model = run.model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
