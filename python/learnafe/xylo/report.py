"""The XyloAudio 3 section of ``learnafe report``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from learnafe.gate import markdown
from learnafe.training.evaluate import heldout_markdown
from learnafe.xylo.deploy import EXPORT_JSON


def _pct(x) -> str:
    return f"{100 * x:.1f} %"


def report_section(run_dir, out_dir) -> str | None:
    """Markdown for a run exported with ``learnafe export-xylo`` (None if it was not);
    its plot is copied into ``out_dir`` and linked relative to ``out_dir``'s parent."""
    run_dir = Path(run_dir)
    path = next((p for p in (run_dir / "xylo" / EXPORT_JSON, run_dir / EXPORT_JSON)
                 if p.is_file()), None)
    if path is None:
        return None
    res = json.loads(path.read_text())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["## XyloAudio 3 deployment", "",
             f"The co-designed bank of `{run_dir}` designed into the chip's fixed-point filter bank "
             f"at {res['chip_sample_rate']:.3f} Hz (`learnafe export-xylo`; registers in "
             f"`{Path(res['out_dir']) / 'registers.json'}`).", "",
             "| ch | target f0 (Hz) | chip f0 (Hz) | f0 err | target Q | chip Q | Q err |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in res["channels"]:
        lines.append(f"| {r['channel']} | {r['target_f0_hz']:.1f} | {r['realised_f0_hz']:.1f} | "
                     f"{100 * r['f0_error']:+.2f} % | {r['target_q']:.3f} | {r['realised_q']:.3f} | "
                     f"{100 * r['q_error']:+.2f} % |")
    png = Path(res["out_dir"]) / "xylo_responses.png"
    if png.is_file():
        name = f"xylo_responses_{run_dir.name}.png"
        shutil.copyfile(png, out_dir / name)
        # ``learnafe report`` writes REPORT.md next to its image folder ``out_dir``.
        lines += ["", f"![XyloAudio 3 responses]({out_dir.name}/{name})"]
    acc = res.get("accuracy")
    if acc:
        names = {"run": "run's own bank (float, 20 kHz)", "xylo_float": "XyloAudio 3, float design",
                 "xylo_bitexact": "XyloAudio 3, bit-exact"}
        sets = " + ".join(f"{k} ({n} clips)" for k, n in acc.get("sets", {"test": acc["n"]}).items())
        lines += ["", f"Accuracy of the run's classifier (%) on its held-out sets, {sets}; the gate "
                      "judges the pooled clips:", ""]
        if "held_out" in acc:
            lines.append(heldout_markdown(acc["held_out"], names).rstrip())
        else:  # results written before the held-out sets
            keys = list(acc["run"]["accuracy"])
            lines += ["| front end | " + " | ".join(keys) + " | mean |", "| --- |" + " --- |" * (len(keys) + 1)]
            for k, label in names.items():
                if k in acc:
                    a = acc[k]
                    lines.append(f"| {label} | " + " | ".join(_pct(a["accuracy"][c]) for c in keys)
                                 + f" | {_pct(a['mean_accuracy'])} |")
    if res.get("gate"):
        lines += ["", markdown(res["gate"], "XyloAudio 3 bit-exact bank").rstrip()]
    ft = res.get("finetune_bitexact")
    if ft:
        lines += ["", f"Fine-tuning the classifier on the bit-exact features for {ft['epochs']} "
                      "epoch(s): " + ", ".join(f"{k} {_pct(ft['before'][k])} -> {_pct(ft['after'][k])}"
                                               for k in ft["after"])]
    return "\n".join(lines) + "\n"
