"""A tiny keyword data set for the training tests: every class is a distinct tone
pattern, so a classifier can learn it in a few steps, in the Speech Commands layout
(word folders, split lists, _background_noise_)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np

from learnafe.data import CLASSES, KEYWORDS, write_wav

RATE = 16000


def _clip(rng, label_freq, seconds):
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    f = label_freq * (1 + 0.03 * rng.standard_normal())
    on = int(rng.uniform(0.1, 0.3) * n)
    dur = int(0.5 * n)
    env = np.zeros(n)
    env[on:on + dur] = np.hanning(dur)
    return (0.3 * env * np.sin(2 * np.pi * f * t) * rng.uniform(0.5, 1.0)).astype(np.float32)


def make_toy_dataset(root, *, per_word: int = 12, seconds: float = 0.3, seed: int = 0,
                     unknown_words=("bed", "cat")) -> Path:
    """Write the toy set under ``root``; returns root.  Split lists put the last
    two clips of every word in validation and test."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    freqs = np.geomspace(200, 5000, len(KEYWORDS) + len(unknown_words))
    val, test = [], []
    for w, f in zip(tuple(KEYWORDS) + tuple(unknown_words), freqs):
        (root / w).mkdir(parents=True, exist_ok=True)
        for k in range(per_word):
            spk = hashlib.sha1(f"{w}{k}".encode()).hexdigest()[:8]
            name = f"{spk}_nohash_{k}.wav"
            write_wav(root / w / name, _clip(rng, f, seconds), RATE)
            if k == per_word - 1:
                test.append(f"{w}/{name}")
            elif k == per_word - 2:
                val.append(f"{w}/{name}")
    (root / "validation_list.txt").write_text("\n".join(val) + "\n")
    (root / "testing_list.txt").write_text("\n".join(test) + "\n")
    bg = root / "_background_noise_"
    bg.mkdir(exist_ok=True)
    for j in range(2):
        write_wav(bg / f"noise{j}.wav", (0.1 * rng.standard_normal(RATE * 6)).astype(np.float32), RATE)
    return root


def make_real_folders(root) -> tuple[Path, Path, Path, Path]:
    """The toy set and, beside it, folders in the layout of the shared real recordings:
    ``real`` (12 class folders, 6 fake speakers each: copies of toy clips; silence is noise),
    ``unk`` (extra unknown words, one per toy ``cat`` clip) and ``noise`` (one long recording).
    Returns ``(toy, real, unk, noise)``."""
    root = Path(root)
    toy = make_toy_dataset(root / "toy", per_word=10)
    real = root / "real"
    rng = np.random.default_rng(3)
    for cls in CLASSES:
        folder = {"unknown": "_unknown_", "silence": "_silence_"}.get(cls, cls)
        (real / folder).mkdir(parents=True)
        src = sorted((toy / (cls if cls not in ("unknown", "silence") else "bed")).glob("*.wav"))
        for s in range(6):
            if cls == "silence":
                write_wav(real / folder / f"{s}.wav", (0.05 * rng.standard_normal(4800)).astype(np.float32), RATE)
            else:
                prefix = "bed_" if cls == "unknown" else ""
                shutil.copy(src[s], real / folder / f"{prefix}{s:08x}_nohash_0.wav")
    unk = root / "unk"
    (unk / "cat").mkdir(parents=True)
    for k, p in enumerate(sorted((toy / "cat").glob("*.wav"))):
        shutil.copy(p, unk / "cat" / f"{k + 100:08x}_nohash_0.wav")
    noise = root / "noise"
    noise.mkdir()
    write_wav(noise / "hum.wav", (0.1 * np.sin(np.arange(RATE * 5) * 0.05)).astype(np.float32), RATE)
    return toy, real, unk, noise


def tiny_config(data, **kw) -> dict:
    """Options for a fast run on the toy set (0.3 s clips, small DSCNN)."""
    cfg = dict(data=str(data), clip_seconds=0.3, batch_size=16, epochs=2, width=16, depth=1,
               warmup_steps=2, progress=False, threads=1, p_noise=0.5, time_masks=1,
               time_mask_frames=3, freq_masks=1, freq_mask_channels=1, eval_snrs=[10.0])
    cfg.update(kw)
    return cfg


def cli_setup(tmp_path, **options):
    """For tests that run ``learnafe train`` in subprocesses: writes the toy data set and a
    config file; returns ``(train argv prefix without --out, environment)``."""
    import json
    import os

    data = make_toy_dataset(tmp_path / "data")
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(tiny_config(data, **options)))
    env = dict(os.environ, LEARNAFE_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    return ["-m", "learnafe", "-q", "train", "--config", str(cfg_path), "--out"], env


def train_until_first_checkpoint(opts: dict, run_dir, every: int = 3) -> None:
    """Train ``opts`` into ``run_dir`` and stop right after its first checkpoint (every
    ``every`` steps), as a killed run would; the caller resumes it with ``train``."""
    import pytest

    from learnafe.training import train
    from learnafe.training.loop import TrainingLoop

    save = TrainingLoop.save_checkpoint

    class Stop(Exception):
        pass

    def save_then_stop(loop):
        save(loop)
        raise Stop

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(TrainingLoop, "save_checkpoint", save_then_stop)
        with pytest.raises(Stop):
            train({**opts, "checkpoint_every": every}, run_dir, test=False)
