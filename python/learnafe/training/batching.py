"""Batching helpers of the trainer: the sampler's index set, the background batch loader and
class-stratified limits of a data set."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import torch

from learnafe.training.data import ClipSubset

__all__ = ["IndexSet", "BatchPrefetcher", "limit_clips"]


class IndexSet(torch.utils.data.Dataset):
    """The indices ``0 .. n-1`` as a data set (what a sampler draws from)."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n


class BatchPrefetcher:
    """Loads the next training batch in a background thread while the current step runs.

    A batch is a function of the seed, the epoch and the clip indices only (the data set
    and the augmenter draw from per-clip seeded streams), so the prefetched batch is exactly
    the one the step would load itself: only the wall time changes.  The data set is never
    read by two threads at once (a load in the calling thread waits for the pending one).
    """

    def __init__(self, load):
        self._load = load
        self._pool: ThreadPoolExecutor | None = None
        self._key = None
        self._future = None

    @staticmethod
    def _key_of(idx, epoch):
        return int(epoch), tuple(int(i) for i in idx)

    def get(self, idx, epoch: int, next_idx=None):
        pending, self._future = self._future, None
        if pending is not None and self._key == self._key_of(idx, epoch):
            batch = pending.result()
        else:
            if pending is not None:
                pending.result()
            batch = self._load(idx, epoch)
        if next_idx is not None:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="learnafe-batch")
            self._key = self._key_of(next_idx, epoch)
            self._future = self._pool.submit(self._load, next_idx, epoch)
        return batch

    def close(self) -> None:
        if self._future is not None:
            self._future.cancel()
            self._future = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def limit_clips(ds, n: int, seed: int):
    """A class-stratified random subset of ``n`` clips of ``ds`` (same object, reindexed view)."""
    if n >= len(ds):
        return ds
    return ClipSubset.stratified(ds, n, seed)
