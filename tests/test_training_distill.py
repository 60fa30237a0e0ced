"""Knowledge distillation into the DSCNN: the loss against a float64 reference, weight 0
is the plain run bit for bit, a teacher that does not fit is refused, and a distilled run
resumes exactly."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from learnafe.training import train
from learnafe.training.config import TrainConfig
from learnafe.training.loss import BPFLoss, distillation_loss
from training_helpers import make_toy_dataset, tiny_config, train_until_first_checkpoint


def _reference(logits, teacher, labels, w, t, eps):
    """(1 - w) CE + w T^2 KL(teacher_T || student_T) in float64 NumPy, written out."""
    s, q, y = (np.asarray(a, dtype=np.float64) for a in (logits, teacher, labels))
    n, k = s.shape

    def log_softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    ls = log_softmax(s)
    target = np.full((n, k), eps / k)
    target[np.arange(n), y.astype(int)] += 1.0 - eps
    ce = -(target * ls).sum(axis=1).mean()
    lt, lst = log_softmax(q / t), log_softmax(s / t)
    kl = (np.exp(lt) * (lt - lst)).sum(axis=1).mean()
    return (1 - w) * ce + w * t * t * kl, kl


@pytest.mark.parametrize("w,t,eps", [(0.5, 4.0, 0.0), (0.9, 2.0, 0.05), (1.0, 1.0, 0.1)])
def test_distillation_loss_matches_float64_reference(w, t, eps):
    g = torch.Generator().manual_seed(3)
    logits = (3 * torch.randn(7, 12, generator=g, dtype=torch.float64)).requires_grad_()
    teacher = 3 * torch.randn(7, 12, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 12, (7,), generator=g)
    loss, kl = distillation_loss(logits, teacher, labels, weight=w, temperature=t,
                                 label_smoothing=eps)
    ref, ref_kl = _reference(logits.detach(), teacher, labels, w, t, eps)
    assert float(loss.detach()) == pytest.approx(ref, rel=1e-12)
    assert float(kl.detach()) == pytest.approx(ref_kl, rel=1e-12)
    # gradient against central finite differences of the reference
    loss.backward()
    x = logits.detach().numpy().copy()
    h = 1e-6
    for i, j in ((0, 0), (3, 5), (6, 11)):
        xp, xm = x.copy(), x.copy()
        xp[i, j] += h
        xm[i, j] -= h
        fd = (_reference(xp, teacher, labels, w, t, eps)[0] -
              _reference(xm, teacher, labels, w, t, eps)[0]) / (2 * h)
        assert float(logits.grad[i, j]) == pytest.approx(fd, rel=1e-5, abs=1e-9)


def test_bpf_loss_with_teacher_keeps_hardware_terms():
    g = torch.Generator().manual_seed(1)
    logits, teacher = torch.randn(5, 12, generator=g), torch.randn(5, 12, generator=g)
    labels = torch.randint(0, 12, (5,), generator=g)
    power, area = torch.tensor(2e-6), torch.tensor(30.0)
    fn = BPFLoss(1e-6, 10.0, lambda_i=0.1, lambda_c=0.2, distill_weight=0.7, distill_temperature=3.0)
    total, terms = fn(logits, labels, power, area, teacher_logits=teacher)
    mix, kl = distillation_loss(logits, teacher, labels, weight=0.7, temperature=3.0)
    assert float(total) == pytest.approx(float(mix) + 0.1 * 2.0 + 0.2 * 3.0, rel=1e-6)
    assert terms["kl"] == pytest.approx(float(kl))
    with pytest.raises(ValueError, match="teacher's logits"):
        fn(logits, labels, power, area)


def test_config_refuses_weight_without_teacher():
    with pytest.raises(ValueError, match="distill_weight.*--teacher"):
        TrainConfig.from_dict({"distill.distill_weight": 0.5})
    with pytest.raises(ValueError, match="distill_temperature"):
        TrainConfig.from_dict({"distill": {"teacher": "x", "distill_weight": 0.5, "distill_temperature": 0.0}})


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    data = make_toy_dataset(root / "data")
    out = root / "teacher"
    train(tiny_config(data, width=32, depth=2, epochs=1), out, test=False)
    return data, out


def test_weight_zero_is_bitwise_the_plain_run(teacher_run, tmp_path):
    data, teacher = teacher_run
    plain = train(tiny_config(data, epochs=1), tmp_path / "plain", test=False)
    zero = train(tiny_config(data, epochs=1, teacher=str(teacher), distill_weight=0.0),
                 tmp_path / "zero", test=False)
    a = torch.load(tmp_path / "plain/checkpoints/last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "zero/checkpoints/last.pt", weights_only=False)["model"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert plain["history"][0]["train"] == zero["history"][0]["train"]


def test_distilled_run_differs_and_resumes_exactly(teacher_run, tmp_path):
    data, teacher = teacher_run
    opts = tiny_config(data, epochs=2, teacher=str(teacher), distill_weight=0.8,
                       distill_temperature=3.0)
    full = train(opts, tmp_path / "full", test=False)
    plain = train(tiny_config(data, epochs=2), tmp_path / "plain", test=False)
    assert full["history"][0]["train"]["loss"] != plain["history"][0]["train"]["loss"]
    # a run stopped right after its first mid-epoch checkpoint and resumed ends where the
    # uninterrupted one does (the teacher is reloaded from its run directory)
    train_until_first_checkpoint(opts, tmp_path / "part")
    assert torch.load(tmp_path / "part/checkpoints/last.pt", weights_only=False)["step"] == 3
    resumed = train(opts, tmp_path / "part", test=False)
    assert [h["train"] for h in resumed["history"]] == [h["train"] for h in full["history"]]
    wa = torch.load(tmp_path / "full/checkpoints/last.pt", weights_only=False)["model"]
    wb = torch.load(tmp_path / "part/checkpoints/last.pt", weights_only=False)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_teacher_missing_or_mismatched_is_refused(teacher_run, tmp_path):
    data, teacher = teacher_run
    with pytest.raises(ValueError, match="teacher=.*no run directory"):
        train(tiny_config(data, teacher=str(tmp_path / "nowhere"), distill_weight=0.5),
              tmp_path / "a", test=False)
    with pytest.raises(ValueError, match="teacher=.*n_channels"):
        train(tiny_config(data, n_channels=8, teacher=str(teacher), distill_weight=0.5),
              tmp_path / "b", test=False)
    with pytest.raises(ValueError, match="teacher=.*clip_seconds"):
        train(tiny_config(data, clip_seconds=0.25, teacher=str(teacher), distill_weight=0.5),
              tmp_path / "c", test=False)
    # a teacher with another number of classes
    other = tmp_path / "other"
    shutil.copytree(teacher, other)
    st = torch.load(other / "checkpoints/best.pt", weights_only=False)
    st["model"] = {k: (v[:5] if k.startswith("classifier.fc.") else v) for k, v in st["model"].items()}
    torch.save(st, other / "checkpoints/best.pt")
    with pytest.raises(ValueError, match="teacher=.*do not fit"):
        train(tiny_config(data, teacher=str(other), distill_weight=0.5), tmp_path / "d", test=False)
