"""Tables of a bank's circuit (per channel f0, Q, I1, I2, C1, C2, power, area, noise) and of its
discretisation error."""

from __future__ import annotations

import math

import numpy as np
import torch

COLUMNS = ("ch", "f0 (Hz)", "Q", "gain", "I1 (pA)", "I2 (pA)", "C1 (fF)", "C2 (fF)", "power (nW)", "area (um^2)",
           "noise (uV rms)")


def channel_rows(spec: dict) -> list[list[str]]:
    """Formatted rows of a ``learnafe-bank/1`` spec, one per channel, plus a totals row."""
    rows = []
    for j, ch in enumerate(spec["channels"]):
        noise = ch.get("output_noise_vrms")
        rows.append([str(j), f"{ch['f0_hz']:.1f}", f"{ch['q']:.3f}", f"{ch['gain']:.3f}", f"{ch['I1'] * 1e12:.2f}",
                     f"{ch['I2'] * 1e12:.2f}", f"{ch['C1'] * 1e15:.1f}", f"{ch['C2'] * 1e15:.1f}",
                     f"{ch['power_w'] * 1e9:.3f}", f"{ch['area_um2']:.1f}",
                     "" if noise is None else f"{noise * 1e6:.1f}"])
    rows.append(["total", "", "", "", "", "", "", "", f"{spec['total_power_w'] * 1e9:.3f}",
                 f"{spec['total_cap_area_um2']:.1f}", ""])
    return rows


def _markdown(columns, rows) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---:" for _ in columns) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def markdown_table(spec: dict) -> str:
    """The channel table of a bank spec as GitHub markdown."""
    return _markdown(COLUMNS, channel_rows(spec))


def discretization_error(bank, f_max_fraction: float = 0.4, n_points: int = 4000) -> dict:
    """How far the discretised biquads are from the analog response, per channel, for f <= f_max_fraction * fs.

    Returns lists: ``in_band_db`` (largest |dB difference| where the analog response is
    above its -3 dB level) and ``magnitude`` (largest | |H_d| - |H_a| | over all f,
    relative to the channel's peak gain).
    """
    fs = bank.sample_rate
    with torch.no_grad():
        f_lo = float(bank.center_frequencies().min()) / 20
        f = np.geomspace(f_lo, f_max_fraction * fs, n_points)
        ha = bank.frequency_response(f).abs().numpy()
        hd = bank.frequency_response(f, discrete=True).abs().numpy()
        gain = bank.gain().numpy()
    band = ha >= gain[:, None] / math.sqrt(2)
    err_db = np.abs(20 * np.log10(hd / ha))
    in_band = [float(err_db[c][band[c]].max()) if band[c].any() else float("nan") for c in range(len(gain))]
    mag = (np.abs(hd - ha).max(axis=1) / gain).tolist()
    return {"f_max_hz": f_max_fraction * fs, "method": bank.discretization, "in_band_db": in_band, "magnitude": mag}


def discretization_table(err: dict, centres) -> str:
    rows = [[str(c), f"{f0:.1f}", f"{db:.3f}", f"{m:.4f}"]
            for c, (f0, db, m) in enumerate(zip(centres, err["in_band_db"], err["magnitude"]))]
    return _markdown(("ch", "f0 (Hz)", "max in-band error (dB)", "max magnitude error"), rows)


__all__ = ["COLUMNS", "channel_rows", "markdown_table", "discretization_error", "discretization_table"]
