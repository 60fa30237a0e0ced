"""XyloAudio 3 spike features against rockpool's python spike generator and Raster."""

import numpy as np
import pytest

from learnafe.xylo.bank import XyloA3FilterBank, quantize_audio, resample_to_chip
from learnafe.xylo.design import XYLO_SAMPLE_RATE
from learnafe.xylo.features import SpikeConfig, XyloA3SpikeFeatures, spike_raster

ref_mod = pytest.importorskip("learnafe.xylo.reference")
if not ref_mod.rockpool_available():
    pytest.skip("rockpool is not installed (pip install rockpool)", allow_module_level=True)


def _reference_raster(y, cfg):
    """rockpool's spike generator (python branch) and Raster, as the reference module runs them."""
    return ref_mod.reference_spike_raster(y, cfg)


def _speechlike(rng, T):
    t = np.arange(T) / XYLO_SAMPLE_RATE
    env = 0.5 * (1 + np.sin(2 * np.pi * 3 * t))
    x = env * (0.5 * np.sin(2 * np.pi * 300 * t) + 0.3 * np.sin(2 * np.pi * 2400 * t)) \
        + 0.05 * rng.standard_normal(T)
    return quantize_audio(x / np.abs(x).max())


@pytest.mark.parametrize("cfg", [
    SpikeConfig(),
    SpikeConfig(rate_scale_bitshift=(5, 2), low_pass_bitshift=8, eps=32, down_sampling_factor=37),
    SpikeConfig(mode="threshold", fixed_threshold=1 << 22, down_sampling_factor=64, max_spikes=7),
    SpikeConfig(joint_normalization=False, low_pass_bitshift=6, down_sampling_factor=1),
])
def test_spikes_match_rockpool(cfg):
    rng = np.random.default_rng(0)
    x = _speechlike(rng, 4111)  # not a multiple of the raster factors
    bank = XyloA3FilterBank.default()
    y = bank.filter(x, prepend_reversed=True)[0]
    ours = spike_raster(y, cfg)
    ref = _reference_raster(y, cfg)
    assert ours.shape == ref.shape == (16, -(-4111 // cfg.down_sampling_factor))
    np.testing.assert_array_equal(ours, ref)
    assert ours.sum() > 0


def test_batch_and_frontend():
    rng = np.random.default_rng(1)
    xs = np.stack([_speechlike(rng, 3000), quantize_audio(0.3 * rng.standard_normal(3000))])
    feats = XyloA3SpikeFeatures()
    counts = feats.from_quantized(xs)
    assert counts.shape == (2, 16, 60) and counts.dtype == np.int64
    np.testing.assert_array_equal(counts[1], feats.from_quantized(xs[1]))
    assert counts.max() <= 15 and counts.min() >= 0
    # tone at 2 kHz -> the channel centred there fires most (fixed thresholds).
    audio = 0.8 * np.sin(2 * np.pi * 2100 * np.arange(20000) / 20000.0)
    fixed = XyloA3SpikeFeatures(config=SpikeConfig(mode="threshold"))
    c = fixed(audio, 20000.0)
    assert int(np.argmax(c.sum(axis=1))) == 9


def test_resample_to_chip_rate():
    sr = 20000.0
    t = np.arange(20000) / sr
    x = np.sin(2 * np.pi * 1000 * t)
    y = resample_to_chip(x, sr)
    assert y.shape[-1] == -(-20000 * 625 // 256)  # ceil(T * up / down), ratio 625/256
    tc = np.arange(y.shape[-1]) / XYLO_SAMPLE_RATE
    mid = slice(2000, -2000)
    np.testing.assert_allclose(y[mid], np.sin(2 * np.pi * 1000 * tc)[mid], atol=2e-3)


def test_spike_errors():
    with pytest.raises(ValueError, match="mode"):
        SpikeConfig(mode="x")
    with pytest.raises(ValueError, match="b2 < b1"):
        SpikeConfig(rate_scale_bitshift=(2, 3))
    with pytest.raises(ValueError, match="integer output"):
        spike_raster(np.zeros((2, 10)))
    with pytest.raises(ValueError, match=r"SpikeConfig.eps must be one integer or one per channel \(2\)"):
        spike_raster(np.zeros((2, 10), dtype=np.int64), SpikeConfig(eps=(1, 2, 3)))


# --- audio -> counts in one pass (filter bank fused with the spike generator) ---

_FUSED_CONFIGS = [
    SpikeConfig(),
    SpikeConfig(rate_scale_bitshift=(5, 2), low_pass_bitshift=8, eps=32, down_sampling_factor=37),
    SpikeConfig(mode="threshold", fixed_threshold=1 << 22, down_sampling_factor=64, max_spikes=7),
    SpikeConfig(joint_normalization=False, low_pass_bitshift=6, down_sampling_factor=1),
]


@pytest.mark.parametrize("cfg", _FUSED_CONFIGS)
def test_fused_features_match_rockpool(cfg):
    """Audio -> counts in one call equals rockpool's filter bank -> spike generator -> Raster."""
    from learnafe.xylo.features import spike_features

    rng = np.random.default_rng(3)
    x = _speechlike(rng, 2777)
    ref_y = ref_mod.reference_filter(ref_mod.reference_filterbank(), x)
    ref = _reference_raster(ref_y, cfg)
    ours = spike_features(x, XyloA3FilterBank.default(), cfg)
    assert ours.shape == ref.shape == (16, -(-2777 // cfg.down_sampling_factor))
    np.testing.assert_array_equal(ours, ref)
    assert ours.sum() > 0


@pytest.mark.parametrize("batch,T", [(1, 1), (1, 63), (2, 64), (3, 1000), (5, 4111)])
@pytest.mark.parametrize("cfg", _FUSED_CONFIGS)
def test_fused_features_equal_two_step_path(batch, T, cfg):
    """The fused path equals filter -> spike_raster for every batch size and length
    (block boundaries of the kernel: 64 samples), 1 to 3 threads, and banks of
    fewer channels."""
    from learnafe.xylo.features import spike_features

    rng = np.random.default_rng(batch * 1000 + T)
    x = np.stack([_speechlike(rng, T) if T > 1 else quantize_audio(rng.uniform(-1, 1, T))
                  for _ in range(batch)])
    x[-1] = quantize_audio(0.5 * rng.standard_normal(T).clip(-2, 2) / 2)
    for bank in (XyloA3FilterBank.default(), XyloA3FilterBank.default().select([0, 5, 9, 15, 3])):
        two_step = spike_raster(bank.filter(x, prepend_reversed=True), cfg)
        for threads in (1, 2, 3):
            fused = spike_features(x, bank, cfg, num_threads=threads)
            np.testing.assert_array_equal(fused, two_step)
        np.testing.assert_array_equal(spike_features(x[0], bank, cfg), two_step[0])
    feats = XyloA3SpikeFeatures(config=cfg)
    np.testing.assert_array_equal(feats.from_quantized(x), spike_raster(
        feats.bank.filter(x, prepend_reversed=True), cfg))


def test_fused_features_overflow_and_errors():
    from learnafe.xylo.bank import XyloOverflowError
    from learnafe.xylo.design import XyloChannel
    from learnafe.xylo.features import spike_features

    bank = XyloA3FilterBank.default()
    # |x| >= 2^13 is an input overflow: raised like bank.filter, or reported
    x = np.zeros((2, 500), dtype=np.int64)
    x[1, 100] = 1 << 13
    with pytest.raises(XyloOverflowError, match="input overflow in signal 1"):
        spike_features(x, bank)
    with pytest.raises(XyloOverflowError, match="input overflow in signal 1"):
        bank.filter(x, prepend_reversed=True)
    counts = spike_features(x, bank, overflow="report")
    np.testing.assert_array_equal(counts, spike_raster(
        bank.filter(x, prepend_reversed=True, overflow="report"), SpikeConfig()))
    # an AR-state overflow (B_worst_case too small for a loud tone)
    tight = XyloA3FilterBank([XyloChannel(0, *row[1:]) for row in
                              [(7, 8, 6, -32694, 16313, 0.5573)]])
    tone = quantize_audio(0.99 * np.sin(2 * np.pi * 100 * np.arange(3000) / XYLO_SAMPLE_RATE))
    with pytest.raises(XyloOverflowError):
        tight.filter(tone, prepend_reversed=True)
    with pytest.raises(XyloOverflowError):
        spike_features(tone, tight)
    with pytest.raises(ValueError, match="integer array"):
        spike_features(np.zeros(10), bank)
    with pytest.raises(ValueError, match="overflow must be"):
        spike_features(np.zeros(10, dtype=np.int64), bank, overflow="x")


@pytest.mark.parametrize("isa", ["avx2", "generic"])
def test_fused_features_equal_on_every_isa_path(tmp_path, isa):
    """The fused features on the AVX2 and generic paths (forced with LEARNAFE_ISA, in a
    subprocess) equal the default path's, for every configuration and a bank of
    fewer channels."""


    rng = np.random.default_rng(21)
    x = np.stack([_speechlike(rng, 1500) for _ in range(3)])
    code = ("import numpy as np, sys; from learnafe.xylo.bank import XyloA3FilterBank as B; "
            "from learnafe.xylo.features import spike_features; "
            "from tests.test_xylo_features import _FUSED_CONFIGS as cfgs; x = np.load(sys.argv[1]); "
            "out = {f'{i}{n}': spike_features(x, b, c) for i, c in enumerate(cfgs) "
            "for n, b in (('full', B.default()), ('five', B.default().select([0, 5, 9, 15, 3])))}; "
            "np.savez(sys.argv[2], **out)")
    other = _run_on_isa(code, isa, x, tmp_path)
    from learnafe.xylo.features import spike_features
    for i, cfg in enumerate(_FUSED_CONFIGS):
        for name, bank in (("full", XyloA3FilterBank.default()),
                           ("five", XyloA3FilterBank.default().select([0, 5, 9, 15, 3]))):
            ours = spike_features(x, bank, cfg)
            assert ours.sum() > 0
            np.testing.assert_array_equal(other[f"{i}{name}"], ours)


def test_fused_features_fall_back_per_signal():
    """The fused path's int32 stage holds |y| only while every lane's state stays below
    2^30 and the signal's input is in range; a signal beyond (an input overflow next to
    clean signals of the same unit, a channel whose state grows without bound) is
    computed through the int64 filter output instead: counts and overflow reports equal
    the two-step path's, at 1 and 2 threads."""
    import dataclasses

    from learnafe.xylo import kernel
    from learnafe.xylo.features import _spike_args, spike_features

    base = XyloA3FilterBank.default().channels
    unstable = XyloA3FilterBank([dataclasses.replace(base[0], a2=-16000)] + list(base[1:]))
    rng = np.random.default_rng(5)
    x = np.stack([_speechlike(rng, 3000) for _ in range(5)])
    x[1, 700] = 1 << 13  # input overflow in the second signal of a unit
    cfg = SpikeConfig()
    for bank in (XyloA3FilterBank.default(), unstable):
        y, kind, where = bank.filter(x, prepend_reversed=True, overflow="report", return_overflow=True)
        two_step = spike_raster(y, cfg)
        for threads in (1, 2):
            np.testing.assert_array_equal(
                spike_features(x, bank, cfg, overflow="report", num_threads=threads), two_step)
            _, k2, w2 = kernel._core.xylo_spike_features(
                x, *kernel.kernel_columns(bank.channels), *_spike_args(cfg, len(bank)), True, threads)
            np.testing.assert_array_equal(k2, kind)
            np.testing.assert_array_equal(w2, where)
        assert (kind[1] == 1).all()
    assert (kind[[0, 2, 3, 4], 0] == 2).all()  # the unstable lane's state overflows (and grows on)


def _threshold_path_configs(C):
    """Configurations that select each threshold form of the vector spike generators
    (cpp/xylo_spike_lanes.cpp): one eps and rate shifts for every channel (the uniform
    path: the joint threshold formed once from the largest power estimate), eps per channel
    (the joint maximum of the per-channel thresholds), per-channel and fixed thresholds."""
    per_channel_eps = tuple(int(v) for v in np.geomspace(1, 1 << 17, C))
    return {
        "uniform": SpikeConfig(),
        "uniform_eps": SpikeConfig(rate_scale_bitshift=(5, 2), low_pass_bitshift=8, eps=1 << 12,
                                   down_sampling_factor=37),
        "joint_eps": SpikeConfig(eps=per_channel_eps, low_pass_bitshift=10),
        "own": SpikeConfig(joint_normalization=False, eps=per_channel_eps, down_sampling_factor=20),
        "fixed": SpikeConfig(mode="threshold", fixed_threshold=1 << 22, down_sampling_factor=64),
    }


def _run_on_isa(code: str, isa: str, x: np.ndarray, tmp_path):
    """Run ``code`` (reads x from ``sys.argv[1]``, saves an ``.npz`` to ``sys.argv[2]``) in a fresh
    interpreter on the forced kernel ISA path; return what it saved."""
    import os
    import subprocess
    import sys

    from env_helpers import package_env

    np.save(tmp_path / "x.npy", x)
    env = {k: v for k, v in os.environ.items() if k not in ("LEARNAFE_XYLO_SIMD", "LEARNAFE_ISA")}
    env["LEARNAFE_ISA"] = isa
    env = package_env(env)
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(__file__)), env["PYTHONPATH"]])
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.npy"), str(tmp_path / "o.npz")],
                   check=True, env=env, timeout=120)
    return np.load(tmp_path / "o.npz")


@pytest.mark.parametrize("isa", ["avx512", "avx2", "generic"])
def test_threshold_paths_match_rockpool_on_every_isa(tmp_path, isa):
    """The fused features (forced ISA path, in a subprocess) equal rockpool's spike generator
    and Raster for the uniform-threshold fast path and the general paths, on the 16-channel
    bank and a 5-channel bank (padded lanes), with a loud and a quiet signal (eps matters)."""

    from learnafe.xylo.features import spike_features

    rng = np.random.default_rng(34)
    x = np.stack([_speechlike(rng, 1200), quantize_audio(0.02 * rng.standard_normal(1200))])
    sel = [0, 5, 9, 15, 3]
    code = ("import numpy as np, sys; from learnafe.xylo.bank import XyloA3FilterBank as B; "
            "from learnafe.xylo.features import spike_features; "
            "from tests.test_xylo_features import _threshold_path_configs as cf; x = np.load(sys.argv[1]); "
            f"banks = (('full', B.default()), ('five', B.default().select({sel}))); "
            "out = {f'{k}-{n}': spike_features(x, b, c) for n, b in banks "
            "for k, c in cf(len(b)).items()}; np.savez(sys.argv[2], **out)")
    got = _run_on_isa(code, isa, x, tmp_path)
    for name, bank in (("full", XyloA3FilterBank.default()), ("five", XyloA3FilterBank.default().select(sel))):
        y = bank.filter(x, prepend_reversed=True)
        cfgs = _threshold_path_configs(len(bank))
        for key, cfg in cfgs.items():
            ref = np.stack([_reference_raster(yb, cfg) for yb in y])
            assert ref[0].sum() > 0
            np.testing.assert_array_equal(got[f"{key}-{name}"], ref, err_msg=f"{key}, {name} bank")
        # the per-channel eps changes the counts (the quiet signal is below most channels' eps)
        assert not np.array_equal(got[f"joint_eps-{name}"][1],
                                  spike_features(x[1], bank, SpikeConfig(low_pass_bitshift=10)))
