"""The torch operators of :func:`learnafe.sosfilt`: cascades of second-order sections, all
sections fused per sample in the compiled kernel (``cpp/sosfilt_cascade.h``).

``torch.ops.learnafe.sosfilt_cascade(u, b, a, zi, num_threads, keep_checkpoints) -> (y, zf, ck)``
filters ``u [N, 1, T]`` (or ``[N, C, T]``) by ``b [G, C, S, 3]``, ``a [G, C, S, 2]`` (normalised
by ``a0``; ``G`` 1 or ``N``) from the direct-form-II-transposed state ``zi [N, C, S, 2]`` (or
zeros), giving ``y [N, C, T]``, the final state ``zf`` and, with ``keep_checkpoints``, the state
of every section at every 64-sample block start (``ck``, float64, not differentiable; empty
otherwise).  Its gradient is the fused adjoint kernel
(``torch.ops.learnafe.sosfilt_cascade_backward``): the reversed cascade run backwards in time,
each block of the forward recomputed from those checkpoints (kept by the forward when a gradient
is wanted, so the backward does not run the forward again; found by a first pass without them).  A gradient of the
gradient (``create_graph=True``: gradient penalties, meta-learning) is taken through the
same cascade written as a composition of the section operator
``torch.ops.learnafe.sosfilt_section`` of :mod:`learnafe.ops.operators` (each section from a
zero state plus the zero-input response of its initial state), which is differentiable to
any order; both give the same first derivatives (tested).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import Tensor

from learnafe.ops import kernels
from learnafe.ops.operators import as_buffer, kernel_threads  # also registers torch.ops.learnafe.sosfilt_section

__all__ = ["sosfilt_cascade", "sosfilt_cascade_backward", "composed_cascade", "OPS"]

#: The operators this module registers (``torch.ops.learnafe.<name>``).
OPS = ("sosfilt_cascade", "sosfilt_cascade_backward")


def _check(u: Tensor, b: Tensor, a: Tensor, zi: Optional[Tensor]) -> None:
    """The layout the operator takes (``learnafe.sosfilt`` has checked the user's arguments)."""
    if u.dim() != 3 or b.dim() != 4 or a.dim() != 4 or b.shape[-1] != 3 or a.shape[-1] != 2:
        raise ValueError(f"sosfilt_cascade takes u [N, Cu, T], b [G, C, S, 3], a [G, C, S, 2], got "
                         f"{tuple(u.shape)}, {tuple(b.shape)}, {tuple(a.shape)}")
    N, Cu = u.shape[0], u.shape[1]
    G, C, S = b.shape[0], b.shape[1], b.shape[2]
    if tuple(a.shape[:3]) != (G, C, S) or G not in (1, N) or Cu not in (1, C):
        raise ValueError(f"sosfilt_cascade: inconsistent shapes u {tuple(u.shape)}, b {tuple(b.shape)}, "
                         f"a {tuple(a.shape)} (G must be 1 or N, Cu 1 or C)")
    if zi is not None and tuple(zi.shape) != (N, C, S, 2):
        raise ValueError(f"sosfilt_cascade: zi must be {(N, C, S, 2)}, got {tuple(zi.shape)}")


def _checkpoint_size(u: Tensor, b: Tensor, keep: bool):
    return kernels.cascade_checkpoint_size(u.shape[0], b.shape[1], u.shape[2], b.shape[2]) if keep else 0


@torch.library.custom_op("learnafe::sosfilt_cascade", mutates_args=(), device_types="cpu")
def sosfilt_cascade(u: Tensor, b: Tensor, a: Tensor, zi: Optional[Tensor], num_threads: int,
                    keep_checkpoints: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """The fused cascade (module docstring): ``(y [N, C, T], zf [N, C, S, 2])`` in u's dtype and the
    block checkpoints ``ck`` (float64; empty unless ``keep_checkpoints``)."""
    _check(u, b, a, zi)
    ck = np.empty(_checkpoint_size(u, b, keep_checkpoints))
    y, zf = kernels.cascade_forward(*(as_buffer(t) for t in (u, b, a, zi)), kernel_threads(num_threads),
                                    ck if keep_checkpoints else None)
    return torch.from_numpy(y), torch.from_numpy(zf), torch.from_numpy(ck)


@sosfilt_cascade.register_fake
def _sosfilt_cascade_fake(u, b, a, zi, num_threads, keep_checkpoints=False):
    _check(u, b, a, zi)
    N, T = u.shape[0], u.shape[2]
    C, S = b.shape[1], b.shape[2]
    ck = u.new_empty((_checkpoint_size(u, b, keep_checkpoints),), dtype=torch.float64)
    return u.new_empty((N, C, T)), u.new_empty((N, C, S, 2)), ck


@torch.library.custom_op("learnafe::sosfilt_cascade_backward", mutates_args=(), device_types="cpu")
def sosfilt_cascade_backward(u: Tensor, b: Tensor, a: Tensor, zi: Optional[Tensor], grad_y: Tensor,
                             grad_zf: Tensor, num_threads: int,
                             ck: Optional[Tensor] = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The fused adjoint: ``(grad_u, grad_b, grad_a, grad_zi)`` (``grad_zi`` zeros without zi);
    ``grad_b``, ``grad_a`` in b's and a's dtype.  ``ck``: the forward's block checkpoints (or None:
    the kernel finds them with a first forward pass; bitwise the same result)."""
    _check(u, b, a, zi)
    if ck is not None and ck.numel() != _checkpoint_size(u, b, True):
        raise ValueError(f"sosfilt_cascade_backward: ck must hold {_checkpoint_size(u, b, True)} values "
                         f"(sosfilt_cascade's with keep_checkpoints=True), got {ck.numel()}")
    gu, gb, ga, gzi = kernels.cascade_backward(*(as_buffer(t) for t in (u, b, a, zi, grad_y, grad_zf)),
                                               kernel_threads(num_threads), as_buffer(ck))
    gzi = torch.zeros(tuple(grad_zf.shape), dtype=u.dtype) if gzi is None else torch.from_numpy(gzi)
    return (torch.from_numpy(gu), torch.from_numpy(gb).to(b.dtype), torch.from_numpy(ga).to(a.dtype), gzi)


@sosfilt_cascade_backward.register_fake
def _sosfilt_cascade_backward_fake(u, b, a, zi, grad_y, grad_zf, num_threads, ck=None):
    _check(u, b, a, zi)
    return torch.empty_like(u), torch.empty_like(b), torch.empty_like(a), torch.empty_like(grad_zf)


def composed_cascade(u: Tensor, b: Tensor, a: Tensor, zi: Optional[Tensor], num_threads: int):
    """The cascade of :func:`sosfilt_cascade` as a composition of the section operator and tensor
    operations (differentiable to any order): section ``s`` filters section ``s - 1``'s output from
    a zero state; an initial state ``(z1, z2)`` adds the zero-input response ``z1 h[n] + z2 h[n-1]``
    (``h`` the impulse response of ``1 / A(z)``, exact by linearity); the final state is
    ``z1 = b1 x[T-1] + b2 x[T-2] - a1 y[T-1] - a2 y[T-2]``, ``z2 = b2 x[T-1] - a2 y[T-1]``."""
    section = torch.ops.learnafe.sosfilt_section
    G, C, S = b.shape[:3]
    T = u.shape[-1]
    w = u
    impulse = one = None
    zfs = []
    for s in range(S):
        bs, as_ = b[:, :, s], a[:, :, s]
        y = section(w, bs, as_, num_threads)
        if zi is not None:
            if impulse is None:
                impulse, one = u.new_zeros((G, 1, T)), bs.new_zeros((G, C, 3))
                impulse[..., 0] = 1.0
                one[..., 0] = 1.0
            h = section(impulse, one, as_, num_threads)  # impulse response of 1 / A
            h1 = torch.nn.functional.pad(h[..., :-1], (1, 0))
            y = y + zi[:, :, s, 0:1] * h + zi[:, :, s, 1:2] * h1
        b1, b2, a1, a2 = (v.to(u.dtype) for v in (bs[..., 1:2], bs[..., 2:3], as_[..., 0:1], as_[..., 1:2]))
        z2 = b2 * w[..., -1:] - a2 * y[..., -1:]
        if T >= 2:
            z1 = b1 * w[..., -1:] + b2 * w[..., -2:-1] - a1 * y[..., -1:] - a2 * y[..., -2:-1]
        else:
            z1 = b1 * w[..., -1:] - a1 * y[..., -1:]
            if zi is not None:
                z1 = z1 + zi[:, :, s, 1:2]
        z1 = z1 + 0 * y[..., -1:]  # broadcast a shared input to every channel
        z2 = z2 + 0 * y[..., -1:]
        zfs.append(torch.stack([z1[..., 0], z2[..., 0]], -1))
        w = y
    return w, torch.stack(zfs, 2)


def _setup_context(ctx, inputs, output):
    u, b, a, zi, num_threads, keep = inputs
    ck = output[2]
    ctx.mark_non_differentiable(ck)
    ctx.save_for_backward(u, b, a, zi, ck)
    ctx.keep = keep
    ctx.num_threads = num_threads


def _backward(ctx, grad_y, grad_zf, _grad_ck):
    u, b, a, zi, ck = ctx.saved_tensors
    if grad_y is None:
        grad_y = torch.zeros((u.shape[0], b.shape[1], u.shape[2]), dtype=u.dtype)
    if grad_zf is None:
        grad_zf = torch.zeros((u.shape[0],) + tuple(b.shape[1:3]) + (2,), dtype=u.dtype)
    if torch.is_grad_enabled():
        # create_graph=True: the gradient itself is differentiated; take it through the
        # composition, which autograd can differentiate again
        args = (u, b, a, zi)
        wanted = [i for i, t in enumerate(args) if t is not None and t.requires_grad]
        out = [None, None, None, None]
        if wanted:
            y, zf = composed_cascade(u, b, a, zi, ctx.num_threads)
            grads = torch.autograd.grad((y, zf), [args[i] for i in wanted], (grad_y, grad_zf),
                                        create_graph=True, allow_unused=True)
            for i, g in zip(wanted, grads):
                out[i] = torch.zeros_like(args[i]) if g is None else g
        return (*out, None, None)
    gu, gb, ga, gzi = torch.ops.learnafe.sosfilt_cascade_backward(u, b, a, zi, grad_y.contiguous(),
                                                                  grad_zf.contiguous(), ctx.num_threads,
                                                                  ck if ctx.keep else None)
    return gu, gb, ga, (gzi if zi is not None else None), None, None


sosfilt_cascade.register_autograd(_backward, setup_context=_setup_context)
