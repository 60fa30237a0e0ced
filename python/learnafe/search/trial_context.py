"""What a trial function receives: its context, and the dotted-path override of a configuration.

A trial function is any module-level callable ``fn(params: dict, ctx: TrialContext) -> dict``
(:mod:`learnafe.search.trials` holds the shipped ones; the search configuration names one
as ``"module:function"``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

__all__ = ["TrialContext", "set_path"]


@dataclasses.dataclass
class TrialContext:
    """What a trial function gets besides its parameters."""

    trial: int              #: trial id (the reference design uses -1)
    seed: int               #: seed for everything random in the trial
    run_dir: Path           #: a fresh directory for the trial's files
    settings: dict          #: ``[trial.settings]`` of the search config
    threads: int            #: cores this trial may use
    kind: str = "trial"     #: "trial" or "reference"


def set_path(config: dict, dotted: str, value) -> dict:
    """Set ``config["a"]["b"] = value`` for ``dotted = "a.b"``, creating tables as needed."""
    node = config
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(f"cannot set {dotted!r}: {part!r} is a {type(child).__name__}, not a table")
        node = child
    node[parts[-1]] = value
    return config
