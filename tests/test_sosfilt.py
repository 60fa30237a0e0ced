"""learnafe.sosfilt against scipy.signal.sosfilt (float64), torch.autograd.gradcheck/gradgradcheck,
its argument errors, and its operator under torch.library.opcheck and torch.compile(fullgraph=True)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as ss
import torch

import learnafe
from learnafe.ops import sosfilt


def random_sos(rng, shape, radius=(0.2, 0.95)):
    """Random stable sections ``shape + (6,)`` with a0 != 1 (complex and real pole pairs)."""
    r = rng.uniform(*radius, size=shape)
    th = rng.uniform(0.0, np.pi, size=shape)
    a0 = rng.uniform(0.5, 2.0, size=shape)
    a = np.stack([np.ones(shape), -2 * r * np.cos(th), r * r], -1)
    real = rng.random(shape) < 0.3  # some real pole pairs p1, p2
    p1, p2 = rng.uniform(-0.9, 0.9, size=shape), rng.uniform(-0.9, 0.9, size=shape)
    a[..., 1] = np.where(real, -(p1 + p2), a[..., 1])
    a[..., 2] = np.where(real, p1 * p2, a[..., 2])
    b = rng.standard_normal(shape + (3,))
    return np.concatenate([b, a], -1) * a0[..., None]


def normalised(sos):
    """sos with a0 = 1 (scipy.signal.sosfilt requires it; lfilter divides by a0 likewise)."""
    return sos / sos[..., 3:4]


def ref_bank(sos, x, zi=None):
    """scipy reference of a [C, S, 6] bank on x [..., T] (channel axis before time)."""
    ys, zfs = [], []
    sos = normalised(sos)
    for c in range(sos.shape[0]):
        if zi is None:
            ys.append(ss.sosfilt(sos[c], x, axis=-1))
        else:
            y, zf = ss.sosfilt(sos[c], x, axis=-1, zi=zi[:, ..., c, :])
            ys.append(y)
            zfs.append(zf)
    y = np.stack(ys, -2)
    return y if zi is None else (y, np.stack(zfs, -2))


def close(got, ref, tol=1e-12):
    got = np.asarray(got.detach() if isinstance(got, torch.Tensor) else got)
    scale = max(1.0, float(np.max(np.abs(ref))))
    err = float(np.max(np.abs(got - ref))) if ref.size else 0.0
    assert err <= tol * scale, (err, scale)


# ------------------------------------------------------------ vs scipy ---

@pytest.mark.parametrize("S", range(1, 9))
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_single_cascade_matches_scipy(S, kind):
    rng = np.random.default_rng(S)
    sos = random_sos(rng, (S,))
    x = rng.standard_normal((2, 3, 300))
    zi = rng.standard_normal((S, 2, 3, 2))
    conv = torch.from_numpy if kind == "torch" else (lambda v: v)
    ref = normalised(sos)
    close(sosfilt(conv(sos), conv(x)), ss.sosfilt(ref, x))
    y, zf = sosfilt(conv(sos), conv(x), zi=conv(zi))
    y_ref, zf_ref = ss.sosfilt(ref, x, zi=zi)
    close(y, y_ref)
    close(zf, zf_ref)
    # another axis: x [T, 2, 3]
    xt = np.moveaxis(x, -1, 0)
    zit = rng.standard_normal((S, 2, 2, 3))
    y, zf = sosfilt(conv(sos), conv(xt), axis=0, zi=conv(zit))
    y_ref, zf_ref = ss.sosfilt(ref, xt, axis=0, zi=zit)
    close(y, y_ref)
    close(zf, zf_ref)


@pytest.mark.parametrize("S", range(1, 9))
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_bank_matches_scipy(S, kind):
    rng = np.random.default_rng(10 + S)
    C = 5
    sos = random_sos(rng, (C, S))
    x = rng.standard_normal((3, 257))
    conv = torch.from_numpy if kind == "torch" else (lambda v: v)
    y = sosfilt(conv(sos), conv(x))
    assert tuple(y.shape) == (3, C, 257)
    close(y, ref_bank(sos, x))
    zi = rng.standard_normal((S, 3, C, 2))
    y, zf = sosfilt(conv(sos), conv(x), zi=conv(zi))
    y_ref, zf_ref = ref_bank(sos, x, zi)
    close(y, y_ref)
    close(zf, zf_ref)


@pytest.mark.parametrize("S", range(1, 9))
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_per_batch_banks_match_scipy(S, kind):
    rng = np.random.default_rng(20 + S)
    B, C = 3, 4
    sos = random_sos(rng, (B, C, S))
    x = rng.standard_normal((B, 200))
    zi = rng.standard_normal((S, B, C, 2))
    conv = torch.from_numpy if kind == "torch" else (lambda v: v)
    y, zf = sosfilt(conv(sos), conv(x), zi=conv(zi))
    for i in range(B):
        y_ref, zf_ref = ref_bank(sos[i], x[i], zi[:, i])
        close(y[i], y_ref)
        close(zf[:, i], zf_ref)
    # one signal for every bank
    y = sosfilt(conv(sos), conv(x[0]))
    for i in range(B):
        close(y[i], ref_bank(sos[i], x[0]))


def test_float32_and_chunks():
    rng = np.random.default_rng(3)
    sos = random_sos(rng, (3,))
    x = rng.standard_normal((2, 400))
    y32 = sosfilt(sos, x.astype(np.float32))
    assert y32.dtype == np.float32
    close(y32, ss.sosfilt(normalised(sos), x), tol=1e-5)
    # the final state of one chunk is the initial state of the next (also a 1-sample chunk)
    z = np.zeros((3, 2, 2))
    parts = []
    for lo, hi in ((0, 150), (150, 151), (151, 400)):
        y, z = sosfilt(sos, x[:, lo:hi], zi=z)
        parts.append(y)
    close(np.concatenate(parts, -1), ss.sosfilt(normalised(sos), x))


def test_state_singular_in_direct_form_ii():
    """A first-order section (a2 = 0, b2 = 0) with both scipy state values non-zero."""
    sos = np.array([[1.0, 0.5, 0.0, 1.0, -0.6, 0.0]])
    x = np.random.default_rng(0).standard_normal(50)
    zi = np.array([[0.7, -1.3]])
    y, zf = sosfilt(sos, x, zi=zi)
    y_ref, zf_ref = ss.sosfilt(sos, x, zi=zi)
    close(y, y_ref)
    close(zf, zf_ref)


def test_lazy_public_name():
    assert learnafe.sosfilt is sosfilt


# ------------------------------------------------------------ gradients ---

@pytest.mark.parametrize("shape,x_shape", [((2,), (2, 9)), ((3, 2), (2, 9)), ((2, 3, 2), (2, 9))])
def test_gradcheck_and_gradgradcheck(shape, x_shape):
    rng = np.random.default_rng(7)
    sos = torch.tensor(random_sos(rng, shape, radius=(0.2, 0.8)), requires_grad=True)
    x = torch.tensor(rng.standard_normal(x_shape), requires_grad=True)
    S = shape[-1]
    y_shape = sosfilt(sos.detach(), x.detach()).shape
    zi = torch.tensor(rng.standard_normal((S,) + tuple(y_shape[:-1]) + (2,)), requires_grad=True)

    def f(sos, x, zi):
        y, zf = sosfilt(sos, x, zi=zi)
        return y, zf

    assert torch.autograd.gradcheck(f, (sos, x, zi))
    assert torch.autograd.gradgradcheck(f, (sos, x, zi))
    assert torch.autograd.gradcheck(lambda s, v: sosfilt(s, v), (sos, x))


# --------------------------------------------------------------- errors ---

def test_errors_name_the_argument():
    rng = np.random.default_rng(1)
    sos = random_sos(rng, (2,))
    x = rng.standard_normal((2, 50))
    with pytest.raises(ValueError, match="sos must be"):
        sosfilt(sos[:, :5], x)
    with pytest.raises(TypeError, match="sos must be float32 or float64"):
        sosfilt(sos.astype(np.int64), x)
    with pytest.raises(TypeError, match="x is float64 but sos is float32; sos must be float64"):
        sosfilt(sos.astype(np.float32), x)
    with pytest.raises(TypeError, match="x is float32 but zi is float64"):
        sosfilt(sos, x.astype(np.float32), zi=np.zeros((2, 2, 2)))
    with pytest.raises(TypeError, match="pass all of"):
        sosfilt(torch.from_numpy(sos), x)
    bad = sos.copy()
    bad[1, 5] = 1.5 * bad[1, 3]
    with pytest.raises(ValueError, match="section 1 is unstable"):
        sosfilt(bad, x)
    bank = random_sos(rng, (3, 2))
    bank[2, 0, 4:6] = [0.0, bank[2, 0, 3]]  # a2 / a0 = 1: poles on the unit circle
    with pytest.raises(ValueError, match="channel 2, section 0 is unstable"):
        sosfilt(bank, x)
    with pytest.raises(ValueError, match="channel 2, section 0 is unstable"):
        sosfilt(torch.from_numpy(bank), torch.from_numpy(x))
    bad = sos.copy()
    bad[0, 3] = 0.0
    with pytest.raises(ValueError, match="a0 = 0"):
        sosfilt(bad, x)
    bad = sos.copy()
    bad[0, 1] = np.nan
    with pytest.raises(ValueError, match="sos contains non-finite"):
        sosfilt(bad, x)
    xn = x.copy()
    xn[1, 3] = np.inf
    with pytest.raises(ValueError, match="x contains non-finite"):
        sosfilt(sos, xn)
    with pytest.raises(ValueError, match="zi must have shape"):
        sosfilt(sos, x, zi=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="axis must be"):
        sosfilt(sos, x, axis=2)
    with pytest.raises(ValueError, match="no samples"):
        sosfilt(sos, x[:, :0])
    with pytest.raises(ValueError, match="x must be \\[B, T\\]"):
        sosfilt(random_sos(rng, (3, 2, 2)), x)


# ----------------------------------------------------- operator, compile ---

@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_opcheck_section_operator(dtype):
    from learnafe.ops import operators  # noqa: F401

    rng = np.random.default_rng(2)
    sos = random_sos(rng, (4, 1), radius=(0.2, 0.8))[:, 0]
    b = torch.tensor(sos[None, :, :3] / sos[None, :, 3:4], requires_grad=True)
    a = torch.tensor(sos[None, :, 4:] / sos[None, :, 3:4], requires_grad=True)
    for u_shape in ((3, 1, 30), (3, 4, 30)):
        u = torch.randn(u_shape, dtype=dtype, requires_grad=True)
        result = torch.library.opcheck(torch.ops.learnafe.sosfilt_section.default, (u, b, a, 0))
        assert all(v == "SUCCESS" for v in result.values()), result
    per_item = (b.detach().expand(3, 4, 3).clone().requires_grad_(True),
                a.detach().expand(3, 4, 2).clone().requires_grad_(True))
    u = torch.randn(3, 4, 30, dtype=dtype, requires_grad=True)
    result = torch.library.opcheck(torch.ops.learnafe.sosfilt_section.default, (u, *per_item, 1))
    assert all(v == "SUCCESS" for v in result.values()), result


def _cascade_args(rng, dtype, G, N, C, S, T, zi: bool):
    sos = random_sos(rng, (G, C, S), radius=(0.2, 0.85))
    b = torch.tensor(sos[..., :3] / sos[..., 3:4], requires_grad=True)
    a = torch.tensor(sos[..., 4:] / sos[..., 3:4], requires_grad=True)
    u = torch.randn(N, 1, T, dtype=dtype, requires_grad=True)
    z = torch.randn(N, C, S, 2, dtype=dtype, requires_grad=True) if zi else None
    return u, b, a, z


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_opcheck_cascade_operators(dtype):
    from learnafe.ops import cascade

    rng = np.random.default_rng(12)
    for G, zi in ((1, False), (3, True)):
        u, b, a, z = _cascade_args(rng, dtype, G, 3, 4, 3, 40, zi)
        for keep in (False, True):
            result = torch.library.opcheck(torch.ops.learnafe.sosfilt_cascade.default, (u, b, a, z, 1, keep))
            assert all(v == "SUCCESS" for v in result.values()), result
        gy, gzf = torch.randn(3, 4, 40, dtype=dtype), torch.randn(3, 4, 3, 2, dtype=dtype)
        args = (u.detach(), b.detach(), a.detach(), None if z is None else z.detach(), gy, gzf, 1)
        result = torch.library.opcheck(torch.ops.learnafe.sosfilt_cascade_backward.default, args,
                                       test_utils=("test_schema", "test_faketensor"))
        assert all(v == "SUCCESS" for v in result.values()), result
    assert set(cascade.OPS) == {"sosfilt_cascade", "sosfilt_cascade_backward"}


@pytest.mark.parametrize("G,zi", [(1, False), (1, True), (4, True)])
def test_fused_backward_equals_the_composed_one(G, zi):
    """The fused adjoint kernel (first-order gradients) against autograd through the composition of
    section operators that the double backward uses, float64."""
    from learnafe.ops.cascade import composed_cascade

    rng = np.random.default_rng(13)
    u, b, a, z = _cascade_args(rng, torch.float64, G, 4, 3, 4, 90, zi)
    inputs = [t for t in (u, b, a, z) if t is not None]
    gy, gzf = torch.randn(4, 3, 90, dtype=torch.float64), torch.randn(4, 3, 4, 2, dtype=torch.float64)
    y, zf, ck = torch.ops.learnafe.sosfilt_cascade(u, b, a, z, 2, True)
    assert ck.dtype == torch.float64 and not ck.requires_grad and ck.numel() > 0
    yc, zfc = composed_cascade(u, b, a, z, 2)
    torch.testing.assert_close(y, yc, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(zf, zfc, rtol=1e-12, atol=1e-12)
    fused = torch.autograd.grad((y, zf), inputs, (gy, gzf))
    composed = torch.autograd.grad((yc, zfc), inputs, (gy, gzf))
    for f, c in zip(fused, composed):
        torch.testing.assert_close(f, c, rtol=1e-10, atol=1e-10)


def test_compile_fullgraph_matches_eager():
    torch._dynamo.reset()
    rng = np.random.default_rng(4)
    sos = torch.tensor(random_sos(rng, (3, 2)), requires_grad=True)
    x = torch.tensor(rng.standard_normal((2, 64)), requires_grad=True)
    zi = torch.tensor(rng.standard_normal((2, 2, 3, 2)), requires_grad=True)

    def f(sos, x, zi):
        y, zf = sosfilt(sos, x, zi=zi)
        return (y ** 2).sum() + zf.sum()

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    loss_c = compiled(sos, x, zi)
    grads_c = torch.autograd.grad(loss_c, (sos, x, zi))
    loss_e = f(sos, x, zi)
    grads_e = torch.autograd.grad(loss_e, (sos, x, zi))
    torch.testing.assert_close(loss_c, loss_e)
    for gc, ge in zip(grads_c, grads_e):
        torch.testing.assert_close(gc, ge)
    torch._dynamo.reset()


def test_export_matches_eager():
    rng = np.random.default_rng(6)
    sos = torch.tensor(random_sos(rng, (3, 2)))
    zi = torch.tensor(rng.standard_normal((2, 2, 3, 2)))  # (S, B, C, 2)

    class Bank(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.sos = torch.nn.Parameter(sos.clone())

        def forward(self, x, zi):
            y, zf = sosfilt(self.sos, x, zi=zi)
            return y, zf

    module = Bank()
    x = torch.tensor(rng.standard_normal((2, 80)))
    program = torch.export.export(module, (x, zi))
    names = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert any("learnafe.sosfilt_cascade" in n for n in names), names
    x2 = torch.tensor(rng.standard_normal((2, 80)))
    for inp in (x, x2):
        y_e, zf_e = module(inp, zi)
        y_x, zf_x = program.module()(inp, zi)
        torch.testing.assert_close(y_x, y_e, rtol=0, atol=0)
        torch.testing.assert_close(zf_x, zf_e, rtol=0, atol=0)
    y_ref, zf_ref = ref_bank(sos.numpy(), x2.numpy(), zi.numpy())
    y_x, zf_x = program.module()(x2, zi)
    np.testing.assert_allclose(y_x.detach().numpy(), y_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(zf_x.detach().numpy(), zf_ref, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------ bench section ---

def test_quick_bench_section_reports_every_path():
    from types import SimpleNamespace

    from learnafe.benchmarks import load_section

    section = load_section("sosfilt")
    res = section.run(SimpleNamespace(quick=True, threads=1, seed=0))
    assert [r["sections"] for r in res["rows"]] == [1, 2, 4]
    for r in res["rows"]:
        assert all(t > 0 for t in r["seconds"].values()), r
        assert r["forward_vs_scipy"] == r["seconds"]["scipy sosfilt"] / r["seconds"]["sosfilt forward"]
    assert res["ratios"]["S4.forward_vs_scipy"] == res["rows"][2]["forward_vs_scipy"]
    assert res["ratios"]["S1.forward_backward_vs_scipy_forward"] == res["rows"][0]["forward_backward_vs_scipy_forward"]
    text = section.format(res)
    assert "targets at S=4" in text and "fwd/scipy" in text and "f+b/loop" in text
    if res["torchlpc"] != "ran":
        assert "torchlpc: skipped" in text


def test_isa_comparison_has_sosfilt_rows():
    from learnafe.benchmarks._isa import PathRun, comparison

    result = {"environment": {}, "rows": [], "ratios": {"S4.forward_vs_scipy": 6.0}}
    table = comparison([PathRun("avx2", True, {"sosfilt": result}),
                        PathRun("avx512", True, {"sosfilt": {**result, "ratios": {"S4.forward_vs_scipy": 9.0}}})])
    assert table["rows"]["sosfilt.S4.forward_vs_scipy"] == {"avx2": 6.0, "avx512": 9.0}


def test_result_does_not_depend_on_threads():
    rng = np.random.default_rng(9)
    for shape, x_shape in (((4, 3), (3, 500)), ((2, 4, 3), (2, 500))):
        sos = random_sos(rng, shape)
        x = rng.standard_normal(x_shape)
        np.testing.assert_array_equal(sosfilt(sos, x, num_threads=1), sosfilt(sos, x, num_threads=3))
