"""The biquad filter-bank op and the fused envelope op (NumPy and PyTorch).

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

* forward recursion: C++ ``learnafe::biquad::forward`` (``cpp/biquad_filterbank.cpp``,
  bound as ``_core.biquad_forward_f32/_f64``), called by :func:`biquad_filterbank`;
* adjoint recursion: C++ ``learnafe::biquad::backward`` (the ``Adjoint::step`` of
  ``cpp/biquad_filterbank.cpp``, bound as ``_core.biquad_backward_f32/_f64``),
  called by the backward operator ``learnafe::biquad_filterbank_backward``
  (:mod:`learnafe.torch_ops`);
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
PyTorch custom operators of :mod:`learnafe.torch_ops` (``torch.ops.learnafe.*``),
so ``torch.compile(fullgraph=True)``, ``torch.export`` and
``torch.library.opcheck`` work; for tensors the data-dependent checks (finite
values, stable sections) run inside the operators (docs/ops.md).

Input-referred noise (``noise_std``, ``seed`` of :func:`filterbank_envelope`):
channel ``c`` filters ``x[b, t] + noise_std[c] * n[b, c, t]`` (in float64),
where ``n`` is standard normal noise drawn inside the kernel from a
counter-based generator (Philox4x32-10 + Box-Muller) keyed by
``(seed, b, c, t)``; the backward pass regenerates it instead of storing it.
:func:`gaussian_noise` returns exactly that ``n``.
"""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING, Any, Union

import numpy as np

if TYPE_CHECKING:
    import torch

from learnafe import _core
# The bounded cache of large outputs is shared with the XyloAudio 3 bank.
from learnafe._buffers import empty_output_cache, set_output_cache_limit
from learnafe._buffers import output_cache as _output_cache

__all__ = [
    "biquad_filterbank",
    "filterbank_envelope",
    "gaussian_noise",
    "envelope_alpha",
    "set_num_threads",
    "get_num_threads",
    "kernel_isa",
    "check_stable",
    "set_output_cache_limit",
    "empty_output_cache",
]

#: NumPy arrays or torch tensors (all arguments of one call the same kind).
ArrayLike = Union[np.ndarray, "torch.Tensor"]

_RECTIFY = ("abs", "square")
_num_threads: int | None = None


# --------------------------------------------------------------- threads ---

def set_num_threads(n: int | None) -> None:
    """Set the number of threads of the kernels; ``None`` restores the default.

    The default follows ``torch.get_num_threads()`` when torch is imported,
    otherwise OpenMP's default (``OMP_NUM_THREADS`` or the number of cores).
    Results do not depend on the thread count.
    """
    global _num_threads
    if n is None:
        _num_threads = None
        return
    _num_threads = _check_threads(n, "n")


def get_num_threads() -> int:
    """Number of threads the kernels use when ``num_threads`` is not given."""
    if _num_threads is not None:
        return _num_threads
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_num_threads"):
        return int(torch.get_num_threads())
    return int(_core.omp_default_threads())


def kernel_isa() -> str:
    """Instruction set the kernels dispatch to here: "avx512", "avx2" or "generic"."""
    return _core.biquad_isa()


def _check_threads(n: Any, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or int(n) < 1:
        raise ValueError(f"{name} must be a positive integer number of threads, got {n!r}")
    return int(n)


def _op_threads(num_threads: int | None) -> int:
    """``num_threads`` as the torch operators take it: 0 = the default at call time."""
    return 0 if num_threads is None else _check_threads(num_threads, "num_threads")


# ------------------------------------------------------------ validation ---

def _is_tensor(v: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(v, torch.Tensor)


def _dtype_name(v: Any) -> str:
    return str(v.dtype).replace("torch.", "")


def _check_kind(named: dict[str, Any]) -> bool:
    """Check that all given arrays are the same kind, float and on the CPU; True if torch."""
    kinds = {name: _is_tensor(v) for name, v in named.items()}
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
        if _dtype_name(v) not in ("float32", "float64"):
            raise TypeError(f"{name} must be float32 or float64, got {_dtype_name(v)}")
        if is_torch and v.device.type != "cpu":
            raise ValueError(f"{name} is on device {v.device}; the kernels run on the CPU: "
                             f"pass {name}.cpu()")
    return is_torch


def _check_dtypes(x: Any, b: Any, a: Any, zi: Any = None) -> None:
    """Signals (x, zi) share one dtype; coefficients (b, a) share one dtype, x's or float64."""
    xd, bd, ad = _dtype_name(x), _dtype_name(b), _dtype_name(a)
    if bd != ad:
        raise TypeError(f"mismatched dtypes: b is {bd} but a is {ad}; give both coefficient "
                        f"arrays the same dtype (float64 recommended)")
    if bd not in (xd, "float64"):
        raise TypeError(f"mismatched dtypes: x is {xd} but b and a are {bd}; coefficients must be "
                        f"{xd} or float64 (convert b and a to float64)")
    if zi is not None and _dtype_name(zi) != xd:
        raise TypeError(f"mismatched dtypes: x is {xd} but zi is {_dtype_name(zi)}; convert zi to {xd}")


def _as_numpy(v: Any) -> np.ndarray:
    return v.detach().numpy() if _is_tensor(v) else np.asarray(v)


def _check_finite(name: str, v: Any) -> None:
    arr = _as_numpy(v)
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{name} contains non-finite values (first at index {tuple(int(i) for i in bad)}); "
                         f"clean the input (e.g. nan_to_num) before filtering")


def check_stable(a: Any) -> None:
    """Raise ValueError naming the channel if any section has a pole on or outside the unit circle.

    ``a`` is ``[C, 2]`` (a1, a2); the poles are the roots of ``z^2 + a1 z + a2``
    and are inside the unit circle iff ``|a2| < 1`` and ``|a1| < 1 + a2``.
    """
    arr = np.asarray(_as_numpy(a), dtype=np.float64)
    a1, a2 = arr[:, 0], arr[:, 1]
    bad = np.flatnonzero(~((np.abs(a2) < 1.0) & (np.abs(a1) < 1.0 + a2)))
    if bad.size:
        c = int(bad[0])
        radius = float(np.max(np.abs(np.roots([1.0, a1[c], a2[c]]))))
        more = f" (and {bad.size - 1} more channel(s): {bad[1:6].tolist()})" if bad.size > 1 else ""
        raise ValueError(
            f"a: channel {c} is unstable: the poles of z^2 + a1 z + a2 with a1={a1[c]!r}, "
            f"a2={a2[c]!r} have magnitude {radius:.6g} >= 1{more}; every section needs "
            f"|a2| < 1 and |a1| < 1 + a2")


def _check_coefficients(b: Any, a: Any) -> None:
    if b.ndim != 2 or b.shape[1] != 3:
        raise ValueError(f"b must be [C, 3] (b0, b1, b2 per channel), got shape {tuple(b.shape)}")
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"a must be [C, 2] (a1, a2 per channel; a0 = 1 implied), got shape "
                         f"{tuple(a.shape)}")
    if b.shape[0] != a.shape[0]:
        raise ValueError(f"b and a must have the same number of channels, got b {tuple(b.shape)} "
                         f"and a {tuple(a.shape)}")
    if b.shape[0] < 1:
        raise ValueError("b and a have no channels (C = 0)")


def _check_bank_data(x: Any, b: Any, a: Any) -> None:
    """The data-dependent checks: finite values and stable sections (eager data only)."""
    _check_finite("b", b)
    _check_finite("a", a)
    _check_finite("x", x)
    check_stable(a)


def _validate_bank(x: Any, b: Any, a: Any) -> tuple[bool, int, int]:
    """Validate x, b, a; return (is_torch, C, ndim of x).

    For NumPy input every check runs here.  For torch tensors the
    data-dependent checks (finite values, stability) run inside the custom
    operator's CPU implementation (:mod:`learnafe.torch_ops`), so that they
    also hold in compiled and exported graphs, with the same messages.
    """
    is_torch = _check_kind({"x": x, "b": b, "a": a})
    _check_dtypes(x, b, a)
    if x.ndim not in (1, 2):
        raise ValueError(f"x must be [T] or [B, T] (one mono signal per batch item), got shape "
                         f"{tuple(x.shape)}")
    if x.ndim == 2 and x.shape[0] < 1:
        raise ValueError(f"x has an empty batch dimension (shape {tuple(x.shape)})")
    _check_coefficients(b, a)
    if not is_torch:
        _check_bank_data(x, b, a)
    return is_torch, int(b.shape[0]), x.ndim


def envelope_alpha(tau: float, sample_rate: float) -> float:
    """Smoothing factor of the envelope low-pass: ``1 - exp(-1 / (tau * sample_rate))``."""
    for name, v in (("tau", tau), ("sample_rate", sample_rate)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                or not math.isfinite(float(v)) or float(v) <= 0:
            raise ValueError(f"{name} must be a positive finite number (tau in seconds, "
                             f"sample_rate in Hz), got {v!r}")
    return -math.expm1(-1.0 / (float(tau) * float(sample_rate)))


def _coef(v: Any) -> np.ndarray:
    """Coefficients as the kernels take them: C-contiguous float64 (exact for float32 input)."""
    return np.ascontiguousarray(_as_numpy(v), dtype=np.float64)


def _suffix(dtype_name: str) -> str:
    return "f32" if dtype_name == "float32" else "f64"


# -------------------------------------------------------- filter bank op ---

def biquad_filterbank(x: ArrayLike, b: ArrayLike, a: ArrayLike, *, zi: ArrayLike | None = None,
                      return_state: bool = False, num_threads: int | None = None,
                      out: ArrayLike | None = None) -> Any:
    """Filter each signal of ``x`` by every section of the bank.

    Args:
        x: ``[B, T]`` or ``[T]`` signal(s), float32 or float64.
        b: ``[C, 3]`` numerator coefficients (b0, b1, b2) per channel.
        a: ``[C, 2]`` denominator coefficients (a1, a2) per channel; a0 = 1.
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
        returned final state).
    """
    is_torch, C, ndim = _validate_bank(x, b, a)
    op_threads = _op_threads(num_threads)
    B = 1 if ndim == 1 else x.shape[0]
    state_shape = (C, 2) if ndim == 1 else (B, C, 2)
    if zi is not None:
        _check_kind({"x": x, "zi": zi})
        _check_dtypes(x, b, a, zi)
        if tuple(zi.shape) != state_shape:
            raise ValueError(f"zi must have shape {state_shape} (channels x (v[-1], v[-2])"
                             f"{'' if ndim == 1 else ' per batch item'}), got {tuple(zi.shape)}")
        if not is_torch:
            _check_finite("zi", zi)
    x2 = x.reshape(1, -1) if ndim == 1 else x
    zi3 = None if zi is None else zi.reshape(B, C, 2)
    if out is not None:
        if is_torch:  # eager only (out= writes in place): check the data here
            _check_bank_data(x, b, a)
            if zi is not None:
                _check_finite("zi", zi)
        B, T = int(B), int(x.shape[-1])
        y_shape = (C, T) if ndim == 1 else (B, C, T)
        _check_out(out, y_shape, x, is_torch, b, a, zi)
        y, zf = _forward_numpy(_as_numpy(x2), b, a, None if zi3 is None else _as_numpy(zi3),
                               op_threads or get_num_threads(), y=_as_numpy(out).reshape(B, C, T))
        if is_torch:
            import torch

            zf = torch.from_numpy(zf)
        y = out
        if ndim == 1:
            zf = zf[0]
        return (y, zf) if return_state else y
    if is_torch:
        import torch

        from learnafe import torch_ops  # noqa: F401 - registers torch.ops.learnafe

        # The forward keeps its checkpoints for the backward when a gradient will be needed.
        save = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, b, a, zi))
        y, zf, _ = torch.ops.learnafe.biquad_filterbank(x2, b, a, zi3, op_threads, save)
    else:
        y, zf = _forward_numpy(x2, b, a, zi3, op_threads or get_num_threads())
    if ndim == 1:
        y = y[0]
        zf = zf[0]
    return (y, zf) if return_state else y


def _check_out(out, y_shape, x, is_torch, b, a, zi) -> None:
    if _is_tensor(out) != is_torch:
        raise TypeError("out must be the same kind as x (a torch tensor for a tensor x, a NumPy array "
                        "for an array x)")
    if _dtype_name(out) != _dtype_name(x):
        raise TypeError(f"out must have x's dtype {_dtype_name(x)}, got {_dtype_name(out)}")
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


# ---------------------------------------------------------- kernel calls ---
# The one place that calls the bindings, on NumPy buffers: the NumPy path and
# the torch operators (learnafe.torch_ops) both go through these functions.
# x2 is a [B, T] array; b, a arrays or tensors (taken as float64).

def _biquad_checkpoint_size(B: Any, T: Any, C: int) -> Any:
    """float64 values of the filter-bank checkpoints (the state every ``kTimeBlock`` = 128
    samples) that the forward kernel can keep for the backward one (``B``, ``T`` may be symbolic)."""
    return B * ((T + 127) // 128) * _core.biquad_checkpoint_size(1, 128, C)


def _forward_numpy(x2, b, a, zi3, nt, y=None, ck=None):
    """``(y [B, C, T], zf [B, C, 2])``; ``y`` from the output cache unless given; ``ck`` (float64,
    :func:`_biquad_checkpoint_size` values) receives the checkpoints for the backward pass."""
    x2 = np.ascontiguousarray(x2)
    B, T = x2.shape
    C = b.shape[0]
    if y is None:
        y = _output_cache.empty((B, C, T), x2.dtype)
    zf = np.empty((B, C, 2), dtype=x2.dtype)
    fn = getattr(_core, "biquad_forward_" + _suffix(str(x2.dtype)))
    fn(x2, _coef(b), _coef(a), None if zi3 is None else np.ascontiguousarray(zi3), y, zf, nt, ck)
    return y, zf


def _backward_numpy(x2, b, a, zi3, gy, gzf, nt, ck=None):
    """Gradients ``(x [B, T], b [C, 3] float64, a [C, 2] float64, zi [B, C, 2])`` of the filter bank
    (the ``zi`` gradient is that of a zero initial state when ``zi3`` is None); ``ck``: the
    forward's checkpoints, which spare the backward one recursion over ``x``."""
    x2 = np.ascontiguousarray(x2)
    B, T = x2.shape
    C = b.shape[0]
    gx = np.empty((B, T), dtype=x2.dtype)
    gb = np.empty((C, 3))
    ga = np.empty((C, 2))
    gzi = np.empty((B, C, 2), dtype=x2.dtype)
    fn = getattr(_core, "biquad_backward_" + _suffix(str(x2.dtype)))
    fn(x2, _coef(b), _coef(a), None if zi3 is None else np.ascontiguousarray(zi3),
       np.ascontiguousarray(gy, dtype=x2.dtype), np.ascontiguousarray(gzf, dtype=x2.dtype),
       gx, gb, ga, gzi, nt, ck)
    return gx, gb, ga, gzi


def _envelope_checkpoint_size(C: int, T: Any, hop: int) -> Any:
    """Doubles per batch item of the envelope checkpoints (``T`` may be symbolic)."""
    return (T // hop) * _core.envelope_checkpoint_size(C, hop, hop)


def _envelope_forward_numpy(x2, b, a, hop, alpha, rectify, nt, noise_std=None, seed=0, ck=None):
    """Envelope frames ``[B, C, T // hop]``; ``ck`` (float64 ``[B, K]``) receives the checkpoints."""
    x2 = np.ascontiguousarray(x2)
    out = np.empty((x2.shape[0], b.shape[0], x2.shape[1] // hop), dtype=x2.dtype)
    fn = getattr(_core, "envelope_forward_" + _suffix(str(x2.dtype)))
    fn(x2, _coef(b), _coef(a), hop, alpha, rectify, out, nt,
       noise_std=None if noise_std is None else _coef(noise_std), seed=seed, ck=ck)
    return out


def _envelope_backward_numpy(x2, b, a, hop, alpha, rectify, gout, nt, noise_std=None, seed=0, ck=None):
    """Gradients ``(x [B, T], b [C, 3], a [C, 2], noise_std [C] or None)`` (coefficients float64)."""
    x2 = np.ascontiguousarray(x2)
    B, T = x2.shape
    C = b.shape[0]
    gx = np.empty((B, T), dtype=x2.dtype)
    gb = np.empty((C, 3))
    ga = np.empty((C, 2))
    gs = None if noise_std is None else np.empty(C)
    fn = getattr(_core, "envelope_backward_" + _suffix(str(x2.dtype)))
    fn(x2, _coef(b), _coef(a), hop, alpha, rectify, np.ascontiguousarray(gout, dtype=x2.dtype),
       gx, gb, ga, nt, noise_std=None if noise_std is None else _coef(noise_std), seed=seed, gstd=gs, ck=ck)
    return gx, gb, ga, gs


# ----------------------------------------------------------- envelope op ---

def filterbank_envelope(x: ArrayLike, b: ArrayLike, a: ArrayLike, *, hop: int, tau: float,
                        sample_rate: float, rectify: str = "abs", noise_std: ArrayLike | None = None,
                        seed: int | None = None, num_threads: int | None = None) -> Any:
    """Fused filter bank -> rectify -> first-order low-pass -> decimation.

    Equals ``biquad_filterbank`` followed by ``abs`` (or square), the low-pass
    ``e[n] = e[n-1] + alpha (r[n] - e[n-1])`` with
    ``alpha = 1 - exp(-1 / (tau * sample_rate))`` and zero initial state, and
    taking ``e[(f + 1) * hop - 1]`` for frames ``f = 0 .. T // hop - 1``, but
    in one pass and without storing the ``[B, C, T]`` signal (also in the
    backward pass, which recomputes the filter state frame by frame).

    Args:
        x: ``[B, T]`` or ``[T]``; b ``[C, 3]``; a ``[C, 2]`` (as in
            :func:`biquad_filterbank`).
        hop: frame hop in samples (``1 <= hop <= T``).
        tau: low-pass time constant in seconds.
        sample_rate: sample rate of ``x`` in Hz.
        rectify: ``"abs"`` or ``"square"``.
        noise_std: optional ``[C]`` input-referred noise standard deviation
            per channel (same kind as ``x``, float32 or float64, finite,
            ``>= 0``): channel ``c`` filters ``x[b, t] + noise_std[c] *
            n[b, c, t]`` (computed in float64) with ``n = gaussian_noise(seed,
            B, C, T)``, generated inside the kernel (nothing of size
            ``[B, C, T]`` is stored; the backward pass regenerates it).  With
            torch, ``noise_std`` may require grad (``d/dstd[c] = sum_{b,t}
            dL/d(input of channel c)[b, t] * n[b, c, t]``).  ``None``: no noise.
        seed: integer in ``[0, 2**64)`` keying the noise.  ``None`` with
            torch tensors: drawn from torch's default generator (two 32-bit
            words of ``torch.randint``), so ``torch.manual_seed`` makes a run
            reproducible; with NumPy arrays a seed is required when
            ``noise_std`` is given.  Ignored (but checked) without noise.
        num_threads: kernel threads (default :func:`get_num_threads`).

    Returns:
        ``[B, C, T // hop]`` (``[C, T // hop]`` for 1-D ``x``); torch in, torch
        out with gradients for ``x``, ``b``, ``a`` and ``noise_std``.  The
        result does not depend on the thread count or the instruction set.
    """
    is_torch, C, ndim = _validate_bank(x, b, a)
    op_threads = _op_threads(num_threads)
    if rectify not in _RECTIFY:
        raise ValueError(f"rectify must be one of {_RECTIFY}, got {rectify!r}")
    T = x.shape[-1]
    if isinstance(hop, bool) or not isinstance(hop, (int, np.integer)) or not 1 <= int(hop) <= T:
        raise ValueError(f"hop must be an integer number of samples in [1, T={T}], got {hop!r}")
    alpha = envelope_alpha(tau, sample_rate)
    if seed is not None:
        seed = _check_seed(seed)
    if noise_std is not None:
        # torch: the data checks of noise_std run inside the operator (as those of x, b, a)
        _check_noise_std(noise_std, x, C, is_torch, data=not is_torch)
        if seed is None and not is_torch:
            raise ValueError("seed is required with noise_std on NumPy arrays (an integer in "
                             "[0, 2**64)); with torch tensors it is drawn from torch's generator")
    x2 = x.reshape(1, -1) if ndim == 1 else x
    if is_torch:
        import torch

        from learnafe import torch_ops  # registers torch.ops.learnafe

        # seed None: the operator draws it from torch's default generator when it runs
        # (so eager and compiled graphs consume the generator alike).
        save = torch.is_grad_enabled() and any(
            t is not None and t.requires_grad for t in (x, b, a, noise_std))
        out, _, _ = torch.ops.learnafe.filterbank_envelope(
            x2, b, a, noise_std, None if seed is None else torch_ops.seed_to_op(seed), int(hop), alpha,
            rectify, save, op_threads)
    else:
        out = _envelope_forward_numpy(x2, b, a, int(hop), alpha, rectify, op_threads or get_num_threads(),
                                      noise_std=noise_std, seed=0 if seed is None else seed)
    return out[0] if ndim == 1 else out


_SEED_LIMIT = 2 ** 64


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < _SEED_LIMIT:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    return int(seed)


def _torch_seed() -> int:
    """A 64-bit seed from torch's default generator (so torch.manual_seed fixes it)."""
    import torch

    lo, hi = (int(v) for v in torch.randint(0, 2 ** 32, (2,), dtype=torch.int64))
    return (hi << 32) | lo


def _check_noise_std(noise_std: Any, x: Any, C: int, is_torch: bool, data: bool = True) -> None:
    """Kind, dtype, device, shape; with ``data`` also finite and ``>= 0`` (eager data only)."""
    if _is_tensor(noise_std) != is_torch or not (is_torch or isinstance(noise_std, np.ndarray)):
        kind = "a torch tensor" if is_torch else "a NumPy array"
        raise TypeError(f"noise_std must be {kind} like x (one standard deviation per channel), got "
                        f"{type(noise_std).__name__}")
    if _dtype_name(noise_std) not in ("float32", "float64"):
        raise TypeError(f"noise_std must be float32 or float64, got {_dtype_name(noise_std)}")
    if is_torch and noise_std.device.type != "cpu":
        raise ValueError(f"noise_std is on device {noise_std.device}; the kernels run on the CPU: "
                         f"pass noise_std.cpu()")
    if tuple(noise_std.shape) != (C,):
        raise ValueError(f"noise_std must have shape ({C},) (one standard deviation per channel), got "
                         f"{tuple(noise_std.shape)}")
    if not data:
        return
    arr = _as_numpy(noise_std)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"noise_std[{int(bad[0])}] is {float(arr[bad[0]])!r}; every standard deviation must be "
                         f"finite and >= 0")
    bad = np.flatnonzero(arr < 0)
    if bad.size:
        raise ValueError(f"noise_std[{int(bad[0])}] = {float(arr[bad[0]])!r} is negative; every standard "
                         f"deviation must be >= 0 (pass its absolute value)")


def gaussian_noise(seed: int, B: int, C: int, T: int, *, num_threads: int | None = None) -> np.ndarray:
    """The standard normal noise ``n[b, c, t]`` that :func:`filterbank_envelope` adds for ``seed``.

    Float64 NumPy array ``[B, C, T]``, bitwise the values the kernel uses:
    with ``j = t // 4``, Philox4x32-10 of the counter
    ``(j mod 2**32, c, b, j // 2**32)`` and the key ``(seed mod 2**32,
    seed // 2**32)`` gives four 32-bit words ``w``; ``u = (w + 0.5) / 2**32``;
    Box-Muller turns ``(u0, u1)`` into samples ``4j, 4j+1`` (``sqrt(-2 ln u0)``
    times ``cos``, ``sin`` of ``2 pi u1``) and ``(u2, u3)`` into ``4j+2, 4j+3``.
    """
    seed = _check_seed(seed)
    dims = []
    for name, v in (("B", B), ("C", C), ("T", T)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
        dims.append(int(v))
    out = np.empty(dims, dtype=np.float64)
    _core.gaussian_noise(seed, out, _op_threads(num_threads) or get_num_threads())
    return out
