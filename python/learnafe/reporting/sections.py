"""The sections of ``learnafe report`` contributed by other packages.

A section is a function returning Markdown (or None to leave it out) and is
registered under a name:

* ``RUN_SECTIONS``: ``fn(run_dir, out_dir)``, called for every run of the report;
* ``SEARCH_SECTIONS``: ``fn(path, out_dir)``, called for the search given with
  ``--search``.

``out_dir`` is the report's image folder.  The sections of SPICE, XyloAudio 3
and the search are registered by :mod:`learnafe.reporting` (which sits above
those packages and imports them); a program adds its own with
:func:`register_section`.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["RUN_SECTIONS", "SEARCH_SECTIONS", "register_section"]

RUN_SECTIONS: dict[str, Callable] = {}
SEARCH_SECTIONS: dict[str, Callable] = {}
_KINDS = {"run": RUN_SECTIONS, "search": SEARCH_SECTIONS}


def register_section(name: str, fn: Callable, *, kind: str = "run") -> Callable:
    """Add (or replace) the report section ``name``; ``kind`` is ``"run"`` or
    ``"search"`` (see the module docstring).  Returns ``fn``."""
    if kind not in _KINDS:
        raise ValueError(f"register_section: kind must be one of {sorted(_KINDS)}, got {kind!r}")
    if not callable(fn):
        raise ValueError(f"register_section: section {name!r} must be a function, got {fn!r}")
    _KINDS[kind][str(name)] = fn
    return fn
