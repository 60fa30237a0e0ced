"""The torch custom operators (learnafe.ops.operators) under torch.library.opcheck,
torch.compile(fullgraph=True) and torch.export, against eager mode and the
independent references of tests/test_ops.py (scipy lfilter in float64)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import scipy.signal as ss
import torch

import learnafe.ops.operators as torch_ops
from learnafe import ops
from learnafe.frontends import AnalogFilterBank
from learnafe.models import DSCNN

# aot_eager traces exactly what inductor traces (Dynamo, fake tensors, AOT
# autograd, functionalisation) without compiling C++; the inductor run is slow.
BACKEND = "aot_eager"


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def stable_bank(seed: int, C: int, radius=(0.3, 0.95)):
    rng = np.random.default_rng(seed)
    r = rng.uniform(*radius, size=C)
    th = rng.uniform(0.05, np.pi - 0.05, size=C)
    a = np.stack([-2 * r * np.cos(th), r * r], axis=1)
    b = rng.standard_normal((C, 3))
    return torch.tensor(b), torch.tensor(a)


# ------------------------------------------------------------ opcheck ---

def _opcheck(op, args):
    result = torch.library.opcheck(op, args)
    assert set(result) == {"test_schema", "test_autograd_registration", "test_faketensor",
                           "test_aot_dispatch_dynamic"}
    assert all(v == "SUCCESS" for v in result.values()), result


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_opcheck_every_registered_op(dtype):
    b, a = stable_bank(0, 5)
    b.requires_grad_(True)
    a.requires_grad_(True)
    x = torch.randn(3, 40, dtype=dtype, requires_grad=True)
    zi = torch.randn(3, 5, 2, dtype=dtype, requires_grad=True)
    checked = set()
    _opcheck(torch.ops.learnafe.biquad_filterbank.default, (x, b, a, zi, 0))
    _opcheck(torch.ops.learnafe.biquad_filterbank.default, (x, b, a, None, 2))
    _opcheck(torch.ops.learnafe.biquad_filterbank.default, (x, b, a, zi, 0, True))
    checked.add("biquad_filterbank")
    gy, gz = torch.randn(3, 5, 40, dtype=dtype), torch.randn(3, 5, 2, dtype=dtype)
    _opcheck(torch.ops.learnafe.biquad_filterbank_backward.default,
             (x.detach(), b.detach(), a.detach(), zi.detach(), gy, gz, 0))
    _, _, ck = torch.ops.learnafe.biquad_filterbank(x.detach(), b.detach(), a.detach(), zi.detach(), 0, True)
    assert ck.dtype == torch.float64 and ck.numel() > 0
    _opcheck(torch.ops.learnafe.biquad_filterbank_backward.default,
             (x.detach(), b.detach(), a.detach(), zi.detach(), gy, gz, 1, ck))
    checked.add("biquad_filterbank_backward")
    std = torch.tensor([0.0, 0.1, 0.2, 0.05, 0.3], dtype=dtype, requires_grad=True)
    env = torch.ops.learnafe.filterbank_envelope.default
    env_bwd = torch.ops.learnafe.filterbank_envelope_backward.default
    for rectify, noise, seed, save in (("abs", None, None, False), ("abs", None, 5, True),
                                       ("abs", std, 2 ** 40 + 3, True), ("square", std, -7, False),
                                       ("square", None, None, True)):
        _opcheck(env, (x, b, a, noise, seed, 7, 0.2, rectify, save, 0))
    for rectify in ("abs", "square"):
        _, ck, seed_used = env(x.detach(), b.detach(), a.detach(), std.detach(), 11, 7, 0.2, rectify, True, 0)
        assert ck.shape[0] == 3 and ck.shape[1] > 0 and int(seed_used) == 11
        g = torch.randn(3, 5, 5, dtype=dtype)
        _opcheck(env_bwd, (x.detach(), b.detach(), a.detach(), std.detach(), seed_used, ck, 7, 0.2, rectify,
                           g, 1))
        _opcheck(env_bwd, (x.detach(), b.detach(), a.detach(), None, seed_used,
                           torch.empty(3, 0, dtype=torch.float64), 7, 0.2, rectify, g, 0))
    checked |= {"filterbank_envelope", "filterbank_envelope_backward"}
    # the section operator of learnafe.sosfilt: a shared input (Cu = 1) and an input per channel
    for u_shape in ((3, 1, 40), (3, 5, 40)):
        u = torch.randn(u_shape, dtype=dtype, requires_grad=True)
        _opcheck(torch.ops.learnafe.sosfilt_section.default, (u, b[None], a[None], 0))
    checked.add("sosfilt_section")
    assert checked == set(torch_ops.OPS)


def test_operator_matches_scipy_and_public_function():
    """The operator itself (not only through ops.*) against scipy lfilter in float64."""
    b, a = stable_bank(1, 4)
    x = torch.randn(2, 300, dtype=torch.float64)
    y, zf, ck = torch.ops.learnafe.biquad_filterbank(x, b, a, None, 0)
    assert ck.numel() == 0  # checkpoints only when asked for
    ref = np.stack([np.stack([ss.lfilter(b[c].numpy(), np.r_[1.0, a[c].numpy()], xi) for c in range(4)])
                    for xi in x.numpy()])
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-10, atol=1e-10)
    y2, zf2 = ops.biquad_filterbank(x, b, a, return_state=True)
    assert torch.equal(y, y2) and torch.equal(zf, zf2)


def test_backward_operator_equals_autograd_and_zero_state_gradient():
    """grad_zi with zi=None is the gradient at a zero initial state (checked against zi=0)."""
    b, a = stable_bank(2, 3)
    x = torch.randn(2, 64, dtype=torch.float64)
    gy = torch.randn(2, 3, 64, dtype=torch.float64)
    gz = torch.randn(2, 3, 2, dtype=torch.float64)
    gx, gb, ga, gzi = torch.ops.learnafe.biquad_filterbank_backward(x, b, a, None, gy, gz, 0)
    # from the forward's checkpoints: bitwise the same gradients
    ck = torch.ops.learnafe.biquad_filterbank(x, b, a, None, 0, True)[2]
    for got, want in zip(torch.ops.learnafe.biquad_filterbank_backward(x, b, a, None, gy, gz, 0, ck),
                         (gx, gb, ga, gzi)):
        assert torch.equal(got, want)
    xr, br, ar = (t.clone().requires_grad_(True) for t in (x, b, a))
    zi = torch.zeros(2, 3, 2, dtype=torch.float64, requires_grad=True)
    y, zf = ops.biquad_filterbank(xr, br, ar, zi=zi, return_state=True)
    torch.autograd.backward((y, zf), (gy, gz))
    for got, want in ((gx, xr.grad), (gb, br.grad), (ga, ar.grad), (gzi, zi.grad)):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_gradcheck_through_the_operators():
    b, a = stable_bank(3, 3, radius=(0.3, 0.8))
    b.requires_grad_(True)
    a.requires_grad_(True)
    x = torch.randn(2, 16, dtype=torch.float64, requires_grad=True)
    zi = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)
    for save in (False, True):
        assert torch.autograd.gradcheck(
            lambda *t: torch.ops.learnafe.biquad_filterbank(*t, 0, save)[:2], (x, b, a, zi))
    std = torch.tensor([0.1, 0.05, 0.3], dtype=torch.float64, requires_grad=True)
    for save in (False, True):
        assert torch.autograd.gradcheck(
            lambda x, b, a, std: torch.ops.learnafe.filterbank_envelope(x, b, a, std, 1234, 4, 0.3, "square",
                                                                        save, 0)[0], (x, b, a, std))


def test_backward_is_not_differentiable_again():
    b, a = stable_bank(4, 2)
    x = torch.randn(1, 20, dtype=torch.float64, requires_grad=True)
    env = ops.filterbank_envelope(x, b, a, hop=5, tau=1e-3, sample_rate=8000.0)
    (g,) = torch.autograd.grad(env.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="autograd"):
        g.sum().backward()


# ---------------------------------------------------- compile vs eager ---

def _frontend(learnable: bool) -> AnalogFilterBank:
    fe = AnalogFilterBank.conventional(8, f_hi=4000.0, sample_rate=10000.0, features={"hop": 100})
    if learnable:
        with torch.no_grad():  # move away from the reference so the gradients are generic
            g = torch.Generator().manual_seed(5)
            for p in (fe.phi_I1, fe.phi_I2, fe.phi_C1, fe.phi_C2):
                p.add_(0.05 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    else:
        fe.requires_grad_(False)
    return fe


def _model(learnable: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(_frontend(learnable), DSCNN(8, 5, width=8, depth=1, dropout=0.0))


def _step(model, audio, labels, call=None):
    logits = (call or model)(audio)
    loss = torch.nn.functional.cross_entropy(logits, labels)
    model.zero_grad(set_to_none=True)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return logits.detach(), grads


@pytest.mark.parametrize("learnable", [False, True], ids=["conventional", "learnable"])
def test_compile_fullgraph_equals_eager_values_and_gradients(learnable):
    model = _model(learnable).train()
    audio = 0.1 * torch.randn(3, 2000, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 3, 4])
    eager_logits, eager_grads = _step(model, audio, labels)
    # BatchNorm running statistics moved in the eager step: compare from the same state.
    model2 = _model(learnable).train()
    compiled = torch.compile(model2, fullgraph=True, backend=BACKEND)
    logits, grads = _step(model2, audio, labels, compiled)
    torch.testing.assert_close(logits, eager_logits, rtol=1e-5, atol=1e-6)
    assert set(grads) == set(eager_grads)
    if learnable:
        assert {f"0.phi_{k}" for k in ("I1", "I2", "C1", "C2")} <= set(grads)
        assert all(float(grads[f"0.phi_{k}"].abs().max()) > 0 for k in ("I1", "I2", "C1", "C2"))
    else:
        assert not any(n.startswith("0.") for n in grads)
    for n in grads:
        torch.testing.assert_close(grads[n], eager_grads[n], rtol=1e-5, atol=1e-8, msg=n)
    # one graph, no break
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(_model(learnable))(audio)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1


def test_compiled_op_float64_gradients_match_eager_bitwise():
    """The operators themselves are opaque to the compiler: same kernel, same bits."""
    b, a = stable_bank(6, 4)

    def f(x, b, a):
        env = ops.filterbank_envelope(x, b, a, hop=10, tau=2e-3, sample_rate=8000.0, rectify="abs")
        y = ops.biquad_filterbank(x, b, a)
        return env.log1p().sum() + (y * y).mean()

    args = [torch.randn(2, 100, dtype=torch.float64), b, a]
    eager = [t.clone().requires_grad_(True) for t in args]
    comp = [t.clone().requires_grad_(True) for t in args]
    f(*eager).backward()
    torch.compile(f, fullgraph=True, backend=BACKEND)(*comp).backward()
    for e, c in zip(eager, comp):
        torch.testing.assert_close(c.grad, e.grad, rtol=1e-13, atol=1e-15)


@pytest.mark.slow
def test_compile_inductor_fullgraph_equals_eager():
    model = _model(True).train()
    audio = 0.1 * torch.randn(2, 2000, generator=torch.Generator().manual_seed(2))
    labels = torch.tensor([1, 2])
    eager_logits, eager_grads = _step(model, audio, labels)
    model2 = _model(True).train()
    logits, grads = _step(model2, audio, labels, torch.compile(model2, fullgraph=True))
    torch.testing.assert_close(logits, eager_logits, rtol=1e-4, atol=1e-5)
    for n in eager_grads:
        torch.testing.assert_close(grads[n], eager_grads[n], rtol=1e-4, atol=1e-6, msg=n)


# --------------------------------------------------------------- export ---

def test_export_frontend_with_dynamic_batch_runs_on_other_batch_sizes():
    fe = _frontend(learnable=True).eval()
    audio = 0.1 * torch.randn(3, 1000)
    ep = torch.export.export(fe, (audio,), dynamic_shapes={"audio": {0: torch.export.Dim("batch")}})
    targets = {n.target for n in ep.graph.nodes if n.op == "call_function"}
    assert torch.ops.learnafe.filterbank_envelope.default in targets
    for B in (1, 5):
        x = 0.1 * torch.randn(B, 1000)
        out = ep.module()(x)
        assert out.shape == (B, 8, 10)
        torch.testing.assert_close(out, fe(x), rtol=0, atol=0)
    with pytest.raises(AssertionError, match="Guard failed"):  # the time axis stayed static
        ep.module()(0.1 * torch.randn(2, 800))
    # saved and loaded (the operator is found by name in the registry)
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    buf.seek(0)
    x = 0.1 * torch.randn(4, 1000)
    torch.testing.assert_close(torch.export.load(buf).module()(x), fe(x), rtol=0, atol=0)


# ------------------------------------------------ checks under compile ---

def test_nonfinite_audio_raises_in_eager_and_compiled():
    fe = _frontend(learnable=False).eval()
    audio = 0.1 * torch.randn(2, 1000)
    audio[1, 17] = float("nan")
    with pytest.raises(ValueError, match="audio contains NaN or inf samples"):
        fe(audio)
    compiled = torch.compile(fe, fullgraph=True, backend=BACKEND)
    # under compile the operator's own check fires (it runs on the data inside the graph)
    with pytest.raises(ValueError, match=r"x contains non-finite values \(first at index \(1, 17\)\)"):
        compiled(audio)
    good = 0.1 * torch.randn(2, 1000)
    torch.testing.assert_close(compiled(good), fe(good), rtol=0, atol=0)


class _RawBank(torch.nn.Module):
    """Learnable raw biquad coefficients (nothing keeps them stable)."""

    def __init__(self):
        super().__init__()
        b, a = stable_bank(7, 4)
        self.b = torch.nn.Parameter(b)
        self.a = torch.nn.Parameter(a)

    def forward(self, x):
        return ops.filterbank_envelope(x, self.b, self.a, hop=50, tau=5e-3, sample_rate=8000.0)


def test_unstable_and_nonfinite_coefficients_raise_same_message_eager_and_compiled():
    m = _RawBank()
    compiled = torch.compile(m, fullgraph=True, backend=BACKEND)
    x = torch.randn(2, 400, dtype=torch.float64)
    torch.testing.assert_close(compiled(x), m(x), rtol=0, atol=0)
    with torch.no_grad():
        m.a[3] = torch.tensor([0.5, 1.0])  # |a2| = 1: poles on the unit circle
    for fn in (m, compiled):
        with pytest.raises(ValueError, match=r"a: channel 3 is unstable: the poles of z\^2 \+ a1 z \+ a2"):
            fn(x)
    with torch.no_grad():
        m.a[3] = torch.tensor([0.5, 0.25])
        m.b[1, 2] = float("inf")
    for fn in (m, compiled):
        with pytest.raises(ValueError, match=r"b contains non-finite values \(first at index \(1, 2\)\)"):
            fn(x)


def test_static_validation_still_raises_before_the_operator_under_compile():
    b, a = stable_bank(8, 3)

    def f(x):
        return ops.filterbank_envelope(x, b, a, hop=1000, tau=1e-3, sample_rate=8000.0)

    with pytest.raises(ValueError, match=r"hop must be an integer number of samples in \[1, T=100\]"):
        f(torch.randn(2, 100, dtype=torch.float64))
    # fullgraph: raised while tracing, reported by Dynamo with the message inside
    with pytest.raises(torch._dynamo.exc.Unsupported,
                       match=r"ValueError\('hop must be an integer number of samples in \[1, T=100\]"):
        torch.compile(f, fullgraph=True, backend=BACKEND)(torch.randn(2, 100, dtype=torch.float64))
    # default compile: Dynamo falls back to running the function, which raises the ValueError
    torch._dynamo.reset()
    with pytest.raises(ValueError, match=r"hop must be an integer number of samples in \[1, T=100\]"):
        torch.compile(f, backend=BACKEND)(torch.randn(2, 100, dtype=torch.float64))


def test_direct_operator_calls_validate_shapes():
    b, a = stable_bank(9, 3)
    x = torch.randn(2, 50, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"b must be \[C, 3\]"):
        torch.ops.learnafe.biquad_filterbank(x, b[:, :2], a, None, 0)
    with pytest.raises(ValueError, match=r"zi must have shape \(2, 3, 2\)"):
        torch.ops.learnafe.biquad_filterbank(x, b, a, torch.zeros(2, 3, 3, dtype=torch.float64), 0)
    with pytest.raises(ValueError, match="rectify must be one of"):
        torch.ops.learnafe.filterbank_envelope(x, b, a, None, None, 5, 0.1, "cube", False, 0)
    with pytest.raises(ValueError, match="num_threads"):
        torch.ops.learnafe.filterbank_envelope(x, b, a, None, None, 5, 0.1, "abs", False, -1)
    with pytest.raises(ValueError, match=r"noise_std must have shape \(3,\)"):
        torch.ops.learnafe.filterbank_envelope(x, b, a, torch.ones(2, dtype=torch.float64), 1, 5, 0.1,
                                               "abs", False, 0)


def test_compiled_graph_follows_set_num_threads():
    """num_threads is resolved at call time, not baked into the graph (results are bitwise
    thread-count independent, so the check is on which count reaches the kernel)."""
    b, a = stable_bank(10, 3)
    seen = []
    orig = torch_ops.get_num_threads

    def spy():
        n = orig()
        seen.append(n)
        return n

    f = torch.compile(lambda x: ops.filterbank_envelope(x, b, a, hop=10, tau=1e-3, sample_rate=8000.0),
                      fullgraph=True, backend=BACKEND)
    x = torch.randn(2, 100, dtype=torch.float64)
    f(x)
    try:
        torch_ops.get_num_threads = spy
        ops.set_num_threads(3)
        f(x)
        ops.set_num_threads(1)
        f(x)
    finally:
        torch_ops.get_num_threads = orig
        ops.set_num_threads(None)
    assert seen == [3, 1]


# ------------------------------------------------ XyloAudio 3 operator ---

def _xylo_input(B=2, T=600, amp=3000, seed=11):
    rng = np.random.default_rng(seed)
    return rng.integers(-amp, amp, size=(B, T), dtype=np.int64)


def test_xylo_operator_opcheck_and_bit_exact_with_numpy_path():
    import learnafe.xylo.torch_ops as xylo_ops
    from learnafe.xylo import XyloA3FilterBank

    bank = XyloA3FilterBank.default()
    x = _xylo_input()
    table = torch.tensor(bank.table(), dtype=torch.int64)
    for name in xylo_ops.OPS:
        _opcheck(getattr(torch.ops.learnafe, name).default, (torch.from_numpy(x), table, True, True, 0))
    for prepend in (False, True):
        ref = bank.filter(x, prepend_reversed=prepend)
        got = bank.filter(torch.from_numpy(x), prepend_reversed=prepend)
        assert isinstance(got, torch.Tensor) and got.dtype == torch.int64
        np.testing.assert_array_equal(got.numpy(), ref)
    ref = bank.filter(x[0], scale_out=True)
    got = bank.filter(torch.from_numpy(x[0]).to(torch.int32), scale_out=True)
    np.testing.assert_array_equal(got.numpy(), ref)


def test_xylo_operator_compiles_and_raises_overflow_with_the_numpy_message():
    from learnafe.xylo import XyloA3FilterBank, XyloOverflowError

    bank = XyloA3FilterBank.default().select(range(4))
    f = torch.compile(lambda x: bank.filter(x, prepend_reversed=True), fullgraph=True, backend=BACKEND)
    x = _xylo_input(T=300)
    np.testing.assert_array_equal(f(torch.from_numpy(x)).numpy(), bank.filter(x, prepend_reversed=True))
    bad = x.copy()
    bad[1, 50] = 9000  # beyond 14 bits: input overflow
    with pytest.raises(XyloOverflowError) as eager:
        bank.filter(bad, prepend_reversed=True)
    with pytest.raises(XyloOverflowError) as compiled:
        f(torch.from_numpy(bad))
    assert "input overflow in signal 1" in str(eager.value)
    assert str(compiled.value) == str(eager.value)
    y, kind, where = bank.filter(torch.from_numpy(bad), overflow="report", return_overflow=True)
    assert int(kind[1].max()) == 1 and int(kind[0].max()) == 0
    with pytest.raises(ValueError, match="quantise float audio first"):
        bank.filter(torch.zeros(2, 10))


def test_digital_frontend_compiles_and_equals_eager():
    from learnafe.frontends import DigitalFilterBank

    fe = DigitalFilterBank.from_center_q([200.0, 800.0, 2400.0], 4.0, sample_rate=8000.0,
                                         features={"hop": 80})
    audio = 0.1 * torch.randn(2, 800, generator=torch.Generator().manual_seed(3))
    compiled = torch.compile(fe, fullgraph=True, backend=BACKEND)
    torch.testing.assert_close(compiled(audio), fe(audio), rtol=0, atol=0)


def test_noise_seed_drawn_inside_the_operator_compiled_equals_eager_bitwise():
    """seed=None: the operator draws the seed from torch's generator when it runs, so with the
    same torch.manual_seed the compiled graph adds exactly the eager noise (values and all
    gradients, noise_std's included), and the backward regenerates the forward's noise."""
    b, a = stable_bank(12, 4)

    def f(x, b, a, std):
        return ops.filterbank_envelope(x, b, a, hop=20, tau=2e-3, sample_rate=8000.0, noise_std=std)

    args = [torch.randn(2, 200, dtype=torch.float64), b, a,
            torch.tensor([0.05, 0.0, 0.2, 0.1], dtype=torch.float64)]
    results = []
    for fn in (f, torch.compile(f, fullgraph=True, backend=BACKEND)):
        leaves = [t.clone().requires_grad_(True) for t in args]
        torch.manual_seed(123)
        out = fn(*leaves)
        out.square().sum().backward()
        results.append((out.detach(), [t.grad for t in leaves], torch.rand(1)))
    (e_out, e_grads, e_next), (c_out, c_grads, c_next) = results
    assert torch.equal(c_out, e_out)
    for ge, gc in zip(e_grads, c_grads):
        assert torch.equal(gc, ge)
    assert torch.equal(c_next, e_next)  # the generator advanced alike
    # against the explicit seed (the same draw) and different draws differ
    torch.manual_seed(123)
    s = torch_ops.torch_seed()
    explicit = ops.filterbank_envelope(args[0], b, a, hop=20, tau=2e-3, sample_rate=8000.0,
                                       noise_std=args[3], seed=s)
    assert torch.equal(explicit, e_out)
    assert not torch.equal(f(*args), e_out)


def test_noise_std_data_checks_inside_the_operator():
    b, a = stable_bank(13, 3)
    x = torch.randn(2, 100, dtype=torch.float64)
    bad = torch.tensor([0.1, -0.2, 0.0], dtype=torch.float64)

    def f(x, std):
        return ops.filterbank_envelope(x, b, a, hop=10, tau=2e-3, sample_rate=8000.0, noise_std=std, seed=1)

    for fn in (f, torch.compile(f, fullgraph=True, backend=BACKEND)):
        with pytest.raises(ValueError, match=r"noise_std\[1\] = -0.2 is negative"):
            fn(x, bad)


def test_frontend_with_kTC_noise_compiles_and_equals_eager():
    """Noise on (drawn inside the operator): one graph; with the same torch.manual_seed the
    compiled front end gives the eager features and phi gradients."""
    def make():
        return AnalogFilterBank.conventional(8, f_hi=4000.0, sample_rate=10000.0, features={"hop": 100},
                                             noise={"mode": "always", "full_scale_v": 0.01})

    audio = 0.1 * torch.randn(2, 1000, generator=torch.Generator().manual_seed(4))
    runs = []
    for compiled in (False, True):
        fe = make()
        fn = torch.compile(fe, fullgraph=True, backend=BACKEND) if compiled else fe
        torch.manual_seed(7)
        out = fn(audio)
        out.square().mean().backward()
        runs.append((out.detach(), [p.grad.clone() for p in fe.parameters()]))
    (e_out, e_grads), (c_out, c_grads) = runs
    torch.testing.assert_close(c_out, e_out, rtol=1e-6, atol=1e-6)
    for ge, gc in zip(e_grads, c_grads):
        torch.testing.assert_close(gc, ge, rtol=1e-6, atol=1e-12)
    torch.manual_seed(8)  # another draw: other features (the noise is really there)
    assert (make()(audio) - e_out).abs().max() > 1e-3
