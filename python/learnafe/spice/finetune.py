"""Classifier fine-tuning on the SPICE-calibrated bank (stage 2 of the paper).

``learnafe finetune RUN --spice``: the run's classifier is fine-tuned on the
features of :func:`~learnafe.spice.calibrated.calibrated_frontend` (the bank
as simulated in ngspice at ``learnafe verify``), front end frozen, by
:func:`learnafe.training.finetune.finetune` -- the one training loop -- into
``RUN/finetune-spice/`` (resumable).
"""

from __future__ import annotations

from pathlib import Path

from learnafe.spice.calibrated import calibrated_frontend
from learnafe.training.finetune import finetune

__all__ = ["finetune_spice"]


def finetune_spice(run_dir, *, epochs: int = 5, out_dir=None, lr: float = 1e-3, seed: int = 0,
                   progress: bool = True) -> dict:
    """Fine-tune on the SPICE-calibrated bank of a verified run (``learnafe finetune RUN --spice``)."""
    try:
        frontend = calibrated_frontend(run_dir)
    except FileNotFoundError as exc:
        raise RuntimeError(f"{run_dir} has not been verified in SPICE yet ({exc}); run "
                           f"`learnafe verify {run_dir}` first") from exc
    return finetune(run_dir, frontend, epochs=epochs, lr=lr, seed=seed, progress=progress,
                    out_dir=out_dir or Path(run_dir) / "finetune-spice", label="finetune-spice")
