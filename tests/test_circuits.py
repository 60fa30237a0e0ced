"""Circuit model: DSSF-BPF formulas, transconductance models, cost, noise, s->z mappings.

References are independent of the code under test: numerical peak/-3 dB search
with scipy, scipy.signal (freqs, bilinear, impulse, lfilter), nodal analysis
of the half circuit solved with numpy, numerical integration with scipy, and
finite differences.
"""

import json
import math

import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
import scipy.signal
import torch

from learnafe.circuits import (
    METHODS,
    GmIdTable,
    WeakInversion,
    analog_response,
    band_edges,
    cap_area_um2,
    channel_parameters,
    constants,
    design_channel,
    digital_response,
    discretize,
    load_gm_model,
    noise_gain,
    output_noise_variance,
    power_w,
    q_for_crossing,
    s_coefficients,
    s_coefficients_from_w0_q,
)

FS = 20000.0
CENTRES = np.geomspace(100.0, 8000.0, 16)


def conventional_design(gain=1.0, c1=1e-12):
    q = q_for_crossing((8000 / 100) ** (1 / 15))
    return design_channel(CENTRES, q, gain, c1), q


def ekv_table(n=1.36, i_spec_m1=4e-7, i_spec_m2=5e-7):
    """A gm/Id table from the EKV interpolation gm n U_T / Id = (1 - exp(-sqrt(IC))) / sqrt(IC)."""
    ut = constants.U_T
    ids = np.geomspace(1e-13, 1e-6, 120)

    def dev(i_spec, model, w):
        ic = ids / i_spec
        g = (1 - np.exp(-np.sqrt(ic))) / np.sqrt(ic) / (n * ut)
        return {"model": model, "W_um": w, "L_um": 1, "id_a": ids.tolist(), "gm_over_id": g.tolist()}

    return {"format": "learnafe-gmid/1", "temperature_k": 300.0, "vdd_v": 1.8, "source": "EKV test curve",
            "devices": {"m1": dev(i_spec_m1, "sky130_fd_pr__pfet_01v8", 8),
                        "m2": dev(i_spec_m2, "sky130_fd_pr__nfet_01v8", 1)}}


# ----------------------------------------------------------------- constants ---

def test_thermal_voltage_and_slope_factor():
    assert constants.U_T == pytest.approx(0.025852, abs=2e-6)
    assert 1.2 <= constants.SLOPE_FACTOR_N <= 1.5
    with pytest.raises(ValueError, match="temperature_k"):
        constants.thermal_voltage(0.0)


# ------------------------------------------------------------ DSSF formulas ---

def _numeric_peak_and_edges(beta, d1, d0):
    """Peak frequency, peak magnitude and -3 dB frequencies of beta s/(s^2+d1 s+d0) by scipy search."""
    num, den = [beta, 0.0], [1.0, d1, d0]

    def mag(f):
        return abs(scipy.signal.freqs(num, den, worN=[2 * np.pi * f])[1][0])

    f_guess = math.sqrt(d0) / (2 * np.pi)
    res = scipy.optimize.minimize_scalar(lambda lf: -mag(math.exp(lf)),
                                         bounds=(math.log(f_guess / 3), math.log(f_guess * 3)),
                                         method="bounded", options={"xatol": 1e-12})
    fp = math.exp(res.x)
    peak = mag(fp)
    half = lambda f: mag(f) - peak / math.sqrt(2)  # noqa: E731
    lo = scipy.optimize.brentq(half, fp / 100, fp, xtol=1e-12, rtol=1e-14)
    hi = scipy.optimize.brentq(half, fp, fp * 100, xtol=1e-12, rtol=1e-14)
    return fp, peak, lo, hi


@pytest.mark.parametrize("gain", [1.0, 0.5, 2.0])
def test_formulas_match_numerical_peak_and_bandwidth(gain):
    d, q = conventional_design(gain=gain, c1=0.7e-12)
    p = channel_parameters(d["I1"], d["I2"], d["C1"], d["C2"])
    beta, d1, d0 = s_coefficients(p.gm1, p.gm2, d["C1"], d["C2"])
    for c in range(16):
        fp, peak, lo, hi = _numeric_peak_and_edges(beta[c], d1[c], d0[c])
        assert fp == pytest.approx(p.f0_hz[c], rel=1e-6)
        assert peak == pytest.approx(p.gain[c], rel=1e-9)
        assert fp / (hi - lo) == pytest.approx(p.q[c], rel=1e-6)
        elo, ehi = band_edges(p.f0_hz[c], p.q[c])
        assert (lo, hi) == pytest.approx((elo, ehi), rel=1e-6)
    assert p.gain == pytest.approx(np.full(16, gain))
    assert p.q == pytest.approx(np.full(16, q), rel=1e-12)


def test_random_circuits_formulas_vs_scipy_response():
    rng = np.random.default_rng(1)
    i1, i2 = 10 ** rng.uniform(-11, -8, 20), 10 ** rng.uniform(-11, -8, 20)
    c1, c2 = 10 ** rng.uniform(-13, -11, 20), 10 ** rng.uniform(-13, -11, 20)
    gm = WeakInversion()
    p = channel_parameters(i1, i2, c1, c2, gm)
    gm1, gm2 = i1 / (gm.n * constants.U_T), i2 / (gm.n * constants.U_T)
    assert p.w0 == pytest.approx(np.sqrt(gm1 * gm2 / (4 * c1 * c2)), rel=1e-12)
    assert p.q == pytest.approx(np.sqrt(gm2 * c2 / (gm1 * c1)), rel=1e-12)
    f = np.geomspace(1, 1e5, 50)
    h = analog_response(f, *s_coefficients(p.gm1, p.gm2, c1, c2))
    for c in range(20):
        _, ref = scipy.signal.freqs([-gm1[c] / (2 * c1[c]), 0], [1, gm1[c] / (2 * c2[c]), gm1[c] * gm2[c] / (4 * c1[c] * c2[c])],
                                    worN=2 * np.pi * f)
        np.testing.assert_allclose(h[c], ref, rtol=1e-12)
        # |H(j w0)| = C2/C1 with phase pi (inverting).
        beta, d1, d0 = s_coefficients_from_w0_q(p.w0[c], p.q[c], p.gain[c])
        assert beta / d1 == pytest.approx(-c2[c] / c1[c], rel=1e-12)


def test_transfer_function_from_half_circuit_nodal_analysis():
    """Solve the half circuit (M1 follower, M2 feedback, 2C1 and 2C2 to virtual ground) numerically."""
    gm = WeakInversion()
    i1, i2, c1, c2 = 3e-10, 2e-9, 0.8e-12, 1.3e-12
    p = channel_parameters(i1, i2, c1, c2, gm)
    for f in (30.0, 500.0, p.f0_hz, 7000.0):
        s = 2j * np.pi * f
        # unknowns (vd, vs); vin = 1: D: 2sC1 vd - gm1 (vs - vin) = 0; S: 2sC2 vs + gm1 (vs - vin) + gm2 vd = 0
        m = np.array([[2 * s * c1, -p.gm1], [p.gm2, 2 * s * c2 + p.gm1]])
        vd, _ = np.linalg.solve(m, np.array([-p.gm1, p.gm1]))
        h = analog_response([f], *s_coefficients(p.gm1, p.gm2, c1, c2))[0]
        assert abs(vd - h) < 1e-12 * abs(h)


@pytest.mark.parametrize("use_table", [False, True])
def test_design_round_trip(use_table):
    gm = GmIdTable(ekv_table()) if use_table else WeakInversion(n=1.3)
    rng = np.random.default_rng(2)
    f0 = 10 ** rng.uniform(2, 3.9, 12)
    q = rng.uniform(0.7, 8, 12)
    gain = rng.uniform(0.3, 3, 12)
    c1 = 10 ** rng.uniform(-13, -11.5, 12)
    d = design_channel(f0, q, gain, c1, gm)
    p = channel_parameters(d["I1"], d["I2"], d["C1"], d["C2"], gm)
    np.testing.assert_allclose(p.f0_hz, f0, rtol=1e-9)
    np.testing.assert_allclose(p.q, q, rtol=1e-9)
    np.testing.assert_allclose(p.gain, gain, rtol=1e-12)
    np.testing.assert_allclose(d["C1"], c1)


def test_q_for_crossing_gives_half_power_crossings():
    r = (8000 / 100) ** (1 / 15)
    q = q_for_crossing(r)
    assert q == pytest.approx(1 / (2 * math.sinh(math.log(r) / 2)), rel=1e-12)
    assert q == pytest.approx(3.4109, abs=1e-4)
    d, _ = conventional_design()
    p = channel_parameters(d["I1"], d["I2"], d["C1"], d["C2"])
    coeffs = s_coefficients(p.gm1, p.gm2, d["C1"], d["C2"])
    for c in range(15):
        fx = math.sqrt(CENTRES[c] * CENTRES[c + 1])
        h = np.abs(analog_response([fx], *(v[c:c + 2] for v in coeffs)))[:, 0]
        np.testing.assert_allclose(20 * np.log10(h), [-10 * math.log10(2)] * 2, atol=1e-9)


def test_design_refuses_nonsense():
    with pytest.raises(ValueError, match="f0_hz"):
        design_channel(-100.0, 3.0)
    with pytest.raises(ValueError, match="q"):
        design_channel(100.0, 0.0)
    with pytest.raises(ValueError, match="c1"):
        design_channel(100.0, 3.0, c1=0.0)
    with pytest.raises(ValueError, match="I1"):
        channel_parameters(-1e-9, 1e-9, 1e-12, 1e-12)
    with pytest.raises(ValueError, match="C2"):
        channel_parameters(1e-9, 1e-9, 1e-12, 0.0)
    with pytest.raises(ValueError, match="ratio"):
        q_for_crossing(1.0)


# -------------------------------------------------------- transconductance ---

def test_weak_inversion_gm_and_inverse():
    gm = WeakInversion(n=1.4, temperature_k=310.0)
    ut = constants.K_BOLTZMANN * 310.0 / constants.Q_ELECTRON
    assert gm.gm1(1e-9) == pytest.approx(1e-9 / (1.4 * ut), rel=1e-15)
    assert gm.current("m2", gm.gm2(np.array([1e-12, 3e-8]))) == pytest.approx([1e-12, 3e-8], rel=1e-14)
    with pytest.raises(ValueError, match="slope factor"):
        WeakInversion(n=0.5)
    with pytest.raises(ValueError, match="device"):
        gm.gm("m3", 1e-9)


def test_gmid_table_interpolates_in_log_current(tmp_path):
    table = ekv_table()
    path = tmp_path / "gmid.json"
    path.write_text(json.dumps(table))
    gm = GmIdTable.load(path)
    ids = np.asarray(table["devices"]["m2"]["id_a"])
    g = np.asarray(table["devices"]["m2"]["gm_over_id"])
    i = np.array([2.5e-12, 7e-10, 4.4e-8])
    ref = i * np.interp(np.log(i), np.log(ids), g)
    np.testing.assert_allclose(gm.gm2(i), ref, rtol=1e-14)
    # torch path: same values, gradient equals a central finite difference of the numpy path
    it = torch.tensor(i, dtype=torch.float64, requires_grad=True)
    out = gm.gm2(it)
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-14)
    out.sum().backward()
    h = i * 1e-7
    fd = (gm.gm2(i + h) - gm.gm2(i - h)) / (2 * h)
    np.testing.assert_allclose(it.grad.numpy(), fd, rtol=1e-6)
    # round trip through to_dict / load_gm_model, and the inverse
    gm2 = load_gm_model(json.loads(json.dumps(gm.to_dict())))
    np.testing.assert_allclose(gm2.gm1(i), gm.gm1(i), rtol=0)
    np.testing.assert_allclose(gm.current("m1", gm.gm1(i)), i, rtol=1e-10)
    by_path = load_gm_model({"kind": "gmid_table", "path": str(path)})
    np.testing.assert_allclose(by_path.gm2(i), gm.gm2(i), rtol=0)
    with pytest.raises(ValueError, match="'table'"):
        load_gm_model({"kind": "gmid_table"})


def test_gmid_table_with_constant_gm_over_id_equals_weak_inversion():
    ids = np.geomspace(1e-13, 1e-6, 5)
    g = np.full(5, 1 / (1.36 * constants.U_T))
    dev = {"id_a": ids.tolist(), "gm_over_id": g.tolist()}
    gm = GmIdTable({"format": "learnafe-gmid/1", "devices": {"m1": dev, "m2": dev}})
    i = np.geomspace(2e-13, 9e-7, 17)
    np.testing.assert_allclose(gm.gm1(i), WeakInversion(1.36).gm1(i), rtol=1e-13)


def test_gmid_table_refuses_bad_input(tmp_path):
    gm = GmIdTable(ekv_table())
    with pytest.raises(ValueError, match="outside its gm/Id table"):
        gm.gm1(np.array([1e-5]))
    with pytest.raises(ValueError, match="format"):
        GmIdTable({"format": "other"})
    bad = ekv_table()
    bad["devices"]["m1"]["id_a"] = bad["devices"]["m1"]["id_a"][::-1]
    with pytest.raises(ValueError, match="ascending"):
        GmIdTable(bad)
    with pytest.raises(FileNotFoundError, match="characterize"):
        GmIdTable.load(tmp_path / "missing.json")


# ---------------------------------------------------------------------- cost ---

def test_power_and_area_hand_calculation_two_channels():
    i1, i2 = np.array([1e-10, 2e-9]), np.array([5e-10, 7e-9])
    c1, c2 = np.array([1e-12, 0.2e-12]), np.array([0.5e-12, 3e-12])
    # 1.8 V * 2 branches * (0.1 + 2 + 0.5 + 7) nA = 34.56 nW
    assert power_w(i1, i2) == pytest.approx(34.56e-9, rel=1e-12)
    # (1 + 0.2 + 0.5 + 3) pF / 2 fF/um^2 = 2350 um^2
    assert cap_area_um2(c1, c2) == pytest.approx(2350.0, rel=1e-12)


def test_output_noise_matches_integrated_nodal_analysis():
    gm = WeakInversion()
    for i1, i2, c1, c2 in [(1.3e-11, 1.5e-10, 1e-12, 1e-12), (4e-10, 1e-9, 0.3e-12, 0.9e-12),
                           (2e-9, 3e-10, 2e-12, 0.5e-12)]:
        p = channel_parameters(i1, i2, c1, c2, gm)
        q = constants.Q_ELECTRON

        def psd(f):
            s = 2j * np.pi * f
            m = np.array([[2 * s * c1, -p.gm1], [p.gm2, 2 * s * c2 + p.gm1]])
            minv = np.linalg.inv(m)
            # M1 noise current source->drain: +i into D, -i into S; M2: -i into S.
            v1 = minv @ np.array([1.0, -1.0])
            v2 = minv @ np.array([0.0, -1.0])
            return 2 * q * i1 * abs(v1[0]) ** 2 + 2 * q * i2 * abs(v2[0]) ** 2

        # integrate over log f, 13 decades either side of f0 (the tails beyond are < 1e-12 relative)
        lf0 = math.log(p.f0_hz)
        edges = lf0 + np.array([-30.0, -3.0, -0.5, 0.0, 0.5, 3.0, 30.0])
        half = sum(scipy.integrate.quad(lambda u: psd(math.exp(u)) * math.exp(u), a, b, limit=400,
                                        epsabs=0, epsrel=1e-11)[0] for a, b in zip(edges, edges[1:]))
        var = output_noise_variance(i1, i2, c1, c2, p.gm1, p.gm2)
        assert var == pytest.approx(2 * half, rel=1e-6)  # two independent half circuits
        kt = constants.K_BOLTZMANN * constants.TEMPERATURE_K
        assert var == pytest.approx(gm.n * kt * (1 + c2 / c1) / (2 * c1), rel=1e-12)


# ---------------------------------------------------------------- s -> z ---

def _conventional_s():
    d, _ = conventional_design()
    p = channel_parameters(d["I1"], d["I2"], d["C1"], d["C2"])
    return s_coefficients(p.gm1, p.gm2, d["C1"], d["C2"])


def test_bilinear_equals_scipy_with_prewarp_and_is_exact_at_w0():
    beta, d1, d0 = _conventional_s()
    b, a = discretize(beta, d1, d0, FS, "bilinear")
    for c in range(16):
        w0 = math.sqrt(d0[c])
        k = w0 / math.tan(w0 / (2 * FS))
        bz, az = scipy.signal.bilinear([beta[c], 0.0], [1.0, d1[c], d0[c]], fs=k / 2)
        np.testing.assert_allclose(b[c], np.pad(bz, (0, 3 - len(bz))), rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(a[c], az[1:] / az[0], rtol=1e-10)
    h0 = digital_response(CENTRES, b, a, FS)[np.arange(16), np.arange(16)]
    np.testing.assert_allclose(h0, -np.ones(16), atol=1e-9)
    # every digital frequency f shows the analog response at the warped K tan(pi f / fs)
    f = np.geomspace(10, 9900, 200)
    hd = digital_response(f, b, a, FS)
    for c in (0, 9, 15):
        w0 = math.sqrt(d0[c])
        warped = w0 / math.tan(w0 / (2 * FS)) * np.tan(np.pi * f / FS) / (2 * np.pi)
        np.testing.assert_allclose(hd[c], analog_response(warped, beta[c], d1[c], d0[c]), rtol=1e-8, atol=1e-12)


def test_matched_z_poles_and_gain():
    beta, d1, d0 = _conventional_s()
    b, a = discretize(beta, d1, d0, FS, "matched_z")
    for c in range(16):
        poles = np.roots([1.0, d1[c], d0[c]])
        zp = np.sort_complex(np.exp(poles / FS))
        np.testing.assert_allclose(np.sort_complex(np.roots(np.r_[1.0, a[c]])), zp, rtol=1e-10)
    h0 = np.abs(digital_response(CENTRES, b, a, FS))[np.arange(16), np.arange(16)]
    np.testing.assert_allclose(h0, np.ones(16), rtol=1e-10)


def test_impulse_invariance_samples_scipy_impulse_response():
    beta, d1, d0 = _conventional_s()
    b, a = discretize(beta, d1, d0, FS, "impulse_invariance")
    n = 400
    t = np.arange(n) / FS
    for c in (0, 7, 15):
        _, h = scipy.signal.impulse(([beta[c], 0.0], [1.0, d1[c], d0[c]]), T=t)
        ref = h / FS
        ref[0] /= 2  # half-sample correction at the jump of h(t) at t = 0
        x = np.zeros(n)
        x[0] = 1
        got = scipy.signal.lfilter(b[c], np.r_[1.0, a[c]], x)
        np.testing.assert_allclose(got, ref, atol=1e-9 * np.abs(ref).max())


def test_magnitude_matched_exact_at_dc_w0_nyquist():
    beta, d1, d0 = _conventional_s()
    b, a = discretize(beta, d1, d0, FS, "magnitude_matched")
    for c in range(16):
        for f in (CENTRES[c], FS / 2):
            hd = abs(digital_response([f], b[c:c + 1], a[c:c + 1], FS)[0, 0])
            ha = abs(analog_response([f], beta[c], d1[c], d0[c])[0])
            assert hd == pytest.approx(ha, rel=1e-9)
        assert abs(b[c].sum()) < 1e-15  # zero at DC


@pytest.mark.parametrize("method,max_db,max_mag", [("bilinear", 0.31, 0.46), ("matched_z", 0.09, 0.21),
                                                   ("impulse_invariance", 0.09, 0.25),
                                                   ("magnitude_matched", 0.035, 0.11)])
def test_discrete_matches_analog_below_0p4_fs(method, max_db, max_mag):
    """Stated tolerances (docs/circuits.md), f <= 0.4 fs: channels with f0 <= 0.1 fs within their -3 dB band
    (dB), and every channel of the 100 Hz-8 kHz bank (|magnitude| difference relative to the unit peak)."""
    beta, d1, d0 = _conventional_s()
    b, a = discretize(beta, d1, d0, FS, method)
    f = np.geomspace(20, 0.4 * FS, 3000)
    ha = analog_response(f, beta, d1, d0)
    hd = digital_response(f, b, a, FS)
    err = np.abs(20 * np.log10(np.abs(hd) / np.abs(ha)))
    band = 20 * np.log10(np.abs(ha)) > -10 * math.log10(2)
    low = CENTRES <= 0.1 * FS
    worst = max(err[c][band[c]].max() for c in np.flatnonzero(low))
    assert worst <= max_db
    lin = np.abs(np.abs(hd) - np.abs(ha)).max(axis=1)
    assert lin[low].max() < 0.05
    assert lin.max() <= max_mag


def test_discretize_refuses_nyquist_and_bad_method():
    with pytest.raises(ValueError, match="Nyquist"):
        discretize(*s_coefficients_from_w0_q(2 * np.pi * 10000.0, 3.0, 1.0), FS)
    with pytest.raises(ValueError, match="Nyquist"):
        discretize(*s_coefficients_from_w0_q(2 * np.pi * np.array([100.0, 12000.0]), 3.0, 1.0), FS)
    with pytest.raises(ValueError, match="method"):
        discretize(*s_coefficients_from_w0_q(2 * np.pi * 100.0, 3.0, 1.0), FS, "euler")


def test_noise_gain_equals_impulse_energy():
    beta, d1, d0 = _conventional_s()
    for method in METHODS:
        b, a = discretize(beta, d1, d0, FS, method)
        x = np.zeros(200000)
        x[0] = 1
        for c in (0, 8, 15):
            h = scipy.signal.lfilter(b[c], np.r_[1.0, a[c]], x)
            assert noise_gain(b[c], a[c]) == pytest.approx(np.sum(h * h), rel=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_discretize_gradcheck(method):
    beta, d1, d0 = (torch.tensor(v[[0, 6, 15]], dtype=torch.float64) for v in _conventional_s())
    scale = torch.stack([beta.abs(), d1, d0]).detach()

    def fn(u_beta, u_d1, u_d0):
        b, a = discretize(u_beta * scale[0], u_d1 * scale[1], u_d0 * scale[2], FS, method)
        return b, a

    inputs = tuple(torch.tensor(v, dtype=torch.float64, requires_grad=True)
                   for v in (-np.ones(3), np.ones(3), np.ones(3)))
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-7, atol=1e-8, rtol=1e-5)
    # torch and numpy paths agree
    b_t, a_t = fn(*inputs)
    b_n, a_n = discretize(*(v.detach().numpy() for v in (beta, d1, d0)), FS, method)
    np.testing.assert_allclose(b_t.detach().numpy(), b_n, rtol=1e-12, atol=1e-18)
    np.testing.assert_allclose(a_t.detach().numpy(), a_n, rtol=1e-12)
