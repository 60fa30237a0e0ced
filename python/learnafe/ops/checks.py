"""Argument checks of the ops, shared by the NumPy API and the torch operators.

Each check raises a ``TypeError`` or ``ValueError`` that names the argument and
the fix.  The static checks (kind, dtype, device, shape, scalar arguments) hold
under tracing; the data checks (finite values, stable sections, non-negative
noise) read the values and run on real arrays only.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

__all__ = ["RECTIFY", "SEED_LIMIT", "is_tensor", "dtype_name", "as_numpy", "check_kind", "check_dtypes",
           "check_finite", "first_non_finite", "check_stable", "check_coefficients", "check_bank_data", "check_bank",
           "check_seed", "check_noise_std", "check_noise_batch", "check_envelope_args", "check_out", "envelope_alpha",
           "check_section_shapes", "check_section_stable", "unstable_sections"]

#: The rectifiers of the envelope op.
RECTIFY = ("abs", "square")


def is_tensor(v: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(v, torch.Tensor)


def dtype_name(v: Any) -> str:
    return str(v.dtype).replace("torch.", "")


def check_kind(named: dict[str, Any]) -> bool:
    """Check that all given arrays are the same kind, float and on the CPU; True if torch."""
    kinds = {name: is_tensor(v) for name, v in named.items()}
    if any(kinds.values()) and not all(kinds.values()):
        tensors = [n for n, k in kinds.items() if k]
        arrays = [n for n, k in kinds.items() if not k]
        raise TypeError(
            f"{', '.join(tensors)} {'is a torch tensor' if len(tensors) == 1 else 'are torch tensors'}"
            f" but {', '.join(arrays)} {'is' if len(arrays) == 1 else 'are'} not: pass all of "
            f"{', '.join(named)} as torch tensors or all as NumPy arrays")
    is_torch = all(kinds.values())
    for name, v in named.items():
        if not is_torch and not isinstance(v, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array or a torch tensor, got {type(v).__name__}")
        if dtype_name(v) not in ("float32", "float64"):
            raise TypeError(f"{name} must be float32 or float64, got {dtype_name(v)}")
        if is_torch and v.device.type != "cpu":
            raise ValueError(f"{name} is on device {v.device}; the kernels run on the CPU: "
                             f"pass {name}.cpu()")
    return is_torch


def check_dtypes(x: Any, b: Any, a: Any, zi: Any = None) -> None:
    """Signals (x, zi) share one dtype; coefficients (b, a) share one dtype, x's or float64."""
    xd, bd, ad = dtype_name(x), dtype_name(b), dtype_name(a)
    if bd != ad:
        raise TypeError(f"mismatched dtypes: b is {bd} but a is {ad}; give both coefficient "
                        f"arrays the same dtype (float64 recommended)")
    if bd not in (xd, "float64"):
        raise TypeError(f"mismatched dtypes: x is {xd} but b and a are {bd}; coefficients must be "
                        f"{xd} or float64 (convert b and a to float64)")
    if zi is not None and dtype_name(zi) != xd:
        raise TypeError(f"mismatched dtypes: x is {xd} but zi is {dtype_name(zi)}; convert zi to {xd}")


def as_numpy(v: Any) -> np.ndarray:
    return v.detach().numpy() if is_tensor(v) else np.asarray(v)


def first_non_finite(v: Any) -> tuple[int, ...] | None:
    """Index of the first NaN or inf element of ``v`` (NumPy array or tensor), or ``None``.

    One pass without a temporary in the usual case: a finite sum proves every element
    finite (NaN and inf propagate through a sum, and inf + -inf is NaN).  Only a
    non-finite sum (a non-finite element, or an overflow of huge finite values) pays the
    element-wise search.
    """
    if is_tensor(v):
        import torch

        t = v.detach()
        if not (t.is_floating_point() or t.is_complex()) or bool(torch.isfinite(t.sum())):
            return None
        bad = torch.nonzero(~torch.isfinite(t))
        return tuple(int(i) for i in bad[0]) if len(bad) else None
    arr = np.asarray(v)
    if arr.dtype.kind not in "fc":
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(arr.sum()):
            return None
    bad = np.argwhere(~np.isfinite(arr))
    return tuple(int(i) for i in bad[0]) if len(bad) else None


def check_finite(name: str, v: Any) -> None:
    bad = first_non_finite(v)
    if bad is not None:
        raise ValueError(f"{name} contains non-finite values (first at index {bad}); "
                         f"clean the input (e.g. nan_to_num) before filtering")


def check_stable(a: Any) -> None:
    """Raise ValueError naming the channel if any section has a pole on or outside the unit circle.

    ``a`` is ``[C, 2]`` (a1, a2) or per example ``[B, C, 2]``; the poles are the roots of
    ``z^2 + a1 z + a2`` and are inside the unit circle iff ``|a2| < 1`` and ``|a1| < 1 + a2``.
    """
    arr = np.asarray(as_numpy(a), dtype=np.float64)
    lead = arr.shape[:-1]
    arr = arr.reshape(-1, 2)
    a1, a2 = arr[:, 0], arr[:, 1]
    bad = np.flatnonzero(~((np.abs(a2) < 1.0) & (np.abs(a1) < 1.0 + a2)))
    if bad.size:
        c = int(bad[0])
        radius = float(np.max(np.abs(np.roots([1.0, a1[c], a2[c]]))))
        where = f"channel {c}" if len(lead) == 1 else f"batch item {c // lead[1]}, channel {c % lead[1]}"
        more = f" (and {bad.size - 1} more section(s))" if bad.size > 1 else ""
        raise ValueError(
            f"a: {where} is unstable: the poles of z^2 + a1 z + a2 with a1={a1[c]!r}, "
            f"a2={a2[c]!r} have magnitude {radius:.6g} >= 1{more}; every section needs "
            f"|a2| < 1 and |a1| < 1 + a2")


def check_coefficients(b: Any, a: Any, batch: int | None = None) -> None:
    """Shapes of ``b``, ``a``: ``[C, 3]``, ``[C, 2]`` (one bank for the batch) or ``[B, C, 3]``,
    ``[B, C, 2]`` (a bank per batch item; ``batch``: x's batch size ``B``, None for a 1-D x)."""
    if b.ndim not in (2, 3) or b.shape[-1] != 3:
        raise ValueError(f"b must be [C, 3] (b0, b1, b2 per channel, shared by the batch) or [B, C, 3] "
                         f"(per example), got shape {tuple(b.shape)}")
    if a.ndim not in (2, 3) or a.shape[-1] != 2:
        raise ValueError(f"a must be [C, 2] (a1, a2 per channel; a0 = 1 implied; shared by the batch) or "
                         f"[B, C, 2] (per example), got shape {tuple(a.shape)}")
    if b.ndim != a.ndim or b.shape[:-1] != a.shape[:-1]:
        raise ValueError(f"b and a must have the same number of channels and both be shared ([C, 3], [C, 2]) "
                         f"or both per example ([B, C, 3], [B, C, 2]) with the same B and C, got b "
                         f"{tuple(b.shape)} and a {tuple(a.shape)}")
    if b.shape[-2] < 1:
        raise ValueError("b and a have no channels (C = 0)")
    if b.ndim == 3:
        if batch is None:
            raise ValueError(f"per-example b {tuple(b.shape)}, a {tuple(a.shape)} need a batched x [B, T]; "
                             f"pass x[None] or b[0], a[0]")
        if b.shape[0] != batch:
            raise ValueError(f"per-example b {tuple(b.shape)} and a {tuple(a.shape)} must have x's batch "
                             f"size B = {batch} as first dimension (or be shared: [C, 3], [C, 2])")


def check_bank_data(x: Any, b: Any, a: Any) -> None:
    """The data-dependent checks: finite values and stable sections (eager data only)."""
    check_finite("b", b)
    check_finite("a", a)
    check_finite("x", x)
    check_stable(a)


def check_bank(x: Any, b: Any, a: Any) -> tuple[bool, int, int]:
    """Validate x, b, a; return (is_torch, C, ndim of x).

    For NumPy input every check runs here.  For torch tensors the
    data-dependent checks (finite values, stability) run inside the custom
    operator's CPU implementation (:mod:`learnafe.ops.operators`), so that they
    also hold in compiled and exported graphs, with the same messages.
    """
    is_torch = check_kind({"x": x, "b": b, "a": a})
    check_dtypes(x, b, a)
    if x.ndim not in (1, 2):
        raise ValueError(f"x must be [T] or [B, T] (one mono signal per batch item), got shape "
                         f"{tuple(x.shape)}")
    if x.ndim == 2 and x.shape[0] < 1:
        raise ValueError(f"x has an empty batch dimension (shape {tuple(x.shape)})")
    check_coefficients(b, a, x.shape[0] if x.ndim == 2 else None)
    if not is_torch:
        check_bank_data(x, b, a)
    return is_torch, int(b.shape[-2]), x.ndim




SEED_LIMIT = 2 ** 64


def check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < SEED_LIMIT:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    return int(seed)


def check_noise_std(noise_std: Any, x: Any, C: int, is_torch: bool, data: bool = True) -> None:
    """Kind, dtype, device, shape (``[C]``, or ``[B, C]`` for a batch ``x [B, T]``); with ``data`` also
    finite and ``>= 0`` (eager data only)."""
    if is_tensor(noise_std) != is_torch or not (is_torch or isinstance(noise_std, np.ndarray)):
        kind = "a torch tensor" if is_torch else "a NumPy array"
        raise TypeError(f"noise_std must be {kind} like x (one standard deviation per channel), got "
                        f"{type(noise_std).__name__}")
    if dtype_name(noise_std) not in ("float32", "float64"):
        raise TypeError(f"noise_std must be float32 or float64, got {dtype_name(noise_std)}")
    if is_torch and noise_std.device.type != "cpu":
        raise ValueError(f"noise_std is on device {noise_std.device}; the kernels run on the CPU: "
                         f"pass noise_std.cpu()")
    shape = tuple(noise_std.shape)
    if x.ndim == 2:
        batch = x.shape[0]
        if shape not in ((C,), (batch, C)):
            raise ValueError(f"noise_std must have shape ({C},) (one standard deviation per channel, shared by "
                             f"the batch) or ({batch}, {C}) (one row per batch item of x), got {shape}")
    elif shape != (C,):
        raise ValueError(f"noise_std must have shape ({C},) (one standard deviation per channel) for a 1-D x; "
                         f"a per-example noise_std [B, C] needs x [B, T], got {shape}")
    if not data:
        return
    arr = as_numpy(noise_std)
    bad = first_non_finite(arr)
    if bad is not None:
        at = ", ".join(str(i) for i in bad)
        raise ValueError(f"noise_std[{at}] is {float(arr[bad])!r}; every standard deviation must be "
                         f"finite and >= 0")
    bad = np.argwhere(arr < 0)
    if len(bad):
        at = ", ".join(str(int(i)) for i in bad[0])
        raise ValueError(f"noise_std[{at}] = {float(arr[tuple(bad[0])])!r} is negative; every standard "
                         f"deviation must be >= 0 (pass its absolute value)")


def check_noise_batch(noise_batch: Any, batch: Any) -> int:
    """``noise_batch`` None (every batch item keyed by its own index; returned as 0) or an integer in
    ``[1, batch]`` that divides ``batch``."""
    if noise_batch is None:
        return 0
    if isinstance(noise_batch, bool) or not isinstance(noise_batch, (int, np.integer)) \
            or not 1 <= int(noise_batch) <= batch or batch % int(noise_batch):
        raise ValueError(f"noise_batch must be None or an integer in [1, B={batch}] that divides B (batch item "
                         f"b draws the noise of item b % noise_batch, e.g. the clips per chip of a chip "
                         f"stack), got {noise_batch!r}")
    return int(noise_batch)




def envelope_alpha(tau: float, sample_rate: float) -> float:
    """Smoothing factor of the envelope low-pass: ``1 - exp(-1 / (tau * sample_rate))``."""
    for name, v in (("tau", tau), ("sample_rate", sample_rate)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                or not math.isfinite(float(v)) or float(v) <= 0:
            raise ValueError(f"{name} must be a positive finite number (tau in seconds, "
                             f"sample_rate in Hz), got {v!r}")
    return -math.expm1(-1.0 / (float(tau) * float(sample_rate)))




def check_out(out, y_shape, x, is_torch, b, a, zi) -> None:
    if is_tensor(out) != is_torch:
        raise TypeError("out must be the same kind as x (a torch tensor for a tensor x, a NumPy array "
                        "for an array x)")
    if dtype_name(out) != dtype_name(x):
        raise TypeError(f"out must have x's dtype {dtype_name(x)}, got {dtype_name(out)}")
    if tuple(out.shape) != y_shape:
        raise ValueError(f"out must have shape {y_shape}, got {tuple(out.shape)}")
    contiguous = out.is_contiguous() if is_torch else out.flags.c_contiguous
    if not contiguous:
        raise ValueError("out must be C-contiguous")
    if is_torch:
        import torch

        if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, b, a, zi)):
            raise ValueError("out= does not support autograd: call without out= (or under "
                             "torch.no_grad()) when gradients are needed")


def check_envelope_args(T: Any, hop: Any, rectify: Any, alpha: float | None = None) -> None:
    """``rectify`` one of :data:`RECTIFY`, ``hop`` an integer in ``[1, T]``, ``alpha`` (if given) in (0, 1]."""
    if rectify not in RECTIFY:
        raise ValueError(f"rectify must be one of {RECTIFY}, got {rectify!r}")
    if isinstance(hop, bool) or not isinstance(hop, (int, np.integer)) or not 1 <= int(hop) <= T:
        raise ValueError(f"hop must be an integer number of samples in [1, T={T}], got {hop!r}")
    if alpha is not None and not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1] (learnafe.ops.envelope_alpha(tau, sample_rate)), "
                         f"got {alpha!r}")


def check_section_shapes(u: Any, b: Any, a: Any) -> None:
    """Rows of one section step of a cascade: ``u [B, Cu, T]`` (``Cu`` 1 or ``C``), ``b [G, C, 3]``,
    ``a [G, C, 2]`` (``G`` 1 or ``B``)."""
    if u.ndim != 3:
        raise ValueError(f"u must be [B, Cu, T] (a signal per batch item and channel), got shape {tuple(u.shape)}")
    if b.ndim != 3 or b.shape[-1] != 3 or a.ndim != 3 or a.shape[-1] != 2 or tuple(b.shape[:2]) != tuple(a.shape[:2]):
        raise ValueError(f"b must be [G, C, 3] and a [G, C, 2] with the same G and C, got b {tuple(b.shape)} "
                         f"and a {tuple(a.shape)}")
    B, Cu, _ = u.shape
    G, C = b.shape[:2]
    if G not in (1, B):
        raise ValueError(f"b and a have {G} coefficient sets: give 1 (shared by the batch) or one per batch "
                         f"item ({B})")
    if Cu not in (1, C):
        raise ValueError(f"u has {Cu} channels: give 1 (filtered by every channel) or one per channel ({C})")


def unstable_sections(a: Any) -> np.ndarray:
    """Indices (``np.argwhere`` rows) of the sections ``a [..., 2]`` (a1, a2) with a pole on or outside the unit
    circle (``|a2| < 1`` and ``|a1| < 1 + a2`` is stable)."""
    arr = np.asarray(as_numpy(a), dtype=np.float64)
    a1, a2 = arr[..., 0], arr[..., 1]
    return np.argwhere(~((np.abs(a2) < 1.0) & (np.abs(a1) < 1.0 + a2)))


def check_section_stable(a: Any) -> None:
    """Raise ValueError naming the coefficient set and channel if a section of ``a [G, C, 2]`` is unstable."""
    bad = unstable_sections(a)
    if len(bad):
        g, c = (int(i) for i in bad[0])
        arr = np.asarray(as_numpy(a), dtype=np.float64)
        a1, a2 = float(arr[g, c, 0]), float(arr[g, c, 1])
        radius = float(np.max(np.abs(np.roots([1.0, a1, a2]))))
        raise ValueError(f"a: coefficient set {g}, channel {c} is unstable: the poles of z^2 + a1 z + a2 with "
                         f"a1={a1!r}, a2={a2!r} have magnitude {radius:.6g} >= 1; every section needs "
                         f"|a2| < 1 and |a1| < 1 + a2")
