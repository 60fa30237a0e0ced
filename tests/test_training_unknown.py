"""The ``unknown`` class: its class weight in the cross-entropy against a float64 reference
written out by hand, weight 1 is the old run bit for bit, a weight != 1 changes the run,
and the option's checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from learnafe.data.classes import UNKNOWN_LABEL
from learnafe.training import train
from learnafe.training.config import TrainConfig
from learnafe.training.loss import BPFLoss, distillation_loss, unknown_class_weights, weighted_cross_entropy
from training_helpers import make_toy_dataset, tiny_config


def _reference(logits, labels, weights, eps):
    """sum_i w_{y_i} CE_i / sum_i w_{y_i} in float64 NumPy, CE_i label-smoothed by eps."""
    s, y = np.asarray(logits, dtype=np.float64), np.asarray(labels).astype(int)
    n, k = s.shape
    z = s - s.max(axis=1, keepdims=True)
    ls = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    target = np.full((n, k), eps / k)
    target[np.arange(n), y] += 1.0 - eps
    ce_i = -(target * ls).sum(axis=1)
    wy = np.asarray(weights, dtype=np.float64)[y]
    return float((wy * ce_i).sum() / wy.sum())


@pytest.mark.parametrize("w,eps", [(2.0, 0.0), (3.0, 0.05), (0.5, 0.1)])
def test_weighted_cross_entropy_matches_float64_reference(w, eps):
    g = torch.Generator().manual_seed(5)
    logits = (3 * torch.randn(9, 12, generator=g, dtype=torch.float64)).requires_grad_()
    labels = torch.tensor([UNKNOWN_LABEL, 0, 3, UNKNOWN_LABEL, 11, 5, UNKNOWN_LABEL, 2, 9])
    weights = unknown_class_weights(w, 12)
    assert weights[UNKNOWN_LABEL] == w and sum(weights) == pytest.approx(11 + w)
    loss = weighted_cross_entropy(logits, labels, weights, label_smoothing=eps)
    ref = _reference(logits.detach(), labels, weights, eps)
    assert float(loss.detach()) == pytest.approx(ref, rel=1e-12)
    # not the unweighted mean (the weight really enters)
    assert abs(float(F.cross_entropy(logits.detach(), labels, label_smoothing=eps)) - ref) > 1e-3
    loss.backward()
    x = logits.detach().numpy().copy()
    h = 1e-6
    for i, j in ((0, UNKNOWN_LABEL), (0, 1), (4, 11), (8, 9)):
        xp, xm = x.copy(), x.copy()
        xp[i, j] += h
        xm[i, j] -= h
        fd = (_reference(xp, labels, weights, eps) - _reference(xm, labels, weights, eps)) / (2 * h)
        assert float(logits.grad[i, j]) == pytest.approx(fd, rel=1e-5, abs=1e-9)


def test_weight_one_is_the_plain_cross_entropy_and_enters_distillation():
    assert unknown_class_weights(1.0, 12) is None
    g = torch.Generator().manual_seed(2)
    logits, teacher = torch.randn(6, 12, generator=g), torch.randn(6, 12, generator=g)
    labels = torch.tensor([UNKNOWN_LABEL, 1, 2, UNKNOWN_LABEL, 4, 7])
    plain = F.cross_entropy(logits, labels, label_smoothing=0.05)
    assert torch.equal(weighted_cross_entropy(logits, labels, None, label_smoothing=0.05), plain)
    power, area = torch.tensor(2e-6), torch.tensor(30.0)
    w = unknown_class_weights(2.5, 12)
    total, terms = BPFLoss(1e-6, 10.0, lambda_i=0.1, label_smoothing=0.05, class_weights=w)(
        logits, labels, power, area)
    ref = _reference(logits, labels, w, 0.05)
    assert terms["ce"] == pytest.approx(ref, rel=1e-6)
    assert float(total) == pytest.approx(ref + 0.1 * 2.0, rel=1e-6)
    mix, _ = distillation_loss(logits, teacher, labels, weight=0.3, temperature=2.0, class_weights=w)
    mix0, _ = distillation_loss(logits, teacher, labels, weight=0.3, temperature=2.0)
    ce0 = float(F.cross_entropy(logits, labels))
    assert float(mix) - float(mix0) == pytest.approx(0.7 * (_reference(logits, labels, w, 0.0) - ce0), rel=1e-5)


def test_bad_weights_are_refused():
    with pytest.raises(ValueError, match="unknown_weight.*> 0"):
        TrainConfig.from_dict({"cost.unknown_weight": 0.0})
    assert TrainConfig.from_dict({"unknown_weight": 2.0}).cost.unknown_weight == 2.0  # the flag's name
    assert TrainConfig.flag("cost.unknown_weight") == "unknown_weight"
    with pytest.raises(ValueError, match="class_weights"):
        BPFLoss(1.0, 1.0, class_weights=(1.0, 0.0))
    with pytest.raises(ValueError, match="3 class weights for 12 classes"):
        weighted_cross_entropy(torch.zeros(2, 12), torch.tensor([0, 1]), (1.0, 2.0, 1.0))


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_dataset(tmp_path_factory.mktemp("unknown") / "data")


def test_weight_one_is_bitwise_the_old_run_and_another_weight_is_not(toy, tmp_path):
    plain = train(tiny_config(toy, epochs=1), tmp_path / "plain", test=False)
    one = train(tiny_config(toy, epochs=1, unknown_weight=1.0), tmp_path / "one", test=False)
    three = train(tiny_config(toy, epochs=1, unknown_weight=3.0), tmp_path / "three", test=False)
    a = torch.load(tmp_path / "plain/checkpoints/last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "one/checkpoints/last.pt", weights_only=False)["model"]
    c = torch.load(tmp_path / "three/checkpoints/last.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert plain["history"][0]["train"] == one["history"][0]["train"]
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert three["history"][0]["train"]["loss"] != plain["history"][0]["train"]["loss"]
