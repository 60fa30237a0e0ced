"""One pass of the design map per training forward: the features, power and area of
``CoDesignModel.forward`` come from one phi -> circuit mapping, equal to the separate
``frontend(audio)`` and ``frontend.cost()`` passes (features, power and area bitwise;
gradients to float64 rounding, since the shared node sums the three terms' gradients
in another order)."""

import pytest
import torch

from learnafe.frontends import AnalogFilterBank
from learnafe.training.model import CoDesignModel


def _model(**kw):
    torch.manual_seed(0)
    fe = AnalogFilterBank.conventional(n_channels=6, **kw)
    with torch.no_grad():
        for p in fe.parameters():
            p.add_(0.2 * torch.randn_like(p))
    clf = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6 * 10, 3))
    return CoDesignModel(fe, clf).train()


def _loss(logits, power, area):
    return logits.sum() + 1e6 * power + 1e-3 * area


@pytest.mark.parametrize("kw", [{}, {"output_conductance": True}, {"noise": {"mode": "train"}},
                                {"mismatch": {"mode": "per_batch"}}, {"corners": {"mode": "per_batch"}}],
                         ids=["plain", "gds", "noise", "mismatch", "corners"])
def test_one_pass_equals_separate_passes(kw, monkeypatch):
    m = _model(**kw)
    fe = m.frontend
    x = 0.1 * torch.randn(3, 2000)
    calls = []
    design = AnalogFilterBank._design

    def counted(self):
        calls.append(1)
        return design(self)

    monkeypatch.setattr(AnalogFilterBank, "_design", counted)
    torch.manual_seed(5)
    out = m(x)
    assert len(calls) == 1  # one design pass for features, power and area (and the drawn chip)
    m.zero_grad()
    _loss(out["logits"], out["power"], out["area"]).backward()
    shared = {k: p.grad.clone() for k, p in fe.named_parameters()}

    torch.manual_seed(5)
    feats = fe(x)
    power, area = fe.cost()
    logits = m.classifier(feats)
    assert torch.equal(logits, out["logits"])
    assert torch.equal(power, out["power"]) and torch.equal(area, out["area"])
    m.zero_grad()
    _loss(logits, power, area).backward()
    for k, p in fe.named_parameters():
        assert p.grad.dtype == torch.float64
        torch.testing.assert_close(shared[k], p.grad, rtol=1e-14, atol=0)


def test_fixed_bank_uses_the_contract_default():
    from learnafe.frontends import DigitalFilterBank
    fe = DigitalFilterBank.from_center_q([300.0, 1000.0, 3000.0], 2.0)
    x = 0.1 * torch.randn(2, 1000)
    feats, power, area = fe.forward_with_cost(x)
    assert torch.equal(feats, fe(x))
    assert float(power) == 0.0 and float(area) == 0.0
