"""pytest-benchmark timings of the biquad filter-bank op and its baselines.

Run with ``pytest bench/bench_ops.py`` (``--benchmark-json PATH`` to keep the
numbers).  Sizes: B=16, T=20000, C=16 float32 (half of the ``learnafe
bench`` batch, so the file runs in well under a minute).  The alternatives a
user would pick are timed alongside: scipy ``sosfilt``, a plain PyTorch loop
over time (first 1000 samples), torchlpc's all-pole filter (skipped when
torchlpc is not installed), and the memory limit: filling a preallocated
output of the op's size.  Every benchmark also checks its result, so a
broken op cannot produce a timing.  ``learnafe bench --only ops`` prints the
same comparisons as ratios from one run.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as ss
import torch

from learnafe import ops
from learnafe.benchmarks._ops_reference import SAMPLE_RATE, bank, torch_loop, torchlpc_allpole, unfused_envelope

B, T, C, HOP, TAU = 16, 20000, 16, 200, 0.01


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    b, a = bank(C)
    x = rng.standard_normal((B, T)).astype(np.float32)
    return x, b, a


def _grad_inputs(x, b, a):
    return (torch.tensor(x, requires_grad=True), torch.tensor(b, requires_grad=True),
            torch.tensor(a, requires_grad=True))


def test_op_forward(benchmark, data):
    x, b, a = data
    y = benchmark(ops.biquad_filterbank, x, b, a)
    ref = ss.sosfilt(np.r_[b[3], 1.0, a[3]][None], x[2].astype(np.float64))
    np.testing.assert_allclose(y[2, 3], ref, rtol=0, atol=1e-5 * np.abs(ref).max())


def test_scipy_sosfilt_forward(benchmark, data):
    x, b, a = data
    sos = [np.r_[b[c], 1.0, a[c]][None] for c in range(C)]
    ys = benchmark(lambda: [ss.sosfilt(s, x, axis=-1) for s in sos])
    assert len(ys) == C and ys[0].shape == (B, T)


def test_fill_output(benchmark, data):
    """The memory limit: writing an output of the op's size once."""
    y = torch.empty(B, C, T)
    benchmark(y.fill_, 1.0)
    assert float(y[3, 5, 7]) == 1.0


def test_torch_loop_forward(benchmark, data):
    x, b, a = data
    xt, bt, at = torch.tensor(x[:, :1000]), torch.tensor(b).float(), torch.tensor(a).float()
    with torch.no_grad():
        y = benchmark(torch_loop, xt, bt, at)
    ref = ops.biquad_filterbank(x[:, :1000], b, a)
    np.testing.assert_allclose(y.numpy(), ref, rtol=0, atol=1e-4 * np.abs(ref).max())


def test_torchlpc_allpole_forward(benchmark, data):
    pytest.importorskip("torchlpc", reason="torchlpc is optional (pip install torchlpc)")
    x, b, a = data
    xt, at = torch.tensor(x), torch.tensor(a).float()
    with torch.no_grad():
        v = benchmark(torchlpc_allpole, xt, at)
    # the all-pole part is the op with b = (1, 0, 0)
    ref = ops.biquad_filterbank(x, np.tile([1.0, 0.0, 0.0], (C, 1)), a)
    np.testing.assert_allclose(v.numpy(), ref, rtol=0, atol=1e-3 * np.abs(ref).max())


def test_torchlpc_allpole_forward_backward(benchmark, data):
    pytest.importorskip("torchlpc", reason="torchlpc is optional (pip install torchlpc)")
    x, b, a = data
    xt, at = torch.tensor(x, requires_grad=True), torch.tensor(a).float().requires_grad_(True)
    g = torch.randn(B, C, T, generator=torch.Generator().manual_seed(1))

    def step():
        xt.grad = at.grad = None
        torchlpc_allpole(xt, at).backward(g)
        return xt.grad

    gx = benchmark(step)
    assert gx.shape == (B, T) and torch.isfinite(gx).all()


def test_op_forward_backward(benchmark, data):
    xt, bt, at = _grad_inputs(*data)
    g = torch.randn(B, C, T, generator=torch.Generator().manual_seed(1))

    def step():
        xt.grad = bt.grad = at.grad = None
        ops.biquad_filterbank(xt, bt, at).backward(g)
        return xt.grad

    gx = benchmark(step)
    assert gx.shape == (B, T) and torch.isfinite(gx).all() and bt.grad.abs().sum() > 0


@pytest.mark.parametrize("path", ["fused", "unfused"])
def test_envelope_forward_backward(benchmark, data, path):
    xt, bt, at = _grad_inputs(*data)
    g = torch.randn(B, C, T // HOP, generator=torch.Generator().manual_seed(2))
    fn = ops.filterbank_envelope if path == "fused" else unfused_envelope

    def step():
        xt.grad = bt.grad = at.grad = None
        out = fn(xt, bt, at, hop=HOP, tau=TAU, sample_rate=SAMPLE_RATE)
        out.backward(g)
        return out

    out = benchmark(step)
    assert out.shape == (B, C, T // HOP) and torch.isfinite(xt.grad).all()
