"""Quantisation-aware training of a run for XyloAudio 3.

Trains the run's classifier -- and, with ``learn_bank``, the chip channels'
centres and Q -- on the features of the STE model of the quantised chip bank
(:class:`~learnafe.xylo.quantized.XyloA3Frontend` in ``"ste"`` mode: the forward
pass uses the chip's integer taps and 14-bit input, the backward pass the float
design's gradient).  Afterwards the chip bank is designed from the trained
centres and Q and the classifier is measured with the **bit-exact** bank, before
and after.  The steps, checkpoints (every epoch, ``OUT/checkpoints/last.pt``) and
resume are the one :class:`~learnafe.training.loop.TrainingLoop`; an
interrupted run resumes.

``learnafe xylo qat RUN --epochs N [--no-learn-bank]``.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from learnafe._migrate import resume_checkpoint
from learnafe.training.data import Augmenter, ClipSubset, epoch_batches, eval_noise_folder, open_split, stack_batch
from learnafe.training.evaluate import evaluate_dataset
from learnafe.training.finetune import classification_entry, classification_sums, epoch_logger
from learnafe.training.loop import LoopHooks, LoopOptions, TrainingLoop
from learnafe.training.model import CoDesignModel, apply_feature_mask
from learnafe.training.rundir import LAST, atomic_save, load_run, write_json
from learnafe.xylo.deploy import frontend_for_run, read_bank_spec, xylo_bank_from_spec
from learnafe.xylo.registers import save_design

log = logging.getLogger(__name__)

RESULT = "xylo_qat.json"


@dataclass(frozen=True)
class QatOptions:
    """The settings of one quantisation-aware training (:func:`quantization_aware_training`)."""

    #: Training epochs.
    epochs: int = 2
    #: Also train the chip channels' centres and Q (False: the classifier only).
    learn_bank: bool = True
    #: Learning rate of the classifier.
    lr: float = 1e-3
    #: Learning rate of the bank's log-centres and log-Q.
    lr_bank: float = 3e-3
    #: Seed of the batches, augmentation and training subset.
    seed: int = 0
    #: Clips per batch (None: the run's batch size).
    batch_size: int | None = None
    #: Train on a class-stratified subset of this many clips (0: all).
    limit_train: int = 0
    #: Evaluate on a class-stratified subset of this many clips (0: all).
    limit_eval: int = 0
    #: Tap quantisation of the chip bank (as :func:`~learnafe.xylo.deploy.xylo_bank_from_spec`).
    quantization: str = "best"


def quantization_aware_training(run_dir, options: QatOptions = QatOptions(), *, out_dir=None,
                                progress: bool = True) -> dict:
    """Train with the chip's quantisation in the loop; returns (and writes) the result."""
    if options.epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {options.epochs}")
    if not (options.lr > 0 and options.lr_bank > 0):
        raise ValueError(f"lr and lr_bank must be > 0, got {options.lr}, {options.lr_bank}")
    run = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "xylo-qat"
    out.mkdir(parents=True, exist_ok=True)
    spec = read_bank_spec(run_dir)
    bank0, _ = xylo_bank_from_spec(spec, quantization=options.quantization)
    fe = frontend_for_run(run_dir, "ste", bank=bank0, spec=spec, learn_bank=options.learn_bank,
                          quantization=options.quantization)
    classifier = copy.deepcopy(run.classifier)
    train_set, eval_set, noise = _qat_data(run.config, options, progress)

    def bitexact_eval(bank, clf):
        model = CoDesignModel(frontend_for_run(run_dir, "bitexact", bank=bank, spec=spec), clf)
        return evaluate_dataset(model.eval(), eval_set, snrs=run.config.evaluation.eval_snrs, noise=noise,
                                progress=progress)

    loop, state = _qat_loop(run.config, fe, classifier, train_set, out, options, progress)
    st = loop.load_checkpoint()
    before = st["before"] if st is not None else None
    if before is None:
        log.info("bit-exact accuracy before training on %d clips", len(eval_set))
        before = bitexact_eval(bank0, run.classifier)
    state["before"] = before
    loop.run()
    classifier.eval()
    bank = fe.quantized_bank()
    save_design(bank, out / "xylo_bank.json", run=str(run_dir), trained="quantisation-aware")
    after = bitexact_eval(bank, classifier)
    atomic_save({"classifier": classifier.state_dict()}, out / "classifier.pt")
    result = {"run": str(run_dir), "out_dir": str(out), "epochs": options.epochs,
              "learn_bank": options.learn_bank, "lr": options.lr, "lr_bank": options.lr_bank,
              "seed": options.seed, "n_train": len(train_set), "n_eval": len(eval_set),
              "before_bitexact": {"accuracy": before["accuracy"],
                                  "mean_accuracy": before["mean_accuracy"]},
              "after_bitexact": {"accuracy": after["accuracy"],
                                 "mean_accuracy": after["mean_accuracy"]},
              "history": loop.history}
    write_json(out / RESULT, result)
    log.info("bit-exact mean accuracy %.4f -> %.4f", before["mean_accuracy"],
             after["mean_accuracy"])
    return result


def _qat_data(cfg, options: QatOptions, progress: bool):
    """The training set (SNR-aware noise), the evaluation set and its noise folder, each limited
    to a class-stratified subset as ``options`` asks."""
    train_set = open_split(cfg.data.root, cfg.data.train_split, cfg, snr="train", noise=cfg.data.noise or None,
                           progress=progress)
    if options.limit_train and options.limit_train < len(train_set):
        train_set = ClipSubset.stratified(train_set, options.limit_train, seed=options.seed)
    eval_set = open_split(cfg.data.root, cfg.data.test_split, cfg, progress=progress)
    if options.limit_eval and options.limit_eval < len(eval_set):
        eval_set = ClipSubset.stratified(eval_set, options.limit_eval, seed=cfg.evaluation.eval_seed)
    return train_set, eval_set, cfg.data.noise or eval_noise_folder(eval_set.root, cfg.data.root)


def _qat_loop(cfg, fe, classifier, train_set, out: Path, options: QatOptions, progress: bool):
    """The :class:`~learnafe.training.loop.TrainingLoop` of the classifier (and the bank's centres and
    Q) on the STE bank's features, and the dict whose ``"before"`` its checkpoints carry."""
    bs = int(options.batch_size or cfg.optimiser.batch_size)
    steps = len(train_set) // bs
    if steps < 1:
        raise ValueError(f"{len(train_set)} training clips are fewer than one batch of {bs}")
    n = int(round(cfg.data.sample_rate * cfg.data.clip_seconds))
    with torch.no_grad():
        C, F = fe(torch.zeros(1, n)).shape[1:]
    aug = Augmenter(cfg.replace(seed=options.seed), C, F)
    groups = [{"params": classifier.parameters(), "lr": options.lr}]
    if options.learn_bank:
        groups.append({"params": [fe.log_centre, fe.log_q], "lr": options.lr_bank})
    opt = torch.optim.AdamW(groups, weight_decay=0.0)
    ce = torch.nn.CrossEntropyLoss(label_smoothing=cfg.cost.label_smoothing)
    torch.manual_seed(options.seed)

    def step(idx, epoch):
        classifier.train()
        audio, labels, mask = stack_batch(train_set, idx, augmenter=aug, epoch=epoch)
        feats = apply_feature_mask(fe(audio), mask, detach_fill=True)
        logits = classifier(feats.float())
        loss = ce(logits, labels)
        return loss, classification_sums(loss, logits, labels), None

    def epoch_end(sums):
        entry, _ = classification_entry(sums)
        entry.update(centres_hz=fe.center_frequencies().detach().tolist(),
                     q=fe.q().detach().tolist())
        return entry, None

    state = {"before": None}
    settings = {"epochs": options.epochs, "learn_bank": options.learn_bank, "seed": options.seed, "lr": options.lr}
    loop = TrainingLoop(
        modules={"classifier": classifier, "frontend": fe}, optimizer=opt,
        hooks=LoopHooks(step=step, batches=lambda epoch: epoch_batches(train_set, bs, epoch, options.seed, 404),
                        epoch_end=epoch_end, log_epoch=epoch_logger("xylo qat"),
                        extra_state=lambda: {"before": state["before"]}),
        options=LoopOptions(steps_per_epoch=steps, epochs=options.epochs, checkpoint=resume_checkpoint(out, LAST),
                            n_sums=3, settings=settings,
                            settings_error="holds a quantisation-aware training with other settings",
                            desc="xylo qat", progress=progress, leave_bar=False))
    return loop, state
