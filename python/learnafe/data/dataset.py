"""``KeywordDataset``: the 12-class keyword-spotting data set, from disk.

Two layouts are read (the layout is detected from the folder names):

* **Speech Commands v2** (also what ``learnafe data synth`` writes):
  ``ROOT/<word>/*.wav``, ``ROOT/validation_list.txt``, ``ROOT/testing_list.txt``
  (one ``word/file.wav`` per line), ``ROOT/_background_noise_/*.wav``.  The
  ten keywords are their own classes, every other word is ``unknown``; a
  split is the files named in its list (training = the files in neither
  list).  ``silence`` clips are cut from the background noise recordings
  (deterministic for the seed; each split uses its own time portion of the
  recordings, see :mod:`learnafe.data.noise`).  As in the reference
  TensorFlow recipe, ``unknown`` is subsampled to ``unknown_fraction`` of the
  number of keyword clips of the split, and ``silence_fraction`` times that
  number of silence clips is added (``unknown_fraction=None`` keeps all).
  A missing split list falls back to the rule of the Speech Commands README
  (SHA-1 of the speaker id, 10 % validation, 10 % test) with a warning.
* **12-class test layout**: ``ROOT/<keyword>/``, ``ROOT/_unknown_/``,
  ``ROOT/_silence_/``.  Without split lists the folder is one evaluation set,
  read whole for ``split="test"`` (or ``"all"``).

Items are ``(waveform, label)``: a float32 torch tensor of
``round(clip_seconds * sample_rate)`` samples and the class index in
:data:`~learnafe.data.CLASSES`.  Audio is resampled with a polyphase filter
(:func:`~learnafe.data.audio.resample`), then padded or cropped to the clip
length: at a random offset for training (``random_shift``), centred otherwise.

Noise (``snr_db``): ``None`` gives clean clips; a number gives a fixed-SNR
view whose noise segment is chosen per clip from ``seed`` only, so it is
identical on every run and at every SNR (only the gain changes); a
``(low, high)`` pair draws a uniform SNR per clip and epoch (training).  The
randomness of an item depends only on ``(seed, epoch, index)``, never on the
worker process: call :meth:`KeywordDataset.set_epoch` before each epoch.
``silence`` clips are never mixed (they are noise already).

Bad files (unreadable, truncated, empty) are skipped and reported in ONE
warning naming them; stereo and other sample rates are converted; a data
set with no usable clip raises ``ValueError``.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import re
import warnings
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from .audio import AudioError, fix_length, load_audio, read_wav_header
from .cache import AudioCache
from .classes import CLASSES, KEYWORDS, SILENCE_LABEL, UNKNOWN_LABEL, label_of
from .noise import BackgroundNoise, mix_at_snr

try:  # torch is optional for the data module itself
    import torch
    from torch.utils.data import Dataset as _Base
except ImportError:  # pragma: no cover - torch is installed in every supported setup
    torch = None
    _Base = object

__all__ = ["KeywordDataset", "ClipOptions", "LoadOptions", "BadDataWarning", "EVAL_SNRS_DB", "SPLITS", "detect_layout",
           "gsc_split_of", "snr_name"]

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test", "all")
EVAL_SNRS_DB = (None, 20.0, 15.0, 10.0, 5.0)
BACKGROUND_DIR = "_background_noise_"
VALIDATION_LIST = "validation_list.txt"
TESTING_LIST = "testing_list.txt"
_MAX_NUM_WAVS_PER_CLASS = 2 ** 27 - 1
# Independent random streams (first entries of a clip's seed sequence).
_STREAM_SHIFT, _STREAM_NOISE, _STREAM_EVAL_NOISE, _STREAM_SILENCE, _STREAM_SUBSAMPLE, _STREAM_VOICE = range(6)
_SPLIT_CODE = {s: i for i, s in enumerate(SPLITS)}


class BadDataWarning(UserWarning):
    """Some files of a data set were skipped (the message names them)."""


def snr_name(snr) -> str:
    """Display name of an evaluation condition: ``"clean"`` or e.g. ``"10dB"``."""
    return "clean" if snr is None else f"{float(snr):g}dB"


def gsc_split_of(filename: str, validation_percentage: float = 10.0,
                 testing_percentage: float = 10.0) -> str:
    """The split of a file by the rule of the Speech Commands README.

    The speaker id (the file name up to ``_nohash_``) is hashed with SHA-1, so
    all clips of one speaker land in the same split.
    """
    base = os.path.basename(filename)
    speaker = re.sub(r"_nohash_.*$", "", base)
    h = int(hashlib.sha1(speaker.encode("utf-8")).hexdigest(), 16)
    pct = (h % (_MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / _MAX_NUM_WAVS_PER_CLASS)
    if pct < validation_percentage:
        return "validation"
    if pct < validation_percentage + testing_percentage:
        return "test"
    return "train"


def detect_layout(root: str | os.PathLike) -> str:
    """``"test12"`` when ``root`` has ``_unknown_`` or ``_silence_`` folders, else ``"gsc"``."""
    root = Path(root)
    if (root / "_unknown_").is_dir() or (root / "_silence_").is_dir():
        return "test12"
    return "gsc"


def _read_list(path: Path) -> set[str] | None:
    if not path.is_file():
        return None
    out = set()
    for line in path.read_text().splitlines():
        line = line.strip().replace("\\", "/")
        if line:
            out.add(line)
    return out


@dataclass(frozen=True)
class ClipOptions:
    """How the clips of a data set are cut, mixed with noise and augmented (``clips`` of
    :class:`KeywordDataset`)."""

    sample_rate: int = 20000
    clip_seconds: float = 1.0
    seed: int = 0
    snr_db: Any = None
    noise: Any = None
    noise_prob: float = 1.0
    augment: Any = None


@dataclass(frozen=True)
class LoadOptions:
    """How the audio of a data set is read (``loading`` of :class:`KeywordDataset`): decoded-audio
    cache folder (``None``: decode every access), processes that build the cache, progress bars."""

    cache_dir: Any = None
    workers: int = 1
    progress: bool = False


_CLIP_FIELDS = tuple(f.name for f in fields(ClipOptions))
_LOAD_FIELDS = tuple(f.name for f in fields(LoadOptions))


def _dataset_options(clips, loading, options: dict) -> tuple[ClipOptions, LoadOptions]:
    """``clips`` and ``loading`` (None: the defaults, progress bars on) with the fields named
    in ``options`` replaced."""
    if clips is not None and not isinstance(clips, ClipOptions):
        raise TypeError(f"KeywordDataset: clips must be a ClipOptions, got {clips!r}; give the sample "
                        "rate as clips=ClipOptions(sample_rate=...) or sample_rate=...")
    if loading is not None and not isinstance(loading, LoadOptions):
        raise TypeError(f"KeywordDataset: loading must be a LoadOptions, got {loading!r}")
    unknown = sorted(set(options) - set(_CLIP_FIELDS) - set(_LOAD_FIELDS))
    if unknown:
        raise TypeError(f"KeywordDataset got unexpected option(s) {unknown}; clip options: "
                        f"{list(_CLIP_FIELDS)}, loading options: {list(_LOAD_FIELDS)}")
    clips = replace(clips or ClipOptions(), **{k: v for k, v in options.items() if k in _CLIP_FIELDS})
    loading = replace(loading or LoadOptions(progress=True),
                      **{k: v for k, v in options.items() if k in _LOAD_FIELDS})
    return clips, loading


class KeywordDataset(_Base):
    """The 12-class keyword data set under ``root`` (see the module docstring).

    Parameters
    ----------
    root: data set folder (Speech Commands v2 layout or the 12-class layout).
    split: ``"train"``, ``"validation"``, ``"test"`` or ``"all"``.
    clips: :class:`ClipOptions`: output rate (default 20 kHz; files are resampled), clip
        length (default 1 s), seed of every random choice (subsampling, silence, shifts,
        noise), ``snr_db`` (``None``: clean, a fixed SNR in dB, or a ``(low, high)`` range),
        ``noise`` (where the noise for ``snr_db`` comes from: ``None`` =
        ``root/_background_noise_``, a folder of wavs, or a
        :class:`~learnafe.data.noise.BackgroundNoise`), ``noise_prob`` (probability that a
        training clip gets noise, range ``snr_db`` only) and ``augment`` (a
        :class:`~learnafe.data.augment.VoiceAugment` applied to every clip but ``silence``
        before padding/cropping and noise, from a generator seeded by ``(seed, epoch, clip
        index)``; ``None``: off).
    loading: :class:`LoadOptions`: folder of the decoded-audio cache
        (:class:`~learnafe.data.cache.AudioCache`; ``None`` decodes wav files on every
        access), processes that build it, progress bars (None: no cache, one process,
        progress bars on).
    random_shift: random pad/crop offset; default True for ``train``, else centred.
    unknown_fraction, silence_fraction: see the module docstring (GSC layout only).
    options: any field of :class:`ClipOptions` or :class:`LoadOptions` by name
        (``KeywordDataset(root, "test", sample_rate=16000, progress=False)``); it replaces
        that field of ``clips`` / ``loading``.
    """

    classes = CLASSES

    def __init__(self, root, split: str = "train", clips: ClipOptions | None = None,
                 loading: LoadOptions | None = None, *, random_shift: bool | None = None,
                 unknown_fraction: float | None = 0.1, silence_fraction: float = 0.1, **options):
        clips, loading = _dataset_options(clips, loading, options)
        sample_rate, clip_seconds, noise_prob = clips.sample_rate, clips.clip_seconds, clips.noise_prob
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"KeywordDataset: root {root} is not a folder; point it at a "
                                    "Speech Commands v2 folder or create one with "
                                    "`learnafe data synth --out DIR`")
        if split not in SPLITS:
            raise ValueError(f"KeywordDataset: split must be one of {SPLITS}, got {split!r}")
        if int(sample_rate) <= 0:
            raise ValueError(f"KeywordDataset: sample_rate must be a positive integer, got {sample_rate}")
        if not clip_seconds > 0:
            raise ValueError(f"KeywordDataset: clip_seconds must be > 0, got {clip_seconds}")
        for name, v in (("unknown_fraction", unknown_fraction), ("silence_fraction", silence_fraction)):
            if v is not None and not (0.0 <= float(v)):
                raise ValueError(f"KeywordDataset: {name} must be >= 0 (or None), got {v}")
        if not 0.0 <= noise_prob <= 1.0:
            raise ValueError(f"KeywordDataset: noise_prob must be in [0, 1], got {noise_prob}")
        self.root = root
        self.split = split
        self.sample_rate = int(sample_rate)
        self.clip_seconds = float(clip_seconds)
        self.length = int(round(self.clip_seconds * self.sample_rate))
        self.seed = int(clips.seed)
        self.noise_prob = float(noise_prob)
        self.augment = clips.augment if clips.augment is not None and clips.augment.enabled else None
        self.random_shift = (split == "train") if random_shift is None else bool(random_shift)
        self.unknown_fraction = unknown_fraction
        self.silence_fraction = float(silence_fraction)
        self.layout = detect_layout(root)
        self.epoch = 0
        self._problems: list[str] = []
        self._bad: list[str] = []

        files, labels = self._index_files()
        files, labels = self._check_files(files, labels, loading.cache_dir, loading.workers, loading.progress)
        self.files: list[Path] = files
        self._file_labels = labels
        # Silence clips cut from background noise (GSC layout).
        self._silence = None
        n_silence = 0
        if self.layout == "gsc" and self.silence_fraction > 0:
            n_kw = int(np.sum(np.asarray(labels) < len(KEYWORDS)))
            n_silence = int(round(self.silence_fraction * n_kw))
            if n_silence:
                bg = root / BACKGROUND_DIR
                if bg.is_dir() and any(bg.glob("*.wav")):
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        try:
                            self._silence = BackgroundNoise(bg, self.sample_rate, portion=split)
                        except ValueError:
                            self._silence = None
                    self._problems += [str(w.message) for w in caught]
                if self._silence is None:
                    self._problems.append(f"no usable {BACKGROUND_DIR}/ in {root}: the split has "
                                          "no silence clips")
                    n_silence = 0
        self.n_silence = n_silence
        self.labels = np.concatenate([np.asarray(labels, dtype=np.int64),
                                      np.full(n_silence, SILENCE_LABEL, dtype=np.int64)])
        self._report()
        if len(self.labels) == 0:
            raise ValueError(f"KeywordDataset: no usable clips for split {split!r} in {root} "
                             f"(layout {self.layout}); check the folder and its split lists")
        self.snr_db = None
        self.noise = None
        self._noise_arg = clips.noise
        self.set_snr(clips.snr_db, clips.noise)

    # -- indexing -----------------------------------------------------------
    def _index_files(self):
        root = self.root
        words = sorted(d.name for d in root.iterdir()
                       if d.is_dir() and not d.name.startswith(".") and d.name != BACKGROUND_DIR
                       and (not d.name.startswith("_") or d.name in ("_unknown_", "_silence_")))
        by_word = {}
        for w in words:
            wavs = sorted(p for p in (root / w).iterdir() if p.suffix.lower() == ".wav" and p.is_file())
            if not wavs:
                self._problems.append(f"empty class folder {w}/ ignored")
                continue
            by_word[w] = wavs
        if not by_word:
            raise ValueError(f"KeywordDataset: no wav files in any class folder of {root}; expected "
                             "<root>/<word>/*.wav (Speech Commands layout)")
        val = _read_list(root / VALIDATION_LIST)
        test = _read_list(root / TESTING_LIST)
        split = self.split
        if self.layout == "test12" and val is None and test is None:
            if split not in ("test", "all"):
                raise ValueError(f"KeywordDataset: {root} is in the 12-class test layout without "
                                 f"{VALIDATION_LIST}/{TESTING_LIST}; it is one evaluation set: "
                                 f"use split='test' (or 'all'), not {split!r}")
            split = "all"
        elif split != "all" and (val is None or test is None):
            missing = [n for n, v in ((VALIDATION_LIST, val), (TESTING_LIST, test)) if v is None]
            self._problems.append(f"missing {' and '.join(missing)} in {root}: the missing split(s) "
                                  "follow the Speech Commands hash rule (by speaker id, 10 % each)")
        files, labels = [], []
        for w, wavs in by_word.items():
            lab = label_of(w)
            for p in wavs:
                rel = f"{w}/{p.name}"
                if split != "all":
                    if val is not None and rel in val:
                        s = "validation"
                    elif test is not None and rel in test:
                        s = "test"
                    else:
                        s = gsc_split_of(p.name) if (val is None or test is None) else "train"
                        if s != "train" and ((s == "validation" and val is not None)
                                             or (s == "test" and test is not None)):
                            s = "train"  # the existing list is authoritative for its split
                    if s != split:
                        continue
                files.append(p)
                labels.append(lab)
        if self.layout == "gsc" and self.unknown_fraction is not None:
            labels_arr = np.asarray(labels)
            n_kw = int(np.sum(labels_arr < len(KEYWORDS)))
            unk = np.flatnonzero(labels_arr == UNKNOWN_LABEL)
            keep_n = int(round(float(self.unknown_fraction) * n_kw))
            if keep_n < unk.size:
                rng = np.random.default_rng([self.seed, _STREAM_SUBSAMPLE, _SPLIT_CODE[self.split]])
                drop = set(rng.permutation(unk)[keep_n:].tolist())
                files = [f for i, f in enumerate(files) if i not in drop]
                labels = [lab for i, lab in enumerate(labels) if i not in drop]
        return files, labels

    def _check_files(self, files, labels, cache_dir, workers, progress):
        self._cache = None
        if cache_dir is not None:
            self._cache = AudioCache(files, self.sample_rate, cache_dir, workers=workers,
                                     progress=progress)
            bad_idx = self._cache.bad
            self._bad = [bad_idx[i] for i in sorted(bad_idx)]
            self._index = [i for i in range(len(files)) if i not in bad_idx]
        else:
            self._index = []
            for i, p in enumerate(files):
                try:
                    read_wav_header(p)
                except AudioError as exc:
                    self._bad.append(str(exc))
                    continue
                self._index.append(i)
        keep = self._index
        return [files[i] for i in keep], [labels[i] for i in keep]

    def _report(self) -> None:
        if not self._bad and not self._problems:
            return
        parts = []
        if self._bad:
            names = ", ".join(self._bad[:20])
            more = f" (and {len(self._bad) - 20} more)" if len(self._bad) > 20 else ""
            parts.append(f"skipped {len(self._bad)} unusable file(s): {names}{more}")
        parts += self._problems
        warnings.warn(f"KeywordDataset({self.root}, split={self.split!r}): " + "; ".join(parts),
                      BadDataWarning, stacklevel=3)

    # -- noise --------------------------------------------------------------
    def set_snr(self, snr_db=None, noise=None) -> "KeywordDataset":
        """Set the noise condition in place (see the class docstring); returns self."""
        if snr_db is not None:
            if isinstance(snr_db, (tuple, list)):
                if len(snr_db) != 2 or not float(snr_db[0]) <= float(snr_db[1]):
                    raise ValueError(f"KeywordDataset: snr_db range must be (low, high) with "
                                     f"low <= high, got {snr_db}")
                snr_db = (float(snr_db[0]), float(snr_db[1]))
            else:
                snr_db = float(snr_db)
                if not np.isfinite(snr_db):
                    raise ValueError(f"KeywordDataset: snr_db must be finite, got {snr_db}")
            if noise is None:
                noise = self._noise_arg
            if isinstance(noise, BackgroundNoise):
                self.noise = noise
            elif self.noise is None or noise is not self._noise_arg:
                folder = Path(noise) if noise is not None else self.root / BACKGROUND_DIR
                if not folder.is_dir():
                    raise ValueError(f"KeywordDataset: snr_db={snr_db} needs background noise but "
                                     f"{folder} does not exist; pass noise=FOLDER (a folder of noise "
                                     "wavs, e.g. the _background_noise_ of `learnafe data synth`)")
                portion = self.split
                self.noise = BackgroundNoise(folder, self.sample_rate, portion=portion)
            self._noise_arg = noise
        self.snr_db = snr_db
        return self

    def with_snr(self, snr_db, noise=None) -> "KeywordDataset":
        """A view of the same clips at another noise condition (shares cache and noise)."""
        view = copy.copy(self)
        view.noise = self.noise
        return view.set_snr(snr_db, noise)

    def snr_views(self, snrs=EVAL_SNRS_DB, noise=None) -> dict[str, "KeywordDataset"]:
        """Fixed-SNR evaluation views ``{"clean": .., "20dB": .., ...}`` (identical on every run)."""
        views = {}
        for s in snrs:
            views[snr_name(s)] = view = self.with_snr(s, noise)
            if noise is None and view.noise is not None:
                noise = view.noise  # load the noise recordings once for all views
        return views

    def set_epoch(self, epoch: int) -> None:
        """Select the random shifts and noise of a training epoch (call before iterating)."""
        self.epoch = int(epoch)

    # -- access -------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(CLASSES))
        return {c: int(n) for c, n in zip(CLASSES, counts)}

    def raw(self, i: int) -> np.ndarray:
        """Clip ``i`` decoded and resampled, before padding/cropping and noise."""
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"KeywordDataset index {i} out of range (size {len(self)})")
        n_files = len(self.files)
        if i < n_files:
            if self._cache is not None:
                return np.asarray(self._cache[self._index[i]])
            return load_audio(self.files[i], self.sample_rate)
        j = i - n_files
        rng = np.random.default_rng([self.seed, _STREAM_SILENCE, _SPLIT_CODE[self.split], j])
        seg = self._silence.segment(rng, self.length)
        return (seg * rng.uniform(0.0, 1.0)).astype(np.float32)

    def name(self, i: int) -> str:
        """``word/file.wav`` of clip ``i`` (or ``_silence_/NNNNN`` for cut silence)."""
        if i < len(self.files):
            p = self.files[i]
            return f"{p.parent.name}/{p.name}"
        return f"_silence_/{i - len(self.files):05d}"

    def waveform(self, i: int) -> np.ndarray:
        """Item ``i`` as a NumPy float32 array (what ``self[i]`` returns as a tensor)."""
        x = self.raw(i)
        label = int(self.labels[i])
        if self.augment is not None and label != SILENCE_LABEL:
            x = self.augment(x, np.random.default_rng([self.seed, _STREAM_VOICE, self.epoch, i]))
        offset = None
        slack = abs(x.shape[0] - self.length)
        if self.random_shift and slack:
            rng = np.random.default_rng([self.seed, _STREAM_SHIFT, self.epoch, i])
            offset = int(rng.integers(0, slack + 1))
        x = fix_length(x, self.length, offset=offset)
        if self.snr_db is None or label == SILENCE_LABEL:
            return x
        if isinstance(self.snr_db, tuple):
            rng = np.random.default_rng([self.seed, _STREAM_NOISE, self.epoch, i])
            if rng.random() >= self.noise_prob:
                return x
            snr = float(rng.uniform(*self.snr_db))
        else:
            rng = np.random.default_rng([self.seed, _STREAM_EVAL_NOISE, i])
            snr = self.snr_db
        return mix_at_snr(x, self.noise.segment(rng, self.length), snr, self.sample_rate)

    def __getitem__(self, i: int):
        x = self.waveform(i)
        if torch is not None:
            x = torch.from_numpy(x)
        return x, int(self.labels[i])

    def __repr__(self) -> str:
        return (f"KeywordDataset(root={str(self.root)!r}, split={self.split!r}, "
                f"layout={self.layout!r}, clips={len(self)}, sample_rate={self.sample_rate}, "
                f"snr_db={self.snr_db})")
