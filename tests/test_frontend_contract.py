"""Every front end keeps the contract of learnafe.frontends.FrontEnd (audio [B, T] -> features
[B, C, F], cost, trainable flag, to_dict/from_dict and save/load giving identical features)."""

import json
import math

import numpy as np
import pytest
import torch

from learnafe.frontends import AnalogFilterBank, DigitalFilterBank, FrontEnd
from learnafe.frontends.classic import ClassicFilterBank
from learnafe.spice.calibrated import SpiceCalibratedBank, calibrated_frontend
from learnafe.xylo.bank import XyloA3FilterBank
from learnafe.xylo.design import design_bank
from learnafe.xylo.quantized import XyloA3Frontend

FS = 20000.0
CENTRES = [300.0, 900.0, 2500.0, 6000.0]
FEATURES = {"hop": 100, "tau": 0.005, "rectify": "abs", "log": True, "log_eps": 1e-5,
            "normalize": "instance", "norm_eps": 1e-5}


def _analog():
    bank = AnalogFilterBank.conventional(n_channels=4, f_lo=300.0, f_hi=6000.0, sample_rate=FS,
                                         features=FEATURES)
    with torch.no_grad():  # a trained-looking bank, not the reference design
        bank.phi_I1.copy_(torch.tensor([0.1, -0.2, 0.05, 0.3], dtype=torch.float64))
        bank.phi_C2.copy_(torch.tensor([-0.1, 0.2, 0.0, 0.1], dtype=torch.float64))
    return bank


def _fake_ac(bank: AnalogFilterBank) -> dict:
    """AC results as `learnafe verify` writes them, with the ideal model's s-domain biquads as
    the "fit" (so no ngspice is needed)."""
    with torch.no_grad():
        beta, d1, d0 = (v.numpy() for v in bank._s_coefficients(bank.circuit()))
    return {"sample_rate": FS, "features": bank.features.to_dict(),
            "channels": [{"spice": {"b": [0.0, float(beta[c]), 0.0], "a": [float(d1[c]), float(d0[c])]}}
                         for c in range(bank.n_channels)]}


def _xylo(mode, learn_bank=False):
    bank = XyloA3FilterBank(design_bank(CENTRES, 3.0))
    return XyloA3Frontend(bank, sample_rate=FS, features=FEATURES, centres_hz=CENTRES, q=[3.0] * 4,
                          gains=[1.0, 1.2, 0.8, 1.0], mode=mode, learn_bank=learn_bank)


MAKERS = {
    "analog": _analog,
    "digital": lambda: DigitalFilterBank.from_center_q(CENTRES, 3.0, FS, features=FEATURES),
    "gammatone": lambda: ClassicFilterBank("gammatone", 4, 300.0, 6000.0, FS, features=FEATURES),
    "butterworth": lambda: ClassicFilterBank("butterworth", 4, 300.0, 6000.0, FS, order=3, features=FEATURES),
    "constant-q": lambda: ClassicFilterBank("constant_q", 4, 300.0, 6000.0, FS, order=2, q=3.0,
                                            features=FEATURES),
    "spice": lambda: calibrated_frontend(_fake_ac(_analog()), method="bilinear"),
    "xylo-bitexact": lambda: _xylo("bitexact"),
    "xylo-ste-trainable": lambda: _xylo("ste", learn_bank=True),
}


@pytest.fixture(params=sorted(MAKERS))
def frontend(request):
    return MAKERS[request.param]()


def _audio(dtype=torch.float32, batch=2, n=2000):
    g = torch.Generator().manual_seed(1)
    t = torch.arange(n, dtype=torch.float64) / FS
    tone = 0.3 * torch.sin(2 * math.pi * 900.0 * t)
    return (tone + 0.05 * torch.randn(batch, n, generator=g, dtype=torch.float64)).to(dtype)


def test_features_shape_dtype_and_channels(frontend):
    assert isinstance(frontend, FrontEnd)
    assert frontend.sample_rate == FS and frontend.n_channels == len(CENTRES)
    for dtype in (torch.float32, torch.float64):
        x = _audio(dtype)
        with torch.no_grad():
            f = frontend.eval()(x)
        assert f.shape == (2, *frontend.feature_shape(x.shape[-1]))
        assert f.shape[1:] == (len(CENTRES), x.shape[-1] // FEATURES["hop"])
        assert f.dtype == dtype
        assert torch.isfinite(f).all()
        with torch.no_grad():
            assert torch.equal(frontend(x[0]), f[0])  # [T] in, [C, F] out


def test_round_trip_gives_identical_features_and_cost(frontend, tmp_path):
    x = _audio()
    spec = json.loads(json.dumps(frontend.to_dict()))  # through JSON text, as a file would
    assert spec["format"] == frontend.spec_format
    again = type(frontend).from_dict(spec)
    path = tmp_path / "fe.json"
    frontend.save(path)
    loaded = type(frontend).load(path)
    with torch.no_grad():
        ref = frontend.eval()(x)
        p, a = frontend.cost()
        for other in (again, loaded):
            assert type(other) is type(frontend)
            assert torch.equal(other.eval()(x), ref)
            p2, a2 = other.cost()
            assert torch.equal(p2, p) and torch.equal(a2, a)
    assert math.isfinite(float(p)) and math.isfinite(float(a))
    assert loaded.to_dict() == frontend.to_dict()


def test_trainable_flag_matches_gradients(frontend):
    assert frontend.trainable == any(p.requires_grad for p in frontend.parameters())
    frontend.train()
    f = frontend(_audio())
    if not frontend.trainable:
        assert not f.requires_grad
        return
    f.square().mean().backward()
    grads = [p.grad for p in frontend.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().max() > 0 for g in grads)


def test_cost_is_a_hardware_model_only_where_there_is_one(frontend):
    p, a = frontend.cost()
    assert p.dim() == 0 and a.dim() == 0
    if frontend.has_cost:  # the analog circuit: P = VDD * 2 * sum(I1 + I2), differentiable
        spec = frontend.to_dict()
        assert float(p.detach()) == pytest.approx(spec["total_power_w"], rel=1e-12)
        assert float(a.detach()) == pytest.approx(spec["total_cap_area_um2"], rel=1e-12)
        assert p.requires_grad and a.requires_grad
    else:
        assert float(p) == 0.0 and float(a) == 0.0


def test_spice_bank_from_the_ideal_fit_matches_the_analog_bank():
    """The SPICE-calibrated bank built from the ideal model's own s-domain biquads, mapped by
    the same pre-warped bilinear transform, must filter like the analog bank."""
    analog = _analog().eval()
    spice = calibrated_frontend(_fake_ac(analog), method="bilinear")
    assert isinstance(spice, SpiceCalibratedBank) and spice.method == "bilinear"
    b_ref, a_ref = analog.coefficients()
    np.testing.assert_allclose(spice.b.numpy(), b_ref.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(spice.a.numpy(), a_ref.detach().numpy(), rtol=1e-12, atol=1e-15)
    x = _audio(torch.float64)
    with torch.no_grad():
        np.testing.assert_allclose(spice(x).numpy(), analog(x).numpy(), rtol=1e-9, atol=1e-9)


def test_specs_of_one_front_end_are_refused_by_another():
    digital = MAKERS["digital"]().to_dict()
    with pytest.raises(ValueError, match="learnafe-bank/1"):
        AnalogFilterBank.from_dict(digital)
    with pytest.raises(ValueError, match="learnafe-xylo-frontend/1"):
        XyloA3Frontend.from_dict(digital)
    with pytest.raises(ValueError, match="lacks 'b'"):
        DigitalFilterBank.from_dict({"format": digital["format"], "a": digital["a"]})
