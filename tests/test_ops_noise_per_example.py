"""Per-example noise std of the fused envelope op (``noise_std [B, C]``) and the keying of batch
items modulo ``noise_batch``.

References: the noiseless op run channel by channel on an explicit ``x + std[b, c] * n[b, c]``
(``n`` from :func:`learnafe.ops.gaussian_noise`), the op called once per row with that row as a
``[C]`` std, K separate calls against one stacked call (K groups x the same clips), autograd
through the explicit composition, finite differences in float64; thread counts and ISA paths.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from isa_helpers import assert_same_on_every_isa_and_thread_count
from learnafe import ops

FS = 8000.0
TAU = 0.004


def random_banks(rng, B, C, radius=(0.3, 0.995)):
    """B random stable banks of C sections: b [B, C, 3], a [B, C, 2]."""
    r = rng.uniform(*radius, size=(B, C))
    th = rng.uniform(0.01, np.pi - 0.01, size=(B, C))
    return rng.standard_normal((B, C, 3)), np.stack([-2 * r * np.cos(th), r * r], axis=-1)


def explicit_rows(x, b, a, std, seed, hop, rectify="abs", noise_batch=None):
    """x[i] + std[i, c] * n[i % noise_batch, c] through the noiseless op, one item and channel at a time."""
    B, T = x.shape
    C = std.shape[1]
    nb = noise_batch or B
    n = ops.gaussian_noise(seed, nb, C, T)
    rows = []
    for i in range(B):
        bi, ai = (b[i], a[i]) if b.ndim == 3 else (b, a)
        rows.append(np.concatenate([
            ops.filterbank_envelope(x[i:i + 1] + std[i, c] * n[i % nb, c], bi[c:c + 1], ai[c:c + 1], hop=hop,
                                    tau=TAU, sample_rate=FS, rectify=rectify) for c in range(C)], axis=1))
    return np.concatenate(rows)


@pytest.mark.parametrize("B, C, T, hop, rectify, per_example_bank", [
    (3, 16, 700, 30, "abs", False), (4, 21, 401, 13, "square", True), (2, 5, 333, 7, "abs", True),
    (1, 1, 50, 50, "square", False)])
def test_per_example_std_equals_explicit_reference_and_each_row_alone(B, C, T, hop, rectify, per_example_bank):
    rng = np.random.default_rng(B * 100 + C)
    x = rng.standard_normal((B, T))
    if per_example_bank:
        b, a = random_banks(rng, B, C)
    else:
        b, a = (v[0] for v in random_banks(rng, 1, C))
    std = np.abs(rng.standard_normal((B, C))) * 0.3
    std[0, 0] = 0.0
    seed = 2 ** 64 - 1 - C
    kw = dict(hop=hop, tau=TAU, sample_rate=FS, rectify=rectify, seed=seed)
    out = ops.filterbank_envelope(x, b, a, noise_std=std, **kw)
    # same float64 arithmetic (x + std * n, then the recursion): bitwise equal
    np.testing.assert_array_equal(out, explicit_rows(x, b, a, std, seed, hop, rectify))
    # item i: the noise of item i of a call with row i as the shared [C] std
    for i in range(B):
        alone = ops.filterbank_envelope(x, b, a, noise_std=std[i], **kw)
        np.testing.assert_array_equal(out[i], alone[i])
    # rows all equal: the shared [C] std bit for bit
    np.testing.assert_array_equal(ops.filterbank_envelope(x, b, a, noise_std=np.tile(std[:1], (B, 1)), **kw),
                                  ops.filterbank_envelope(x, b, a, noise_std=std[0], **kw))
    # float32 signal and std; torch path
    out32 = ops.filterbank_envelope(x.astype(np.float32), b, a, noise_std=std.astype(np.float32), **kw)
    ref32 = explicit_rows(x.astype(np.float32).astype(np.float64), b, a, std.astype(np.float32).astype(np.float64),
                          seed, hop, rectify)
    np.testing.assert_array_equal(out32, ref32.astype(np.float32))
    t = ops.filterbank_envelope(torch.tensor(x), torch.tensor(b), torch.tensor(a), noise_std=torch.tensor(std), **kw)
    np.testing.assert_array_equal(t.numpy(), out)


@pytest.mark.parametrize("std_rows", [True, False])
def test_stacked_call_equals_one_call_per_group(std_rows):
    """K groups of the same B clips with noise_batch=B: group k equals its own call on the clips, forward
    and every gradient (x per group, b, a and a [K*B, C] std per item, a shared [C] std summed)."""
    rng = np.random.default_rng(5)
    K, B, C, T, hop = 3, 4, 19, 500, 25
    x = rng.standard_normal((B, T))
    b, a = random_banks(rng, K, C, radius=(0.3, 0.99))
    std = np.abs(rng.standard_normal((K, C))) * 0.2 if std_rows else np.abs(rng.standard_normal(C)) * 0.2
    w = rng.standard_normal((K * B, C, T // hop))
    kw = dict(hop=hop, tau=TAU, sample_rate=FS, seed=123)

    def run(x, b, a, s, w, noise_batch=None):
        """Features and the gradients of sum(w * features) w.r.t. x, b, a, noise_std."""
        xt, bt, at, st = (torch.tensor(v, requires_grad=True) for v in (x, b, a, s))
        out = ops.filterbank_envelope(xt, bt, at, noise_std=st, noise_batch=noise_batch, **kw)
        g = torch.autograd.grad((out * torch.tensor(w)).sum(), (xt, bt, at, st))
        return [out.detach().numpy(), *(v.numpy() for v in g)]

    def group(k):
        rows = slice(k * B, (k + 1) * B)
        s = np.repeat(std[k:k + 1], B, axis=0) if std_rows else std
        return run(x, np.repeat(b[k:k + 1], B, axis=0), np.repeat(a[k:k + 1], B, axis=0), s, w[rows])

    s_stack = np.repeat(std, B, axis=0) if std_rows else std
    xs, bs, as_ = np.tile(x, (K, 1)), np.repeat(b, B, axis=0), np.repeat(a, B, axis=0)
    stacked = run(xs, bs, as_, s_stack, w, noise_batch=B)
    alone = [group(k) for k in range(K)]
    for k, one in enumerate(alone):
        rows = slice(k * B, (k + 1) * B)
        for name, u, v in zip(("features", "x", "b", "a"), stacked[:4], one[:4]):
            np.testing.assert_array_equal(u[rows], v, err_msg=f"group {k}: {name}")
        if std_rows:
            np.testing.assert_array_equal(stacked[4][rows], one[4], err_msg=f"group {k}: noise_std")
    if not std_rows:
        # a shared std's gradient sums the stacked batch: the groups' sums, summed (other order)
        np.testing.assert_allclose(stacked[4], np.sum([one[4] for one in alone], axis=0), rtol=1e-12, atol=1e-15)
    # keyed by each item's own index instead, the groups after the first get other noise
    other = ops.filterbank_envelope(xs, bs, as_, noise_std=s_stack, **kw)
    np.testing.assert_array_equal(other[:B], stacked[0][:B])
    assert not np.array_equal(other[B:], stacked[0][B:])


def test_gradients_equal_the_explicit_torch_composition():
    """d/dstd[b, c] = sum over t of dL/d(input of channel c)[b, t] * n[b, c, t]: autograd through x + std * n."""
    rng = np.random.default_rng(8)
    B, T, C, hop = 3, 400, 16, 25
    b, a = random_banks(rng, B, C, radius=(0.3, 0.99))
    x = torch.tensor(rng.standard_normal((B, T)), requires_grad=True)
    bt, at = torch.tensor(b, requires_grad=True), torch.tensor(a, requires_grad=True)
    st = torch.tensor(np.abs(rng.standard_normal((B, C))) * 0.2, requires_grad=True)
    w = torch.tensor(rng.standard_normal((B, C, T // hop)))
    out = ops.filterbank_envelope(x, bt, at, hop=hop, tau=TAU, sample_rate=FS, noise_std=st, seed=99)
    g = torch.autograd.grad((out * w).sum(), (x, bt, at, st))
    n = torch.tensor(ops.gaussian_noise(99, B, C, T))
    ref = torch.cat([ops.filterbank_envelope(x + st[:, c:c + 1] * n[:, c], bt[:, c:c + 1], at[:, c:c + 1],
                                             hop=hop, tau=TAU, sample_rate=FS) for c in range(C)], dim=1)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    gr = torch.autograd.grad((ref * w).sum(), (x, bt, at, st))
    for name, u, v in zip(("x", "b", "a", "noise_std"), g, gr):
        torch.testing.assert_close(u, v, rtol=1e-10, atol=1e-12, msg=name)
    st32 = st.detach().float().requires_grad_()
    o32 = ops.filterbank_envelope(x.detach().float(), bt, at, hop=hop, tau=TAU, sample_rate=FS, noise_std=st32,
                                  seed=99)
    (gs32,) = torch.autograd.grad((o32 * w.float()).sum(), (st32,))
    assert gs32.dtype == torch.float32 and gs32.shape == (B, C)


@pytest.mark.parametrize("noise_batch", [None, 2])
def test_gradcheck_per_example_std(noise_batch):
    """Finite differences in float64: x, b, a and a [B, C] noise_std (two channel blocks)."""
    rng = np.random.default_rng(7)
    b, a = random_banks(rng, 4, 9, radius=(0.3, 0.9))
    x = torch.tensor(rng.standard_normal((4, 41)), requires_grad=True)
    bt, at = torch.tensor(b, requires_grad=True), torch.tensor(a, requires_grad=True)
    st = torch.tensor(np.abs(rng.standard_normal((4, 9))) + 0.1, requires_grad=True)

    def f(x, bt, at, st):
        return ops.filterbank_envelope(x, bt, at, hop=5, tau=0.001, sample_rate=FS, rectify="square",
                                       noise_std=st, seed=11, noise_batch=noise_batch)

    assert torch.autograd.gradcheck(f, (x, bt, at, st))


def test_bitwise_for_any_thread_count_and_isa(tmp_path):
    code = """
import numpy as np
import torch
from learnafe import ops
rng = np.random.default_rng(2)
B, C, T = 6, 21, 603
r = rng.uniform(0.3, 0.99, (B, C)); th = rng.uniform(0.01, 3.1, (B, C))
a = np.stack([-2 * r * np.cos(th), r * r], -1); b = rng.standard_normal((B, C, 3))
x = rng.standard_normal((B, T)).astype(np.float32); std = rng.uniform(0, 0.2, (B, C))

def compute(nt):
    res = {}
    for nb in (None, 3):
        xt = torch.tensor(x, requires_grad=True); st = torch.tensor(std, requires_grad=True)
        bt = torch.tensor(b, requires_grad=True); at = torch.tensor(a, requires_grad=True)
        out = ops.filterbank_envelope(xt, bt, at, hop=30, tau=0.002, sample_rate=8000.0, noise_std=st,
                                      seed=2**63 + 7, num_threads=nt, noise_batch=nb)
        out.log1p().sum().backward()
        for k, v in (("e", out.detach()), ("gx", xt.grad), ("gb", bt.grad), ("ga", at.grad), ("gs", st.grad)):
            res[f"{k}{nb or 0}"] = v.numpy()
    return res
"""
    assert_same_on_every_isa_and_thread_count(code, tmp_path)


def test_bad_per_example_std_and_noise_batch():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((4, 100))
    b, a = random_banks(rng, 1, 16, radius=(0.3, 0.9))
    b, a = b[0], a[0]
    kw = dict(hop=10, tau=TAU, sample_rate=FS, seed=1)
    good = np.full((4, 16), 0.1)
    bad_nan, bad_neg = good.copy(), good.copy()
    bad_nan[2, 5] = np.nan
    bad_neg[1, 3] = -0.1
    cases = [
        (dict(noise_std=np.full((3, 16), 0.1)), ValueError,
         r"noise_std must have shape \(16,\) .* or \(4, 16\) \(one row per batch item of x\), got \(3, 16\)"),
        (dict(noise_std=np.full((4, 15), 0.1)), ValueError, r"or \(4, 16\)"),
        (dict(noise_std=np.full((4, 16, 1), 0.1)), ValueError, "noise_std must have shape"),
        (dict(noise_std=bad_nan), ValueError, r"noise_std\[2, 5\] is nan"),
        (dict(noise_std=bad_neg), ValueError, r"noise_std\[1, 3\] = -0.1 is negative"),
        (dict(noise_std=good.astype(np.int64)), TypeError, "noise_std must be float32 or float64"),
        (dict(noise_std=good, noise_batch=0), ValueError, r"noise_batch must be None or an integer in \[1, B=4\]"),
        (dict(noise_std=good, noise_batch=3), ValueError, "that divides B"),
        (dict(noise_std=good, noise_batch=8), ValueError, "noise_batch must be"),
        (dict(noise_std=good, noise_batch=2.0), ValueError, "noise_batch must be"),
        (dict(noise_std=good, noise_batch=True), ValueError, "noise_batch must be"),
        (dict(noise_batch=0), ValueError, "noise_batch must be"),
    ]
    for extra, err, match in cases:
        with pytest.raises(err, match=match):
            ops.filterbank_envelope(x, b, a, **kw, **extra)
    with pytest.raises(ValueError, match=r"a per-example noise_std \[B, C\] needs x \[B, T\]"):
        ops.filterbank_envelope(x[0], b, a, noise_std=good[:1], **kw)
    # torch: the data checks run inside the operator, with the same messages
    with pytest.raises(ValueError, match=r"noise_std\[2, 5\] is nan"):
        ops.filterbank_envelope(torch.tensor(x), torch.tensor(b), torch.tensor(a), noise_std=torch.tensor(bad_nan),
                                **kw)
    with pytest.raises(ValueError, match=r"or \(4, 16\)"):
        ops.filterbank_envelope(torch.tensor(x), torch.tensor(b), torch.tensor(a),
                                noise_std=torch.tensor(good[:3]), **kw)


def _opcheck(op, args):
    result = torch.library.opcheck(op, args)
    assert all(v == "SUCCESS" for v in result.values()), result


def test_opcheck_and_compile_with_per_example_std():
    rng = np.random.default_rng(1)
    b, a = random_banks(rng, 4, 5, radius=(0.3, 0.9))
    bt, at = torch.tensor(b, requires_grad=True), torch.tensor(a, requires_grad=True)
    x = torch.randn(4, 40, dtype=torch.float64, requires_grad=True)
    std = torch.tensor(rng.uniform(0, 0.3, (4, 5)), requires_grad=True)
    env = torch.ops.learnafe.filterbank_envelope.default
    _opcheck(env, (x, bt, at, std, 5, 7, 0.2, "square", False, 0, 2))
    _opcheck(env, (x, bt, at, std, 5, 7, 0.2, "abs", True, 0))
    _, ck, seed_used = env(x.detach(), bt.detach(), at.detach(), std.detach(), 11, 7, 0.2, "abs", True, 0, 2)
    _opcheck(torch.ops.learnafe.filterbank_envelope_backward.default,
             (x.detach(), bt.detach(), at.detach(), std.detach(), seed_used, ck, 7, 0.2, "abs",
              torch.randn(4, 5, 5, dtype=torch.float64), 0, 2))

    def f(x, b, a, s):
        return ops.filterbank_envelope(x, b, a, hop=10, tau=0.002, sample_rate=8000.0, noise_std=s, seed=3,
                                       noise_batch=2).sum()

    grads = []
    for fn in (f, torch.compile(f, fullgraph=True, backend="aot_eager")):
        st = std.detach().clone().requires_grad_()
        loss = fn(x.detach(), torch.tensor(b), torch.tensor(a), st)
        grads.append((loss.detach(), torch.autograd.grad(loss, st)[0]))
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=0)
