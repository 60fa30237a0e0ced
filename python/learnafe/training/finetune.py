"""Classifier fine-tuning with the front end frozen.

Two uses, one loop:

* **Another front end** (stage 2 of the paper): the features come from a
  different model of the same bank -- the SPICE-calibrated bank
  (:func:`learnafe.spice.finetune.finetune_spice`), a fixed-point XyloAudio 3
  bank, ... -- any ``nn.Module`` mapping audio ``[B, T]`` at the run's sample
  rate to features ``[B, C, F]`` of the run's shape.  The classifier is
  trained on the run's training split for a few epochs; accuracy on the test
  split before and after is reported per SNR.
* **Real recordings** (:func:`finetune_real`): a 12-class folder of real
  speech is split by speaker into two disjoint parts with the one speaker
  split of the library (:func:`learnafe.data.sources.speaker_split`: stratified,
  deterministic; the run's own ``real_val_fraction``/``real_split_seed`` when it
  trained on the same folder, else halves with seed 0); the classifier is
  fine-tuned on the training part ``A`` and evaluated on the validation part
  ``B`` before and after, so no speaker of the reported number was seen in
  training.

The output directory is a run directory (``config.json``, ``bank.json`` of the
run's bank, ``checkpoints/best.pt`` with the fine-tuned classifier) plus
``finetune.json`` (before/after accuracy, history) -- so ``learnafe
evaluate OUT`` works on it (with the run's own bank as front end).  Training
augmentation is the run's (noise at random SNR, gain, shift, speed, masks);
the front end runs without gradients.  The steps, checkpoints (every epoch,
``OUT/checkpoints/last.pt``) and resume are the one
:class:`~learnafe.training.loop.TrainingLoop`; a second call with the same
arguments resumes.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from learnafe._migrate import resume_checkpoint
from learnafe.data import BackgroundNoise
from learnafe.data.sources import speaker_halves, speaker_of  # noqa: F401  (re-exported)
from learnafe.training.data import Augmenter, ClipSubset, epoch_batches, eval_noise_folder, open_split, stack_batch
from learnafe.training.evaluate import evaluate_dataset
from learnafe.training.loop import LoopHooks, LoopOptions, TrainingLoop
from learnafe.training.model import CoDesignModel, apply_feature_mask, feature_shape
from learnafe.training.rundir import BANK, BEST, CONFIG, LAST, atomic_save, load_run, write_json

__all__ = ["FinetuneData", "finetune", "finetune_real", "speaker_halves", "speaker_of", "classification_sums",
           "classification_entry", "epoch_logger"]

log = logging.getLogger(__name__)


def classification_sums(loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """Per-epoch sums of a classifier-training step: ``[loss x clips, correct, clips]``."""
    n = len(labels)
    return np.array([loss.item() * n, float((logits.argmax(1) == labels).sum()), n], dtype=np.float64)


def classification_entry(sums) -> tuple[dict, None]:
    """The history entry of an epoch of :func:`classification_sums` (no per-epoch score)."""
    return {"loss": sums[0] / sums[2], "train_accuracy": sums[1] / sums[2]}, None


def epoch_logger(label: str):
    """Logs an epoch's loss and training accuracy under ``label``."""
    def log_epoch(entry: dict, improved: bool) -> None:
        log.info("%s epoch %d: loss %.4f, train accuracy %.3f", label, entry["epoch"],
                 entry["loss"], entry["train_accuracy"])
    return log_epoch


def _frozen(frontend: nn.Module) -> nn.Module:
    frontend.eval()
    for p in frontend.parameters():
        p.requires_grad_(False)
    return frontend


@dataclass(frozen=True)
class FinetuneData:
    """The data of a fine-tuning other than the run's own splits (:func:`finetune`)."""

    #: Data set to train on (None: the run's training split with its SNR-aware noise).
    train_set: Dataset | None = None
    #: Data set to report on (None: the run's test split).
    eval_set: Dataset | None = None
    #: Noise folder of the fixed-SNR evaluation (None: as in ``learnafe evaluate``).
    noise: str | os.PathLike | None = None
    #: Clips per batch (None: the run's batch size).
    batch_size: int | None = None


def finetune(run_dir, frontend: nn.Module | None = None, *, epochs: int = 5, out_dir=None,
             lr: float = 1e-3, seed: int = 0, progress: bool = True, label: str = "finetune",
             data: FinetuneData = FinetuneData()) -> dict:
    """Fine-tune the run's classifier on features of ``frontend`` (default: the run's own
    bank), front end frozen.  Returns ``{"before": eval, "after": eval, ...}`` (each
    an evaluation dict as in :mod:`learnafe.training.evaluate`) and writes ``out_dir``.

    ``data``: the training and evaluation sets, noise folder and batch size when they are not
    the run's own (:class:`FinetuneData`).
    """
    if epochs < 1:
        raise ValueError(f"finetune: epochs must be >= 1, got {epochs}")
    if not lr > 0:
        raise ValueError(f"finetune: lr must be > 0, got {lr}")
    run = load_run(run_dir)
    cfg = run.config
    out_dir = Path(out_dir) if out_dir is not None else Path(run_dir) / label
    own = frontend is None
    frontend, shape = _frozen_matching(run, frontend)
    classifier = copy.deepcopy(run.classifier)
    model = CoDesignModel(frontend, classifier)
    train_set, eval_set, noise = _finetune_sets(cfg, data, progress)
    loop, state = _finetune_loop(cfg, frontend, classifier, train_set, shape, out_dir,
                                 dict(epochs=epochs, lr=lr, seed=seed, batch_size=data.batch_size,
                                      label=label, progress=progress))
    st = loop.load_checkpoint()
    if st is not None:
        state["before"] = st["before"]
    if state["before"] is None:
        log.info("%s: accuracy before fine-tuning on %d clips", label, len(eval_set))
        state["before"] = evaluate_dataset(model, eval_set, snrs=cfg.evaluation.eval_snrs, noise=noise, progress=progress)
    before = state["before"]
    loop.run()
    classifier.eval()
    after = evaluate_dataset(model, eval_set, snrs=cfg.evaluation.eval_snrs, noise=noise, progress=progress)
    _write_finetuned_run(out_dir, run, classifier, epochs, run_dir)
    result = {"run": str(run_dir), "out_dir": str(out_dir), "label": label,
              "frontend": "run" if own else type(frontend).__name__, "epochs": epochs, "lr": lr,
              "seed": seed, "n_train": len(train_set), "n_eval": len(eval_set),
              "before": before, "after": after, "history": loop.history}
    write_json(out_dir / "finetune.json", result)
    log.info("%s: mean accuracy %.4f -> %.4f", label, before["mean_accuracy"], after["mean_accuracy"])
    return result


def _frozen_matching(run, frontend: nn.Module | None) -> tuple[nn.Module, tuple[int, int]]:
    """``frontend`` (None: the run's bank) frozen, and its feature shape ``(C, F)`` of one clip,
    which must be the run's."""
    cfg = run.config
    frontend = _frozen(run.frontend if frontend is None else frontend)
    n = int(round(cfg.data.sample_rate * cfg.data.clip_seconds))
    want = feature_shape(run.frontend, n)
    got = feature_shape(frontend, n)
    if got != want:
        raise ValueError(f"finetune: the front end gives features of shape [C, F] = {list(got)} for a "
                         f"{cfg.data.clip_seconds:g} s clip at {cfg.data.sample_rate} Hz, the run's classifier expects {list(want)}")
    return frontend, got


def _finetune_sets(cfg, data: FinetuneData, progress: bool):
    """The training set, evaluation set and evaluation noise folder: ``data``'s or the run's."""
    train_set, eval_set = data.train_set, data.eval_set
    if train_set is None:
        train_set = open_split(cfg.data.root, cfg.data.train_split, cfg, snr="train", noise=cfg.data.noise or None,
                               progress=progress)
    if eval_set is None:
        eval_set = open_split(cfg.data.root, cfg.data.test_split, cfg, progress=progress)
    return train_set, eval_set, data.noise or cfg.data.noise or eval_noise_folder(eval_set.root, cfg.data.root)


def _finetune_loop(cfg, frontend, classifier, train_set, shape, out_dir: Path, settings: dict):
    """The :class:`~learnafe.training.loop.TrainingLoop` of the classifier on the frozen front end's
    features (cosine learning rate), and the dict whose ``"before"`` its checkpoints carry.
    ``settings``: epochs, lr, seed, batch_size, label, progress."""
    epochs, lr, seed, label = settings["epochs"], settings["lr"], settings["seed"], settings["label"]
    bs = int(settings["batch_size"] or cfg.optimiser.batch_size)
    steps_per_epoch = len(train_set) // bs
    if steps_per_epoch < 1:
        raise ValueError(f"finetune: {len(train_set)} training clips are fewer than one batch of {bs}")
    aug = Augmenter(cfg.replace(seed=seed), shape[0], shape[1])
    opt = torch.optim.AdamW(classifier.parameters(), lr=lr, weight_decay=cfg.optimiser.weight_decay)
    total = steps_per_epoch * epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total))))
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    ce = nn.CrossEntropyLoss(label_smoothing=cfg.cost.label_smoothing)

    def step(idx, epoch):
        classifier.train()
        audio, labels, mask = stack_batch(train_set, idx, augmenter=aug, epoch=epoch)
        with torch.no_grad():
            feats = apply_feature_mask(frontend(audio), mask)
        logits = classifier(feats.float())
        loss = ce(logits, labels)
        return loss, classification_sums(loss, logits, labels), None

    state = {"before": None}
    loop = TrainingLoop(
        modules={"classifier": classifier}, optimizer=opt, scheduler=sched,
        hooks=LoopHooks(step=step, batches=lambda epoch: epoch_batches(train_set, bs, epoch, seed, 303),
                        epoch_end=classification_entry, log_epoch=epoch_logger(label),
                        extra_state=lambda: {"before": state["before"]}),
        options=LoopOptions(steps_per_epoch=steps_per_epoch, epochs=epochs, checkpoint=resume_checkpoint(out_dir, LAST),
                            n_sums=3, settings={"epochs": epochs, "lr": lr, "seed": seed},
                            settings_error="holds a fine-tuning with other settings", desc=label,
                            progress=settings["progress"], leave_bar=False))
    return loop, state


def _write_finetuned_run(out_dir: Path, run, classifier, epochs: int, run_dir) -> None:
    """A loadable run directory: the run's config and bank with the fine-tuned classifier."""
    write_json(out_dir / CONFIG, run.config.to_dict())
    write_json(out_dir / BANK, run.bank)
    atomic_save({"model": CoDesignModel(run.frontend, classifier).state_dict(), "epoch": epochs,
                 "finetuned_from": str(run_dir)}, out_dir / BEST)


def finetune_real(run_dir, real_dir, *, epochs: int = 5, out_dir=None, lr: float = 1e-3,
                  seed: int = 0, progress: bool = True) -> dict:
    """Fine-tune on speaker half A of a real 12-class folder, report on half B
    (``learnafe finetune RUN --real DIR``)."""
    run = load_run(run_dir)
    cfg = run.config
    real_dir = Path(real_dir)
    if not real_dir.is_dir():
        raise FileNotFoundError(f"--real {real_dir} is not a folder")
    noise_dir = cfg.data.noise or eval_noise_folder(real_dir, cfg.data.root)
    if noise_dir is None:
        raise FileNotFoundError(f"no background noise for {real_dir}: neither it nor the run's data "
                                f"{cfg.data.root} has _background_noise_/")
    base = open_split(real_dir, "test", cfg, progress=progress)
    train_base = open_split(real_dir, "test", cfg, progress=progress, snr="train",
                            noise=BackgroundNoise(noise_dir, cfg.data.sample_rate, portion="train"))
    same = bool(cfg.data.real) and Path(cfg.data.real).resolve() == real_dir.resolve()
    fraction, split_seed = (cfg.data.real_val_fraction, cfg.data.real_split_seed) if same else (0.5, 0)
    half_a, half_b = speaker_halves(base, val_fraction=fraction, seed=split_seed)
    train_a = ClipSubset(train_base, half_a.indices)
    log.info("real fine-tuning: %d clips (speaker half A) for training, %d (half B) for evaluation",
             len(train_a), len(half_b))
    res = finetune(run_dir, None, epochs=epochs, lr=lr, seed=seed, progress=progress,
                   out_dir=out_dir or Path(run_dir) / "finetune-real", label="finetune-real",
                   data=FinetuneData(train_set=train_a, eval_set=half_b, noise=noise_dir,
                                     batch_size=min(cfg.optimiser.batch_size, max(2, len(train_a) // 8))))
    res["protocol"] = (f"fine-tuned on speaker half A ({len(train_a)} clips) of {real_dir}, "
                       f"evaluated on the disjoint half B ({len(half_b)} clips)")
    write_json(Path(res["out_dir"]) / "finetune.json", res)
    return res
