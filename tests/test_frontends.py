"""Front ends: the learnable AnalogFilterBank and the fixed DigitalFilterBank."""

import json
import math

import numpy as np
import pytest
import scipy.integrate
import scipy.signal
import torch

from learnafe import ops
from learnafe.circuits import GmIdTable, constants
from learnafe.frontends import AnalogFilterBank, DigitalFilterBank, FeatureConfig

FS = 20000.0


def small_bank(**kw):
    return AnalogFilterBank.conventional(n_channels=3, f_lo=300.0, f_hi=3000.0, **kw)


def raw_features(**kw):
    return FeatureConfig(log=False, normalize="none", **kw)


# ----------------------------------------------------------- conventional ---

def test_conventional_bank_design():
    bank = AnalogFilterBank.conventional(gm_model="weak_inversion")  # the power check below is weak inversion
    with torch.no_grad():
        f0 = bank.center_frequencies().numpy()
        q = bank.q().numpy()
    np.testing.assert_allclose(f0, np.geomspace(100, 8000, 16), rtol=1e-12)
    np.testing.assert_allclose(q, 1 / (2 * math.sinh(math.log(80) / 30)), rtol=1e-12)
    # neighbours cross at -3.01 dB (half power) at the geometric mean of their centres
    fx = np.sqrt(f0[:-1] * f0[1:])
    with torch.no_grad():
        h = bank.frequency_response(fx).abs().numpy()
    np.testing.assert_allclose(h[np.arange(15), np.arange(15)], 1 / math.sqrt(2), rtol=1e-9)
    np.testing.assert_allclose(h[np.arange(1, 16), np.arange(15)], 1 / math.sqrt(2), rtol=1e-9)
    # P = VDD * 2 * sum(I1 + I2) with I from gm = 2 w0 C / Q (gm1) and 2 w0 C Q (gm2), gm = I / (n U_T)
    nut = constants.SLOPE_FACTOR_N * constants.U_T
    i_sum = (2 * 2 * np.pi * f0 * 1e-12 * (1 / q + q) * nut).sum()
    assert bank.reference_power() == pytest.approx(1.8 * 2 * i_sum, rel=1e-12)
    assert float(bank.power().detach()) == pytest.approx(bank.reference_power(), rel=1e-12)
    assert bank.reference_area() == pytest.approx(16 * 2e-12 / 2e-15, rel=1e-12)
    power, area = bank.cost()
    assert float(power.detach()) / bank.reference_power() == pytest.approx(1.0)
    assert float(area.detach()) / bank.reference_area() == pytest.approx(1.0)


def test_two_channel_power_area_hand_calculation():
    bank = AnalogFilterBank([1e-10, 2e-9], [5e-10, 7e-9], [1e-12, 0.2e-12], [0.5e-12, 3e-12], sample_rate=48000.0)
    assert float(bank.power().detach()) == pytest.approx(34.56e-9, rel=1e-12)
    assert float(bank.area().detach()) == pytest.approx(2350.0, rel=1e-12)
    d = bank.to_dict()
    assert d["total_power_w"] == pytest.approx(34.56e-9, rel=1e-12)
    assert d["total_cap_area_um2"] == pytest.approx(2350.0, rel=1e-12)
    assert d["channels"][1]["power_w"] == pytest.approx(1.8 * 2 * 9e-9, rel=1e-12)


# ----------------------------------------------------------------- forward ---

def test_module_dtype_casts_keep_the_circuit_in_float64():
    bank = AnalogFilterBank.conventional()
    b64, a64 = bank.coefficients()
    bank.float()  # e.g. a trainer casting the whole model
    b32, a32 = bank.coefficients()
    assert b32.dtype == torch.float64
    torch.testing.assert_close(a32, a64, rtol=1e-6, atol=0)
    assert bank(torch.zeros(1, 400)).dtype == torch.float32


def test_forward_equals_the_envelope_op_on_the_bank_coefficients():
    torch.manual_seed(0)
    x = 0.1 * torch.randn(3, 4000)
    for cfg in (raw_features(), FeatureConfig(), FeatureConfig(rectify="square", tau=0.004, hop=160)):
        bank = AnalogFilterBank.conventional(features=cfg)
        y = bank(x)
        assert y.shape == (3, 16, 4000 // cfg.hop)
        b, a = bank.coefficients()
        env = ops.filterbank_envelope(x, b, a, hop=cfg.hop, tau=cfg.tau, sample_rate=FS,
                                      rectify=cfg.rectify)
        if cfg.log:
            env = torch.log(env + cfg.log_eps)
        if cfg.normalize == "instance":
            env = (env - env.mean(-1, keepdim=True)) / (env.std(-1, keepdim=True, unbiased=False) + cfg.norm_eps)
        torch.testing.assert_close(y, env)
    assert bank(x[0]).shape == (16, 4000 // 160)


def test_channel_responds_to_a_tone_at_its_centre():
    bank = AnalogFilterBank.conventional(features=raw_features())
    t = torch.arange(20000, dtype=torch.float32) / FS
    f0 = bank.center_frequencies().detach()
    for c in (0, 8, 15):
        tone = 0.1 * torch.sin(2 * math.pi * float(f0[c]) * t)
        e = bank(tone)[:, -20:].mean(-1)
        assert int(torch.argmax(e)) == c
        # unit peak gain: the envelope is the mean of |0.1 sin| over the sampled phases
        n = np.arange(200000)
        expect = 0.1 * np.abs(np.sin(2 * np.pi * float(f0[c]) * n / FS)).mean()
        assert float(e[c].detach()) == pytest.approx(expect, rel=0.02)


def test_gradients_reach_every_phi():
    bank = small_bank(features=FeatureConfig(hop=100))
    x = 0.1 * torch.randn(2, 1000, dtype=torch.float64)
    loss = (bank(x) * torch.randn(2, 3, 10, dtype=torch.float64)).sum() + bank.power() * 1e7 + bank.area() * 1e-3
    loss.backward()
    for name in ("phi_I1", "phi_I2", "phi_C1", "phi_C2"):
        g = getattr(bank, name).grad
        assert g is not None and torch.all(g != 0), name


def test_gradcheck_small_bank():
    bank = small_bank(gm_model=GmIdTable(_table()), features=raw_features(hop=50))
    x = 0.1 * torch.randn(1, 300, dtype=torch.float64)
    names = ("phi_I1", "phi_I2", "phi_C1", "phi_C2")

    class Everything(torch.nn.Module):
        def __init__(self, bank):
            super().__init__()
            self.bank = bank

        def forward(self, x):
            b, a = self.bank.coefficients()
            return b, a, self.bank.power() * 1e9, self.bank.area() * 1e-3, self.bank(x)

    wrapped = Everything(bank)

    def fn(*phis):
        return torch.func.functional_call(wrapped, {f"bank.{n}": p for n, p in zip(names, phis)}, (x,))

    phis = tuple((0.1 * torch.randn(3, dtype=torch.float64)).requires_grad_() for _ in names)
    assert torch.autograd.gradcheck(fn, phis, eps=1e-6, atol=1e-7, rtol=1e-4)


def _table():
    ids = np.geomspace(1e-13, 1e-6, 60)
    g = (1 - np.exp(-np.sqrt(ids / 4e-7))) / np.sqrt(ids / 4e-7) / (1.36 * constants.U_T)
    dev = {"id_a": ids.tolist(), "gm_over_id": g.tolist()}
    return {"format": "learnafe-gmid/1", "devices": {"m1": dev, "m2": dev}}


# ------------------------------------------------------------------ bounds ---

def _in_bounds(bank):
    v = {k: t.detach() for k, t in bank.circuit().items()}
    b = bank.bounds
    tol = 1e-12
    assert torch.all(v["I1"] >= b.i_min * (1 - tol)) and torch.all(v["I1"] <= b.i_max * (1 + tol))
    assert torch.all(v["I2"] >= b.i_min * (1 - tol)) and torch.all(v["I2"] <= b.i_max * (1 + tol))
    assert torch.all(v["C1"] >= b.c_min * (1 - tol)) and torch.all(v["C2"] >= b.c_min * (1 - tol))
    f0 = bank.center_frequencies().detach()
    assert torch.all(f0 <= b.f0_max_fraction * bank.sample_rate * (1 + 1e-9))


@pytest.mark.parametrize("direction", [-1.0, 1.0])
def test_bounds_hold_after_a_step_past_them(direction):
    # a free bank (min_spacing=0): this test is about the box and the Nyquist guard alone
    bank = AnalogFilterBank.conventional(features=raw_features(), min_spacing=0)
    opt = torch.optim.SGD(bank.parameters(), lr=100.0)
    # push currents far up (or down) and capacitors far down (or up) in one step
    loss = -direction * (bank.phi_I1.sum() + bank.phi_I2.sum()) + direction * (bank.phi_C1.sum() + bank.phi_C2.sum())
    loss.backward()
    opt.step()
    assert float(bank.phi_I1.detach().abs().min()) == pytest.approx(100.0)
    _in_bounds(bank)
    y = bank(0.1 * torch.randn(1, 2000))
    assert torch.all(torch.isfinite(y))
    if direction > 0:  # currents at i_max, caps at c_min: the Nyquist guard raised the caps
        f0 = bank.center_frequencies().detach()
        assert torch.allclose(f0, torch.full_like(f0, 0.45 * FS), rtol=1e-9)
        assert torch.all(bank.circuit()["C1"].detach() > bank.bounds.c_min)
    # straight-through: the gradient at the bound still points back
    bank.zero_grad()
    bank.power().backward()
    assert torch.all(bank.phi_I1.grad > 0)
    bank.project_()
    for k in ("I1", "I2", "C1", "C2"):
        lo, hi = bank._log_box[k]
        logv = torch.log(getattr(bank, f"ref_{k}")) + getattr(bank, f"phi_{k}").detach()
        assert torch.all(logv >= lo - 1e-12) and torch.all(logv <= hi + 1e-12)


def test_bounds_with_gm_table_range():
    table = _table()
    for dev in ("m1", "m2"):
        table["devices"][dev]["id_a"] = np.geomspace(5e-12, 2e-8, 40).tolist()
        table["devices"][dev]["gm_over_id"] = np.full(40, 28.0).tolist()
    bank = AnalogFilterBank.conventional(gm_model=table)
    with torch.no_grad():
        bank.phi_I1.fill_(-50.0)
        bank.phi_I2.fill_(50.0)
    v = {k: t.detach() for k, t in bank.circuit().items() if t is not None}
    assert float(v["I1"].min()) == pytest.approx(5e-12, rel=1e-9)
    assert float(v["I2"].max()) == pytest.approx(2e-8, rel=1e-9)
    bank.to_dict()  # gm lookups inside the table: no error


# ---------------------------------------------------------------- mismatch ---

def test_mismatch_per_batch_statistics():
    bank = AnalogFilterBank.conventional(mismatch={"mode": "per_batch", "sigma_i": 0.05, "sigma_c": 0.02})
    bank.train()
    torch.manual_seed(1)
    draws = torch.stack([bank.mismatch_factors() for _ in range(1000)])  # [1000, 4, 16]
    n = draws.shape[0] * draws.shape[2]
    for j, sigma in enumerate((0.05, 0.05, 0.02, 0.02)):
        d = draws[:, j].reshape(-1)
        assert abs(float(d.mean()) - 1) < 4 * sigma / math.sqrt(n)
        assert float(d.std()) == pytest.approx(sigma, rel=4 / math.sqrt(2 * n))
    # independent across quantities and channels
    corr = np.corrcoef(draws[:, 0, 0].numpy(), draws[:, 1, 0].numpy())[0, 1]
    assert abs(corr) < 4 / math.sqrt(1000)
    bank.eval()
    assert bank.mismatch_factors() is None


def test_mismatch_fixed_chip_is_reproducible_and_moves_f0():
    cfg = {"mode": "fixed", "sigma_i": 0.03, "sigma_c": 0.03, "seed": 7}
    wi = "weak_inversion"  # the f0 check below is the weak-inversion scaling
    a = AnalogFilterBank.conventional(mismatch=cfg, gm_model=wi)
    b = AnalogFilterBank.conventional(mismatch=cfg, gm_model=wi)
    c = AnalogFilterBank.conventional(mismatch=dict(cfg, seed=8), gm_model=wi)
    torch.testing.assert_close(a.mismatch_factors(), b.mismatch_factors(), rtol=0, atol=0)
    assert not torch.equal(a.mismatch_factors(), c.mismatch_factors())
    a.eval()
    fac = a.mismatch_factors()
    assert fac is not None
    # f0 of the mismatched chip follows f0 ~ sqrt(I1 I2 / (C1 C2)) in weak inversion
    vals = a.circuit(fac)
    p = a.parameters_of(vals)
    expect = a.center_frequencies() * torch.sqrt(fac[0] * fac[1] / (fac[2] * fac[3]))
    torch.testing.assert_close(p.f0_hz, expect, rtol=1e-12, atol=0)
    x = 0.1 * torch.randn(1, 3000)
    assert not torch.allclose(a(x), AnalogFilterBank.conventional(gm_model=wi)(x))
    with pytest.raises(ValueError, match="sigma_i"):
        AnalogFilterBank.conventional(mismatch={"mode": "per_batch", "sigma_i": 0.5})


# ------------------------------------------------------------------- noise ---

def test_injected_noise_has_the_kTC_output_variance():
    bank = AnalogFilterBank.conventional(c_unit=0.2e-12, noise={"mode": "always", "full_scale_v": 0.05},
                                         gm_model="weak_inversion")  # the closed form below is weak inversion
    with torch.no_grad():
        b, a = bank.coefficients()
        std_in = bank.input_noise_std()
        out_rms = bank.output_noise_rms()
    # weak inversion: n k T (1 + C2/C1) / (2 C1)
    kt = constants.K_BOLTZMANN * constants.TEMPERATURE_K
    np.testing.assert_allclose(out_rms.numpy() ** 2, constants.SLOPE_FACTOR_N * kt * 2 / (2 * 0.2e-12), rtol=1e-12)
    g = torch.Generator().manual_seed(3)
    for c in (0, 10, 15):
        e = std_in[c] * torch.randn(4, 60000, generator=g, dtype=torch.float64)
        y = ops.biquad_filterbank(e, b[c:c + 1], a[c:c + 1])[:, 0, 5000:]  # drop the start-up transient
        expected = float(out_rms[c] / 0.05)
        assert float(y.std()) == pytest.approx(expected, rel=0.05)


def test_injected_noise_psd_at_f0_matches_the_circuit():
    """White input-referred noise with the circuit's total output variance also has the circuit's output
    PSD at f0 (weak inversion): checked against nodal analysis of the half circuit (x 2 halves).
    The kT/C model is that of ideal devices, so the bank here leaves out their output conductance."""
    bank = AnalogFilterBank.conventional(noise={"mode": "always", "full_scale_v": 0.1}, output_conductance=False)
    q_e = constants.Q_ELECTRON
    with torch.no_grad():
        vals = {k: v.numpy() for k, v in bank.circuit().items() if v is not None}
        p = bank.parameters_of(bank.circuit())
        gm1, gm2 = p.gm1.numpy(), p.gm2.numpy()
        var_out = bank.output_noise_rms().numpy() ** 2
        std_in = bank.input_noise_std().numpy()
        b, a = (t.numpy() for t in bank.coefficients())
    for c in (0, 4, 8):
        f0 = float(p.f0_hz[c])
        s = 2j * np.pi * f0
        m = np.array([[2 * s * vals["C1"][c], -gm1[c]], [gm2[c], 2 * s * vals["C2"][c] + gm1[c]]])
        minv = np.linalg.inv(m)
        half = (2 * q_e * vals["I1"][c] * abs((minv @ [1.0, -1.0])[0]) ** 2
                + 2 * q_e * vals["I2"][c] * abs((minv @ [0.0, -1.0])[0]) ** 2)
        circuit_psd = 2 * half  # V^2/Hz at the differential output
        num = [-gm1[c] / (2 * vals["C1"][c]), 0.0]
        den = [1.0, gm1[c] / (2 * vals["C2"][c]), gm1[c] * gm2[c] / (4 * vals["C1"][c] * vals["C2"][c])]

        def h2(lf):
            f = math.exp(lf)
            return abs(scipy.signal.freqs(num, den, worN=[2 * np.pi * f])[1][0]) ** 2 * f

        lf0 = math.log(f0)
        edges = lf0 + np.array([-30.0, -2.0, 0.0, 2.0, 30.0])
        h2_int = sum(scipy.integrate.quad(h2, lo, hi, epsabs=0, epsrel=1e-11, limit=400)[0]
                     for lo, hi in zip(edges, edges[1:]))
        # analog model: input PSD var_out / int |H|^2, output PSD at f0 = that * |H(f0)|^2 (gain 1)
        assert var_out[c] / h2_int == pytest.approx(circuit_psd, rel=1e-6)
        # discrete model (bilinear): matches total variance exactly, the PSD at f0 within 2 % up to 0.02 fs
        hd = abs(scipy.signal.freqz(b[c], np.r_[1.0, a[c]], worN=[f0], fs=FS)[1][0])
        model_psd = std_in[c] ** 2 / (FS / 2) * hd ** 2 * 0.1 ** 2
        if f0 <= 0.02 * FS:
            assert model_psd == pytest.approx(circuit_psd, rel=0.02)


def test_noise_costs_snr_when_capacitors_shrink():
    torch.manual_seed(0)
    t = torch.arange(8000) / FS
    x = (0.02 * torch.sin(2 * math.pi * 1000 * t)).unsqueeze(0).repeat(4, 1)
    err = {}
    for c_unit in (2e-12, 0.1e-12):
        clean = AnalogFilterBank.conventional(c_unit=c_unit, features=FeatureConfig(normalize="none")).eval()
        noisy = AnalogFilterBank.conventional(c_unit=c_unit, features=FeatureConfig(normalize="none"),
                                              noise={"mode": "train"})
        noisy.train()
        with torch.no_grad():
            err[c_unit] = float(((noisy(x) - clean(x)) ** 2).mean())
        noisy.eval()
        torch.testing.assert_close(noisy(x), clean(x))  # mode "train": no noise in evaluation
    assert err[0.1e-12] > 5 * err[2e-12] > 0


def test_noise_gradient_reaches_capacitors():
    bank = small_bank(noise={"mode": "always"}, features=raw_features(hop=100))
    x = torch.zeros(2, 1000, dtype=torch.float64)  # only noise: the output level depends on C
    bank(x).sum().backward()
    assert torch.all(bank.phi_C1.grad < 0)  # larger C1 -> less noise


# -------------------------------------------------------------------- spec ---

def test_spec_json_round_trip_exact(tmp_path):
    bank = AnalogFilterBank.conventional(gm_model=_table(), discretization="matched_z",
                                         features={"hop": 160, "tau": 0.008, "rectify": "square"},
                                         noise={"mode": "train", "full_scale_v": 0.2},
                                         mismatch={"mode": "fixed", "sigma_i": 0.01, "sigma_c": 0.02, "seed": 5})
    with torch.no_grad():
        for name in ("phi_I1", "phi_I2", "phi_C1", "phi_C2"):
            getattr(bank, name).copy_(0.3 * torch.randn(16, dtype=torch.float64))
    d = bank.to_dict()
    assert d["format"] == "learnafe-bank/1"
    assert set(d["units"]) >= {"I1", "I2", "C1", "C2", "f0_hz", "power", "area"}
    assert {"total_power_w", "total_cap_area_um2", "channels", "gm_model", "features", "sample_rate"} <= set(d)
    text = json.dumps(d)
    path = tmp_path / "bank.json"
    bank.save(path)
    again = AnalogFilterBank.load(path)
    assert json.dumps(again.to_dict()) == text
    x = 0.1 * torch.randn(2, 3000)
    bank.eval()
    again.eval()
    torch.testing.assert_close(again(x), bank(x), rtol=0, atol=0)
    # a hand-written spec with channel values only becomes the reference design
    plain = {"format": "learnafe-bank/1", "sample_rate": 20000.0, "gm_model": d["gm_model"],
             "channels": [{k: ch[k] for k in ("I1", "I2", "C1", "C2")} for ch in d["channels"]]}
    hand = AnalogFilterBank.from_dict(plain)
    assert [c["I1"] for c in hand.to_dict()["channels"]] == [c["I1"] for c in plain["channels"]]


# -------------------------------------------------------------- refusals ---

def test_nonsense_is_refused():
    with pytest.raises(ValueError, match="I1"):
        AnalogFilterBank([-1e-9], [1e-9], [1e-12], [1e-12])
    with pytest.raises(ValueError, match="C2"):
        AnalogFilterBank([1e-9], [1e-9], [1e-12], [0.0])
    with pytest.raises(ValueError, match="Nyquist"):
        AnalogFilterBank.conventional(f_hi=10000.0)
    with pytest.raises(ValueError, match="0.45"):  # centre above the 0.45 fs guard
        AnalogFilterBank([3e-8], [3e-8], [1e-12], [1e-12], sample_rate=FS)
    with pytest.raises(ValueError, match="outside its bounds"):
        AnalogFilterBank([1e-6], [1e-9], [1e-12], [1e-12], sample_rate=1e6)
    with pytest.raises(ValueError, match="unknown features"):
        AnalogFilterBank.conventional(features={"hopp": 100})
    with pytest.raises(ValueError, match="full_scale_v"):
        AnalogFilterBank.conventional(noise={"mode": "always", "full_scale_v": 5.0})
    with pytest.raises(ValueError, match="discretization"):
        AnalogFilterBank.conventional(discretization="euler")
    with pytest.raises(ValueError, match="format"):
        AnalogFilterBank.from_dict({"format": "nope"})
    bank = small_bank()
    with pytest.raises(ValueError, match="audio"):
        bank(torch.zeros(2, 3, 400))
    with pytest.raises(ValueError, match="NaN"):
        bank(torch.full((1, 400), float("nan")))
    with pytest.raises(ValueError, match="torch tensor"):
        bank(np.zeros((1, 400)))


# ----------------------------------------------------------------- digital ---

def test_digital_bank_from_center_q_matches_the_analog_bank():
    analog = AnalogFilterBank.conventional(features=raw_features())
    with torch.no_grad():
        f0, q = analog.center_frequencies().numpy(), analog.q().numpy()
        b_an, a_an = analog.coefficients()
    dig = DigitalFilterBank.from_center_q(f0, q, FS, features=raw_features())
    torch.testing.assert_close(dig.b, -b_an, rtol=1e-12, atol=1e-15)  # non-inverting vs the inverting DSSF
    torch.testing.assert_close(dig.a, a_an, rtol=1e-12, atol=0)
    np.testing.assert_allclose(dig.peak_frequencies(), f0, rtol=1e-6)
    x = 0.1 * torch.randn(2, 4000)
    torch.testing.assert_close(dig(x), analog(x))  # rectified envelopes ignore the sign


def test_digital_bank_from_coefficients_filters_like_scipy():
    b = np.array([[0.02, 0.0, -0.02], [0.1, 0.0, -0.1]])
    a = np.array([[-1.95, 0.96], [-1.6, 0.8]])
    dig = DigitalFilterBank.from_coefficients(b, a, FS, features=raw_features(hop=1, tau=1e-9, rectify="abs"))
    x = torch.randn(1, 500, dtype=torch.float64)
    y = dig(x)[0].numpy()
    for c in range(2):
        ref = np.abs(scipy.signal.lfilter(b[c], np.r_[1, a[c]], x[0].numpy()))
        np.testing.assert_allclose(y[c], ref, rtol=1e-9, atol=1e-12)
    again = DigitalFilterBank.from_dict(json.loads(json.dumps(dig.to_dict())))
    torch.testing.assert_close(again.b, dig.b, rtol=0, atol=0)
    with pytest.raises(ValueError):
        DigitalFilterBank.from_coefficients(b, np.array([[-2.5, 1.2], [0.0, 0.0]]), FS)
    with pytest.raises(ValueError, match=r"\[C, 3\]"):
        DigitalFilterBank.from_coefficients(b[:, :2], a, FS)
