"""The bank trained on the circuit that is built: the shipped SKY130 tt gm/Id table as the default
model, the minimum-spacing projection, process corners and SKY130 mismatch, and the yield analysis."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import learnafe.training.data as tdata
from learnafe._migrate import flag_name
from learnafe.circuits import GmIdTable, WeakInversion, load_gm_model
from learnafe.circuits.mismatch import sky130_mismatch
from learnafe.frontends import AnalogFilterBank, BankSpec
from learnafe.frontends.features import FeatureConfig
from learnafe.training.config import TrainConfig
from learnafe.training.model import build_frontend

DATA = Path(__file__).resolve().parents[1] / "python" / "learnafe" / "circuits" / "data"
FS = 20000.0


def raw():
    return FeatureConfig(log=False, normalize="none")


def _table_gm(corner, dev, i, key="gm_over_id"):
    """gm (or gds with key="gds_over_id") from the shipped JSON, read here with numpy (linear
    interpolation of gm/Id in log I)."""
    d = json.loads((DATA / f"sky130_gmid_{corner}.json").read_text())["devices"][dev]
    return i * np.interp(np.log(i), np.log(d["id_a"]), d[key])


def _table_w0(corner, i1, i2, c1, c2):
    """w0 (rad/s) of the half-circuit with gds from the shipped JSON: sqrt of
    ((gm1 + gds1) gm2 + gds1 gds2) / (4 C1 C2)."""
    gm1, gm2 = _table_gm(corner, "m1", i1), _table_gm(corner, "m2", i2)
    g1, g2 = _table_gm(corner, "m1", i1, "gds_over_id"), _table_gm(corner, "m2", i2, "gds_over_id")
    return np.sqrt(((gm1 + g1) * gm2 + g1 * g2) / (4 * c1 * c2))


def _ratios(bank):
    f0 = bank.center_frequencies().detach().numpy()
    return f0[1:] / f0[:-1]


# ------------------------------------------------------------- default model ---

def test_shipped_tt_table_is_the_default_and_the_conventional_bank_hits_its_design():
    assert isinstance(load_gm_model(None), GmIdTable)
    assert TrainConfig().bank.gm_model == "sky130-tt" and TrainConfig().bank.output_conductance
    q_design = 1 / (2 * math.sinh(math.log(80) / 30))
    for bank in (AnalogFilterBank.conventional(), build_frontend(TrainConfig())):
        assert isinstance(bank.gm_model, GmIdTable) and bank.gm_model.source_path == "sky130-tt"
        assert bank.to_dict()["gm_model"]["path"] == "sky130-tt" and bank.to_dict()["output_conductance"]
        v = {k: getattr(bank, f"ref_{k}").numpy() for k in ("I1", "I2", "C1", "C2")}
        gm1, gm2 = _table_gm("tt", "m1", v["I1"]), _table_gm("tt", "m2", v["I2"])
        g1, g2 = _table_gm("tt", "m1", v["I1"], "gds_over_id"), _table_gm("tt", "m2", v["I2"], "gds_over_id")
        # nodal analysis of the half circuit with gds: -gm1/(2 C1) s / (s^2 + d1 s + d0) (docs/circuits.md)
        c1, c2 = v["C1"], v["C2"]
        d1 = (gm1 + g1 + g2) / (2 * c2) + g1 / (2 * c1)
        d0 = ((gm1 + g1) * gm2 + g1 * g2) / (4 * c1 * c2)
        np.testing.assert_allclose(np.sqrt(d0) / (2 * np.pi), np.geomspace(100, 8000, 16), rtol=1e-9)
        np.testing.assert_allclose(np.sqrt(d0) / d1, q_design, rtol=1e-9)
        np.testing.assert_allclose(gm1 / (2 * c1 * d1), 1.0, rtol=1e-9)     # unit peak gain
        # gds matters: C2 grows by 5-7 % to keep Q and the gain, and the textbook Q would be off
        assert np.all((c2 / c1 > 1.05) & (c2 / c1 < 1.07))
        assert np.all(np.sqrt(gm2 * c2 / (gm1 * c1)) > 1.02 * q_design)
        # and the bank itself computes the same centres and Q
        np.testing.assert_allclose(bank.center_frequencies().detach().numpy(), np.sqrt(d0) / (2 * np.pi),
                                   rtol=1e-12)
        np.testing.assert_allclose(bank.q().detach().numpy(), np.sqrt(d0) / d1, rtol=1e-12)
    # ideal devices (output_conductance=False): the textbook formulas
    ideal = AnalogFilterBank.conventional(output_conductance=False)
    v = {k: getattr(ideal, f"ref_{k}").numpy() for k in ("I1", "I2", "C1", "C2")}
    gm1, gm2 = _table_gm("tt", "m1", v["I1"]), _table_gm("tt", "m2", v["I2"])
    w0 = np.sqrt(gm1 * gm2 / (4 * v["C1"] * v["C2"]))
    np.testing.assert_allclose(w0 / (2 * np.pi), np.geomspace(100, 8000, 16), rtol=1e-9)
    np.testing.assert_allclose(np.sqrt(gm2 * v["C2"] / (gm1 * v["C1"])), q_design, rtol=1e-9)
    # gds damps the filter: the same Q needs a larger gm2/gm1, so more current in M2
    assert AnalogFilterBank.conventional().reference_power() > ideal.reference_power()
    # the table needs more current than weak inversion n = 1.36 for the same centres (gm/Id is lower)
    assert ideal.reference_power() > AnalogFilterBank.conventional(gm_model="weak_inversion").reference_power()
    assert isinstance(AnalogFilterBank.conventional(gm_model="weak_inversion").gm_model, WeakInversion)


def test_inverse_design_with_output_conductance_refuses_a_gain_above_the_intrinsic_gain():
    from learnafe.circuits import dssf

    # devices with gds = 1.5 gm: an intrinsic gain gm1/gds1 of 2/3, below the asked peak gain 1
    table = json.loads((DATA / "sky130_gmid_tt.json").read_text())
    for dev in table["devices"].values():
        dev["gds_over_id"] = [1.5 * r for r in dev["gm_over_id"]]
    leaky = GmIdTable(table)
    with pytest.raises(ValueError, match="channel 0 .*peak gain of 1 is above M1's intrinsic gain"):
        dssf.design_channel(1000.0, 3.0, 1.0, 1e-12, leaky, output_conductance=True)
    # the same Q is possible for ideal devices, and with the real table
    for model, oc in ((leaky, False), (load_gm_model("sky130-tt"), True)):
        d = dssf.design_channel(1000.0, 3.0, 1.0, 1e-12, model, output_conductance=oc)
        p = dssf.channel_parameters(d["I1"], d["I2"], d["C1"], d["C2"], model, output_conductance=oc)
        assert float(p.f0_hz) == pytest.approx(1000.0, rel=1e-9) and float(p.q) == pytest.approx(3.0, rel=1e-9)
        assert float(p.gain) == pytest.approx(1.0, rel=1e-9)


def test_old_specs_and_run_configs_rebuild_as_before(tmp_path):
    # a spec written before the new defaults: weak inversion recorded, no min_spacing/corners keys
    old = AnalogFilterBank.conventional(gm_model="weak_inversion", min_spacing=0, features=raw())
    with torch.no_grad():
        old.phi_C1[5] = 1.5                          # channel 5 drops below channel 4: centres cross
        old.phi_C2[5] = 1.5
    spec = old.to_dict()
    for k in ("min_spacing", "corners", "output_conductance"):
        del spec[k]
    again = AnalogFilterBank.from_dict(spec)
    assert isinstance(again.gm_model, WeakInversion) and again.min_spacing == 0
    x = 0.1 * torch.randn(2, 4000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again(x), old(x))
    assert _ratios(again)[4] < 1                     # still free: the crossing is kept
    assert BankSpec.from_dict(spec).to_dict() == spec  # and the old file round-trips unchanged
    # a hand-written spec without gm_model means weak inversion, as it always did
    hand = {"format": "learnafe-bank/1", "channels": [{"I1": 1e-10, "I2": 1e-9, "C1": 1e-12, "C2": 1e-12}]}
    assert isinstance(BankSpec.from_dict(hand).gm(), WeakInversion)
    assert isinstance(AnalogFilterBank.from_dict(hand).gm_model, WeakInversion)
    # a tt-table spec written before the output conductance existed: ideal devices, as trained
    tt = AnalogFilterBank.conventional(output_conductance=False, features=raw())
    spec = tt.to_dict()
    del spec["output_conductance"]
    again = AnalogFilterBank.from_dict(spec)
    assert again.output_conductance is False and not BankSpec.from_dict(spec).uses_output_conductance
    assert torch.equal(again(x), tt(x))
    assert not torch.equal(AnalogFilterBank.from_dict({**spec, "output_conductance": True})(x), tt(x))
    # a run's config.json written before the options existed
    cfg = {flag_name(k): v for k, v in TrainConfig().to_dotted().items()}  # the flat layout
    for k in ("gm_model", "min_spacing", "train_corners", "mismatch_mode", "output_conductance"):
        del cfg[k]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    old_cfg = TrainConfig.from_run_file(tmp_path / "config.json")
    assert old_cfg.bank.gm_model == "weak_inversion" and old_cfg.bank.min_spacing == 0.0
    assert old_cfg.bank.output_conductance is False
    bank = build_frontend(old_cfg)
    assert isinstance(bank.gm_model, WeakInversion) and bank.min_spacing == 0
    assert bank.output_conductance is False


# ------------------------------------------------------------------ spacing ---

def test_ordering_holds_after_many_steps_that_push_centres_to_cross():
    bank = AnalogFilterBank.conventional(features=raw())
    opt = torch.optim.Adam(bank.parameters(), lr=0.2)
    sign = torch.tensor([(-1.0) ** k for k in range(16)], dtype=torch.float64)
    for step in range(150):
        f0 = bank.center_frequencies()
        # odd channels pulled down, even channels pushed up: every pair wants to cross
        loss = (sign * torch.log(f0)).sum() + 5 * torch.log(f0[9])  # and channel 9 below channel 8
        opt.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in bank.parameters())
        opt.step()
        if step % 10 == 9:
            assert np.all(_ratios(bank) >= 1.1 * (1 - 1e-9)), step
    r = _ratios(bank)
    assert np.all(r >= 1.1 * (1 - 1e-9)) and np.any(np.abs(r - 1.1) < 1e-6)  # the constraint is active
    assert float(bank.center_frequencies().detach().max()) <= 0.45 * FS * (1 + 1e-9)
    spec = bank.to_dict()
    f0 = [c["f0_hz"] for c in spec["channels"]]
    assert all(b >= 1.1 * a * (1 - 1e-9) for a, b in zip(f0, f0[1:]))


@pytest.mark.parametrize("seed", range(4))
def test_ordering_and_bounds_hold_for_extreme_parameters(seed):
    g = torch.Generator().manual_seed(seed)
    bank = AnalogFilterBank.conventional(features=raw(), min_spacing=1.2)
    with torch.no_grad():
        for p in bank.parameters():
            p.copy_(30 * torch.randn(p.shape, generator=g, dtype=torch.float64))
    v = {k: t.detach() for k, t in bank.circuit().items()}
    assert torch.all(v["C1"] >= bank.bounds.c_min * (1 - 1e-12)) and torch.all(v["C2"] >= bank.bounds.c_min * (1 - 1e-12))
    assert np.all(_ratios(bank) >= 1.2 * (1 - 1e-9))
    assert float(bank.center_frequencies().detach().max()) <= 0.45 * FS * (1 + 1e-9)
    y = bank(0.1 * torch.randn(1, 2000, generator=g))
    assert torch.all(torch.isfinite(y))


def test_projection_keeps_q_and_gain_and_spacing_off_is_the_free_bank():
    free = AnalogFilterBank.conventional(features=raw(), min_spacing=0)
    held = AnalogFilterBank.conventional(features=raw())
    x = 0.1 * torch.randn(2, 3000, generator=torch.Generator().manual_seed(1))
    assert torch.equal(free(x), held(x))             # conventional spacing 1.34 > 1.1: bit-identical
    with torch.no_grad():
        for b in (free, held):
            b.phi_I1[10] = -2.0                      # channel 10 falls below channels 7..9
            b.phi_I2[10] = -2.0
    f_free = free.center_frequencies().detach().numpy()
    # independent reference for the free bank: the table formulas on exp(log ref + phi)
    i1 = free.ref_I1.numpy() * np.exp(free.phi_I1.detach().numpy())
    i2 = free.ref_I2.numpy() * np.exp(free.phi_I2.detach().numpy())
    w0 = _table_w0("tt", i1, i2, free.ref_C1.numpy(), free.ref_C2.numpy())
    np.testing.assert_allclose(f_free, w0 / (2 * np.pi), rtol=1e-12)
    assert f_free[10] < f_free[9]                    # free: crossed
    f_held = held.center_frequencies().detach().numpy()
    assert np.all(f_held[1:] / f_held[:-1] >= 1.1 * (1 - 1e-9))
    np.testing.assert_allclose(f_held[10:], f_free[10:], rtol=1e-12)   # the top is anchored
    np.testing.assert_allclose(f_held[9], f_free[10] / 1.1, rtol=1e-12)  # pinned below it
    np.testing.assert_allclose(held.q().detach().numpy(), free.q().detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(held.gain().detach().numpy(), free.gain().detach().numpy(), rtol=1e-12)


def test_spacing_projection_gradient_matches_finite_differences():
    bank = AnalogFilterBank.conventional(n_channels=3, f_lo=500, f_hi=600, q=2.0, features=raw())  # ratio 1.095
    f0 = bank.center_frequencies().detach().numpy()
    assert np.all(f0[1:] / f0[:-1] >= 1.1 * (1 - 1e-9))

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bank = bank

        def forward(self):
            vals = self.bank.circuit()
            return torch.cat([self.bank.parameters_of(vals).f0_hz, vals["C1"], self.bank.area()[None]])

    probe = Probe()

    def f(phi_i1, phi_c2):
        return torch.func.functional_call(probe, {"bank.phi_I1": phi_i1, "bank.phi_C2": phi_c2}, ())

    p1 = torch.tensor([0.0, 0.01, 0.02], dtype=torch.float64, requires_grad=True)
    p2 = torch.tensor([0.0, 0.03, -0.01], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: f(a, b), (p1, p2), eps=1e-7, atol=1e-5, rtol=1e-6)


def test_spacing_is_recorded_in_the_spec_and_round_trips(tmp_path):
    bank = AnalogFilterBank.conventional(min_spacing=1.15, corners={"mode": "per_batch", "corners": ["ss", "ff"]},
                                         mismatch={"mode": "per_batch", "source": "sky130"})
    spec = bank.to_dict()
    assert spec["min_spacing"] == 1.15 and spec["corners"] == {"mode": "per_batch", "corners": ["ss", "ff"]}
    assert spec["mismatch"]["source"] == "sky130"
    bank.save(tmp_path / "b.json")
    again = AnalogFilterBank.load(tmp_path / "b.json")
    assert again.min_spacing == 1.15 and again.corners.corners == ("ss", "ff")
    assert again.to_dict() == spec
    assert BankSpec.from_dict(spec).to_dict() == spec
    for bad in (0.5, -1, 10.0, "1.1"):
        with pytest.raises(ValueError, match="min_spacing"):
            AnalogFilterBank.conventional(min_spacing=bad)
    with pytest.raises(ValueError, match="min_spacing"):
        BankSpec.from_dict(dict(spec, min_spacing=0.9))
    with pytest.raises(ValueError, match="corners"):
        AnalogFilterBank.conventional(corners={"mode": "per_batch", "corners": ["xx"]})
    with pytest.raises(ValueError, match="sigma_i"):
        AnalogFilterBank.conventional(mismatch={"mode": "per_batch", "source": "sky130", "sigma_i": 0.02})


# ------------------------------------------------------------------ the fab ---

def test_corner_per_batch_picks_every_corner_and_uses_its_table():
    bank = AnalogFilterBank.conventional(corners={"mode": "per_batch"})
    bank.train()
    torch.manual_seed(0)
    picked = {bank.corner_model().source_path for _ in range(60)}
    assert picked == {"sky130-tt", "sky130-ss", "sky130-ff"}
    bank.eval()
    assert bank.corner_model() is None
    ss = AnalogFilterBank.conventional(corners={"mode": "fixed", "corners": ["ss"]})
    vals = ss.circuit(None, ss.corner_model())
    i1, i2 = ss.ref_I1.numpy(), ss.ref_I2.numpy()
    w0 = _table_w0("ss", i1, i2, ss.ref_C1.numpy(), ss.ref_C2.numpy())
    np.testing.assert_allclose(ss.parameters_of(vals).f0_hz.detach().numpy(), w0 / (2 * np.pi), rtol=1e-12)
    assert not np.allclose(w0 / (2 * np.pi), np.geomspace(100, 8000, 16), rtol=1e-3)  # the corner moves f0
    x = 0.1 * torch.randn(1, 3000, generator=torch.Generator().manual_seed(2))
    assert not torch.allclose(ss(x), AnalogFilterBank.conventional()(x))
    # the nominal design (spec, power) is the tt one
    assert ss.to_dict()["channels"] == AnalogFilterBank.conventional().to_dict()["channels"]


def test_sampled_chips_have_the_stated_sky130_spread():
    from learnafe.training.chips import sample_chip

    bank = AnalogFilterBank.conventional()
    nominal = {k: t.detach().numpy() for k, t in bank.circuit().items()}
    sig = sky130_mismatch(nominal["I1"], nominal["I2"], nominal["C1"], nominal["C2"])  # [C] each
    n = 150
    z = {k: [] for k in ("I1", "I2", "C1", "C2")}
    for s in range(n):
        chip = sample_chip(bank, seed=s)
        v = {k: t.detach().numpy() for k, t in chip.circuit(chip.mismatch_factors()).items()}
        for k in z:
            z[k].append((v[k] / nominal[k] - 1) / sig[f"sigma_{k}"])
    for k, zs in z.items():
        zs = np.asarray(zs)                          # [n, C]: standard normal if the spread is right
        m = zs.size
        assert abs(zs.mean()) < 4 / math.sqrt(m), k
        assert abs(zs.std() - 1) < 4 / math.sqrt(2 * m), k
    assert np.all(sig["sigma_I1"] > 0.01) and np.all(sig["sigma_C1"] < 0.001)  # mirrors >> MIM caps
    a, b = sample_chip(bank, seed=3), sample_chip(bank, seed=3)
    assert torch.equal(a.mismatch_factors(), b.mismatch_factors())


def test_yield_analysis_gives_the_requested_chips_and_resumes(tmp_path, monkeypatch):
    from learnafe.training.chips import YieldOptions, yield_analysis
    from learnafe.training.data import open_split
    from learnafe.training.model import CoDesignModel, build_classifier
    from training_helpers import make_toy_dataset, tiny_config

    monkeypatch.setattr(tdata, "CACHE_DIR", str(tmp_path / "cache"))
    toy = make_toy_dataset(tmp_path / "toy", per_word=3)
    cfg = TrainConfig.from_dict(tiny_config(toy))
    bank = build_frontend(cfg)
    torch.manual_seed(0)
    model = CoDesignModel(bank, build_classifier(cfg, bank.n_channels)).eval()
    ds = open_split(toy, "validation", cfg)
    out = tmp_path / "yield"
    res = yield_analysis(model, ds, 3, YieldOptions(seed=5, snrs=(10.0,), corners=("ss",)), out_dir=out, progress=False)
    assert res["n_chips"] == 3 and len(res["chips"]) == 3 and [c["seed"] for c in res["chips"]] == [5, 6, 7]
    d = res["distribution"]["mean"]
    vals = [c["accuracy"]["mean"] for c in res["chips"]]
    assert d["n"] == 3 and d["mean"] == pytest.approx(np.mean(vals)) and d["min"] == min(vals)
    assert d["p5"] == pytest.approx(np.percentile(vals, 5))
    assert set(res["corners"]) == {"ss"} and set(res["distribution"]) == {"clean", "10", "mean"}
    assert "sw_mm_cmim" in res["mismatch"]["sources"]["C"] and "sw_mm_vth0" in res["mismatch"]["sources"]["I1"]
    assert bank.mismatch.mode == "off"               # the figures come from the model files, not the bank's config
    assert min(res["mismatch"]["per_channel"]["sigma_I1"]) > 0.01
    assert 0 < max(res["mismatch"]["per_channel"]["sigma_C1"]) < 0.005
    for f in ("yield.json", "yield.png", "yield.log", "chips.jsonl"):
        assert (out / f).stat().st_size > 0, f
    lines = (out / "chips.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 3 + 1                    # header, 3 chips, 1 corner
    res5 = yield_analysis(model, ds, 5, YieldOptions(seed=5, snrs=(10.0,), corners=("ss",)), out_dir=out, progress=False)
    assert len((out / "chips.jsonl").read_text().splitlines()) == 1 + 5 + 1  # only 2 more evaluated
    assert res5["chips"][:3] == res["chips"]
    with pytest.raises(ValueError, match="seed"):
        yield_analysis(model, ds, 2, YieldOptions(seed=6, snrs=(10.0,), corners=()), out_dir=out, progress=False)
