"""Batches for training and evaluation on top of :class:`learnafe.data.KeywordDataset`.

Randomness is a function of ``(seed, epoch, clip index)`` only -- never of the
process, the batch composition or the number of ranks.  The data set already
draws its crop offset and noise (SNR-aware, ``snr_low_db``..``snr_high_db``)
that way; :class:`Augmenter` adds, from its own seeded stream per clip:

- speed/pitch perturbation: the clip is resampled by a factor in
  ``[1 - speed, 1 + speed]`` (linear interpolation; the length is kept by
  centring), which moves formants and pitch together like a tape-speed change;
- time shift by up to ``time_shift_ms`` (zero fill, no wrap-around);
- a level change of up to ``gain_db``;
- SpecAugment-like masks on the feature map: ``time_masks`` bands of up to
  ``time_mask_frames`` frames and ``freq_masks`` bands of up to
  ``freq_mask_channels`` channels, returned as a boolean mask that the model
  fills with the clip's mean feature.

This is what makes resumption exact and an N-process run reproduce the
1-process run (see :mod:`learnafe.training.distributed`).

Evaluation noise: a folder with its own ``_background_noise_`` uses it; any
other folder (e.g. real recordings in the 12-class layout) uses the noise of
the training data set (its test portion), see :func:`eval_noise_folder`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from learnafe.data import BackgroundNoise, ClipOptions, KeywordDataset, LoadOptions
from learnafe.data.augment import VoiceAugment
from learnafe.data.classes import SILENCE_LABEL
from learnafe.data.sources import (
    ClipSubset,  # (also re-exported: moved to the data layer)
    MixedDataset,
    open_source,
)

__all__ = ["open_split", "Augmenter", "ClipSubset", "eval_noise_folder", "stack_batch",
           "epoch_batches", "CACHE_DIR", "uses_sources", "noise_folder", "training_set",
           "real_validation_set", "real_report_set", "describe_training_data", "voice_augment"]

log = logging.getLogger(__name__)

#: Decoded-audio cache shared by all runs (git-ignored ``data/``).
CACHE_DIR = os.environ.get("LEARNAFE_CACHE", "data/cache")
_STREAM_AUG = 101  # first entry of the augmentation seed sequence (distinct from the data set's)


def open_split(root, split: str, cfg, *, snr=None, noise=None, progress: bool = False,
               workers: int = 1, augment=None) -> KeywordDataset:
    """The data set of ``split`` with the run's sample rate, seed and noise settings.

    ``snr``: ``None`` (clean), a fixed dB value, or ``"train"`` for the run's
    SNR-aware training range with probability ``p_noise``.  The training split
    uses the run's ``seed``; every other split uses ``eval_seed``, so that
    validation and test clips (subsampled ``unknown``, cut ``silence``) and
    their noise are the same for every run.  ``augment``: a
    :class:`~learnafe.data.augment.VoiceAugment` (training only, :func:`voice_augment`).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"data folder {root} does not exist; create the embedded default set with "
            f"`learnafe data synth --size small --out {root}` or pass --data DIR")
    seed = cfg.output.seed if split == "train" else cfg.evaluation.eval_seed
    clips = ClipOptions(sample_rate=cfg.data.sample_rate, clip_seconds=cfg.data.clip_seconds, seed=seed,
                        augment=augment)
    if noise is not None and noise != "":
        clips = replace(clips, noise=noise if not isinstance(noise, (str, os.PathLike)) else str(noise))
    if snr == "train":
        clips = replace(clips, snr_db=(cfg.augment.snr_low_db, cfg.augment.snr_high_db),
                        noise_prob=cfg.augment.p_noise)
    elif snr is not None:
        clips = replace(clips, snr_db=float(snr))
    return KeywordDataset(root, split, clips, LoadOptions(cache_dir=CACHE_DIR, workers=workers, progress=progress))


def eval_noise_folder(data_root, train_root=None) -> str | None:
    """Noise for fixed-SNR evaluation of ``data_root``: its own ``_background_noise_``
    if present, else the training data set's, else None (clean evaluation only)."""
    for root in (data_root, train_root):
        if root is None:
            continue
        bg = Path(root) / "_background_noise_"
        if bg.is_dir() and any(bg.glob("*.wav")):
            return str(bg)
    return None


def uses_sources(cfg) -> bool:
    """True when the run trains on more than ``data``'s training split (``real``,
    ``sources`` or a fixed ``epoch_clips``); otherwise training reads ``data`` alone,
    exactly as a single-folder run always has."""
    return bool(cfg.data.real) or bool(cfg.data.sources) or bool(cfg.data.epoch_clips)


def noise_folder(cfg) -> str | None:
    """The run's noise recordings: ``cfg.data.noise``, else ``data``'s ``_background_noise_``."""
    if cfg.data.noise:
        if not Path(cfg.data.noise).is_dir():
            raise FileNotFoundError(f"training option data.noise={cfg.data.noise!r} is not a folder; give a "
                                    "folder of noise wavs (e.g. ../shared/data/gsc-background-noise)")
        return str(cfg.data.noise)
    return eval_noise_folder(cfg.data.root)


def voice_augment(cfg) -> VoiceAugment | None:
    """The run's voice/room augmentation (``cfg.augment.voice_augment``), None when it is off."""
    aug = VoiceAugment(cfg.augment.voice_augment, cfg.data.sample_rate)
    return aug if aug.enabled else None


def training_set(cfg, *, progress: bool = False, workers: int = 1):
    """The run's training set.

    Without ``real``/``sources``/``epoch_clips``: ``data``'s training split (SNR-aware
    noise from ``noise`` or the data set's own recordings), as :func:`open_split`.
    Otherwise a :class:`~learnafe.data.sources.MixedDataset` of ``data``'s training
    split (weight ``data_weight``), the training speakers of ``real`` (``real_weight``)
    and every entry of ``sources``, all mixed with the same noise (the first 80 % of
    every recording, :data:`learnafe.data.noise.NOISE_PORTIONS`).  Every training clip but
    ``silence`` gets the voice/room augmentation of ``voice_augment`` (:func:`voice_augment`)
    before its noise.
    """
    augment = voice_augment(cfg)
    if not uses_sources(cfg):
        return open_split(cfg.data.root, cfg.data.train_split, cfg, snr="train", noise=cfg.data.noise or None,
                          progress=progress, workers=workers, augment=augment)
    folder = noise_folder(cfg)
    noise = BackgroundNoise(folder, cfg.data.sample_rate, portion="train") if folder else None
    snr = (cfg.augment.snr_low_db, cfg.augment.snr_high_db) if noise is not None else None
    clips = ClipOptions(sample_rate=cfg.data.sample_rate, clip_seconds=cfg.data.clip_seconds,
                        seed=cfg.output.seed, snr_db=snr, noise=noise, noise_prob=cfg.augment.p_noise,
                        augment=augment)
    kw = dict(val_fraction=cfg.data.real_val_fraction, split_seed=cfg.data.real_split_seed,
              loading=LoadOptions(cache_dir=CACHE_DIR, workers=workers, progress=progress))
    parts = []
    if cfg.data.data_weight > 0:
        parts.append((open_split(cfg.data.root, cfg.data.train_split, cfg, snr="train" if noise else None,
                                 noise=noise, progress=progress, workers=workers, augment=augment),
                      cfg.data.data_weight, "data"))
    if cfg.data.real and cfg.data.real_weight > 0:
        parts.append((open_source(cfg.data.real, "speaker-train", clips, **kw), cfg.data.real_weight, "real"))
    for src in cfg.data.sources:
        if src["weight"] > 0:
            parts.append((open_source(src["path"], src["use"], clips, **kw), src["weight"], src["name"]))
    mix = MixedDataset(parts, epoch_clips=cfg.data.epoch_clips or None, seed=cfg.output.seed)
    log.info("training set: %s", "; ".join(
        f"{d['name']} {d['clips']} clips, weight {d['weight']:g}, {d['clips_per_epoch']} per epoch"
        for d in mix.describe()))
    return mix


def real_validation_set(cfg, portion: str = "validation", *, progress: bool = False):
    """``(clips, noise)``: the validation speakers of ``cfg.data.real`` (clean clips, ``eval_seed``)
    and the noise for their fixed-SNR views, from the ``portion`` of the run's noise
    recordings (``"validation"``: 80-90 %, used to choose the best epoch; ``"test"``:
    90-100 %, the final report, the protocol of ``learnafe evaluate``).  Identical on
    every run."""
    clips = open_source(cfg.data.real, "speaker-val",
                        ClipOptions(sample_rate=cfg.data.sample_rate, clip_seconds=cfg.data.clip_seconds,
                                    seed=cfg.evaluation.eval_seed),
                        val_fraction=cfg.data.real_val_fraction, split_seed=cfg.data.real_split_seed,
                        loading=LoadOptions(cache_dir=CACHE_DIR, progress=progress))
    folder = noise_folder(cfg)
    noise = BackgroundNoise(folder, cfg.data.sample_rate, portion=portion) if folder else None
    return clips, noise


def real_report_set(cfg, *, progress: bool = False):
    """``(clips, noise)`` of the final report on the real validation speakers: their clips that
    did not choose the best epoch (with ``limit_val``, the trainer chooses it on a stratified
    subset; the report takes the complement, so no reported clip informed a choice), with noise
    from the 90-100 % portion of the recordings.  Without ``limit_val``: all of them."""
    clips, noise = real_validation_set(cfg, "test", progress=progress)
    if cfg.data.limit_val and cfg.data.limit_val < len(clips):
        chosen = ClipSubset.stratified(clips, cfg.data.limit_val, cfg.evaluation.eval_seed).indices
        clips = ClipSubset(clips, np.setdiff1d(np.arange(len(clips)), chosen))
    return clips, noise


def describe_training_data(cfg) -> str:
    """One line naming the data a run trained on (for logs and reports)."""
    parts = [f"{cfg.data.root} (training split, weight {cfg.data.data_weight:g})"] if cfg.data.data_weight > 0 else []
    if cfg.data.real and cfg.data.real_weight > 0:
        parts.append(f"{cfg.data.real} (training speakers, {100 * (1 - cfg.data.real_val_fraction):.0f} % of "
                     f"every class, weight {cfg.data.real_weight:g})")
    for s in cfg.data.sources:
        if s["weight"] > 0:
            parts.append(f"{s['path']} ({s['use']}, weight {s['weight']:g})")
    text = " + ".join(parts)
    text += f"; noise {noise_folder(cfg) or 'none'}"
    if voice_augment(cfg) is not None:
        text += "; voice/room augmentation on"
    if cfg.data.real:
        text += f"; validation: the other speakers of {cfg.data.real}"
    return text


class Augmenter:
    """Per-clip waveform and feature-mask augmentation (see the module doc)."""

    def __init__(self, cfg, n_channels: int, n_frames: int):
        self.seed = int(cfg.output.seed)
        self.sr = int(cfg.data.sample_rate)
        self.speed = float(cfg.augment.speed)
        self.shift = int(round(cfg.augment.time_shift_ms * 1e-3 * self.sr))
        self.gain_db = float(cfg.augment.gain_db)
        self.time_masks, self.time_width = int(cfg.augment.time_masks), int(cfg.augment.time_mask_frames)
        self.freq_masks, self.freq_width = int(cfg.augment.freq_masks), int(cfg.augment.freq_mask_channels)
        self.n_channels, self.n_frames = int(n_channels), int(n_frames)

    def rng(self, epoch: int, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, _STREAM_AUG, int(epoch), int(index)])

    def waveform(self, x: np.ndarray, label: int, epoch: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Augmented copy of clip ``x`` and its feature mask ``[C, F]`` (True = masked)."""
        rng = self.rng(epoch, index)
        n = x.shape[0]
        r = 1.0 + rng.uniform(-self.speed, self.speed) if self.speed > 0 else 1.0
        shift = int(rng.integers(-self.shift, self.shift + 1)) if self.shift > 0 else 0
        gain = 10.0 ** (rng.uniform(-self.gain_db, self.gain_db) / 20.0) if self.gain_db > 0 else 1.0
        y = x.astype(np.float32, copy=True)
        if r != 1.0 and label != SILENCE_LABEL:
            # Output sample k reads input position centre + (k - centre) * r.
            c = (n - 1) / 2.0
            pos = c + (np.arange(n) - c) * r
            y = np.interp(pos, np.arange(n), y, left=0.0, right=0.0).astype(np.float32)
        if shift > 0:
            y = np.concatenate([np.zeros(shift, np.float32), y[:n - shift]])
        elif shift < 0:
            y = np.concatenate([y[-shift:], np.zeros(-shift, np.float32)])
        y *= np.float32(gain)
        mask = np.zeros((self.n_channels, self.n_frames), dtype=bool)
        for _ in range(self.time_masks):
            w = int(rng.integers(0, self.time_width + 1))
            if w:
                t0 = int(rng.integers(0, max(1, self.n_frames - w + 1)))
                mask[:, t0:t0 + w] = True
        for _ in range(self.freq_masks):
            w = int(rng.integers(0, self.freq_width + 1))
            if w:
                c0 = int(rng.integers(0, max(1, self.n_channels - w + 1)))
                mask[c0:c0 + w, :] = True
        return y, mask


def stack_batch(dataset: KeywordDataset, indices, *, augmenter: Augmenter | None = None,
                epoch: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(audio [B, T], labels [B], mask [B, C, F] or None)`` for the given clip indices."""
    xs, masks = [], []
    labels = dataset.labels[np.asarray(indices, dtype=np.int64)]
    for i, lab in zip(indices, labels):
        x = dataset.waveform(int(i))
        if augmenter is not None:
            x, m = augmenter.waveform(x, int(lab), epoch, int(i))
            masks.append(m)
        xs.append(x)
    audio = torch.from_numpy(np.stack(xs))
    mask = torch.from_numpy(np.stack(masks)) if masks else None
    return audio, torch.from_numpy(labels.astype(np.int64)), mask


def epoch_batches(dataset, batch_size: int, epoch: int, seed: int, stream: int) -> list[np.ndarray]:
    """The full batches of clip indices of one epoch of a single-process loop (fine-tuning):
    a permutation drawn from ``(seed, stream, epoch)``; calls ``dataset.set_epoch(epoch)``."""
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    perm = np.random.default_rng([int(seed), int(stream), int(epoch)]).permutation(len(dataset))
    return [perm[s * batch_size:(s + 1) * batch_size] for s in range(len(dataset) // batch_size)]
