"""Synthetic unknown words: the near-misses are near-misses and the homophones homophones by
espeak-ng's own phoneme lexicon (an independent reference), no word says a keyword, the plan
is deterministic per seed, and the folder holds the words it says it holds (flite renders
bit-reproducibly), as ``unknown`` clips."""

from __future__ import annotations

import csv
import ctypes

import pytest

from learnafe.data import KeywordDataset
from learnafe.data.classes import KEYWORDS, UNKNOWN_LABEL
from learnafe.data.synth import available_engines
from learnafe.data.synth.unknowns import (
    HOMOPHONES,
    NEAR_MISSES,
    OTHER_WORDS,
    plan_unknowns,
    synthesize_unknowns,
    unknown_words,
)

ENGINES = available_engines()


@pytest.fixture(scope="module")
def phonemes():
    """word -> {accent: IPA without stress or length marks}, from espeak_TextToPhonemes."""
    loader = pytest.importorskip("espeakng_loader")
    lib = ctypes.CDLL(loader.get_library_path())
    if lib.espeak_Initialize(2, 0, loader.get_data_path().encode(), 0x8000) <= 0:
        pytest.skip("espeak-ng does not initialise")
    lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
    lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]

    def ph(word: str, accent: str) -> str:
        assert lib.espeak_SetVoiceByName(accent.encode()) == 0
        buf = ctypes.create_string_buffer(word.encode())
        p = ctypes.c_void_p(ctypes.addressof(buf))
        out = lib.espeak_TextToPhonemes(ctypes.byref(p), 1, 0x02).decode()
        return out.replace("ˈ", "").replace("ˌ", "").replace("ː", "")

    return ph


def _distance(a: str, b: str) -> int:
    d = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, cb in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (ca != cb))
    return d[-1]


def test_near_misses_are_near_and_homophones_are_the_keyword(phonemes):
    for kw, words in NEAR_MISSES.items():
        for w in words:
            dist = {acc: _distance(phonemes(w, acc), phonemes(kw, acc)) for acc in ("en-us", "en")}
            assert min(dist.values()) >= 1, f"{w!r} is a homophone of {kw!r}"
            assert min(dist.values()) <= 3, f"{w!r} is not a near-miss of {kw!r}: {dist}"
    for kw, words in HOMOPHONES.items():
        for w in words:
            assert phonemes(w, "en-us") == phonemes(kw, "en-us"), (kw, w)
    for w in OTHER_WORDS:
        for kw in KEYWORDS:
            assert phonemes(w, "en-us") != phonemes(kw, "en-us"), (kw, w)


def test_no_unknown_word_says_a_keyword():
    words = unknown_words()
    assert len(words) == len(set(words)) > 150
    assert set(unknown_words(["near-miss"])) == {w for ws in NEAR_MISSES.values() for w in ws}
    assert {"dog", "of", "cup", "town", "yet", "top", "lift", "nose"} <= set(words)
    said = set(KEYWORDS) | {h for hs in HOMOPHONES.values() for h in hs}
    assert not said & set(words)
    assert "know" not in words and "write" not in words
    with pytest.raises(ValueError, match="kinds"):
        unknown_words(["fragments"])


def test_plan_is_deterministic_per_seed():
    engines = [e for e in ENGINES if e in ("espeak", "flite", "festival", "piper")]
    if not engines:
        pytest.skip("no synthesis engine")
    words = unknown_words(["near-miss"])
    a, b, c = (plan_unknowns(words, 3, s, engines) for s in (0, 0, 1))
    assert a == b and a != c
    assert [r["word"] for r in a] == [w for w in words for _ in range(3)]
    assert all(r["label"] == UNKNOWN_LABEL and r["file"].startswith(r["word"] + "/") for r in a)
    with pytest.raises(ValueError, match="per_word"):
        plan_unknowns(words, 0, 0, engines)


@pytest.mark.skipif("flite" not in ENGINES, reason="flite not installed")
def test_folder_holds_the_planned_words_reproducibly(tmp_path):
    a = synthesize_unknowns(tmp_path / "a", kinds=["near-miss"], per_word=1, seed=3, engines=["flite"],
                            progress=False)
    assert a["failed"] == 0 and a["clips"] == a["clips_planned"] == len(unknown_words(["near-miss"]))
    with open(tmp_path / "a" / "metadata.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["word"] for r in rows) == unknown_words(["near-miss"])
    for r in rows:
        assert r["file"].split("/")[0] == r["word"] and (tmp_path / "a" / r["file"]).is_file()
    ds = KeywordDataset(tmp_path / "a", "all", sample_rate=16000, unknown_fraction=None,
                        silence_fraction=0.0)
    assert len(ds) == len(rows) and set(ds.labels.tolist()) == {UNKNOWN_LABEL}
    synthesize_unknowns(tmp_path / "b", kinds=["near-miss"], per_word=1, seed=3, engines=["flite"],
                        progress=False)
    for r in rows:
        assert (tmp_path / "a" / r["file"]).read_bytes() == (tmp_path / "b" / r["file"]).read_bytes()
    again = synthesize_unknowns(tmp_path / "a", kinds=["near-miss"], per_word=1, seed=3, engines=["flite"],
                                progress=False)
    assert again["kept"] == len(rows) and again["written"] == 0
    with pytest.raises(ValueError, match="another plan"):
        synthesize_unknowns(tmp_path / "a", kinds=["near-miss"], per_word=1, seed=4, engines=["flite"],
                            progress=False)
