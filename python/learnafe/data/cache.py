"""A disk cache of decoded, resampled audio, memory-mapped for fast epochs.

One cache entry holds a list of wav files decoded to mono float32 at one
sample rate, concatenated into a single raw file (``audio.f32``) with an
offsets table, so a clip is a zero-copy slice of a :class:`numpy.memmap`.
Memory maps are shared between DataLoader worker processes through the page
cache, and re-opened lazily after pickling.

The entry's name is a SHA-1 over the cache format version, the sample rate and
every file's absolute path, size and modification time, so changing, adding or
removing a wav gives a new entry.  An entry is built in a temporary directory
and renamed into place when complete: an interrupted build leaves nothing
that could be mistaken for a valid entry.  Files that cannot be decoded are
recorded in ``manifest.json`` (with the reason) and have an empty slice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from learnafe._jsonio import write_json

from .audio import AudioError, load_audio

__all__ = ["AudioCache", "cache_key"]

log = logging.getLogger(__name__)
CACHE_FORMAT = "learnafe-audio-cache/1"


def cache_key(paths, sample_rate: int) -> str:
    """Hex digest identifying a list of files (path, size, mtime) at a sample rate."""
    h = hashlib.sha1()
    h.update(f"{CACHE_FORMAT}\n{int(sample_rate)}\n".encode())
    for p in paths:
        p = os.path.abspath(os.fspath(p))
        try:
            st = os.stat(p)
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}\0missing\n".encode())
    return h.hexdigest()


def _decode(args):
    path, rate = args
    try:
        return load_audio(path, rate), None
    except AudioError as exc:
        return None, str(exc)


class AudioCache:
    """Decoded audio for ``paths`` at ``sample_rate``, stored under ``cache_dir``.

    Building decodes every file (in ``workers`` processes when > 1) with a
    progress bar.  ``cache[i]`` is the float32 audio of ``paths[i]`` (a
    read-only memmap slice); ``bad`` maps the index of every undecodable file
    to the reason.
    """

    def __init__(self, paths, sample_rate: int, cache_dir: str | os.PathLike, *,
                 workers: int = 1, progress: bool = True):
        self.paths = [os.fspath(p) for p in paths]
        self.sample_rate = int(sample_rate)
        self.key = cache_key(self.paths, self.sample_rate)
        self.dir = Path(cache_dir) / self.key
        if not (self.dir / "manifest.json").is_file():
            self._build(workers, progress)
        manifest = json.loads((self.dir / "manifest.json").read_text())
        if manifest.get("format") != CACHE_FORMAT or manifest.get("count") != len(self.paths):
            raise RuntimeError(f"AudioCache: {self.dir} is not a valid cache entry; delete it and retry")
        self.bad = {int(k): v for k, v in manifest["bad"].items()}
        self.offsets = np.load(self.dir / "offsets.npy")
        self._data = None

    # -- building -----------------------------------------------------------
    def _build(self, workers: int, progress: bool) -> None:
        from learnafe._progress import progress as progress_bar

        parent = self.dir.parent
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.key[:8]}-", dir=parent))
        log.info("caching %d files at %d Hz into %s", len(self.paths), self.sample_rate, self.dir)
        offsets = np.zeros(len(self.paths) + 1, dtype=np.int64)
        bad: dict[int, str] = {}
        jobs = [(p, self.sample_rate) for p in self.paths]
        try:
            with open(tmp / "audio.f32", "wb") as f, progress_bar(total=len(jobs), unit="clip",
                                                                  desc="decoding audio",
                                                                  disable=not progress) as bar:
                if workers > 1 and len(jobs) > 64:
                    with ProcessPoolExecutor(workers) as pool:
                        results = pool.map(_decode, jobs, chunksize=32)
                        self._write(results, f, offsets, bad, bar)
                else:
                    self._write(map(_decode, jobs), f, offsets, bad, bar)
            np.save(tmp / "offsets.npy", offsets)
            write_json(tmp / "manifest.json", {
                "format": CACHE_FORMAT, "sample_rate": self.sample_rate,
                "count": len(self.paths), "paths": self.paths,
                "bad": {str(k): v for k, v in bad.items()}}, indent=1, newline=False)
            try:
                os.replace(tmp, self.dir)
            except OSError:  # another process finished the same entry first
                if not (self.dir / "manifest.json").is_file():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @staticmethod
    def _write(results, f, offsets, bad, bar) -> None:
        for i, (x, err) in enumerate(results):
            if err is not None:
                bad[i] = err
                offsets[i + 1] = offsets[i]
            else:
                f.write(np.ascontiguousarray(x, dtype="<f4").tobytes())
                offsets[i + 1] = offsets[i] + x.shape[0]
            bar.update(1)

    # -- reading ------------------------------------------------------------
    @property
    def data(self) -> np.ndarray:
        if self._data is None:
            n = int(self.offsets[-1])
            if n == 0:
                self._data = np.zeros(0, dtype=np.float32)
            else:
                self._data = np.memmap(self.dir / "audio.f32", dtype="<f4", mode="r", shape=(n,))
        return self._data

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.data[self.offsets[i]:self.offsets[i + 1]]

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_data"] = None  # re-open the memmap in the receiving process
        return state
