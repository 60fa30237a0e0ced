"""Overview figure of a keyword data set (``learnafe data plot``)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .audio import load_audio
from .classes import CLASSES

__all__ = ["plot_dataset"]


def _spectrogram(ax, x, rate, title):
    from scipy import signal

    f, t, s = signal.spectrogram(x, rate, nperseg=400, noverlap=300)
    ax.pcolormesh(t, f / 1000, 10 * np.log10(s + 1e-12), shading="auto", vmin=-120, vmax=-40,
                  cmap="magma")
    ax.set_title(title, fontsize=8)
    ax.set_ylim(0, rate / 2000)
    ax.tick_params(labelsize=7)


def plot_dataset(root, out, *, word: str = "yes", sample_rate: int = 16000, seed: int = 0) -> Path:
    """Write a PNG with (top) spectrograms of ``word`` by each engine of a synthetic
    set (from ``metadata.csv``; first files of ``word/`` otherwise), (middle) the
    power spectra of the background-noise recordings and (bottom) the class
    counts per split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import signal

    from .dataset import ClipOptions, KeywordDataset, LoadOptions, detect_layout

    root = Path(root)
    examples: list[tuple[str, Path]] = []
    meta = root / "metadata.csv"
    if meta.is_file():
        seen = set()
        with open(meta) as f:
            for r in csv.DictReader(f):
                if r["word"] == word and r["engine"] not in seen and (root / r["file"]).is_file():
                    seen.add(r["engine"])
                    examples.append((f"{r['engine']}: {r['voice']}", root / r["file"]))
    if not examples and (root / word).is_dir():
        rng = np.random.default_rng(seed)
        files = sorted((root / word).glob("*.wav"))
        for k in rng.permutation(len(files))[:4]:
            examples.append((files[k].name, files[k]))
    noises = sorted((root / "_background_noise_").glob("*.wav")) \
        if (root / "_background_noise_").is_dir() else []
    ncol = max(len(examples), 1)
    fig = plt.figure(figsize=(max(8, 2.6 * ncol), 8.5))
    gs = fig.add_gridspec(3, ncol, height_ratios=[1, 1, 1], hspace=0.45)
    for j, (title, path) in enumerate(examples):
        ax = fig.add_subplot(gs[0, j])
        _spectrogram(ax, load_audio(path, sample_rate), sample_rate, f"'{word}' {title}")
        if j == 0:
            ax.set_ylabel("kHz", fontsize=8)
    ax = fig.add_subplot(gs[1, :])
    for path in noises:
        x = load_audio(path, sample_rate)
        f, p = signal.welch(x, sample_rate, nperseg=2048)
        ax.semilogx(f[1:], 10 * np.log10(p[1:] + 1e-20), label=path.stem, lw=1)
    ax.set_xlabel("Hz", fontsize=8)
    ax.set_ylabel("PSD (dB/Hz)", fontsize=8)
    ax.set_title("_background_noise_ recordings", fontsize=9)
    if noises:
        ax.legend(fontsize=7, ncol=4, loc="lower left")
    ax.tick_params(labelsize=7)
    ax = fig.add_subplot(gs[2, :])
    layout = detect_layout(root)
    splits = ["test"] if layout == "test12" and not (root / "testing_list.txt").exists() \
        else ["train", "validation", "test"]
    width = 0.8 / len(splits)
    for k, split in enumerate(splits):
        ds = KeywordDataset(root, split, ClipOptions(sample_rate=sample_rate), LoadOptions(progress=False))
        counts = ds.class_counts()
        ax.bar(np.arange(len(CLASSES)) + k * width, [counts[c] for c in CLASSES], width,
               label=f"{split} ({len(ds)})")
    ax.set_xticks(np.arange(len(CLASSES)) + 0.4 - width / 2)
    ax.set_xticklabels(CLASSES, fontsize=7)
    ax.set_ylabel("clips", fontsize=8)
    ax.set_title(f"class counts per split ({root.name})", fontsize=9)
    ax.legend(fontsize=7)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return out
