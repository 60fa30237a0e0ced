"""Resuming a run directory: whether a run can continue, and with which configuration.

A run directory holds ``config.json`` and ``checkpoints/last.pt``; it resumes when its
configuration equals the requested one, except for the options of
:data:`RESUMABLE_CHANGES`.  A run written before an option existed keeps that option's
earlier meaning when it is resumed with the option at its (new) default
(:func:`learnafe._migrate.resume_adoptions`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from learnafe._migrate import resume_adoptions, run_config
from learnafe.training.config import TrainConfig
from learnafe.training.rundir import CONFIG, LAST, read_json

__all__ = ["RESUMABLE_CHANGES", "resume_config"]

log = logging.getLogger("learnafe.training")
#: Options that may differ between an interrupted run and its resumption.
RESUMABLE_CHANGES = {"output.progress", "output.threads", "output.checkpoint_every"}


def resume_config(cfg: TrainConfig, run_dir: Path, resume: bool) -> tuple[bool, TrainConfig]:
    """``(resuming, configuration)``: True with the configuration to continue with if
    ``run_dir`` holds a run to resume (a ``ValueError`` if it holds one with another
    configuration, or ``resume`` is False); False and ``cfg`` for a new run."""
    cfg_path = run_dir / CONFIG
    last = run_dir / LAST
    if not (cfg_path.is_file() and last.is_file()):
        return False, cfg  # nothing to resume (e.g. a run that failed before its first checkpoint)
    if not resume:
        raise ValueError(f"{run_dir} already holds a run; resume it (drop --no-resume) "
                         "or choose another --out directory")
    old = read_json(cfg_path)
    fresh = TrainConfig()
    adopt = resume_adoptions(old, cfg.to_dotted(), fresh.to_dotted())
    if adopt:
        log.info("%s predates options %s: resuming with their earlier values", run_dir, adopt)
        cfg = cfg.replace(**adopt)
    # other options an older config.json lacks took their defaults
    old = fresh.replace(**run_config(old)).to_dotted()
    new = cfg.to_dotted()
    diff = sorted(k for k in set(old) | set(new) if k not in RESUMABLE_CHANGES and old.get(k) != new.get(k))
    if diff:
        raise ValueError(f"{run_dir} holds a run with a different configuration "
                         f"(differs in {diff}); use another --out directory or the same options")
    return True, cfg
