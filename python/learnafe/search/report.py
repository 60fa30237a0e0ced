"""The search section of ``learnafe report``."""

from __future__ import annotations

import shutil
from pathlib import Path


def _fmt_point(p: dict, names: list[str], report: bool) -> list[str]:
    o = p["objectives"]
    cells = [str(p["trial"]), f"{100 * o['error']:.2f}", f"{o['power_w']:.4g}", f"{o['area_um2']:.4g}"]
    if report:
        value = p.get("report_accuracy")
        cells.append("" if value is None else f"{100 * value:.2f}")
    v = p.get("versus_reference")
    cells += ([f"{v['error_change_points']:+.2f}", f"{v['power_saving_pct']:+.1f}", f"{v['area_saving_pct']:+.1f}"]
              if v else ["", "", ""])
    for n in names:
        value = p["params"].get(n)
        cells.append(f"{value:.4g}" if isinstance(value, float) else str(value))
    return cells


def report_section(path, out_dir) -> str | None:
    """Markdown for the search directory ``path`` (``None`` if it is not a finished search).

    The Pareto plot is copied into ``out_dir`` (the report's image folder) and
    linked relative to ``out_dir``'s parent (the report's folder), so the
    Markdown file and its images move together.
    """
    from learnafe.search.runner import load_search

    path = Path(path)
    if not (path / "summary.json").is_file() or not (path / "journal.jsonl").is_file():
        return None
    s = load_search(path)
    out_dir = Path(out_dir)
    names = [p["name"] for p in s["parameters"]]
    lines = [f"## Design-space search: `{path}`", ""]
    lines.append(f"{s['trials']} trials ({s['ok']} ok, {s['failed']} failed) of `{s['trial_function']}`, "
                 f"optimiser {s['optimizer']}, {s['mode']}-objective, wall time {s['wall_s']:.0f} s "
                 f"over {s['sessions']} session(s), {s['trial_time_s']:.0f} s of trial time.")
    lines.append("")
    ref = s.get("reference")
    if ref and ref.get("status") == "ok":
        o = ref["objectives"]
        held_out = (ref.get("metrics") or {}).get("report_accuracy")
        lines.append(f"Conventional design: error {100 * o['error']:.2f} %, power {o['power_w']:.4g} W, "
                     f"capacitor area {o['area_um2']:.4g} um^2"
                     + (f", report accuracy {100 * held_out:.2f} %." if held_out is not None else "."))
        lines.append("")
    png = path / "pareto.png"
    if png.is_file():
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / f"search-{path.name}-pareto.png"
        if png.resolve() != target.resolve():
            shutil.copyfile(png, target)
        lines += [f"![Pareto front of {path.name}]({out_dir.name}/{target.name})", ""]
    report = any("report_accuracy" in p for p in s["pareto"])
    header = ["trial", "error %", "power W", "area um^2", *(["report accuracy %"] if report else []),
              "d error (points)", "power saving %", "area saving %", *names]
    lines.append(f"Pareto set ({len(s['pareto'])} points, error/power/area all minimised):")
    lines.append("")
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for p in s["pareto"]:
        lines.append("| " + " | ".join(_fmt_point(p, names, report)) + " |")
    lines.append("")
    if report:
        lines += ["The error is the objective the optimiser minimised (the clips that chose each trial's "
                  "epoch); the report accuracy is measured on held-out clips it was never told "
                  "(`report_accuracy` of each trial's metrics).", ""]
    for label, best in (s.get("best") or {}).items():
        if label == "lowest_error" or not best:
            continue
        for which in ("lowest_power", "lowest_area"):
            v = best[which]["versus_reference"]
            lines.append(f"- {which.replace('_', ' ')} with error <= {100 * best['limit_error']:.2f} % "
                         f"({label.replace('_', ' ')}): trial {best[which]['trial']}, power saving "
                         f"{v['power_saving_pct']:.1f} %, area saving {v['area_saving_pct']:.1f} %, error "
                         f"{v['error_change_points']:+.2f} points vs the conventional design")
    lines.append("")
    return "\n".join(lines)
