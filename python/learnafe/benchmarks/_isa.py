"""``learnafe bench --isa``: the benchmark sections on each kernel ISA path, compared.

Each path runs in its own Python process with ``LEARNAFE_ISA`` set (the
kernels choose their path once per process).  A path the CPU lacks, or one the
kernels did not take, is reported "not available".  The comparison is one
table of every section's ratios (:func:`section_ratios`) per path (Markdown and JSON) and one PNG.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from learnafe._jsonio import atomic_write, write_json
from learnafe.benchmarks._environment import ISA_PATHS, isa_available

log = logging.getLogger("learnafe.bench.isa")


def paths_of(value: str) -> list[str]:
    """The ISA paths that ``--isa value`` names (``all``: every path)."""
    if value == "all":
        return list(ISA_PATHS)
    if value not in ISA_PATHS:
        raise ValueError(f"--isa must be one of {', '.join(ISA_PATHS)} or 'all', got {value!r}")
    return [value]


@dataclass
class PathRun:
    """One ISA path's outcome: its section results, or why it did not run."""

    isa: str
    available: bool
    results: dict = field(default_factory=dict)
    note: str = ""


def child_command(args, sections: list[str], json_path: Path) -> list[str]:
    """The ``learnafe bench`` command line that one path's subprocess runs."""
    cmd = [sys.executable, "-m", "learnafe", "-q", "bench", "--only", *sections,
           "--json", str(json_path), "--seed", str(args.seed)]
    if args.quick:
        cmd.append("--quick")
    if args.threads is not None:
        cmd += ["--threads", str(args.threads)]
    return cmd


def run_path(args, isa: str, sections: list[str], flags=None) -> PathRun:
    """Run the sections on one ISA path in a subprocess (or report it unavailable)."""
    if not isa_available(isa, flags):
        return PathRun(isa, False, note="not available (the CPU lacks its instructions)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{isa}.json"
        env = {**os.environ, "LEARNAFE_ISA": isa}
        proc = subprocess.run(child_command(args, sections, out), env=env, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"the bench on ISA path {isa!r} failed (exit code {proc.returncode})")
        results = json.loads(out.read_text())
    ran = {r["environment"]["kernel_isa"] for r in results.values()}
    if ran != {isa}:
        return PathRun(isa, False, results, note=f"not available (the kernels ran {', '.join(sorted(ran))})")
    return PathRun(isa, True, results)


def section_ratios(result: dict) -> dict[str, float]:
    """A section's ratios: its ``ratios`` and ``memory_limit`` dicts and its top-level numbers named
    ``*speedup*``."""
    ratios = dict(result.get("ratios") or {})
    ratios.update(result.get("memory_limit") or {})
    ratios.update({k: v for k, v in result.items()
                   if "speedup" in k and isinstance(v, (int, float)) and not isinstance(v, bool)})
    return ratios


def comparison(runs: list[PathRun]) -> dict:
    """The comparison table: every ``section.ratio`` row with one value per ISA path."""
    rows: dict[str, dict[str, float | None]] = {}
    for run in runs:
        for section, result in run.results.items():
            for name, value in section_ratios(result).items():
                rows.setdefault(f"{section}.{name}", {})[run.isa] = value if run.available else None
    return {
        "paths": {r.isa: {"available": r.available, "note": r.note,
                          "environment": next(iter(r.results.values()), {}).get("environment")}
                  for r in runs},
        "rows": {name: {r.isa: vals.get(r.isa) for r in runs} for name, vals in rows.items()},
        "results": {r.isa: r.results for r in runs if r.available},
    }


def markdown(table: dict) -> str:
    """The comparison as a Markdown table (one column per ISA path)."""
    paths = list(table["paths"])
    lines = ["| measure | " + " | ".join(paths) + " |", "| --- |" + " ---: |" * len(paths)]
    for name, vals in table["rows"].items():
        cells = ["n/a" if vals[p] is None else f"{vals[p]:.3g}" for p in paths]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    notes = [f"- {p}: {info['note']}" for p, info in table["paths"].items() if info["note"]]
    env = next((i["environment"] for i in table["paths"].values() if i["environment"]), None)
    if env and "cpu_model" in env:
        build = env["build"]
        notes.append(f"- CPU: {env['cpu_model']}, {env['cores_usable']} cores, threads {env['threads']}, "
                     f"torch {env['torch']}, compiler {build['compiler_id']} {build['compiler_version']}")
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


def plot(table: dict, path: Path) -> None:
    """A grouped bar chart of the ratios per ISA path (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(table["rows"])
    paths = [p for p, info in table["paths"].items() if info["available"]]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(names) + 2), 4.5))
    width = 0.8 / max(len(paths), 1)
    x = np.arange(len(names))
    for i, p in enumerate(paths):
        vals = [table["rows"][n][p] or np.nan for n in names]
        ax.bar(x + i * width, vals, width, label=p)
    ax.set_xticks(x + 0.4 - width / 2, names, rotation=60, ha="right", fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("ratio")
    unavailable = [p for p, info in table["paths"].items() if not info["available"]]
    title = "bench ratios per kernel ISA path"
    if unavailable:
        title += f" (not available: {', '.join(unavailable)})"
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def compare(args, paths: list[str], sections: list[str]) -> int:
    """Run ``sections`` on every path, print the table, and write it (JSON, Markdown, PNG)."""
    runs = [run_path(args, isa, sections) for isa in paths]
    table = comparison(runs)
    text = markdown(table)
    print("\n== ISA paths ==")
    print(text)
    if args.json:
        json_path = Path(args.json)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        write_json(json_path, table, newline=False)
        md = json_path.with_suffix(".md")
        atomic_write(md, lambda f: f.write(text.encode()))
        log.info("wrote %s and %s", json_path, md)
    if args.plot_dir:
        png = Path(args.plot_dir) / "isa.png"
        png.parent.mkdir(parents=True, exist_ok=True)
        plot(table, png)
        log.info("wrote %s", png)
    return 0
