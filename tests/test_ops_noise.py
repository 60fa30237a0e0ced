"""Input-referred noise inside the fused envelope op (``noise_std``, ``seed``) and its generator.

References: Random123's known-answer vectors for Philox4x32-7 (the noise's generator) and
Philox4x32-10, an independent NumPy implementation of the generator (Philox in uint64
arithmetic, Box-Muller with NumPy's float64 log/sin/cos), the standard normal distribution
(moments, tails, KS test, autocorrelation, cross-correlation, with bounds from their
sampling distributions), the noiseless op run channel by channel on an explicit
``x + std * n``, and finite differences in float64.
"""

import math

import numpy as np
import pytest
import scipy.stats
import torch

from isa_helpers import assert_same_on_every_isa
from learnafe import _core, ops
from learnafe.benchmarks._ops_reference import bank

FS = 8000.0
TAU = 0.004

# Random123's kat_vectors file (D. E. Shaw Research, Random123 1.09, examples/kat_vectors),
# the philox4x32 lines: (rounds, counter, key, output).  The noise uses 7 rounds.
PHILOX_KAT = [
    (7, (0, 0, 0, 0), (0, 0), (0x5F6FB709, 0x0D893F64, 0x4F121F81, 0x4F730A48)),
    (7, (0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x5207DDC2, 0x45165E59, 0x4D8EE751, 0x8C52F662)),
    (7, (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0x4DFCCABA, 0x190A87F0, 0xC47362BA, 0xB6B5242A)),
    (10, (0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    (10, (0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (10, (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]
ROUNDS = 7  # Philox4x32-7 in the noise


# ------------------------------------------------------- reference generator ---

def philox_numpy(c0, c1, c2, c3, k0, k1, rounds=ROUNDS):
    """Philox4x32-R on uint64 arrays holding 32-bit words (independent of the C++ code)."""
    m = np.uint64(0xFFFFFFFF)
    c = [np.asarray(v, dtype=np.uint64) & m for v in (c0, c1, c2, c3)]
    k0, k1 = np.uint64(k0), np.uint64(k1)
    for _ in range(rounds):
        p0 = c[0] * np.uint64(0xD2511F53)
        p1 = c[2] * np.uint64(0xCD9E8D57)
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ k0, p1 & m, (p0 >> np.uint64(32)) ^ c[3] ^ k1, p0 & m]
        k0 = (k0 + np.uint64(0x9E3779B9)) & m
        k1 = (k1 + np.uint64(0xBB67AE85)) & m
    return c


def noise_numpy(seed, B, C, T):
    """The documented definition of n[b, c, t], with NumPy's log/sin/cos in float64."""
    b, c, t = np.meshgrid(np.arange(B), np.arange(C), np.arange(T), indexing="ij")
    j = (t // 4).astype(np.uint64)
    w = philox_numpy(j & np.uint64(0xFFFFFFFF), c, b, j >> np.uint64(32), seed & 0xFFFFFFFF, seed >> 32)
    out = np.empty((B, C, T))
    for r in range(4):
        pair = r // 2
        w1, w2 = w[2 * pair], w[2 * pair + 1]
        u1 = (((w1 >> np.uint64(1)) | np.uint64(1)).astype(np.float32) * np.float32(2.0 ** -31)).astype(np.float64)
        u2 = (w2 >> np.uint64(8)).astype(np.float64) * 2.0 ** -24
        rho = np.sqrt(-2.0 * np.log(u1))
        val = rho * (np.cos if r % 2 == 0 else np.sin)(2 * np.pi * u2)
        out[t % 4 == r] = val[t % 4 == r]
    return out


def test_philox_known_answers():
    for rounds, ctr, key, expected in PHILOX_KAT:
        assert _core.philox4x32(list(ctr), list(key), rounds) == expected
        got = philox_numpy(*([np.uint64(v)] for v in ctr), *key, rounds=rounds)
        assert tuple(int(v[0]) for v in got) == expected
    # the kernel's default is the noise's variant
    assert _core.philox4x32([1, 2, 3, 4], [5, 6]) == _core.philox4x32([1, 2, 3, 4], [5, 6], ROUNDS)


@pytest.mark.parametrize("B, C, T", [(2, 16, 1001), (3, 21, 257), (1, 1, 9), (2, 5, 4)])
def test_generator_matches_independent_numpy_definition(B, C, T):
    seed = 0xDEADBEEF12345678
    n = ops.gaussian_noise(seed, B, C, T)
    ref = noise_numpy(seed, B, C, T)
    assert n.shape == (B, C, T) and n.dtype == np.float64
    # float32 Box-Muller (shortened polynomials, 1.2e-6 of the radius at worst) against
    # float64 libm
    np.testing.assert_allclose(n, ref, rtol=2e-6, atol=2e-6)
    # a prefix of T (and of B, C) is the same noise: n depends on (seed, b, c, t) only
    np.testing.assert_array_equal(ops.gaussian_noise(seed, B + 1, C + 2, T + 5)[:B, :C, :T], n)


# n[b, c, t] of three seeds, bit for bit (float.hex), as the definition gives them: the
# float32 polynomials are written out operation by operation, so every build, path and
# implementation of the generator must reproduce these exactly (the NumPy reference above
# checks the values to 2e-6 only): a change of the generator's arithmetic (the Philox
# multiplies, the polynomials, their rounding) that keeps the values within that tolerance
# still fails here.
NOISE_BITS = {
    0: ["0x1.53f6200000000p+0", "0x1.d52a8a0000000p-2", "-0x1.2283740000000p-1", "0x1.6c89d60000000p+0",
        "0x1.cb09840000000p-2", "-0x1.10f1440000000p-1", "-0x1.06d3f00000000p+0", "0x1.a3ed5e0000000p-1"],
    0xDEADBEEF12345678: ["-0x1.3eba960000000p+0", "0x1.235aa60000000p-1", "0x1.42a1c80000000p-4",
                         "0x1.a67e540000000p-3", "-0x1.1d567c0000000p-2", "0x1.6cf1ca0000000p-1",
                         "-0x1.edf2de0000000p-1", "-0x1.b2aa5e0000000p-1"],
    2**64 - 1: ["-0x1.3491040000000p-2", "0x1.483e6c0000000p+0", "0x1.126c820000000p+0",
                "0x1.4315e40000000p-3", "-0x1.ee4f020000000p+0", "-0x1.2c5a940000000p-1",
                "0x1.5d41620000000p-3", "-0x1.83c83c0000000p-2"],
}
NOISE_BITS_AT = [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 0, 3), (1, 5, 17), (2, 20, 36), (2, 16, 8), (1, 8, 30)]


def test_noise_known_values_bitwise():
    for seed, values in NOISE_BITS.items():
        n = ops.gaussian_noise(seed, 3, 21, 37)
        assert [n[i].hex() for i in NOISE_BITS_AT] == values, seed
        # every sample is a float32 value (the transform runs in float32)
        np.testing.assert_array_equal(n.astype(np.float32).astype(np.float64), n)


# ------------------------------------------------------------- statistics ---

@pytest.fixture(scope="module")
def big_noise():
    return ops.gaussian_noise(12345, 4, 16, 50000)  # 3.2e6 samples


def test_noise_moments_and_distribution(big_noise):
    n = big_noise.ravel()
    N = n.size
    # sampling distributions of the estimators for N iid N(0, 1) samples; 5 sigma bounds
    assert abs(n.mean()) < 5 / math.sqrt(N)
    assert abs(n.var() - 1) < 5 * math.sqrt(2 / N)
    assert abs(scipy.stats.skew(n)) < 5 * math.sqrt(6 / N)
    assert abs(scipy.stats.kurtosis(n)) < 5 * math.sqrt(24 / N)
    for k in (1.0, 2.0, 3.0, 4.0):  # tail fractions against the binomial spread
        p = 2 * scipy.stats.norm.sf(k)
        assert abs(np.mean(np.abs(n) > k) - p) < 5 * math.sqrt(p * (1 - p) / N) + 1 / N
    assert scipy.stats.kstest(n[:1000000], "norm").pvalue > 1e-4
    # and the tails at 4 and 5 sigma, one side at a time
    for k in (4.0, 5.0):
        p = scipy.stats.norm.sf(k)
        for side in (n > k, n < -k):
            assert abs(np.mean(side) - p) < 5 * math.sqrt(p / N) + 1 / N
    # per channel and per batch item
    per = big_noise.reshape(4, 16, -1)
    Nc = per.shape[0] * per.shape[2]
    assert np.all(np.abs(per.mean(axis=(0, 2))) < 5 / math.sqrt(Nc))
    assert np.all(np.abs(per.var(axis=(0, 2)) - 1) < 5 * math.sqrt(2 / Nc))
    Nb = per.shape[1] * per.shape[2]
    assert np.all(np.abs(per.mean(axis=(1, 2))) < 5 / math.sqrt(Nb))


def test_noise_is_white(big_noise):
    n = big_noise
    N = n.shape[0] * n.shape[1] * (n.shape[2] - 8)
    for lag in range(1, 9):  # lags 1-3 pair samples of one Philox call, 4+ cross calls
        r = np.mean(n[..., lag:] * n[..., :-lag]) / np.mean(n * n)
        assert abs(r) < 5 / math.sqrt(N), (lag, r)
        # squares: Box-Muller pairs share a radius, yet the two normals are independent
        s = n * n - 1
        rs = np.mean(s[..., lag:] * s[..., :-lag]) / np.mean(s * s)
        assert abs(rs) < 5 / math.sqrt(N), (lag, rs)
    # flat spectrum: the periodogram averaged over the 64 rows, in 8 bands, within 5 sigma of 1
    p = np.abs(np.fft.rfft(n.reshape(-1, n.shape[-1]), axis=-1)[:, 1:-1]) ** 2 / n.shape[-1]
    for band in np.array_split(p.mean(axis=0), 8):
        assert abs(band.mean() - 1) < 5 / math.sqrt(64 * band.size)


def test_noise_channels_batch_items_and_seeds_are_independent(big_noise):
    n = big_noise
    flat = n.transpose(1, 0, 2).reshape(16, -1)  # channels x (batch, time)
    r = np.corrcoef(flat)
    bound = 5 / math.sqrt(flat.shape[1])
    assert np.max(np.abs(r - np.eye(16))) < bound
    rb = np.corrcoef(n.reshape(4, -1))  # batch items
    assert np.max(np.abs(rb - np.eye(4))) < 5 / math.sqrt(n[0].size)
    # neighbouring seeds give unrelated noise
    m = ops.gaussian_noise(12346, 4, 16, 50000)
    assert abs(np.corrcoef(n.ravel(), m.ravel())[0, 1]) < 5 / math.sqrt(n.size)
    assert not np.array_equal(n, m)
    np.testing.assert_array_equal(ops.gaussian_noise(12345, 4, 16, 50000), n)


# ------------------------------------------------------------- the op ---

def random_bank(C, rng):
    b = rng.standard_normal((C, 3))
    r = rng.uniform(0.3, 0.99, C)
    th = rng.uniform(0.1, 3.0, C)
    return b, np.stack([-2 * r * np.cos(th), r * r], 1)


def explicit_reference(x, b, a, std, seed, hop, rectify="abs"):
    """x + std[c] * n[:, c] through the noiseless op, one channel at a time."""
    B, T = x.shape
    n = ops.gaussian_noise(seed, B, b.shape[0], T)
    return np.concatenate([
        ops.filterbank_envelope(x + std[c] * n[:, c], b[c:c + 1], a[c:c + 1], hop=hop, tau=TAU,
                                sample_rate=FS, rectify=rectify)
        for c in range(b.shape[0])], axis=1)


@pytest.mark.parametrize("C, T, hop, rectify", [(16, 1000, 30, "abs"), (21, 401, 13, "square"),
                                                 (5, 333, 7, "abs"), (1, 50, 50, "square"),
                                                 (8, 64, 4, "abs")])
def test_op_equals_explicit_reference_bitwise(C, T, hop, rectify):
    rng = np.random.default_rng(C + T)
    x = rng.standard_normal((3, T))
    b, a = random_bank(C, rng)
    std = np.abs(rng.standard_normal(C)) * 0.3
    std[0] = 0.0
    seed = 2 ** 64 - 1 - C
    out = ops.filterbank_envelope(x, b, a, hop=hop, tau=TAU, sample_rate=FS, rectify=rectify,
                                  noise_std=std, seed=seed)
    # same float64 arithmetic (x + std * n, then the recursion): bitwise equal
    np.testing.assert_array_equal(out, explicit_reference(x, b, a, std, seed, hop, rectify))
    # float32 signal: the kernel computes in float64 and rounds once
    out32 = ops.filterbank_envelope(x.astype(np.float32), b, a, hop=hop, tau=TAU, sample_rate=FS,
                                    rectify=rectify, noise_std=std.astype(np.float32), seed=seed)
    ref32 = explicit_reference(x.astype(np.float32).astype(np.float64), b, a,
                               std.astype(np.float32).astype(np.float64), seed, hop, rectify)
    np.testing.assert_array_equal(out32, ref32.astype(np.float32))
    # torch path, 1-D input
    t = ops.filterbank_envelope(torch.tensor(x), torch.tensor(b), torch.tensor(a), hop=hop, tau=TAU,
                                sample_rate=FS, rectify=rectify, noise_std=torch.tensor(std), seed=seed)
    np.testing.assert_array_equal(t.numpy(), out)
    one = ops.filterbank_envelope(x[0], b, a, hop=hop, tau=TAU, sample_rate=FS, rectify=rectify,
                                  noise_std=std, seed=seed)
    np.testing.assert_array_equal(one, out[0])


def test_zero_std_is_the_noiseless_op_and_seed_matters():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 600))
    b, a = bank(16)
    kw = dict(hop=40, tau=TAU, sample_rate=FS)
    clean = ops.filterbank_envelope(x, b, a, **kw)
    np.testing.assert_array_equal(ops.filterbank_envelope(x, b, a, noise_std=np.zeros(16), seed=3, **kw), clean)
    std = np.full(16, 0.1)
    e1 = ops.filterbank_envelope(x, b, a, noise_std=std, seed=3, **kw)
    np.testing.assert_array_equal(ops.filterbank_envelope(x, b, a, noise_std=std, seed=3, **kw), e1)
    e2 = ops.filterbank_envelope(x, b, a, noise_std=std, seed=4, **kw)
    assert not np.array_equal(e1, e2) and not np.array_equal(e1, clean)
    # seed without noise has no effect
    np.testing.assert_array_equal(ops.filterbank_envelope(x, b, a, seed=3, **kw), clean)


@pytest.mark.parametrize("rectify", ["abs", "square"])
def test_gradcheck_with_noise(rectify):
    """Finite differences in float64 with a fixed seed: x, b, a and noise_std (two channel blocks)."""
    rng = np.random.default_rng(7)
    b, a = random_bank(21, rng)
    x = torch.tensor(rng.standard_normal((2, 61)), requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    at = torch.tensor(a, requires_grad=True)
    st = torch.tensor(np.abs(rng.standard_normal(21)) + 0.1, requires_grad=True)

    def f(x, bt, at, st):
        return ops.filterbank_envelope(x, bt, at, hop=5, tau=0.001, sample_rate=FS, rectify=rectify,
                                       noise_std=st, seed=11)

    assert torch.autograd.gradcheck(f, (x, bt, at, st))


def test_gradients_equal_the_explicit_torch_composition():
    """d/dstd[c] = sum over b, t of dL/d(input of channel c) * n[b, c, t]: autograd through x + std * n."""
    rng = np.random.default_rng(8)
    B, T, C, hop = 3, 500, 16, 25
    b, a = bank(C)
    x = torch.tensor(rng.standard_normal((B, T)), requires_grad=True)
    bt, at = torch.tensor(b, requires_grad=True), torch.tensor(a, requires_grad=True)
    st = torch.tensor(np.abs(rng.standard_normal(C)) * 0.2, requires_grad=True)
    w = torch.tensor(rng.standard_normal((B, C, T // hop)))
    out = ops.filterbank_envelope(x, bt, at, hop=hop, tau=TAU, sample_rate=FS, noise_std=st, seed=99)
    g = torch.autograd.grad((out * w).sum(), (x, bt, at, st))
    n = torch.tensor(ops.gaussian_noise(99, B, C, T))
    ref = torch.cat([ops.filterbank_envelope(x + st[c] * n[:, c], bt[c:c + 1], at[c:c + 1], hop=hop, tau=TAU,
                                             sample_rate=FS) for c in range(C)], dim=1)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    gr = torch.autograd.grad((ref * w).sum(), (x, bt, at, st))
    for name, u, v in zip(("x", "b", "a", "noise_std"), g, gr):
        torch.testing.assert_close(u, v, rtol=1e-10, atol=1e-12, msg=name)
    # float32 signal and std: gradients come back in the inputs' dtypes
    st32 = st.detach().float().requires_grad_()
    x32 = x.detach().float().requires_grad_()
    o32 = ops.filterbank_envelope(x32, bt, at, hop=hop, tau=TAU, sample_rate=FS, noise_std=st32, seed=99)
    gx32, gs32 = torch.autograd.grad((o32 * w.float()).sum(), (x32, st32))
    assert gx32.dtype == torch.float32 and gs32.dtype == torch.float32
    torch.testing.assert_close(gs32.double(), gr[3], rtol=1e-4, atol=1e-6)


def test_backward_without_saved_states_is_bitwise_the_same():
    """The forward saves the frame-start states; the kernel's own recomputation gives the same bits."""
    rng = np.random.default_rng(9)
    B, T, C, hop = 2, 403, 21, 17
    b, a = random_bank(C, rng)
    x = rng.standard_normal((B, T)).astype(np.float32)
    std = np.abs(rng.standard_normal(C))
    alpha = ops.envelope_alpha(TAU, FS)
    n_ck = _core.envelope_checkpoint_size(C, T, hop)
    ck = np.empty((B, n_ck))
    out = np.empty((B, C, T // hop), np.float32)
    _core.envelope_forward_f32(x, b, a, hop, alpha, "abs", out, 2, noise_std=std, seed=5, ck=ck)
    gout = rng.standard_normal(out.shape).astype(np.float32)
    res = []
    for c in (ck, None):
        g = [np.empty_like(x), np.empty((C, 3)), np.empty((C, 2)), np.empty(C)]
        _core.envelope_backward_f32(x, b, a, hop, alpha, "abs", gout, g[0], g[1], g[2], 2,
                                    noise_std=std, seed=5, gstd=g[3], ck=c)
        res.append(g)
    for u, v in zip(*res):
        np.testing.assert_array_equal(u, v)


def test_bitwise_identical_for_any_thread_count():
    rng = np.random.default_rng(10)
    b, a = random_bank(21, rng)
    x = torch.tensor(rng.standard_normal((5, 1003)).astype(np.float32))
    results = []
    for nt in (1, 2, 3, 7):
        xt = x.clone().requires_grad_()
        bt, at = torch.tensor(b, requires_grad=True), torch.tensor(a, requires_grad=True)
        st = torch.tensor(np.abs(b[:, 0]), requires_grad=True)
        e = ops.filterbank_envelope(xt, bt, at, hop=100, tau=0.01, sample_rate=1000.0, noise_std=st, seed=17,
                                    num_threads=nt)
        e.log1p().sum().backward()
        results.append([e.detach().numpy(), xt.grad.numpy(), bt.grad.numpy(), at.grad.numpy(), st.grad.numpy(),
                        ops.gaussian_noise(17, 5, 21, 1003, num_threads=nt)])
    for other in results[1:]:
        for u, v in zip(results[0], other):
            np.testing.assert_array_equal(u, v)


def test_isa_paths_bitwise_equal(tmp_path):
    code = (
        "import sys, numpy as np\n"
        "from learnafe import ops, _core\n"
        "rng = np.random.default_rng(0)\n"
        "x = rng.standard_normal((3, 301)).astype(np.float32); b = rng.standard_normal((21, 3))\n"
        "r = rng.uniform(0.3, 0.99, 21); th = rng.uniform(0.1, 3.0, 21)\n"
        "a = np.stack([-2 * r * np.cos(th), r * r], 1); s = np.abs(b[:, 1])\n"
        "e = ops.filterbank_envelope(x, b, a, hop=30, tau=0.01, sample_rate=1000.0, noise_std=s, seed=7)\n"
        "e4 = ops.filterbank_envelope(x, b[:3], a[:3], hop=7, tau=0.01, sample_rate=1000.0,\n"
        "                             noise_std=s[:3], seed=7)\n"
        "ge = rng.standard_normal(e.shape).astype(np.float32)\n"
        "hx = np.empty_like(x); hb = np.empty((21, 3)); ha = np.empty((21, 2)); hs = np.empty(21)\n"
        "_core.envelope_backward_f32(x, b, a, 30, ops.envelope_alpha(0.01, 1000.0), 'abs', ge,\n"
        "                            hx, hb, ha, 2, noise_std=s, seed=7, gstd=hs)\n"
        "n = ops.gaussian_noise(2**63 + 5, 2, 37, 103)\n"
        "np.savez(sys.argv[1], e=e, e4=e4, hx=hx, hb=hb, ha=ha, hs=hs, n=n)\n"
        "print(ops.kernel_isa())\n")
    assert_same_on_every_isa(code, tmp_path, ("e", "e4", "hx", "hb", "ha", "hs", "n"))


def test_seed_from_torch_generator():
    rng = np.random.default_rng(11)
    b, a = bank(16)
    x = torch.tensor(rng.standard_normal((2, 800)))
    std = torch.full((16,), 0.05, dtype=torch.float64)
    kw = dict(hop=40, tau=TAU, sample_rate=FS, noise_std=std)
    torch.manual_seed(123)
    e1 = ops.filterbank_envelope(x, torch.tensor(b), torch.tensor(a), **kw)
    after = torch.rand(())
    torch.manual_seed(123)
    e2 = ops.filterbank_envelope(x, torch.tensor(b), torch.tensor(a), **kw)
    torch.testing.assert_close(e1, e2, rtol=0, atol=0)
    assert float(torch.rand(())) == float(after)  # the same draws were consumed
    # the seed is two 32-bit words of torch.randint from the default generator
    torch.manual_seed(123)
    lo, hi = (int(v) for v in torch.randint(0, 2 ** 32, (2,), dtype=torch.int64))
    e3 = ops.filterbank_envelope(x, torch.tensor(b), torch.tensor(a), seed=(hi << 32) | lo, **kw)
    torch.testing.assert_close(e1, e3, rtol=0, atol=0)
    e4 = ops.filterbank_envelope(x, torch.tensor(b), torch.tensor(a), **kw)  # next draw: other noise
    assert not torch.equal(e1, e4)


# ------------------------------------------------------------- errors ---

def test_bad_noise_std_and_seed():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 100))
    b, a = bank(16)
    kw = dict(hop=10, tau=TAU, sample_rate=FS)
    good = np.full(16, 0.1)
    cases = [
        (dict(noise_std=np.full(15, 0.1), seed=1), ValueError, r"noise_std must have shape \(16,\)"),
        (dict(noise_std=np.full((16, 1), 0.1), seed=1), ValueError, "noise_std must have shape"),
        (dict(noise_std=np.r_[good[:3], -0.1, good[4:]], seed=1), ValueError, r"noise_std\[3\].*negative"),
        (dict(noise_std=np.r_[good[:5], np.nan, good[6:]], seed=1), ValueError, r"noise_std\[5\] is nan"),
        (dict(noise_std=np.r_[good[:1], np.inf, good[2:]], seed=1), ValueError, r"noise_std\[1\] is inf"),
        (dict(noise_std=[0.1] * 16, seed=1), TypeError, "noise_std must be a NumPy array"),
        (dict(noise_std=torch.tensor(good), seed=1), TypeError, "noise_std must be a NumPy array"),
        (dict(noise_std=np.ones(16, dtype=np.int64), seed=1), TypeError, "noise_std must be float32 or float64"),
        (dict(noise_std=good), ValueError, "seed is required with noise_std on NumPy"),
        (dict(noise_std=good, seed=-1), ValueError, r"seed must be an integer in \[0, 2\*\*64\)"),
        (dict(noise_std=good, seed=2 ** 64), ValueError, "seed must be an integer"),
        (dict(noise_std=good, seed=1.5), ValueError, "seed must be an integer"),
        (dict(noise_std=good, seed=True), ValueError, "seed must be an integer"),
        (dict(seed=-3), ValueError, "seed must be an integer"),
    ]
    for extra, err, match in cases:
        with pytest.raises(err, match=match):
            ops.filterbank_envelope(x, b, a, **kw, **extra)
    with pytest.raises(TypeError, match="noise_std must be a torch tensor"):
        ops.filterbank_envelope(torch.tensor(x), torch.tensor(b), torch.tensor(a), noise_std=good, **kw)
    for args, match in (((-1, 1, 1, 1), "seed must be"), ((1, -1, 1, 1), "B must be a non-negative"),
                        ((1, 1, 2.0, 1), "C must be a non-negative"), ((1, 1, 1, None), "T must be")):
        with pytest.raises(ValueError, match=match):
            ops.gaussian_noise(*args)
    assert ops.gaussian_noise(1, 0, 3, 5).shape == (0, 3, 5)


# ------------------------------------------------------------- front end ---

def test_analog_bank_noise_is_the_op_noise_with_the_input_referred_std():
    """AnalogFilterBank: one op call whose noise is per-channel white Gaussian with std input_noise_std."""
    from learnafe.frontends import features as feat
    from learnafe.frontends.analog import AnalogFilterBank

    bank_ = AnalogFilterBank.conventional(c_unit=0.2e-12, noise={"mode": "always", "full_scale_v": 0.05})
    x = 0.01 * torch.randn(2, 4000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.manual_seed(5)
    out = bank_(x)
    torch.manual_seed(5)
    lo, hi = (int(v) for v in torch.randint(0, 2 ** 32, (2,), dtype=torch.int64))
    seed = (hi << 32) | lo
    with torch.no_grad():
        b, a = bank_.coefficients()
        std = bank_.input_noise_std()
    n = torch.tensor(ops.gaussian_noise(seed, 2, 16, 4000))
    cfg = bank_.features
    env = torch.cat([ops.filterbank_envelope(x + std[c] * n[:, c], b[c:c + 1], a[c:c + 1], hop=cfg.hop, tau=cfg.tau,
                                             sample_rate=bank_.sample_rate, rectify=cfg.rectify)
                     for c in range(16)], dim=1)
    torch.testing.assert_close(out.detach(), feat.post_process(env, cfg), rtol=1e-12, atol=1e-12)
