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
from pathlib import Path

import torch

log = logging.getLogger(__name__)

RESULT = "xylo_qat.json"


def quantization_aware_training(run_dir, *, epochs: int = 2, out_dir=None, learn_bank: bool = True,
                                lr: float = 1e-3, lr_bank: float = 3e-3, seed: int = 0,
                                batch_size: int | None = None, limit_train: int = 0,
                                limit_eval: int = 0, quantization: str = "best",
                                progress: bool = True) -> dict:
    """Train with the chip's quantisation in the loop; returns (and writes) the result."""
    from learnafe._migrate import resume_checkpoint
    from learnafe.training.data import (Augmenter, ClipSubset, epoch_batches, eval_noise_folder,
                                        open_split, stack_batch)
    from learnafe.training.evaluate import evaluate_dataset
    from learnafe.training.finetune import classification_entry, classification_sums, epoch_logger
    from learnafe.training.loop import LoopHooks, LoopOptions, TrainingLoop
    from learnafe.training.model import CoDesignModel, apply_feature_mask
    from learnafe.training.rundir import LAST, atomic_save, load_run, write_json
    from learnafe.xylo.deploy import frontend_for_run, read_bank_spec, xylo_bank_from_spec
    from learnafe.xylo.registers import save_design

    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if not (lr > 0 and lr_bank > 0):
        raise ValueError(f"lr and lr_bank must be > 0, got {lr}, {lr_bank}")
    run = load_run(run_dir)
    cfg = run.config
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "xylo-qat"
    out.mkdir(parents=True, exist_ok=True)
    spec = read_bank_spec(run_dir)
    bank0, _ = xylo_bank_from_spec(spec, quantization=quantization)
    fe = frontend_for_run(run_dir, "ste", bank=bank0, spec=spec, learn_bank=learn_bank,
                          quantization=quantization)
    classifier = copy.deepcopy(run.classifier)
    train_set = open_split(cfg.data, cfg.train_split, cfg, snr="train", noise=cfg.noise or None,
                           progress=progress)
    if limit_train and limit_train < len(train_set):
        train_set = ClipSubset.stratified(train_set, limit_train, seed=seed)
    eval_set = open_split(cfg.data, cfg.test_split, cfg, progress=progress)
    if limit_eval and limit_eval < len(eval_set):
        eval_set = ClipSubset.stratified(eval_set, limit_eval, seed=cfg.eval_seed)
    noise = cfg.noise or eval_noise_folder(eval_set.root, cfg.data)
    bs = int(batch_size or cfg.batch_size)
    steps = len(train_set) // bs
    if steps < 1:
        raise ValueError(f"{len(train_set)} training clips are fewer than one batch of {bs}")
    n = int(round(cfg.sample_rate * cfg.clip_seconds))
    with torch.no_grad():
        C, F = fe(torch.zeros(1, n)).shape[1:]
    aug = Augmenter(cfg.replace(seed=seed), C, F)
    groups = [{"params": classifier.parameters(), "lr": lr}]
    if learn_bank:
        groups.append({"params": [fe.log_centre, fe.log_q], "lr": lr_bank})
    opt = torch.optim.AdamW(groups, weight_decay=0.0)
    ce = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)

    def bitexact_eval(bank, clf):
        model = CoDesignModel(frontend_for_run(run_dir, "bitexact", bank=bank, spec=spec), clf)
        return evaluate_dataset(model.eval(), eval_set, snrs=cfg.eval_snrs, noise=noise,
                                progress=progress)

    torch.manual_seed(seed)

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

    before = None
    loop = TrainingLoop(
        modules={"classifier": classifier, "frontend": fe}, optimizer=opt,
        hooks=LoopHooks(step=step, batches=lambda epoch: epoch_batches(train_set, bs, epoch, seed, 404),
                        epoch_end=epoch_end, log_epoch=epoch_logger("xylo qat"),
                        extra_state=lambda: {"before": before}),
        options=LoopOptions(steps_per_epoch=steps, epochs=epochs, checkpoint=resume_checkpoint(out, LAST), n_sums=3,
                            settings={"epochs": epochs, "learn_bank": learn_bank, "seed": seed, "lr": lr},
                            settings_error="holds a quantisation-aware training with other settings",
                            desc="xylo qat", progress=progress, leave_bar=False))
    st = loop.load_checkpoint()
    if st is not None:
        before = st["before"]
    if before is None:
        log.info("bit-exact accuracy before training on %d clips", len(eval_set))
        before = bitexact_eval(bank0, run.classifier)
    loop.run()
    history = loop.history
    classifier.eval()
    bank = fe.quantized_bank()
    save_design(bank, out / "xylo_bank.json", run=str(run_dir), trained="quantisation-aware")
    after = bitexact_eval(bank, classifier)
    atomic_save({"classifier": classifier.state_dict()}, out / "classifier.pt")
    result = {"run": str(run_dir), "out_dir": str(out), "epochs": epochs,
              "learn_bank": learn_bank, "lr": lr, "lr_bank": lr_bank, "seed": seed,
              "n_train": len(train_set), "n_eval": len(eval_set),
              "before_bitexact": {"accuracy": before["accuracy"],
                                  "mean_accuracy": before["mean_accuracy"]},
              "after_bitexact": {"accuracy": after["accuracy"],
                                 "mean_accuracy": after["mean_accuracy"]},
              "history": history}
    write_json(out / RESULT, result)
    log.info("bit-exact mean accuracy %.4f -> %.4f", before["mean_accuracy"],
             after["mean_accuracy"])
    return result
