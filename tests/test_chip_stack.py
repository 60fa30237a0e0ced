"""K sampled chips of one analog bank in one batched op call (``AnalogFilterBank.chip_stack``) against
each chip built on its own (``sample_chip``) and run through the ordinary forward pass; the bank's
options as a section and as keywords."""

from __future__ import annotations

import pytest
import torch

from learnafe.frontends import AnalogFilterBank, BankOptions
from learnafe.training.chips import sample_chip


def _bank(**kw):
    bank = AnalogFilterBank.conventional(8, **kw)
    with torch.no_grad():
        for p in bank.parameters():
            p.add_(torch.linspace(-0.2, 0.25, p.numel(), dtype=p.dtype))
    return bank.eval()


def _audio():
    gen = torch.Generator().manual_seed(11)
    return 0.1 * torch.randn(3, 2400, generator=gen, dtype=torch.float32)


# (seed, source, sigma_i, sigma_c, corner) of each chip: mismatch draws, corners, both
CHIPS = [(3, "sky130", 0.0, 0.0, None), (4, "sky130", 0.0, 0.0, None), (5, "uniform", 0.03, 0.02, None),
         (None, "sky130", 0.0, 0.0, "ss"), (None, "sky130", 0.0, 0.0, "ff"), (6, "sky130", 0.0, 0.0, "ss")]


def _stack(bank):
    factors = [None if s is None else bank.draw_factors(s, src, si, sc) for s, src, si, sc, _ in CHIPS]
    return bank.chip_stack(factors, [c[4] for c in CHIPS])


@pytest.mark.parametrize("noise", [False, True])
def test_every_chip_of_the_stack_equals_its_own_forward_pass(noise):
    bank = _bank(noise={"mode": "always"} if noise else None)
    x = _audio()
    with torch.no_grad():
        stack = _stack(bank)
        torch.manual_seed(21)
        got = stack(x)
        assert got.shape == (len(CHIPS), 3, 8, 12)
        for k, (seed, src, si, sc, corner) in enumerate(CHIPS):
            chip = sample_chip(bank, seed=seed, source=src, sigma_i=si, sigma_c=sc, corner=corner)
            torch.manual_seed(21)                  # the same generator state: the same noise seed
            want = chip(x)
            assert torch.equal(got[k], want), f"chip {k}"
            f0 = chip.parameters_of(chip.circuit(chip.mismatch_factors(), chip.corner_model())).f0_hz
            assert torch.equal(stack.f0_hz[k], f0)
            if seed is not None:
                assert torch.equal(bank.draw_factors(seed, src, si, sc), chip.mismatch_factors())
    # the chips differ from each other (the test would not notice a stack of one chip otherwise)
    assert not torch.equal(got[0], got[1]) and not torch.equal(got[3], got[4])
    if noise:
        torch.manual_seed(22)
        assert not torch.equal(stack(x), got)      # the noise follows torch's generator


def test_noise_free_stack_is_one_op_call(monkeypatch):
    from learnafe.frontends import features as feat

    calls = []
    real = feat.envelopes
    monkeypatch.setattr(feat, "envelopes", lambda x, b, *a, **k: calls.append((x.shape, b.shape)) or real(x, b, *a, **k))
    bank = _bank()
    with torch.no_grad():
        _stack(bank)(_audio())
    assert calls == [((len(CHIPS) * 3, 2400), (len(CHIPS) * 3, 8, 3))]


def test_chip_stack_refuses_bad_arguments():
    bank = _bank()
    with pytest.raises(ValueError, match=r"factors of chip 0 must have shape \[4, 8\]"):
        bank.chip_stack([torch.ones(4, 7, dtype=torch.float64)])
    with pytest.raises(ValueError, match="one corner per chip"):
        bank.chip_stack(torch.ones(2, 4, 8, dtype=torch.float64), ["ss"])
    with pytest.raises(ValueError, match="needs factors"):
        bank.chip_stack()
    with pytest.raises(ValueError, match="source must be one of"):
        bank.draw_factors(1, source="gaussian")


def test_options_as_section_and_as_keywords_give_the_same_bank():
    kw = dict(discretization="matched_z", min_spacing=1.2, noise={"mode": "always"}, output_conductance=False)
    a = AnalogFilterBank.conventional(4, **kw)
    b = AnalogFilterBank.conventional(4, options=BankOptions(**kw))
    c = AnalogFilterBank.conventional(4, options={**kw, "min_spacing": 1.0}, min_spacing=1.2)  # keyword wins
    assert a.to_dict() == b.to_dict() == c.to_dict()
    assert a.bank_options() == BankOptions(**kw)
    with pytest.raises(TypeError, match="unexpected option 'min_spaceing'"):
        AnalogFilterBank.conventional(4, min_spaceing=1.2)
    with pytest.raises(ValueError, match="discretization must be one of"):
        AnalogFilterBank.conventional(4, options={"discretization": "euler"})
    with pytest.raises(ValueError, match="output_conductance must be True or False"):
        AnalogFilterBank.conventional(4, output_conductance=1)
