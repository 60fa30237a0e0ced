"""Per-example coefficients of the filter-bank and envelope ops (b [B, C, 3], a [B, C, 2]):
scipy per example, per-example gradients (finite differences in float64), bitwise equality
with the shared bank when every example has the shared coefficients, thread counts and ISA
paths, opcheck and torch.compile."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as ss
import torch

from isa_helpers import assert_same_on_every_isa_and_thread_count
from learnafe import ops


def random_banks(rng, B, C, radius=(0.3, 0.995)):
    """B random stable banks of C sections: b [B, C, 3], a [B, C, 2]."""
    r = rng.uniform(*radius, size=(B, C))
    th = rng.uniform(0.01, np.pi - 0.01, size=(B, C))
    a = np.stack([-2 * r * np.cos(th), r * r], axis=-1)
    b = rng.standard_normal((B, C, 3))
    return b, a


def scipy_per_example(x, b, a):
    """[B, T] with b [B, C, 3], a [B, C, 2] -> [B, C, T], scipy.signal.lfilter of each example's bank."""
    return np.stack([np.stack([ss.lfilter(b[i, c], np.r_[1.0, a[i, c]], x[i]) for c in range(b.shape[1])])
                     for i in range(x.shape[0])])


def batch_sum(g):
    """Sum over the batch in batch order (the order of the kernels' reduction)."""
    s = np.zeros_like(g[0])
    for gi in g:
        s = s + gi
    return s


@pytest.mark.parametrize("B,C,T", [(1, 1, 50), (3, 5, 257), (2, 17, 300), (4, 16, 130)])
def test_forward_matches_scipy_per_example(B, C, T):
    rng = np.random.default_rng(B * 100 + C + T)
    b, a = random_banks(rng, B, C)
    x = rng.standard_normal((B, T))
    zi = rng.standard_normal((B, C, 2))
    y, zf = ops.biquad_filterbank(x, b, a, zi=zi, return_state=True)
    assert y.shape == (B, C, T)
    np.testing.assert_allclose(ops.biquad_filterbank(x, b, a), scipy_per_example(x, b, a), rtol=1e-10, atol=1e-10)
    for i in range(B):  # example i is the shared-bank op on x[i] with bank i
        yi, zfi = ops.biquad_filterbank(x[i:i + 1], b[i], a[i], zi=zi[i:i + 1], return_state=True)
        np.testing.assert_array_equal(y[i:i + 1], yi)
        np.testing.assert_array_equal(zf[i:i + 1], zfi)


@pytest.mark.parametrize("rectify", ["abs", "square"])
@pytest.mark.parametrize("B,C,T,hop", [(2, 5, 1000, 100), (3, 17, 333, 50)])
def test_envelope_matches_scipy_per_example(rectify, B, C, T, hop):
    rng = np.random.default_rng(T + C)
    b, a = random_banks(rng, B, C)
    x = rng.standard_normal((B, T))
    out = ops.filterbank_envelope(x, b, a, hop=hop, tau=0.004, sample_rate=8000.0, rectify=rectify)
    y = scipy_per_example(x, b, a)
    r = np.abs(y) if rectify == "abs" else y * y
    alpha = 1 - np.exp(-1 / (0.004 * 8000.0))
    e = ss.lfilter([alpha], [1, -(1 - alpha)], r, axis=-1)
    np.testing.assert_allclose(out, e[..., hop - 1: (T // hop) * hop: hop], rtol=1e-10, atol=1e-12)


def _tiled(b, a, B):
    return np.ascontiguousarray(np.broadcast_to(b, (B,) + b.shape)), \
        np.ascontiguousarray(np.broadcast_to(a, (B,) + a.shape))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("C", [3, 17])
def test_per_example_equal_to_shared_is_bitwise_the_shared_result(dtype, C):
    """Forward, state and gradients (per-example gradients summed in batch order) of a per-example
    bank that repeats the shared one equal the shared results bit for bit, for the plain bank and
    the envelope with and without noise, with and without checkpoints."""
    rng = np.random.default_rng(C)
    B, T = 3, 301
    b1, a1 = random_banks(rng, 1, C, radius=(0.3, 0.97))
    b, a = b1[0], a1[0]
    bB, aB = _tiled(b, a, B)
    x = torch.tensor(rng.standard_normal((B, T)), dtype=dtype)
    zi = torch.tensor(rng.standard_normal((B, C, 2)), dtype=dtype)
    std = torch.tensor(rng.uniform(0, 0.3, C), dtype=dtype)
    w = torch.tensor(rng.standard_normal((B, C, T)), dtype=dtype)

    def run(fn, bb, aa, grad):
        xt = x.clone().requires_grad_(grad)
        bt = torch.tensor(bb, requires_grad=grad)
        at = torch.tensor(aa, requires_grad=grad)
        out = fn(xt, bt, at)
        if not grad:
            return [out.detach().numpy()]
        (out * w[..., :out.shape[-1]]).sum().backward()
        return [out.detach().numpy(), xt.grad.numpy(), bt.grad.numpy(), at.grad.numpy()]

    fns = [lambda xt, bt, at: ops.biquad_filterbank(xt, bt, at, zi=zi),
           lambda xt, bt, at: ops.filterbank_envelope(xt, bt, at, hop=20, tau=0.002, sample_rate=8000.0),
           lambda xt, bt, at: ops.filterbank_envelope(xt, bt, at, hop=7, tau=0.002, sample_rate=8000.0,
                                                      rectify="square", noise_std=std, seed=12345)]
    for fn in fns:
        for grad in (False, True):  # without / with the forward's checkpoints
            shared = run(fn, b, a, grad)
            per = run(fn, bB, aB, grad)
            for k, (s, p) in enumerate(zip(shared, per)):
                if k >= 2:  # coefficient gradients: per example [B, C, n], shared ones summed
                    assert p.shape == (B,) + s.shape
                    p = batch_sum(p)
                np.testing.assert_array_equal(p, s)


def test_per_example_gradients_are_each_examples_own():
    """The gradient of example i's coefficients is the shared-bank gradient of example i alone."""
    rng = np.random.default_rng(4)
    B, C, T = 3, 6, 120
    b, a = random_banks(rng, B, C, radius=(0.3, 0.95))
    x = rng.standard_normal((B, T))
    w = rng.standard_normal((B, C, T // 10))
    bt, at = torch.tensor(b, requires_grad=True), torch.tensor(a, requires_grad=True)
    out = ops.filterbank_envelope(torch.tensor(x), bt, at, hop=10, tau=0.001, sample_rate=8000.0)
    (out * torch.tensor(w)).sum().backward()
    for i in range(B):
        bi, ai = torch.tensor(b[i], requires_grad=True), torch.tensor(a[i], requires_grad=True)
        oi = ops.filterbank_envelope(torch.tensor(x[i:i + 1]), bi, ai, hop=10, tau=0.001, sample_rate=8000.0)
        (oi * torch.tensor(w[i:i + 1])).sum().backward()
        np.testing.assert_array_equal(bt.grad[i].numpy(), bi.grad.numpy())
        np.testing.assert_array_equal(at.grad[i].numpy(), ai.grad.numpy())


@pytest.mark.parametrize("C,fast", [(3, False), (17, True)])
def test_gradcheck_per_example_filterbank(C, fast):
    rng = np.random.default_rng(C + 50)
    b, a = random_banks(rng, 2, C, radius=(0.3, 0.9))
    x = torch.tensor(rng.standard_normal((2, 23)), requires_grad=True)
    bt, at = torch.tensor(b, requires_grad=True), torch.tensor(a, requires_grad=True)
    zi = torch.tensor(rng.standard_normal((2, C, 2)), requires_grad=True)
    f = lambda x, bt, at, zi: ops.biquad_filterbank(x, bt, at, zi=zi, return_state=True)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x, bt, at, zi), eps=1e-6, atol=1e-7, rtol=1e-6, fast_mode=fast)


@pytest.mark.parametrize("noise", [False, True])
def test_gradcheck_per_example_envelope(noise):
    rng = np.random.default_rng(9)
    b, a = random_banks(rng, 2, 3, radius=(0.3, 0.9))
    x = torch.tensor(rng.standard_normal((2, 37)), requires_grad=True)
    bt, at = torch.tensor(b, requires_grad=True), torch.tensor(a, requires_grad=True)
    std = torch.tensor([0.1, 0.0, 0.2], dtype=torch.float64, requires_grad=True)
    kw = dict(noise_std=std, seed=3) if noise else {}
    f = lambda x, bt, at: ops.filterbank_envelope(x, bt, at, hop=5, tau=0.001,  # noqa: E731
                                                  sample_rate=4000.0, **kw)
    assert torch.autograd.gradcheck(f, (x, bt, at), eps=1e-6, atol=1e-7, rtol=1e-6)


def test_per_example_bitwise_for_any_thread_count_and_isa(tmp_path):
    code = """
import numpy as np
import torch
from learnafe import ops
rng = np.random.default_rng(2)
B, C, T = 5, 19, 700
r = rng.uniform(0.3, 0.99, (B, C)); th = rng.uniform(0.01, 3.1, (B, C))
a = np.stack([-2 * r * np.cos(th), r * r], -1); b = rng.standard_normal((B, C, 3))
x = rng.standard_normal((B, T)); std = rng.uniform(0, 0.2, C)

def compute(nt):
    res = {"y": ops.biquad_filterbank(x, b, a, num_threads=nt),
           "e": ops.filterbank_envelope(x, b, a, hop=25, tau=0.002, sample_rate=8000.0, noise_std=std,
                                        seed=7, num_threads=nt)}
    bt = torch.tensor(b, requires_grad=True); at = torch.tensor(a, requires_grad=True)
    out = ops.filterbank_envelope(torch.tensor(x), bt, at, hop=25, tau=0.002, sample_rate=8000.0,
                                  noise_std=torch.tensor(std), seed=7, num_threads=nt)
    (out * out).sum().backward()
    return {**res, "gb": bt.grad.numpy(), "ga": at.grad.numpy()}
"""
    assert_same_on_every_isa_and_thread_count(code, tmp_path)


@pytest.mark.parametrize("kwargs,match", [
    (dict(b=np.zeros((2, 1, 2))), r"b must be \[C, 3\] .* or \[B, C, 3\]"),
    (dict(a=np.zeros((2, 1, 3))), r"a must be \[C, 2\] .* or \[B, C, 2\]"),
    (dict(a=np.array([[-1.5, 0.8]])), r"both be shared \(\[C, 3\], \[C, 2\]\) or both per example"),
    (dict(b=np.zeros((3, 1, 3)), a=np.tile([-1.5, 0.8], (3, 1, 1))), r"must have x's batch size B = 2"),
    (dict(x=np.zeros(8)), r"need a batched x \[B, T\]"),
    (dict(a=np.array([[[-1.5, 0.8]], [[0.0, 1.2]]])), r"batch item 1, channel 0 is unstable"),
])
def test_per_example_bad_shapes_raise(kwargs, match):
    args = dict(x=np.zeros((2, 8)), b=np.ones((2, 1, 3)), a=np.tile([-1.5, 0.8], (2, 1, 1)))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ops.biquad_filterbank(args["x"], args["b"], args["a"])


def _opcheck(op, args):
    result = torch.library.opcheck(op, args)
    assert all(v == "SUCCESS" for v in result.values()), result


def test_opcheck_per_example():
    rng = np.random.default_rng(1)
    b, a = random_banks(rng, 3, 5, radius=(0.3, 0.9))
    bt, at = torch.tensor(b, requires_grad=True), torch.tensor(a, requires_grad=True)
    x = torch.randn(3, 40, dtype=torch.float64, requires_grad=True)
    zi = torch.randn(3, 5, 2, dtype=torch.float64, requires_grad=True)
    _opcheck(torch.ops.learnafe.biquad_filterbank.default, (x, bt, at, zi, 0, True))
    gy, gz = torch.randn(3, 5, 40, dtype=torch.float64), torch.randn(3, 5, 2, dtype=torch.float64)
    _opcheck(torch.ops.learnafe.biquad_filterbank_backward.default,
             (x.detach(), bt.detach(), at.detach(), zi.detach(), gy, gz, 0))
    std = torch.tensor([0.0, 0.1, 0.2, 0.05, 0.3], dtype=torch.float64, requires_grad=True)
    env = torch.ops.learnafe.filterbank_envelope.default
    _opcheck(env, (x, bt, at, None, None, 7, 0.2, "abs", True, 0))
    _opcheck(env, (x, bt, at, std, 5, 7, 0.2, "square", False, 0))
    _, ck, seed_used = env(x.detach(), bt.detach(), at.detach(), std.detach(), 11, 7, 0.2, "abs", True, 0)
    _opcheck(torch.ops.learnafe.filterbank_envelope_backward.default,
             (x.detach(), bt.detach(), at.detach(), std.detach(), seed_used, ck, 7, 0.2, "abs",
              torch.randn(3, 5, 5, dtype=torch.float64), 0))


def test_compile_fullgraph_per_example():
    rng = np.random.default_rng(3)
    b, a = random_banks(rng, 2, 4, radius=(0.3, 0.9))
    x = torch.tensor(rng.standard_normal((2, 200)))

    def f(x, b, a):
        y = ops.biquad_filterbank(x, b, a)
        e = ops.filterbank_envelope(x, b, a, hop=10, tau=0.002, sample_rate=8000.0)
        return y.square().mean() + e.sum()

    grads = []
    for fn in (f, torch.compile(f, fullgraph=True, backend="aot_eager")):
        bt, at = torch.tensor(b, requires_grad=True), torch.tensor(a, requires_grad=True)
        loss = fn(x, bt, at)
        loss.backward()
        grads.append((loss.detach(), bt.grad.clone(), at.grad.clone()))
    for e, c in zip(*grads):
        torch.testing.assert_close(c, e, rtol=0, atol=0)
