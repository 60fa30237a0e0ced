"""pytest-benchmark timings of the XyloAudio 3 bank and spike features
(``pytest bench/bench_xylo.py``): the bank, the fused audio -> spike-count
path, the two-step path, and rockpool's python paths (bank; AFESim chain).

Signals: 8 x 48,000 samples of full-scale 14-bit noise.  Throughput in output
sample-channels per second is printed in the benchmark's ``extra_info``;
``learnafe bench --only xylo`` reports the same comparison in one run.
"""

import numpy as np
import pytest

from learnafe.xylo import XyloA3FilterBank

FULL = (1 << 13) - 1


def _record_rate(benchmark, sample_channels: int) -> None:
    """Throughput from the fastest round (absent when run with --benchmark-disable)."""
    stats = getattr(benchmark, "stats", None)
    if stats:
        benchmark.extra_info["sample_channels_per_s"] = sample_channels / stats["min"]


@pytest.fixture(scope="module")
def signals():
    return np.random.default_rng(0).integers(-FULL, FULL + 1, size=(8, 48000))


@pytest.mark.parametrize("threads", [1, 2])
def test_xylo_kernel(benchmark, signals, threads):
    bank = XyloA3FilterBank.default()
    benchmark(bank.filter, signals, prepend_reversed=True, num_threads=threads)
    _record_rate(benchmark, signals.size * 16)


def test_xylo_spike_raster(benchmark, signals):
    from learnafe.xylo.features import spike_raster

    y = XyloA3FilterBank.default().filter(signals[:4], prepend_reversed=True)
    benchmark(spike_raster, y)
    _record_rate(benchmark, y.size)


@pytest.mark.parametrize("threads", [1, 2])
def test_xylo_spike_features_fused(benchmark, signals, threads):
    """Audio -> spike counts in one pass; checked against the two-step path."""
    from learnafe.xylo.features import spike_features, spike_raster

    bank = XyloA3FilterBank.default()
    counts = benchmark(spike_features, signals, bank, num_threads=threads)
    np.testing.assert_array_equal(counts[:2], spike_raster(bank.filter(signals[:2], prepend_reversed=True)))
    _record_rate(benchmark, signals.size * 16)


def test_xylo_spike_features_two_step(benchmark, signals):
    from learnafe.xylo.features import spike_raster

    bank = XyloA3FilterBank.default()
    benchmark(lambda: spike_raster(bank.filter(signals, prepend_reversed=True)))
    _record_rate(benchmark, signals.size * 16)


@pytest.fixture(scope="module")
def ref_mod():
    """The rockpool reference module (skips when rockpool is not installed)."""
    mod = pytest.importorskip("learnafe.xylo.reference")
    if not mod.rockpool_available():
        pytest.skip("rockpool is not installed")
    return mod


def test_rockpool_python_path(benchmark, signals, ref_mod):
    ref = ref_mod.reference_filterbank()
    x = signals[0, :10000]
    benchmark.pedantic(ref_mod.reference_filter, args=(ref, x), rounds=2, iterations=1)
    _record_rate(benchmark, x.size * 16)


def test_rockpool_afesim_python_path(benchmark, signals, ref_mod):
    from learnafe.xylo.features import SpikeConfig, spike_features

    ref = ref_mod.reference_filterbank()
    x = signals[0, :4000]
    counts = benchmark.pedantic(ref_mod.reference_features, args=(ref, x, SpikeConfig()),
                                rounds=2, iterations=1)
    np.testing.assert_array_equal(counts, spike_features(x))
    _record_rate(benchmark, x.size * 16)
