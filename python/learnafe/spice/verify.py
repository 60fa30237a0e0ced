"""AC verification of a filter bank: SPICE response, fitted biquads, errors vs the ideal model.

For every channel of a circuit spec: an ``.op`` + ``.ac`` simulation of the
transistor-level channel (:mod:`learnafe.spice.netlist`), a biquad fitted to
the simulated complex response (:mod:`learnafe.spice.fit`), its f0, Q and
peak gain against the ideal model of :mod:`learnafe.circuits`, the simulated
supply current against the model's power, and the operating point
(saturation margins of both devices).  Writes into ``out_dir``:

- ``ac/chNN.cir|.raw|.log``: every netlist, raw output and simulator log;
- ``ac.json``: per-channel results and a summary;
- ``ac_response.npz``: frequencies and the complex SPICE and ideal responses;
- ``ac_overlay.png``: magnitude responses, ideal (dashed) against SPICE (solid).
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from learnafe._jsonio import write_json
from learnafe.frontends.spec import BankSpec
from learnafe.spice.fit import fit_biquad, fit_digital_biquad
from learnafe.spice.ideal import ideal_channels
from learnafe.spice.models import check_corner, write_library
from learnafe.spice.netlist import VDD_V, ac_netlist, load_spec
from learnafe.spice.runner import DEFAULT_TIMEOUT_S, run_with_progress

log = logging.getLogger(__name__)

# Sweep span around each channel's ideal centre and the fit band (multiples of f0).
SPAN = 30.0
FIT_BAND = (0.2, 5.0)
# Saturation margin: V_DS above 4 U_T keeps a weak-inversion device saturated.
SAT_MARGIN_V = 0.1


def _bilinear_error(fit: dict, f: np.ndarray, h: np.ndarray, fs: float, band) -> float:
    """RMS error over ``band`` (relative to the peak) of the pre-warped bilinear mapping of the s-fit."""
    from learnafe.circuits.discretize import digital_response
    from learnafe.spice.calibrated import discretize_fitted

    bz, az = discretize_fitted([fit["b"]], [fit["a"]], fs)
    sel = (f >= band[0]) & (f <= band[1])
    err = np.abs(digital_response(f[sel], bz, az, fs)[0] - h[sel])
    return float(np.sqrt(np.mean(err ** 2)) / np.abs(h[sel]).max())


def _pct(a, b) -> float:
    return float(100.0 * (a - b) / b)


def ac_verify(spec, out_dir: str | Path, *, gm_model=None, corner: str = "tt",
              topology: str = "differential", caps: str = "ideal", workers: int = 2,
              timeout: float = DEFAULT_TIMEOUT_S, points_per_decade: int = 100,
              temperature_c: float = 27.0, plot: bool = True, progress: bool = True
              ) -> dict[str, Any]:
    """Simulate every channel of ``spec`` and compare it with the ideal model.

    ``gm_model`` (a gm/Id JSON path or dict, or a transconductance model) sets
    the transconductance of the ideal model; default: the spec's own
    ``gm_model``.  Returns the content of ``ac.json``.
    """
    from learnafe.circuits import dssf

    check_corner(corner)
    spec = load_spec(spec)
    chans = list(spec.channels)
    out_dir = Path(out_dir)
    sim_dir = out_dir / "ac"
    sim_dir.mkdir(parents=True, exist_ok=True)
    library = write_library(sim_dir)
    ideal = ideal_channels(spec, gm_model)
    paths = []
    for ch, f0 in zip(chans, ideal["f0_hz"]):
        path = sim_dir / f"ch{ch.index:02d}.cir"
        path.write_text(ac_netlist(ch, library=library, corner=corner, topology=topology, caps=caps,
                                   f_start=float(f0) / SPAN, f_stop=float(f0) * SPAN,
                                   points_per_decade=points_per_decade,
                                   temperature_c=temperature_c))
        paths.append(path)
    log.info("AC: %d channels, corner %s, %s topology, %s capacitors, %d workers", len(chans),
             corner, topology, caps, workers)
    results, wall = run_with_progress(paths, desc="spice ac", unit="ch", workers=workers,
                                      timeout=timeout, progress=progress)
    rows, freqs_all, spice_all, ideal_all = [], [], [], []
    for ch, res, k in zip(chans, results, range(len(chans))):
        op, ac = res.plot("Operating"), res.plot("AC")
        f = ac.scale.real
        h = ac["v(dp)"] if topology == "half" else ac["v(dp)"] - ac["v(dn)"]
        fit = fit_biquad(f, h, f_ref=float(ideal["f0_hz"][k]), band=FIT_BAND)
        h_ideal = dssf.analog_response(f, ideal["beta"][k], ideal["d1"][k], ideal["d0"][k])
        supply_a = -float(op["i(vdd)"][0].real)
        v_d, v_s = float(op["v(dp)"][0].real), float(op["v(sp)"][0].real)
        vsd_m1, vds_m2 = v_s - v_d, v_s
        row = {
            "channel": ch.index, "I1": ch.I1, "I2": ch.I2, "C1": ch.C1, "C2": ch.C2,
            "ideal": {"f0_hz": float(ideal["f0_hz"][k]), "q": float(ideal["q"][k]),
                      "gain": float(ideal["gain"][k]), "power_w": float(ideal["power_w"][k])},
            "spec": {"f0_hz": ch.f0_hz, "q": ch.q, "gain": ch.gain},
            "spice": {"f0_hz": fit["f0_hz"], "q": fit["q"], "peak_gain": fit["peak_gain"],
                      "peak_hz": fit["peak_hz"], "gain_at_f0": fit["gain_at_f0"],
                      "measured_peak_gain": float(np.abs(h).max()),
                      "measured_peak_hz": float(f[np.argmax(np.abs(h))]),
                      "supply_a": supply_a, "power_w": VDD_V * supply_a,
                      "b": list(fit["b"]), "a": list(fit["a"]), "fit_rel_rms": fit["fit_rel_rms"],
                      "v_drain": v_d, "v_source": v_s, "vsd_m1": vsd_m1, "vds_m2": vds_m2,
                      "saturated": bool(vsd_m1 > SAT_MARGIN_V and vds_m2 > SAT_MARGIN_V),
                      "seconds": res.seconds},
            "error_pct": {"f0": _pct(fit["f0_hz"], ideal["f0_hz"][k]),
                          "q": _pct(fit["q"], ideal["q"][k]),
                          "gain": _pct(fit["peak_gain"], ideal["gain"][k]),
                          "power": _pct(VDD_V * supply_a, ideal["power_w"][k])},
        }
        fs = spec.sample_rate
        if fs and fit["f0_hz"] < 0.45 * fs:
            # the digital section closest to the circuit over the channel's band at the audio rate
            band = (max(fit["f0_hz"] / 5, float(f[0])), min(fit["f0_hz"] * 5, 0.45 * float(fs)))
            row["spice"]["digital"] = dict(fit_digital_biquad(f, h, float(fs), band=band),
                                           sample_rate=float(fs))
            row["spice"]["digital"]["bilinear_rel_rms"] = _bilinear_error(fit, f, h, float(fs), band)
        if ch.f0_hz:
            row["error_vs_spec_pct"] = {"f0": _pct(fit["f0_hz"], ch.f0_hz)}
            if ch.q:
                row["error_vs_spec_pct"]["q"] = _pct(fit["q"], ch.q)
        rows.append(row)
        freqs_all.append(f)
        spice_all.append(h)
        ideal_all.append(h_ideal)
        if not row["spice"]["saturated"]:
            log.warning("channel %d: a device is out of saturation (M1 V_SD %.3f V, M2 V_DS "
                        "%.3f V)", ch.index, vsd_m1, vds_m2)
    errs = {key: np.array([r["error_pct"][key] for r in rows]) for key in ("f0", "q", "gain", "power")}
    summary = {f"max_abs_{key}_error_pct": float(np.abs(v).max()) for key, v in errs.items()}
    summary.update({f"mean_abs_{key}_error_pct": float(np.abs(v).mean()) for key, v in errs.items()})
    vs_spec = [r["error_vs_spec_pct"] for r in rows if "error_vs_spec_pct" in r]
    for key in ("f0", "q"):
        vals = [abs(e[key]) for e in vs_spec if key in e]
        if vals:
            summary[f"max_abs_{key}_error_vs_spec_pct"] = float(max(vals))
    summary.update({
        "total_power_ideal_w": float(ideal["power_w"].sum()),
        "total_power_spice_w": float(sum(r["spice"]["power_w"] for r in rows)),
        "all_saturated": all(r["spice"]["saturated"] for r in rows),
        "wall_seconds": wall, "sim_seconds": float(sum(r.seconds for r in results)),
    })
    from learnafe.spice.locate import find_ngspice, ngspice_version

    result = {"format": "learnafe-spice-ac/1", "simulator": ngspice_version(str(find_ngspice())),
              "corner": corner, "topology": topology, "caps": caps,
              "temperature_c": temperature_c, "workers": workers,
              "sample_rate": spec.sample_rate, "features": spec.features and spec.features.to_dict(),
              "gm_model": ideal["gm_model"].to_dict(),
              "reference": "spec" if gm_model is None else "given",
              "spec_gm_model": (spec.gm_model or {}).get("kind", "weak_inversion"),
              "channels": rows, "summary": summary}
    write_json(out_dir / "ac.json", result, indent=1, newline=False)
    np.savez_compressed(out_dir / "ac_response.npz", freqs_hz=np.array(freqs_all),
                        spice=np.array(spice_all), ideal=np.array(ideal_all))
    if plot:
        plot_overlay(out_dir / "ac_response.npz", out_dir / "ac_overlay.png",
                     title=f"DSSF-BPF bank: ideal (dashed) vs SPICE ({corner}, solid)")
    log.info("AC done in %.1f s: max |f0 error| %.2f %%, max |Q error| %.2f %%", wall,
             summary["max_abs_f0_error_pct"], summary["max_abs_q_error_pct"])
    return result


def plot_overlay(npz_path: str | Path, png_path: str | Path, title: str = "", dpi: int = 110) -> Path:
    """Magnitude responses of all channels: ideal dashed, SPICE solid (one colour each)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = np.load(npz_path)
    fig, ax = plt.subplots(figsize=(9, 4.8))
    cmap = plt.get_cmap("viridis")
    n = d["freqs_hz"].shape[0]
    for k in range(n):
        color = cmap(k / max(n - 1, 1))
        f = d["freqs_hz"][k]
        ax.semilogx(f, 20 * np.log10(np.abs(d["spice"][k])), color=color, lw=1.4)
        ax.semilogx(f, 20 * np.log10(np.abs(d["ideal"][k])), color=color, lw=1.0, ls="--")
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("|H| (dB)")
    ax.set_ylim(-40, 6 + 20 * math.log10(max(np.abs(d["spice"]).max(), 1e-9)))
    ax.set_xlim(max(d["freqs_hz"].min(), 10), d["freqs_hz"].max())
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title)
    fig.tight_layout()
    png_path = Path(png_path)
    fig.savefig(png_path, dpi=dpi)
    plt.close(fig)
    return png_path


# --------------------------------------------------------------------------- run ---

def _same_bank(ac: Mapping[str, Any], spec: BankSpec, corner: str, topology: str,
               caps: str) -> bool:
    if (ac.get("corner"), ac.get("topology"), ac.get("caps")) != (corner, topology, caps):
        return False
    if ac.get("reference") != "spec":
        return False  # an ideal model other than the bank's own (older results)
    rows, chans = ac.get("channels", []), spec.channels
    return len(rows) == len(chans) and all(
        math.isclose(r[k], getattr(c, k), rel_tol=1e-12) for r, c in zip(rows, chans)
        for k in ("I1", "I2", "C1", "C2"))


def errors_against(ac: Mapping[str, Any], spec, gm_model) -> dict[str, Any]:
    """f0 / Q errors (%) of the simulated channels against the ideal model with ``gm_model``."""
    ideal = ideal_channels(spec, gm_model)
    f0 = [_pct(r["spice"]["f0_hz"], ideal["f0_hz"][k]) for k, r in enumerate(ac["channels"])]
    q = [_pct(r["spice"]["q"], ideal["q"][k]) for k, r in enumerate(ac["channels"])]
    return {"gm_model": ideal["gm_model"].to_dict() if not hasattr(ideal["gm_model"], "table")
            else {"kind": "gmid_table", "path": getattr(ideal["gm_model"], "source_path", None)},
            "f0_error_pct": f0, "q_error_pct": q,
            "max_abs_f0_error_pct": float(np.abs(f0).max()), "max_abs_q_error_pct": float(np.abs(q).max())}


def errors_with_output_conductance(ac: Mapping[str, Any], spec, gds_table) -> dict[str, Any] | None:
    """f0 / Q errors (%) of the simulated channels against the bank's own model with the
    devices' output conductance added (gds of ``gds_table``, a gm/Id table with
    ``gds_over_id``; :func:`learnafe.circuits.dssf.s_coefficients`).  None without gds data,
    and None when the bank itself already computes with its devices' gds (the errors against
    its own spec are then these)."""
    from learnafe.circuits import dssf
    from learnafe.circuits.transconductance import load_gm_model

    table = load_gm_model(gds_table)
    if not table.has_gds:
        return None
    spec = load_spec(spec)
    if spec.uses_output_conductance:
        return None
    i1, i2, c1, c2 = (np.array(spec.values(k)) for k in ("I1", "I2", "C1", "C2"))
    own = spec.gm()
    _, d1, d0 = dssf.s_coefficients(np.asarray(own.gm1(i1)), np.asarray(own.gm2(i2)), c1, c2,
                                    table.gds("m1", i1), table.gds("m2", i2))
    f0 = np.sqrt(d0) / (2 * math.pi)
    q = np.sqrt(d0) / d1
    f0_err = [_pct(r["spice"]["f0_hz"], f0[k]) for k, r in enumerate(ac["channels"])]
    q_err = [_pct(r["spice"]["q"], q[k]) for k, r in enumerate(ac["channels"])]
    return {"f0_hz": f0.tolist(), "q": q.tolist(), "f0_error_pct": f0_err, "q_error_pct": q_err,
            "max_abs_f0_error_pct": float(np.abs(f0_err).max()),
            "max_abs_q_error_pct": float(np.abs(q_err).max())}


def spec_errors(ac: Mapping[str, Any]) -> tuple[list[float], list[float]]:
    """Per-channel f0 and Q errors (%) against the bank's own spec (its stored f0 and Q;
    the ideal model with the bank's gm model where the spec stores none)."""
    f0, q = [], []
    for r in ac["channels"]:
        vs = r.get("error_vs_spec_pct") or {}
        f0.append(vs.get("f0", r["error_pct"]["f0"]))
        q.append(vs.get("q", r["error_pct"]["q"]))
    return f0, q


def pick_clips(data: str | Path, split: str, sample_rate: int, n: int, seed: int = 0):
    """``n`` keyword clips (no silence/unknown) of a data set split, chosen by ``seed``."""
    from learnafe.data import CLASSES, KeywordDataset

    ds = KeywordDataset(data, split, sample_rate, unknown_fraction=0.0, silence_fraction=0.0,
                        progress=False)
    keywords = [i for i, lab in enumerate(ds.labels) if CLASSES[int(lab)] not in ("unknown", "silence")]
    if not keywords:
        raise ValueError(f"no keyword clips in split {split!r} of {data}")
    rng = np.random.default_rng(seed)
    idx = rng.choice(keywords, size=min(n, len(keywords)), replace=False)
    clips, names = [], []
    for i in idx:
        x, lab = ds[int(i)]
        clips.append(np.asarray(x, dtype=np.float64))
        names.append(f"{CLASSES[int(lab)]}:{Path(str(ds.files[int(i)])).name}")
    return clips, names


def verify_run(run_dir: str | Path, out_dir: str | Path | None = None, *, corner: str = "tt",
               topology: str = "differential", caps: str = "ideal", workers: int = 2,
               timeout: float = DEFAULT_TIMEOUT_S, finetune: bool = True, epochs: int = 5,
               transient: bool = True, clips: int = 3, clip_seconds: float = 0.3,
               tran_step: float = 2e-6, tran_amplitude: float = 1e-3,
               clip_data: str | Path | None = None, seed: int = 0, noise: bool = True,
               gate=None, force: bool = False, progress: bool = True) -> dict[str, Any]:
    """SPICE verification of a trained run: characterisation, AC, noise, calibrated bank,
    accuracy and fine-tuning, the transient check and the deployment gate, written under
    ``out_dir`` (default ``RUN/spice``).  Finished steps are reused when their inputs are
    unchanged (``force`` redoes them), so an interrupted verification resumes.

    The ideal reference is the bank's own model (its ``gm_model``); the errors against
    the freshly characterised gm/Id table are reported beside it.  ``noise``: run the
    ``.noise`` analysis and give the calibrated bank the circuit's noise.  ``gate``:
    :class:`learnafe.gate.GateThresholds` (default 2 % f0, 5 % Q, 1 point of accuracy),
    judged before any fine-tuning.
    """
    from learnafe import gate as gate_mod
    from learnafe.spice.calibrated import calibrated_frontend
    from learnafe.spice.characterize import characterize
    from learnafe.spice.transient import transient_check

    run_dir = Path(run_dir)
    bank_path = run_dir / "bank.json"
    if not bank_path.is_file():
        raise FileNotFoundError(f"{run_dir} has no bank.json; give a run directory written by "
                                "`learnafe train`")
    spec = load_spec(bank_path)
    out = Path(out_dir) if out_dir is not None else run_dir / "spice"
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    t0 = time.perf_counter()
    gmid_path = out / "gmid.json"
    gmid = (json.loads(gmid_path.read_text()) if gmid_path.is_file() and not force else None)
    if gmid is None or gmid.get("corner") != corner:
        log.info("[1/6] characterising the devices (%s)", corner)
        gmid = characterize(gmid_path, work_dir=out / "gmid", corner=corner, workers=workers,
                            timeout=timeout)
    timings["characterize"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ac_path = out / "ac.json"
    ac = json.loads(ac_path.read_text()) if ac_path.is_file() and not force else None
    fresh_ac = ac is None or not _same_bank(ac, spec, corner, topology, caps)
    if fresh_ac:
        log.info("[2/6] AC verification of %d channels against the bank's own model",
                 spec.n_channels)
        ac = ac_verify(spec, out, corner=corner, topology=topology, caps=caps,
                       workers=workers, timeout=timeout, progress=progress)
    else:
        log.info("[2/6] AC results in %s are up to date", ac_path)
    characterised = errors_against(ac, spec, gmid)
    with_gds = errors_with_output_conductance(ac, spec, gmid)
    if with_gds is not None:
        log.info("against the bank's own model with the devices' output conductance: max |f0 error| "
                 "%.2f %%, max |Q error| %.2f %%", with_gds["max_abs_f0_error_pct"],
                 with_gds["max_abs_q_error_pct"])
    timings["ac"] = time.perf_counter() - t0

    noise_res = None
    if noise:
        from learnafe.spice.noise import noise_verify

        t0 = time.perf_counter()
        noise_path = out / "noise.json"
        noise_res = json.loads(noise_path.read_text()) if noise_path.is_file() and not force else None
        if (noise_res is None or fresh_ac or (noise_res.get("corner"), noise_res.get("topology"),
                                              noise_res.get("caps")) != (corner, topology, caps)):
            log.info("[3/6] noise of %d channels (.noise)", spec.n_channels)
            noise_res = noise_verify(spec, out, corner=corner, topology=topology, caps=caps,
                                     workers=workers, timeout=timeout, progress=progress)
        else:
            log.info("[3/6] noise results in %s are up to date", noise_path)
        timings["noise"] = time.perf_counter() - t0

    log.info("[4/6] calibrated front end from the fitted biquads%s",
             " with the circuit's noise" if noise_res else "")
    frontend = calibrated_frontend(ac, noise=noise_res)
    frontend.save(out / "calibrated_bank.json")
    if noise_res is not None:
        std = frontend.input_noise_std()
        for r, v in zip(noise_res["channels"], std.tolist()):
            r["input_noise_std"] = v
        noise_res["full_scale_v"] = float((noise_res.get("noise_config") or {}).get("full_scale_v", 0.1))
        noise_res["frontend_noise_mode"] = frontend.noise_mode
        write_json(out / "noise.json", noise_res, indent=1, newline=False)

    accuracy = None
    if finetune:
        from learnafe.training import load_run
        from learnafe.training.evaluate import compare_frontends, heldout_sets
        from learnafe.training.finetune import finetune as run_finetune

        t0 = time.perf_counter()
        run = load_run(run_dir)
        cfg = run.config
        sets = heldout_sets(cfg, progress=progress)
        log.info("[5/6] accuracy of the ideal and the SPICE-calibrated bank before fine-tuning, same "
                 "classifier, on %s", " + ".join(f"{k} ({len(d)} clips)" for k, (d, _) in sets.items()))
        held = compare_frontends(run.classifier, {"ideal": run.frontend, "spice_before": frontend}, sets,
                                 snrs=cfg.eval_snrs, progress=progress)
        write_json(out / "heldout_eval.json", held, indent=1, newline=False)
        after = None
        if epochs > 0:
            log.info("[5/6] fine-tuning the classifier on the calibrated features (%d epochs)", epochs)
            after = run_finetune(run_dir, frontend, epochs=epochs, out_dir=out / "finetune", seed=seed,
                                 progress=progress, label="finetune-spice")["after"]
        test = held["sets"]["test"]
        accuracy = {
            "ideal": test["ideal"]["accuracy"], "spice_before": test["spice_before"]["accuracy"],
            "spice_after": None if after is None else after["accuracy"],
            "mean": {"ideal": test["ideal"]["mean_accuracy"], "spice_before": test["spice_before"]["mean_accuracy"],
                     "spice_after": None if after is None else after["mean_accuracy"]},
            "epochs": epochs, "finetune_dir": str(out / "finetune") if epochs > 0 else None,
            "held_out": held}
        timings["finetune"] = time.perf_counter() - t0

    tran = None
    if transient:
        t0 = time.perf_counter()
        tran_path = out / "transient.json"
        tran = json.loads(tran_path.read_text()) if tran_path.is_file() and not force else None
        from learnafe.training import load_run

        cfg = load_run(run_dir).config
        data = str(clip_data or cfg.data)
        if (tran is None or tran.get("t_step_s") != tran_step or tran.get("amplitude_v") != tran_amplitude
                or len(tran.get("clips", [])) != clips or tran.get("clip_data") != data):
            audio, names = pick_clips(data, "test" if clip_data else cfg.test_split,
                                      int(spec.sample_rate or cfg.sample_rate), clips, seed)
            log.info("[6/6] transient check on %d clips of %s", len(audio), data)
            tran = transient_check(spec, ac, audio, out, t_step=tran_step, amplitude_v=tran_amplitude,
                                   duration_s=clip_seconds,
                                   corner=corner, topology=topology, caps=caps, workers=workers,
                                   timeout=max(timeout, 3600.0), clip_names=names,
                                   progress=progress)
            tran["clip_data"] = data
            write_json(out / "transient.json", tran, indent=1, newline=False)
            plot_transient(out / "tran" / "clip0_outputs.npz", out / "transient_features.png",
                           spec.sample_rate or 20000.0)
        timings["transient"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_all

    f0_err, q_err = spec_errors(ac)
    gate_res = gate_mod.check_held_out(
        f0_error_pct=f0_err, q_error_pct=q_err, held_out=accuracy["held_out"] if accuracy else None,
        reference="ideal", deployed="spice_before", thresholds=gate, what="SPICE-calibrated bank")
    result = {"format": "learnafe-spice-verify/1", "run": str(run_dir), "out_dir": str(out),
              "corner": corner, "topology": topology, "caps": caps, "workers": workers,
              "gate": gate_res,
              "spec_errors": {"f0_error_pct": f0_err, "q_error_pct": q_err},
              "ac_summary": ac["summary"], "vs_characterised": characterised,
              "vs_model_with_output_conductance": with_gds,
              "noise_summary": None if noise_res is None else noise_res["summary"],
              "accuracy": accuracy,
              "transient_summary": None if tran is None else tran["summary"],
              "seconds": timings,
              "files": {"gmid": "gmid.json", "ac": "ac.json", "overlay": "ac_overlay.png",
                        "noise": None if noise_res is None else "noise.json",
                        "calibrated_bank": "calibrated_bank.json",
                        "transient": None if tran is None else "transient.json"}}
    write_json(out / "verify.json", result, indent=1, newline=False)
    log.info("verification of %s written to %s (%.0f s)", run_dir, out, timings["total"])
    return result


def plot_transient(npz_path: str | Path, png_path: str | Path, sample_rate: float) -> Path:
    """Features of one clip: SPICE transient (top) and calibrated model (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = np.load(npz_path)
    fs_, fm = d["features_spice"], d["features_model"]
    lo, hi = float(min(fs_.min(), fm.min())), float(max(fs_.max(), fm.max()))
    fig, axes = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    for ax, f, name in zip(axes, (fs_, fm), ("SPICE transient", "calibrated model")):
        im = ax.imshow(f, aspect="auto", origin="lower", vmin=lo, vmax=hi, cmap="magma")
        ax.set_ylabel("channel")
        ax.set_title(f"features: {name}")
    axes[-1].set_xlabel("frame")
    fig.colorbar(im, ax=axes, shrink=0.8)
    png_path = Path(png_path)
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path
