"""Quantisation-aware training of a run for XyloAudio 3.

Trains the run's classifier -- and, with ``learn_bank``, the chip channels'
centres and Q -- on the features of the STE model of the quantised chip bank
(:class:`~learnafe.xylo.quantized.XyloA3Frontend` in ``"ste"`` mode: the forward
pass uses the chip's integer taps and 14-bit input, the backward pass the float
design's gradient).  Afterwards the chip bank is designed from the trained
centres and Q and the classifier is measured with the **bit-exact** bank, before
and after.  Checkpointed every epoch; an interrupted run resumes.

``learnafe xylo qat RUN --epochs N [--no-learn-bank]``.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from learnafe._jsonio import write_json

log = logging.getLogger(__name__)

STATE = "qat_state.pt"
RESULT = "xylo_qat.json"


def quantization_aware_training(run_dir, *, epochs: int = 2, out_dir=None, learn_bank: bool = True,
                                lr: float = 1e-3, lr_bank: float = 3e-3, seed: int = 0,
                                batch_size: int | None = None, limit_train: int = 0,
                                limit_eval: int = 0, quantization: str = "best",
                                progress: bool = True) -> dict:
    """Train with the chip's quantisation in the loop; returns (and writes) the result."""
    from learnafe.training.data import Augmenter, ClipSubset, eval_noise_folder, open_split, stack_batch
    from learnafe.training.evaluate import evaluate_dataset
    from learnafe.training.model import CoDesignModel
    from learnafe.training.rundir import atomic_save, load_run, rng_state, set_rng_state
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

    state_path = out / STATE
    start, history, before = 0, [], None
    torch.manual_seed(seed)
    if state_path.is_file():
        st = torch.load(state_path, map_location="cpu", weights_only=False)
        if (st["epochs"], st["learn_bank"], st["seed"], st["lr"]) != (epochs, learn_bank, seed, lr):
            raise ValueError(f"{out} holds a quantisation-aware training with other settings; "
                             "choose another --out")
        classifier.load_state_dict(st["classifier"])
        fe.load_state_dict(st["frontend"])
        opt.load_state_dict(st["optimizer"])
        start, history, before = st["epoch"], st["history"], st["before"]
        set_rng_state(st["rng"])
        log.info("resuming quantisation-aware training in %s at epoch %d", out, start)
    if before is None:
        log.info("bit-exact accuracy before training on %d clips", len(eval_set))
        before = bitexact_eval(bank0, run.classifier)
    for epoch in range(start, epochs):
        perm = np.random.default_rng([seed, 404, epoch]).permutation(len(train_set))
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)
        classifier.train()
        sums = np.zeros(3)
        for s in tqdm(range(steps), desc=f"xylo qat epoch {epoch + 1}/{epochs}",
                      disable=not progress, leave=False):
            idx = perm[s * bs:(s + 1) * bs]
            audio, labels, mask = stack_batch(train_set, idx, augmenter=aug, epoch=epoch)
            feats = fe(audio)
            fill = feats.mean(dim=(1, 2), keepdim=True).expand_as(feats)
            feats = torch.where(mask, fill.detach(), feats)
            logits = classifier(feats.float())
            loss = ce(logits, labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sums += [loss.item() * len(idx), float((logits.argmax(1) == labels).sum()), len(idx)]
        history.append({"epoch": epoch + 1, "loss": sums[0] / sums[2],
                        "train_accuracy": sums[1] / sums[2],
                        "centres_hz": fe.center_frequencies().detach().tolist(),
                        "q": fe.q().detach().tolist()})
        log.info("xylo qat epoch %d: loss %.4f, train accuracy %.3f", epoch + 1,
                 history[-1]["loss"], history[-1]["train_accuracy"])
        atomic_save({"classifier": classifier.state_dict(), "frontend": fe.state_dict(),
                     "optimizer": opt.state_dict(), "epoch": epoch + 1, "history": history,
                     "before": before, "rng": rng_state(), "epochs": epochs,
                     "learn_bank": learn_bank, "seed": seed, "lr": lr}, state_path)
    classifier.eval()
    bank = fe.quantized_bank()
    save_design(bank, out / "xylo_bank.json", run=str(run_dir), trained="quantisation-aware")
    after = bitexact_eval(bank, classifier)
    torch.save({"classifier": classifier.state_dict()}, out / "classifier.pt")
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
