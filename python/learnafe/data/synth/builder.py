"""``synthesize``: write the embedded default keyword data set (Speech Commands v2 layout).

Pipeline of one clip (all choices drawn from a generator seeded by
``(seed, word, k)``, so a clip does not depend on the others or on the worker
that makes it):

1. a voice: engine by :data:`ENGINE_WEIGHTS` (among the available ones), then
   a voice of that engine (espeak: accent x variant);
2. the word with a random final punctuation (``""``, ``.``, ``!``, ``?``:
   different intonation), rendered with pitch and speed factors pre-divided by
   the formant factor ``alpha`` where the engine supports them;
3. trimming of leading/trailing silence, formant shift by ``alpha``
   (:func:`~learnafe.data.synth.effects.formant_shift`), resampling to 16 kHz
   (re-rendered faster once if the word is longer than 0.95 s);
4. with probability 1/2 a synthetic room impulse response (RT60 0.1-0.6 s,
   direct-to-reverberant ratio 0-15 dB);
5. a random microphone response (high-pass 40-300 Hz, low-pass 3.4-7.9 kHz
   with probability 1/2);
6. a level (active RMS -38 to -14 dBFS), a random position in the 1 s clip,
   and a faint coloured-noise floor at 40-60 dB SNR (real recordings are
   never digitally silent);
7. 16-bit 16 kHz mono wav ``<word>/<voiceid>_nohash_<k>.wav``.

Validation and test hold out whole voice *families* (an espeak variant in
every accent, or one speaker of flite/festival), chosen with the seed; see
:func:`assign_families`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import time
import warnings
import zlib
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from learnafe._jsonio import write_json
from learnafe._progress import progress as progress_bar

from ..audio import AudioError, fix_length, read_wav_header, resample, write_wav
from ..classes import KEYWORDS, UNKNOWN_WORDS, label_of
from ..noise import mix_at_snr
from . import effects
from .engines import Voice, available_engines, get_engine
from .noises import NOISE_TYPES, make_noise

__all__ = ["SIZES", "ENGINE_WEIGHTS", "EXTRA_UNKNOWN_WORDS", "SynthSize", "plan_clips", "plan_word_rows", "checked_engines",
           "assign_families", "synthesize", "RATE"]

log = logging.getLogger(__name__)
RATE = 16000
FORMAT = "learnafe-synth/1"


@dataclass(frozen=True)
class SynthSize:
    per_keyword: int          # clips per keyword
    per_unknown_word: int     # clips per Speech Commands unknown word (25 words)
    per_extra_word: int       # clips per extra unknown word
    noise_seconds: float      # length of each background-noise recording


SIZES = {
    "small": SynthSize(per_keyword=200, per_unknown_word=14, per_extra_word=4, noise_seconds=60.0),
    "default": SynthSize(per_keyword=1500, per_unknown_word=100, per_extra_word=30,
                         noise_seconds=180.0),
}

# Share of clips per engine (renormalised over the available engines).  The
# non-espeak engines have few voices but very different timbres; they get a
# large share so that no single synthesiser dominates.
ENGINE_WEIGHTS = {"espeak": 0.55, "piper": 0.17, "flite": 0.20, "festival": 0.08}

# More non-keyword words (not homophones of a keyword: no "know", "write").
EXTRA_UNKNOWN_WORDS = (
    "yellow", "yet", "nose", "note", "under", "cup", "town", "dawn", "lift", "loft", "ride",
    "bright", "often", "offer", "stock", "top", "ghost", "goal", "hello", "water", "music",
    "open", "light", "maybe", "please", "never", "little", "number", "answer", "again",
)

PUNCTUATION = ("", ".", "!", "?")


def _word_seed(word: str) -> int:
    return zlib.crc32(word.encode("utf-8"))


def assign_families(families, seed: int, fraction: float = 0.1) -> dict[str, str]:
    """Split voice families into train/validation/test.

    espeak families (one per voice variant, all accents together): ``fraction``
    each to validation and test, chosen by a seeded permutation.  Families of
    the other engines: one each to validation and test from the flite/festival
    speakers; the piper voice (the only neural one) stays in training.
    """
    rng = np.random.default_rng([seed, 7])
    fams = sorted(set(families))
    esp = [f for f in fams if f.startswith("espeak:")]
    other = [f for f in fams if not f.startswith("espeak:") and not f.startswith("piper:")]
    out = {f: "train" for f in fams}
    esp = [esp[i] for i in rng.permutation(len(esp))]
    k = max(1, int(round(fraction * len(esp)))) if len(esp) >= 3 else 0
    for f in esp[:k]:
        out[f] = "validation"
    for f in esp[k:2 * k]:
        out[f] = "test"
    other = [other[i] for i in rng.permutation(len(other))]
    if len(other) >= 3:
        out[other[0]] = "validation"
        out[other[1]] = "test"
    return out


def _voice_id(v: Voice) -> str:
    return hashlib.sha1(f"{v.engine}|{v.name}".encode()).hexdigest()[:8]


def plan_clips(size: SynthSize, seed: int, engines: list[str]) -> tuple[list[dict], dict]:
    """The deterministic list of clips (one dict of parameters each) and the family splits."""
    voices = {e: get_engine(e).voices() for e in engines}
    voices = {e: v for e, v in voices.items() if v}
    if not voices:
        raise RuntimeError("no speech-synthesis voice available: install espeakng-loader "
                           "(pip) or flite/festival (apt)")
    fam_split = assign_families([v.family for vs in voices.values() for v in vs], seed)
    words = ([(kw, size.per_keyword) for kw in KEYWORDS]
             + [(u, size.per_unknown_word) for u in UNKNOWN_WORDS]
             + [(u, size.per_extra_word) for u in EXTRA_UNKNOWN_WORDS])
    return plan_word_rows(words, seed, voices, fam_split), fam_split


def plan_word_rows(words, seed: int, voices: dict, fam_split: dict) -> list[dict]:
    """One plan row per clip of ``words`` (``(word, count)`` pairs): engine, voice and
    rendering parameters drawn from ``(seed, word, k)``; ``voices``: {engine: [Voice]}
    (non-empty lists), ``fam_split``: the split of every voice family."""
    names = sorted(voices)
    w = np.array([ENGINE_WEIGHTS.get(e, 0.1) for e in names])
    w = w / w.sum()
    rows = []
    for word, count in words:
        for k in range(count):
            rng = np.random.default_rng([seed, _word_seed(word), k])
            eng = names[int(rng.choice(len(names), p=w))]
            v = voices[eng][int(rng.integers(len(voices[eng])))]
            reverb = rng.random() < 0.5
            rows.append({
                "file": f"{word}/{_voice_id(v)}_nohash_{k}.wav",
                "word": word,
                "label": label_of(word),
                "split": fam_split[v.family],
                "engine": eng,
                "voice_family": v.family,
                "voice": v.name,
                "pitch": round(float(np.exp(rng.uniform(np.log(0.72), np.log(1.4)))), 4),
                "speed": round(float(np.exp(rng.uniform(np.log(0.8), np.log(1.3)))), 4),
                "formant_shift": round(float(np.exp(rng.uniform(np.log(0.86), np.log(1.16)))), 4),
                "punctuation": PUNCTUATION[int(rng.integers(len(PUNCTUATION)))],
                "level_db": round(float(rng.uniform(-38.0, -14.0)), 2),
                "reverb_rt60": round(float(rng.uniform(0.1, 0.6)), 3) if reverb else 0.0,
                "reverb_drr_db": round(float(rng.uniform(0.0, 15.0)), 2) if reverb else 0.0,
                "highpass_hz": round(float(rng.uniform(40.0, 300.0)), 1),
                "lowpass_hz": round(float(rng.uniform(3400.0, 7900.0)), 1) if rng.random() < 0.5 else 0.0,
                "floor_snr_db": round(float(rng.uniform(40.0, 60.0)), 2),
                "floor_exponent": round(float(rng.uniform(0.0, 2.0)), 3),
                "seed": seed,
                "k": k,
            })
    return rows


# Engines whose render() takes a pitch factor (piper has none: its pitch follows alpha).
_HAS_PITCH = {"espeak", "flite", "festival"}


def _render_word(row: dict, speed_boost: float = 1.0) -> np.ndarray:
    eng = get_engine(row["engine"])
    alpha = row["formant_shift"]
    pitch = row["pitch"] / alpha if row["engine"] in _HAS_PITCH else 1.0
    speed = row["speed"] * speed_boost / alpha
    voice = Voice(row["engine"], row["voice_family"], row["voice"])
    x, sr = eng.render(row["word"] + row["punctuation"], voice, pitch=pitch, speed=speed)
    x = effects.trim_silence(x, sr)
    if x.size == 0:
        raise RuntimeError(f"{row['engine']} produced no audio for {row['word']!r} ({row['voice']})")
    x = effects.formant_shift(x, sr, alpha)
    return resample(x, sr, RATE)


def render_clip(row: dict) -> np.ndarray:
    """The finished 1 s, 16 kHz clip of a plan row (float32)."""
    x = _render_word(row)
    if x.shape[0] > 0.95 * RATE:
        x = _render_word(row, speed_boost=x.shape[0] / (0.85 * RATE))
    rng = np.random.default_rng([row["seed"], _word_seed(row["word"]), row["k"], 1])
    if row["reverb_rt60"] > 0:
        h = effects.room_impulse_response(rng, RATE, row["reverb_rt60"], row["reverb_drr_db"])
        x = effects.reverberate(x, h)
        x = effects.trim_silence(x, RATE, threshold_db=50.0)
    x = effects.microphone_response(x, RATE, row["highpass_hz"], row["lowpass_hz"] or None)
    x = effects.set_active_level(x, RATE, row["level_db"])
    slack = RATE - x.shape[0]
    x = fix_length(x, RATE, offset=int(rng.integers(0, slack + 1)) if slack > 0 else None)
    floor = effects.coloured_noise(rng, RATE, row["floor_exponent"])
    x = mix_at_snr(x, floor, row["floor_snr_db"], RATE)
    peak = float(np.max(np.abs(x)))
    return x * (0.99 / peak) if peak > 0.99 else x


def _valid(path: Path) -> bool:
    try:
        rate, channels, frames = read_wav_header(path)
    except AudioError:
        return False
    return rate == RATE and channels == 1 and frames > 0


def _clip_task(args):
    out, row = args
    path = Path(out) / row["file"]
    if path.exists() and _valid(path):
        return row["file"], "kept", None
    try:
        x = render_clip(row)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, x, RATE)
    except Exception as exc:  # an engine failing on one clip must not stop the run
        return row["file"], "failed", f"{type(exc).__name__}: {exc}"
    return row["file"], "written", None


def _babble_word(voices):
    def render(word, voice, rng):
        eng = get_engine(voice.engine)
        x, sr = eng.render(word, voice, pitch=float(rng.uniform(0.8, 1.25)),
                           speed=float(rng.uniform(0.9, 1.3)))
        return resample(effects.trim_silence(x, sr), sr, RATE)
    return render


def _noise_task(args):
    out, kind, seed, seconds, babble_voices = args
    path = Path(out) / "_background_noise_" / f"{kind}.wav"
    if path.exists() and _valid(path):
        return f"_background_noise_/{kind}.wav", "kept", None
    try:
        rng = np.random.default_rng([seed, 11, NOISE_TYPES.index(kind)])
        words = list(UNKNOWN_WORDS) + list(EXTRA_UNKNOWN_WORDS)
        src = (_babble_word(babble_voices), words, babble_voices) if babble_voices else None
        if kind == "babble" and src is None:
            return f"_background_noise_/{kind}.wav", "failed", "no voice for babble"
        x = make_noise(kind, rng, seconds, RATE, babble_source=src)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, x, RATE)
    except Exception as exc:
        return f"_background_noise_/{kind}.wav", "failed", f"{type(exc).__name__}: {exc}"
    return f"_background_noise_/{kind}.wav", "written", None


def _check_manifest(out: Path, manifest: dict) -> None:
    path = out / "synth.json"
    if path.is_file():
        old = json.loads(path.read_text())
        keys = ("format", "size", "seed", "engines", "spec")
        if any(old.get(k) != manifest.get(k) for k in keys):
            raise ValueError(
                f"--out {out} already holds a synthesis with different settings "
                f"({', '.join(f'{k}={old.get(k)!r}' for k in keys[1:4])}); resume with the same "
                "--size/--seed/--engines or choose another --out")
        if old.get("plan_sha1") != manifest["plan_sha1"]:
            raise ValueError(
                f"--out {out} was synthesised from a different clip plan (another LearnAFE "
                "version); its files cannot be resumed: choose another --out or delete the folder")
    write_json(path, manifest, indent=1, newline=False)


def synthesize(out, size: str | SynthSize = "small", seed: int = 0, workers: int = 1,
               engines: list[str] | None = None, progress: bool = True) -> dict:
    """Write the synthetic keyword data set to ``out`` and return a summary dict.

    Resumable: files that already exist and are valid wavs are kept, so an
    interrupted run continues where it stopped.  Clips an engine fails to
    render are left out (listed in one warning and in the summary).
    """
    spec, size, engines = _checked_settings(size, workers, engines)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.rglob("*.wav.tmp*"):  # left by an interrupted write
        stale.unlink()
    rows, fam_split = plan_clips(spec, seed, engines)
    manifest = {"format": FORMAT, "size": size, "seed": seed, "engines": engines,
                "clips": len(rows), "sample_rate": RATE, "spec": asdict(spec),
                "plan_sha1": hashlib.sha1(json.dumps(rows, sort_keys=True).encode()).hexdigest(),
                "family_split": fam_split}
    _check_manifest(out, manifest)
    log.info("synthesising %d clips + %d noise recordings with %s into %s (%d workers)",
             len(rows), len(NOISE_TYPES), ", ".join(engines), out, workers)
    babble_voices = [v for e in engines if e in ("espeak", "flite")
                     for v in get_engine(e).voices() if fam_split[v.family] == "train"]
    tasks = [(_noise_task, (str(out), kind, seed, spec.noise_seconds, babble_voices))
             for kind in NOISE_TYPES]
    tasks += [(_clip_task, (str(out), row)) for row in rows]
    t0 = time.perf_counter()
    status, failed = _run_tasks(tasks, workers, progress)
    elapsed = time.perf_counter() - t0
    present = _write_lists(out, rows, failed)
    if failed:
        warnings.warn(f"synthesis: {len(failed)} item(s) failed and were left out: "
                      + "; ".join(f"{k} ({v})" for k, v in list(failed.items())[:20]),
                      stacklevel=2)
    per_split: dict[str, int] = {}
    for r in present:
        per_split[r["split"]] = per_split.get(r["split"], 0) + 1
    summary = {"out": str(out), "size": size, "seed": seed, "engines": engines,
               "workers": workers, "clips_planned": len(rows), "clips_per_split": per_split,
               "noise_recordings": list(NOISE_TYPES), **status, "failed_items": failed,
               "seconds": round(elapsed, 2),
               "items_per_second": round(len(tasks) / elapsed, 2) if elapsed > 0 else None}
    write_json(out / "synth_summary.json", summary, indent=1, newline=False)
    return summary


def _checked_settings(size, workers: int, engines) -> tuple[SynthSize, str, list[str]]:
    """The size's spec and name, and the checked engines (:func:`checked_engines`)."""
    if isinstance(size, SynthSize):
        spec, size = size, "custom"
    elif size in SIZES:
        spec = SIZES[size]
    else:
        raise ValueError(f"--size must be one of {sorted(SIZES)} (or a SynthSize), got {size!r}")
    return spec, size, checked_engines(workers, engines)


def checked_engines(workers: int, engines) -> list[str]:
    """The sorted engines (default: every available one), after checking ``workers`` and that
    each engine is known and available."""
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    avail = available_engines()
    if engines is None:
        engines = avail
    else:
        unknown = [e for e in engines if e not in ENGINE_WEIGHTS]
        if unknown:
            raise ValueError(f"--engines: unknown engine(s) {unknown}; choose from "
                             f"{sorted(ENGINE_WEIGHTS)}")
        missing = [e for e in engines if e not in avail]
        if missing:
            raise ValueError(f"--engines: {missing} not available on this system "
                             f"(available: {avail})")
    return sorted(engines)


def _run_tasks(tasks, workers: int, progress: bool) -> tuple[dict, dict[str, str]]:
    """Runs the noise and clip tasks (in ``workers`` processes when more than one); returns the
    count per outcome (written, kept, failed) and the error of every failed item."""
    status = {"written": 0, "kept": 0, "failed": 0}
    failed: dict[str, str] = {}
    with progress_bar(total=len(tasks), unit="clip", desc="synthesising", disable=not progress) as bar:
        def consume(results):
            for name, st, err in results:
                status[st] += 1
                if err:
                    failed[name] = err
                bar.update(1)

        if workers > 1:
            ctx = get_context("fork" if os.name == "posix" else "spawn")
            with ctx.Pool(workers) as pool:
                consume(pool.imap_unordered(_run, tasks, chunksize=8))
        else:
            consume(map(_run, tasks))
    return status, failed


def _write_lists(out: Path, rows: list[dict], failed: dict) -> list[dict]:
    """Writes the validation and test lists and ``metadata.csv`` (atomically) of the clips that
    were not failed, and returns those rows."""
    present = [r for r in rows if r["file"] not in failed]
    for name, lst in (("validation", "validation_list.txt"), ("test", "testing_list.txt")):
        (out / lst).write_text("".join(r["file"] + "\n" for r in present if r["split"] == name))
    fields = list(rows[0].keys())
    with open(out / "metadata.csv.tmp", "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=fields)
        wr.writeheader()
        wr.writerows(present)
    os.replace(out / "metadata.csv.tmp", out / "metadata.csv")
    return present


def _run(task):
    fn, args = task
    return fn(args)
