"""Reading JSON files with errors that name the file and say what to do."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def read_json(path: str | os.PathLike, what: str = "", hint: str = "") -> Any:
    """Parse the JSON file ``path``.

    A missing file raises ``FileNotFoundError`` and a damaged one ``ValueError``;
    both name the file (prefixed by ``what``, e.g. "circuit spec") and end with
    ``hint`` when given (what the user should do about it).
    """
    path = Path(path)
    name = f"{what} {path}" if what else str(path)
    tail = f"; {hint}" if hint else ""
    if not path.is_file():
        raise FileNotFoundError(f"{name} not found{tail}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name} is not valid JSON ({exc}){tail}") from exc
