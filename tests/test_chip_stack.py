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


@pytest.mark.parametrize("noise", [False, True])
def test_stack_is_one_op_call(monkeypatch, noise):
    from learnafe.frontends import features as feat

    calls = []
    real = feat.envelopes

    def spy(x, b, *a, **k):
        std = k.get("noise_std")
        calls.append((x.shape, b.shape, None if std is None else std.shape, k.get("noise_batch")))
        return real(x, b, *a, **k)

    monkeypatch.setattr(feat, "envelopes", spy)
    bank = _bank(noise={"mode": "always"} if noise else None)
    with torch.no_grad():
        _stack(bank)(_audio())
    n = len(CHIPS) * 3
    assert calls == [((n, 2400), (n, 8, 3), (n, 8) if noise else None, 3 if noise else None)]


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


def _toy_model(tmp_path, monkeypatch, noise: bool):
    import learnafe.training.data as tdata
    from learnafe.training.config import TrainConfig
    from learnafe.training.data import open_split
    from learnafe.training.model import CoDesignModel, build_frontend, frontend_from_dict
    from training_helpers import make_toy_dataset, tiny_config

    monkeypatch.setattr(tdata, "CACHE_DIR", str(tmp_path / "cache"))
    toy = make_toy_dataset(tmp_path / "toy", per_word=2)
    cfg = TrainConfig.from_dict(tiny_config(toy))
    spec = build_frontend(cfg).to_dict()
    spec["phi"] = {k: [0.05 * ((c % 3) - 1) for c in range(len(v))] for k, v in spec["phi"].items()}
    if noise:
        spec["noise"] = {"mode": "always"}
    bank = frontend_from_dict(spec)
    torch.manual_seed(0)
    # a random linear read-out of every feature cell: its predictions follow the chip's features
    classifier = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(bank.n_channels * 30, 12))
    model = CoDesignModel(bank, classifier).eval()
    return model, open_split(toy, "validation", cfg)


@pytest.mark.parametrize("noise", [False, True])
def test_yield_analysis_in_stacks_equals_one_chip_at_a_time(tmp_path, monkeypatch, noise):
    from learnafe.training.chips import YieldOptions, yield_analysis
    from learnafe.training.evaluate import evaluate_dataset
    from learnafe.training.model import CoDesignModel

    model, ds = _toy_model(tmp_path, monkeypatch, noise)
    opts = YieldOptions(seed=2, snrs=(10.0,), corners=("ss", "ff"), batch_size=7, chips_per_call=3)
    res = yield_analysis(model, ds, 4, opts, progress=False)
    # the one-chip-at-a-time reference: each chip built on its own, the ordinary evaluation
    for k, chip_res in enumerate(res["chips"]):
        chip = sample_chip(model.frontend, seed=2 + k)
        want = evaluate_dataset(CoDesignModel(chip, model.classifier), ds, snrs=(10.0,), batch_size=7)["accuracy"]
        assert {key: chip_res["accuracy"][key] for key in want} == want, k
    for c in ("ss", "ff"):
        want = evaluate_dataset(CoDesignModel(sample_chip(model.frontend, corner=c), model.classifier), ds,
                                snrs=(10.0,), batch_size=7)["accuracy"]
        assert {key: res["corners"][c][key] for key in want} == want, c
    accs = [c["accuracy"]["mean"] for c in res["chips"]] + [res["corners"][c]["mean"] for c in ("ss", "ff")]
    if not noise:                                     # (the noisy chips' features: the stack test above)
        assert len(set(accs)) > 1                     # the chips are told apart


def test_interrupted_stacked_yield_resumes_to_the_same_result(tmp_path, monkeypatch):
    import learnafe.training.chips as chips
    from learnafe.training.chips import YieldOptions, yield_analysis

    model, ds = _toy_model(tmp_path, monkeypatch, False)
    opts = YieldOptions(seed=1, snrs=(10.0,), corners=("ss",), chips_per_call=2)
    full = yield_analysis(model, ds, 5, opts, progress=False)
    real, calls = chips._score_group, []

    def stop_after_one(*args):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args)

    out = tmp_path / "yield"
    monkeypatch.setattr(chips, "_score_group", stop_after_one)
    with pytest.raises(KeyboardInterrupt):
        yield_analysis(model, ds, 5, opts, out_dir=out, progress=False)
    assert len((out / "chips.jsonl").read_text().splitlines()) == 1 + 2     # header + the first group's chips
    monkeypatch.setattr(chips, "_score_group", real)
    resumed = yield_analysis(model, ds, 5, opts, out_dir=out, progress=False)
    assert len((out / "chips.jsonl").read_text().splitlines()) == 1 + 5 + 1
    assert resumed["chips"] == full["chips"] and resumed["corners"] == full["corners"]
    assert resumed["measured_spread"] == full["measured_spread"]
    with pytest.raises(ValueError, match="chips_per_call must be an integer >= 1"):
        yield_analysis(model, ds, 2, YieldOptions(chips_per_call=0), progress=False)
