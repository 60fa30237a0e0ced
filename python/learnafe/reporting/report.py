"""Markdown report with PNG plots for one or more run directories.

``write_report(["runs/demo/conventional", "runs/demo/codesign"], "runs/demo/report.md")``
writes the report and its PNGs (into ``<report stem>_img/`` next to it):

1. the power / area / accuracy table (test split, every SNR), with power and area
   relative to the conventional design of the same configuration;
2. accuracy vs SNR of every run;
3. filter-bank responses before (the conventional design the run started from)
   and after training, and the per-channel circuit table of every learned bank;
4. training curves (validation accuracy, P/P_ref, A/A_ref per epoch);
5. confusion matrices (clean and the lowest SNR);
6. evaluations on other data (``RUN/eval/*.json``, e.g. real recordings) and
   fine-tuning results (``RUN/finetune*/finetune.json``);
7. the registered sections (:mod:`learnafe.reporting.sections`), each a function
   returning Markdown or None: per run the SPICE verification
   (``learnafe.spice.report_section(run_dir, out_dir)``) and the XyloAudio 3
   deployment (``learnafe.xylo.report_section(run_dir, out_dir)``), and with
   ``search=`` the design-space search (``learnafe.search.report_section(path, out_dir)``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from learnafe._migrate import dotted_options
from learnafe.data import CLASSES
from learnafe.frontends import AnalogFilterBank
from learnafe.frontends.classic import SPEC_FORMAT as CLASSIC_FORMAT
from learnafe.frontends.report import markdown_table
from learnafe.reporting.sections import RUN_SECTIONS, SEARCH_SECTIONS
from learnafe.training.rundir import BANK, CONFIG, METRICS, read_json

__all__ = ["write_report", "load_summary", "EVAL_DIR"]

log = logging.getLogger(__name__)
EVAL_DIR = "eval"  # RUN/eval/<name>.json: evaluations on other data sets


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> bool:
    fig.tight_layout()
    fig.savefig(path)
    _plt().close(fig)
    return True


def load_summary(run_dir) -> dict:
    """What the report needs from a run directory (config, metrics, bank, extras)."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no {CONFIG})")
    if not (run_dir / METRICS).is_file():
        raise FileNotFoundError(f"{run_dir} has no {METRICS} yet; train it first")

    bank = read_json(run_dir / BANK) if (run_dir / BANK).is_file() else None
    s = {"path": run_dir, "name": run_dir.name, "config": read_json(run_dir / CONFIG),
         "metrics": read_json(run_dir / METRICS),
         # the circuit spec (responses, circuit table); a classic bank has no circuit
         "bank": None if isinstance(bank, dict) and bank.get("format") == CLASSIC_FORMAT else bank,
         "evals": {}, "finetunes": {}}
    for p in sorted((run_dir / EVAL_DIR).glob("*.json")):
        s["evals"][p.stem] = read_json(p)
    for p in sorted(run_dir.glob("finetune*/finetune.json")):
        s["finetunes"][p.parent.name] = read_json(p)
    return s


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}"


def _acc_keys(runs) -> list[str]:
    keys = []
    for r in runs:
        t = r["metrics"].get("test") or {}
        for k in t.get("accuracy", {}):
            if k not in keys:
                keys.append(k)
    return sorted(keys, key=lambda k: (k != "clean", -float(k) if k != "clean" else 0))


def _summary_table(runs) -> str:
    keys = _acc_keys(runs)
    head = (["run", "mode"] + [f"acc {k}" + (" dB" if k != "clean" else "") for k in keys]
            + ["mean acc", "power (nW)", "power vs conv.", "cap. area (um^2)", "area vs conv.",
               "classifier params"])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    for r in runs:
        m = r["metrics"]
        t = m.get("test") or {}
        acc = t.get("accuracy", {})
        row = [r["name"], m["mode"]] + [_pct(acc.get(k)) for k in keys]
        row += [_pct(t.get("mean_accuracy")), f"{m['power_w'] * 1e9:.3f}",
                f"{0.0 - 100 * m['power_saving']:+.2f} %", f"{m['area_um2']:.0f}",
                f"{0.0 - 100 * m['area_saving']:+.2f} %", f"{m['n_params_classifier']:,}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _test_where(runs) -> str:
    """One line naming the clips of the test-split table."""
    t = next((r["metrics"]["test"] for r in runs if r["metrics"].get("test")), None)
    if not t:
        return ""
    return (f"Measured on the {t.get('n', '?')} clips of the test split of {t.get('data', 'the data set')} "
            "(speakers or voices held out of training and of every choice).\n")


def _real_table(runs) -> str | None:
    """Accuracy per SNR on the held-out real speakers (``metrics["real_validation"]``),
    next to power and area, plus the goal check and the data each run trained on."""
    have = [r for r in runs if r["metrics"].get("real_validation")]
    if not have:
        return None
    keys = []
    for r in have:
        for k in r["metrics"]["real_validation"]["accuracy"]:
            if k not in keys:
                keys.append(k)
    keys.sort(key=lambda k: (k != "clean", -float(k) if k != "clean" else 0))
    head = (["run", "mode"] + [f"{k}" + (" dB" if k != "clean" else "") for k in keys]
            + ["mean", "power (nW)", "power vs conv.", "cap. area (um^2)", "area vs conv."])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    for r in have:
        m = r["metrics"]
        rv = m["real_validation"]
        lines.append("| " + " | ".join([r["name"], m["mode"]] + [_pct(rv["accuracy"].get(k)) for k in keys]
                                       + [_pct(rv["mean_accuracy"]), f"{m['power_w'] * 1e9:.3f}",
                                          f"{0.0 - 100 * m['power_saving']:+.2f} %", f"{m['area_um2']:.0f}",
                                          f"{0.0 - 100 * m['area_saving']:+.2f} %"]) + " |")
    rv0 = have[0]["metrics"]["real_validation"]
    out = [f"{rv0['n']} clips of speakers no model trained on ({rv0.get('protocol', rv0['data'])}); "
           f"noise: {rv0.get('noise')}.", "", "\n".join(lines), ""]
    conv = [r for r in have if r["metrics"]["mode"] == "conventional"]
    if conv:
        c = conv[0]["metrics"]
        for r in have:
            m = r["metrics"]
            if m["mode"] != "codesign":
                continue
            d_acc = 100 * (m["real_validation"]["mean_accuracy"] - c["real_validation"]["mean_accuracy"])
            dp, da = 1 - m["power_w"] / c["power_w"], 1 - m["area_um2"] / c["area_um2"]
            goal = dp >= 0.08 and da >= 0.10 and d_acc >= -1.0
            out += [f"- **{r['name']}** vs **{conv[0]['name']}** on the real speakers: power "
                    f"{-100 * dp:+.2f} %, capacitor area {-100 * da:+.2f} %, mean accuracy "
                    f"{d_acc:+.2f} points (goal: >= 8 % less power and >= 10 % less area at <= 1 "
                    f"point accuracy loss: {'met' if goal else 'not met'}).", ""]
    out += ["Trained on:", ""] + [f"- **{r['name']}**: {r['metrics'].get('training_data', r['config'].get('data'))}"
                                   for r in runs] + [""]
    return "\n".join(out)


def _comparison(runs) -> str | None:
    """Co-design vs conventional on the test split.  The savings verdict is judged here only
    when no run has real validation speakers; with them it is judged on those speakers
    (:func:`_real_table`) and this line only states the test-split differences."""
    conv = [r for r in runs if r["metrics"]["mode"] == "conventional" and r["metrics"].get("test")]
    cd = [r for r in runs if r["metrics"]["mode"] == "codesign" and r["metrics"].get("test")]
    if not conv or not cd:
        return None
    real = any(r["metrics"].get("real_validation") for r in runs)
    c = conv[0]["metrics"]
    out = []
    for r in cd:
        m = r["metrics"]
        d_acc = 100 * (m["test"]["mean_accuracy"] - c["test"]["mean_accuracy"])
        dp = 1 - m["power_w"] / c["power_w"]
        da = 1 - m["area_um2"] / c["area_um2"]
        goal = dp >= 0.08 and da >= 0.10 and d_acc >= -1.0
        where = f"{m['test'].get('n', '?')} clips of the test split of {m['test'].get('data', 'the data set')}"
        line = (f"- **{r['name']}** vs **{conv[0]['name']}**: power {-100 * dp:+.2f} %, capacitor "
                f"area {-100 * da:+.2f} %, mean accuracy {d_acc:+.2f} points on {where}")
        if real:
            line += " (the savings verdict is judged on the real validation speakers, above)."
        else:
            line += (f" (goal: >= 8 % less power and >= 10 % less area at <= 1 point accuracy loss: "
                     f"{'met' if goal else 'not met'}).")
        out.append(line)
    return "\n".join(out)


def _plot_acc_vs_snr(runs, path) -> bool:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    drawn = False
    for r in runs:
        t = r["metrics"].get("test")
        if not t:
            continue
        snrs = sorted(float(k) for k in t["accuracy"] if k != "clean")
        ys = [100 * t["accuracy"][f"{s:g}"] for s in snrs]
        line, = ax.plot(snrs, ys, "o-", label=f"{r['name']} ({r['metrics']['mode']})")
        if "clean" in t["accuracy"]:
            ax.axhline(100 * t["accuracy"]["clean"], color=line.get_color(), ls=":", lw=1)
        drawn = True
    if not drawn:
        plt.close(fig)
        return False
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy vs SNR (dotted: clean)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _plot_responses(r, path) -> bool:
    if r["bank"] is None:
        return False
    plt = _plt()
    learned = AnalogFilterBank.from_dict(r["bank"])
    initial = AnalogFilterBank.from_dict({**r["bank"], "phi": {k: [0.0] * learned.n_channels
                                                               for k in r["bank"]["phi"]}})
    fs = learned.sample_rate
    freqs = np.geomspace(20.0, fs / 2 * 0.999, 1500)
    with torch.no_grad():
        h0 = 20 * np.log10(np.maximum(np.abs(initial.frequency_response(freqs).numpy()), 1e-12))
        h1 = 20 * np.log10(np.maximum(np.abs(learned.frequency_response(freqs).numpy()), 1e-12))
    fig, ax = plt.subplots(figsize=(9, 4.6), dpi=90)
    colors = plt.cm.viridis(np.linspace(0, 0.92, learned.n_channels))
    for c in range(learned.n_channels):
        ax.semilogx(freqs, h0[c], "--", color="0.6", lw=0.9)
        ax.semilogx(freqs, h1[c], "-", color=colors[c], lw=1.3)
    top = max(float(h0.max()), float(h1.max()))
    ax.set_ylim(top - 40, top + 3)
    ax.set_xlim(freqs[0], fs / 2)
    ax.plot([], [], "--", color="0.6", label="before (conventional design)")
    ax.plot([], [], "-", color=colors[len(colors) // 2], label="after training")
    ax.legend(fontsize=8, loc="lower center")
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("|H| (dB)")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(f"{r['name']}: analog responses before/after")
    return _save(fig, path)


def _plot_curves(runs, path) -> bool:
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=110)
    drawn = False
    for r in runs:
        h = r["metrics"].get("history") or []
        if not h:
            continue
        ep = [e["epoch"] for e in h]
        a1.plot(ep, [100 * e["val"]["mean_accuracy"] for e in h], "o-", label=r["name"])
        pref, aref = r["metrics"]["p_ref_w"], r["metrics"]["a_ref_um2"]
        line, = a2.plot(ep, [e["power_w"] / pref for e in h], "o-", label=f"{r['name']} P/P_ref")
        a2.plot(ep, [e["area_um2"] / aref for e in h], "s--", color=line.get_color(),
                label=f"{r['name']} A/A_ref")
        drawn = True
    if not drawn:
        plt.close(fig)
        return False
    a1.set_xlabel("epoch")
    a1.set_ylabel("validation accuracy, mean over SNRs (%)")
    a2.set_xlabel("epoch")
    a2.set_ylabel("relative to the conventional design")
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend(fontsize=7)
    return _save(fig, path)


def _plot_confusions(r, path) -> bool:
    t = r["metrics"].get("test")
    if not t or "confusion" not in t:
        return False
    keys = [k for k in t["confusion"]]
    noisy = sorted((k for k in keys if k != "clean"), key=float)
    show = [k for k in ["clean"] + noisy[:1] if k in keys]
    plt = _plt()
    fig, axes = plt.subplots(1, len(show), figsize=(5.2 * len(show), 4.8), dpi=110, squeeze=False)
    for ax, k in zip(axes[0], show):
        cm = np.asarray(t["confusion"][k], dtype=float)
        rows = cm.sum(axis=1, keepdims=True)
        norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(CLASSES)), CLASSES, rotation=60, fontsize=7)
        ax.set_yticks(range(len(CLASSES)), CLASSES, fontsize=7)
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                if cm[i, j]:
                    ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=6,
                            color="white" if norm[i, j] > 0.5 else "black")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{r['name']}: {'clean' if k == 'clean' else k + ' dB'} "
                     f"(acc {100 * t['accuracy'][k]:.1f} %)", fontsize=9)
    return _save(fig, path)


def _same_folder(a, b) -> bool:
    try:
        return bool(a) and bool(b) and Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def trained_on_folder(config: dict, folder) -> str | None:
    """Why clips of ``folder`` trained the run of ``config`` (a run's ``config.json``, nested or
    flat; a short phrase), or None: the folder is ``data.root``, the labelled real folder with
    training speakers, or a source."""
    config = dotted_options(config)
    if _same_folder(folder, config.get("data.root")) and config.get("data.data_weight", 1.0) > 0:
        return "its training split trained the model"
    if _same_folder(folder, config.get("data.real")) and config.get("data.real_weight", 1.0) > 0:
        return "includes the run's training speakers"
    for src in config.get("data.sources") or []:
        if isinstance(src, dict) and _same_folder(folder, src.get("path")) and src.get("weight", 1.0) > 0:
            return "the run trained on these clips"
    return None


def _eval_tables(runs) -> str | None:
    """Evaluations on other data and fine-tuning, with the clips each was measured on; an
    evaluation on clips that trained the model is listed without accuracies."""
    rows, notes = [], []
    for r in runs:
        for name, e in r["evals"].items():
            acc = e["accuracy"]
            why = trained_on_folder(r["config"], e.get("data"))
            if why:
                rows.append([r["name"], name, str(e["n"])] + ["—"] * 6
                            + [f"{e.get('data', '')}: not an accuracy ({why})"])
                notes.append(f"- **{r['name']}**, {name}: measured on {e['n']} clips of "
                             f"{e.get('data', '')}, which {why}; its numbers are not shown as accuracy.")
                continue
            rows.append([r["name"], name, str(e["n"])] + [_pct(acc.get(k)) for k in
                                                         ("clean", "20", "15", "10", "5")]
                        + [_pct(e.get("mean_accuracy")), str(e.get("data", ""))])
        for name, f in r["finetunes"].items():
            for when in ("before", "after"):
                e = f[when]
                acc = e["accuracy"]
                rows.append([r["name"], f"{name} ({when})", str(e["n"])]
                            + [_pct(acc.get(k)) for k in ("clean", "20", "15", "10", "5")]
                            + [_pct(e.get("mean_accuracy")), f.get("protocol", str(e.get("data", "")))])
    if not rows:
        return None
    head = ["run", "evaluation", "clips", "clean", "20 dB", "15 dB", "10 dB", "5 dB", "mean", "measured on"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * 7 + ["---"]) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines + ([""] + notes if notes else []))


def _section(name: str, fn, *args) -> str | None:
    try:
        return fn(*args)
    except Exception as exc:  # a broken optional section must not lose the whole report
        log.warning("report section %s failed: %s", name, exc)
        return f"_report section {name} failed: {exc}_"


def write_report(run_dirs, out=None, *, search=None, title: str = "LearnAFE co-design report") -> Path:
    """Write the Markdown report for ``run_dirs`` to ``out`` (default: ``report.md``
    in the parent of the first run) and return its path."""
    if isinstance(run_dirs, (str, Path)):
        run_dirs = [run_dirs]
    if not run_dirs:
        raise ValueError("write_report: give at least one run directory")
    runs = [load_summary(d) for d in run_dirs]
    out = Path(out) if out is not None else Path(run_dirs[0]).parent / "report.md"
    img_dir = out.parent / f"{out.stem}_img"
    img_dir.mkdir(parents=True, exist_ok=True)
    rel = img_dir.name
    md = [f"# {title}", "",
          f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `learnafe report` for "
          + ", ".join(f"`{r['path']}`" for r in runs) + ".", "",
          "Accuracy: clean and with background noise at fixed SNRs (active-part SNR, fixed noise "
          "seeds), each table naming the clips it was measured on; no accuracy is shown on clips "
          "that trained the model. Power and capacitor area: the bank's cost model; \"vs conv.\" is "
          "relative to the conventional design of the same configuration.", ""]
    real = _real_table(runs)
    if real:
        md += ["## Real speakers: accuracy per SNR, power and area", "", real,
               "## Power, area and accuracy (test split of the data set)", "", _test_where(runs),
               _summary_table(runs), ""]
    else:
        md += ["## Power, area and accuracy (test split of the data set)", "", _test_where(runs),
               _summary_table(runs), ""]
    comp = _comparison(runs)
    if comp:
        md += [comp, ""]
    if _plot_acc_vs_snr(runs, img_dir / "accuracy_vs_snr.png"):
        md += ["## Accuracy vs SNR", "", f"![accuracy vs SNR]({rel}/accuracy_vs_snr.png)", ""]
    if _plot_curves(runs, img_dir / "training_curves.png"):
        md += ["## Training curves", "", f"![training curves]({rel}/training_curves.png)", ""]
    md += ["## Filter banks", ""]

    for r in runs:
        if r["bank"] is None:
            continue
        name = f"responses_{r['name']}.png"
        if r["metrics"]["mode"] == "codesign" and _plot_responses(r, img_dir / name):
            md += [f"### {r['name']}: responses before/after", "", f"![responses]({rel}/{name})", ""]
        md += [f"<details><summary>{r['name']}: circuit per channel</summary>", "",
               markdown_table(r["bank"]), "", "</details>", ""]
    cms = []
    for r in runs:
        name = f"confusion_{r['name']}.png"
        if _plot_confusions(r, img_dir / name):
            cms.append(f"![confusion {r['name']}]({rel}/{name})")
    if cms:
        md += ["## Confusion matrices (test split)", ""] + [c + "\n" for c in cms]
    ev = _eval_tables(runs)
    if ev:
        md += ["## Other data and fine-tuning", "", ev, ""]
    for r in runs:
        for name, fn in RUN_SECTIONS.items():
            sec = _section(name, fn, r["path"], img_dir)
            if sec:
                md += [sec.rstrip(), ""]
    if search is not None:
        for name, fn in SEARCH_SECTIONS.items():
            sec = _section(name, fn, search, img_dir)
            if sec:
                md += [sec.rstrip(), ""]
    out.write_text("\n".join(md).rstrip() + "\n")
    log.info("wrote report %s (plots in %s)", out, img_dir)
    return out
