"""``sosfilt``: cascades of second-order sections with ``scipy.signal.sosfilt``'s semantics, for NumPy
arrays and torch tensors, differentiable (to any order) in ``x``, ``sos`` and ``zi``.

Each row of ``sos`` is ``(b0, b1, b2, a0, a1, a2)``; it is normalised by ``a0`` as scipy does.
Section ``s`` of a cascade filters the output of section ``s - 1`` (direct form II transposed state,
as scipy's ``zi``/``zf``)::

    y[n]  = b0 x[n] + z1[n-1]
    z1[n] = b1 x[n] - a1 y[n] + z2[n-1]
    z2[n] = b2 x[n] - a2 y[n]

Computation.  All sections run fused per sample in the compiled cascade kernel
(:func:`learnafe.ops.kernels.cascade_forward`, ``cpp/sosfilt_cascade.h``; torch: the operator
``torch.ops.learnafe.sosfilt_cascade`` of :mod:`learnafe.ops.cascade`): the input is read once
and the output written once, SIMD across the signals, in double arithmetic with scipy's
direct-form-II-transposed state.  The gradient is the fused adjoint kernel; a gradient of the
gradient goes through the same cascade composed of differentiable section operators, so
``gradgradcheck`` holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from learnafe.ops import kernels
from learnafe.ops.checks import as_numpy, check_finite, check_kind, dtype_name, first_non_finite, unstable_sections
from learnafe.ops.extension import get_num_threads, op_threads

__all__ = ["sosfilt"]


def _movedim(v, src, dst, is_torch: bool):
    return v.movedim(src, dst) if is_torch else np.moveaxis(v, src, dst)


def _cascade(x, b, a, zi, threads: int, is_torch: bool):
    """``x [N, T]``, ``b [G, C, S, 3]``, ``a [G, C, S, 2]`` (normalised), ``zi [N, C, S, 2]`` or None
    -> ``y [N, C, T]``, ``zf [N, C, S, 2]``: the fused cascade kernel (torch: its operator)."""
    if is_torch:
        import torch

        from learnafe.ops import cascade  # noqa: F401 - registers torch.ops.learnafe.sosfilt_cascade

        # the block checkpoints are kept when a gradient will be wanted (the backward then
        # does not run the forward again)
        keep = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, b, a, zi))
        y, zf, _ = torch.ops.learnafe.sosfilt_cascade(x[:, None, :].contiguous(), b, a, zi, threads, keep)
        return y, zf
    return kernels.cascade_forward(x[:, None, :], b, a, zi, threads or get_num_threads())


def _where(ndim: int, idx) -> str:
    names = {2: ("section",), 3: ("channel", "section"), 4: ("batch item", "channel", "section")}[ndim]
    return ", ".join(f"{n} {int(i)}" for n, i in zip(names, idx))


def _check_sos_data(sos, a0) -> None:
    """Finite ``sos`` and non-zero ``a0``, naming the section (and channel, batch item)."""
    arr = as_numpy(sos)
    bad = first_non_finite(arr)
    if bad is not None:
        raise ValueError(f"sos contains non-finite values (first at index {bad}, "
                         f"{_where(arr.ndim, bad[:-1])}); every coefficient must be finite")
    bad = np.argwhere(as_numpy(a0) == 0)
    if len(bad):
        raise ValueError(f"sos: {_where(arr.ndim, bad[0])} has a0 = 0; every row (b0, b1, b2, a0, a1, a2) "
                         f"needs a0 != 0")


def _check_sos_stable(sos, an) -> None:
    """Stable sections (poles inside the unit circle), naming the first unstable one."""
    bad = unstable_sections(an)
    if len(bad):
        idx = tuple(int(i) for i in bad[0])
        a1, a2 = (float(v) for v in np.asarray(as_numpy(an), dtype=np.float64)[idx])
        radius = float(np.max(np.abs(np.roots([1.0, a1, a2]))))
        more = f" (and {len(bad) - 1} more unstable section(s))" if len(bad) > 1 else ""
        raise ValueError(f"sos: {_where(sos.ndim, idx)} is unstable: the poles of z^2 + (a1/a0) z + a2/a0 with "
                         f"a1/a0={a1!r}, a2/a0={a2!r} have magnitude {radius:.6g} >= 1{more}; every section "
                         f"needs |a2/a0| < 1 and |a1/a0| < 1 + a2/a0")


def sosfilt(sos: Any, x: Any, axis: int = -1, zi: Any = None, *, num_threads: int | None = None) -> Any:
    """Filter ``x`` along ``axis`` by cascaded second-order sections, as ``scipy.signal.sosfilt``.

    Args:
        sos: the sections, rows ``(b0, b1, b2, a0, a1, a2)`` (normalised by ``a0``):
            ``[S, 6]``: one cascade for every signal (exactly scipy's; ``y`` has ``x``'s shape);
            ``[C, S, 6]``: a bank of ``C`` cascades, each filtering every signal (a channel axis of
            size ``C`` is inserted just before the time axis: ``x [..., T] -> y [..., C, T]``);
            ``[B, C, S, 6]``: a bank per batch item, for ``x [B, T]`` (or ``[T]``, filtered by
            every bank) along ``axis``; ``y`` is ``[B, C, T]`` with the time axis placed as in ``x``.
            float32 or float64 (float32 only with a float32 ``x``).
        x: the signal(s), float32 or float64, at least one sample along ``axis``.
        axis: the time axis of ``x``.
        zi: optional initial state, ``(S,) + y.shape`` with the time axis of ``y`` replaced by 2
            (scipy's layout), ``x``'s dtype; direct form II transposed ``(z1, z2)`` of each section.
        num_threads: kernel threads (default :func:`learnafe.ops.get_num_threads`).

    Returns:
        ``y``, or ``(y, zf)`` with ``zi`` given (``zf`` in ``zi``'s layout).  NumPy in, NumPy out;
        torch in, torch out, differentiable in ``x``, ``sos`` and ``zi`` (to any order).
    """
    is_torch, k = _check_arguments(sos, x, axis, zi)
    threads = op_threads(num_threads)
    xt = _movedim(x, k, -1, is_torch)
    lead, T = tuple(xt.shape[:-1]), int(xt.shape[-1])
    if T < 1:
        raise ValueError(f"x has no samples along axis {axis} (shape {tuple(x.shape)})")
    bn, an = _normalised(sos, x, zi, is_torch)
    lay = _layout(sos, x, xt, lead, T, k, axis, is_torch)
    zc = None
    if zi is not None:
        if tuple(zi.shape) != lay.zi_shape:
            raise ValueError(f"zi must have shape {lay.zi_shape} (sections, then y's shape with the time axis "
                             f"replaced by the 2 state values), got {tuple(zi.shape)}")
        zc = _movedim(_movedim(zi, tuple(d + 1 for d in lay.dst), lay.src, is_torch), 0, -2, is_torch)
        zc = zc.reshape(lay.N, lay.C, lay.S, 2)
    bc, ac = bn.reshape(lay.G, lay.C, lay.S, 3), an.reshape(lay.G, lay.C, lay.S, 2)
    y, zf = _cascade(lay.xc, bc, ac, zc, threads, is_torch)
    y = _movedim(y.reshape(lay.y_canon_shape), lay.src, lay.dst, is_torch)
    if zi is None:
        return y
    zf = _movedim(zf.reshape(lay.y_lead + lay.chan + (lay.S, 2)), -2, 0, is_torch)
    return y, _movedim(zf, lay.src, tuple(d + 1 for d in lay.dst), is_torch)


def _check_arguments(sos, x, axis, zi) -> tuple[bool, int]:
    """Kinds, dtypes and shapes of the arguments; ``(is_torch, time axis of x)``."""
    named = {"sos": sos, "x": x} if zi is None else {"sos": sos, "x": x, "zi": zi}
    is_torch = check_kind(named)
    xd, sd = dtype_name(x), dtype_name(sos)
    if sd not in (xd, "float64"):
        allowed = "float64" if xd == "float64" else f"{xd} or float64"
        raise TypeError(f"mismatched dtypes: x is {xd} but sos is {sd}; sos must be {allowed} "
                        f"(convert sos to float64)")
    if zi is not None and dtype_name(zi) != xd:
        raise TypeError(f"mismatched dtypes: x is {xd} but zi is {dtype_name(zi)}; convert zi to {xd}")
    if sos.ndim not in (2, 3, 4) or sos.shape[-1] != 6 or sos.shape[-2] < 1 or 0 in tuple(sos.shape):
        raise ValueError(f"sos must be [S, 6], [C, S, 6] or [B, C, S, 6] with rows (b0, b1, b2, a0, a1, a2) "
                         f"and S >= 1, got shape {tuple(sos.shape)}")
    if x.ndim < 1:
        raise ValueError("x must have at least one dimension (the time axis)")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -x.ndim <= int(axis) < x.ndim:
        raise ValueError(f"axis must be an integer in [{-x.ndim}, {x.ndim}) for x of shape {tuple(x.shape)}, "
                         f"got {axis!r}")
    return is_torch, int(axis) % x.ndim


def _normalised(sos, x, zi, is_torch: bool):
    """``(b / a0, (a1, a2) / a0)`` after the data checks (finite, a0 != 0, stable sections;
    skipped while torch traces a graph, where the operators check)."""
    tracing = False
    if is_torch:
        from learnafe._tracing import is_tracing

        tracing = is_tracing(sos, x, zi)
    a0 = sos[..., 3:4]
    if not tracing:
        _check_sos_data(sos, a0[..., 0])
    bn, an = sos[..., 0:3] / a0, sos[..., 4:6] / a0
    if not tracing:
        _check_sos_stable(sos, an)
        for name, v in (("x", x), ("zi", zi)):
            if v is not None:
                check_finite(name, v)
    return bn, an


@dataclass(frozen=True)
class _Layout:
    """Where the cascade's canonical ``x [N, T]``, ``y [N, C, T]`` and states come from and go to."""

    xc: Any                 # the signals [N, T]
    G: int                  # coefficient sets (1, or N for per-batch banks)
    C: int                  # channels
    S: int                  # sections
    N: int                  # signals
    y_lead: tuple           # y's leading shape
    chan: tuple             # () for sos [S, 6], else (C,)
    y_canon_shape: tuple    # y_lead + chan + (T,)
    src: tuple              # y's last axes ...
    dst: tuple              # ... and where they go
    zi_shape: tuple         # the zi shape sosfilt takes


def _layout(sos, x, xt, lead: tuple, T: int, k: int, axis, is_torch: bool) -> _Layout:
    S = int(sos.shape[-2])
    if sos.ndim == 4:
        G, C = int(sos.shape[0]), int(sos.shape[1])
        if len(lead) > 1 or (len(lead) == 1 and lead[0] != G):
            raise ValueError(f"x must be [B, T] with B = {G} (sos's batch size) or [T] along axis {axis} for "
                             f"sos [B, C, S, 6], got shape {tuple(x.shape)}")
        xc = xt.reshape(1, T) if not lead else xt
        if not lead:
            xc = xc.expand(G, T) if is_torch else np.broadcast_to(xc, (G, T))
        y_lead, N = (G,), G
    else:
        G, C = 1, (1 if sos.ndim == 2 else int(sos.shape[0]))
        N = math.prod(lead)
        xc = xt.reshape(N, T)
        y_lead = lead
    # y: the canonical [lead..., (C,) T] with its last axes (C and) T moved to where the time axis of x is
    chan = () if sos.ndim == 2 else (C,)
    p = 1 if sos.ndim == 4 and x.ndim == 1 else k
    src = tuple(range(-len(chan) - 1, 0))
    dst = tuple(range(p, p + len(chan) + 1))
    state = y_lead + chan + (2,)
    tail = len(src)
    zi_shape = (S,) + state[:-tail][:p] + state[-tail:] + state[:-tail][p:]
    return _Layout(xc, G, C, S, N, y_lead, chan, y_lead + chan + (T,), src, dst, zi_shape)
