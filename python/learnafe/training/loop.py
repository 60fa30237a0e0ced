"""The one training loop: optimiser steps, gradient clipping, checkpoint and exact
resume, best-epoch tracking, early stopping, progress bar and per-epoch logging.

Every training in LearnAFE runs through :class:`TrainingLoop`: co-design
training (:mod:`learnafe.training.trainer`), classifier fine-tuning
(:mod:`learnafe.training.finetune`, also on the SPICE-calibrated bank through
:func:`learnafe.spice.finetune.finetune_spice`) and XyloAudio 3
quantisation-aware training (:mod:`learnafe.xylo.qat`).  What differs between
them is configuration given to the loop: the modules and the optimiser, the
:class:`LoopHooks` (callbacks) and the :class:`LoopOptions` (settings):

* ``modules``: the modules whose weights are checkpointed (by state-dict key);
  the optimiser's parameter groups say which parameters train;
* ``batches(epoch)``: the batches (clip indices) of one epoch, a function of the
  epoch so that data order is reproducible after a resume;
* ``step(idx, epoch)``: one forward pass and its loss -- which front end, which
  loss terms -- returning ``(loss, sums, postfix)``: the loss to minimise, a
  vector of per-epoch sums (kept in the checkpoint, so an epoch interrupted in
  the middle resumes with its statistics) and the progress-bar postfix;
* ``epoch_end(sums) -> (history entry, score or None)``: what is evaluated per
  epoch (the entry gets ``"epoch"`` first if it has none); a score enables the best-epoch callback ``on_best`` and ``early_stop``;
* ``extra_state()``: what else is checkpointed; ``settings``: options a resumed
  run must share with the interrupted one.

Exact resume: the checkpoint holds the modules, optimiser, scheduler, epoch,
step, position inside the epoch, every rank's python/numpy/torch RNG state, the
running epoch sums, the history and the early-stopping state, written
atomically; everything the loop draws is a function of these.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from learnafe._progress import progress
from learnafe.training import distributed as dist_util
from learnafe.training.rundir import atomic_save, rng_state, set_rng_state

__all__ = ["TrainingLoop", "LoopHooks", "LoopOptions", "optimizer_step"]

log = logging.getLogger(__name__)


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, *,
                   scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                   grad_clip: float = 0.0, parameters: Iterable[torch.Tensor] | None = None) -> None:
    """One optimiser step on ``loss``: zero the gradients, backward, clip the gradient
    norm of ``parameters`` (default: the optimiser's) to ``grad_clip`` if > 0, step
    the optimiser, then the scheduler if given."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        params = parameters if parameters is not None else \
            [p for g in optimizer.param_groups for p in g["params"]]
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()


@dataclass(frozen=True)
class LoopHooks:
    """The callbacks that make a :class:`TrainingLoop` one particular training (see the
    module docstring)."""

    #: ``step(idx, epoch) -> (loss, sums, postfix)``: one forward pass and its loss.
    step: Callable
    #: ``batches(epoch) -> list``: the batches (clip indices) of one epoch.
    batches: Callable[[int], list]
    #: ``epoch_end(sums) -> (history entry, score or None)``: the per-epoch evaluation.
    epoch_end: Callable | None = None
    #: ``on_best(entry)``: called when the epoch's score is the best so far.
    on_best: Callable | None = None
    #: ``log_epoch(entry, improved)``: the per-epoch log line.
    log_epoch: Callable | None = None
    #: ``after_epoch()``: called after the epoch's checkpoint is written.
    after_epoch: Callable | None = None
    #: ``extra_state() -> dict``: what else the checkpoint holds.
    extra_state: Callable[[], dict] | None = None
    #: ``clip_parameters() -> parameters`` whose gradient norm is clipped (default: the optimiser's).
    clip_parameters: Callable | None = None
    #: ``after_step()``: called after every optimiser step (e.g. a weight average's update).
    after_step: Callable | None = None


@dataclass(frozen=True)
class LoopOptions:
    """The settings of a :class:`TrainingLoop`: length, checkpointing, stopping and display."""

    #: optimiser steps in one epoch
    steps_per_epoch: int
    #: epochs to train
    epochs: int
    #: the checkpoint file (written atomically; resumed from when it exists)
    checkpoint: Path
    #: length of the per-epoch sums vector the step returns
    n_sums: int
    #: max gradient norm (0: off)
    grad_clip: float = 0.0
    #: stop after this many optimiser steps (0: no limit)
    max_steps: int = 0
    #: also checkpoint every N steps inside an epoch (0: once per epoch)
    checkpoint_every: int = 0
    #: stop after N epochs without a better score (0: off)
    early_stop: int = 0
    #: options a resumed run must share with the interrupted one (kept in the checkpoint)
    settings: Mapping[str, Any] = field(default_factory=dict)
    #: what the error says when a checkpoint holds other ``settings``
    settings_error: str = "holds a training with other settings"
    #: progress bar label
    desc: str = "train"
    #: show the progress bar
    progress: bool = True
    #: keep the progress bar on screen when it ends
    leave_bar: bool = True


class TrainingLoop:
    """One resumable training loop (see the module docstring for the callbacks).

    Counters (``epoch``, ``step``, ``batch_in_epoch``, ``history``,
    ``best_score``, ``best_epoch``, ``bad_epochs``, ``finished`` and the
    timings) are attributes; :meth:`save_checkpoint` / :meth:`load_checkpoint`
    write and restore them with the rest of the state.
    """

    def __init__(self, *, modules: dict[str, nn.Module], optimizer: torch.optim.Optimizer,
                 hooks: LoopHooks, options: LoopOptions,
                 scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                 ctx: dist_util.DistContext | None = None):
        self.modules, self.optimizer, self.scheduler = modules, optimizer, scheduler
        self.hooks, self.options = hooks, options
        self._step_fn, self._batches = hooks.step, hooks.batches
        self.steps_per_epoch, self.epochs = int(options.steps_per_epoch), int(options.epochs)
        self.checkpoint = Path(options.checkpoint)
        self.grad_clip, self._clip_parameters = float(options.grad_clip), hooks.clip_parameters
        self._after_step = hooks.after_step
        self._epoch_end, self._on_best, self._log_epoch = hooks.epoch_end, hooks.on_best, hooks.log_epoch
        self._after_epoch, self._extra_state = hooks.after_epoch, hooks.extra_state
        self.settings, self.settings_error = dict(options.settings), options.settings_error
        self.max_steps, self.checkpoint_every = options.max_steps, options.checkpoint_every
        self.early_stop = options.early_stop
        self.ctx = ctx or dist_util.DistContext()
        self.desc, self.progress, self.leave_bar = options.desc, options.progress, options.leave_bar
        self.total_steps = self.steps_per_epoch * self.epochs
        if self.max_steps:
            self.total_steps = min(self.total_steps, self.max_steps)
        # State (saved in every checkpoint).
        self.epoch, self.batch_in_epoch, self.step = 0, 0, 0
        self.best_score, self.best_epoch, self.bad_epochs = -1.0, -1, 0
        self.history: list[dict] = []
        self.epoch_sums = np.zeros(int(options.n_sums))
        self.train_seconds, self.epoch_seconds, self.finished = 0.0, 0.0, False
        self.train_cpu_seconds = 0.0  # process CPU time of the training steps (all threads)

    # ------------------------------------------------------------------ step
    def optimizer_step(self, loss: torch.Tensor) -> None:
        """Gradient of ``loss``, clipping (``grad_clip`` > 0), optimiser and scheduler step."""
        optimizer_step(self.optimizer, loss, scheduler=self.scheduler, grad_clip=self.grad_clip,
                       parameters=self._clip_parameters() if self._clip_parameters else None)

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """The checkpoint (collective under torchrun: every rank takes part)."""
        rngs = dist_util.all_gather_objects(rng_state(), self.ctx)
        st = {k: m.state_dict() for k, m in self.modules.items()}
        st["optimizer"] = self.optimizer.state_dict()
        if self.scheduler is not None:
            st["scheduler"] = self.scheduler.state_dict()
        st.update(epoch=self.epoch, batch_in_epoch=self.batch_in_epoch, step=self.step, rng=rngs,
                  world_size=self.ctx.world_size, best_score=self.best_score,
                  best_epoch=self.best_epoch, bad_epochs=self.bad_epochs, history=self.history,
                  epoch_sums=self.epoch_sums.copy(), train_seconds=self.train_seconds,
                  epoch_seconds=self.epoch_seconds, train_cpu_seconds=self.train_cpu_seconds,
                  finished=self.finished)
        st.update(self.settings)
        if self._extra_state is not None:
            st.update(self._extra_state())
        return st

    def save_checkpoint(self) -> None:
        """Write the checkpoint atomically (rank 0 writes; every rank takes part)."""
        state = self.state_dict()
        if self.ctx.is_main:
            atomic_save(state, self.checkpoint)
        self.ctx.barrier()

    def load_checkpoint(self) -> dict | None:
        """Restore the state from the checkpoint if there is one; returns the checkpoint
        (for the caller's extra state) or None.  Raises ValueError if it was written
        with other ``settings`` or another number of processes."""
        if not self.checkpoint.is_file():
            return None
        st = torch.load(self.checkpoint, map_location="cpu", weights_only=False)
        if any(st.get(k) != v for k, v in self.settings.items()):
            old = {k: st.get(k) for k in self.settings}
            raise ValueError(f"{self.checkpoint.parent} {self.settings_error} ({old}, now "
                             f"{self.settings}); choose another --out")
        world = st.get("world_size", 1)
        if world != self.ctx.world_size:
            raise ValueError(f"{self.checkpoint.parent} was checkpointed with {world} process(es); "
                             f"resume it with the same number (now {self.ctx.world_size})")
        for k, m in self.modules.items():
            m.load_state_dict(st[k])
        self.optimizer.load_state_dict(st["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(st["scheduler"])
        self.epoch, self.history = st["epoch"], st["history"]
        self.batch_in_epoch, self.step = st.get("batch_in_epoch", 0), st.get("step", 0)
        self.best_score = st.get("best_score", -1.0)
        self.best_epoch, self.bad_epochs = st.get("best_epoch", -1), st.get("bad_epochs", 0)
        self.train_seconds = st.get("train_seconds", 0.0)
        self.epoch_seconds = st.get("epoch_seconds", 0.0)
        self.train_cpu_seconds = st.get("train_cpu_seconds", 0.0)
        self.finished = st.get("finished", self.epoch >= self.epochs)
        if "epoch_sums" in st:
            self.epoch_sums = np.asarray(st["epoch_sums"], dtype=np.float64)
        rng = st["rng"]
        set_rng_state(rng[self.ctx.rank] if isinstance(rng, list) else rng)
        log.info("resumed %s at epoch %d, step %d (batch %d of the epoch)", self.checkpoint.parent,
                 self.epoch, self.step, self.batch_in_epoch)
        return st

    # ------------------------------------------------------------------- run
    def _end_epoch(self, stop_reason: str | None) -> str | None:
        sums = dist_util.all_reduce_sum(torch.from_numpy(self.epoch_sums.copy()), self.ctx).numpy()
        entry, score = self._epoch_end(sums) if self._epoch_end else ({}, None)
        if "epoch" not in entry:
            entry = {"epoch": self.epoch + 1, **entry}
        self.history.append(entry)
        improved = False
        if score is not None:
            improved = score > self.best_score
            if improved:
                self.best_score, self.best_epoch, self.bad_epochs = score, self.epoch + 1, 0
                if self._on_best is not None:
                    self._on_best(entry)
            else:
                self.bad_epochs += 1
        if self._log_epoch is not None:
            self._log_epoch(entry, improved)
        if stop_reason is None and self.early_stop and self.bad_epochs >= self.early_stop:
            stop_reason = f"early stop: no validation improvement for {self.early_stop} epochs"
        self.epoch += 1
        self.batch_in_epoch = 0
        self.epoch_sums[:] = 0.0
        self.epoch_seconds = 0.0
        if stop_reason is None and self.epoch >= self.epochs:
            stop_reason = "all epochs done"
        if stop_reason is not None:
            self.finished = True
        self.save_checkpoint()
        if self._after_epoch is not None:
            self._after_epoch()
        return stop_reason

    def run(self) -> str:
        """Train from the current state to the end; returns why it stopped."""
        stop = "already finished" if self.finished or self.epoch >= self.epochs else None
        bar = progress(total=self.total_steps, initial=self.step, desc=self.desc, unit="step",
                       disable=not (self.progress and self.ctx.is_main), leave=self.leave_bar)
        while stop is None:
            batches = self._batches(self.epoch)
            for b in range(self.batch_in_epoch, self.steps_per_epoch):
                t0, c0 = time.perf_counter(), time.process_time()
                loss, sums, postfix = self._step_fn(batches[b], self.epoch)
                self.optimizer_step(loss)
                if self._after_step is not None:
                    self._after_step()
                self.epoch_sums += sums
                dt = time.perf_counter() - t0
                self.train_cpu_seconds += time.process_time() - c0
                self.train_seconds += dt
                self.epoch_seconds += dt
                self.step += 1
                self.batch_in_epoch = b + 1
                bar.update(1)
                if postfix:
                    bar.set_postfix(epoch=self.epoch + 1, **postfix)
                if self.checkpoint_every and self.step % self.checkpoint_every == 0 \
                        and self.batch_in_epoch < self.steps_per_epoch:
                    self.save_checkpoint()
                if self.max_steps and self.step >= self.max_steps:
                    stop = f"max_steps {self.max_steps} reached"
                    break
            stop = self._end_epoch(stop)
        bar.close()
        return stop
