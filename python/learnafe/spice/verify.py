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

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from learnafe._jsonio import write_json
from learnafe.circuits import dssf
from learnafe.circuits.discretize import digital_response
from learnafe.circuits.transconductance import load_gm_model
from learnafe.spice.calibrated import discretize_fitted
from learnafe.spice.fit import fit_biquad, fit_digital_biquad
from learnafe.spice.ideal import ideal_channels
from learnafe.spice.locate import find_ngspice, ngspice_version
from learnafe.spice.models import check_corner, write_library
from learnafe.spice.netlist import VDD_V, ac_netlist, load_spec
from learnafe.spice.runner import ChannelSimOptions, run_with_progress

log = logging.getLogger(__name__)

# Sweep span around each channel's ideal centre and the fit band (multiples of f0).
SPAN = 30.0
FIT_BAND = (0.2, 5.0)
# Saturation margin: V_DS above 4 U_T keeps a weak-inversion device saturated.
SAT_MARGIN_V = 0.1


def _bilinear_error(fit: dict, f: np.ndarray, h: np.ndarray, fs: float, band) -> float:
    """RMS error over ``band`` (relative to the peak) of the pre-warped bilinear mapping of the s-fit."""
    bz, az = discretize_fitted([fit["b"]], [fit["a"]], fs)
    sel = (f >= band[0]) & (f <= band[1])
    err = np.abs(digital_response(f[sel], bz, az, fs)[0] - h[sel])
    return float(np.sqrt(np.mean(err ** 2)) / np.abs(h[sel]).max())


def _pct(a, b) -> float:
    return float(100.0 * (a - b) / b)


@dataclass(frozen=True)
class AcOptions(ChannelSimOptions):
    """How :func:`ac_verify` simulates the channels (:class:`ChannelSimOptions`; ``gm_model``
    is the ideal model's) and what it writes."""

    #: points per decade of the AC sweep
    points_per_decade: int = 100
    #: write ``ac_overlay.png``
    plot: bool = True


def _write_ac_netlists(chans, ideal, sim_dir: Path, options: AcOptions) -> list[Path]:
    """One ``.op`` + ``.ac`` netlist per channel, swept over ``SPAN`` around its ideal f0."""
    sim_dir.mkdir(parents=True, exist_ok=True)
    library = write_library(sim_dir)
    paths = []
    for ch, f0 in zip(chans, ideal["f0_hz"]):
        path = sim_dir / f"ch{ch.index:02d}.cir"
        path.write_text(ac_netlist(ch, library=library, corner=options.corner,
                                   topology=options.topology, caps=options.caps,
                                   f_start=float(f0) / SPAN, f_stop=float(f0) * SPAN,
                                   points_per_decade=options.points_per_decade,
                                   temperature_c=options.temperature_c))
        paths.append(path)
    return paths


def _ac_row(ch, res, k: int, ideal, sample_rate, topology: str) -> tuple[dict, np.ndarray, np.ndarray]:
    """One channel's ``ac.json`` entry: fitted biquad, operating point and errors against the
    ideal model; with the simulated frequencies and complex response."""
    op, ac = res.plot("Operating"), res.plot("AC")
    f = ac.scale.real
    h = ac["v(dp)"] if topology == "half" else ac["v(dp)"] - ac["v(dn)"]
    fit = fit_biquad(f, h, f_ref=float(ideal["f0_hz"][k]), band=FIT_BAND)
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
    fs = sample_rate
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
    if not row["spice"]["saturated"]:
        log.warning("channel %d: a device is out of saturation (M1 V_SD %.3f V, M2 V_DS "
                    "%.3f V)", ch.index, vsd_m1, vds_m2)
    return row, f, h


def _ac_summary(rows: list[dict], ideal, results, wall: float) -> dict[str, Any]:
    """Largest and mean errors over the channels, total power, saturation and run time."""
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
    return summary


def ac_verify(spec, out_dir: str | Path, options: AcOptions = AcOptions()) -> dict[str, Any]:
    """Simulate every channel of ``spec`` and compare it with the ideal model.

    ``options``: :class:`AcOptions` (its ``gm_model`` sets the transconductance of
    the ideal model; default: the spec's own ``gm_model``).  Returns the content
    of ``ac.json``.
    """
    check_corner(options.corner)
    spec = load_spec(spec)
    chans = list(spec.channels)
    out_dir = Path(out_dir)
    ideal = ideal_channels(spec, options.gm_model)
    paths = _write_ac_netlists(chans, ideal, out_dir / "ac", options)
    log.info("AC: %d channels, corner %s, %s topology, %s capacitors, %d workers", len(chans),
             options.corner, options.topology, options.caps, options.workers)
    results, wall = run_with_progress(paths, desc="spice ac", unit="ch", workers=options.workers,
                                      timeout=options.timeout, progress=options.progress)
    rows, freqs_all, spice_all, ideal_all = [], [], [], []
    for k, (ch, res) in enumerate(zip(chans, results)):
        row, f, h = _ac_row(ch, res, k, ideal, spec.sample_rate, options.topology)
        rows.append(row)
        freqs_all.append(f)
        spice_all.append(h)
        ideal_all.append(dssf.analog_response(f, ideal["beta"][k], ideal["d1"][k], ideal["d0"][k]))
    summary = _ac_summary(rows, ideal, results, wall)
    result = {"format": "learnafe-spice-ac/1", "simulator": ngspice_version(str(find_ngspice())),
              "corner": options.corner, "topology": options.topology, "caps": options.caps,
              "temperature_c": options.temperature_c, "workers": options.workers,
              "sample_rate": spec.sample_rate, "features": spec.features and spec.features.to_dict(),
              "gm_model": ideal["gm_model"].to_dict(),
              "reference": "spec" if options.gm_model is None else "given",
              "spec_gm_model": (spec.gm_model or {}).get("kind", "weak_inversion"),
              "channels": rows, "summary": summary}
    write_json(out_dir / "ac.json", result, indent=1, newline=False)
    np.savez_compressed(out_dir / "ac_response.npz", freqs_hz=np.array(freqs_all),
                        spice=np.array(spice_all), ideal=np.array(ideal_all))
    if options.plot:
        plot_overlay(out_dir / "ac_response.npz", out_dir / "ac_overlay.png",
                     title=f"DSSF-BPF bank: ideal (dashed) vs SPICE ({options.corner}, solid)")
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
