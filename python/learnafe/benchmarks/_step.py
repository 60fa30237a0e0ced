"""One co-design training step on a batch in memory, as the trainer builds and runs it.

Shared by the ``training`` section (:mod:`learnafe.benchmarks.training`) and the
torchrun scaling run (:mod:`learnafe.benchmarks._ddp`).
"""

from __future__ import annotations


def make_setup(mode: str, noise: bool, batch: int, seed: int) -> dict:
    """Model, loss, optimiser and a random batch for one configuration (as the trainer builds them)."""
    import torch

    from learnafe.training.config import TrainConfig
    from learnafe.training.loss import BPFLoss
    from learnafe.training.model import CoDesignModel, build_classifier, build_frontend

    cfg = TrainConfig.from_dict({"bank.mode": mode, "noise.mode": "always" if noise else "off"})
    torch.manual_seed(seed)
    fe = build_frontend(cfg)
    if mode == "conventional":
        fe.requires_grad_(False)
    model = CoDesignModel(fe, build_classifier(cfg, cfg.bank.n_channels)).train()
    loss_fn = BPFLoss(fe.reference_power(), fe.reference_area(), lambda_i=0.05, lambda_c=0.05)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    audio = 0.1 * torch.randn(batch, cfg.data.sample_rate, generator=gen)
    labels = torch.randint(0, 12, (batch,), generator=gen)
    n_frames = cfg.data.sample_rate // fe.features.hop
    mask = torch.rand(batch, cfg.bank.n_channels, n_frames, generator=gen) < 0.05
    return {"cfg": cfg, "mode": mode, "fe": fe, "model": model, "loss_fn": loss_fn, "opt": opt,
            "audio": audio, "labels": labels, "mask": mask}


def train_step(s: dict) -> None:
    """One whole training step on the batch in memory (what the trainer runs per batch)."""
    from learnafe.training.loop import optimizer_step

    out = s["model"](s["audio"], s["mask"])
    loss, _ = s["loss_fn"](out["logits"], s["labels"], out["power"], out["area"])
    optimizer_step(s["opt"], loss)
    if s["mode"] == "codesign":
        s["fe"].project_()
