"""Background noise and SNR-aware mixing.

SNR definition (used everywhere in LearnAFE)
--------------------------------------------
The SNR of a mixed clip is measured on the **active part of the speech**:
the clip is cut into 10 ms frames, a frame is *active* when its speech energy
is within :data:`ACTIVE_THRESHOLD_DB` (40 dB) of the loudest frame, and

    SNR = 10 log10( mean(speech[active]^2) / mean(noise[active]^2) )

i.e. speech power and noise power are both taken over the same active
samples.  Leading and trailing silence (most of a 1 s Speech Commands clip)
therefore does not dilute the speech power, and a clip "at 10 dB" sounds
equally noisy whether the word is short or long.  :func:`mix_at_snr` scales the
noise so that this SNR equals the target exactly (to float rounding).

Noise sources are split in time so that training, validation and test never
share noise samples: training draws from the first 80 % of every noise
recording, validation from the next 10 %, test from the last 10 %
(:data:`NOISE_PORTIONS`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .audio import AudioError, load_audio

__all__ = [
    "ACTIVE_THRESHOLD_DB",
    "FRAME_SECONDS",
    "NOISE_PORTIONS",
    "active_mask",
    "snr_db",
    "mix_at_snr",
    "BackgroundNoise",
]

ACTIVE_THRESHOLD_DB = 40.0
FRAME_SECONDS = 0.010
NOISE_PORTIONS = {"train": (0.0, 0.8), "validation": (0.8, 0.9), "test": (0.9, 1.0),
                  "all": (0.0, 1.0)}


def active_mask(x: np.ndarray, sample_rate: float, *,
                threshold_db: float = ACTIVE_THRESHOLD_DB,
                frame_seconds: float = FRAME_SECONDS) -> np.ndarray:
    """Boolean mask of the samples of ``x`` that belong to active frames.

    A frame (``frame_seconds`` long, non-overlapping; the last partial frame
    counts as a frame) is active when its mean power is at least
    ``max frame power - threshold_db``.  An all-zero clip has no active samples.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    hop = max(1, int(round(frame_seconds * sample_rate)))
    nf = -(-n // hop)
    pad = np.zeros(nf * hop)
    pad[:n] = x * x
    frames = pad.reshape(nf, hop)
    counts = np.full(nf, hop, dtype=np.float64)
    counts[-1] = n - (nf - 1) * hop
    power = frames.sum(axis=1) / counts
    peak = power.max(initial=0.0)
    if peak <= 0.0:
        return np.zeros(n, dtype=bool)
    active = power >= peak * 10.0 ** (-threshold_db / 10.0)
    return np.repeat(active, hop)[:n]


def snr_db(speech: np.ndarray, noise: np.ndarray, sample_rate: float, **kw) -> float:
    """SNR in dB of ``speech`` against ``noise`` on the speech's active part (see module doc)."""
    speech = np.asarray(speech, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    if speech.shape != noise.shape:
        raise ValueError(f"snr_db: speech {speech.shape} and noise {noise.shape} differ in shape")
    m = active_mask(speech, sample_rate, **kw)
    if not m.any():
        raise ValueError("snr_db: speech has no active part (all zeros)")
    pn = np.mean(noise[m] ** 2)
    if pn <= 0.0:
        return float("inf")
    return float(10.0 * np.log10(np.mean(speech[m] ** 2) / pn))


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr: float, sample_rate: float,
               **kw) -> np.ndarray:
    """Return ``speech + g * noise`` with ``g`` chosen so the active-part SNR is ``snr`` dB.

    ``speech`` and ``noise`` are 1-D arrays of the same length.  A speech clip
    without any active part (all zeros) or a noise segment that is zero on the
    active part is returned unchanged (there is no gain that gives the target).
    The result is float32.
    """
    speech = np.asarray(speech)
    noise = np.asarray(noise)
    if speech.ndim != 1 or speech.shape != noise.shape:
        raise ValueError(f"mix_at_snr: speech {speech.shape} and noise {noise.shape} must be "
                         "1-D arrays of the same length")
    if not np.isfinite(snr):
        raise ValueError(f"mix_at_snr: snr must be a finite number of dB, got {snr}")
    s64 = speech.astype(np.float64)
    n64 = noise.astype(np.float64)
    m = active_mask(s64, sample_rate, **kw)
    if not m.any():
        return speech.astype(np.float32)
    ps = np.mean(s64[m] ** 2)
    pn = np.mean(n64[m] ** 2)
    if pn <= 0.0:
        return speech.astype(np.float32)
    gain = np.sqrt(ps / (pn * 10.0 ** (snr / 10.0)))
    return (s64 + gain * n64).astype(np.float32)


class BackgroundNoise:
    """A set of noise recordings at one sample rate, restricted to a time portion.

    Parameters
    ----------
    source:
        a folder of wav files (e.g. a data set's ``_background_noise_``), a
        list of wav paths, or a list of 1-D arrays already at ``sample_rate``.
    sample_rate:
        rate the recordings are resampled to.
    portion:
        ``(start, stop)`` fractions of every recording to use, or a split name
        (``"train"``, ``"validation"``, ``"test"``, ``"all"``; see
        :data:`NOISE_PORTIONS`).

    :meth:`segment` draws a random segment with a caller-supplied
    :class:`numpy.random.Generator`, so the same generator state always gives
    the same noise (the data set seeds one per clip).  Recordings are chosen
    with probability proportional to their usable length.  Unreadable files
    are skipped with one warning; a clear error is raised when none is usable.
    """

    def __init__(self, source, sample_rate: int, portion="all"):
        if isinstance(portion, str):
            if portion not in NOISE_PORTIONS:
                raise ValueError(f"BackgroundNoise: portion must be one of {sorted(NOISE_PORTIONS)} "
                                 f"or a (start, stop) pair, got {portion!r}")
            portion = NOISE_PORTIONS[portion]
        start, stop = float(portion[0]), float(portion[1])
        if not 0.0 <= start < stop <= 1.0:
            raise ValueError(f"BackgroundNoise: portion must satisfy 0 <= start < stop <= 1, "
                             f"got {portion}")
        self.sample_rate = int(sample_rate)
        self.portion = (start, stop)
        self.names: list[str] = []
        self.folder = str(source) if isinstance(source, (str, os.PathLike)) else None
        recordings: list[np.ndarray] = []
        bad: list[str] = []
        if isinstance(source, (str, os.PathLike)):
            folder = Path(source)
            if not folder.is_dir():
                raise FileNotFoundError(f"BackgroundNoise: noise folder {folder} does not exist")
            source = sorted(folder.glob("*.wav"))
        for item in source:
            if isinstance(item, (str, os.PathLike)):
                try:
                    x = load_audio(item, self.sample_rate)
                except AudioError as exc:
                    bad.append(str(exc))
                    continue
                self.names.append(Path(item).name)
            else:
                x = np.asarray(item, dtype=np.float32)
                if x.ndim != 1:
                    raise ValueError(f"BackgroundNoise: noise arrays must be 1-D, got {x.shape}")
                self.names.append(f"array{len(self.names)}")
            n = x.shape[0]
            recordings.append(np.ascontiguousarray(x[int(start * n):int(stop * n)], np.float32))
        if bad:
            import warnings

            warnings.warn(f"BackgroundNoise: skipped {len(bad)} unreadable noise file(s): "
                          + "; ".join(bad), stacklevel=2)
        if not recordings or not any(r.size for r in recordings):
            raise ValueError("BackgroundNoise: no usable noise recording (need at least one "
                             "readable, non-empty wav file)")
        self.recordings = recordings
        lengths = np.array([r.shape[0] for r in recordings], dtype=np.float64)
        self._weights = lengths / lengths.sum()

    def __len__(self) -> int:
        return len(self.recordings)

    def __repr__(self) -> str:
        where = self.folder if self.folder is not None else f"{len(self.recordings)} recordings"
        return f"{where} [{self.portion[0]:g}-{self.portion[1]:g}]"

    def segment(self, rng: np.random.Generator, length: int) -> np.ndarray:
        """A ``length``-sample float32 segment from a random recording at a random offset.

        A recording shorter than ``length`` is repeated (tiled) to fill it.
        """
        k = int(rng.choice(len(self.recordings), p=self._weights))
        r = self.recordings[k]
        if r.shape[0] <= length:
            reps = -(-length // r.shape[0]) + 1
            r = np.tile(r, reps)
        off = int(rng.integers(0, r.shape[0] - length + 1))
        return r[off:off + length].copy()
