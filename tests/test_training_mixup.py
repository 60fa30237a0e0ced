"""Mixup of training batches (``augment.mixup_alpha``): the mixing weight follows
Beta(alpha, alpha) (scipy), the mixed clips and the lam-weighted loss match a float64 NumPy
reference written out (with and without a teacher), alpha 0 draws nothing and trains bit for
bit as the default run, and a mixed run differs from it and resumes exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from learnafe.training import train
from learnafe.training.loss import BPFLoss
from learnafe.training.mixup import Mixup, draw_mixup, mixed_loss
from training_helpers import make_toy_dataset, tiny_config, train_until_first_checkpoint


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _ce(s, y, eps):
    n, k = s.shape
    target = np.full((n, k), eps / k)
    target[np.arange(n), y] += 1.0 - eps
    return -(target * _log_softmax(s)).sum(axis=1).mean()


def _reference(s, y, perm, lam, q, w, t, eps, hw):
    """lam L(y) + (1 - lam) L(y[perm]) of L_BPF, written out in float64."""
    kl = 0.0
    if q is not None:
        lt, lst = _log_softmax(q / t), _log_softmax(s / t)
        kl = (np.exp(lt) * (lt - lst)).sum(axis=1).mean()
    ce = lam * _ce(s, y, eps) + (1 - lam) * _ce(s, y[perm], eps)
    return (1 - w) * ce + w * t * t * kl + hw


def test_lambda_follows_beta_and_draws_repeat():
    lams = [draw_mixup(0.4, (0, e, b, 0), 8).lam for e in range(40) for b in range(50)]
    assert stats.kstest(lams, stats.beta(0.4, 0.4).cdf).pvalue > 1e-3
    a, b = draw_mixup(0.4, (3, 1, 2, 0), 8), draw_mixup(0.4, (3, 1, 2, 0), 8)
    assert a.lam == b.lam and torch.equal(a.perm, b.perm)
    assert sorted(a.perm.tolist()) == list(range(8))
    assert draw_mixup(0.4, (4, 1, 2, 0), 8).lam != a.lam
    assert draw_mixup(0.0, (0, 0, 0, 0), 8) is None and draw_mixup(0.4, (0, 0, 0, 0), 1) is None


def test_mixed_audio_matches_numpy():
    x = torch.randn(5, 30, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    m = Mixup(0.3, torch.tensor([2, 0, 4, 1, 3]))
    ref = 0.3 * x.numpy() + 0.7 * x.numpy()[[2, 0, 4, 1, 3]]
    np.testing.assert_allclose(m.audio(x).numpy(), ref, rtol=0, atol=1e-15)
    labels = torch.tensor([1, 2, 3, 4, 5])
    assert m.dominant(labels).tolist() == [3, 1, 5, 2, 4]
    assert Mixup(0.5, m.perm).dominant(labels).tolist() == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("teacher,w,t,eps", [(False, 0.0, 1.0, 0.05), (True, 0.5, 4.0, 0.05),
                                             (True, 0.8, 2.0, 0.0)])
def test_mixed_loss_matches_float64_reference(teacher, w, t, eps):
    g = torch.Generator().manual_seed(5)
    logits = (3 * torch.randn(7, 12, generator=g, dtype=torch.float64)).requires_grad_()
    q = 3 * torch.randn(7, 12, generator=g, dtype=torch.float64) if teacher else None
    labels = torch.randint(0, 12, (7,), generator=g)
    mix = draw_mixup(0.4, (0, 1, 2, 0), 7)
    power, area = torch.tensor(2e-7, dtype=torch.float64), torch.tensor(1.2e4, dtype=torch.float64)
    fn = BPFLoss(2.5e-7, 1.6e4, lambda_i=0.05, lambda_c=0.05, label_smoothing=eps,
                 distill_weight=w, distill_temperature=t)
    loss, terms = mixed_loss(fn, {"logits": logits, "power": power, "area": area}, labels, q, mix)
    hw = 0.05 * 2e-7 / 2.5e-7 + 0.05 * 1.2e4 / 1.6e4
    args = (labels.numpy(), mix.perm.numpy(), mix.lam, None if q is None else q.numpy(), w, t, eps, hw)
    assert float(loss.detach()) == pytest.approx(_reference(logits.detach().numpy(), *args), rel=1e-12)
    assert terms["power"] == pytest.approx(0.8, rel=1e-12) and terms["area"] == pytest.approx(0.75, rel=1e-12)
    loss.backward()
    x, h = logits.detach().numpy().copy(), 1e-6
    for i, j in ((0, 0), (3, 5), (6, 11)):
        xp, xm = x.copy(), x.copy()
        xp[i, j] += h
        xm[i, j] -= h
        fd = (_reference(xp, *args) - _reference(xm, *args)) / (2 * h)
        assert float(logits.grad[i, j]) == pytest.approx(fd, rel=1e-5, abs=1e-9)
    # without a mix the loss is the plain L_BPF
    plain, _ = mixed_loss(fn, {"logits": logits, "power": power, "area": area}, labels, q, None)
    assert float(plain.detach()) == float(fn(logits, labels, power, area, teacher_logits=q)[0])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_toy_dataset(tmp_path_factory.mktemp("mixup") / "data")


def _weights(run):
    return torch.load(run / "checkpoints/last.pt", weights_only=False)["model"]


def test_alpha_zero_is_bitwise_the_default_run(data, tmp_path):
    plain = train(tiny_config(data, epochs=1), tmp_path / "plain", test=False)
    zero = train(tiny_config(data, epochs=1, mixup_alpha=0.0), tmp_path / "zero", test=False)
    a, b = _weights(tmp_path / "plain"), _weights(tmp_path / "zero")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert plain["history"][0]["train"] == zero["history"][0]["train"]


def test_mixed_run_differs_and_resumes_exactly(data, tmp_path):
    opts = tiny_config(data, epochs=2, mixup_alpha=0.4)
    full = train(opts, tmp_path / "full", test=False)
    plain = train(tiny_config(data, epochs=2), tmp_path / "plain", test=False)
    assert full["history"][0]["train"]["loss"] != plain["history"][0]["train"]["loss"]
    train_until_first_checkpoint(opts, tmp_path / "part")
    resumed = train(opts, tmp_path / "part", test=False)
    assert [h["train"] for h in resumed["history"]] == [h["train"] for h in full["history"]]
    wa, wb = _weights(tmp_path / "full"), _weights(tmp_path / "part")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_negative_alpha_is_refused(data, tmp_path):
    with pytest.raises(ValueError, match="mixup_alpha"):
        train(tiny_config(data, mixup_alpha=-0.1), tmp_path / "a", test=False)
