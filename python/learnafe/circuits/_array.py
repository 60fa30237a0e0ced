"""Tiny helpers so the circuit formulas run on NumPy arrays and torch tensors alike.

NumPy in, NumPy out (float64); torch in, torch out (autograd intact).  torch is
imported only when a tensor is actually passed.
"""

from __future__ import annotations

import sys

import numpy as np


def is_tensor(x) -> bool:
    """True for a torch tensor (without importing torch: if torch is not loaded, none exists)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def namespace(*xs):
    """The array namespace (``torch`` or ``numpy``) of the arguments."""
    for x in xs:
        if is_tensor(x):
            import torch

            return torch
    return np


def as_array(x, like=None):
    """``x`` as a float64 NumPy array, or as a tensor matching ``like`` if that is a tensor."""
    if like is not None and is_tensor(like):
        import torch

        if is_tensor(x):
            return x
        return torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=like.dtype, device=like.device)
    if is_tensor(x):
        return x
    return np.asarray(x, dtype=np.float64)


def to_numpy(x) -> np.ndarray:
    if is_tensor(x):
        return x.detach().cpu().numpy().astype(np.float64)
    return np.asarray(x, dtype=np.float64)


def check_positive(name: str, x, fix: str = "") -> None:
    """Raise ValueError naming ``name`` if any value of ``x`` is not finite and > 0."""
    v = to_numpy(x)
    bad = ~(np.isfinite(v) & (v > 0))
    if np.any(bad):
        first = v[bad].ravel()[0] if v.ndim else float(v)
        hint = f"; {fix}" if fix else ""
        raise ValueError(f"{name} must be finite and > 0, got {first!r}{hint}")
