"""The XyloAudio 3 filter bank as a PyTorch custom operator (``torch.ops.learnafe.xylo_filterbank``).

Importing this module registers::

    learnafe::xylo_filterbank(Tensor x, Tensor table, bool prepend_reversed, bool raise_overflow,
                              int num_threads) -> (Tensor y, Tensor kind, Tensor where)

``x`` int64 ``[B, T]`` (14-bit samples); ``table`` int64 ``[C, 8]``, one row per
channel: ``(B_worst_case, B_b, B_af, a1, a2, B_in, B_a, B_wf)``
(:data:`TABLE_FIELDS`, :meth:`XyloA3FilterBank.table`); ``y`` int64
``[B, C, T]``, ``kind`` int32 and ``where`` int64 ``[B, C]`` as
:meth:`XyloA3FilterBank.filter` with ``return_overflow``.  With
``raise_overflow`` the operator raises :class:`XyloOverflowError` with the
message of :meth:`XyloA3FilterBank.filter` (inside the CPU implementation, so
also in compiled and exported graphs).  ``num_threads`` 0: the default.

Integer in, integer out: the operator has no gradient.  The CPU
implementation is :func:`learnafe.xylo.kernel.filter_channels` on the tensors' buffers; the
fake implementation gives the shapes and dtypes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from learnafe.xylo.kernel import TABLE_FIELDS, channels_from_table, filter_channels

__all__ = ["xylo_filterbank", "OPS"]

OPS = ("xylo_filterbank",)


def _check(x: Tensor, table: Tensor, num_threads: int) -> None:
    if x.dtype != torch.int64 or x.dim() != 2:
        raise ValueError(f"x must be an int64 tensor [B, T] of 14-bit samples, got {x.dtype} "
                         f"{tuple(x.shape)}")
    if table.dtype != torch.int64 or table.dim() != 2 or table.shape[1] != len(TABLE_FIELDS) \
            or not 1 <= table.shape[0] <= 16:
        raise ValueError(f"table must be an int64 tensor [C, {len(TABLE_FIELDS)}] (rows "
                         f"{TABLE_FIELDS}, 1 to 16 channels; XyloA3FilterBank.table()), got "
                         f"{table.dtype} {tuple(table.shape)}")
    if num_threads < 0:
        raise ValueError(f"num_threads must be >= 0 (0: the default), got {num_threads!r}")


@torch.library.custom_op("learnafe::xylo_filterbank", mutates_args=(), device_types="cpu")
def xylo_filterbank(x: Tensor, table: Tensor, prepend_reversed: bool, raise_overflow: bool,
                    num_threads: int) -> tuple[Tensor, Tensor, Tensor]:
    """``(y int64 [B, C, T], kind int32 [B, C], where int64 [B, C])``: see the module doc."""
    _check(x, table, num_threads)
    y, kind, where = filter_channels(channels_from_table(table.tolist()), x.detach().contiguous().numpy(),
                                     prepend_reversed, num_threads, "raise" if raise_overflow else "report")
    return torch.from_numpy(y), torch.from_numpy(kind), torch.from_numpy(where)


@xylo_filterbank.register_fake
def _xylo_filterbank_fake(x, table, prepend_reversed, raise_overflow, num_threads):
    _check(x, table, num_threads)
    B, T = x.shape
    C = table.shape[0]
    return (x.new_empty((B, C, T), dtype=torch.int64), x.new_empty((B, C), dtype=torch.int32),
            x.new_empty((B, C), dtype=torch.int64))
