"""Append-only JSONL journal of finished trials.

One line per finished trial (successful or failed), written with a single
``write`` of the whole line followed by ``flush`` + ``fsync``, so a search killed at
any moment leaves at most one incomplete last line.  Reading skips such a torn
last line (with a warning); a damaged line anywhere else is an error, because
it means the file was edited or two searches wrote into the same directory.

A record::

    {"format": "learnafe-search-trial/1", "trial": 3, "status": "ok" | "failed",
     "params": {...}, "objectives": {"error": .., "power_w": .., "area_um2": ..} | null,
     "metrics": {...}, "error": null | "traceback text", "duration_s": 12.3,
     "worker": "host:pid", "seed": 3, "started_at": "...", "finished_at": "..."}
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

from learnafe._jsonio import append_json_line

FORMAT = "learnafe-search-trial/1"
STATUSES = ("ok", "failed")
REQUIRED = ("trial", "status", "params", "objectives", "error", "duration_s", "worker")

log = logging.getLogger(__name__)


def json_safe(value):
    """JSON-safe copy: non-finite floats become None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        try:
            return json_safe(value.item())
        except (TypeError, ValueError):
            pass
    return value


def validate_record(record: dict) -> dict:
    if not isinstance(record, dict):
        raise ValueError(f"a journal record must be a dictionary, got {type(record).__name__}")
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise ValueError(f"journal record lacks {missing}")
    if record["status"] not in STATUSES:
        raise ValueError(f"journal record status {record['status']!r} is not one of {STATUSES}")
    if not isinstance(record["trial"], int) or record["trial"] < 0:
        raise ValueError(f"journal record trial id must be a non-negative integer, got {record['trial']!r}")
    if record["status"] == "ok" and not isinstance(record["objectives"], dict):
        raise ValueError(f"trial {record['trial']}: a successful record needs its objectives")
    return record


class Journal:
    """The journal file of one search directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def exists(self) -> bool:
        return self.path.is_file()

    def append(self, record: dict) -> dict:
        record = json_safe(dict(record))
        record.setdefault("format", FORMAT)
        validate_record(record)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._drop_torn_tail()
        append_json_line(self.path, record)
        return record

    def _drop_torn_tail(self) -> None:
        """Cut an incomplete last line left by a killed writer, so appends start on a fresh line."""
        if not self.path.is_file():
            return
        with open(self.path, "rb+") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            if size == 0:
                return
            fh.seek(size - 1)
            if fh.read(1) == b"\n":
                return
            fh.seek(0)
            data = fh.read()
            keep = data.rfind(b"\n") + 1
            log.warning("journal %s: dropping an incomplete last line (%d bytes)", self.path, size - keep)
            fh.truncate(keep)

    def read(self) -> list[dict]:
        """All complete records, in the order they were written."""
        if not self.path.is_file():
            return []
        lines = self.path.read_text(encoding="utf-8").split("\n")
        records = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                validate_record(record)
            except (json.JSONDecodeError, ValueError) as exc:
                if number == len(lines):  # split() leaves an unterminated tail as the last element
                    log.warning("journal %s: ignoring an incomplete last line (killed while writing)", self.path)
                    continue
                raise ValueError(f"journal {self.path}, line {number} is damaged ({exc}); "
                                 "fix or remove that line to resume") from exc
            if record.get("format", FORMAT) != FORMAT:
                raise ValueError(f"journal {self.path}, line {number}: format {record.get('format')!r} "
                                 f"is not {FORMAT!r}")
            records.append(record)
        ids = [r["trial"] for r in records]
        if len(ids) != len(set(ids)):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"journal {self.path} holds trial id(s) {dupes} more than once; "
                             "two searches wrote into the same directory")
        return records
