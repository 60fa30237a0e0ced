"""Tables of a bank's circuit: per channel f0, Q, I1, I2, C1, C2, power, area."""

from __future__ import annotations

COLUMNS = ("ch", "f0 (Hz)", "Q", "gain", "I1 (pA)", "I2 (pA)", "C1 (fF)", "C2 (fF)", "power (nW)", "area (um^2)")


def channel_rows(spec: dict) -> list[list[str]]:
    """Formatted rows of a ``learnafe-bank/1`` spec, one per channel, plus a totals row."""
    rows = []
    for j, ch in enumerate(spec["channels"]):
        rows.append([str(j), f"{ch['f0_hz']:.1f}", f"{ch['q']:.3f}", f"{ch['gain']:.3f}", f"{ch['I1'] * 1e12:.2f}",
                     f"{ch['I2'] * 1e12:.2f}", f"{ch['C1'] * 1e15:.1f}", f"{ch['C2'] * 1e15:.1f}",
                     f"{ch['power_w'] * 1e9:.3f}", f"{ch['area_um2']:.1f}"])
    rows.append(["total", "", "", "", "", "", "", "", f"{spec['total_power_w'] * 1e9:.3f}",
                 f"{spec['total_cap_area_um2']:.1f}"])
    return rows


def markdown_table(spec: dict) -> str:
    """The channel table of a bank spec as GitHub markdown."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---:" for _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in channel_rows(spec)]
    return "\n".join(lines)


__all__ = ["COLUMNS", "channel_rows", "markdown_table"]
