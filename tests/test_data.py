"""KeywordDataset, audio I/O, resampling, SNR mixing, the cache and bad-data handling.

Fixtures are small data sets written into tmp folders in both layouts.  Every
word folder holds sines of its own frequency, so the label of an item can be
checked from the audio itself.
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from learnafe.data import (
    CLASSES,
    SILENCE_LABEL,
    UNKNOWN_LABEL,
    BadDataWarning,
    KeywordDataset,
    active_mask,
    fix_length,
    gsc_split_of,
    label_of,
    mix_at_snr,
    read_wav,
    resample,
    snr_db,
    write_wav,
)
from learnafe.data.audio import AudioError, read_wav_header
from learnafe.data.noise import BackgroundNoise

SR_IN = 16000
WORD_FREQ = {"yes": 300.0, "no": 450.0, "stop": 600.0, "go": 750.0, "cat": 900.0, "bed": 1050.0}
KW = ("yes", "no", "stop", "go")
SPEAKERS = [f"s{i:02d}" for i in range(10)]


def _word_clip(freq: float, rng, n=SR_IN) -> np.ndarray:
    """A tone burst (the 'word') in the middle of near-silence."""
    x = np.zeros(n)
    start = int(rng.integers(2000, 5000))
    length = int(rng.integers(5000, 8000))
    t = np.arange(length) / SR_IN
    env = np.hanning(length)
    x[start:start + length] = 0.3 * env * np.sin(2 * np.pi * freq * t)
    return x


@pytest.fixture(scope="module")
def gsc_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gsc")
    rng = np.random.default_rng(1)
    for w, f in WORD_FREQ.items():
        (root / w).mkdir()
        for s in SPEAKERS:
            write_wav(root / w / f"{s}_nohash_0.wav", _word_clip(f, rng), SR_IN)
    bg = root / "_background_noise_"
    bg.mkdir()
    write_wav(bg / "white_noise.wav", 0.1 * rng.standard_normal(SR_IN * 30), SR_IN)
    write_wav(bg / "pink.wav", 0.05 * rng.standard_normal(SR_IN * 20), SR_IN)
    (root / "validation_list.txt").write_text("".join(f"{w}/s00_nohash_0.wav\n" for w in WORD_FREQ))
    (root / "testing_list.txt").write_text("".join(f"{w}/{s}_nohash_0.wav\n" for w in WORD_FREQ
                                                   for s in ("s01", "s02")))
    return root


@pytest.fixture(scope="module")
def test12_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("test12")
    rng = np.random.default_rng(2)
    counts = {"yes": 3, "no": 4, "stop": 2, "go": 5, "_unknown_": 6, "_silence_": 3}
    for folder, n in counts.items():
        (root / folder).mkdir()
        for i in range(n):
            x = (0.05 * rng.standard_normal(SR_IN) if folder == "_silence_"
                 else _word_clip(WORD_FREQ.get(folder, 900.0), rng))
            write_wav(root / folder / f"c{i}.wav", x, SR_IN)
    return root


def _dominant_hz(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)), 8 * len(x)))
    return float(np.argmax(spec) * rate / (8 * len(x)))


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadDataWarning)
        return fn(*a, **kw)


# -- classes ---------------------------------------------------------------

def test_class_order_and_label_mapping():
    assert CLASSES == ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
                       "unknown", "silence")
    assert label_of("stop") == 8 and label_of("go") == 9
    assert label_of("marvin") == UNKNOWN_LABEL == label_of("_unknown_") == 10
    assert label_of("_silence_") == SILENCE_LABEL == 11


# -- audio -----------------------------------------------------------------

@pytest.mark.parametrize("rate_in,rate_out,freq", [(16000, 20000, 1000.0), (44100, 20000, 3150.0),
                                                   (8000, 20000, 440.0), (48000, 16000, 6000.0)])
def test_resampling_keeps_frequency_and_level(rate_in, rate_out, freq):
    n = rate_in  # 1 s
    t = np.arange(n) / rate_in
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    y = resample(x.astype(np.float32), rate_in, rate_out)
    assert y.dtype == np.float32 and abs(len(y) - rate_out) <= 1
    core = y[rate_out // 10:-rate_out // 10].astype(np.float64)  # away from filter edges
    assert _dominant_hz(core, rate_out) == pytest.approx(freq, abs=0.5)
    rms_db = 20 * np.log10(np.sqrt(np.mean(core ** 2)) / (0.5 / np.sqrt(2)))
    assert abs(rms_db) < 0.05
    # Against the ideal sine at the new rate (independent reference).
    tt = np.arange(len(y)) / rate_out
    ref = 0.5 * np.sin(2 * np.pi * freq * tt)
    err = y[rate_out // 10:-rate_out // 10] - ref[rate_out // 10:-rate_out // 10]
    assert np.max(np.abs(err)) < 5e-3


@pytest.mark.parametrize("dtype,scale", [(np.uint8, None), (np.int16, 32767), (np.int32, 2 ** 31 - 1),
                                         (np.float32, 1.0)])
def test_read_wav_formats_and_stereo(tmp_path, dtype, scale):
    rng = np.random.default_rng(0)
    ref = 0.8 * rng.uniform(-1, 1, (1000, 2))
    if dtype is np.uint8:
        data = np.round(ref * 127 + 128).astype(np.uint8)
        expect = (data.astype(np.float64) - 128) / 128
    elif dtype is np.float32:
        data = ref.astype(np.float32)
        expect = data.astype(np.float64)
    else:
        data = np.round(ref * scale).astype(dtype)
        expect = data / (-float(np.iinfo(dtype).min))
    path = tmp_path / "x.wav"
    wavfile.write(path, 11025, data)
    x, rate = read_wav(path)
    assert rate == 11025 and x.dtype == np.float32 and x.shape == (1000,)
    np.testing.assert_allclose(x, expect.mean(axis=1), atol=1e-6)


def test_read_wav_24_bit(tmp_path):
    import wave

    vals = np.array([0, 1, -1, 2 ** 23 - 1, -2 ** 23, 12345, -54321])
    raw = b"".join(int(v).to_bytes(3, "little", signed=True) for v in vals)
    with wave.open(str(tmp_path / "x.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(3)
        w.setframerate(16000)
        w.writeframes(raw)
    x, rate = read_wav(tmp_path / "x.wav")
    np.testing.assert_allclose(x, vals / 2 ** 23, atol=1e-7)


def test_read_wav_extensible_format(tmp_path):
    import struct

    pcm = (np.array([[1000, -1000], [2000, 0], [-32768, 32767]], dtype="<i2"))
    data = pcm.tobytes()
    guid = struct.pack("<IHH8s", 1, 0, 0x10, bytes.fromhex("800000aa00389b71"))
    fmt = struct.pack("<HHIIHHHHI16s", 0xFFFE, 2, 22050, 22050 * 4, 4, 16, 22, 16, 3, guid)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + \
        struct.pack("<I", len(data)) + data
    (tmp_path / "ext.wav").write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    assert read_wav_header(tmp_path / "ext.wav") == (22050, 2, 3)
    x, rate = read_wav(tmp_path / "ext.wav")
    assert rate == 22050
    np.testing.assert_allclose(x, pcm.astype(np.float64).mean(axis=1) / 32768, atol=1e-7)


def test_write_read_roundtrip_and_truncation(tmp_path):
    x = np.sin(np.linspace(0, 100, 5000)) * 0.7
    write_wav(tmp_path / "a.wav", x, 16000)
    y, rate = read_wav(tmp_path / "a.wav")
    assert rate == 16000 and np.max(np.abs(y - x)) <= 0.5 / 32768 + 1e-9
    assert read_wav_header(tmp_path / "a.wav") == (16000, 1, 5000)
    data = (tmp_path / "a.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[:len(data) // 2])
    for fn in (read_wav, read_wav_header):
        with pytest.raises(AudioError, match="truncated"):
            fn(tmp_path / "cut.wav")
    (tmp_path / "junk.wav").write_bytes(b"this is not audio" * 10)
    with pytest.raises(AudioError, match="junk.wav"):
        read_wav(tmp_path / "junk.wav")


def test_fix_length():
    x = np.arange(10, dtype=np.float32) + 1
    np.testing.assert_array_equal(fix_length(x, 6), x[2:8])
    np.testing.assert_array_equal(fix_length(x, 14), np.r_[0, 0, x, 0, 0])
    np.testing.assert_array_equal(fix_length(x, 13, offset=3), np.r_[0, 0, 0, x])
    with pytest.raises(ValueError, match="offset"):
        fix_length(x, 6, offset=5)


# -- SNR ---------------------------------------------------------------------

def _reference_snr(speech, noise, rate):
    """Independent implementation of the documented definition (loop over 10 ms frames)."""
    hop = int(round(0.010 * rate))
    frames = [(i, min(i + hop, len(speech))) for i in range(0, len(speech), hop)]
    powers = [np.mean(np.asarray(speech[a:b], np.float64) ** 2) for a, b in frames]
    thr = max(powers) / 1e4  # 40 dB
    act = [(a, b) for (a, b), p in zip(frames, powers) if p >= thr]
    s = np.concatenate([np.asarray(speech[a:b], np.float64) for a, b in act])
    n = np.concatenate([np.asarray(noise[a:b], np.float64) for a, b in act])
    return 10 * np.log10(np.mean(s ** 2) / np.mean(n ** 2))


@pytest.mark.parametrize("target", [-5.0, 0.0, 5.0, 10.0, 15.0, 20.0, 40.0])
def test_mix_at_snr_hits_target(target):
    rng = np.random.default_rng(3)
    speech = _word_clip(500.0, rng, n=20000).astype(np.float32)
    noise = (rng.standard_normal(20000) * np.linspace(0.2, 2.0, 20000)).astype(np.float32)
    mixed = mix_at_snr(speech, noise, target, 20000)
    got = _reference_snr(speech, mixed.astype(np.float64) - speech, 20000)
    assert abs(got - target) < 0.1
    assert abs(snr_db(speech, mixed.astype(np.float64) - speech, 20000) - target) < 0.1


def test_active_mask_ignores_silence():
    x = np.zeros(20000)
    x[5000:7000] = 0.1
    m = active_mask(x, 20000)
    assert m[5000:7000].all() and not m[:5000].any() and not m[7200:].any()
    assert not active_mask(np.zeros(100), 20000).any()
    silent = np.zeros(1000, np.float32)
    np.testing.assert_array_equal(mix_at_snr(silent, np.ones(1000), 10.0, 20000), silent)


# -- GSC layout -----------------------------------------------------------

def test_gsc_counts_splits_and_labels(gsc_root):
    n_w = len(WORD_FREQ)
    sizes = {"train": 7, "validation": 1, "test": 2}  # speakers per split
    for split, spk in sizes.items():
        ds = KeywordDataset(gsc_root, split, unknown_fraction=None, silence_fraction=0.25)
        counts = ds.class_counts()
        for w in KW:
            assert counts[w] == spk
        assert counts["unknown"] == 2 * spk  # cat + bed
        assert counts["silence"] == int(round(0.25 * len(KW) * spk))
        assert counts["up"] == 0
        assert len(ds) == n_w * spk + counts["silence"]
        names = {ds.name(i) for i in range(len(ds)) if int(ds.labels[i]) != SILENCE_LABEL}
        if split == "validation":
            assert names == {f"{w}/s00_nohash_0.wav" for w in WORD_FREQ}
        elif split == "test":
            assert names == {f"{w}/{s}_nohash_0.wav" for w in WORD_FREQ for s in ("s01", "s02")}
        else:
            assert not any(("s00_" in n or "s01_" in n or "s02_" in n) for n in names)
    ds = KeywordDataset(gsc_root, "train", unknown_fraction=None, silence_fraction=0.25)
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.shape == (20000,) and str(x.dtype) == "torch.float32"
        word = ds.name(i).split("/")[0]
        if y == SILENCE_LABEL:
            assert word == "_silence_"
            continue
        assert y == label_of(word)
        assert _dominant_hz(x.numpy(), 20000) == pytest.approx(WORD_FREQ[word], abs=2.0)


def test_unknown_subsampling_is_deterministic(gsc_root):
    a = KeywordDataset(gsc_root, "train", unknown_fraction=0.25, seed=5)
    b = KeywordDataset(gsc_root, "train", unknown_fraction=0.25, seed=5)
    c = KeywordDataset(gsc_root, "train", unknown_fraction=0.25, seed=6)
    assert a.class_counts()["unknown"] == round(0.25 * 4 * 7) == 7
    assert [a.name(i) for i in range(len(a))] == [b.name(i) for i in range(len(b))]
    assert [a.name(i) for i in range(len(a))] != [c.name(i) for i in range(len(c))]


def test_silence_is_deterministic_and_split_disjoint(gsc_root):
    a = KeywordDataset(gsc_root, "test", silence_fraction=0.5)
    b = KeywordDataset(gsc_root, "test", silence_fraction=0.5)
    sil = [i for i in range(len(a)) if a.labels[i] == SILENCE_LABEL]
    assert len(sil) == 4
    for i in sil:
        np.testing.assert_array_equal(a.waveform(i), b.waveform(i))
    # Test silence is cut from the last 10 % of the noise recordings only.
    from scipy.signal import correlate

    noise_all = BackgroundNoise(gsc_root / "_background_noise_", 20000, portion="all")

    def best_match(seg, part):
        c = correlate(part, seg, mode="valid")
        cs = np.concatenate([[0.0], np.cumsum(part ** 2)])
        energy = np.sqrt(np.maximum(cs[len(seg):] - cs[:-len(seg)], 0.0))
        return float(np.max(np.abs(c) / (energy * np.linalg.norm(seg) + 1e-12)))

    for i in sil:
        seg = a.raw(i).astype(np.float64)
        test_parts = [r[int(0.9 * len(r)):].astype(np.float64) for r in noise_all.recordings]
        train_parts = [r[:int(0.8 * len(r))].astype(np.float64) for r in noise_all.recordings]
        assert max(best_match(seg, p) for p in test_parts) > 0.999
        assert max(best_match(seg, p) for p in train_parts) < 0.2


def test_fixed_snr_views_identical_and_on_target(gsc_root):
    def views():
        ds = KeywordDataset(gsc_root, "test", silence_fraction=0.0)
        return ds.snr_views((None, 20, 15, 10, 5))

    v1, v2 = views(), views()
    assert list(v1) == ["clean", "20dB", "15dB", "10dB", "5dB"]
    clean = [v1["clean"].waveform(i) for i in range(len(v1["clean"]))]
    for name, snr in (("20dB", 20), ("15dB", 15), ("10dB", 10), ("5dB", 5)):
        for i in range(len(v1[name])):
            a, b = v1[name].waveform(i), v2[name].waveform(i)
            np.testing.assert_array_equal(a, b)  # identical on every run
            noise = a.astype(np.float64) - clean[i]
            assert abs(_reference_snr(clean[i], noise, 20000) - snr) < 0.1
    # The same noise segment at every SNR: the noise parts are proportional.
    n5 = v1["5dB"].waveform(0) - clean[0]
    n20 = v1["20dB"].waveform(0) - clean[0]
    ratio = np.dot(n5, n20) / np.dot(n20, n20)
    assert ratio == pytest.approx(10 ** (15 / 20), rel=1e-3)


def test_random_snr_training_is_seeded_by_epoch(gsc_root):
    ds = KeywordDataset(gsc_root, "train", snr_db=(5, 20), silence_fraction=0.0, seed=3)
    clean = KeywordDataset(gsc_root, "train", silence_fraction=0.0, seed=3)
    ds.set_epoch(0)
    clean.set_epoch(0)
    a = [ds.waveform(i) for i in range(6)]
    again = [ds.waveform(i) for i in range(6)]
    for x, y in zip(a, again):
        np.testing.assert_array_equal(x, y)
    snrs = [_reference_snr(clean.waveform(i), a[i] - clean.waveform(i), 20000) for i in range(6)]
    assert all(5 - 0.1 < s < 20 + 0.1 for s in snrs)
    assert np.std(snrs) > 0.5  # a distribution, not one value
    ds.set_epoch(1)
    assert not np.array_equal(ds.waveform(0), a[0])
    # Training shifts are random, evaluation is centred.
    assert ds.random_shift and not KeywordDataset(gsc_root, "test").random_shift


def test_noise_prob_zero_keeps_clean(gsc_root):
    ds = KeywordDataset(gsc_root, "train", snr_db=(5, 20), noise_prob=0.0, silence_fraction=0.0)
    clean = KeywordDataset(gsc_root, "train", silence_fraction=0.0)
    np.testing.assert_array_equal(ds.waveform(2), clean.waveform(2))


def test_dataloader_workers_match_single_process(gsc_root):
    torch = pytest.importorskip("torch")
    ds = KeywordDataset(gsc_root, "train", snr_db=(5, 20), seed=1)
    ds.set_epoch(2)
    kw = dict(batch_size=8, shuffle=False)
    x0, y0 = next(iter(torch.utils.data.DataLoader(ds, num_workers=0, **kw)))
    x2, y2 = next(iter(torch.utils.data.DataLoader(ds, num_workers=2, **kw)))
    assert x0.shape == (8, 20000) and x0.dtype == torch.float32 and y0.dtype == torch.int64
    assert torch.equal(x0, x2) and torch.equal(y0, y2)


def test_cache_matches_decoding_and_is_reused(gsc_root, tmp_path):
    plain = KeywordDataset(gsc_root, "validation", sample_rate=16000, silence_fraction=0.0)
    cached = KeywordDataset(gsc_root, "validation", sample_rate=16000, silence_fraction=0.0,
                            cache_dir=tmp_path, progress=False)
    assert len(cached) == len(plain)
    for i in range(len(plain)):
        np.testing.assert_array_equal(cached.raw(i), plain.raw(i))
    entries = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1
    stamp = (entries[0] / "audio.f32").stat().st_mtime_ns
    again = KeywordDataset(gsc_root, "validation", sample_rate=16000, silence_fraction=0.0,
                           cache_dir=tmp_path, progress=False)
    assert (entries[0] / "audio.f32").stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again.raw(1), plain.raw(1))
    # A pickled copy (DataLoader workers under spawn) re-opens the memmap.
    clone = pickle.loads(pickle.dumps(again))
    np.testing.assert_array_equal(clone.waveform(0), plain.waveform(0))
    # Another sample rate is another entry.
    KeywordDataset(gsc_root, "validation", sample_rate=20000, silence_fraction=0.0,
                   cache_dir=tmp_path, progress=False)
    assert len([p for p in tmp_path.iterdir() if not p.name.startswith(".")]) == 2


def test_cache_parallel_build_equals_serial(gsc_root, tmp_path):
    a = KeywordDataset(gsc_root, "train", cache_dir=tmp_path / "a", workers=1, progress=False)
    b = KeywordDataset(gsc_root, "train", cache_dir=tmp_path / "b", workers=2, progress=False)
    for i in range(0, len(a), 7):
        np.testing.assert_array_equal(a.raw(i), b.raw(i))


def test_missing_split_lists_use_speaker_hash(gsc_root, tmp_path):
    import shutil

    root = tmp_path / "nolists"
    shutil.copytree(gsc_root, root)
    (root / "validation_list.txt").unlink()
    (root / "testing_list.txt").unlink()
    with pytest.warns(BadDataWarning, match="hash rule"):
        val = KeywordDataset(root, "validation", unknown_fraction=None, silence_fraction=0.0)
    expect = sorted(f"{w}/{s}_nohash_0.wav" for w in WORD_FREQ for s in SPEAKERS
                    if gsc_split_of(f"{s}_nohash_0.wav") == "validation")
    assert sorted(val.name(i) for i in range(len(val))) == expect
    assert gsc_split_of("abc_nohash_0.wav") == gsc_split_of("abc_nohash_7.wav")


# -- 12-class layout ------------------------------------------------------------

def test_test12_layout_read_whole(test12_root):
    ds = KeywordDataset(test12_root, "test")
    assert ds.layout == "test12"
    counts = ds.class_counts()
    assert counts == {**{c: 0 for c in CLASSES}, "yes": 3, "no": 4, "stop": 2, "go": 5,
                      "unknown": 6, "silence": 3}
    for i in range(len(ds)):
        x, y = ds[i]
        assert y == label_of(ds.name(i).split("/")[0])
    with pytest.raises(ValueError, match="split='test'"):
        KeywordDataset(test12_root, "train")


def _real_data_root() -> Path | None:
    env = os.environ.get("LEARNAFE_REAL_DATA")
    cand = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data" / \
        "gsc-v2-testset-dev"
    return cand if cand.is_dir() else None


@pytest.mark.skipif(_real_data_root() is None,
                    reason="real Speech Commands dev test set absent (set LEARNAFE_REAL_DATA)")
def test_real_gsc_testset_dev_counts():
    ds = KeywordDataset(_real_data_root(), "test", progress=False)
    assert ds.layout == "test12"
    assert ds.class_counts() == {"yes": 192, "no": 178, "up": 188, "down": 186, "left": 194,
                                 "right": 184, "on": 171, "off": 183, "stop": 172, "go": 175,
                                 "unknown": 170, "silence": 231}
    assert len(ds) == 2224
    x, y = ds[len(ds) - 1]
    assert x.shape == (20000,) and y == CLASSES.index("yes")


# -- bad data -------------------------------------------------------------------

@pytest.fixture()
def messy_root(tmp_path) -> Path:
    root = tmp_path / "messy"
    rng = np.random.default_rng(4)
    for w in ("yes", "no", "dog"):
        (root / w).mkdir(parents=True)
        for s in SPEAKERS[:3]:
            write_wav(root / w / f"{s}_nohash_0.wav", _word_clip(WORD_FREQ.get(w, 900.0), rng), SR_IN)
    (root / "left").mkdir()  # empty class folder
    good = (root / "yes" / "s00_nohash_0.wav").read_bytes()
    (root / "yes" / "cut_nohash_0.wav").write_bytes(good[:len(good) // 3])
    (root / "no" / "junk_nohash_0.wav").write_bytes(b"RIFF\x00\x00garbage")
    (root / "no" / "empty_nohash_0.wav").write_bytes(b"")
    # Convertible: stereo at 44.1 kHz (32-bit int) and 8 kHz mono.
    t = np.arange(44100) / 44100
    st = np.stack([0.3 * np.sin(2 * np.pi * 450 * t), 0.1 * np.sin(2 * np.pi * 450 * t)], axis=1)
    wavfile.write(root / "no" / "stereo_nohash_0.wav", 44100, (st * 2 ** 31).astype(np.int32))
    t8 = np.arange(8000) / 8000
    wavfile.write(root / "no" / "lowrate_nohash_0.wav", 8000,
                  (0.3 * np.sin(2 * np.pi * 450 * t8) * 32767).astype(np.int16))
    (root / "validation_list.txt").write_text("")
    (root / "testing_list.txt").write_text("")
    return root


@pytest.mark.parametrize("use_cache", [False, True])
def test_bad_files_skipped_with_one_warning(messy_root, tmp_path, use_cache):
    kw = dict(cache_dir=tmp_path / "cache", progress=False) if use_cache else {}
    with pytest.warns(BadDataWarning) as rec:
        ds = KeywordDataset(messy_root, "train", unknown_fraction=None, silence_fraction=0.0, **kw)
    ours = [r for r in rec if issubclass(r.category, BadDataWarning)]
    assert len(ours) == 1
    msg = str(ours[0].message)
    assert "skipped 3 unusable file(s)" in msg
    for name in ("cut_nohash_0.wav", "junk_nohash_0.wav", "empty_nohash_0.wav"):
        assert name in msg
    assert "empty class folder left/" in msg
    counts = ds.class_counts()
    assert counts["yes"] == 3 and counts["no"] == 5 and counts["unknown"] == 3
    names = [ds.name(i) for i in range(len(ds))]
    for conv in ("no/stereo_nohash_0.wav", "no/lowrate_nohash_0.wav"):
        x = ds.waveform(names.index(conv))
        assert x.shape == (20000,)
        assert _dominant_hz(x, 20000) == pytest.approx(450.0, abs=2.0)
    # stereo is averaged: amplitude (0.3 + 0.1) / 2
    x = ds.raw(names.index("no/stereo_nohash_0.wav"))
    assert np.max(np.abs(x[2000:-2000])) == pytest.approx(0.2, rel=0.01)


def test_nothing_usable_is_a_clear_error(tmp_path):
    root = tmp_path / "bad"
    (root / "yes").mkdir(parents=True)
    (root / "yes" / "a.wav").write_bytes(b"nope")
    with pytest.raises(ValueError, match="no usable clips"):
        _quiet(KeywordDataset, root, "all")
    (root / "yes" / "a.wav").unlink()
    with pytest.raises(ValueError, match="no wav files"):
        KeywordDataset(root, "all")
    with pytest.raises(FileNotFoundError, match="learnafe data synth"):
        KeywordDataset(tmp_path / "missing")


def test_argument_errors_name_the_argument(gsc_root, test12_root):
    with pytest.raises(ValueError, match="split"):
        KeywordDataset(gsc_root, "training")
    with pytest.raises(ValueError, match="snr_db"):
        KeywordDataset(gsc_root, "train", snr_db=(20, 5))
    with pytest.raises(ValueError, match="noise="):
        KeywordDataset(test12_root, "test", snr_db=10)
    with pytest.raises(ValueError, match="sample_rate"):
        KeywordDataset(gsc_root, "train", sample_rate=0)
    # The 12-class set can borrow another set's noise.
    ds = KeywordDataset(test12_root, "test", snr_db=10, noise=gsc_root / "_background_noise_")
    assert ds.waveform(0).shape == (20000,)


def test_dataset_takes_its_options_grouped_or_by_name(gsc_root):
    from learnafe.data import ClipOptions, LoadOptions

    by_name = KeywordDataset(gsc_root, "train", sample_rate=16000, clip_seconds=0.5, snr_db=(5, 20), seed=3,
                             progress=False, silence_fraction=0.0)
    grouped = KeywordDataset(gsc_root, "train", ClipOptions(sample_rate=16000, clip_seconds=0.5, snr_db=(5, 20),
                                                            seed=3), LoadOptions(progress=False),
                             silence_fraction=0.0)
    assert (by_name.sample_rate, by_name.length, by_name.seed) == (16000, 8000, 3)
    assert len(by_name) == len(grouped) and np.array_equal(by_name.labels, grouped.labels)
    for i in range(len(by_name)):
        assert np.array_equal(by_name[i][0], grouped[i][0])
    # a name replaces that field of the group
    assert KeywordDataset(gsc_root, "train", ClipOptions(sample_rate=16000), sample_rate=8000,
                          progress=False).sample_rate == 8000
    with pytest.raises(TypeError, match=r"unexpected option\(s\) \['sample_rte'\].*clip options"):
        KeywordDataset(gsc_root, "train", sample_rte=16000)
    with pytest.raises(TypeError, match="clips must be a ClipOptions.*sample_rate"):
        KeywordDataset(gsc_root, "train", 16000)
