"""The base of a training-configuration section: a frozen dataclass whose fields carry their
one-line documentation (:func:`option`) and that checks itself on construction (:class:`Section`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = ["Section", "option", "copy_value"]


def option(default: Any, help: str) -> Any:
    """A section field with its one-line documentation (``learnafe train``'s help text
    for the option); list and dict defaults are copied per instance."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy_value(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Section:
    """A frozen group of options: JSON-compatible numeric coercion, then :meth:`check`."""

    name: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # JSON and flags give 3 for 3.0 and 2.0 for 2
            v = getattr(self, f.name)
            if f.type == "int" and isinstance(v, float) and v.is_integer():
                object.__setattr__(self, f.name, int(v))
            if f.type == "float" and isinstance(v, int) and not isinstance(v, bool):
                object.__setattr__(self, f.name, float(v))
        self.check()

    def check(self) -> None:
        """Validate the section's fields (every field in exactly one section)."""

    def _need(self, cond: bool, leaf: str, what: str) -> None:
        if not cond:
            raise ValueError(f"training option {self.name}.{leaf}={getattr(self, leaf)!r} is invalid: {what}")

    def _set(self, leaf: str, value: Any) -> None:
        object.__setattr__(self, leaf, value)

    def _non_negative_ints(self, *leaves: str) -> None:
        for leaf in leaves:
            v = getattr(self, leaf)
            self._need(isinstance(v, int) and not isinstance(v, bool) and v >= 0, leaf,
                       "must be an integer >= 0")

    def to_dict(self) -> dict:
        return {f.name: copy_value(getattr(self, f.name)) for f in dataclasses.fields(self)}


def copy_value(v):
    """A deep copy of a JSON-like value (dicts and lists copied, tuples as lists)."""
    if isinstance(v, dict):
        return {k: copy_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [copy_value(x) for x in v]
    return v
