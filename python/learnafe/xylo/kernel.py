"""The calls of the compiled XyloAudio 3 kernels: integer signals in, integer outputs and overflow reports out.

The one place that calls ``learnafe._core.xylo_filterbank`` and
``learnafe._core.xylo_spike_features``, and the integer-signal check and the
overflow message they share; :class:`~learnafe.xylo.bank.XyloA3FilterBank`,
its torch operator (:mod:`learnafe.xylo.torch_ops`) and the fused spike
features (:mod:`learnafe.xylo.features`) call these functions.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from learnafe import _core
from learnafe.ops.buffers import output_cache
from learnafe.xylo.design import XyloChannel

__all__ = ["OVERFLOW_KINDS", "TABLE_FIELDS", "KERNEL_FIELDS", "XyloOverflowError", "as_int_signal",
           "channels_from_table", "kernel_columns", "filter_channels", "spike_features", "overflow_message"]

#: Overflow kinds the kernels report (0: none).
OVERFLOW_KINDS = {1: "input", 2: "AR state", 3: "output"}

#: The integer fields of a channel, in the order of :meth:`XyloA3FilterBank.table` rows.
TABLE_FIELDS = ("B_worst_case", "B_b", "B_af", "a1", "a2", "B_in", "B_a", "B_wf")


class XyloOverflowError(ValueError):
    """A value left its register range, where the reference simulator raises."""


def as_int_signal(x, name: str = "x") -> tuple[np.ndarray, bool]:
    """``x`` as a C-contiguous int64 ``[B, T]`` array and whether it was 1-D; ValueError naming ``name`` otherwise."""
    arr = np.asarray(x)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.bool_):
            raise ValueError(f"{name} must hold integers (14-bit audio samples), got booleans")
        raise ValueError(
            f"{name} must be an integer array (14-bit audio samples, |x| < 2^13), got dtype "
            f"{arr.dtype}; quantise float audio first with learnafe.xylo.quantize_audio(x)")
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape [T] or [B, T], got {arr.shape}")
    if arr.shape[-1] == 0:
        raise ValueError(f"{name} is empty (T = 0)")
    single = arr.ndim == 1
    if np.issubdtype(arr.dtype, np.unsignedinteger) and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} has values beyond int64")
    return np.ascontiguousarray(arr.reshape(1, -1) if single else arr, dtype=np.int64), single


#: The per-channel integer columns the kernels take, in their argument order.
KERNEL_FIELDS = ("a1", "a2", "B_b", "B_af", "B_wf", "B_in", "B_w", "B_out")


def channels_from_table(rows: Sequence[Sequence[int]]) -> list[XyloChannel]:
    """Channels from rows of :data:`TABLE_FIELDS` (``scale_out`` 1: it does not enter the integer filter)."""
    return [XyloChannel(*r[:5], 1.0, *r[5:]) for r in rows]


def kernel_columns(channels: Sequence[XyloChannel]) -> list[np.ndarray]:
    """The :data:`KERNEL_FIELDS` columns of ``channels`` as int64 arrays ``[C]``."""
    return [np.ascontiguousarray([getattr(ch, name) for ch in channels], dtype=np.int64)
            for name in KERNEL_FIELDS]


def filter_channels(channels: Sequence[XyloChannel], x: np.ndarray, prepend_reversed: bool, threads: int,
                    overflow: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(y int64 [B, C, T], kind int32 [B, C], where int64 [B, C])`` of int64 ``x [B, T]``.

    ``threads`` 0: the default.  ``overflow="raise"`` raises :class:`XyloOverflowError`
    where the reference raises; ``"report"`` returns the kinds.  Large outputs come from the
    bounded cache shared with the filter-bank op (``learnafe.ops.set_output_cache_limit``): a
    reused buffer saves the page faults and zeroing of fresh memory, about half of a call, and lets
    the kernel write an output of 8 MiB or more with streaming stores.
    """
    out = output_cache.empty((x.shape[0], len(channels), x.shape[1]), np.int64)
    # A buffer from the cache (a view, ``out.base`` set) has its pages mapped: large outputs
    # are then written with streaming stores; a fresh ``np.empty`` is written through the caches.
    y, kind, where = _core.xylo_filterbank(x, *kernel_columns(channels), bool(prepend_reversed), int(threads), out,
                                           reused_out=out.base is not None)
    if overflow == "raise" and kind.any():
        raise XyloOverflowError(overflow_message(channels, kind, where))
    return y, kind, where


def spike_features(channels: Sequence[XyloChannel], x: np.ndarray, spike_args: Sequence, prepend_reversed: bool,
                   threads: int, overflow: str) -> np.ndarray:
    """Spike counts int64 ``[B, F, C]`` of the fused filter bank and spike generator (``spike_args``:
    the generator's arguments in the binding's order); overflow as in :func:`filter_channels`."""
    counts, kind, where = _core.xylo_spike_features(x, *kernel_columns(channels), *spike_args,
                                                    bool(prepend_reversed), int(threads))
    if overflow == "raise" and kind.any():
        raise XyloOverflowError(overflow_message(channels, kind, where))
    return counts


def overflow_message(channels: Sequence[XyloChannel], kind: np.ndarray, where: np.ndarray) -> str:
    """The message of the first overflow in ``kind``/``where`` (``[B, C]``), with the fix."""
    b, c = map(int, np.argwhere(kind)[0])
    k = int(kind[b, c])
    ch = channels[c]
    bits = {1: ch.B_in, 2: ch.B_w, 3: ch.B_out}[k]
    n_bad = int((kind != 0).sum())
    hint = ("scale the input down (quantize_audio(x, scale=...))" if k == 1 else
            "raise B_worst_case of the channel or scale the input down")
    return (f"{OVERFLOW_KINDS[k]} overflow in signal {b}, channel {c}, sample "
            f"{int(where[b, c])}: |value| >= 2^{bits - 1} ({n_bad} signal-channel pair(s) "
            f"overflow); {hint}, or pass overflow='report'")
