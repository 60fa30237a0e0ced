"""The public functions of the biquad filter-bank op and the fused envelope op (NumPy and PyTorch).

One mono input per batch item is filtered by ``C`` second-order sections, each
with its own coefficients ``b = (b0, b1, b2)`` and ``a = (a1, a2)`` (``a0 = 1``)::

    v_c[n] = x[n] - a1_c v_c[n-1] - a2_c v_c[n-2]
    y_c[n] = b0_c v_c[n] + b1_c v_c[n-1] + b2_c v_c[n-2]

(direct form II: all-pole part ``v = x / A_c(z)``, then FIR part ``y = B_c(z) v``).

Adjoint (the backward pass; ``gy = dL/dy``), one reverse-time recursion per
channel, with ``lambda_c = dL/dv_c``, which is also channel c's share of ``dL/dx``::

    gv_c[m]     = b0_c gy_c[m] + b1_c gy_c[m+1] + b2_c gy_c[m+2]
    lambda_c[m] = gv_c[m] - a1_c lambda_c[m+1] - a2_c lambda_c[m+2]     (m = T-1 .. 0)
    dL/db_k,c   =  sum_n gy_c[n] v_c[n-k]        (k = 0, 1, 2)
    dL/da_k,c   = -sum_n lambda_c[n] v_c[n-k]    (k = 1, 2)
    dL/dx[n]    =  sum_c lambda_c[n]

``v`` is recomputed from checkpoints rather than stored.  Where each piece is:

* forward recursion: C++ ``learnafe::biquad::forward`` (``cpp/biquad_plain_kernels.h``,
  bound as ``_core.biquad_forward_f32/_f64``), called by :func:`biquad_filterbank`;
* adjoint recursion: C++ ``learnafe::biquad::backward`` (``Backward`` in
  ``cpp/biquad_plain_kernels.h``, ``Adjoint::step`` in ``cpp/biquad_recursion.h``, bound as ``_core.biquad_backward_f32/_f64``),
  called by the backward operator ``learnafe::biquad_filterbank_backward``
  (:mod:`learnafe.ops.operators`);
* fused envelope forward / adjoint: C++ ``envelope_forward`` / ``envelope_backward``
  (``_core.envelope_forward_*`` / ``_core.envelope_backward_*``), called by
  :func:`filterbank_envelope`.

The kernels (C++/OpenMP,
``learnafe._core``) keep the recursion, the state and all gradient
accumulators in float64 whatever the signal dtype.  Signals (``x``, ``zi``,
outputs) are float32 or float64; the coefficients ``b``, ``a`` are the
signal's dtype or float64 (float64 coefficients with a float32 signal keep
the error near float32 rounding of the output even for a 100 Hz band at
48.8 kHz; see ``docs/ops.md``).  SIMD runs across channels, OpenMP across batch items and
channel blocks, and results are bitwise identical for any thread count.

State: the state of a section is its delay line ``(v[n-1], v[n-2])``.  ``zi``
is ``(v[-1], v[-2])`` before the first sample, the returned final state
``(v[T-1], v[T-2])``; feeding the final state of one chunk as ``zi`` of the
next gives exactly the result of one call on the whole signal.

Envelope (:func:`filterbank_envelope`), per channel, with zero initial state::

    r[n] = |y[n]|  (rectify="abs")   or   y[n]**2  (rectify="square")
    e[n] = e[n-1] + alpha * (r[n] - e[n-1]),  alpha = 1 - exp(-1 / (tau * sample_rate))
    frames F = T // hop;  frame f = e[(f + 1) * hop - 1]

Samples after ``F * hop`` do not affect the output (their gradient is zero).
The fused op never stores the ``[B, C, T]`` signal: its backward pass
recomputes the filter state frame by frame from checkpoints at frame
boundaries.

NumPy in, NumPy out (torch is not imported).  Torch tensors go through the
PyTorch custom operators of :mod:`learnafe.ops.operators` (``torch.ops.learnafe.*``),
so ``torch.compile(fullgraph=True)``, ``torch.export`` and
``torch.library.opcheck`` work; for tensors the data-dependent checks (finite
values, stable sections) run inside the operators (docs/ops.md).

Input-referred noise (``noise_std``, ``seed`` of :func:`filterbank_envelope`):
channel ``c`` filters ``x[b, t] + noise_std[c] * n[b, c, t]`` (in float64),
where ``n`` is standard normal noise drawn inside the kernel from a
counter-based generator (Philox4x32-7 + Box-Muller) keyed by
``(seed, b, c, t)``; the backward pass regenerates it instead of storing it.
``noise_std`` may also be ``[B, C]`` (a row per batch item), and
``noise_batch`` keys item ``b`` by ``b % noise_batch`` (a stack of chips x the
same clips draws, for every chip, the noise of the clips' own call).
:func:`gaussian_noise` returns exactly that ``n``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

import numpy as np

if TYPE_CHECKING:
    import torch

from learnafe.ops import kernels
from learnafe.ops.checks import (
    as_numpy,
    check_bank,
    check_bank_data,
    check_dtypes,
    check_envelope_args,
    check_finite,
    check_kind,
    check_noise_batch,
    check_noise_std,
    check_out,
    check_seed,
    envelope_alpha,
)
from learnafe.ops.extension import core, get_num_threads, op_threads

__all__ = ["biquad_filterbank", "filterbank_envelope", "gaussian_noise", "ArrayLike"]

#: NumPy arrays or torch tensors (all arguments of one call the same kind).
ArrayLike = Union[np.ndarray, "torch.Tensor"]


# -------------------------------------------------------- filter bank op ---

def biquad_filterbank(x: ArrayLike, b: ArrayLike, a: ArrayLike, *, zi: ArrayLike | None = None,
                      return_state: bool = False, num_threads: int | None = None,
                      out: ArrayLike | None = None) -> Any:
    """Filter each signal of ``x`` by every section of the bank.

    Args:
        x: ``[B, T]`` or ``[T]`` signal(s), float32 or float64.
        b: ``[C, 3]`` numerator coefficients (b0, b1, b2) per channel, shared
            by the batch, or ``[B, C, 3]``: a bank per batch item (per-example
            coefficients, with a 2-D ``x``).
        a: ``[C, 2]`` denominator coefficients (a1, a2) per channel; a0 = 1
            (``[B, C, 2]`` with a per-example ``b``).
            ``b`` and ``a`` share one dtype: ``x``'s, or float64 (recommended
            with a float32 ``x``: rounding ``a`` to float32 alone detunes a
            narrow 100 Hz band at 48.8 kHz by ~1e-3 of the output peak).
        zi: optional initial state ``[B, C, 2]`` (``[C, 2]`` for 1-D ``x``):
            ``(v[-1], v[-2])`` of each section's delay line; zeros if omitted.
        return_state: also return the final state (same layout as ``zi``).
        num_threads: kernel threads (default :func:`get_num_threads`).
        out: optional preallocated output (same kind and dtype as ``x``,
            C-contiguous, shape of ``y``), written in place and returned;
            saves allocating (and page-faulting) a fresh ``[B, C, T]`` array
            when streaming.  Not with autograd.

    Returns:
        ``y`` ``[B, C, T]`` (``[C, T]`` for 1-D ``x``), and the final state if
        ``return_state``.  NumPy in, NumPy out; torch in, torch out, with
        gradients for ``x``, ``b``, ``a`` and ``zi`` (also through the
        returned final state).  Gradients of shared coefficients are summed
        over the batch; those of per-example coefficients are per example
        (``[B, C, 3]``, ``[B, C, 2]``).  Per-example coefficients equal to the
        shared ones give bitwise the shared result.
    """
    is_torch, C, ndim = check_bank(x, b, a)
    threads = op_threads(num_threads)
    B = 1 if ndim == 1 else x.shape[0]
    state_shape = (C, 2) if ndim == 1 else (B, C, 2)
    if zi is not None:
        check_kind({"x": x, "zi": zi})
        check_dtypes(x, b, a, zi)
        if tuple(zi.shape) != state_shape:
            raise ValueError(f"zi must have shape {state_shape} (channels x (v[-1], v[-2])"
                             f"{'' if ndim == 1 else ' per batch item'}), got {tuple(zi.shape)}")
        if not is_torch:
            check_finite("zi", zi)
    x_batch = x.reshape(1, -1) if ndim == 1 else x
    zi_batch = None if zi is None else zi.reshape(B, C, 2)
    if out is not None:
        if is_torch:  # eager only (out= writes in place): check the data here
            check_bank_data(x, b, a)
            if zi is not None:
                check_finite("zi", zi)
        B, T = int(B), int(x.shape[-1])
        y_shape = (C, T) if ndim == 1 else (B, C, T)
        check_out(out, y_shape, x, is_torch, b, a, zi)
        y, zf = kernels.biquad_forward(as_numpy(x_batch), b, a, None if zi_batch is None else as_numpy(zi_batch),
                               threads or get_num_threads(), y=as_numpy(out).reshape(B, C, T))
        if is_torch:
            import torch

            zf = torch.from_numpy(zf)
        y = out
        if ndim == 1:
            zf = zf[0]
        return (y, zf) if return_state else y
    if is_torch:
        import torch

        from learnafe.ops import operators  # noqa: F401 - registers torch.ops.learnafe

        # The forward keeps its checkpoints for the backward when a gradient will be needed.
        save = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, b, a, zi))
        y, zf, _ = torch.ops.learnafe.biquad_filterbank(x_batch, b, a, zi_batch, threads, save)
    else:
        y, zf = kernels.biquad_forward(x_batch, b, a, zi_batch, threads or get_num_threads())
    if ndim == 1:
        y = y[0]
        zf = zf[0]
    return (y, zf) if return_state else y


# ----------------------------------------------------------- envelope op ---

def _check_noise_args(x: Any, C: int, is_torch: bool, noise_std: Any, seed: int | None,
                      noise_batch: int | None) -> tuple[int | None, int]:
    """The checked seed and noise batch of :func:`filterbank_envelope`; the data checks of a
    torch ``noise_std`` run inside the operator (as those of x, b, a)."""
    if seed is not None:
        seed = check_seed(seed)
    nb = check_noise_batch(noise_batch, x.shape[0] if x.ndim == 2 else 1)
    if noise_std is not None:
        check_noise_std(noise_std, x, C, is_torch, data=not is_torch)
        if seed is None and not is_torch:
            raise ValueError("seed is required with noise_std on NumPy arrays (an integer in "
                             "[0, 2**64)); with torch tensors it is drawn from torch's generator")
    return seed, nb


def filterbank_envelope(x: ArrayLike, b: ArrayLike, a: ArrayLike, *, hop: int, tau: float,
                        sample_rate: float, rectify: str = "abs", noise_std: ArrayLike | None = None,
                        seed: int | None = None, num_threads: int | None = None,
                        noise_batch: int | None = None) -> Any:
    """Fused filter bank -> rectify -> first-order low-pass -> decimation.

    Equals ``biquad_filterbank`` followed by ``abs`` (or square), the low-pass
    ``e[n] = e[n-1] + alpha (r[n] - e[n-1])`` with
    ``alpha = 1 - exp(-1 / (tau * sample_rate))`` and zero initial state, and
    taking ``e[(f + 1) * hop - 1]`` for frames ``f = 0 .. T // hop - 1``, but
    in one pass and without storing the ``[B, C, T]`` signal (also in the
    backward pass, which recomputes the filter state frame by frame).

    Args:
        x: ``[B, T]`` or ``[T]``; b ``[C, 3]``; a ``[C, 2]``, or per example
            ``[B, C, 3]``, ``[B, C, 2]`` (as in :func:`biquad_filterbank`).
        hop: frame hop in samples (``1 <= hop <= T``).
        tau: low-pass time constant in seconds.
        sample_rate: sample rate of ``x`` in Hz.
        rectify: ``"abs"`` or ``"square"``.
        noise_std: optional ``[C]`` input-referred noise standard deviation
            per channel (same kind as ``x``, float32 or float64, finite,
            ``>= 0``): channel ``c`` filters ``x[b, t] + noise_std[c] *
            n[b, c, t]`` (computed in float64) with ``n = gaussian_noise(seed,
            B, C, T)``, generated inside the kernel (nothing of size
            ``[B, C, T]`` is stored; the backward pass regenerates it).  Or
            ``[B, C]`` for ``x [B, T]``: batch item ``b`` uses its row
            ``noise_std[b, c]`` (the noise values are the same as with a
            ``[C]`` std: item ``b`` of a call with rows equals item ``b`` of a
            call with that row as ``[C]``).  With torch, ``noise_std`` may
            require grad (``[C]``: ``d/dstd[c] = sum_{b,t} dL/d(input of
            channel c)[b, t] * n[b, c, t]``; ``[B, C]``: the sum over ``t``
            alone, per item).  ``None``: no noise.
        seed: integer in ``[0, 2**64)`` keying the noise.  ``None`` with
            torch tensors: drawn from torch's default generator (two 32-bit
            words of ``torch.randint``), so ``torch.manual_seed`` makes a run
            reproducible; with NumPy arrays a seed is required when
            ``noise_std`` is given.  Ignored (but checked) without noise.
        num_threads: kernel threads (default :func:`get_num_threads`).
        noise_batch: ``None`` (batch item ``b`` draws the noise keyed by
            ``(seed, b, c, t)``) or a divisor of ``B``: item ``b`` draws the
            noise of item ``b % noise_batch``.  A batch laid out as K groups of
            the same ``noise_batch`` clips (K chips x clips, with per-example
            ``b``, ``a`` and ``noise_std``) then gives group ``k`` exactly the
            noise a call on the clips alone draws: the stacked call equals K
            calls with the same seed.  Ignored (but checked) without noise.

    Returns:
        ``[B, C, T // hop]`` (``[C, T // hop]`` for 1-D ``x``); torch in, torch
        out with gradients for ``x``, ``b``, ``a`` and ``noise_std``.  The
        result does not depend on the thread count or the instruction set.
    """
    is_torch, C, ndim = check_bank(x, b, a)
    threads = op_threads(num_threads)
    check_envelope_args(x.shape[-1], hop, rectify)
    alpha = envelope_alpha(tau, sample_rate)
    seed, nb = _check_noise_args(x, C, is_torch, noise_std, seed, noise_batch)
    x_batch = x.reshape(1, -1) if ndim == 1 else x
    if is_torch:
        import torch

        from learnafe.ops import operators  # registers torch.ops.learnafe

        # seed None: the operator draws it from torch's default generator when it runs
        # (so eager and compiled graphs consume the generator alike).
        save = torch.is_grad_enabled() and any(
            t is not None and t.requires_grad for t in (x, b, a, noise_std))
        out, _, _ = torch.ops.learnafe.filterbank_envelope(
            x_batch, b, a, noise_std, None if seed is None else operators.seed_to_op(seed), int(hop), alpha,
            rectify, save, threads, nb)
    else:
        noise = None if noise_std is None else kernels.EnvelopeNoise(noise_std, 0 if seed is None else seed, nb)
        out = kernels.envelope_forward(x_batch, b, a, int(hop), alpha, rectify, threads or get_num_threads(),
                                       noise)
    return out[0] if ndim == 1 else out


def gaussian_noise(seed: int, B: int, C: int, T: int, *, num_threads: int | None = None) -> np.ndarray:
    """The standard normal noise ``n[b, c, t]`` that :func:`filterbank_envelope` adds for ``seed``.

    Float64 NumPy array ``[B, C, T]``, bitwise the values the kernel uses:
    with ``j = t // 4``, Philox4x32-7 of the counter
    ``(j mod 2**32, c, b, j // 2**32)`` and the key ``(seed mod 2**32,
    seed // 2**32)`` gives four 32-bit words ``w``; ``u0 = float32(((w0 >> 1) | 1)
    / 2**31)`` in ``(0, 1]``, ``u1 = (w1 >> 8) / 2**24`` in ``[0, 1)``; Box-Muller
    in float32 turns ``(u0, u1)`` into samples ``4j, 4j+1`` (``sqrt(-2 ln u0)``
    times ``cos``, ``sin`` of ``2 pi u1``) and ``(w2, w3)`` likewise into
    ``4j+2, 4j+3`` (docs/ops.md states the exact definition and its accuracy).
    """
    seed = check_seed(seed)
    dims = []
    for name, v in (("B", B), ("C", C), ("T", T)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
        dims.append(int(v))
    out = np.empty(dims, dtype=np.float64)
    core.gaussian_noise(seed, out, op_threads(num_threads) or get_num_threads())
    return out
