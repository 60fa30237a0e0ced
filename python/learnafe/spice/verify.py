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

from learnafe.spice.fit import fit_biquad
from learnafe.spice.models import check_corner, write_library
from learnafe.spice.netlist import VDD_V, ac_netlist, channels_of, load_spec
from learnafe.spice.runner import DEFAULT_TIMEOUT_S, run_many

log = logging.getLogger(__name__)

# Sweep span around each channel's ideal centre and the fit band (multiples of f0).
SPAN = 30.0
FIT_BAND = (0.2, 5.0)
# Saturation margin: V_DS above 4 U_T keeps a weak-inversion device saturated.
SAT_MARGIN_V = 0.1


def _gm_model(spec: Mapping[str, Any], gm_model):
    from learnafe.circuits.transconductance import load_gm_model

    if gm_model is not None:
        return load_gm_model(gm_model)
    return load_gm_model(spec.get("gm_model"))


def ideal_channels(spec: Mapping[str, Any], gm_model=None) -> dict[str, np.ndarray]:
    """Ideal f0 (Hz), Q, |gain|, s-domain coefficients and power of each channel."""
    from learnafe.circuits import cost, dssf

    chans = channels_of(spec)
    i1, i2, c1, c2 = (np.array([getattr(c, k) for c in chans]) for k in ("I1", "I2", "C1", "C2"))
    model = _gm_model(spec, gm_model)
    p = dssf.channel_parameters(i1, i2, c1, c2, model)
    beta, d1, d0 = dssf.s_coefficients(p.gm1, p.gm2, c1, c2)
    return {"f0_hz": np.asarray(p.f0_hz), "q": np.asarray(p.q), "gain": np.asarray(p.gain),
            "beta": np.asarray(beta), "d1": np.asarray(d1), "d0": np.asarray(d0),
            "power_w": np.asarray(cost.channel_power_w(i1, i2)), "gm_model": model}


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
    chans = channels_of(spec)
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
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(paths), desc="spice ac", unit="ch")
    t0 = time.perf_counter()
    try:
        results = run_many(paths, workers=workers, timeout=timeout,
                           progress=(lambda r: bar.update(1)) if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - t0
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
    summary.update({
        "total_power_ideal_w": float(ideal["power_w"].sum()),
        "total_power_spice_w": float(sum(r["spice"]["power_w"] for r in rows)),
        "all_saturated": all(r["spice"]["saturated"] for r in rows),
        "wall_seconds": wall, "sim_seconds": float(sum(r.seconds for r in results)),
    })
    result = {"format": "learnafe-spice-ac/1", "corner": corner, "topology": topology, "caps": caps,
              "temperature_c": temperature_c, "workers": workers,
              "sample_rate": spec.get("sample_rate"), "features": spec.get("features"),
              "gm_model": ideal["gm_model"].to_dict(), "channels": rows, "summary": summary}
    (out_dir / "ac.json").write_text(json.dumps(result, indent=1))
    np.savez_compressed(out_dir / "ac_response.npz", freqs_hz=np.array(freqs_all),
                        spice=np.array(spice_all), ideal=np.array(ideal_all))
    if plot:
        plot_overlay(out_dir / "ac_response.npz", out_dir / "ac_overlay.png",
                     title=f"DSSF-BPF bank: ideal (dashed) vs SPICE ({corner}, solid)")
    log.info("AC done in %.1f s: max |f0 error| %.2f %%, max |Q error| %.2f %%", wall,
             summary["max_abs_f0_error_pct"], summary["max_abs_q_error_pct"])
    return result


def plot_overlay(npz_path: str | Path, png_path: str | Path, title: str = "") -> Path:
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
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return png_path
