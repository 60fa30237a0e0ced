"""Training sets made of several sources, and speaker-disjoint splits of real recordings.

Three building blocks, all deterministic (functions of their seeds and the file
names only, never of the process or the run):

* :func:`speaker_of` / :func:`speaker_split`: the speaker of a Speech Commands
  file is the file-name prefix before ``_nohash_``; a labelled folder is split
  into a training and a validation part so that **no speaker is on both
  sides**.  Clips without a speaker id (``_silence_`` clips, other names) are
  their own group, placed by a hash of their file name.  The split is
  *stratified*: speakers are visited in the order of a seeded hash and each
  goes to the side that keeps every class's validation share closest to
  ``val_fraction``; a class with at least two groups always has clips on both
  sides.
* :class:`ClipSubset`: a view of some clips of a data set (e.g. one side of a
  speaker split), keeping the base data set's per-clip randomness.
* :class:`MixedDataset`: several sources (the synthetic set, a Speech Commands
  tree, the training speakers of a real folder, a folder of extra ``unknown``
  words, ...) in one training set, with per-source **sampling weights**: an
  epoch of ``epoch_clips`` clips holds ``weight_k / sum(weights)`` of its clips
  from source ``k`` (exact to one clip, largest remainders).  Inside a source
  the clips are taken in the order of a seeded permutation, continued from
  epoch to epoch, so every clip of a source is used equally often.

:func:`open_source` opens one source from a folder and a ``use`` (which clips):
``"train"`` (the folder's training split: its ``validation_list.txt`` /
``testing_list.txt`` or the Speech Commands hash rule), ``"all"`` (every clip of
every class folder, no subsampling; e.g. the ``unknown`` words), or
``"speaker-train"`` / ``"speaker-val"`` (the two sides of :func:`speaker_split`).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from .classes import CLASSES
from .dataset import ClipOptions, KeywordDataset, LoadOptions, detect_layout
from .noise import BackgroundNoise

__all__ = ["speaker_of", "group_of", "speaker_split", "speaker_halves", "ClipSubset",
           "MixedDataset", "open_source", "SOURCE_USES", "normalise_sources", "find_shared",
           "SHARED_SETS"]

_NOHASH = re.compile(r"^(.+?)_nohash_", re.IGNORECASE)
_STREAM_SPLIT, _STREAM_MIX = 301, 302
SOURCE_USES = ("train", "all", "speaker-train", "speaker-val")


def speaker_of(name: str) -> str | None:
    """Speaker id of a Speech Commands file name (``<speaker>_nohash_<n>.wav``): the
    file-name prefix before ``_nohash_`` (lower case), or None when there is none.

    In the 12-class test layout the ``_unknown_`` files carry their word in front
    (``bed_0a1b2c3d_nohash_0.wav``); Speech Commands speaker ids have no ``_``, so
    the id is the last ``_``-separated part of the prefix.
    """
    m = _NOHASH.match(Path(str(name)).name)
    return m.group(1).rsplit("_", 1)[-1].lower() if m else None


def group_of(name: str) -> str:
    """The group a clip is split with: ``spk:<speaker>``, or ``file:<word/file>`` for a
    clip without a speaker id (``_silence_`` clips, other names)."""
    spk = speaker_of(name)
    if spk is not None:
        return "spk:" + spk
    p = Path(str(name))
    return f"file:{p.parent.name}/{p.name}"


def _unit_hash(key: str, seed: int) -> float:
    h = hashlib.sha1(f"{int(seed)}:{key}".encode("utf-8")).digest()
    return int.from_bytes(h[:8], "big") / 2.0 ** 64


def speaker_split(names, labels, val_fraction: float = 0.5, *, seed: int = 0,
                  n_classes: int = len(CLASSES)) -> tuple[np.ndarray, np.ndarray]:
    """Speaker-disjoint, class-stratified split of clips into ``(train, validation)``
    index arrays (sorted).  See the module doc.

    ``names``: the clips' file names (``word/SPEAKER_nohash_N.wav``); ``labels``: their
    class indices; ``val_fraction``: the share of every class that goes to validation
    (in (0, 1)); ``seed``: a different seed gives a different, equally valid split.
    """
    if not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(f"speaker_split: val_fraction must be in (0, 1), got {val_fraction}")
    names = [str(n) for n in names]
    labels = np.asarray(labels, dtype=np.int64)
    if len(names) != labels.shape[0]:
        raise ValueError(f"speaker_split: {len(names)} names but {labels.shape[0]} labels")
    if not names:
        raise ValueError("speaker_split: no clips to split")
    f = float(val_fraction)
    groups: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        groups.setdefault(group_of(n), []).append(i)
    order = sorted(groups, key=lambda g: (_unit_hash(g, seed), g))
    total = np.bincount(labels, minlength=n_classes).astype(np.float64)
    seen = np.zeros(n_classes)
    val = np.zeros(n_classes)
    side: dict[str, bool] = {}
    for g in order:
        cnt = np.bincount(labels[groups[g]], minlength=n_classes).astype(np.float64)
        cls = cnt > 0
        seen2 = seen + cnt
        w = 1.0 / np.maximum(total, 1.0)
        cost_val = float(np.sum(w[cls] * (val[cls] + cnt[cls] - f * seen2[cls]) ** 2))
        cost_tr = float(np.sum(w[cls] * (val[cls] - f * seen2[cls]) ** 2))
        if cost_val == cost_tr:
            to_val = _unit_hash(g, seed + 1) < f
        else:
            to_val = cost_val < cost_tr
        side[g] = to_val
        seen = seen2
        if to_val:
            val += cnt
    # Repair: a class with >= 2 groups must have clips on both sides.
    for c in range(n_classes):
        with_c = [g for g in order if np.any(labels[groups[g]] == c)]
        if len(with_c) < 2:
            continue
        for want in (True, False):
            if not any(side[g] == want for g in with_c):
                # move the group of this class with the fewest clips (ties: hash order)
                g = min(with_c, key=lambda g: (len(groups[g]), order.index(g)))
                side[g] = want
    tr = sorted(i for g in order if not side[g] for i in groups[g])
    va = sorted(i for g in order if side[g] for i in groups[g])
    if not tr or not va:
        raise ValueError(f"speaker_split: {len(groups)} speaker group(s) cannot be split into two "
                         "non-empty parts; the folder needs clips of at least two speakers")
    return np.asarray(tr, dtype=np.int64), np.asarray(va, dtype=np.int64)


class ClipSubset:
    """A view of some clips of a :class:`~learnafe.data.KeywordDataset` (or of another view).

    Item ``j`` is the base data set's clip ``indices[j]`` with the base's own
    per-clip randomness (noise, shifts), so a subset sees exactly the audio the
    full set would.  Supports what training and evaluation use: ``len``,
    ``labels``, ``waveform``, ``with_snr``, ``set_epoch``, ``class_counts``,
    ``name``, ``root``, ``split``, ``length``.
    """

    def __init__(self, base, indices):
        self.base = base
        self.indices = np.asarray(indices, dtype=np.int64)
        if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= len(base)):
            raise IndexError("ClipSubset: indices out of range of the base data set")
        self.labels = base.labels[self.indices]

    @classmethod
    def stratified(cls, base, n: int, seed: int) -> "ClipSubset":
        """``n`` clips drawn at random with the class proportions of ``base`` (deterministic)."""
        rng = np.random.default_rng([int(seed), 202])
        picked = []
        labels = base.labels
        classes = np.unique(labels)
        for c in classes:
            idx = np.flatnonzero(labels == c)
            k = max(1, int(round(n * idx.size / labels.size)))
            picked.append(rng.permutation(idx)[:k])
        sel = np.sort(np.concatenate(picked))
        if sel.size > n:
            sel = np.sort(rng.permutation(sel)[:n])
        return cls(base, sel)

    def __len__(self) -> int:
        return int(self.indices.size)

    def __getattr__(self, name):  # root, split, length, sample_rate, ... of the base
        if name in ("base", "indices", "labels"):
            raise AttributeError(name)
        return getattr(self.base, name)

    def waveform(self, j: int) -> np.ndarray:
        return self.base.waveform(int(self.indices[j]))

    def __getitem__(self, j: int):
        x, _ = self.base[int(self.indices[j])]
        return x, int(self.labels[j])

    def name(self, j: int) -> str:
        return self.base.name(int(self.indices[j]))

    def with_snr(self, snr_db, noise=None) -> "ClipSubset":
        return ClipSubset(self.base.with_snr(snr_db, noise), self.indices)

    def set_epoch(self, epoch: int) -> None:
        self.base.set_epoch(epoch)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(CLASSES))
        return {c: int(k) for c, k in zip(CLASSES, counts)}


def speaker_halves(dataset, *, val_fraction: float = 0.5, seed: int = 0) -> tuple[ClipSubset, ClipSubset]:
    """The two sides ``(train, validation)`` of :func:`speaker_split` of a data set, as views."""
    names = [dataset.name(i) for i in range(len(dataset))]
    tr, va = speaker_split(names, dataset.labels, val_fraction, seed=seed)
    return ClipSubset(dataset, tr), ClipSubset(dataset, va)


def _allocate(n: int, weights: np.ndarray) -> np.ndarray:
    """Split ``n`` into integer parts proportional to ``weights`` (largest remainders)."""
    share = n * weights / weights.sum()
    base = np.floor(share).astype(np.int64)
    rest = n - int(base.sum())
    if rest > 0:
        order = np.argsort(-(share - base), kind="stable")
        base[order[:rest]] += 1
    return base


class MixedDataset:
    """Several data sets in one training set, drawn with per-source weights (module doc).

    ``sources``: list of ``(dataset, weight)`` or ``(dataset, weight, name)``; each
    dataset supports ``len``, ``labels``, ``waveform(i)`` and optionally ``set_epoch``
    and ``name(i)`` (a :class:`~learnafe.data.KeywordDataset` or a :class:`ClipSubset`).
    ``epoch_clips``: clips per epoch (``None``: the sum of the sources' sizes).
    Call :meth:`set_epoch` before each epoch: it draws the epoch's clips and sets
    ``labels``; item ``i`` is clip ``source_index[i]`` of source ``source_of[i]``.
    """

    def __init__(self, sources, *, epoch_clips: int | None = None, seed: int = 0):
        if not sources:
            raise ValueError("MixedDataset: give at least one source")
        self.sources, self.weights, self.names = [], [], []
        for k, s in enumerate(sources):
            ds, w = s[0], float(s[1])
            name = s[2] if len(s) > 2 else f"source{k}"
            if not (w >= 0 and np.isfinite(w)):
                raise ValueError(f"MixedDataset: weight of {name} must be a finite number >= 0, got {w}")
            if w > 0 and len(ds) == 0:
                raise ValueError(f"MixedDataset: source {name} has no clips but weight {w}")
            self.sources.append(ds)
            self.weights.append(w)
            self.names.append(str(name))
        self.weights = np.asarray(self.weights, dtype=np.float64)
        if not self.weights.sum() > 0:
            raise ValueError("MixedDataset: at least one source needs a weight > 0")
        n = sum(len(ds) for ds, w in zip(self.sources, self.weights) if w > 0)
        self.epoch_clips = int(epoch_clips) if epoch_clips else n
        if self.epoch_clips < 1:
            raise ValueError(f"MixedDataset: epoch_clips must be >= 1, got {epoch_clips}")
        self.seed = int(seed)
        self.counts = _allocate(self.epoch_clips, self.weights)
        first = self.sources[int(np.flatnonzero(self.weights > 0)[0])]
        self.root = getattr(first, "root", None)
        self.split = "train"
        self.length = getattr(first, "length", None)
        self.sample_rate = getattr(first, "sample_rate", None)
        self.epoch = -1
        self.set_epoch(0)

    def _take(self, k: int, epoch: int) -> np.ndarray:
        """The clips of source ``k`` in ``epoch``: positions ``[epoch*n, (epoch+1)*n)`` of
        the endless sequence of seeded permutations of the source."""
        n, size = int(self.counts[k]), len(self.sources[k])
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        start, stop = epoch * n, (epoch + 1) * n
        out = []
        for cycle in range(start // size, (stop - 1) // size + 1):
            perm = np.random.default_rng([self.seed, _STREAM_MIX, k, cycle]).permutation(size)
            lo, hi = max(start - cycle * size, 0), min(stop - cycle * size, size)
            out.append(perm[lo:hi])
        return np.concatenate(out).astype(np.int64)

    def set_epoch(self, epoch: int) -> None:
        epoch = int(epoch)
        for ds in self.sources:
            if hasattr(ds, "set_epoch"):
                ds.set_epoch(epoch)
        if epoch == self.epoch:
            return
        self.epoch = epoch
        src, idx = [], []
        for k in range(len(self.sources)):
            take = self._take(k, epoch)
            src.append(np.full(take.size, k, dtype=np.int64))
            idx.append(take)
        self.source_of = np.concatenate(src)
        self.source_index = np.concatenate(idx)
        self.labels = np.asarray([self.sources[k].labels[j] for k, j in
                                  zip(self.source_of, self.source_index)], dtype=np.int64)

    def __len__(self) -> int:
        return self.epoch_clips

    def waveform(self, i: int) -> np.ndarray:
        return self.sources[int(self.source_of[i])].waveform(int(self.source_index[i]))

    def __getitem__(self, i: int):
        import torch

        return torch.from_numpy(self.waveform(i)), int(self.labels[i])

    def name(self, i: int) -> str:
        k = int(self.source_of[i])
        ds = self.sources[k]
        inner = ds.name(int(self.source_index[i])) if hasattr(ds, "name") else str(self.source_index[i])
        return f"{self.names[k]}:{inner}"

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(CLASSES))
        return {c: int(k) for c, k in zip(CLASSES, counts)}

    def describe(self) -> list[dict]:
        """One dict per source: name, clips available, weight, clips per epoch."""
        return [{"name": nm, "clips": len(ds), "weight": float(w), "clips_per_epoch": int(c)}
                for nm, ds, w, c in zip(self.names, self.sources, self.weights, self.counts)]


def normalise_sources(sources) -> list[dict]:
    """Check and complete a list of source specs (``{"path", "weight", "use"}``)."""
    if sources is None:
        return []
    if not isinstance(sources, (list, tuple)):
        raise ValueError(f"sources must be a list of {{'path', 'weight', 'use'}} objects, got "
                         f"{type(sources).__name__}")
    out = []
    for k, s in enumerate(sources):
        if isinstance(s, (str, os.PathLike)):
            s = {"path": str(s)}
        if not isinstance(s, dict) or not s.get("path"):
            raise ValueError(f"sources[{k}] must be an object with at least a 'path', got {s!r}")
        unknown = sorted(set(s) - {"path", "weight", "use", "name"})
        if unknown:
            raise ValueError(f"sources[{k}] has unknown key(s) {unknown}; valid: path, weight, use, name")
        w = s.get("weight", 1.0)
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not (w >= 0 and np.isfinite(w)):
            raise ValueError(f"sources[{k}].weight must be a number >= 0, got {w!r}")
        use = s.get("use", "auto")
        if use not in SOURCE_USES + ("auto",):
            raise ValueError(f"sources[{k}].use must be one of {SOURCE_USES + ('auto',)}, got {use!r}")
        out.append({"path": str(s["path"]), "weight": float(w), "use": use,
                    "name": str(s.get("name") or Path(str(s["path"])).name)})
    return out


def _auto_use(root: Path) -> str:
    has_lists = (root / "validation_list.txt").is_file() or (root / "testing_list.txt").is_file()
    if detect_layout(root) == "gsc" and (has_lists or (root / "_background_noise_").is_dir()):
        return "train"
    return "all"


def open_source(path, use: str = "auto", clips: ClipOptions | None = None, *,
                val_fraction: float = 0.5, split_seed: int = 0, loading: LoadOptions | None = None):
    """One source as a data set: the clips of folder ``path`` selected by ``use`` (module doc).

    ``use="auto"``: ``"train"`` for a Speech Commands tree (it has split lists or
    ``_background_noise_``), else ``"all"``.  ``clips``: rate, length, seed, noise and
    augmentation as in :class:`~learnafe.data.KeywordDataset` (``clips.noise`` may be a
    folder or a :class:`~learnafe.data.noise.BackgroundNoise`; training noise comes from the
    ``"train"`` portion of the recordings; ``clips.augment``, a
    :class:`~learnafe.data.augment.VoiceAugment`, for training uses only; None: the defaults).  ``val_fraction``,
    ``split_seed``: the speaker split of the ``speaker-*`` uses.  ``loading``: cache, workers,
    progress (None: no cache, one process, no progress bars).  Returns a ``KeywordDataset`` or a :class:`ClipSubset` of one.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"training source {root} is not a folder")
    if use == "auto":
        use = _auto_use(root)
    if use not in SOURCE_USES:
        raise ValueError(f"open_source: use must be one of {SOURCE_USES} or 'auto', got {use!r}")
    clips, loading = clips or ClipOptions(), loading or LoadOptions()
    if isinstance(clips.noise, (str, os.PathLike)) and clips.snr_db is not None:
        portion = "train" if use in ("train", "all", "speaker-train") else "validation"
        clips = replace(clips, noise=BackgroundNoise(clips.noise, clips.sample_rate, portion=portion))
    if use == "train":
        return KeywordDataset(root, "train", clips, loading)
    train_like = use in ("all", "speaker-train")
    ds = KeywordDataset(root, "all", clips, loading, unknown_fraction=None, silence_fraction=0.0,
                        random_shift=train_like)
    if use == "all":
        return ds
    tr, va = speaker_split([ds.name(i) for i in range(len(ds))], ds.labels, val_fraction,
                           seed=split_seed)
    return ClipSubset(ds, tr if use == "speaker-train" else va)


#: The real-speech folders the project uses when they are there (CC BY 4.0, Speech Commands).
SHARED_SETS = {"real": "gsc-v2-testset-dev", "unknown": "gsc-unknown-words",
               "noise": "gsc-background-noise"}


def find_shared(name: str) -> Path | None:
    """The folder ``<shared>/data/<name>`` if it exists, else None.

    Looked for in ``$LEARNAFE_SHARED_DATA/<name>`` when that variable is set (and
    only there), else in ``../shared/data/<name>`` relative to the working directory,
    then relative to the repository this package lives in (so a fresh clone beside
    ``shared/`` finds it from anywhere).
    """
    env = os.environ.get("LEARNAFE_SHARED_DATA")
    if env is not None:
        cands = [Path(env) / name]
    else:
        cands = [Path("..") / "shared" / "data" / name]
        repo = Path(__file__).resolve().parents[3]
        if (repo / "pyproject.toml").is_file():
            cands.append(repo.parent / "shared" / "data" / name)
    for c in cands:
        if c.is_dir():
            return c
    return None
