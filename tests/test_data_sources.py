"""Several sources in one training set, speaker-disjoint splits, real-noise evaluation sets.

The logic is tested on tiny generated folders with fake speaker ids; the checks on the
real recordings (``../shared/data``) skip cleanly when those folders are absent.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from learnafe.data import CLASSES, ClipOptions, KeywordDataset, write_wav
from learnafe.data.noise import BackgroundNoise
from learnafe.data.sources import (
    ClipSubset,
    MixedDataset,
    find_shared,
    group_of,
    normalise_sources,
    open_source,
    speaker_of,
    speaker_split,
)

SR = 16000


def _shared(name: str) -> Path | None:
    """A shared real-data folder (``$LEARNAFE_SHARED_DATA`` or ``../shared/data``), or None."""
    return find_shared(name)


def _fake_names(n_speakers=40, seed=0):
    """Names and labels of a 12-class folder: every speaker says a random subset of the
    words; silence clips carry no speaker id; unknown clips carry their word in front."""
    rng = np.random.default_rng(seed)
    names, labels = [], []
    for _ in range(n_speakers):
        spk = f"{rng.integers(0, 2**32):08x}"
        for c in range(11):
            for k in range(int(rng.integers(0, 3))):
                if c == 10:
                    names.append(f"_unknown_/bed_{spk}_nohash_{k}.wav.wav")
                else:
                    names.append(f"{CLASSES[c]}/{spk}_nohash_{k}.wav")
                labels.append(c)
    for j in range(30):
        names.append(f"_silence_/{1000 + j}.wav")
        labels.append(11)
    return names, np.asarray(labels)


def test_speaker_of_and_groups():
    assert speaker_of("yes/0a1b2c3d_nohash_2.wav") == "0a1b2c3d"
    assert speaker_of("_unknown_/bed_0a1b2c3d_nohash_0.wav.wav") == "0a1b2c3d"
    assert speaker_of("/x/y/ABCDEF01_nohash_0.wav") == "abcdef01"
    assert speaker_of("_silence_/17.wav") is None
    assert group_of("yes/0a1b2c3d_nohash_2.wav") == group_of("_unknown_/cat_0a1b2c3d_nohash_1.wav")
    assert group_of("_silence_/17.wav") != group_of("_silence_/18.wav")


def test_speaker_split_disjoint_stratified_deterministic():
    names, labels = _fake_names()
    tr, va = speaker_split(names, labels, 0.4, seed=3)
    assert len(tr) + len(va) == len(names) and not set(tr) & set(va)
    # no speaker (nor silence file) on both sides
    g_tr = {group_of(names[i]) for i in tr}
    g_va = {group_of(names[i]) for i in va}
    assert not g_tr & g_va
    # stratified: every class on both sides, shares near the fraction
    for c in range(12):
        n_c = int(np.sum(labels == c))
        v_c = int(np.sum(labels[va] == c))
        assert 0 < v_c < n_c, CLASSES[c]
        assert abs(v_c / n_c - 0.4) < 0.15, (CLASSES[c], v_c, n_c)
    assert abs(len(va) / len(names) - 0.4) < 0.05
    # deterministic, and independent of the order the files are listed in
    tr2, va2 = speaker_split(names, labels, 0.4, seed=3)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    perm = np.random.default_rng(0).permutation(len(names))
    tr3, va3 = speaker_split([names[i] for i in perm], labels[perm], 0.4, seed=3)
    assert {names[perm[i]] for i in va3} == {names[i] for i in va}
    # another seed: another split
    _, va4 = speaker_split(names, labels, 0.4, seed=4)
    assert set(va4) != set(va)


def test_speaker_split_keeps_both_sides_for_rare_classes():
    # class "go" said by only two speakers, once each
    names = [f"yes/{s:08x}_nohash_0.wav" for s in range(20)]
    labels = [0] * 20
    names += ["go/000000aa_nohash_0.wav", "go/000000bb_nohash_0.wav"]
    labels += [9, 9]
    for seed in range(5):
        tr, va = speaker_split(names, labels, 0.1, seed=seed)
        lab = np.asarray(labels)
        assert np.sum(lab[tr] == 9) == 1 and np.sum(lab[va] == 9) == 1


def test_speaker_split_errors():
    with pytest.raises(ValueError, match="val_fraction"):
        speaker_split(["yes/a_nohash_0.wav"], [0], 1.0)
    with pytest.raises(ValueError, match="at least two speakers"):
        speaker_split(["yes/a_nohash_0.wav", "no/a_nohash_0.wav"], [0, 1], 0.5)


class _Fake:
    """A minimal data set: clip j of source k has waveform [k, j] and label j % 12."""

    def __init__(self, k, n):
        self.k, self.n = k, n
        self.labels = np.arange(n) % 12
        self.epochs = []

    def __len__(self):
        return self.n

    def waveform(self, j):
        return np.array([self.k, j], np.float32)

    def set_epoch(self, e):
        self.epochs.append(e)


def test_mixed_dataset_frequencies_match_weights():
    srcs = [(_Fake(0, 50), 3.0, "a"), (_Fake(1, 400), 1.0, "b"), (_Fake(2, 30), 0.0, "c")]
    mix = MixedDataset(srcs, epoch_clips=1000, seed=7)
    assert len(mix) == 1000
    seen = Counter()
    per_clip = Counter()
    for e in range(8):
        mix.set_epoch(e)
        assert srcs[0][0].epochs[-1] == e  # sources follow the epoch
        counts = np.bincount(mix.source_of, minlength=3)
        assert counts.tolist() == [750, 250, 0]  # exact to one clip per epoch
        for i in range(len(mix)):
            k, j = mix.waveform(i).astype(int)
            assert k == mix.source_of[i] and j == mix.source_index[i]
            assert mix.labels[i] == j % 12
            seen[k] += 1
            if k == 0:
                per_clip[j] += 1
    assert seen[0] / 8000 == pytest.approx(0.75) and seen[1] / 8000 == pytest.approx(0.25)
    # clips of a source are used evenly: 8 x 750 draws over 50 clips = 120 each
    assert set(per_clip.values()) == {120}
    # deterministic
    mix2 = MixedDataset(srcs, epoch_clips=1000, seed=7)
    mix2.set_epoch(5)
    mix.set_epoch(5)
    assert np.array_equal(mix.source_index, mix2.source_index)
    assert np.array_equal(mix.labels, mix2.labels)


def test_mixed_dataset_default_size_and_errors():
    mix = MixedDataset([(_Fake(0, 10), 1.0), (_Fake(1, 20), 1.0)])
    assert len(mix) == 30 and np.bincount(mix.source_of).tolist() == [15, 15]
    with pytest.raises(ValueError, match="weight"):
        MixedDataset([(_Fake(0, 10), -1.0)])
    with pytest.raises(ValueError, match="weight > 0"):
        MixedDataset([(_Fake(0, 10), 0.0)])
    with pytest.raises(ValueError, match="at least one source"):
        MixedDataset([])


def test_normalise_sources():
    out = normalise_sources(["a/b", {"path": "u", "weight": 0.2, "use": "all"}])
    assert out == [{"path": "a/b", "weight": 1.0, "use": "auto", "name": "b"},
                   {"path": "u", "weight": 0.2, "use": "all", "name": "u"}]
    with pytest.raises(ValueError, match="weight"):
        normalise_sources([{"path": "u", "weight": -1}])
    with pytest.raises(ValueError, match="use"):
        normalise_sources([{"path": "u", "use": "everything"}])
    with pytest.raises(ValueError, match="unknown key"):
        normalise_sources([{"path": "u", "wieght": 1}])


def _tone(freq, rng):
    x = np.zeros(SR)
    n = int(rng.integers(6000, 9000))
    s = int(rng.integers(1000, SR - n - 1000))
    x[s:s + n] = 0.3 * np.hanning(n) * np.sin(2 * np.pi * freq * np.arange(n) / SR)
    return x


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A 12-class folder with fake speakers, an unknown-words folder and a noise folder."""
    rng = np.random.default_rng(5)
    real = tmp_path_factory.mktemp("real12")
    names, labels = _fake_names(n_speakers=12, seed=1)
    for n, lab in zip(names, labels):
        p = real / n
        p.parent.mkdir(exist_ok=True)
        x = 0.05 * rng.standard_normal(SR) if lab == 11 else _tone(200.0 + 60 * lab, rng)
        write_wav(p, x, SR)
    unk = tmp_path_factory.mktemp("unk")
    for w in ("bed", "cat"):
        (unk / w).mkdir()
        for s in range(7):
            write_wav(unk / w / f"{s:08x}_nohash_0.wav", _tone(900.0, rng), SR)
    noise = tmp_path_factory.mktemp("noise")
    write_wav(noise / "hum.wav", 0.1 * np.sin(2 * np.pi * 60 * np.arange(SR * 20) / SR)
              + 0.02 * rng.standard_normal(SR * 20), SR)
    write_wav(noise / "white.wav", 0.1 * rng.standard_normal(SR * 10), SR)
    return real, unk, noise


def test_open_source_uses(folders):
    real, unk, noise = folders
    allc = open_source(real, "all")
    tr = open_source(real, "speaker-train", val_fraction=0.5)
    va = open_source(real, "speaker-val", val_fraction=0.5)
    assert len(tr) + len(va) == len(allc)
    spk = lambda d: {group_of(d.name(i)) for i in range(len(d))}  # noqa: E731
    assert not spk(tr) & spk(va)
    u = open_source(unk, "auto")  # no split lists, no noise: every clip, all `unknown`
    assert len(u) == 14 and set(u.labels.tolist()) == {CLASSES.index("unknown")}
    # training noise from the train portion of the recordings
    trn = open_source(real, "speaker-train", ClipOptions(snr_db=(5.0, 20.0), noise=noise), val_fraction=0.5)
    assert isinstance(trn, ClipSubset) and trn.base.noise.portion == (0.0, 0.8)
    x = trn.waveform(0)
    assert x.shape == (20000,) and np.isfinite(x).all()
    with pytest.raises(FileNotFoundError, match="not a folder"):
        open_source(real / "nothing", "all")


def test_mixed_real_and_unknown_sources(folders):
    real, unk, noise = folders
    tr = open_source(real, "speaker-train", val_fraction=0.5)
    u = open_source(unk, "all")
    mix = MixedDataset([(tr, 4.0, "real"), (u, 1.0, "unknown-words")], epoch_clips=100, seed=0)
    assert np.bincount(mix.source_of).tolist() == [80, 20]
    names = {mix.name(i).split(":")[0] for i in range(len(mix))}
    assert names == {"real", "unknown-words"}
    assert mix.describe()[1] == {"name": "unknown-words", "clips": 14, "weight": 1.0,
                                 "clips_per_epoch": 20}


def test_real_noise_eval_sets_identical_run_to_run(folders):
    real, _, noise = folders

    def build():
        base = KeywordDataset(real, "test", seed=20250700)
        _, va = speaker_split([base.name(i) for i in range(len(base))], base.labels, 0.5)
        view = ClipSubset(base, va).with_snr(5.0, BackgroundNoise(noise, 20000, portion="test"))
        return np.stack([view.waveform(i) for i in range(len(view))]), view

    (a, view), (b, _) = build(), build()
    assert np.array_equal(a, b)
    clean = KeywordDataset(real, "test", seed=20250700)
    speech = np.flatnonzero(view.labels != CLASSES.index("silence"))
    for j in speech[:5]:  # noise was really added (silence clips stay as they are)
        assert not np.array_equal(a[j], clean.waveform(int(view.indices[j])))


@pytest.mark.skipif(_shared("gsc-v2-testset-dev") is None,
                    reason="real recordings ../shared/data/gsc-v2-testset-dev absent")
def test_real_dev_set_speaker_split():
    real = _shared("gsc-v2-testset-dev")
    base = KeywordDataset(real, "test")
    names = [base.name(i) for i in range(len(base))]
    tr, va = speaker_split(names, base.labels, 0.5, seed=0)
    spk = lambda idx: {speaker_of(names[i]) for i in idx} - {None}  # noqa: E731
    assert not spk(tr) & spk(va)
    for c in range(12):
        n_c = int(np.sum(base.labels == c))
        assert abs(np.sum(base.labels[va] == c) / n_c - 0.5) < 0.05
    # the unknown-words folder shares no speaker with the dev set (its README)
    unk = _shared("gsc-unknown-words")
    if unk is not None:
        u = {speaker_of(p.name) for p in unk.rglob("*.wav")}
        assert not u & spk(np.arange(len(names)))


@pytest.mark.skipif(_shared("gsc-background-noise") is None or _shared("gsc-v2-testset-dev") is None,
                    reason="real recordings ../shared/data absent")
def test_real_noise_eval_views_identical_on_real_data():
    real, noise = _shared("gsc-v2-testset-dev"), _shared("gsc-background-noise")

    def first_clips():
        va = open_source(real, "speaker-val", ClipOptions(seed=20250700))
        view = va.with_snr(10.0, BackgroundNoise(noise, 20000, portion="test"))
        return np.stack([view.waveform(i) for i in range(0, 40, 4)])

    assert np.array_equal(first_clips(), first_clips())
