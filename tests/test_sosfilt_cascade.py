"""The fused cascade kernel (cpp/sosfilt_cascade.cpp) against scipy.signal.sosfilt (forward, float64 and
float32 signals) and central finite differences (backward), and its independence of the thread count."""

import numpy as np
import pytest

scipy_signal = pytest.importorskip("scipy.signal")
from learnafe.ops.extension import core as _core  # noqa: E402


def _sos(rng, shape, S):
    """Random stable sections [*shape, S, 6] (poles of radius 0.3..0.9)."""
    r = rng.uniform(0.3, 0.9, shape + (S,))
    th = rng.uniform(0.1, 3.0, shape + (S,))
    sos = np.empty(shape + (S, 6))
    sos[..., :3] = rng.normal(size=shape + (S, 3))
    sos[..., 3] = 1.0
    sos[..., 4] = -2 * r * np.cos(th)
    sos[..., 5] = r * r
    return sos


def _forward(u, sos, zi, threads):
    B, C, S = u.shape[0], sos.shape[1], sos.shape[2]
    T = u.shape[-1]
    y, zf = np.empty((B, C, T), u.dtype), np.empty((B, C, S, 2), u.dtype)
    fn = _core.sosfilt_forward_f64 if u.dtype == np.float64 else _core.sosfilt_forward_f32
    fn(u, np.ascontiguousarray(sos[..., :3]), np.ascontiguousarray(sos[..., 4:]), zi, y, zf, threads)
    return y, zf


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("S", [1, 2, 3, 4, 5, 8])
@pytest.mark.parametrize("B,Cu,C,G", [(3, 1, 5, 1), (3, 5, 5, 3), (2, 11, 11, 1), (2, 1, 9, 2)])
def test_forward_matches_scipy_per_signal(dtype, tol, S, B, Cu, C, G):
    rng = np.random.default_rng(S * 100 + C)
    T = 203
    sos = _sos(rng, (G, C), S)
    u = rng.normal(size=(B, Cu, T)).astype(dtype)
    zi = rng.normal(size=(B, C, S, 2)).astype(dtype)
    y, zf = _forward(u, sos, zi, 2)
    for i in range(B):
        for c in range(C):
            yr, zr = scipy_signal.sosfilt(sos[0 if G == 1 else i, c], u[i, 0 if Cu == 1 else c].astype(np.float64),
                                          zi=zi[i, c].astype(np.float64))
            assert np.abs(y[i, c] - yr).max() <= tol * np.abs(yr).max()
            assert np.abs(zf[i, c] - zr).max() <= tol * 10 * max(1.0, np.abs(zr).max())


@pytest.mark.parametrize("B,Cu,C,G,S,T", [(2, 1, 9, 1, 3, 150), (2, 5, 5, 2, 5, 70), (3, 1, 3, 3, 1, 9)])
def test_backward_matches_finite_differences(B, Cu, C, G, S, T):
    rng = np.random.default_rng(T)
    sos = _sos(rng, (G, C), S)
    b, a = np.ascontiguousarray(sos[..., :3]), np.ascontiguousarray(sos[..., 4:])
    u, zi = rng.normal(size=(B, Cu, T)), rng.normal(size=(B, C, S, 2))
    gy, gzf = rng.normal(size=(B, C, T)), rng.normal(size=(B, C, S, 2))

    def loss(u, b, a, zi):
        y, zf = np.empty((B, C, T)), np.empty((B, C, S, 2))
        _core.sosfilt_forward_f64(u, b, a, zi, y, zf, 1)
        return float((y * gy).sum() + (zf * gzf).sum())

    grads = {"u": np.empty_like(u), "b": np.empty_like(b), "a": np.empty_like(a), "zi": np.empty_like(zi)}
    _core.sosfilt_backward_f64(u, b, a, zi, gy, gzf, grads["u"], grads["b"], grads["a"], grads["zi"], 2)
    args = {"u": u, "b": b, "a": a, "zi": zi}
    eps = 1e-6
    for name, v in args.items():
        ref = np.zeros_like(v)
        for idx in np.ndindex(v.shape):
            vp, vm = v.copy(), v.copy()
            vp[idx] += eps
            vm[idx] -= eps
            ref[idx] = (loss(**{**args, name: vp}) - loss(**{**args, name: vm})) / (2 * eps)
        assert np.abs(grads[name] - ref).max() <= 1e-7 * np.abs(ref).max(), name


def test_results_do_not_depend_on_threads():
    rng = np.random.default_rng(7)
    B, C, S, T = 4, 19, 4, 1000
    sos = _sos(rng, (1, C), S)
    u = rng.normal(size=(B, 1, T))
    y1, z1 = _forward(u, sos, None, 1)
    y2, z2 = _forward(u, sos, None, 3)
    assert np.array_equal(y1, y2) and np.array_equal(z1, z2)
    b, a = np.ascontiguousarray(sos[..., :3]), np.ascontiguousarray(sos[..., 4:])
    gy = rng.normal(size=(B, C, T))
    outs = []
    for threads in (1, 3):
        g = (np.empty_like(u), np.empty_like(b), np.empty_like(a))
        _core.sosfilt_backward_f64(u, b, a, None, gy, None, g[0], g[1], g[2], None, threads)
        outs.append(g)
    assert all(np.array_equal(p, q) for p, q in zip(*outs))


def test_results_are_bitwise_the_same_on_every_isa(tmp_path):
    from isa_helpers import assert_same_on_every_isa

    code = """
import sys
import numpy as np
from learnafe import ops
from learnafe.ops import kernels
rng = np.random.default_rng(11)
out = {}
for name, (B, Cu, C, G, S, T) in {"shared": (3, 1, 13, 1, 5, 301), "per": (2, 6, 6, 2, 4, 130)}.items():
    r = rng.uniform(0.3, 0.95, (G, C, S))
    th = rng.uniform(0.1, 3.0, (G, C, S))
    b = rng.normal(size=(G, C, S, 3))
    a = np.stack([-2 * r * np.cos(th), r * r], -1)
    for dt in (np.float32, np.float64):
        u = rng.normal(size=(B, Cu, T)).astype(dt)
        zi = rng.normal(size=(B, C, S, 2)).astype(dt)
        y, zf = kernels.cascade_forward(u, b, a, zi, 2)
        gy = rng.normal(size=y.shape).astype(dt)
        gzf = rng.normal(size=zf.shape).astype(dt)
        gu, gb, ga, gzi = kernels.cascade_backward(u, b, a, zi, gy, gzf, 2)
        k = f"{name}_{np.dtype(dt).name}"
        out.update({k + "_y": y, k + "_zf": zf, k + "_gu": gu, k + "_gb": gb, k + "_ga": ga, k + "_gzi": gzi})
        # the autograd path: the forward keeps the block checkpoints, the backward reads them
        ck = np.empty(kernels.cascade_checkpoint_size(B, C, T, S))
        y2, zf2 = kernels.cascade_forward(u, b, a, zi, 2, ck)
        assert np.array_equal(y2, y) and np.array_equal(zf2, zf)
        for v, w in zip((gu, gb, ga, gzi), kernels.cascade_backward(u, b, a, zi, gy, gzf, 2, ck)):
            assert np.array_equal(v, w)
        out[k + "_ck"] = ck
np.savez(sys.argv[1], **out)
print(ops.kernel_isa())
"""
    keys = [f"{n}_{d}_{v}" for n in ("shared", "per") for d in ("float32", "float64")
            for v in ("y", "zf", "gu", "gb", "ga", "gzi", "ck")]
    assert_same_on_every_isa(code, tmp_path, keys)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("B,Cu,C,G,S,T", [(3, 1, 16, 1, 4, 1000), (2, 3, 3, 2, 5, 64), (2, 1, 9, 1, 2, 65),
                                          (1, 1, 5, 1, 1, 1)])
def test_kept_checkpoints_give_the_same_backward(dtype, B, Cu, C, G, S, T):
    """The block checkpoints the forward keeps (the autograd path) against the backward's own first
    pass: bitwise the same outputs and gradients, for 1 and 3 threads; the checkpoint size of
    kernels.cascade_checkpoint_size is the kernel's."""
    from learnafe.ops import kernels

    rng = np.random.default_rng(T + S)
    sos = _sos(rng, (G, C), S)
    b, a = np.ascontiguousarray(sos[..., :3]), np.ascontiguousarray(sos[..., 4:])
    u, zi = rng.normal(size=(B, Cu, T)).astype(dtype), rng.normal(size=(B, C, S, 2)).astype(dtype)
    gy, gzf = rng.normal(size=(B, C, T)).astype(dtype), rng.normal(size=(B, C, S, 2)).astype(dtype)
    size = kernels.cascade_checkpoint_size(B, C, T, S)
    assert size == _core.sosfilt_checkpoint_size(B, C, T, S)
    y, zf = kernels.cascade_forward(u, b, a, zi, 1)
    ref = kernels.cascade_backward(u, b, a, zi, gy, gzf, 1)
    for threads in (1, 3):
        ck = np.full(size, np.nan)
        y2, zf2 = kernels.cascade_forward(u, b, a, zi, threads, ck)
        assert np.array_equal(y, y2) and np.array_equal(zf, zf2)
        assert np.isfinite(ck).all()  # every checkpoint written (padding lanes hold zeros)
        for v, w in zip(ref, kernels.cascade_backward(u, b, a, zi, gy, gzf, threads, ck)):
            assert np.array_equal(v, w)
    with pytest.raises(ValueError, match="ck"):
        kernels.cascade_forward(u, b, a, zi, 1, np.empty(size + 1))
