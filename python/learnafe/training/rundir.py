"""The run directory (see docs/ARCHITECTURE.md) and checkpoints.

    RUN/config.json          the full TrainConfig
    RUN/bank.json            circuit spec of the (best) front end
    RUN/metrics.json         history, validation/test accuracy per SNR, power, area
    RUN/checkpoints/last.pt  everything needed to resume exactly
    RUN/checkpoints/best.pt  model weights of the best validation epoch
    RUN/log.txt              the training log

Files are written atomically (temporary file + rename): a run killed at any moment
leaves a complete file, never half of one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from learnafe._jsonio import atomic_write
from learnafe._jsonio import read_json as _read_json
from learnafe._jsonio import write_json as _write_json
from learnafe.training.config import TrainConfig
from learnafe.training.model import CoDesignModel, build_classifier, build_frontend, feature_shape

__all__ = ["Run", "load_run", "write_json", "read_json", "atomic_save", "rng_state",
           "set_rng_state", "CONFIG", "BANK", "METRICS", "LAST", "BEST", "LOG"]

CONFIG, BANK, METRICS, LOG = "config.json", "bank.json", "metrics.json", "log.txt"
LAST, BEST = "checkpoints/last.pt", "checkpoints/best.pt"


def write_json(path, obj) -> None:
    """Write ``obj`` as indented JSON (no NaN), atomically (:func:`learnafe._jsonio.write_json`)."""
    _write_json(path, obj, indent=2, allow_nan=False)


def read_json(path) -> dict:
    return _read_json(path, hint="the run directory is damaged")


def atomic_save(obj, path) -> None:
    """``torch.save`` atomically."""
    atomic_write(path, lambda f: torch.save(obj, f))


def rng_state() -> dict:
    """The global RNG states of python, numpy and torch."""
    return {"python": random.getstate(), "numpy": np.random.get_state(),
            "torch": torch.get_rng_state()}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


@dataclass
class Run:
    """A trained run loaded from disk (:func:`load_run`)."""

    path: Path
    config: TrainConfig
    model: torch.nn.Module          # CoDesignModel, eval mode, best weights
    bank: dict                      # the bank.json spec
    metrics: dict                   # metrics.json ({} while training)
    initial_bank: dict              # spec of the conventional design the run started from

    @property
    def frontend(self) -> torch.nn.Module:
        return self.model.frontend

    @property
    def classifier(self) -> torch.nn.Module:
        return self.model.classifier


def load_run(run_dir, *, checkpoint: str = "best") -> Run:
    """Rebuild the front end and classifier of a run directory.

    ``checkpoint``: ``"best"`` (best validation epoch; falls back to last) or
    ``"last"``.  The model is returned in eval mode on the CPU.
    """
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no {CONFIG}); "
                                "create one with `learnafe train --out DIR`")
    cfg = TrainConfig.from_run_file(run_dir / CONFIG)
    if checkpoint not in ("best", "last"):
        raise ValueError(f"checkpoint must be 'best' or 'last', got {checkpoint!r}")
    names = [BEST, LAST] if checkpoint == "best" else [LAST]
    ckpt_path = next((run_dir / n for n in names if (run_dir / n).is_file()), None)
    if ckpt_path is None:
        raise FileNotFoundError(f"{run_dir} has no checkpoint ({' or '.join(names)}); "
                                "the run has not finished an epoch yet")
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    if "model" not in ckpt:  # the resume state of a fine-tuning that has not finished
        raise FileNotFoundError(f"{ckpt_path} holds no model weights (an unfinished fine-tuning's "
                                "state); finish it by running the same command again")
    frontend = build_frontend(cfg)
    initial = frontend.to_dict()
    n_ch, _ = feature_shape(frontend, int(round(cfg.data.sample_rate * cfg.data.clip_seconds)))
    model = CoDesignModel(frontend, build_classifier(cfg, n_ch))
    model.load_state_dict(ckpt["model"])
    model.eval()
    bank = read_json(run_dir / BANK) if (run_dir / BANK).is_file() else frontend.to_dict()
    metrics = read_json(run_dir / METRICS) if (run_dir / METRICS).is_file() else {}
    return Run(path=run_dir, config=cfg, model=model, bank=bank, metrics=metrics,
               initial_bank=initial)
