"""A mixin for the frozen dataclasses that are sections of a bank spec (features, bounds, noise,
mismatch, corners)."""

from __future__ import annotations

from dataclasses import asdict, fields


class SpecSection:
    """``to_dict()`` and a strict ``from_dict()`` (unknown keys refused) for a frozen dataclass."""

    section = "section"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        """An instance from a dict, an instance (returned as is) or None (the defaults)."""
        if d is None:
            return cls()
        if isinstance(d, cls):
            return d
        if not isinstance(d, dict):
            raise ValueError(f"{cls.section} must be a dict, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown {cls.section} keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)
