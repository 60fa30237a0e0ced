"""The kernels as PyTorch custom operators (``torch.ops.learnafe.*``).

Importing this module registers, with :mod:`torch.library`, operators that
``torch.compile`` (``fullgraph=True``), ``torch.export`` and
``torch.library.opcheck`` understand::

    learnafe::biquad_filterbank(Tensor x, Tensor b, Tensor a, Tensor? zi, int num_threads,
        bool save_checkpoints=False) -> (Tensor y, Tensor zf, Tensor checkpoints)
    learnafe::biquad_filterbank_backward(Tensor x, Tensor b, Tensor a, Tensor? zi,
        Tensor grad_y, Tensor grad_zf, int num_threads, Tensor? checkpoints=None)
        -> (Tensor grad_x, Tensor grad_b, Tensor grad_a, Tensor grad_zi)
    learnafe::filterbank_envelope(Tensor x, Tensor b, Tensor a, Tensor? noise_std, int? seed,
        int hop, float alpha, str rectify, bool save_checkpoints, int num_threads,
        int noise_batch=0) -> (Tensor out, Tensor checkpoints, Tensor seed)
    learnafe::filterbank_envelope_backward(Tensor x, Tensor b, Tensor a, Tensor? noise_std,
        Tensor seed, Tensor checkpoints, int hop, float alpha, str rectify, Tensor grad_out,
        int num_threads, int noise_batch=0)
        -> (Tensor grad_x, Tensor grad_b, Tensor grad_a, Tensor grad_noise_std)

``x`` is ``[B, T]``, ``b`` ``[C, 3]``, ``a`` ``[C, 2]`` (or per example ``[B, C, 3]``,
``[B, C, 2]``, with per-example gradients), ``zi`` ``[B, C, 2]``
(the layouts of :func:`learnafe.ops.biquad_filterbank` for 2-D input; the
public functions reshape 1-D input and route torch tensors here).
``num_threads`` 0 means :func:`learnafe.ops.get_num_threads` at call time, so
a compiled graph follows later ``set_num_threads`` calls.  The filter bank's
``checkpoints`` (float64, empty unless ``save_checkpoints``) are the filter
states every 128 samples, which the backward kernel starts from instead of
running the forward recursion again; the public function asks for them when a
gradient will be needed.  ``alpha`` is
:func:`learnafe.ops.envelope_alpha` of ``tau`` and ``sample_rate``.

Noise of the envelope operator: ``noise_std [C]``, or ``[B, C]`` per batch item
(gradient of its shape), or None; ``seed``, a
64-bit seed as a signed ``int`` (:func:`seed_to_op`); ``noise_batch`` 0 (every
batch item keyed by its own index) or a divisor of ``B`` (item ``b`` keyed by
``b % noise_batch``, :func:`learnafe.ops.filterbank_envelope`).  ``seed`` None with
noise: the operator draws the seed from torch's default generator when it
runs (:func:`torch_seed`), so a compiled graph consumes the
generator exactly as eager mode does and ``torch.manual_seed`` reproduces both;
the seed used is the third output (int64 ``[1]``), which the backward operator
takes to regenerate the same noise.  ``checkpoints`` (float64 ``[B, K]``, K = 0
unless ``save_checkpoints``) are the frame-start filter states the forward
kernel keeps for the backward kernel; the public function asks for them when a
gradient will be needed.  The second and third outputs are not differentiable.

Each operator has a CPU implementation (the pybind11 binding on the tensors'
buffers, through the kernel calls of :mod:`learnafe.ops.kernels` that the NumPy path
uses too: the compiled extension does not link libtorch), a fake
implementation (output shapes and dtypes, for tracing), and the forward
operators an autograd formula whose backward is the ``*_backward`` operator
(itself an operator, so the backward graph is traceable too; it is not
differentiable again).

Checks.  Shapes, dtypes, devices and scalar arguments are checked by the
public functions before the operator and again by the fake and CPU
implementations (static: they hold under tracing).  The data-dependent checks
(finite ``x``, ``b``, ``a``, ``zi``; poles of every section inside the unit
circle) run inside the CPU implementation, on every call, with the messages of
:mod:`learnafe.ops.checks`: in eager mode and in a compiled or exported graph alike.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from learnafe.ops import kernels
from learnafe.ops.checks import (
    check_bank_data,
    check_coefficients,
    check_dtypes,
    check_envelope_args,
    check_finite,
    check_kind,
    check_noise_batch,
    check_noise_std,
    check_section_shapes,
    check_section_stable,
)
from learnafe.ops.extension import get_num_threads

__all__ = ["biquad_filterbank", "biquad_filterbank_backward", "filterbank_envelope", "seed_to_op", "seed_from_op",
           "filterbank_envelope_backward", "torch_seed", "sosfilt_section", "kernel_threads", "as_buffer",
           "OPS"]

#: The operators this module registers (``torch.ops.learnafe.<name>``).
OPS = ("biquad_filterbank", "biquad_filterbank_backward", "filterbank_envelope",
       "filterbank_envelope_backward", "sosfilt_section")


def kernel_threads(num_threads: int) -> int:
    """The kernels' thread count for an operator's ``num_threads`` (0: the default at call time)."""
    if num_threads == 0:
        return get_num_threads()
    if num_threads < 0:
        raise ValueError(f"num_threads must be a positive integer number of threads (0: the "
                         f"default), got {num_threads!r}")
    return num_threads


def as_buffer(t: Optional[Tensor]):
    """A tensor's data as a C-contiguous NumPy array for the kernels (None stays None)."""
    return None if t is None else t.detach().contiguous().numpy()


def _check_static(x: Tensor, b: Tensor, a: Tensor, zi: Optional[Tensor] = None) -> None:
    """The shape/dtype/device checks of :mod:`learnafe.ops.checks` for the operators' 2-D layout."""
    check_kind({"x": x, "b": b, "a": a})
    check_dtypes(x, b, a, zi)
    if x.dim() != 2:
        raise ValueError(f"x must be [B, T] for the learnafe operators (the public functions "
                         f"take [T] too), got shape {tuple(x.shape)}")
    check_coefficients(b, a, x.shape[0])
    if zi is not None:
        check_kind({"x": x, "zi": zi})
        shape = (x.shape[0], b.shape[-2], 2)
        if tuple(zi.shape) != tuple(shape):
            raise ValueError(f"zi must have shape {tuple(shape)} (channels x (v[-1], v[-2]) per "
                             f"batch item), got {tuple(zi.shape)}")


def _check_data(x: Tensor, b: Tensor, a: Tensor, zi: Optional[Tensor] = None) -> None:
    """The data-dependent checks (real tensors only), with the messages of :mod:`learnafe.ops.checks`."""
    check_bank_data(x, b, a)
    if zi is not None:
        check_finite("zi", zi)


# ----------------------------------------------------------- filter bank ---

def _biquad_checkpoints(x: Tensor, b: Tensor, save: bool) -> Tensor:
    n = kernels.biquad_checkpoint_size(x.shape[0], x.shape[1], b.shape[-2]) if save else 0
    return x.new_empty((n,), dtype=torch.float64)


@torch.library.custom_op("learnafe::biquad_filterbank", mutates_args=(), device_types="cpu")
def biquad_filterbank(x: Tensor, b: Tensor, a: Tensor, zi: Optional[Tensor],
                      num_threads: int, save_checkpoints: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """``y [B, C, T]``, the final state ``zf [B, C, 2]`` and the checkpoints (see the module doc and
    :func:`learnafe.ops.biquad_filterbank`)."""
    _check_static(x, b, a, zi)
    _check_data(x, b, a, zi)
    ck = _biquad_checkpoints(x, b, save_checkpoints)
    y, zf = kernels.biquad_forward(as_buffer(x), b, a, as_buffer(zi), kernel_threads(num_threads),
                               checkpoints=ck.numpy() if save_checkpoints else None)
    return torch.from_numpy(y), torch.from_numpy(zf), ck


@biquad_filterbank.register_fake
def _biquad_filterbank_fake(x, b, a, zi, num_threads, save_checkpoints=False):
    _check_static(x, b, a, zi)
    B, T = x.shape
    C = b.shape[-2]
    return x.new_empty((B, C, T)), x.new_empty((B, C, 2)), _biquad_checkpoints(x, b, save_checkpoints)


@torch.library.custom_op("learnafe::biquad_filterbank_backward", mutates_args=(), device_types="cpu")
def biquad_filterbank_backward(x: Tensor, b: Tensor, a: Tensor, zi: Optional[Tensor], grad_y: Tensor,
                               grad_zf: Tensor, num_threads: int,
                               checkpoints: Optional[Tensor] = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Gradients ``(x [B, T], b, a (the shapes of b, a), zi [B, C, 2])`` of the filter bank
    (the ``zi`` gradient is that of a zero initial state when ``zi`` is None)."""
    _check_static(x, b, a, zi)
    ck = None if checkpoints is None or checkpoints.numel() == 0 else as_buffer(checkpoints)
    gx, gb, ga, gzi = kernels.biquad_backward(as_buffer(x), b, a, as_buffer(zi), as_buffer(grad_y), as_buffer(grad_zf),
                                          kernel_threads(num_threads), checkpoints=ck)
    return (torch.from_numpy(gx), torch.from_numpy(gb).to(b.dtype), torch.from_numpy(ga).to(a.dtype),
            torch.from_numpy(gzi))


@biquad_filterbank_backward.register_fake
def _biquad_filterbank_backward_fake(x, b, a, zi, grad_y, grad_zf, num_threads, checkpoints=None):
    B, T = x.shape
    C = b.shape[-2]
    return x.new_empty((B, T)), b.new_empty(b.shape), a.new_empty(a.shape), x.new_empty((B, C, 2))


def _biquad_setup_context(ctx, inputs, output):
    x, b, a, zi, num_threads = inputs[:5]
    ctx.save_for_backward(x, b, a, zi, output[2])
    ctx.has_zi = zi is not None
    ctx.num_threads = num_threads
    ctx.mark_non_differentiable(output[2])


def _biquad_backward(ctx, grad_y, grad_zf, grad_checkpoints):
    x, b, a, zi, ck = ctx.saved_tensors
    gx, gb, ga, gzi = torch.ops.learnafe.biquad_filterbank_backward(
        x, b, a, zi, grad_y, grad_zf, ctx.num_threads, ck)
    return gx, gb, ga, (gzi if ctx.has_zi else None), None, None


biquad_filterbank.register_autograd(_biquad_backward, setup_context=_biquad_setup_context)


# -------------------------------------------------------------- envelope ---

_SEED_BITS = 64


def seed_to_op(seed: int) -> int:
    """A seed in [0, 2**64) as the operators' ``int`` (signed 64-bit, two's complement)."""
    return seed - (1 << _SEED_BITS) if seed >= 1 << (_SEED_BITS - 1) else seed


def seed_from_op(seed: int) -> int:
    return seed & ((1 << _SEED_BITS) - 1)


def torch_seed() -> int:
    """A 64-bit seed from torch's default generator (so torch.manual_seed fixes it)."""
    lo, hi = (int(v) for v in torch.randint(0, 2 ** 32, (2,), dtype=torch.int64))
    return (hi << 32) | lo


def _checkpoint_length(C: int, T, hop: int):
    """Doubles per batch item of the envelope checkpoints (frame-start filter states)."""
    return kernels.envelope_checkpoint_size(C, T, hop)


def _check_noise(x: Tensor, b: Tensor, noise_std: Optional[Tensor], noise_batch: int) -> None:
    if noise_std is not None:
        check_noise_std(noise_std, x, b.shape[-2], True, data=False)
    if noise_batch != 0:
        check_noise_batch(noise_batch, x.shape[0])


@torch.library.custom_op("learnafe::filterbank_envelope", mutates_args=(), device_types="cpu")
def filterbank_envelope(x: Tensor, b: Tensor, a: Tensor, noise_std: Optional[Tensor], seed: Optional[int],
                        hop: int, alpha: float, rectify: str, save_checkpoints: bool,
                        num_threads: int, noise_batch: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """``(out [B, C, T // hop], checkpoints float64 [B, K], seed int64 [1])``; see the module doc."""
    _check_static(x, b, a)
    check_envelope_args(x.shape[-1], hop, rectify, alpha)
    _check_noise(x, b, noise_std, noise_batch)
    _check_data(x, b, a)
    if noise_std is not None:
        check_noise_std(noise_std, x, b.shape[-2], True)
    nt = kernel_threads(num_threads)
    B, T = x.shape
    C = b.shape[-2]
    if seed is not None:
        s = seed_from_op(seed)
    elif noise_std is not None:
        s = torch_seed()  # torch's default generator, at run time (eager and compiled alike)
    else:
        s = 0
    ck = torch.empty((B, _checkpoint_length(C, T, hop) if save_checkpoints else 0), dtype=torch.float64)
    noise = None if noise_std is None else kernels.EnvelopeNoise(noise_std, s, noise_batch)
    out = kernels.envelope_forward(as_buffer(x), b, a, hop, alpha, rectify, nt, noise,
                                   checkpoints=ck.numpy() if save_checkpoints else None)
    return torch.from_numpy(out), ck, torch.tensor([seed_to_op(s)], dtype=torch.int64)


@filterbank_envelope.register_fake
def _filterbank_envelope_fake(x, b, a, noise_std, seed, hop, alpha, rectify, save_checkpoints, num_threads,
                              noise_batch=0):
    _check_static(x, b, a)
    check_envelope_args(x.shape[-1], hop, rectify, alpha)
    _check_noise(x, b, noise_std, noise_batch)
    B, T = x.shape
    C = b.shape[-2]
    K = _checkpoint_length(C, T, hop) if save_checkpoints else 0
    return (x.new_empty((B, C, T // hop)), x.new_empty((B, K), dtype=torch.float64),
            x.new_empty((1,), dtype=torch.int64))


@torch.library.custom_op("learnafe::filterbank_envelope_backward", mutates_args=(), device_types="cpu")
def filterbank_envelope_backward(x: Tensor, b: Tensor, a: Tensor, noise_std: Optional[Tensor], seed: Tensor,
                                 checkpoints: Tensor, hop: int, alpha: float, rectify: str, grad_out: Tensor,
                                 num_threads: int, noise_batch: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Gradients ``(x [B, T], b, a (the shapes of b, a), noise_std (its shape; [0] without noise))``.

    The parameters are flat: a torch custom operator's schema is inferred from its annotated
    parameters, which must be tensors and scalars (a dataclass has no schema type)."""
    _check_static(x, b, a)
    check_envelope_args(x.shape[-1], hop, rectify, alpha)
    _check_noise(x, b, noise_std, noise_batch)
    ck = None if checkpoints.shape[-1] == 0 else as_buffer(checkpoints)
    inputs = kernels.EnvelopeBackwardInputs(as_buffer(x), b, a, as_buffer(grad_out), noise_std=noise_std,
                                            seed=seed_from_op(int(seed[0])), checkpoints=ck,
                                            noise_batch=noise_batch)
    gx, gb, ga, gs = kernels.envelope_backward(inputs, hop, alpha, rectify, kernel_threads(num_threads))
    gs = torch.empty((0,), dtype=torch.float64) if gs is None else torch.from_numpy(gs).to(noise_std.dtype)
    return torch.from_numpy(gx), torch.from_numpy(gb).to(b.dtype), torch.from_numpy(ga).to(a.dtype), gs


@filterbank_envelope_backward.register_fake
def _filterbank_envelope_backward_fake(x, b, a, noise_std, seed, checkpoints, hop, alpha, rectify, grad_out,
                                       num_threads, noise_batch=0):
    B, T = x.shape
    gs = b.new_empty((0,), dtype=torch.float64) if noise_std is None else noise_std.new_empty(noise_std.shape)
    return x.new_empty((B, T)), b.new_empty(b.shape), a.new_empty(a.shape), gs


def _envelope_setup_context(ctx, inputs, output):
    x, b, a, noise_std, seed, hop, alpha, rectify, save_checkpoints, num_threads, noise_batch = inputs
    _, checkpoints, seed_used = output
    ctx.mark_non_differentiable(checkpoints, seed_used)
    ctx.save_for_backward(x, b, a, noise_std, seed_used, checkpoints)
    ctx.params = (hop, alpha, rectify, num_threads, noise_batch)


def _envelope_backward(ctx, grad_out, _grad_checkpoints, _grad_seed):
    x, b, a, noise_std, seed_used, checkpoints = ctx.saved_tensors
    hop, alpha, rectify, num_threads, noise_batch = ctx.params
    gx, gb, ga, gs = torch.ops.learnafe.filterbank_envelope_backward(
        x, b, a, noise_std, seed_used, checkpoints, hop, alpha, rectify, grad_out, num_threads, noise_batch)
    return gx, gb, ga, (None if noise_std is None else gs), None, None, None, None, None, None, None


filterbank_envelope.register_autograd(_envelope_backward, setup_context=_envelope_setup_context)


# ------------------------------------------------------ sosfilt section ---

def _check_section_static(u: Tensor, b: Tensor, a: Tensor) -> None:
    check_kind({"u": u, "b": b, "a": a})
    check_dtypes(u, b, a)
    check_section_shapes(u, b, a)


@torch.library.custom_op("learnafe::sosfilt_section", mutates_args=(), device_types="cpu")
def sosfilt_section(u: Tensor, b: Tensor, a: Tensor, num_threads: int) -> Tensor:
    """One second-order section per row (zero initial state): ``y [B, C, T]`` of ``u [B, Cu, T]``
    (``Cu`` 1 or ``C``), ``b [G, C, 3]``, ``a [G, C, 2]`` (``G`` 1 or ``B``); see
    :func:`learnafe.ops.kernels.section_forward`.  Differentiable in ``u``, ``b``, ``a`` to any order:
    its backward is written with this operator (the adjoint is the time-reversed all-pole filter)
    and differentiable tensor operations."""
    _check_section_static(u, b, a)
    check_finite("u", u)
    check_finite("b", b)
    check_section_stable(a)
    y = kernels.section_forward(as_buffer(u), b, a, kernel_threads(num_threads))
    return torch.from_numpy(y)


@sosfilt_section.register_fake
def _sosfilt_section_fake(u, b, a, num_threads):
    _check_section_static(u, b, a)
    return u.new_empty((u.shape[0], b.shape[1], u.shape[2]))


def _shift_back(v: Tensor, k: int) -> Tensor:
    """``v[..., n - k]`` (zeros before the start)."""
    T = v.shape[-1]
    if k >= T:
        return torch.zeros_like(v)
    return torch.nn.functional.pad(v[..., :T - k], (k, 0))


def _shift_ahead(v: Tensor, k: int) -> Tensor:
    """``v[..., n + k]`` (zeros past the end)."""
    T = v.shape[-1]
    if k >= T:
        return torch.zeros_like(v)
    return torch.nn.functional.pad(v[..., k:], (0, k))


def _section_setup_context(ctx, inputs, output):
    u, b, a, num_threads = inputs
    ctx.save_for_backward(u, b, a, output)
    ctx.num_threads = num_threads


def _section_backward(ctx, grad_y):
    u, b, a, y = ctx.saved_tensors
    # lambda = A^-T grad_y: the all-pole filter run backwards in time
    ones = torch.zeros_like(b)
    ones[..., 0] = 1.0
    lam = torch.ops.learnafe.sosfilt_section(grad_y.flip(-1), ones, a, ctx.num_threads).flip(-1)
    bu = b.to(u.dtype)
    grad_u = sum(bu[..., k:k + 1] * _shift_ahead(lam, k) for k in range(3))
    if u.shape[1] == 1:
        grad_u = grad_u.sum(1, keepdim=True)
    batch = (0,) if b.shape[0] == 1 else ()

    def corr(v: Tensor, k: int) -> Tensor:
        # sum_n lam[n] v[n - k], summed over the rows that share the coefficients
        s = (lam * _shift_back(v, k)).sum(-1)
        return s.sum(batch, keepdim=True) if batch else s

    grad_b = torch.stack([corr(u, k) for k in range(3)], -1).to(b.dtype)
    grad_a = -torch.stack([corr(y, k) for k in (1, 2)], -1).to(a.dtype)
    return grad_u, grad_b, grad_a, None


sosfilt_section.register_autograd(_section_backward, setup_context=_section_setup_context)
