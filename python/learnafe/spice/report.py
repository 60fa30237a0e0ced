"""The SPICE section of a run's report (``learnafe report``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from learnafe.gate import markdown
from learnafe.training.evaluate import heldout_markdown


def ac_table(ac: dict) -> str:
    """Markdown table: per channel ideal vs SPICE f0, Q, peak gain and power."""
    lines = ["| ch | f0 ideal (Hz) | f0 SPICE (Hz) | err f0 | Q ideal | Q SPICE | err Q | "
             "gain ideal | gain SPICE | err gain | power model (nW) | power SPICE (nW) |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in ac["channels"]:
        i, s, e = r["ideal"], r["spice"], r["error_pct"]
        lines.append(f"| {r['channel']} | {i['f0_hz']:.1f} | {s['f0_hz']:.1f} | {e['f0']:+.2f} % | "
                     f"{i['q']:.3f} | {s['q']:.3f} | {e['q']:+.2f} % | {i['gain']:.3f} | "
                     f"{s['peak_gain']:.3f} | {e['gain']:+.2f} % | {i['power_w'] * 1e9:.3f} | "
                     f"{s['power_w'] * 1e9:.3f} |")
    sm = ac["summary"]
    lines.append("")
    lines.append(f"Max |error|: f0 {sm['max_abs_f0_error_pct']:.2f} %, Q {sm['max_abs_q_error_pct']:.2f} %, "
                 f"peak gain {sm['max_abs_gain_error_pct']:.2f} %, power {sm['max_abs_power_error_pct']:.2g} % "
                 f"(total {sm['total_power_spice_w'] * 1e9:.2f} nW); all devices saturated: "
                 f"{'yes' if sm['all_saturated'] else 'NO'}.")
    if "max_abs_f0_error_vs_spec_pct" in sm:
        lines.append(f"Against the spec's own f0/Q (its gm model, {ac['spec_gm_model']}): max |error| "
                     f"f0 {sm['max_abs_f0_error_vs_spec_pct']:.2f} %"
                     + (f", Q {sm['max_abs_q_error_vs_spec_pct']:.2f} %."
                        if "max_abs_q_error_vs_spec_pct" in sm else "."))
    return "\n".join(lines)


def noise_table(noise: dict) -> str:
    """Markdown table: per channel output noise of the circuit (by kind) against the kT/C model."""
    lo, hi = noise["band_hz"]
    lines = ["| ch | SPICE total (uV rms) | shot | flicker | other | kT/C model (uV rms) | "
             "SPICE / kT/C | shot / kT/C | input-referred (audio units) |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in noise["channels"]:
        k = r["spice_output_vrms_by_kind"]
        inp = r.get("input_noise_std")
        lines.append(f"| {r['channel']} | {1e6 * r['spice_output_vrms']:.1f} | {1e6 * k['shot']:.1f} | "
                     f"{1e6 * k['flicker']:.1f} | {1e6 * k['other']:.2f} | "
                     f"{1e6 * r['model_output_vrms']:.1f} | {r['ratio_spice_to_model']:.3f} | "
                     f"{r['ratio_shot_to_model']:.3f} | {'' if inp is None else f'{inp:.3g}'} |")
    sm = noise["summary"]
    lines += ["", f"Output noise integrated over {lo:g}-{hi:g} Hz ({noise['corner']}, "
                  f"{noise['temperature_c']:g} degC). SPICE / kT/C model (rms): "
                  f"{sm['min_ratio_spice_to_model']:.2f} ... {sm['max_ratio_spice_to_model']:.2f} "
                  f"(median {sm['median_ratio_spice_to_model']:.2f})."]
    return "\n".join(lines)


def transient_table(tr: dict) -> str:
    """Markdown table: per channel, the transient circuit like with like (waveform / envelope, %)."""
    def pct(key, c):
        return f"{100 * tr[key][c]:.2f}"

    n = len(tr["per_channel_vs_fitted_continuous"])
    method = tr.get("discretization", "bilinear")
    by = tr.get("discrete_vs_continuous_by_method", {})
    extra = [m for m in ("magnitude_matched", "matched_z") if m in by and m != method]
    head = ("| ch | circuit vs fitted H(s) | circuit vs bank H(s) | circuit vs bank's discrete "
            f"({method}) | {method} vs H(s) | " + " | ".join(f"{m} vs H(s)" for m in extra) + " |")
    lines = [head.replace(" |  |", " |"), "|" + " ---: |" * (5 + len(extra))]
    for c in range(n):
        cells = [pct("per_channel_vs_fitted_continuous", c),
                 f"{pct('per_channel_vs_continuous_model', c)} / {pct('per_channel_envelope_vs_continuous_model', c)}",
                 f"{pct('per_channel_vs_bank_discrete', c)} / {pct('per_channel_envelope_vs_bank_discrete', c)}",
                 f"{pct('per_channel_discrete_vs_continuous', c)} / "
                 f"{pct('per_channel_envelope_discrete_vs_continuous', c)}"]
        cells += [f"{100 * by[m]['waveform'][c]:.2f} / {100 * by[m]['envelope'][c]:.2f}" for m in extra]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines += ["", "Relative RMS waveform error / relative envelope error, %: the circuit against the "
                  "continuous-time model fitted to its AC response and against the bank's own H(s) "
                  "(on the simulator's time grid), against the discrete model the classifier saw (at "
                  "the audio rate), and that discrete model (and other mappings) against H(s)."]
    return "\n".join(lines)


def report_section(run_dir, out_dir) -> str | None:
    """Markdown for a run verified by ``learnafe verify`` (None when it was not)."""
    spice = Path(run_dir) / "spice"
    vpath = spice / "verify.json"
    if not vpath.is_file():
        return None
    v = json.loads(vpath.read_text())
    ac = json.loads((spice / "ac.json").read_text())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    ref = ("the bank's own model" if ac.get("reference") == "spec"
           else "the characterised gm/Id table")
    parts = ["## SPICE verification (ngspice, SKY130)", "",
             markdown(v.get("gate"), "SPICE-calibrated bank"),
             f"Corner `{v['corner']}`, {v['topology']} channels, {v['caps']} capacitors; "
             f"ideal model: {ref}.", "", ac_table(ac), ""]
    vc = v.get("vs_characterised")
    if vc:
        parts += [f"Against the ideal model with the freshly characterised gm/Id table: max |f0 error| "
                  f"{vc['max_abs_f0_error_pct']:.2f} %, max |Q error| {vc['max_abs_q_error_pct']:.2f} %.", ""]
    vg = v.get("vs_model_with_output_conductance")
    if vg:
        parts += [f"Against the bank's own model with the devices' output conductance added (gds from "
                  f"the characterised table): max |f0 error| {vg['max_abs_f0_error_pct']:.2f} %, "
                  f"max |Q error| {vg['max_abs_q_error_pct']:.2f} %.", ""]
    if (spice / "ac_overlay.png").is_file():
        shutil.copy(spice / "ac_overlay.png", out_dir / "spice_ac_overlay.png")
        parts += [f"![ideal vs SPICE]({out_dir.name}/spice_ac_overlay.png)", ""]
    acc = v.get("accuracy")
    if acc and acc.get("held_out"):
        parts += ["Accuracy (%) of the run's classifier before fine-tuning, on its held-out sets (the "
                  "gate judges the pooled clips):", "",
                  heldout_markdown(acc["held_out"], {"ideal": "ideal bank",
                                                      "spice_before": "SPICE-calibrated bank"}), ""]
    if acc:
        keys = list(acc["ideal"])
        parts += ["Test split, with fine-tuning on the calibrated features:", "",
                  "| accuracy | " + " | ".join(keys) + " | mean |",
                  "| --- | " + " | ".join("---:" for _ in keys) + " | ---: |"]
        for name, label in (("ideal", "ideal bank"), ("spice_before", "SPICE, before fine-tuning"),
                            ("spice_after", f"SPICE, after {acc['epochs']} epochs")):
            if acc.get(name) is None:
                continue
            parts.append(f"| {label} | " + " | ".join(f"{acc[name][k]:.4f}" for k in keys)
                         + f" | {acc['mean'][name]:.4f} |")
        parts.append("")
    if (spice / "noise.json").is_file() and v.get("noise_summary"):
        parts += ["Circuit noise (`.noise`) against the kT/C model:", "",
                  noise_table(json.loads((spice / "noise.json").read_text())), ""]
    tr = v.get("transient_summary")
    if tr:
        parts += [f"Transient check: mean waveform error {100 * tr['mean_waveform_rel_rms_error']:.2f} % "
                  f"(max {100 * tr['max_waveform_rel_rms_error']:.2f} %), mean envelope error "
                  f"{100 * tr['mean_envelope_rel_error']:.2f} %, feature RMS difference "
                  f"{tr['mean_feature_rms_error']:.3f}.", ""]
        if "per_channel_vs_fitted_continuous" in tr:
            parts += [transient_table(tr), ""]
        if (spice / "transient_features.png").is_file():
            shutil.copy(spice / "transient_features.png", out_dir / "spice_transient_features.png")
            parts += [f"![transient features]({out_dir.name}/spice_transient_features.png)", ""]
    parts.append(f"`learnafe verify` took {v['seconds']['total']:.0f} s with {v['workers']} workers.")
    return "\n".join(parts) + "\n"
