"""Reading of earlier file layouts: the one place that knows what a key an older file lacks meant.

A run's ``config.json`` and a bank's ``bank.json`` are written whole, so a key a file lacks
predates the file.  Such a key takes the value the file's writer used, not today's default:

* run configurations (:func:`run_config`, :func:`resume_adoptions`): runs written before the
  options of :data:`RUN_CONFIG_DEFAULTS` used the weak-inversion gm model, a free bank, ideal
  devices and no corner or mismatch training, and still load and resume that way;
* bank specs (:data:`SPEC_GM_MODEL`): a spec that names no gm model is read with the
  weak-inversion model; one without ``output_conductance`` has ideal devices;
* checkpoints (:func:`resume_checkpoint`): every command keeps the state it resumes from in
  ``OUT/checkpoints/last.pt``; an output folder written when fine-tuning and quantisation-aware
  training kept it in ``OUT/finetune_state.pt`` / ``OUT/qat_state.pt`` resumes from that file.

This module sits in the bottom layer (no imports from the rest of the package) so that the
front ends and the training both read old files through it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["OLD_CHECKPOINTS", "RUN_CONFIG_DEFAULTS", "SPEC_GM_MODEL", "resume_adoptions", "resume_checkpoint",
           "run_config"]

#: Training options added after runs were first written, with the value a run's
#: ``config.json`` written before them meant.
RUN_CONFIG_DEFAULTS: dict[str, Any] = {"gm_model": "weak_inversion", "min_spacing": 0.0,
                                       "train_corners": "", "train_mismatch": "",
                                       "output_conductance": False}
#: The gm model of a bank spec that names none (``AnalogFilterBank.to_dict`` always names it).
SPEC_GM_MODEL = "weak_inversion"
#: Earlier names (relative to the output folder) of the state a command resumes from.
OLD_CHECKPOINTS = ("finetune_state.pt", "qat_state.pt")


def run_config(d: Mapping[str, Any]) -> dict[str, Any]:
    """The options of a run's ``config.json`` ``d`` with every option it predates at the
    value it meant when the run was written."""
    return {**RUN_CONFIG_DEFAULTS, **d}


def resume_adoptions(old: Mapping[str, Any], requested: Mapping[str, Any],
                     defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The options a resumed run takes from its earlier meaning: those its ``config.json``
    ``old`` predates and that the ``requested`` configuration leaves at today's ``defaults``."""
    return {k: v for k, v in RUN_CONFIG_DEFAULTS.items()
            if k not in old and requested[k] == defaults[k]}


def resume_checkpoint(out_dir: str | os.PathLike, name: str) -> Path:
    """The checkpoint ``out_dir / name`` a command writes and resumes from; an output folder
    that holds its state under an earlier name (:data:`OLD_CHECKPOINTS`) and not under
    ``name`` has that file moved (atomically, within the folder) to ``name`` first."""
    out_dir = Path(out_dir)
    path = out_dir / name
    if not path.is_file():
        old = next((out_dir / n for n in OLD_CHECKPOINTS if (out_dir / n).is_file()), None)
        if old is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(old, path)
    return path
