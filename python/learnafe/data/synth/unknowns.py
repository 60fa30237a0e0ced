"""Synthetic ``unknown`` words: near-misses of the keywords and a large list of other words.

``synthesize_unknowns(out)`` writes one folder per word (``<word>/<voiceid>_nohash_<k>.wav``,
16 kHz) with the voices and the rendering chain of the embedded keyword set
(:func:`learnafe.data.synth.builder.render_clip`: engine and voice, pitch, speed, formant
shift, room, microphone, level, position and noise floor drawn from ``(seed, word, k)``).
Every word is a non-keyword, so the folder reads as ``unknown`` (``label_of``); train on it
as a source with ``use: "all"`` (``learnafe train --sources DIR:WEIGHT:all``).

Kinds of words (``kinds``):

- ``near-miss`` (:data:`NEAR_MISSES`): words that differ from a keyword by about one
  phoneme ("yet"/"yes", "nose"/"no", "cup"/"up", "town"/"down", "lift"/"left",
  "bright"/"right", "gone"/"on", "of"/"off", "top"/"stop", "goat"/"go");
- ``words`` (:data:`OTHER_WORDS`): 118 common English words of one to three syllables.

Homophones of a keyword ("know", "write", ...; :data:`HOMOPHONES`) say the keyword and are
never unknowns: :func:`unknown_words` refuses them.  A plan row is a function of
``(seed, word, k)`` alone (:func:`plan_unknowns`); flite and festival render it
bit-reproducibly, espeak and piper within a sample (see :mod:`~learnafe.data.synth.engines`).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from learnafe._jsonio import write_json

from ..classes import KEYWORDS, UNKNOWN_LABEL, label_of
from .builder import RATE, _clip_task, _run_tasks, _write_lists, checked_engines, plan_word_rows
from .engines import get_engine

__all__ = ["NEAR_MISSES", "HOMOPHONES", "OTHER_WORDS", "UNKNOWN_KINDS", "unknown_words",
           "plan_unknowns", "synthesize_unknowns"]

FORMAT = "learnafe-unknowns/1"

#: Near-misses of every keyword: one to three phonemes away (espeak-ng, en-us or en), never a
#: homophone.
NEAR_MISSES: dict[str, tuple[str, ...]] = {
    "yes": ("yet", "yell", "mess", "guess", "less", "chess"),
    "no": ("nose", "note", "snow", "now", "gnome", "known"),
    "up": ("cup", "pup", "us", "cut", "hub", "upper"),
    "down": ("town", "gown", "crown", "clown", "dawn", "done"),
    "left": ("lift", "loft", "theft", "deft", "lent", "less"),
    "right": ("bright", "fright", "ride", "light", "bite", "rice"),
    "on": ("gone", "john", "don", "in", "an", "own"),
    "off": ("of", "often", "cough", "scoff", "oft", "doff"),
    "stop": ("top", "shop", "stomp", "step", "stock", "spot"),
    "go": ("goat", "goal", "ghost", "grow", "toe", "dog"),
}

#: Words that sound like a keyword (espeak-ng gives them the keyword's phonemes): they say the
#: keyword and are never unknowns.
HOMOPHONES: dict[str, tuple[str, ...]] = {
    "no": ("know", "noh"), "right": ("write", "rite", "wright"), "go": ("goh",),
}

#: Common English words that are neither keywords nor their homophones nor near-misses.
OTHER_WORDS: tuple[str, ...] = (
    "apple", "army", "baby", "baker", "banana", "basket", "beach", "berry", "black", "blue",
    "boat", "book", "bottle", "bread", "brother", "button", "camera", "candle", "carpet", "chair",
    "cheese", "chicken", "city", "coffee", "cookie", "corner", "country", "danger", "dinner",
    "doctor", "dollar", "dream", "driver", "early", "earth", "engine", "evening", "family",
    "farmer", "father", "fever", "finger", "fish", "flower", "forest", "friend", "garden",
    "green", "guitar", "hammer", "heavy", "honey", "horse", "hundred", "island", "jacket",
    "kitchen", "ladder", "lemon", "letter", "lion", "machine", "market", "metal", "minute",
    "money", "monkey", "morning", "mother", "mountain", "paper", "party", "pencil", "people",
    "pepper", "picture", "pillow", "planet", "pocket", "potato", "purple", "rabbit", "radio",
    "river", "robot", "salad", "silver", "simple", "sister", "smile", "summer", "sugar",
    "table", "teacher", "thank you", "ticket", "tiger", "tomato", "travel", "turtle", "uncle",
    "valley", "village", "wagon", "window", "winter", "woman", "yellow", "zebra", "hotel",
    "movie", "nature", "ocean", "orange", "pizza", "quiet", "season", "tunnel",
)

UNKNOWN_KINDS = ("near-miss", "words")


def unknown_words(kinds=UNKNOWN_KINDS) -> list[str]:
    """The distinct words of ``kinds`` (sorted); a keyword or a homophone of one is an error."""
    kinds = tuple(kinds)
    bad = sorted(set(kinds) - set(UNKNOWN_KINDS))
    if bad or not kinds:
        raise ValueError(f"unknown word kinds {bad or list(kinds)}: use some of {list(UNKNOWN_KINDS)}")
    words: set[str] = set()
    if "near-miss" in kinds:
        words.update(w for ws in NEAR_MISSES.values() for w in ws)
    if "words" in kinds:
        words.update(OTHER_WORDS)
    said = set(KEYWORDS) | {h for hs in HOMOPHONES.values() for h in hs}
    clash = sorted(words & said)
    if clash:
        raise ValueError(f"unknown words {clash} say a keyword (a keyword or its homophone)")
    if any(label_of(w) != UNKNOWN_LABEL for w in words):
        raise ValueError("every unknown word must map to the unknown label")
    return sorted(words)


def plan_unknowns(words, per_word: int, seed: int, engines: list[str]) -> list[dict]:
    """The deterministic clip plan: ``per_word`` clips of every word, voices of ``engines``."""
    if not (isinstance(per_word, int) and per_word >= 1):
        raise ValueError(f"per_word must be an integer >= 1, got {per_word!r}")
    voices = {e: get_engine(e).voices() for e in engines}
    voices = {e: v for e, v in voices.items() if v}
    if not voices:
        raise RuntimeError("no speech-synthesis voice available: install espeakng-loader "
                           "(pip) or flite/festival (apt)")
    fam_split = {v.family: "train" for vs in voices.values() for v in vs}
    rows = plan_word_rows([(w, per_word) for w in words], seed, voices, fam_split)
    for r in rows:  # folder names without spaces ("thank you")
        r["file"] = r["file"].replace(" ", "_")
    return rows


def synthesize_unknowns(out, *, kinds=UNKNOWN_KINDS, per_word: int = 10, seed: int = 0,
                        workers: int = 1, engines: list[str] | None = None,
                        progress: bool = True) -> dict:
    """Write the synthetic unknown words of ``kinds`` to ``out`` and return a summary.

    Resumable: valid wavs already there are kept; a folder made with another plan (kinds,
    count, seed or engines) is refused.  Clips an engine fails on are left out (listed in
    the summary).
    """
    engines = checked_engines(workers, engines)
    words = unknown_words(kinds)
    rows = plan_unknowns(words, per_word, seed, engines)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.rglob("*.wav.tmp*"):
        stale.unlink()
    plan = {"format": FORMAT, "kinds": list(kinds), "per_word": per_word, "seed": seed,
            "engines": engines, "words": words, "clips": len(rows), "sample_rate": RATE,
            "plan_sha1": hashlib.sha1(json.dumps(rows, sort_keys=True).encode()).hexdigest()}
    manifest = out / "unknowns.json"
    if manifest.is_file():
        old = json.loads(manifest.read_text())
        if old.get("plan_sha1") != plan["plan_sha1"]:
            raise ValueError(f"{out} holds unknown words of another plan ({old.get('kinds')}, "
                             f"{old.get('per_word')} per word, seed {old.get('seed')}); use another "
                             "--out folder or delete it")
    write_json(manifest, plan, indent=1, newline=False)
    t0 = time.perf_counter()
    status, failed = _run_tasks([(_clip_task, (str(out), r)) for r in rows], workers, progress)
    present = _write_lists(out, rows, failed)
    for lst in ("validation_list.txt", "testing_list.txt"):  # every clip is a training clip
        (out / lst).unlink(missing_ok=True)
    summary = {"out": str(out), "kinds": list(kinds), "words": len(words), "per_word": per_word,
               "seed": seed, "engines": engines, "clips_planned": len(rows), "clips": len(present),
               **status, "failed_items": failed, "seconds": round(time.perf_counter() - t0, 2)}
    write_json(out / "unknowns_summary.json", summary, indent=1, newline=False)
    return summary
