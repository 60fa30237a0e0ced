"""Sections of ``learnafe bench``.

Every module in this package (names not starting with ``_``) is one section.
A section module exposes:

* ``TITLE``: a one-line human title;
* ``run(args) -> dict``: measure and return JSON-serialisable results
  (``args`` is the ``learnafe bench`` argparse namespace: ``quick``,
  ``threads``, ``seed``, ...);
* ``format(result) -> str``: the human-readable report of ``run``'s result;
* optionally ``plot(result, path)``: a PNG of the result (``--plot-dir``).

Sections are discovered with :mod:`pkgutil`; adding a module adds a section.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def section_names() -> list[str]:
    """Names of the available sections, sorted."""
    return sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_"))


def load_section(name: str) -> ModuleType:
    """Import one section module and check that it has the section interface."""
    names = section_names()
    if name not in names:
        raise ValueError(f"unknown benchmark section {name!r}; available: {', '.join(names)}")
    module = importlib.import_module(f"{__name__}.{name}")
    for attr in ("TITLE", "run", "format"):
        if not hasattr(module, attr):
            raise RuntimeError(f"benchmark section {name!r} does not define {attr}")
    return module
