"""The biquad filter-bank op and the fused envelope op, for NumPy arrays and torch tensors.

One job per module, each importing only the ones above it in this list:

* :mod:`~learnafe.ops.extension`: the compiled ``learnafe._core`` module, its instruction set and threads;
* :mod:`~learnafe.ops.buffers`: the bounded cache of large output buffers;
* :mod:`~learnafe.ops.checks`: the argument checks, with errors that name the argument and the fix;
* :mod:`~learnafe.ops.kernels`: the calls of the compiled kernels on NumPy buffers;
* :mod:`~learnafe.ops.operators`: the torch custom operators (``torch.ops.learnafe.*``; imports torch);
* :mod:`~learnafe.ops.api`: the public functions (the maths of the ops is written there);
* :mod:`~learnafe.ops.sosfilt`: ``sosfilt``, cascades of second-order sections (scipy's semantics) on the kernels;
* :mod:`~learnafe.ops.precision`: the float32 accuracy of section structures (the op's design measurement).

Importing this package does not import torch; the first call with torch tensors
registers the operators.
"""

from __future__ import annotations

from learnafe.ops.api import ArrayLike, biquad_filterbank, filterbank_envelope, gaussian_noise
from learnafe.ops.buffers import empty_output_cache, set_output_cache_limit
from learnafe.ops.checks import check_stable, envelope_alpha
from learnafe.ops.extension import get_num_threads, kernel_isa, set_num_threads
from learnafe.ops.sosfilt import sosfilt

__all__ = [
    "biquad_filterbank",
    "filterbank_envelope",
    "gaussian_noise",
    "sosfilt",
    "envelope_alpha",
    "set_num_threads",
    "get_num_threads",
    "kernel_isa",
    "check_stable",
    "set_output_cache_limit",
    "empty_output_cache",
    "ArrayLike",
]
