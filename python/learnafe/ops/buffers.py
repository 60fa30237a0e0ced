"""Bounded cache of large kernel output buffers, shared by the filter-bank op
(:mod:`learnafe.ops.kernels`) and the XyloAudio 3 bank (:mod:`learnafe.xylo.bank`).

``learnafe.ops`` exports :func:`set_output_cache_limit` and :func:`empty_output_cache`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Any, Iterator

import numpy as np


class OutputCache:
    """Bounded cache of large output buffers (like PyTorch's CUDA caching allocator).

    A fresh ``[B, C, T]`` output of tens of MB costs as much as the kernel
    itself: the kernel maps new pages and zeroes them on first touch.  This
    cache keeps the buffers of large outputs (>= ``_MIN_BYTES``) and hands a
    buffer out again once nothing references it any more.  Each buffer is
    one NumPy ``uint8`` array (``raw``, 4096-byte-aligned data inside it);
    every array handed out is a view of it (so ``view.base is raw``, and any
    further view, or a torch tensor from ``torch.from_numpy``, keeps ``raw``
    referenced).  A buffer is free exactly when the cache holds the only
    reference, checked with ``sys.getrefcount`` under a lock (and the GIL),
    so a buffer is never handed out while still referenced.

    The buffers held (in use or free) total at most ``limit`` bytes; past
    it, free buffers are released least recently used first, and if that is
    not enough the output is allocated normally (uncached).  Sizes are
    rounded up to 2 MiB buckets; a buffer is reused only for its bucket.
    ``limit = 0`` disables the cache (``set_output_cache_limit(0)`` or the
    environment variable ``LEARNAFE_OUTPUT_CACHE_MB=0``).
    """

    _MIN_BYTES = 1 << 20
    _BUCKET = 2 << 20
    _ALIGN = 4096

    def __init__(self, limit: int):
        self.limit = int(limit)
        self._lock = threading.Lock()
        self._entries: list[list[Any]] = []  # [bucket bytes, raw], most recently used first

    @staticmethod
    def _free(entry: list[Any]) -> bool:
        # references: the entry's slot and getrefcount's argument
        return sys.getrefcount(entry[1]) <= 2

    def held_bytes(self) -> int:
        with self._lock:
            return sum(e[0] for e in self._entries)

    def empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if self.limit <= 0 or nbytes < self._MIN_BYTES:
            return np.empty(shape, dtype=dtype)
        size = -(-nbytes // self._BUCKET) * self._BUCKET
        with self._lock:
            raw = None
            for i, e in enumerate(self._entries):
                if e[0] == size and self._free(e):
                    raw = e[1]
                    self._entries.insert(0, self._entries.pop(i))
                    break
            if raw is None:
                held = sum(e[0] for e in self._entries)
                for i in range(len(self._entries) - 1, -1, -1):  # least recently used first
                    if held + size <= self.limit:
                        break
                    if self._free(self._entries[i]):
                        held -= self._entries.pop(i)[0]
                if held + size > self.limit:
                    return np.empty(shape, dtype=dtype)
                raw = np.empty(size + self._ALIGN, dtype=np.uint8)
                self._entries.insert(0, [size, raw])
        off = (-raw.ctypes.data) % self._ALIGN
        return raw[off:off + nbytes].view(dtype).reshape(shape)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _env_cache_limit() -> int:
    v = os.environ.get("LEARNAFE_OUTPUT_CACHE_MB")
    if v is None or v.strip() == "":
        return 1024 << 20
    try:
        mb = float(v)
    except ValueError:
        raise ValueError(f"LEARNAFE_OUTPUT_CACHE_MB must be a number of MiB (0 disables the cache), "
                         f"got {v!r}") from None
    return max(0, int(mb * (1 << 20)))


output_cache = OutputCache(_env_cache_limit())


def set_output_cache_limit(nbytes: int) -> int:
    """Bound the cache of large kernel outputs (op forward, XyloAudio 3 bank) to ``nbytes`` (0 disables it).

    Returns the previous limit.  Default 1 GiB (``LEARNAFE_OUTPUT_CACHE_MB``
    in MiB overrides it at import).  Buffers above a lowered limit that are
    held are released now, least recently used first (one still in use is freed
    when its last user drops it).
    """
    if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)) or nbytes < 0:
        raise ValueError(f"nbytes must be a non-negative integer (0 disables the cache), got {nbytes!r}")
    c = output_cache
    with c._lock:
        prev, c.limit = c.limit, int(nbytes)
        held = sum(e[0] for e in c._entries)
        # least recently used first; dropping the cache's reference to a buffer
        # still in use lets its last user free it
        while c._entries and held > c.limit:
            held -= c._entries.pop()[0]
    return prev


def empty_output_cache() -> None:
    """Release every cached output buffer (buffers still in use stay valid)."""
    output_cache.clear()


@contextlib.contextmanager
def output_cache_disabled() -> Iterator[None]:
    """Outputs inside the block are fresh allocations; the held buffers stay for afterwards."""
    c = output_cache
    with c._lock:
        prev, c.limit = c.limit, 0
    try:
        yield
    finally:
        with c._lock:
            c.limit = prev
