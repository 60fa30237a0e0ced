"""The one JSON module: a reader with errors that name the file and say what to do, and an
atomic writer (a kill never leaves a half-written file)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable


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


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(f)`` on a temporary file in ``path``'s folder, fsync it, then rename it onto
    ``path`` (``os.replace``): readers see the old file or the new one, never a partial one.
    The parent folder is created if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def dumps(obj: Any, *, indent: int | None = 2, newline: bool = True, allow_nan: bool = True,
          sort_keys: bool = False) -> str:
    """``obj`` as JSON text, formatted as :func:`write_json` writes it."""
    return json.dumps(obj, indent=indent, sort_keys=sort_keys, allow_nan=allow_nan) + ("\n" if newline else "")


def write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2, newline: bool = True,
               allow_nan: bool = True, sort_keys: bool = False) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (see :func:`atomic_write`).

    ``indent``, ``newline`` (a final line break), ``allow_nan`` and ``sort_keys``
    set the format.  The text is
    built before the file is touched, so an unserialisable object leaves the
    old file in place.
    """
    data = dumps(obj, indent=indent, newline=newline, allow_nan=allow_nan, sort_keys=sort_keys).encode()
    atomic_write(path, lambda f: f.write(data))


def append_json_line(path: str | os.PathLike, obj: Any, *, sort_keys: bool = True, allow_nan: bool = False) -> str:
    """Append ``obj`` as one JSON line to a journal (JSONL) and flush + fsync it; returns the line."""
    line = json.dumps(obj, sort_keys=sort_keys, allow_nan=allow_nan) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())
    return line


__all__ = ["read_json", "write_json", "atomic_write", "dumps", "append_json_line"]
