"""learnafe.ops against independent references (scipy in float64, finite
differences through torch.autograd.gradcheck, a plain per-sample envelope)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.signal as ss
import torch

from isa_helpers import assert_same_on_every_isa
from learnafe import ops
from learnafe.ops.buffers import output_cache
from learnafe.ops.precision import STRUCTURES, float32_errors


def random_bank(rng, C, radius=(0.3, 0.995)):
    """Random stable sections: poles at random radius/angle, random numerators."""
    r = rng.uniform(*radius, size=C)
    th = rng.uniform(0.01, np.pi - 0.01, size=C)
    a = np.stack([-2 * r * np.cos(th), r * r], axis=1)
    b = rng.standard_normal((C, 3))
    return b, a


def rbj_bandpass(fc, fs, q):
    """Band-pass biquad (bilinear transform with pre-warping at fc), 0 dB peak."""
    w0 = 2 * np.pi * np.asarray(fc, dtype=np.float64) / fs
    al = np.sin(w0) / (2 * q)
    a0 = 1 + al
    b = np.stack([al, 0 * al, -al], axis=1) / a0[:, None]
    a = np.stack([-2 * np.cos(w0), 1 - al], axis=1) / a0[:, None]
    return b, a


def scipy_ref(x2, b, a):
    """[B, T] -> [B, C, T] with scipy.signal.lfilter in float64."""
    return np.stack([np.stack([ss.lfilter(b[c], np.r_[1.0, a[c]], xi) for c in range(b.shape[0])])
                     for xi in x2])


# ------------------------------------------------------------- forward ---

@pytest.mark.parametrize("B,C,T", [(1, 1, 1), (1, 1, 500), (3, 5, 257), (2, 16, 300), (4, 17, 130),
                                   (1, 40, 64), (5, 3, 1)])
def test_forward_matches_scipy_float64(B, C, T):
    rng = np.random.default_rng(B * 1000 + C * 10 + T)
    b, a = random_bank(rng, C)
    x = rng.standard_normal((B, T))
    y = ops.biquad_filterbank(x, b, a)
    assert y.shape == (B, C, T) and y.dtype == np.float64
    np.testing.assert_allclose(y, scipy_ref(x, b, a), rtol=1e-10, atol=1e-10)


def test_forward_1d_and_float32():
    rng = np.random.default_rng(1)
    b, a = random_bank(rng, 6, radius=(0.3, 0.9))
    x = rng.standard_normal(400)
    ref = scipy_ref(x[None], b, a)[0]
    y = ops.biquad_filterbank(x, b, a)
    assert y.shape == (6, 400)
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-10)
    y32 = ops.biquad_filterbank(x.astype(np.float32), b.astype(np.float32), a.astype(np.float32))
    assert y32.dtype == np.float32
    ref32 = scipy_ref(x.astype(np.float32).astype(np.float64)[None],
                      b.astype(np.float32).astype(np.float64), a.astype(np.float32).astype(np.float64))[0]
    np.testing.assert_allclose(y32, ref32, rtol=0, atol=2e-6 * np.abs(ref32).max())
    # float64 coefficients with a float32 signal: output float32
    y3 = ops.biquad_filterbank(x.astype(np.float32), b, a)
    assert y3.dtype == np.float32


def test_state_matches_scipy_lfilter_zi():
    rng = np.random.default_rng(2)
    B, C, T = 2, 3, 50
    b, a = random_bank(rng, C)
    x = rng.standard_normal((B, T))
    zi = rng.standard_normal((B, C, 2))
    y = ops.biquad_filterbank(x, b, a, zi=zi)
    # Reference by definition: prepend the state as two past values of v.
    for i in range(B):
        for c in range(C):
            v = np.zeros(T + 2)
            v[0], v[1] = zi[i, c, 1], zi[i, c, 0]
            for n in range(T):
                v[n + 2] = x[i, n] - a[c, 0] * v[n + 1] - a[c, 1] * v[n]
            ref = b[c, 0] * v[2:] + b[c, 1] * v[1:-1] + b[c, 2] * v[:-2]
            np.testing.assert_allclose(y[i, c], ref, rtol=1e-12, atol=1e-12)


def test_streaming_chunks_equal_one_call():
    rng = np.random.default_rng(3)
    B, C, T = 3, 9, 1000
    b, a = random_bank(rng, C)
    x = rng.standard_normal((B, T))
    full, zf_full = ops.biquad_filterbank(x, b, a, return_state=True)
    state = None
    parts = []
    for lo, hi in [(0, 1), (1, 2), (2, 333), (333, 333), (333, 1000)]:
        y, state = ops.biquad_filterbank(x[:, lo:hi], b, a, zi=state, return_state=True)
        parts.append(y)
    np.testing.assert_array_equal(np.concatenate(parts, axis=-1), full)
    np.testing.assert_array_equal(state, zf_full)


def test_out_argument_writes_in_place():
    rng = np.random.default_rng(12)
    b, a = random_bank(rng, 5)
    x = rng.standard_normal((2, 300))
    ref, zref = ops.biquad_filterbank(x, b, a, return_state=True)
    out = np.full((2, 5, 300), np.nan)
    y, zf = ops.biquad_filterbank(x, b, a, out=out, return_state=True)
    assert y is out
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(zf, zref)
    xt = torch.tensor(x[0])
    outt = torch.empty(5, 300, dtype=torch.float64)
    assert ops.biquad_filterbank(xt, torch.tensor(b), torch.tensor(a), out=outt) is outt
    np.testing.assert_array_equal(outt.numpy(), ref[0])
    with pytest.raises(ValueError, match=r"out must have shape \(2, 5, 300\)"):
        ops.biquad_filterbank(x, b, a, out=np.empty((2, 5, 299)))
    with pytest.raises(TypeError, match="out must have x's dtype"):
        ops.biquad_filterbank(x, b, a, out=np.empty((2, 5, 300), dtype=np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        ops.biquad_filterbank(x, b, a, out=np.empty((300, 5, 2)).T)
    with pytest.raises(ValueError, match="does not support autograd"):
        ops.biquad_filterbank(xt.requires_grad_(True), torch.tensor(b), torch.tensor(a), out=outt)


def test_non_contiguous_inputs():
    rng = np.random.default_rng(4)
    b, a = random_bank(rng, 4)
    x = rng.standard_normal((300, 3)).T  # [3, 300], Fortran order
    bn = np.asfortranarray(b)
    y = ops.biquad_filterbank(x, bn, a[:, :])
    np.testing.assert_allclose(y, scipy_ref(np.ascontiguousarray(x), b, a), rtol=1e-10, atol=1e-10)
    xt = torch.from_numpy(rng.standard_normal((300, 3))).T
    yt = ops.biquad_filterbank(xt, torch.from_numpy(b), torch.from_numpy(a))
    np.testing.assert_allclose(yt.numpy(), scipy_ref(xt.contiguous().numpy(), b, a), rtol=1e-10,
                               atol=1e-10)


# ------------------------------------------------------------ gradients ---

@pytest.mark.parametrize("C,fast", [(1, False), (3, False), (17, True)])
def test_gradcheck_filterbank(C, fast):
    """Finite differences in float64 (fast mode, random projections, for the 2-block bank)."""
    rng = np.random.default_rng(C)
    b, a = random_bank(rng, C, radius=(0.3, 0.9))
    x = torch.tensor(rng.standard_normal((2, 23)), requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    at = torch.tensor(a, requires_grad=True)
    zi = torch.tensor(rng.standard_normal((2, C, 2)), requires_grad=True)

    def f(x, bt, at, zi):
        y, zf = ops.biquad_filterbank(x, bt, at, zi=zi, return_state=True)
        return y, zf

    assert torch.autograd.gradcheck(f, (x, bt, at, zi), eps=1e-6, atol=1e-7, rtol=1e-6,
                                    fast_mode=fast)
    assert torch.autograd.gradcheck(lambda x, bt, at: ops.biquad_filterbank(x, bt, at),
                                    (x, bt, at), eps=1e-6, atol=1e-7, rtol=1e-6, fast_mode=True)


@pytest.mark.parametrize("T", [0, 1, 2])
def test_gradcheck_short_signals_state_passthrough(T):
    rng = np.random.default_rng(10 + T)
    b, a = random_bank(rng, 2, radius=(0.3, 0.9))
    x = torch.tensor(rng.standard_normal((1, T)), requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    at = torch.tensor(a, requires_grad=True)
    zi = torch.tensor(rng.standard_normal((1, 2, 2)), requires_grad=True)
    f = lambda x, bt, at, zi: ops.biquad_filterbank(x, bt, at, zi=zi, return_state=True)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x, bt, at, zi), eps=1e-6, atol=1e-7, rtol=1e-6)


def test_gradients_float32_close_to_float64():
    rng = np.random.default_rng(5)
    b, a = random_bank(rng, 5, radius=(0.5, 0.95))
    x = rng.standard_normal((2, 400))
    w = rng.standard_normal((2, 5, 400))
    grads = {}
    for dt in (torch.float32, torch.float64):
        xt = torch.tensor(x, dtype=dt, requires_grad=True)
        bt = torch.tensor(b, dtype=dt, requires_grad=True)
        at = torch.tensor(a, dtype=dt, requires_grad=True)
        (ops.biquad_filterbank(xt, bt, at) * torch.tensor(w, dtype=dt)).sum().backward()
        grads[dt] = [g.grad.double().numpy() for g in (xt, bt, at)]
        assert xt.grad.dtype == dt and bt.grad.dtype == dt
    for g32, g64 in zip(grads[torch.float32], grads[torch.float64]):
        np.testing.assert_allclose(g32, g64, rtol=0, atol=1e-4 * np.abs(g64).max())


# ------------------------------------------------------------- envelope ---

def envelope_reference(x2, b, a, hop, tau, fs, rectify):
    """Unfused float64 reference: scipy filter, rectify, explicit low-pass loop, frames."""
    y = scipy_ref(x2, b, a)
    r = np.abs(y) if rectify == "abs" else y * y
    alpha = 1 - np.exp(-1 / (tau * fs))
    e = ss.lfilter([alpha], [1, -(1 - alpha)], r, axis=-1)
    F = x2.shape[1] // hop
    return e[..., hop - 1: F * hop: hop]


@pytest.mark.parametrize("rectify", ["abs", "square"])
@pytest.mark.parametrize("B,C,T,hop", [(2, 5, 1000, 100), (1, 17, 333, 50), (3, 1, 64, 64),
                                       (2, 3, 50, 1)])
def test_envelope_matches_unfused(rectify, B, C, T, hop):
    rng = np.random.default_rng(T + C)
    b, a = random_bank(rng, C)
    x = rng.standard_normal((B, T))
    out = ops.filterbank_envelope(x, b, a, hop=hop, tau=0.004, sample_rate=8000.0, rectify=rectify)
    ref = envelope_reference(x, b, a, hop, 0.004, 8000.0, rectify)
    assert out.shape == (B, C, T // hop)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)


def test_envelope_torch_composition_equals_fused_and_grads():
    rng = np.random.default_rng(6)
    b, a = random_bank(rng, 4, radius=(0.5, 0.97))
    x = rng.standard_normal((2, 410))
    hop, tau, fs = 40, 0.002, 16000.0
    alpha = ops.envelope_alpha(tau, fs)
    assert alpha == pytest.approx(1 - np.exp(-1 / (tau * fs)), rel=1e-15)
    w = torch.tensor(rng.standard_normal((2, 4, 410 // hop)))

    def unfused(xt, bt, at):
        y = ops.biquad_filterbank(xt, bt, at)
        r = y.abs()
        e = torch.zeros_like(r[..., 0])
        outs = []
        for n in range(r.shape[-1]):
            e = e + alpha * (r[..., n] - e)
            if (n + 1) % hop == 0:
                outs.append(e)
        return torch.stack(outs, dim=-1)

    res = []
    for fn in (unfused, lambda xt, bt, at: ops.filterbank_envelope(xt, bt, at, hop=hop, tau=tau,
                                                                  sample_rate=fs)):
        xt = torch.tensor(x, requires_grad=True)
        bt = torch.tensor(b, requires_grad=True)
        at = torch.tensor(a, requires_grad=True)
        out = fn(xt, bt, at)
        (out * w).sum().backward()
        res.append([out.detach().numpy(), xt.grad.numpy(), bt.grad.numpy(), at.grad.numpy()])
    for u, f in zip(*res):
        np.testing.assert_allclose(f, u, rtol=1e-9, atol=1e-12)
    assert np.all(res[1][1][:, (410 // hop) * hop:] == 0)  # tail after the last frame


@pytest.mark.parametrize("rectify", ["abs", "square"])
def test_gradcheck_envelope(rectify):
    rng = np.random.default_rng(7)
    b, a = random_bank(rng, 3, radius=(0.3, 0.9))
    x = torch.tensor(rng.standard_normal((2, 37)), requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    at = torch.tensor(a, requires_grad=True)
    f = lambda x, bt, at: ops.filterbank_envelope(x, bt, at, hop=5, tau=0.001,  # noqa: E731
                                                  sample_rate=4000.0, rectify=rectify)
    assert torch.autograd.gradcheck(f, (x, bt, at), eps=1e-6, atol=1e-7, rtol=1e-6)
    # a bank of two channel blocks, fast mode
    b2, a2 = random_bank(rng, 19, radius=(0.3, 0.9))
    bt2 = torch.tensor(b2, requires_grad=True)
    at2 = torch.tensor(a2, requires_grad=True)
    assert torch.autograd.gradcheck(f, (x, bt2, at2), eps=1e-6, atol=1e-7, rtol=1e-6, fast_mode=True)


# -------------------------------------------------------------- threads ---

def test_bitwise_identical_for_any_thread_count():
    rng = np.random.default_rng(8)
    b, a = random_bank(rng, 20)
    x = rng.standard_normal((5, 700)).astype(np.float32)
    w = torch.tensor(rng.standard_normal((5, 20, 700)), dtype=torch.float32)
    we = torch.tensor(rng.standard_normal((5, 20, 7)), dtype=torch.float32)
    results = []
    for nt in (1, 2, 3, 7):
        xt = torch.tensor(x, requires_grad=True)
        bt = torch.tensor(b, requires_grad=True)
        at = torch.tensor(a, requires_grad=True)
        y = ops.biquad_filterbank(xt, bt, at, num_threads=nt)
        e = ops.filterbank_envelope(xt, bt, at, hop=100, tau=0.01, sample_rate=1000.0, num_threads=nt)
        ((y * w).sum() + (e * we).sum()).backward()
        results.append([t.detach().numpy().copy() for t in (y, e, xt.grad, bt.grad, at.grad)])
    for other in results[1:]:
        for r0, r1 in zip(results[0], other):
            np.testing.assert_array_equal(r0, r1)


def test_thread_control():
    old = ops.get_num_threads()
    try:
        ops.set_num_threads(3)
        assert ops.get_num_threads() == 3
        ops.set_num_threads(None)
        assert ops.get_num_threads() == torch.get_num_threads()
        with pytest.raises(ValueError, match="n must be a positive integer"):
            ops.set_num_threads(0)
    finally:
        ops.set_num_threads(None)
    assert ops.get_num_threads() == old
    with pytest.raises(ValueError, match="num_threads"):
        ops.biquad_filterbank(np.zeros(4), np.zeros((1, 3)), np.zeros((1, 2)), num_threads=-1)


# ----------------------------------------------------------- validation ---

def _bank():
    return np.array([[1.0, 0.0, -1.0]]), np.array([[-1.5, 0.8]])


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(x=np.zeros((2, 3, 4))), ValueError, "x must be"),
    (dict(b=np.zeros((1, 2))), ValueError, r"b must be \[C, 3\]"),
    (dict(a=np.zeros((1, 3))), ValueError, r"a must be \[C, 2\]"),
    (dict(a=np.zeros((2, 2))), ValueError, "same number of channels"),
    (dict(x=np.zeros(8, dtype=np.int64)), TypeError, "x must be float32 or float64"),
    (dict(x=np.zeros(8, dtype=np.float32), b=np.zeros((1, 3), dtype=np.float32)), TypeError,
     "b is float32 but a is float64"),
    (dict(b=np.zeros((1, 3), dtype=np.float32), a=np.array([[-1.5, 0.8]], dtype=np.float32)),
     TypeError, "x is float64 but b and a are float32"),
    (dict(x=np.array([0.0, np.nan, 1.0])), ValueError, "x contains non-finite"),
    (dict(b=np.array([[1.0, np.inf, 0.0]])), ValueError, "b contains non-finite"),
    (dict(a=np.array([[-2.0, 1.0]])), ValueError, "channel 0 is unstable"),
    (dict(a=np.array([[0.0, 1.2]])), ValueError, "channel 0 is unstable"),
    (dict(x=[0.0, 1.0]), TypeError, "x must be a NumPy array or a torch tensor"),
    (dict(x=torch.zeros(8, dtype=torch.float64)), TypeError, "torch"),
])
def test_bad_inputs_raise(kwargs, exc, match):
    b, a = _bank()
    args = dict(x=np.zeros(8), b=b, a=a)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        ops.biquad_filterbank(args["x"], args["b"], args["a"])


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_first_non_finite_against_elementwise_search(kind):
    """The one-pass finiteness check agrees with an element-wise search, including sums that overflow."""
    from learnafe.ops.checks import first_non_finite

    rng = np.random.default_rng(3)
    wrap = (lambda a: a) if kind == "numpy" else torch.from_numpy
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((4, 7, 33)).astype(dtype)
        assert first_non_finite(wrap(x)) is None
        big = np.full((3, 50), np.finfo(dtype).max / 4, dtype=dtype)  # finite, but the sum overflows
        assert first_non_finite(wrap(big)) is None
        for value, where in ((np.nan, (2, 3, 4)), (np.inf, (0, 0, 1)), (-np.inf, (3, 6, 32))):
            y = x.copy()
            y[where] = value
            y[3, 6, 32] = -np.inf if value == np.inf else y[3, 6, 32]  # inf + -inf: a NaN sum
            expect = tuple(int(i) for i in np.argwhere(~np.isfinite(y))[0])
            assert first_non_finite(wrap(y)) == expect
    assert first_non_finite(wrap(np.arange(5))) is None  # integers are always finite
    if kind == "torch":
        h = torch.full((4,), 6e4, dtype=torch.float16)  # the float16 sum overflows, the values are finite
        assert first_non_finite(h) is None
        h[2] = float("nan")
        assert first_non_finite(h) == (2,)


def test_unstable_names_the_channel():
    b = np.tile([1.0, 0.0, -1.0], (4, 1))
    a = np.tile([-1.5, 0.8], (4, 1))
    a[2] = [-1.9, 0.99999999]  # stable
    a[3] = [-1.5, 1.0]         # on the unit circle
    with pytest.raises(ValueError, match="channel 3 is unstable"):
        ops.biquad_filterbank(np.zeros(10), b, a)


def test_bad_state_and_envelope_args():
    b, a = _bank()
    x = np.zeros((2, 100))
    with pytest.raises(ValueError, match=r"zi must have shape \(2, 1, 2\)"):
        ops.biquad_filterbank(x, b, a, zi=np.zeros((1, 2)))
    with pytest.raises(TypeError, match="zi is float32"):
        ops.biquad_filterbank(x, b, a, zi=np.zeros((2, 1, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="zi contains non-finite"):
        ops.biquad_filterbank(x, b, a, zi=np.full((2, 1, 2), np.nan))
    env = dict(hop=10, tau=0.01, sample_rate=1000.0)
    for bad, match in [(dict(hop=0), "hop must be"), (dict(hop=101), "hop must be"),
                       (dict(hop=2.5), "hop must be"), (dict(tau=0.0), "tau must be"),
                       (dict(sample_rate=-1.0), "sample_rate must be"),
                       (dict(rectify="relu"), "rectify must be")]:
        with pytest.raises(ValueError, match=match):
            ops.filterbank_envelope(x, b, a, **{**env, **bad})
    with pytest.raises(ValueError, match="on device"):
        ops.biquad_filterbank(torch.zeros(4, device="meta"), torch.tensor(b), torch.tensor(a))


# ------------------------------------------------------------ precision ---

def test_float32_error_within_bound_and_coefficient_precision_matters():
    """float32 signal + float64 coefficients (float64 state) stays within 1e-4 of the output
    peak for 100 Hz - 8 kHz at 20 kHz and 100 Hz at 48.8 kHz; rounding the coefficients to
    float32 alone breaks the bound at 48.8 kHz (so the bound discriminates)."""
    structures = ("op_f64_state_f64_coef", "op_f64_state_f32_coef")
    b20, a20 = rbj_bandpass(np.geomspace(100, 8000, 16), 20000.0, 3.0)
    b48, a48 = rbj_bandpass(np.array([100.0]), 50e6 / 1024, 3.0)
    err20 = float32_errors(b20, a20, 20000.0, structures=structures)
    err48 = float32_errors(b48, a48, 50e6 / 1024, structures=structures)
    assert max(err20["op_f64_state_f64_coef"]) < 1e-6
    assert max(err48["op_f64_state_f64_coef"]) < 1e-6
    assert max(err48["op_f64_state_f32_coef"]) > 1e-4


def test_float32_structure_emulation_is_float32():
    """The emulated float32 structures agree with each other and with scipy to float32
    accuracy on a well-conditioned bank (the emulation itself is right)."""
    b, a = rbj_bandpass(np.array([1000.0, 3000.0]), 16000.0, 2.0)
    err = float32_errors(b, a, 16000.0, seconds=0.05, structures=STRUCTURES)
    for s in STRUCTURES:
        assert max(err[s]) < 1e-5, s
    assert max(err["df2_f32"]) > 1e-8  # really rounded to float32, not float64


# --------------------------------------------------- portability / numpy ---

def test_numpy_path_does_not_import_torch_and_isa_paths_bitwise_equal(tmp_path):
    """Every instruction-set path gives bitwise the same result (no FMA contraction,
    ISA-independent summation order), and the NumPy path never imports torch."""
    code = (
        "import sys, numpy as np, scipy.signal as ss\n"
        "from learnafe import ops\n"
        "rng = np.random.default_rng(0)\n"
        "x = rng.standard_normal((3, 301)).astype(np.float32); b = rng.standard_normal((21, 3))\n"
        "r = rng.uniform(0.3, 0.99, 21); th = rng.uniform(0.1, 3.0, 21)\n"
        "a = np.stack([-2 * r * np.cos(th), r * r], 1)\n"
        "y = ops.biquad_filterbank(x, b, a)\n"
        "ref = np.stack([[ss.lfilter(b[c], np.r_[1, a[c]], x[i].astype(np.float64))\n"
        "                 for c in range(21)] for i in range(3)])\n"
        "assert np.abs(y - ref).max() < 1e-5 * np.abs(ref).max()\n"
        "e = ops.filterbank_envelope(x, b, a, hop=30, tau=0.01, sample_rate=1000.0)\n"
        "assert 'torch' not in sys.modules, 'NumPy path imported torch'\n"
        "from learnafe import _core\n"
        "gy = rng.standard_normal(y.shape).astype(np.float32)\n"
        "gx = np.empty_like(x); gb = np.empty((21, 3)); ga = np.empty((21, 2))\n"
        "_core.biquad_backward_f32(x, b, a, None, gy, None, gx, gb, ga, None, 2)\n"
        "ge = rng.standard_normal(e.shape).astype(np.float32)\n"
        "hx = np.empty_like(x); hb = np.empty((21, 3)); ha = np.empty((21, 2))\n"
        "_core.envelope_backward_f32(x, b, a, 30, ops.envelope_alpha(0.01, 1000.0), 'abs', ge,\n"
        "                            hx, hb, ha, 2)\n"
        "xl = rng.standard_normal((2, 48000)).astype(np.float32)\n"
        "yl = ops.biquad_filterbank(xl, b[:16], a[:16])  # 6 MiB: below the streaming size\n"
        "yl = ops.biquad_filterbank(np.concatenate([xl, xl]), b[:16], a[:16])  # 12 MiB: streamed\n"
        "assert yl.ctypes.data % 64 == 0\n"
        "np.savez(sys.argv[1], y=y, e=e, gx=gx, gb=gb, ga=ga, hx=hx, hb=hb, ha=ha, yl=yl)\n"
        "print(ops.kernel_isa())\n")
    assert_same_on_every_isa(code, tmp_path, ("y", "e", "gx", "gb", "ga", "hx", "hb", "ha", "yl"))


def test_plain_backward_isa_paths_bitwise_equal(tmp_path):
    """The plain backward kernel (run per native vector on the AVX2 and AVX-512 paths)
    gives bitwise the generic path's gradients for every channel-block layout (C = 3,
    8, 16, 21), block boundary (T = 1, 2, 130, 300: the final-state gradient inside the
    first, a partial and a full block), float32 and float64, with the forward's
    checkpoints and without them, initial and final states given."""
    code = (
        "import sys, numpy as np\n"
        "from learnafe import _core, ops\n"
        "rng = np.random.default_rng(5)\n"
        "out = {}\n"
        "for dt, sfx in ((np.float32, 'f32'), (np.float64, 'f64')):\n"
        "    fwd, bwd = getattr(_core, 'biquad_forward_' + sfx), getattr(_core, 'biquad_backward_' + sfx)\n"
        "    for C in (3, 8, 16, 21):\n"
        "        r = rng.uniform(0.3, 0.99, C); th = rng.uniform(0.1, 3.0, C)\n"
        "        b = rng.standard_normal((C, 3)); a = np.stack([-2 * r * np.cos(th), r * r], 1)\n"
        "        for T in (1, 2, 130, 300):\n"
        "            x = rng.standard_normal((3, T)).astype(dt)\n"
        "            zi = rng.standard_normal((3, C, 2)).astype(dt)\n"
        "            gzf = rng.standard_normal((3, C, 2)).astype(dt)\n"
        "            gy = rng.standard_normal((3, C, T)).astype(dt)\n"
        "            y = np.empty((3, C, T), dt); zf = np.empty((3, C, 2), dt)\n"
        "            ck = np.empty(_core.biquad_checkpoint_size(3, T, C))\n"
        "            fwd(x, b, a, zi, y, zf, 1, ck)\n"
        "            for name, cks in (('ck', ck), ('own', None)):\n"
        "                gx = np.empty_like(x); gb = np.empty((C, 3)); ga = np.empty((C, 2))\n"
        "                gzi = np.empty_like(zi)\n"
        "                bwd(x, b, a, zi, gy, gzf, gx, gb, ga, gzi, 1, cks)\n"
        "                for k, v in (('gx', gx), ('gb', gb), ('ga', ga), ('gzi', gzi)):\n"
        "                    out[f'{k}_{sfx}_{C}_{T}_{name}'] = v\n"
        "np.savez(sys.argv[1], **out)\n"
        "print(ops.kernel_isa())\n")
    keys = [f"{k}_{sfx}_{C}_{T}_{name}" for k in ("gx", "gb", "ga", "gzi") for sfx in ("f32", "f64")
            for C in (3, 8, 16, 21) for T in (1, 2, 130, 300) for name in ("ck", "own")]
    assert_same_on_every_isa(code, tmp_path, keys)


# ---------------------------------------------- streaming stores, output cache ---

def _misaligned(shape, dtype):
    """A C-contiguous array whose data starts 4 bytes past a 64-byte boundary."""
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.empty(n + 128, dtype=np.uint8)
    off = (-raw.ctypes.data) % 64 + 4
    return raw[off:off + n].view(dtype).reshape(shape)


@pytest.mark.parametrize("dtype,C", [(np.float32, 16), (np.float32, 5), (np.float32, 3), (np.float64, 16)])
def test_streaming_stores_bitwise_equal(dtype, C):
    """Outputs >= 8 MiB written with streaming stores (aligned rows) equal the
    ordinary stores (misaligned out=, small chunks) bitwise, for any thread count."""
    rng = np.random.default_rng(21)
    b, a = random_bank(rng, C)
    T = 64000
    B = max(2, (9 << 20) // (C * T * np.dtype(dtype).itemsize) + 1)
    x = rng.standard_normal((B, T)).astype(dtype)
    ref = np.concatenate([ops.biquad_filterbank(x[i:i + 1], b, a) for i in range(B)])  # < 8 MiB each
    for nt in (1, 2, 3):
        y = ops.biquad_filterbank(x, b, a, num_threads=nt)
        assert y.ctypes.data % 64 == 0  # a cached buffer: the streamed path
        np.testing.assert_array_equal(y, ref)
        m = ops.biquad_filterbank(x, b, a, num_threads=nt, out=_misaligned((B, C, T), dtype))
        np.testing.assert_array_equal(m, ref)
        del y


@pytest.fixture
def cache_limit():
    """Run with the output cache enabled (1 GiB) and restore the previous limit."""
    prev = ops.set_output_cache_limit(1 << 30)
    ops.empty_output_cache()
    yield
    ops.set_output_cache_limit(prev)
    ops.empty_output_cache()


def _big_inputs(seed=3, B=4, T=20000, C=16):
    rng = np.random.default_rng(seed)
    b, a = random_bank(rng, C)
    return rng.standard_normal((B, T)).astype(np.float32), b, a  # output 5 MB (cached size)


def test_output_cache_reuses_only_dropped_buffers(cache_limit):
    x, b, a = _big_inputs()
    y1 = ops.biquad_filterbank(x, b, a)
    ref = y1.copy()
    y2 = ops.biquad_filterbank(x, b, a)
    assert not np.shares_memory(y1, y2)
    view = y1[1:3, ::2]  # a view keeps the buffer referenced
    p1 = y1.ctypes.data
    del y1
    y3 = ops.biquad_filterbank(2 * x, b, a)
    assert not np.shares_memory(view, y3) and not np.shares_memory(y2, y3)
    np.testing.assert_array_equal(view, ref[1:3, ::2])
    del view
    y4 = ops.biquad_filterbank(3 * x, b, a)
    assert y4.ctypes.data == p1  # dropped: handed out again
    np.testing.assert_array_equal(y2, ref)
    np.testing.assert_array_equal(y4, ops.biquad_filterbank(3 * x, b, a, out=np.empty_like(ref)))


def test_output_cache_torch_tensors_and_autograd(cache_limit):
    x, b, a = _big_inputs(4)
    xt, bt, at = (torch.tensor(v) for v in (x, b, a))
    t1 = ops.biquad_filterbank(xt, bt, at)
    ref = t1.clone()
    alias = t1.view(-1)[5:]  # a torch view keeps the buffer referenced
    p1 = t1.data_ptr()
    del t1
    t2 = ops.biquad_filterbank(-xt, bt, at)
    assert t2.data_ptr() != p1 and torch.equal(alias, ref.view(-1)[5:])
    del alias
    t3 = ops.biquad_filterbank(xt, bt, at)
    assert t3.data_ptr() == p1 and torch.equal(t3, ref)
    # gradients through cached outputs equal those with the cache disabled
    w = torch.tensor(np.random.default_rng(5).standard_normal(ref.shape), dtype=torch.float32)
    grads = []
    for limit in (1 << 30, 0):
        ops.set_output_cache_limit(limit)
        xg, bg, ag = (v.clone().requires_grad_(True) for v in (xt, bt, at))
        y = ops.biquad_filterbank(xg, bg, ag)
        (y * w).sum().backward()
        grads.append([y.detach().clone(), xg.grad, bg.grad, ag.grad])
    for g0, g1 in zip(*grads):
        assert torch.equal(g0, g1)


def test_output_cache_bounded_disabled_and_emptied(cache_limit):
    x, b, a = _big_inputs(6)  # 5.12 MB -> a 6 MiB bucket
    ops.set_output_cache_limit(13 << 20)
    ys = [ops.biquad_filterbank(x, b, a) for _ in range(3)]  # the third does not fit: uncached
    assert output_cache.held_bytes() == 12 << 20
    assert ys[2].base is None or ys[2].base.nbytes < (6 << 20)
    for y in ys[1:]:
        np.testing.assert_array_equal(y, ys[0])
    del ys
    ops.empty_output_cache()
    assert output_cache.held_bytes() == 0
    ops.set_output_cache_limit(0)
    y = ops.biquad_filterbank(x, b, a)
    assert output_cache.held_bytes() == 0 and y.base is None
    small = ops.biquad_filterbank(x[:, :100], b, a)  # below 1 MiB: never cached
    ops.set_output_cache_limit(1 << 30)
    small = ops.biquad_filterbank(x[:, :100], b, a)
    assert output_cache.held_bytes() == 0 and small.base is None
    with pytest.raises(ValueError, match="non-negative"):
        ops.set_output_cache_limit(-1)
    code = ("import os; os.environ['LEARNAFE_OUTPUT_CACHE_MB'] = '0'\n"
            "from learnafe.ops.buffers import output_cache\nassert output_cache.limit == 0\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_output_cache_thread_safe(cache_limit):
    import threading

    x, b, a = _big_inputs(7, B=2)
    ref = ops.biquad_filterbank(x, b, a).copy()
    errors = []

    def work(k):
        try:
            held = []
            for _ in range(12):
                y = ops.biquad_filterbank(x * (k + 1), b, a, num_threads=1)
                for h in held:
                    assert not np.shares_memory(h, y)
                np.testing.assert_allclose(y, ref * (k + 1), rtol=1e-5, atol=1e-5 * (k + 1))
                held = held[-1:] + [y]
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
