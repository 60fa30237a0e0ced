"""The co-design trainer: filter bank + DSCNN against L_BPF, with exact resume.

Entry point for programs (the search calls it with short budgets)::

    from learnafe.training import train
    metrics = train({"mode": "codesign", "lambda_i": 0.1, "max_steps": 200}, "runs/trial7")
    metrics["val_error"], metrics["power_w"], metrics["area_um2"]

Modes: ``codesign`` trains the bank's log-scale factors (learning rate
``lr_frontend``) together with the classifier (``lr_classifier``);
``conventional`` freezes the bank at the hand design and trains the classifier
only (the hardware terms are then constants).  AdamW, linear warm-up then
cosine decay, gradient clipping, validation at every SNR each epoch, best
checkpoint by mean validation accuracy, optional early stopping.

The steps, checkpoints, resume, early stopping and progress are the one
:class:`~learnafe.training.loop.TrainingLoop`; this module configures it.
Exact resume: ``checkpoints/last.pt`` holds model, optimiser, scheduler, epoch,
step, position inside the epoch, every rank's python/numpy/torch RNG state,
the running epoch statistics, the history and the early-stopping state.
Data order (``DistributedSampler`` seeded by epoch) and augmentation (seeded
per clip) are functions of the saved counters, so a run interrupted at any
checkpoint and resumed produces the same metrics as an uninterrupted run.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DistributedSampler

from learnafe.training import distributed as dist_util
from learnafe.training.averaging import WeightAverage
from learnafe.training.batching import BatchPrefetcher, IndexSet, limit_clips
from learnafe.training.config import TrainConfig, resolve_config
from learnafe.training.data import (
    Augmenter,
    describe_training_data,
    eval_noise_folder,
    open_split,
    real_report_set,
    real_validation_set,
    stack_batch,
    training_set,
)
from learnafe.training.evaluate import evaluate_dataset
from learnafe.training.loop import LoopHooks, LoopOptions, TrainingLoop
from learnafe.training.loss import BPFLoss, unknown_class_weights
from learnafe.training.mixup import draw_mixup, mixed_loss
from learnafe.training.model import CoDesignModel, build_classifier, build_frontend, feature_shape, hardware_cost
from learnafe.training.resume import resume_config
from learnafe.training.rundir import BANK, BEST, CONFIG, LAST, LOG, METRICS, atomic_save, read_json, write_json
from learnafe.training.teacher import load_teacher

__all__ = ["Trainer", "train", "METRICS_FORMAT"]

log = logging.getLogger("learnafe.training")
METRICS_FORMAT = "learnafe-metrics/1"


def _set_threads(n: int) -> None:
    if n <= 0:
        return
    torch.set_num_threads(n)
    try:
        from learnafe import ops

        ops.set_num_threads(n)
    except (ImportError, AttributeError):
        pass


class Trainer:
    """One training run in ``run_dir`` (created if needed).  Use :meth:`fit`."""

    def __init__(self, cfg: TrainConfig, run_dir: str | os.PathLike, *, resume: bool = True,
                 ctx: dist_util.DistContext | None = None) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.ctx = ctx or dist_util.DistContext()
        self.resume = resume
        _set_threads(cfg.output.threads)
        self._log_handler = None

    # ------------------------------------------------------------------ setup
    def _setup_logging(self) -> None:
        if not self.ctx.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        h = logging.FileHandler(self.run_dir / LOG)
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                         "%Y-%m-%d %H:%M:%S"))
        h.setLevel(logging.INFO)
        root = logging.getLogger("learnafe")
        root.addHandler(h)
        if root.level == logging.NOTSET or root.level > logging.INFO:
            root.setLevel(logging.INFO)
        self._log_handler = h

    def _teardown_logging(self) -> None:
        if self._log_handler is not None:
            logging.getLogger("learnafe").removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None

    def _check_existing(self) -> bool:
        """True if a checkpoint to resume from exists; checks the config matches (and takes the
        earlier meaning of options the run predates, :func:`~learnafe.training.resume.resume_config`)."""
        resuming, self.cfg = resume_config(self.cfg, self.run_dir, self.resume)
        return resuming

    def _build(self) -> None:
        """Seeds the generators and builds the data, model, loss, batching, optimiser and loop."""
        cfg = self.cfg
        torch.manual_seed(cfg.output.seed)
        np.random.seed(cfg.output.seed)
        import random

        random.seed(cfg.output.seed)
        self._build_data()
        frontend, classifier, (n_ch, n_frames) = self._build_model()
        self._build_batching()
        self._build_optimizer(frontend, classifier)
        self._build_loop()
        log.info("front end: %d channels x %d frames, P_ref %.4g W, A_ref %.4g um^2; classifier %s",
                 n_ch, n_frames, self.p_ref, self.a_ref, classifier.summary())

    def _build_data(self) -> None:
        """The training and validation sets (each limited as the config asks) and their noise."""
        cfg = self.cfg
        progress = cfg.output.progress and self.ctx.is_main
        self.train_ds = training_set(cfg, progress=progress)
        self.noise = cfg.data.noise or eval_noise_folder(cfg.data.root)
        if cfg.data.real:  # validation on the held-out real speakers (noise: 80-90 % portion)
            self.val_ds, self.val_noise = real_validation_set(cfg, "validation", progress=progress)
        else:
            self.val_ds = open_split(cfg.data.root, cfg.data.val_split, cfg, progress=progress)
            self.val_noise = self.noise
        if cfg.data.limit_train:
            self.train_ds = limit_clips(self.train_ds, cfg.data.limit_train, cfg.output.seed)
        if cfg.data.limit_val:
            self.val_ds = limit_clips(self.val_ds, cfg.data.limit_val, cfg.evaluation.eval_seed)
        log.info("training data: %s", describe_training_data(cfg))

    def _build_model(self):
        """The front end, classifier and model, the cost references, the loss and the augmenter;
        returns the front end, the classifier and the feature shape ``(C, F)`` of a clip."""
        cfg = self.cfg
        frontend = build_frontend(cfg)
        self.initial_bank = frontend.to_dict()
        n_samples = self.train_ds.length
        n_ch, n_frames = feature_shape(frontend, n_samples)
        classifier = build_classifier(cfg, n_ch)
        self.model = CoDesignModel(frontend, classifier)
        if cfg.bank.mode == "conventional":
            for p in frontend.parameters():
                p.requires_grad_(False)
        with torch.no_grad():
            p_ref, a_ref = hardware_cost(frontend)
        self.p_ref, self.a_ref = float(p_ref), float(a_ref)
        # a front end without a hardware model (a classic bank) costs nothing: the
        # loss is the cross-entropy alone, against unit references
        self.has_cost = bool(getattr(frontend, "has_cost", True))
        if not self.has_cost:
            self.p_ref = self.a_ref = 1.0
        elif not (self.p_ref > 0 and self.a_ref > 0):
            raise RuntimeError(f"the front end reports power {self.p_ref} W and area {self.a_ref} "
                               "um^2; L_BPF needs positive references")
        cost_terms = cfg.bank.mode == "codesign" and self.has_cost
        self.loss_fn = BPFLoss(self.p_ref, self.a_ref, lambda_ce=cfg.cost.lambda_ce,
                               lambda_i=cfg.cost.lambda_i if cost_terms else 0.0,
                               lambda_c=cfg.cost.lambda_c if cost_terms else 0.0,
                               label_smoothing=cfg.cost.label_smoothing,
                               distill_weight=cfg.distill.distill_weight,
                               distill_temperature=cfg.distill.distill_temperature,
                               class_weights=unknown_class_weights(cfg.cost.unknown_weight,
                                                                   classifier.n_classes))
        self.teacher = load_teacher(cfg, classifier.n_classes, (n_ch, n_frames)) \
            if cfg.distill.distill_weight > 0 else None
        self.augmenter = Augmenter(cfg, n_ch, n_frames)
        return frontend, classifier, (n_ch, n_frames)

    def _build_batching(self) -> None:
        """The per-process batch, the distributed sampler, steps per epoch and total steps."""
        cfg, ctx = self.cfg, self.ctx
        if ctx.world_size > 1 and cfg.optimiser.batch_size % ctx.world_size:
            raise ValueError(f"batch_size {cfg.optimiser.batch_size} must be divisible by the number of "
                             f"processes ({ctx.world_size})")
        self.local_batch = cfg.optimiser.batch_size // ctx.world_size
        self.sampler = DistributedSampler(IndexSet(len(self.train_ds)), num_replicas=ctx.world_size,
                                          rank=ctx.rank, shuffle=True, seed=cfg.output.seed, drop_last=True)
        self.steps_per_epoch = len(self.sampler) // self.local_batch
        if self.steps_per_epoch < 1:
            raise ValueError(f"the training split has {len(self.train_ds)} clips, fewer than one "
                             f"batch of {cfg.optimiser.batch_size}; lower batch_size or add data")
        self.total_steps = self.steps_per_epoch * cfg.schedule.epochs
        if cfg.schedule.max_steps:
            self.total_steps = min(self.total_steps, cfg.schedule.max_steps)

    def _build_optimizer(self, frontend, classifier) -> None:
        """AdamW over the trainable front-end and the classifier parameters, and the learning-rate
        schedule (linear warm-up, then constant or cosine)."""
        cfg = self.cfg
        groups = []
        fe_params = [p for p in frontend.parameters() if p.requires_grad]
        if fe_params:
            groups.append({"params": fe_params, "lr": cfg.optimiser.lr_frontend, "weight_decay": 0.0,
                           "name": "frontend"})
        groups.append({"params": list(classifier.parameters()), "lr": cfg.optimiser.lr_classifier,
                       "weight_decay": cfg.optimiser.weight_decay, "name": "classifier"})
        self.optimizer = torch.optim.AdamW(groups)
        warm, total = cfg.schedule.warmup_steps, self.total_steps

        def schedule(step: int) -> float:
            if warm and step < warm:
                return (step + 1) / warm
            if cfg.schedule.scheduler == "constant":
                return 1.0
            prog = min(1.0, (step - warm) / max(1, total - warm))
            return 0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * prog))

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)

    def _build_loop(self) -> None:
        """The (distributed) model wrapper, the per-rank RNG stream and the training loop."""
        cfg, ctx = self.cfg, self.ctx
        if ctx.distributed:
            self.model = dist_util.convert_sync_batchnorm(self.model)
            self.ddp = torch.nn.parallel.DistributedDataParallel(self.model)
        else:
            self.ddp = self.model
        decay = cfg.optimiser.ema_decay
        self.average = WeightAverage(self.model, decay) if decay > 0 else None
        # Per-rank RNG stream for dropout etc. (rank 0 of N == the single process).
        torch.manual_seed(cfg.output.seed * 1000003 + ctx.rank)
        self.loop = TrainingLoop(
            modules={"model": self.model, **({"ema": self.average} if self.average is not None else {})},
            optimizer=self.optimizer, scheduler=self.scheduler,
            hooks=LoopHooks(step=self._loop_step, batches=self._batches, epoch_end=self._epoch_entry,
                            on_best=self._save_best, log_epoch=self._log_epoch,
                            after_epoch=self._after_epoch, clip_parameters=self.model.parameters,
                            after_step=self._update_average if self.average is not None else None),
            options=LoopOptions(steps_per_epoch=self.steps_per_epoch, epochs=cfg.schedule.epochs,
                                checkpoint=self.run_dir / LAST, n_sums=6, grad_clip=cfg.optimiser.grad_clip,
                                max_steps=cfg.schedule.max_steps, checkpoint_every=cfg.output.checkpoint_every,
                                early_stop=cfg.schedule.early_stop, desc=f"train {cfg.bank.mode}",
                                progress=cfg.output.progress),
            ctx=ctx)
        log.info("run %s: mode %s, %d training clips (%d steps/epoch x %d epochs%s), %d validation "
                 "clips, %d process(es)", self.run_dir, cfg.bank.mode, len(self.train_ds),
                 self.steps_per_epoch, cfg.schedule.epochs,
                 f", max {cfg.schedule.max_steps} steps" if cfg.schedule.max_steps else "", len(self.val_ds),
                 ctx.world_size)

    # The loop's counters, read by the metrics and by programs that drive a Trainer.
    epoch = property(lambda self: self.loop.epoch)
    step = property(lambda self: self.loop.step)
    history = property(lambda self: self.loop.history)
    best_epoch = property(lambda self: self.loop.best_epoch)
    finished = property(lambda self: self.loop.finished)
    train_seconds = property(lambda self: self.loop.train_seconds)
    train_cpu_seconds = property(lambda self: self.loop.train_cpu_seconds)

    def save_checkpoint(self) -> None:
        self.loop.save_checkpoint()

    @property
    def eval_model(self) -> CoDesignModel:
        """The model that is validated and kept as the best: the weight average when
        ``optimiser.ema_decay`` > 0, else the trained model itself."""
        return self.model if self.average is None else self.average.module

    def _update_average(self) -> None:
        self.average.update(self.model)

    # -------------------------------------------------------------- training
    def _batches(self, epoch: int) -> list:
        # the data set's crop offsets and training noise (and a mixed set's clips) follow the epoch
        self.train_ds.set_epoch(epoch)
        self.sampler.set_epoch(epoch)
        order = list(self.sampler)
        lb = self.local_batch
        return [order[b * lb:(b + 1) * lb] for b in range(self.steps_per_epoch)]

    def _forward(self, audio, labels, mask, mix=None):
        self.ddp.train()
        audio = audio if mix is None else mix.audio(audio)
        out = self.ddp(audio, mask)
        teacher_logits = None
        if self.teacher is not None:  # the teacher's soft targets of this very (augmented, mixed) batch
            with torch.no_grad():
                teacher_logits = self.teacher(audio, mask)["logits"]
        loss, terms = mixed_loss(self.loss_fn, out, labels, teacher_logits, mix)
        hit = labels if mix is None else mix.dominant(labels)
        terms["correct"] = int((out["logits"].argmax(1) == hit).sum())
        return loss, terms

    def _load_batch(self, idx, epoch: int):
        return stack_batch(self.train_ds, idx, augmenter=self.augmenter, epoch=epoch)

    def _loop_step(self, idx, epoch: int):
        # The next batch of the epoch is loaded in the background while this step runs.
        if getattr(self, "_epoch_order", (None,))[0] != epoch:
            self._epoch_order = (epoch, self._batches(epoch))
        order = self._epoch_order[1]
        b = self.loop.batch_in_epoch  # position of idx in the epoch
        nxt = order[b + 1] if b + 1 < len(order) else None
        if not hasattr(self, "_prefetch"):
            self._prefetch = BatchPrefetcher(self._load_batch)
        audio, labels, mask = self._prefetch.get(idx, epoch, nxt)
        mix = draw_mixup(self.cfg.augment.mixup_alpha, (self.cfg.output.seed, epoch, b, self.ctx.rank), len(idx))
        loss, terms = self._forward(audio, labels, mask, mix)
        k = len(idx)
        sums = np.array([terms["total"] * k, terms["ce"] * k, terms["power"] * k,
                         terms["area"] * k, terms["correct"], k], dtype=np.float64)
        return loss, sums, {"ce": f"{terms['ce']:.3f}", "P": f"{terms['power']:.3f}",
                            "A": f"{terms['area']:.3f}"}

    def _validate(self) -> dict:
        return evaluate_dataset(self.eval_model, self.val_ds, snrs=self.cfg.evaluation.eval_snrs,
                                noise=self.val_noise, ctx=self.ctx, progress=self.cfg.output.progress)

    def _epoch_entry(self, sums) -> tuple[dict, float]:
        n = max(sums[5], 1.0)
        val = self._validate()
        score = val["mean_accuracy"]
        with torch.no_grad():
            power, area = (float(v) for v in hardware_cost(self.eval_model.frontend))
        clips = sums[5]
        es = self.loop.epoch_seconds
        entry = {"epoch": self.loop.epoch + 1, "step": self.loop.step,
                 "lr": {g.get("name", str(i)): g["lr"] for i, g in enumerate(self.optimizer.param_groups)},
                 "train": {"loss": sums[0] / n, "ce": sums[1] / n, "power": sums[2] / n,
                           "area": sums[3] / n, "accuracy": sums[4] / n, "clips": int(clips)},
                 "val": {"accuracy": val["accuracy"], "mean_accuracy": score},
                 "power_w": power, "area_um2": area,
                 "clips_per_s": clips / es if es > 0 else None}
        self._last_validation = val
        return entry, score

    def _save_best(self, entry: dict) -> None:
        if self.ctx.is_main:
            atomic_save({"model": self.eval_model.state_dict(), "epoch": entry["epoch"],
                         "validation": self._last_validation}, self.run_dir / BEST)

    def _log_epoch(self, entry: dict, improved: bool) -> None:
        t, val = entry["train"], entry["val"]
        log.info("epoch %d: loss %.4f (CE %.4f, P/Pref %.4f, A/Aref %.4f), train acc %.3f | val %s "
                 "mean %.4f%s | %.1f clips/s", entry["epoch"], t["loss"], t["ce"], t["power"],
                 t["area"], t["accuracy"],
                 " ".join(f"{k}:{v:.3f}" for k, v in val["accuracy"].items()), val["mean_accuracy"],
                 " (best)" if improved else "", entry["clips_per_s"] or 0.0)

    def _after_epoch(self) -> None:
        self._write_metrics(status="finished" if self.loop.finished else "running")

    def fit(self, *, test: bool = True) -> dict:
        """Train (or resume) to the end and return the metrics (also in ``metrics.json``)."""
        self._setup_logging()
        try:
            resuming = self._check_existing()
            if self.ctx.is_main:
                write_json(self.run_dir / CONFIG, self.cfg.to_dict())
            self._build()
            if resuming:
                self.loop.load_checkpoint()
            try:
                stop = self.loop.run()
            finally:
                if hasattr(self, "_prefetch"):
                    self._prefetch.close()
            log.info("training stopped: %s", stop)
            return self._finish(test=test)
        finally:
            self._teardown_logging()

    # ------------------------------------------------------------------ end
    def _finish(self, *, test: bool) -> dict:
        # Rank 0 owns the files; the other ranks (possibly on machines without the run
        # directory) receive the best weights and the stored test result from it.
        best_state, metrics = None, {}
        if self.ctx.is_main:
            best = self.run_dir / BEST
            if best.is_file():
                best_state = torch.load(best, map_location="cpu", weights_only=False)["model"]
            metrics = read_json(self.run_dir / METRICS) if (self.run_dir / METRICS).is_file() else {}
        if self.ctx.distributed:
            box = [best_state, metrics.get("test"), metrics.get("real_validation")]
            dist_util.broadcast_objects(box, self.ctx)
            best_state, metrics = box[0], {k: v for k, v in (("test", box[1]),
                                                               ("real_validation", box[2])) if v is not None}
        if best_state is not None:
            self.model.load_state_dict(best_state)
        self.model.eval()
        if self.ctx.is_main:
            write_json(self.run_dir / BANK, self.model.frontend.to_dict())
        self._real_validation = metrics.get("real_validation")
        if self.cfg.data.real and self._real_validation is None:
            # the report on the validation speakers: the clips that did not choose the epoch,
            # noise from the 90-100 % portion of the recordings, never seen in training or selection
            clips, noise = real_report_set(self.cfg)
            log.info("real validation speakers: %d clips of %s, noise %s", len(clips), self.cfg.data.real,
                     noise)
            self._real_validation = evaluate_dataset(self.model, clips, snrs=self.cfg.evaluation.eval_snrs,
                                                     noise=noise, ctx=self.ctx,
                                                     progress=self.cfg.output.progress)
            self._real_validation["protocol"] = (
                f"speaker-disjoint validation part ({100 * self.cfg.data.real_val_fraction:g} % of every "
                f"class, split seed {self.cfg.data.real_split_seed}) of {self.cfg.data.real}, less the "
                f"{self.cfg.data.limit_val or 0} clips that chose the best epoch; noise from the "
                "last 10 % of every recording")
            log.info("real validation accuracy: %s", " ".join(
                f"{k}:{v:.4f}" for k, v in self._real_validation["accuracy"].items()))
        if test and metrics.get("test") is None:
            ds = open_split(self.cfg.data.root, self.cfg.data.test_split, self.cfg,
                            progress=self.cfg.output.progress and self.ctx.is_main)
            if self.cfg.data.limit_val:
                ds = limit_clips(ds, self.cfg.data.limit_val, self.cfg.evaluation.eval_seed)
            log.info("testing the best model (epoch %d) on %d %s clips", self.best_epoch, len(ds),
                     self.cfg.data.test_split)
            test_metrics = evaluate_dataset(self.model, ds, snrs=self.cfg.evaluation.eval_snrs, noise=self.noise,
                                            ctx=self.ctx, progress=self.cfg.output.progress)
            log.info("test accuracy: %s", " ".join(f"{k}:{v:.4f}" for k, v in test_metrics["accuracy"].items()))
            return self._write_metrics(status="finished", test=test_metrics)
        return self._write_metrics(status="finished", test=metrics.get("test"))

    def _write_metrics(self, *, status: str, test: dict | None = None) -> dict:
        best = next((h for h in self.history if h["epoch"] == self.best_epoch), None)
        if best is None and self.history:
            best = self.history[-1]
        with torch.no_grad():
            power, area = (float(v) for v in hardware_cost(self.model.frontend))
        val = best["val"] if best else None
        clips = sum(h["train"]["clips"] for h in self.history)
        m = {"format": METRICS_FORMAT, "status": status, "mode": self.cfg.bank.mode,
             "run_dir": str(self.run_dir), "world_size": self.ctx.world_size,
             "n_params_classifier": int(sum(p.numel() for p in self.model.classifier.parameters())),
             "n_train": len(self.train_ds), "n_val": len(self.val_ds),
             "epochs_run": len(self.history), "steps": self.step, "best_epoch": self.best_epoch,
             "validation": val,
             "val_accuracy": val["mean_accuracy"] if val else None,
             "val_error": 1.0 - val["mean_accuracy"] if val else None,
             "power_w": power, "area_um2": area, "p_ref_w": self.p_ref, "a_ref_um2": self.a_ref,
             # a front end without a hardware model: nothing to save (power and area are 0)
             "power_saving": 1.0 - power / self.p_ref if self.has_cost else 0.0,
             "area_saving": 1.0 - area / self.a_ref if self.has_cost else 0.0,
             "throughput_clips_per_s": clips / self.train_seconds if self.train_seconds > 0 else None,
             "train_seconds": self.train_seconds,
             # per CPU-second: what one free core delivers with threads=1 (wall-clock
             # throughput on a shared machine depends on the load)
             "clips_per_cpu_second": clips / self.train_cpu_seconds if self.train_cpu_seconds > 0 else None,
             "train_cpu_seconds": self.train_cpu_seconds,
             "training_data": describe_training_data(self.cfg), "history": self.history}
        if hasattr(self.train_ds, "describe"):
            m["training_sources"] = self.train_ds.describe()
        real_val = getattr(self, "_real_validation", None)
        if real_val is not None:
            m["real_validation"] = real_val
            m["real_validation_accuracy"] = real_val["mean_accuracy"]
        if test is not None:
            m["test"] = test
            m["test_accuracy"] = test["mean_accuracy"]
        if self.ctx.is_main:
            write_json(self.run_dir / METRICS, m)
        return m


def train(config: TrainConfig | dict | str | os.PathLike | None = None,
          run_dir: str | os.PathLike | None = None, *, resume: bool = True, test: bool = True,
          **overrides: Any) -> dict:
    """Train one run and return its metrics (the content of ``RUN/metrics.json``).

    ``config``: a :class:`TrainConfig`, a dict of options (missing ones take their
    defaults), a JSON file path, or None; keyword ``overrides`` are applied on top.
    ``run_dir``: the run directory (required); an existing run with the same
    configuration is resumed (``resume=False`` refuses to touch it).
    ``test``: also evaluate the best model on the test split.

    Result keys used by the search: ``val_error`` (1 - mean validation accuracy
    over clean and every SNR), ``val_accuracy``, ``power_w``, ``area_um2``,
    ``power_saving`` and ``area_saving`` (fractions of the conventional design).
    Under ``torchrun`` every process calls this; rank 0 writes the files.
    """
    if run_dir is None:
        raise ValueError("train: run_dir is required (the folder the run is written to)")
    cfg = resolve_config(config, **overrides)
    ctx = dist_util.init()
    try:
        return Trainer(cfg, run_dir, resume=resume, ctx=ctx).fit(test=test)
    finally:
        dist_util.shutdown(ctx)
