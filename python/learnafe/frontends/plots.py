"""Plots of filter banks: magnitude responses, ideal analog vs discretised."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from learnafe.frontends.analog import AnalogFilterBank

log = logging.getLogger(__name__)


def _db(h) -> np.ndarray:
    mag = np.abs(h.detach().cpu().numpy() if isinstance(h, torch.Tensor) else np.asarray(h))
    return 20 * np.log10(np.maximum(mag, 1e-12))


def plot_bank_response(bank, path=None, *, n_points: int = 2000, f_min: float | None = None,
                       title: str | None = None, ax=None, dpi: int = 110):
    """Magnitude responses (dB) of every channel of ``bank`` on a log frequency axis.

    For an :class:`~learnafe.frontends.AnalogFilterBank` the ideal analog response
    (dashed) is drawn with the discretised biquads (solid); for a
    :class:`~learnafe.frontends.DigitalFilterBank` only the biquads.  Saves a PNG if
    ``path`` is given; returns the matplotlib Figure.
    """
    import matplotlib
    from matplotlib.figure import Figure  # no pyplot: leaves the user's backend alone

    fs = bank.sample_rate
    nyq = fs / 2
    if f_min is None:
        with torch.no_grad():
            centres = bank.center_frequencies()
        centres = centres.cpu().numpy() if isinstance(centres, torch.Tensor) else np.asarray(centres)
        f_min = max(1.0, float(np.min(centres)) / 4)
    freqs = np.geomspace(f_min, nyq * 0.999, n_points)
    if ax is None:
        fig = Figure(figsize=(9, 4.8), dpi=dpi)
        ax = fig.subplots()
    else:
        fig = ax.figure
    colors = matplotlib.colormaps["viridis"](np.linspace(0, 0.92, bank.n_channels))
    with torch.no_grad():
        if isinstance(bank, AnalogFilterBank):
            analog = _db(bank.frequency_response(freqs))
            digital = _db(bank.frequency_response(freqs, discrete=True))
        else:
            analog = None
            digital = _db(bank.frequency_response(freqs))
    for c in range(bank.n_channels):
        if analog is not None:
            ax.semilogx(freqs, analog[c], "--", color=colors[c], lw=1.0, alpha=0.8)
        ax.semilogx(freqs, digital[c], "-", color=colors[c], lw=1.3)
    top = float(np.max(digital)) if digital.size else 0.0
    ax.set_ylim(top - 40, top + 3)
    ax.set_xlim(freqs[0], nyq)
    ax.axvline(nyq, color="k", lw=0.8)
    if isinstance(bank, AnalogFilterBank):
        ax.axvline(bank.bounds.f0_max_fraction * fs, color="0.5", lw=0.8, ls=":")
        ax.plot([], [], "k--", lw=1.0, label="ideal analog H(s)")
        ax.plot([], [], "k-", lw=1.3, label=f"discretised ({bank.discretization}, fs = {fs:g} Hz)")
        ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("magnitude (dB)")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title or f"{bank.n_channels}-channel filter bank")
    fig.tight_layout()
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
        log.info("wrote %s", path)
    return fig


__all__ = ["plot_bank_response"]
