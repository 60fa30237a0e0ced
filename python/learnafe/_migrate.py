"""Reading of earlier file layouts: the one place that knows what a key an older file lacks meant.

A run's ``config.json`` and a bank's ``bank.json`` are written whole, so a key a file lacks
predates the file.  Such a key takes the value the file's writer used, not today's default:

* option names (:func:`dotted_options`): configurations, flags and search overrides written
  with the flat option names of earlier files (``lr_frontend``) name the dotted option of its
  section (``optimiser.lr_frontend``, :data:`FLAT_NAMES`); the corner list of a flat file is a
  comma-separated string (``"tt,ss"``) and reads as a list of corner names; the one-field
  mismatch option (flat ``train_mismatch``, nested ``mismatch.source`` without a mode:
  ``"sky130"`` or ``""``) reads as the mismatch section it meant (:data:`OLD_MISMATCH`); the
  bank's noise and mismatch settings kept in ``bank.options`` (flat ``frontend``) read as the
  ``noise`` and ``mismatch`` sections, field by field over the others (:data:`OPTIONS_SECTIONS`);
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

__all__ = ["FLAT_NAMES", "OLD_CHECKPOINTS", "OLD_MISMATCH", "OPTIONS_SECTIONS", "RUN_CONFIG_DEFAULTS",
           "SPEC_GM_MODEL", "dotted_options",
           "flag_name", "resume_adoptions", "resume_checkpoint", "run_config"]

#: The flat option name of earlier configuration files (and of the ``learnafe train`` flags)
#: -> the dotted name of the option in its section.
FLAT_NAMES: dict[str, str] = {
    "data": "data.root", "sample_rate": "data.sample_rate", "clip_seconds": "data.clip_seconds",
    "train_split": "data.train_split", "val_split": "data.val_split", "test_split": "data.test_split",
    "limit_train": "data.limit_train", "limit_val": "data.limit_val", "noise": "data.noise",
    "data_weight": "data.data_weight", "real": "data.real", "real_weight": "data.real_weight",
    "real_val_fraction": "data.real_val_fraction", "real_split_seed": "data.real_split_seed",
    "sources": "data.sources", "epoch_clips": "data.epoch_clips",
    "snr_low_db": "augment.snr_low_db", "snr_high_db": "augment.snr_high_db",
    "p_noise": "augment.p_noise", "gain_db": "augment.gain_db",
    "time_shift_ms": "augment.time_shift_ms", "speed": "augment.speed",
    "time_masks": "augment.time_masks", "time_mask_frames": "augment.time_mask_frames",
    "freq_masks": "augment.freq_masks", "freq_mask_channels": "augment.freq_mask_channels",
    "voice_augment": "augment.voice_augment", "mixup_alpha": "augment.mixup_alpha",
    "mode": "bank.mode", "frontend_kind": "bank.kind", "filter_order": "bank.filter_order",
    "n_channels": "bank.n_channels", "f_low": "bank.f_low", "f_high": "bank.f_high", "q": "bank.q",
    "gm_model": "bank.gm_model", "output_conductance": "bank.output_conductance",
    "min_spacing": "bank.min_spacing", "frontend": "bank.options",
    "train_corners": "corners.names",
    "noise_mode": "noise.mode", "noise_full_scale_v": "noise.full_scale_v",
    "noise_train_scale_min": "noise.train_scale_min", "noise_train_scale_max": "noise.train_scale_max",
    "noise_train_p_zero": "noise.train_p_zero",
    "mismatch_mode": "mismatch.mode", "mismatch_sigma_i": "mismatch.sigma_i",
    "mismatch_sigma_c": "mismatch.sigma_c", "mismatch_seed": "mismatch.seed",
    "mismatch_source": "mismatch.source",
    "width": "classifier.width", "depth": "classifier.depth", "dropout": "classifier.dropout",
    "input_norm": "classifier.input_norm",
    "lambda_ce": "cost.lambda_ce", "lambda_i": "cost.lambda_i", "lambda_c": "cost.lambda_c",
    "label_smoothing": "cost.label_smoothing", "unknown_weight": "cost.unknown_weight",
    "teacher": "distill.teacher", "distill_weight": "distill.distill_weight",
    "distill_temperature": "distill.distill_temperature",
    "lr_frontend": "optimiser.lr_frontend", "lr_classifier": "optimiser.lr_classifier",
    "weight_decay": "optimiser.weight_decay", "batch_size": "optimiser.batch_size",
    "grad_clip": "optimiser.grad_clip", "ema_decay": "optimiser.ema_decay",
    "epochs": "schedule.epochs", "max_steps": "schedule.max_steps",
    "warmup_steps": "schedule.warmup_steps", "scheduler": "schedule.scheduler",
    "early_stop": "schedule.early_stop",
    "eval_snrs": "evaluation.eval_snrs", "eval_seed": "evaluation.eval_seed",
    "seed": "output.seed", "checkpoint_every": "output.checkpoint_every", "threads": "output.threads",
    "progress": "output.progress",
}
#: Flag name of a dotted option: its flat name (``optimiser.lr_frontend`` -> ``lr_frontend``).
_FLAGS = {dotted: flat for flat, dotted in FLAT_NAMES.items()}
#: Training options added after runs were first written, with the value a run's
#: ``config.json`` written before them meant.
RUN_CONFIG_DEFAULTS: dict[str, Any] = {"bank.gm_model": "weak_inversion", "bank.min_spacing": 0.0,
                                       "corners.names": [], "mismatch.mode": "off",
                                       "bank.output_conductance": False}
#: The one-field mismatch option of earlier files (flat ``train_mismatch``, nested
#: ``{"mismatch": {"source": ...}}`` without a ``mode``) -> the mismatch section it meant.
OLD_MISMATCH: dict[str, dict[str, str]] = {"": {"mismatch.mode": "off"},
                                           "sky130": {"mismatch.mode": "per_batch", "mismatch.source": "sky130"}}
#: Sections of the bank's own settings that earlier files kept in ``bank.options``.
OPTIONS_SECTIONS = ("noise", "mismatch")
#: The gm model of a bank spec that names none (``AnalogFilterBank.to_dict`` always names it).
SPEC_GM_MODEL = "weak_inversion"
#: Earlier names (relative to the output folder) of the state a command resumes from.
OLD_CHECKPOINTS = ("finetune_state.pt", "qat_state.pt")


def flag_name(dotted: str) -> str:
    """The flat name of option ``dotted`` (the name of its ``learnafe train`` flag)."""
    return _FLAGS[dotted]


def dotted_options(d: Mapping[str, Any]) -> dict[str, Any]:
    """The options of ``d`` as {dotted name: value}: ``d`` nested by section
    (``{"optimiser": {"lr_frontend": 0.01}}``), with dotted names, or with the flat names of
    earlier files (:data:`FLAT_NAMES`); a name that is none of these passes unchanged (the
    caller names it as unknown)."""
    out: dict[str, Any] = {}
    for key, v in d.items():
        if key == "train_mismatch":
            out.update(_old_mismatch(v, key))
        elif key == "mismatch" and isinstance(v, Mapping) and "mode" not in v and set(v) == {"source"}:
            out.update(_old_mismatch(v["source"], "mismatch.source"))
        elif isinstance(v, Mapping) and key in _SECTION_NAMES:
            out.update({f"{key}.{leaf}": x for leaf, x in v.items()})
        elif key in FLAT_NAMES:
            dotted = FLAT_NAMES[key]
            if dotted == "corners.names" and isinstance(v, str):
                v = [c.strip() for c in v.split(",") if c.strip()]
            out[dotted] = v
        else:
            out[key] = v
    options = out.get("bank.options")
    if isinstance(options, Mapping) and any(isinstance(options.get(k), Mapping) for k in OPTIONS_SECTIONS):
        out["bank.options"] = {k: x for k, x in options.items()
                               if not (k in OPTIONS_SECTIONS and isinstance(x, Mapping))}
        for section in OPTIONS_SECTIONS:  # they overrode the options above them, as they do here
            if isinstance(options.get(section), Mapping):
                out.update({f"{section}.{leaf}": x for leaf, x in options[section].items()})
    return out


def _old_mismatch(value: Any, where: str) -> dict[str, str]:
    if value not in OLD_MISMATCH:
        raise ValueError(f"training option {where}={value!r} (the mismatch option of earlier files) is "
                         f"invalid: use 'sky130' (SKY130 mismatch drawn per batch) or '' (off), or the "
                         f"mismatch section (mismatch.mode, mismatch.source, ...)")
    return dict(OLD_MISMATCH[value])


_SECTION_NAMES = {dotted.split(".")[0] for dotted in FLAT_NAMES.values()}


def _is_flat(d: Mapping[str, Any]) -> bool:
    """True for a configuration written with flat option names (before the sections)."""
    return not any(isinstance(v, Mapping) and k in _SECTION_NAMES for k, v in d.items())


def run_config(d: Mapping[str, Any]) -> dict[str, Any]:
    """The options of a run's ``config.json`` ``d`` as {dotted name: value}, with every option
    it predates at the value it meant when the run was written."""
    return {**(RUN_CONFIG_DEFAULTS if _is_flat(d) else {}), **dotted_options(d)}


def resume_adoptions(old: Mapping[str, Any], requested: Mapping[str, Any],
                     defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The options (dotted) a resumed run takes from its earlier meaning: those its
    ``config.json`` ``old`` predates and that the ``requested`` configuration leaves at
    today's ``defaults`` (both {dotted name: value})."""
    present = dotted_options(old) if _is_flat(old) else None
    if present is None:
        return {}
    return {k: v for k, v in RUN_CONFIG_DEFAULTS.items()
            if k not in present and requested[k] == defaults[k]}


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
