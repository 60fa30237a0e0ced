"""The weight average (``optimiser.ema_decay``): the update against a float64 reference of
the recursion, a training run with it keeps the average as its best model (and the
validation numbers are the average's), and it resumes exactly from a mid-epoch checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from learnafe.training import train
from learnafe.training.averaging import WeightAverage
from learnafe.training.config import TrainConfig
from training_helpers import make_toy_dataset, tiny_config, train_until_first_checkpoint


def test_update_matches_float64_recursion():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    avg = WeightAverage(model, 0.9)
    ref = {k: v.detach().double().numpy().copy() for k, v in model.state_dict().items()}
    rng = np.random.default_rng(1)
    for n in range(1, 40):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.from_numpy(rng.standard_normal(tuple(p.shape))).to(p.dtype))
        model(torch.randn(8, 3))  # moves the batch-norm statistics and its step counter
        d = min(0.9, (1 + n) / (10 + n))
        assert avg.rate() == pytest.approx(d)
        avg.update(model)
        for k, v in model.state_dict().items():
            w = v.detach().double().numpy()
            ref[k] = w.copy() if not v.is_floating_point() else d * ref[k] + (1 - d) * w
    for k, v in avg.module.state_dict().items():
        got = v.double().numpy()
        if v.is_floating_point():
            np.testing.assert_allclose(got, ref[k], rtol=1e-5, atol=1e-6, err_msg=k)
        else:
            assert np.array_equal(got, ref[k]), k
    assert int(avg.updates) == 39
    assert not any(p.requires_grad for p in avg.module.parameters())


def test_decay_is_checked():
    with pytest.raises(ValueError, match="ema_decay"):
        TrainConfig.from_dict({"optimiser.ema_decay": 1.0})
    with pytest.raises(ValueError, match="ema_decay"):
        WeightAverage(torch.nn.Linear(1, 1), 0.0)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_dataset(tmp_path_factory.mktemp("average") / "data")


def test_run_keeps_the_average_and_resumes_exactly(toy, tmp_path):
    opts = tiny_config(toy, epochs=2, mode="codesign", ema_decay=0.8)
    one = train({**opts, "epochs": 1}, tmp_path / "one", test=False)
    plain = train({**opts, "epochs": 1, "ema_decay": 0.0}, tmp_path / "plain", test=False)
    # the raw weights follow the same trajectory (the average does not feed back) ...
    assert one["history"][0]["train"] == plain["history"][0]["train"]
    last = torch.load(tmp_path / "one/checkpoints/last.pt", weights_only=False)
    raw = torch.load(tmp_path / "plain/checkpoints/last.pt", weights_only=False)["model"]
    assert all(torch.equal(last["model"][k], raw[k]) for k in raw)
    # ... while the best model (the only epoch) is the average, not the raw weights, and
    # the validation and hardware numbers are the average's
    best = torch.load(tmp_path / "one/checkpoints/best.pt", weights_only=False)["model"]
    avg = {k[len("module."):]: v for k, v in last["ema"].items() if k.startswith("module.")}
    assert best.keys() == raw.keys() == avg.keys()
    assert all(torch.equal(best[k], avg[k]) for k in best)
    assert any(not torch.equal(best[k], raw[k]) for k in raw if raw[k].is_floating_point())
    assert one["history"][0]["power_w"] != plain["history"][0]["power_w"]
    assert int(last["ema"]["updates"]) == one["steps"]

    full = train(opts, tmp_path / "full", test=False)
    # stopped right after its first mid-epoch checkpoint and resumed: the same run
    train_until_first_checkpoint(opts, tmp_path / "part")
    resumed = train(opts, tmp_path / "part", test=False)
    assert [h["val"] for h in resumed["history"]] == [h["val"] for h in full["history"]]
    a = torch.load(tmp_path / "full/checkpoints/best.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "part/checkpoints/best.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
