"""Multi-process training on CPU clusters: torchrun + DistributedDataParallel (gloo).

A training process started by ``torchrun`` finds ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK`` in its environment; :func:`init` then joins the process group
(gloo backend, CPU).  Launched without torchrun, the same code runs as a
single process (world size 1) and never touches ``torch.distributed``.

Design choices that make an N-process run reproduce the 1-process run:

- every rank sees the same data permutation (``DistributedSampler`` with the
  run's seed) and takes every N-th index, so one global batch of a multi-
  process run holds exactly the clips of the matching 1-process batch;
- augmentation is seeded per clip, not per process, so a clip gets the same
  noise, gain, shift and masks whichever rank processes it;
- BatchNorm statistics are computed over the global batch
  (:class:`CPUSyncBatchNorm`; ``torch.nn.SyncBatchNorm`` only runs on GPUs);
- DDP averages gradients, and each rank's loss is the mean over its share of
  the batch, so the averaged gradient is the global-batch gradient.

Only rank 0 writes checkpoints, logs and JSON files; each rank's RNG states are
gathered into the checkpoint so that resuming restores every rank exactly.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistContext", "init", "shutdown", "CPUSyncBatchNorm", "convert_sync_batchnorm",
           "all_reduce_sum", "all_gather_objects", "broadcast_objects"]


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def init(backend: str = "gloo") -> DistContext:
    """Join the torchrun process group if the environment describes one."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    owns = False
    if not dist.is_initialized():
        if not dist.is_available():
            raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
        dist.init_process_group(backend=backend)
        owns = True
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local,
                       owns_group=owns)


def shutdown(ctx: DistContext) -> None:
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum a tensor over ranks (in place; a no-op in a single process)."""
    if ctx.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_gather_objects(obj, ctx: DistContext) -> list:
    """Every rank's ``obj`` as a list indexed by rank."""
    if not ctx.distributed:
        return [obj]
    out = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_objects(objs: list, ctx: DistContext, src: int = 0) -> list:
    """Replace the entries of ``objs`` on every rank by rank ``src``'s (in place)."""
    if ctx.distributed:
        dist.broadcast_object_list(objs, src=src)
    return objs


class CPUSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are taken over the batch of all ranks.

    Works with gloo on CPU through the differentiable
    ``torch.distributed.nn.functional.all_reduce``.  In eval mode, or outside a
    process group, it is an ordinary BatchNorm.  State-dict keys are those of
    ``nn.BatchNorm1d/2d``, so checkpoints are interchangeable.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"CPUSyncBatchNorm expects at least 2-D input, got {input.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)

        from torch.distributed.nn.functional import all_reduce

        dims = [0] + list(range(2, x.dim()))
        n_local = torch.tensor([float(x.numel() // x.shape[1])], dtype=x.dtype)
        stats = torch.cat([x.sum(dims), (x * x).sum(dims), n_local])
        with warnings.catch_warnings():  # the differentiable all_reduce is marked deprecated
            warnings.simplefilter("ignore", FutureWarning)
            stats = all_reduce(stats)
        c = x.shape[1]
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c:2 * c] / n - mean * mean).clamp_min(0.0)
        with torch.no_grad():
            if self.track_running_stats and self.running_mean is not None:
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var * (n / (n - 1.0)).clamp_min(1.0) if float(n) > 1 else var
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * unbiased.detach())
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``nn.BatchNorm*`` in ``module`` by :class:`CPUSyncBatchNorm` (same state)."""
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, CPUSyncBatchNorm):
        out = CPUSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                               module.track_running_stats)
        out.load_state_dict(module.state_dict())
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, convert_sync_batchnorm(child))
    return out
