"""The calls of the compiled kernels on NumPy buffers.

The one place that calls the ``_core`` bindings of the filter bank and the
fused envelope: the NumPy API (:mod:`learnafe.ops.api`) and the torch operators
(:mod:`learnafe.ops.operators`) both go through these functions.  ``x`` is a
``[B, T]`` array; ``b``, ``a`` are arrays or tensors, ``[C, 3]``, ``[C, 2]`` (one bank
for the batch) or ``[B, C, 3]``, ``[B, C, 2]`` (a bank per batch item), passed to the
kernels as float64; coefficient gradients have the shape of ``b``, ``a``; ``threads`` is a positive thread count; ``checkpoints`` a float64
buffer of the size the ``*_checkpoint_size`` functions give (or None).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from learnafe.ops import buffers
from learnafe.ops.checks import as_numpy
from learnafe.ops.extension import core as _core

__all__ = ["coefficients64", "biquad_checkpoint_size", "biquad_forward", "biquad_backward",
           "envelope_checkpoint_size", "envelope_forward", "EnvelopeNoise", "EnvelopeBackwardInputs", "envelope_backward",
           "section_forward",
           "cascade_checkpoint_size", "cascade_forward", "cascade_backward"]


def coefficients64(v: Any) -> np.ndarray:
    """Coefficients as the kernels take them: C-contiguous float64 (exact for float32 input)."""
    return np.ascontiguousarray(as_numpy(v), dtype=np.float64)


def _suffix(dtype_name: str) -> str:
    return "f32" if dtype_name == "float32" else "f64"


def _bank_gradients(x: np.ndarray, b: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empty gradient buffers of a backward kernel: ``x [B, T]`` (x's dtype) and float64 ones of the
    coefficients' shape (``[C, 3]``, ``[C, 2]`` or per example ``[B, C, 3]``, ``[B, C, 2]``)."""
    lead = tuple(b.shape[:-1])
    return np.empty(x.shape, dtype=x.dtype), np.empty(lead + (3,)), np.empty(lead + (2,))


def biquad_checkpoint_size(B: Any, T: Any, C: int) -> Any:
    """float64 values of the filter-bank checkpoints (the state every ``kTimeBlock`` = 128
    samples) that the forward kernel can keep for the backward one (``B``, ``T`` may be symbolic)."""
    return B * ((T + 127) // 128) * _core.biquad_checkpoint_size(1, 128, C)


def biquad_forward(x, b, a, zi, threads, y=None, checkpoints=None):
    """``(y [B, C, T], zf [B, C, 2])``; ``y`` from the output cache unless given; ``checkpoints`` (float64,
    :func:`biquad_checkpoint_size` values) receives the checkpoints for the backward pass."""
    x = np.ascontiguousarray(x)
    B, T = x.shape
    C = b.shape[-2]
    if y is None:
        y = buffers.output_cache.empty((B, C, T), x.dtype)
    zf = np.empty((B, C, 2), dtype=x.dtype)
    fn = getattr(_core, "biquad_forward_" + _suffix(str(x.dtype)))
    fn(x, coefficients64(b), coefficients64(a), None if zi is None else np.ascontiguousarray(zi), y, zf, threads,
       checkpoints)
    return y, zf


def biquad_backward(x, b, a, zi, grad_y, grad_zf, threads, checkpoints=None):
    """Gradients ``(x [B, T], b float64, a float64 (the shapes of b, a), zi [B, C, 2])`` of the filter bank
    (the ``zi`` gradient is that of a zero initial state when ``zi`` is None); ``checkpoints``: the
    forward's checkpoints, which spare the backward one recursion over ``x``."""
    x = np.ascontiguousarray(x)
    C = b.shape[-2]
    grad_x, grad_b, grad_a = _bank_gradients(x, b)
    grad_zi = np.empty((x.shape[0], C, 2), dtype=x.dtype)
    fn = getattr(_core, "biquad_backward_" + _suffix(str(x.dtype)))
    fn(x, coefficients64(b), coefficients64(a), None if zi is None else np.ascontiguousarray(zi),
       np.ascontiguousarray(grad_y, dtype=x.dtype), np.ascontiguousarray(grad_zf, dtype=x.dtype),
       grad_x, grad_b, grad_a, grad_zi, threads, checkpoints)
    return grad_x, grad_b, grad_a, grad_zi


def envelope_checkpoint_size(C: int, T: Any, hop: int) -> Any:
    """Doubles per batch item of the envelope checkpoints (``T`` may be symbolic)."""
    return (T // hop) * _core.envelope_checkpoint_size(C, hop, hop)


@dataclass(frozen=True)
class EnvelopeNoise:
    """The input-referred noise of an envelope forward call: ``std`` ``[C]`` or ``[B, C]``, the
    ``seed`` keying it, and ``batch`` (0: ``B``), which keys item ``b``'s noise by ``b % batch``."""

    std: Any
    seed: int = 0
    batch: int = 0


def envelope_forward(x, b, a, hop, alpha, rectify, threads, noise: EnvelopeNoise | None = None,
                     checkpoints=None):
    """Envelope frames ``[B, C, T // hop]``; ``checkpoints`` (float64 ``[B, K]``) receives the
    checkpoints; ``noise`` None: no noise."""
    x = np.ascontiguousarray(x)
    out = np.empty((x.shape[0], b.shape[-2], x.shape[1] // hop), dtype=x.dtype)
    fn = getattr(_core, "envelope_forward_" + _suffix(str(x.dtype)))
    fn(x, coefficients64(b), coefficients64(a), hop, alpha, rectify, out, threads,
       noise_std=None if noise is None else coefficients64(noise.std), seed=0 if noise is None else noise.seed,
       ck=checkpoints, noise_batch=0 if noise is None else int(noise.batch))
    return out


@dataclass(frozen=True)
class EnvelopeBackwardInputs:
    """The buffers the fused envelope's adjoint reads: the forward's ``x [B, T]``, ``b``, ``a``,
    ``noise_std [C]`` or ``[B, C]`` (None: no noise), the ``seed`` and ``noise_batch`` its noise was
    drawn with, the
    ``checkpoints`` it saved (None: the adjoint recomputes the states) and the output gradient
    ``grad_out [B, C, T // hop]``."""

    x: Any
    b: Any
    a: Any
    grad_out: Any
    noise_std: Any = None
    seed: int = 0
    checkpoints: Any = None
    noise_batch: int = 0


def envelope_backward(inputs: EnvelopeBackwardInputs, hop: int, alpha: float, rectify: str,
                      threads: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients ``(x [B, T], b, a (float64, the shapes of b, a), noise_std (its shape) or None)``."""
    x = np.ascontiguousarray(inputs.x)
    b, noise_std = inputs.b, inputs.noise_std
    grad_x, grad_b, grad_a = _bank_gradients(x, b)
    grad_std = None if noise_std is None else np.empty(tuple(noise_std.shape))
    fn = getattr(_core, "envelope_backward_" + _suffix(str(x.dtype)))
    fn(x, coefficients64(b), coefficients64(inputs.a), hop, alpha, rectify,
       np.ascontiguousarray(inputs.grad_out, dtype=x.dtype), grad_x, grad_b, grad_a, threads,
       noise_std=None if noise_std is None else coefficients64(noise_std), seed=inputs.seed, gstd=grad_std,
       ck=inputs.checkpoints, noise_batch=int(inputs.noise_batch))
    return grad_x, grad_b, grad_a, grad_std


def section_forward(u, b, a, threads):
    """One second-order section per row from a zero state: ``y [B, C, T]`` (``u``'s dtype) with
    ``y[i, c] = (B_gc / A_gc) u[i, c or 0]`` for ``u [B, Cu, T]`` (``Cu`` 1 or ``C``), ``b [G, C, 3]``,
    ``a [G, C, 2]`` (``G`` 1: one set for every row; ``G = B``: a set per batch item).

    Built on the filter-bank kernel: a shared input (``Cu = 1``) runs as one bank of ``C`` channels
    per coefficient set; an input per channel runs one single-channel call per channel and set,
    the calls spread over ``threads`` Python threads (the kernel releases the GIL), each call
    single-threaded.  The result does not depend on ``threads``.
    """
    u = np.ascontiguousarray(u)
    b, a = coefficients64(b), coefficients64(a)
    B, Cu, T = u.shape
    G, C = b.shape[:2]
    y = np.empty((B, C, T), dtype=u.dtype)
    rows = [slice(None)] if G == 1 else [slice(g, g + 1) for g in range(B)]
    if Cu == 1:
        for g, r in enumerate(rows):
            biquad_forward(u[r, 0], b[g], a[g], None, threads, y=y[r])
        return y

    def one(job: tuple[int, int]) -> None:
        g, c = job
        r = rows[g]
        yc, _ = biquad_forward(u[r, c], b[g, c:c + 1], a[g, c:c + 1], None, 1)
        y[r, c] = yc[:, 0]

    jobs = [(g, c) for g in range(len(rows)) for c in range(C)]
    if threads <= 1 or len(jobs) == 1:
        for job in jobs:
            one(job)
    else:
        with ThreadPoolExecutor(max_workers=min(threads, len(jobs))) as pool:
            list(pool.map(one, jobs))
    return y


def cascade_checkpoint_size(B: Any, C: int, T: Any, S: int) -> Any:
    """float64 values of the block checkpoints of :func:`cascade_forward` (``B`` and ``T`` may be
    symbolic sizes): the state of every section at every 64-sample block start of every unit of
    W lanes (W 4 for up to 4 channels, else 8; ``cpp/sosfilt_lanes.h``); the same as
    ``_core.sosfilt_checkpoint_size``."""
    W = 4 if C <= 4 else 8
    return B * ((C + W - 1) // W) * ((T + 63) // 64) * S * 2 * W


def cascade_forward(u, b, a, zi, threads, ck=None):
    """Cascades of second-order sections, all sections fused per sample (``cpp/sosfilt_cascade.h``):
    ``u [B, Cu, T]`` (``Cu`` 1 or ``C``; float32 or float64), ``b [G, C, S, 3]``, ``a [G, C, S, 2]``
    (normalised; ``G`` 1 or ``B``), ``zi [B, C, S, 2]`` (u's dtype, direct form II transposed
    state) or None -> ``(y [B, C, T], zf [B, C, S, 2])`` in u's dtype.  ``ck``: None, or a float64
    array of :func:`cascade_checkpoint_size` values that receives the block checkpoints
    :func:`cascade_backward` can take (then it does not run the forward again)."""
    u = np.ascontiguousarray(u)
    b, a = coefficients64(b), coefficients64(a)
    B, T = u.shape[0], u.shape[2]
    G, C, S = b.shape[:3]
    y = np.empty((B, C, T), dtype=u.dtype)
    zf = np.empty((B, C, S, 2), dtype=u.dtype)
    zi = None if zi is None else np.ascontiguousarray(zi, dtype=u.dtype)
    getattr(_core, "sosfilt_forward_" + _suffix(str(u.dtype)))(u, b, a, zi, y, zf, threads, ck)
    return y, zf


def cascade_backward(u, b, a, zi, grad_y, grad_zf, threads, ck=None):
    """The adjoint of :func:`cascade_forward`: ``(grad_u [B, Cu, T], grad_b, grad_a [G, C, S, *]
    float64, grad_zi [B, C, S, 2] or None)`` for ``grad_y [B, C, T]`` and ``grad_zf`` (or None);
    ``ck`` the block checkpoints the forward kept, or None (bitwise the same result)."""
    u = np.ascontiguousarray(u)
    b, a = coefficients64(b), coefficients64(a)
    zi = None if zi is None else np.ascontiguousarray(zi, dtype=u.dtype)
    gy = np.ascontiguousarray(grad_y, dtype=u.dtype)
    gzf = None if grad_zf is None else np.ascontiguousarray(grad_zf, dtype=u.dtype)
    gu = np.empty(u.shape, dtype=u.dtype)
    gb, ga = np.empty(b.shape), np.empty(a.shape)
    gzi = None if zi is None else np.empty(zi.shape, dtype=u.dtype)
    getattr(_core, "sosfilt_backward_" + _suffix(str(u.dtype)))(u, b, a, zi, gy, gzf, gu, gb, ga, gzi, threads,
                                                                 ck)
    return gu, gb, ga, gzi
