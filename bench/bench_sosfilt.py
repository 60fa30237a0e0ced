"""pytest-benchmark timings of :func:`learnafe.sosfilt` and its baselines.

Run with ``pytest bench/bench_sosfilt.py`` (``--benchmark-json PATH`` to keep
the numbers).  Sizes: a bank ``sos [C=16, S, 6]`` (Butterworth band-passes of
order S) on a float32 ``[B=8, T=20000]`` batch for S = 1, 2, 4 (a quarter of
the ``learnafe bench`` batch, so the file runs in about a minute).  Timed
alongside: scipy ``sosfilt`` (one call per channel) and a plain PyTorch loop
over time (first 200 samples).  Every benchmark checks its result against
scipy, so a broken op cannot produce a timing.  ``learnafe bench --only
sosfilt`` prints the same comparisons as ratios from one run.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as ss
import torch

from learnafe import sosfilt
from learnafe.benchmarks.sosfilt import bank, torch_loop

B, C, T, LOOP = 8, 16, 20000, 200


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).standard_normal((B, T)).astype(np.float32)


def _ref(sos, x):
    return np.stack([ss.sosfilt(sos[c], x.astype(np.float64)) for c in range(C)], -2)


@pytest.mark.parametrize("S", [1, 2, 4])
def test_sosfilt_forward(benchmark, x, S):
    sos = torch.from_numpy(bank(C, S))
    xt = torch.from_numpy(x)
    with torch.no_grad():
        y = benchmark(sosfilt, sos, xt)
    ref = _ref(sos.numpy(), x)
    np.testing.assert_allclose(y.numpy(), ref, rtol=0, atol=1e-4 * np.abs(ref).max())


@pytest.mark.parametrize("S", [1, 2, 4])
def test_sosfilt_forward_backward(benchmark, x, S):
    sos = torch.from_numpy(bank(C, S)).requires_grad_(True)
    xt = torch.from_numpy(x).requires_grad_(True)
    g = torch.from_numpy(np.random.default_rng(1).standard_normal((B, C, T)).astype(np.float32))

    def step():
        sos.grad = xt.grad = None
        sosfilt(sos, xt).backward(g)

    benchmark(step)
    assert sos.grad is not None and bool(torch.isfinite(sos.grad).all())


@pytest.mark.parametrize("S", [1, 2, 4])
def test_scipy_sosfilt_forward(benchmark, x, S):
    sos = bank(C, S)
    ys = benchmark(lambda: [ss.sosfilt(sos[c], x) for c in range(C)])
    assert len(ys) == C and ys[0].shape == (B, T)


@pytest.mark.parametrize("S", [1, 4])
def test_torch_loop_forward(benchmark, x, S):
    sos = torch.from_numpy(bank(C, S)).float()
    xt = torch.from_numpy(x[:, :LOOP])
    with torch.no_grad():
        y = benchmark(torch_loop, sos, xt)
    ref = _ref(bank(C, S), x[:, :LOOP])
    np.testing.assert_allclose(y.numpy(), ref, rtol=0, atol=1e-4 * np.abs(ref).max())
