"""Transient check: the transistor-level bank on real audio, compared like with like.

Each clip (its loudest window, faded in and out over 5 ms) is scaled to
``amplitude_v`` volts peak (differential), interpolated band-limited onto the
simulator's output grid with an FFT (flat up to the audio Nyquist frequency;
the clip is faded to zero at both ends, so its periodic extension is smooth),
fed to a ``.tran`` of the whole bank through the XSPICE ``filesource``, and the
differential outputs are read on the ``t_step`` grid.  Three comparisons:

1. **circuit vs the continuous-time model it implements**, on the ``t_step``
   grid: the bank's own H(s) (its spec and its own gm model) and the H(s)
   fitted to the circuit's AC response, each simulated with
   :func:`scipy.signal.lsim` on the same input (linear interpolation between
   samples, like the ``filesource``).  This isolates the transient circuit:
   integration error, large-signal behaviour, anything the AC fit misses.
2. **circuit vs the discrete model the classifier saw**, at the audio rate:
   the bank's own discretisation of its H(s) (``discretization`` of the spec,
   pre-warped bilinear by default).  The circuit's output is taken every
   ``1/(t_step fs)``-th grid sample: its input has no content above the audio
   Nyquist frequency, so neither has its (linear) output and nothing aliases.
   The discrete model's own error against its continuous model is reported
   alongside (``dt_vs_ct``): near the Nyquist frequency the bilinear transform
   compresses the upper skirt of a band-pass, an error of the model at 20 kHz,
   not of the circuit.
3. **circuit vs the SPICE-calibrated front end** (the biquads fitted to the
   AC response), at the audio rate, with the features: relative RMS waveform
   error, relative envelope error (the bank's own envelope op) and the RMS
   difference of the final features.

Time step: the simulator's step is limited to ``t_step`` (Gear integration;
its irregular time points are interpolated onto the ``t_step`` grid).  Against
the continuous model fitted to the circuit (comparison 1, 0.1 s of white noise
on 1, 4.5 and 8 kHz channels) the relative RMS error is 0.41 / 3.7 / 10.9 % at
5 us, 0.07 / 0.61 / 1.85 % at 2 us (the default) and 0.03 / 0.16 / 0.47 % at
1 us: a 5 us step is an integration error of the check, not of the circuit.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from learnafe._jsonio import write_json
from learnafe.spice.models import write_library
from learnafe.spice.netlist import bank_tran_netlist, load_spec
from learnafe.spice.runner import run_with_progress

log = logging.getLogger(__name__)

DEFAULT_T_STEP = 2e-6
# Input level, volts differential peak.  The weak-inversion source followers are
# linear only for signals well below n U_T (about 35 mV): on a 1 kHz channel a
# 10 mV peak input puts the transient output 7.2 % (RMS) away from the AC-fitted
# response, 1 mV and 0.1 mV both 1.5 % (the rest is the bilinear mapping).
DEFAULT_AMPLITUDE_V = 1e-3


def loudest_window(x: np.ndarray, n: int) -> np.ndarray:
    """The ``n``-sample window of ``x`` with the most energy (the whole clip if shorter)."""
    x = np.asarray(x, dtype=np.float64)
    if x.size <= n:
        return x
    e = np.concatenate([[0.0], np.cumsum(x * x)])
    k = int(np.argmax(e[n:] - e[:-n]))
    return x[k:k + n]


FADE_S = 0.005


def fade(x: np.ndarray, n_fade: int) -> np.ndarray:
    """Raised-cosine fade-in and fade-out over ``n_fade`` samples.

    The simulator starts from the operating point with the input at its first
    value, the discrete model from a zero state: without a fade the two see
    different start-up transients.
    """
    x = np.array(x, dtype=np.float64)
    n_fade = min(n_fade, x.size // 2)
    if n_fade > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(n_fade) / n_fade)
        x[:n_fade] *= ramp
        x[-n_fade:] *= ramp[::-1]
    return x


def write_filesource(path: Path, x: np.ndarray, rate: float) -> None:
    """XSPICE ``filesource`` text: one ``time value`` pair per line."""
    t = np.arange(x.size) / rate
    np.savetxt(path, np.column_stack([t, x]), fmt="%.9e")


def _identity_envelopes(y, fs: float, cfg):
    """Envelopes of already-filtered signals ``[C, T]`` -> ``[1, C, F]`` (the bank's envelope op)."""
    import torch

    from learnafe.frontends import features as feat

    y = torch.as_tensor(np.ascontiguousarray(y), dtype=torch.float64)
    b = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    a = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    env = feat.envelopes(y, b, a, fs, cfg)  # [C, 1, F]
    return env[:, 0, :].unsqueeze(0)


def _lsim(system, x, dt: float) -> np.ndarray:
    """Response of the continuous system ``(num, den)`` to ``x`` sampled every ``dt``, the input
    linear between samples: :func:`scipy.signal.lsim` (zero state), computed as the exact
    first-order-hold discretisation and a recursive filter (same result, 50x faster)."""
    from scipy.signal import cont2discrete, lfilter

    num = np.trim_zeros(np.asarray(system[0], dtype=np.float64), "f")
    bd, ad, _ = cont2discrete((num, system[1]), dt, method="foh")
    return lfilter(np.ravel(bd), ad, x)


def transient_check(spec, ac_results, clips: Sequence[np.ndarray], out_dir: str | Path, *,
                    t_step: float = DEFAULT_T_STEP, amplitude_v: float = DEFAULT_AMPLITUDE_V,
                    duration_s: float = 0.5, corner: str = "tt", topology: str = "differential",
                    caps: str = "ideal", workers: int = 2, timeout: float = 1800.0,
                    clip_names: Sequence[str] | None = None, progress: bool = True) -> dict[str, Any]:
    """Simulate the bank on ``clips`` (float arrays at the bank's sample rate) and compare.

    ``ac_results``: the AC verification (``ac.json`` dict or path) whose fitted
    biquads define the calibrated model.  Writes ``out_dir/tran/clipN.*`` and
    ``out_dir/transient.json``; returns the JSON content.
    """
    from scipy.signal import resample

    from learnafe import ops
    from learnafe.circuits.discretize import discretize
    from learnafe.spice.ideal import ideal_channels
    from learnafe.frontends import features as feat
    from learnafe.spice.calibrated import calibrated_coefficients

    spec = load_spec(spec)
    chans = list(spec.channels)
    if not isinstance(ac_results, dict):
        from learnafe.spice.calibrated import _ac_results

        ac_results = _ac_results(ac_results)
    b, a, fs, features = calibrated_coefficients(ac_results, spec.sample_rate)
    # the continuous-time models: the bank's own H(s) and the one fitted to the circuit
    ideal = ideal_channels(spec)
    ct_ideal = [([float(ideal["beta"][c]), 0.0], [1.0, float(ideal["d1"][c]), float(ideal["d0"][c])])
                for c in range(len(chans))]
    ct_fit = [(list(r["spice"]["b"]), [1.0, *r["spice"]["a"]]) for r in ac_results["channels"]]
    # the discrete model the classifier saw: the bank's own discretisation at its rate
    method = spec.discretization or "bilinear"
    b_dt, a_dt = discretize(ideal["beta"], ideal["d1"], ideal["d0"], fs, method)
    from learnafe.circuits.discretize import METHODS

    by_method = {m: discretize(ideal["beta"], ideal["d1"], ideal["d0"], fs, m) for m in METHODS}
    cfg = feat.FeatureConfig.from_dict(features)
    ratio = 1.0 / (t_step * fs)
    up = int(round(ratio))
    if up < 1 or abs(ratio - up) > 1e-9 * up:
        raise ValueError(f"t_step={t_step:g} s must divide the sample period 1/{fs:g} s "
                         "(e.g. 5e-6 at 20 kHz)")
    if not clips:
        raise ValueError("clips must hold at least one audio array")
    out_dir = Path(out_dir)
    sim_dir = out_dir / "tran"
    sim_dir.mkdir(parents=True, exist_ok=True)
    library = write_library(sim_dir)
    n = int(round(duration_s * fs))
    inputs, paths = [], []
    for k, clip in enumerate(clips):
        x = loudest_window(np.asarray(clip, dtype=np.float64), n)
        peak = float(np.max(np.abs(x)))
        if not peak > 0:
            raise ValueError(f"clip {k} is silent; choose clips with speech")
        x = fade(x / peak, int(round(FADE_S * fs)))
        inputs.append(x)
        src = sim_dir / f"clip{k}.txt"
        write_filesource(src, resample(x, x.size * up), fs * up)
        path = sim_dir / f"clip{k}.cir"
        path.write_text(bank_tran_netlist(chans, library=library, input_file=src.name,
                                          t_stop=(x.size - 1) / fs, t_step=t_step,
                                          amplitude_v=amplitude_v, corner=corner,
                                          topology=topology, caps=caps))
        paths.append(path)
    log.info("transient: %d clips x %.2f s, %d channels, step %g s, %d workers", len(paths),
             n / fs, len(chans), t_step, workers)
    results, wall = run_with_progress(paths, desc="spice tran", unit="clip", workers=workers,
                                      timeout=timeout, progress=progress)
    per_clip = []
    wave_err = np.zeros((len(clips), len(chans)))
    feat_err = np.zeros_like(wave_err)
    env_err = np.zeros_like(wave_err)
    cmp = {k: np.zeros_like(wave_err) for k in ("ct_ideal", "ct_fit", "dt_bank", "dt_vs_ct")}
    cmp_env = {k: np.zeros_like(wave_err) for k in ("ct_ideal", "dt_bank", "dt_vs_ct")}
    meth_wave = {m: np.zeros_like(wave_err) for m in by_method}
    meth_env = {m: np.zeros_like(wave_err) for m in by_method}

    def rel(y, ref):
        return np.linalg.norm(y - ref, axis=-1) / np.linalg.norm(ref, axis=-1)

    def env_rel(y, ref):
        e, e_ref = _identity_envelopes(y, fs, cfg), _identity_envelopes(ref, fs, cfg)
        return ((e - e_ref).abs().mean(-1) / e_ref.mean(-1))[0].cpu().numpy()

    for k, (x, res) in enumerate(zip(inputs, results)):
        tr = res.plot("Transient")
        t_sim = tr.scale.real
        grid = np.arange(x.size * up) / (fs * up)
        ys = []
        for ch in chans:
            v = tr[f"v(dp_{ch.index})"].real
            if topology != "half":
                v = v - tr[f"v(dn_{ch.index})"].real
            # onto the t_step grid; remove the operating point (zero for a balanced pair)
            ys.append(np.interp(grid, t_sim, v - v[0]))
        y_up = np.array(ys) / amplitude_v  # [C, T * up], in units of the input's full scale
        x_up = resample(x, x.size * up)
        y_ct = np.array([_lsim(sys_, x_up, t_step) for sys_ in ct_ideal])
        y_cf = np.array([_lsim(sys_, x_up, t_step) for sys_ in ct_fit])
        cmp["ct_ideal"][k] = rel(y_up, y_ct)
        cmp["ct_fit"][k] = rel(y_up, y_cf)
        y_sp = y_up[:, ::up][:, :x.size]
        y_dt = ops.biquad_filterbank(x, b_dt, a_dt)
        cmp["dt_bank"][k] = rel(y_sp, y_dt)
        y_cs = y_ct[:, ::up][:, :x.size]  # the continuous model at the audio rate
        cmp["dt_vs_ct"][k] = rel(y_dt, y_cs)
        cmp_env["ct_ideal"][k] = env_rel(y_sp, y_cs)
        cmp_env["dt_bank"][k] = env_rel(y_sp, y_dt)
        cmp_env["dt_vs_ct"][k] = env_rel(y_dt, y_cs)
        for m_name, (bm, am) in by_method.items():
            y_meth = ops.biquad_filterbank(x, bm, am)
            meth_wave[m_name][k] = rel(y_meth, y_cs)
            meth_env[m_name][k] = env_rel(y_meth, y_cs)
        y_m = ops.biquad_filterbank(x, b, a)  # [C, T]
        m = min(y_sp.shape[1], y_m.shape[1])
        y_sp, y_m = y_sp[:, :m], y_m[:, :m]
        wave_err[k] = np.linalg.norm(y_sp - y_m, axis=1) / np.linalg.norm(y_m, axis=1)
        env_sp = _identity_envelopes(y_sp, fs, cfg)
        env_m = _identity_envelopes(y_m, fs, cfg)
        env_err[k] = ((env_sp - env_m).abs().mean(-1) / env_m.mean(-1))[0].cpu().numpy()
        f_sp = feat.post_process(env_sp, cfg)[0].numpy()
        f_m = feat.post_process(env_m, cfg)[0].numpy()
        feat_err[k] = np.sqrt(np.mean((f_sp - f_m) ** 2, axis=1))
        corr = [float(np.corrcoef(f_sp[c], f_m[c])[0, 1]) for c in range(len(chans))]
        np.savez_compressed(sim_dir / f"clip{k}_outputs.npz", spice=y_sp, model=y_m, bank_discrete=y_dt,
                            continuous=y_cs,
                            features_spice=f_sp, features_model=f_m)
        per_clip.append({
            "clip": k, "name": None if clip_names is None else str(clip_names[k]),
            "seconds_audio": m / fs, "sim_seconds": res.seconds,
            "waveform_rel_rms_error": wave_err[k].tolist(),
            "vs_continuous_model_rel_rms_error": cmp["ct_ideal"][k].tolist(),
            "vs_fitted_continuous_rel_rms_error": cmp["ct_fit"][k].tolist(),
            "vs_bank_discrete_rel_rms_error": cmp["dt_bank"][k].tolist(),
            "discrete_vs_continuous_rel_rms_error": cmp["dt_vs_ct"][k].tolist(),
            "vs_continuous_model_envelope_rel_error": cmp_env["ct_ideal"][k].tolist(),
            "vs_bank_discrete_envelope_rel_error": cmp_env["dt_bank"][k].tolist(),
            "discrete_vs_continuous_envelope_rel_error": cmp_env["dt_vs_ct"][k].tolist(),
            "envelope_rel_error": env_err[k].tolist(),
            "feature_rms_error": feat_err[k].tolist(), "feature_correlation": corr})
    result = {
        "format": "learnafe-spice-tran/1", "t_step_s": t_step, "amplitude_v": amplitude_v,
        "corner": corner, "topology": topology, "caps": caps, "sample_rate": fs,
        "features": cfg.to_dict(), "clips": per_clip,
        "summary": {
            "mean_waveform_rel_rms_error": float(wave_err.mean()),
            "max_waveform_rel_rms_error": float(wave_err.max()),
            "per_channel_waveform_rel_rms_error": wave_err.mean(0).tolist(),
            "mean_envelope_rel_error": float(env_err.mean()),
            "per_channel_envelope_rel_error": env_err.mean(0).tolist(),
            "mean_feature_rms_error": float(feat_err.mean()),
            "discretization": method,
            "per_channel_vs_continuous_model": cmp["ct_ideal"].mean(0).tolist(),
            "per_channel_vs_fitted_continuous": cmp["ct_fit"].mean(0).tolist(),
            "per_channel_vs_bank_discrete": cmp["dt_bank"].mean(0).tolist(),
            "per_channel_discrete_vs_continuous": cmp["dt_vs_ct"].mean(0).tolist(),
            "mean_vs_continuous_model": float(cmp["ct_ideal"].mean()),
            "mean_vs_fitted_continuous": float(cmp["ct_fit"].mean()),
            "mean_vs_bank_discrete": float(cmp["dt_bank"].mean()),
            "mean_discrete_vs_continuous": float(cmp["dt_vs_ct"].mean()),
            "per_channel_envelope_vs_continuous_model": cmp_env["ct_ideal"].mean(0).tolist(),
            "per_channel_envelope_vs_bank_discrete": cmp_env["dt_bank"].mean(0).tolist(),
            "per_channel_envelope_discrete_vs_continuous": cmp_env["dt_vs_ct"].mean(0).tolist(),
            "discrete_vs_continuous_by_method": {
                m: {"waveform": meth_wave[m].mean(0).tolist(), "envelope": meth_env[m].mean(0).tolist()}
                for m in by_method},
            "wall_seconds": wall, "sim_seconds": float(sum(r.seconds for r in results))},
    }
    write_json(out_dir / "transient.json", result, indent=1, newline=False)
    log.info("transient done in %.1f s: mean waveform error %.2f %%, envelope error %.2f %%", wall,
             100 * result["summary"]["mean_waveform_rel_rms_error"],
             100 * result["summary"]["mean_envelope_rel_error"])
    return result
