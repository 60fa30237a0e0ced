"""PNG of a search's trade-off: error vs power and error vs area."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from learnafe.search.pareto import front_2d, non_dominated, objective_matrix

_UNITS = {"power_w": ("power", "W"), "area_um2": ("capacitor area", "um$^2$")}


def _scale(values: np.ndarray, unit: str) -> tuple[float, str]:
    """An engineering prefix for the axis (nW, uW, ...), so ticks stay readable."""
    if unit != "W":
        return 1.0, unit
    peak = float(np.nanmax(np.abs(values))) if values.size else 1.0
    for factor, prefix in ((1e-12, "p"), (1e-9, "n"), (1e-6, "u"), (1e-3, "m")):
        if peak < factor * 1e3:
            return factor, prefix + unit
    return 1.0, unit


def plot_front(records: list, reference: dict | None, path, *, title: str | None = None) -> Path:
    """Two panels, error vs power and error vs area.

    Grey dots: every successful trial; filled circles: the trials on the 3-D
    Pareto front (error, power, area); the line: the 2-D front of each panel;
    star: the reference (conventional) design.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in records if r["status"] == "ok"]
    if not ok:
        raise ValueError("no successful trial to plot")
    matrix = objective_matrix(ok)
    on_front = np.zeros(len(ok), dtype=bool)
    on_front[non_dominated(matrix)] = True
    ref = reference["objectives"] if reference and reference.get("status") == "ok" else None

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), sharey=True)
    for ax, col, key in ((axes[0], 1, "power_w"), (axes[1], 2, "area_um2")):
        name, unit = _UNITS[key]
        values = matrix[:, col]
        if ref is not None:
            values = np.append(values, ref[key])
        factor, unit = _scale(values, unit)
        x = matrix[:, col] / factor
        err = 100.0 * matrix[:, 0]
        ax.scatter(x[~on_front], err[~on_front], s=18, color="0.65", label="trial")
        ax.scatter(x[on_front], err[on_front], s=34, color="C0", label="Pareto set (error, power, area)",
                   zorder=3)
        idx = front_2d(x, err)
        ax.step(x[idx], err[idx], where="post", color="C0", lw=1.2, alpha=0.8, label="front in this plane")
        if ref is not None:
            ax.scatter([ref[key] / factor], [100.0 * ref["error"]], marker="*", s=220, color="C3",
                       edgecolor="k", zorder=4, label="conventional design")
        ax.set_xlabel(f"{name} ({unit})")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation error (%)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
