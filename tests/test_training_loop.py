"""The one training loop (learnafe.training.loop): exact resume from a checkpoint
written in the middle of an epoch, early stopping, settings and process checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from learnafe.training.loop import LoopHooks, LoopOptions, TrainingLoop

N, BS, EPOCHS = 40, 8, 3


class _Killed(Exception):
    pass


def _make(tmp_path, *, kill_at=None, scores=None, early_stop=0, settings=None, seed=0):
    """A loop training a linear model with dropout (global torch RNG) on fixed data."""
    g = torch.Generator().manual_seed(123)
    x, y = torch.randn(N, 5, generator=g), torch.randn(N, 1, generator=g)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Dropout(0.3), torch.nn.Linear(5, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
    calls = {"n": 0}

    def step(idx, epoch):
        calls["n"] += 1
        if kill_at is not None and calls["n"] > kill_at:
            raise _Killed
        model.train()
        loss = ((model(x[idx]) - y[idx]) ** 2).mean()
        return loss, np.array([loss.item() * len(idx), len(idx)]), {"loss": f"{loss.item():.3f}"}

    def batches(epoch):
        perm = np.random.default_rng([seed, epoch]).permutation(N)
        return [perm[b * BS:(b + 1) * BS] for b in range(N // BS)]

    def epoch_end(sums):
        return {"loss": sums[0] / sums[1]}, (None if scores is None else scores[len(loop.history)])

    loop = TrainingLoop(modules={"model": model}, optimizer=opt, scheduler=sched,
                        hooks=LoopHooks(step=step, batches=batches, epoch_end=epoch_end),
                        options=LoopOptions(steps_per_epoch=N // BS, epochs=EPOCHS,
                                            checkpoint=tmp_path / "state.pt", n_sums=2, grad_clip=0.5,
                                            checkpoint_every=2, early_stop=early_stop,
                                            settings=settings or {}, progress=False))
    return loop, model


def test_resume_from_a_mid_epoch_checkpoint_equals_an_uninterrupted_run(tmp_path):
    ref, ref_model = _make(tmp_path / "a")
    assert ref.run() == "all epochs done"
    assert ref.step == EPOCHS * (N // BS) and len(ref.history) == EPOCHS

    # killed after 7 steps: the last checkpoint is after step 6, inside epoch 2 (5 steps/epoch)
    first, _ = _make(tmp_path / "b", kill_at=7)
    with pytest.raises(_Killed):
        first.run()
    torch.manual_seed(999)  # whatever the process did since: the checkpoint restores the RNGs
    again, model = _make(tmp_path / "b")
    assert again.load_checkpoint() is not None
    assert (again.epoch, again.batch_in_epoch, again.step) == (1, 1, 6)
    assert again.run() == "all epochs done"
    assert again.history == ref.history
    for a, b in zip(model.state_dict().values(), ref_model.state_dict().values()):
        assert torch.equal(a, b)
    # a finished run does not train again
    done, _ = _make(tmp_path / "b")
    done.load_checkpoint()
    assert done.run() == "already finished" and done.step == ref.step


def test_early_stopping_and_best_epoch(tmp_path):
    loop, _ = _make(tmp_path, scores=[0.5, 0.4, 0.3], early_stop=2)
    assert loop.run().startswith("early stop")
    assert (loop.best_epoch, loop.best_score, loop.bad_epochs) == (1, 0.5, 2)


def test_resume_checks_settings(tmp_path):
    loop, _ = _make(tmp_path, settings={"lr": 0.05})
    loop.run()
    other, _ = _make(tmp_path, settings={"lr": 0.01})
    with pytest.raises(ValueError, match="other settings"):
        other.load_checkpoint()
