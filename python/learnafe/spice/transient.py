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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from scipy.signal import cont2discrete, lfilter, resample

from learnafe import ops
from learnafe._jsonio import write_json
from learnafe.circuits.discretize import METHODS, discretize
from learnafe.frontends import features as feat
from learnafe.spice.calibrated import _ac_results, calibrated_coefficients
from learnafe.spice.ideal import ideal_channels
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
    y = torch.as_tensor(np.ascontiguousarray(y), dtype=torch.float64)
    b = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    a = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    env = feat.envelopes(y, b, a, fs, cfg)  # [C, 1, F]
    return env[:, 0, :].unsqueeze(0)


def _lsim(system, x, dt: float) -> np.ndarray:
    """Response of the continuous system ``(num, den)`` to ``x`` sampled every ``dt``, the input
    linear between samples: :func:`scipy.signal.lsim` (zero state), computed as the exact
    first-order-hold discretisation and a recursive filter (same result, 50x faster)."""
    num = np.trim_zeros(np.asarray(system[0], dtype=np.float64), "f")
    bd, ad, _ = cont2discrete((num, system[1]), dt, method="foh")
    return lfilter(np.ravel(bd), ad, x)


@dataclass(frozen=True)
class TransientOptions:
    """How :func:`transient_check` simulates the bank on audio clips."""

    #: simulator time step (s); it must divide the audio sample period
    t_step: float = DEFAULT_T_STEP
    #: input level, volts differential peak
    amplitude_v: float = DEFAULT_AMPLITUDE_V
    #: seconds of each clip simulated (its loudest window)
    duration_s: float = 0.5
    #: process corner of the SKY130 models
    corner: str = "tt"
    #: "differential" (the balanced pair) or "half" (one half circuit)
    topology: str = "differential"
    #: "ideal" capacitors or the process's MIM capacitors
    caps: str = "ideal"
    #: simulations run in parallel
    workers: int = 2
    #: seconds one clip's simulation may take
    timeout: float = 1800.0
    #: a name per clip, recorded in the results (None: unnamed)
    clip_names: Sequence[str] | None = None
    #: show a progress bar
    progress: bool = True


@dataclass(frozen=True)
class _Models:
    """The models the circuit is compared with, and the features they share."""

    b: np.ndarray  # the SPICE-calibrated digital biquads [C, 3], [C, 2]
    a: np.ndarray
    fs: float
    cfg: Any  # FeatureConfig
    ct_ideal: list  # (num, den) of the bank's own H(s), per channel
    ct_fit: list  # (num, den) fitted to the circuit's AC response, per channel
    method: str  # the bank's own discretisation
    b_dt: np.ndarray  # the discrete model the classifier saw
    a_dt: np.ndarray
    by_method: dict  # every discretisation of the bank's H(s)


def _comparison_models(spec, ac_results) -> _Models:
    """The calibrated, continuous-time and discrete models of ``spec`` and its AC results."""
    b, a, fs, features = calibrated_coefficients(ac_results, spec.sample_rate)
    ideal = ideal_channels(spec)
    ct_ideal = [([float(ideal["beta"][c]), 0.0], [1.0, float(ideal["d1"][c]), float(ideal["d0"][c])])
                for c in range(spec.n_channels)]
    ct_fit = [(list(r["spice"]["b"]), [1.0, *r["spice"]["a"]]) for r in ac_results["channels"]]
    method = spec.discretization or "bilinear"
    b_dt, a_dt = discretize(ideal["beta"], ideal["d1"], ideal["d0"], fs, method)
    by_method = {m: discretize(ideal["beta"], ideal["d1"], ideal["d0"], fs, m) for m in METHODS}
    return _Models(b=b, a=a, fs=fs, cfg=feat.FeatureConfig.from_dict(features), ct_ideal=ct_ideal,
                   ct_fit=ct_fit, method=method, b_dt=b_dt, a_dt=a_dt, by_method=by_method)


def _upsampling(t_step: float, fs: float) -> int:
    """Simulator grid points per audio sample; ``t_step`` must divide the sample period."""
    ratio = 1.0 / (t_step * fs)
    up = int(round(ratio))
    if up < 1 or abs(ratio - up) > 1e-9 * up:
        raise ValueError(f"t_step={t_step:g} s must divide the sample period 1/{fs:g} s "
                         "(e.g. 5e-6 at 20 kHz)")
    return up


def _write_clip_netlists(chans, clips, sim_dir: Path, fs: float, up: int,
                         options: TransientOptions) -> tuple[list[np.ndarray], list[Path]]:
    """The faded, normalised input of each clip, its ``filesource`` and its bank netlist."""
    sim_dir.mkdir(parents=True, exist_ok=True)
    library = write_library(sim_dir)
    n = int(round(options.duration_s * fs))
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
                                          t_stop=(x.size - 1) / fs, t_step=options.t_step,
                                          amplitude_v=options.amplitude_v, corner=options.corner,
                                          topology=options.topology, caps=options.caps))
        paths.append(path)
    return inputs, paths


def _circuit_output(res, chans, n_grid: int, rate: float, options: TransientOptions) -> np.ndarray:
    """The simulated differential outputs ``[C, n_grid]`` on the ``t_step`` grid, in units of
    the input's full scale."""
    tr = res.plot("Transient")
    t_sim = tr.scale.real
    grid = np.arange(n_grid) / rate
    ys = []
    for ch in chans:
        v = tr[f"v(dp_{ch.index})"].real
        if options.topology != "half":
            v = v - tr[f"v(dn_{ch.index})"].real
        # onto the t_step grid; remove the operating point (zero for a balanced pair)
        ys.append(np.interp(grid, t_sim, v - v[0]))
    return np.array(ys) / options.amplitude_v


def _rel(y, ref):
    """Relative RMS error of ``y`` against ``ref`` along the last axis."""
    return np.linalg.norm(y - ref, axis=-1) / np.linalg.norm(ref, axis=-1)


def _env_rel(y, ref, models: _Models):
    """Relative mean envelope error of ``y`` against ``ref`` per channel."""
    e = _identity_envelopes(y, models.fs, models.cfg)
    e_ref = _identity_envelopes(ref, models.fs, models.cfg)
    return ((e - e_ref).abs().mean(-1) / e_ref.mean(-1))[0].cpu().numpy()


def _compare_models(x, y_up, up: int, models: _Models, t_step: float) -> tuple[dict, dict]:
    """Comparisons 1 and 2 of the module docstring for one clip: per-channel errors by name,
    and the audio-rate signals (circuit, bank's discrete model, continuous model)."""
    x_up = resample(x, x.size * up)
    y_ct = np.array([_lsim(sys_, x_up, t_step) for sys_ in models.ct_ideal])
    y_cf = np.array([_lsim(sys_, x_up, t_step) for sys_ in models.ct_fit])
    y_sp = y_up[:, ::up][:, :x.size]
    y_dt = ops.biquad_filterbank(x, models.b_dt, models.a_dt)
    y_cs = y_ct[:, ::up][:, :x.size]  # the continuous model at the audio rate
    errs = {"ct_ideal": _rel(y_up, y_ct), "ct_fit": _rel(y_up, y_cf), "dt_bank": _rel(y_sp, y_dt),
            "dt_vs_ct": _rel(y_dt, y_cs), "env_ct_ideal": _env_rel(y_sp, y_cs, models),
            "env_dt_bank": _env_rel(y_sp, y_dt, models), "env_dt_vs_ct": _env_rel(y_dt, y_cs, models)}
    for m_name, (bm, am) in models.by_method.items():
        y_meth = ops.biquad_filterbank(x, bm, am)
        errs[f"wave_{m_name}"] = _rel(y_meth, y_cs)
        errs[f"env_{m_name}"] = _env_rel(y_meth, y_cs, models)
    return errs, {"spice": y_sp, "bank_discrete": y_dt, "continuous": y_cs}


def _compare_calibrated(x, y_sp, models: _Models) -> tuple[dict, dict]:
    """Comparison 3 of the module docstring for one clip: waveform, envelope and feature errors
    of the circuit against the calibrated front end, and the signals and features compared."""
    y_m = ops.biquad_filterbank(x, models.b, models.a)  # [C, T]
    m = min(y_sp.shape[1], y_m.shape[1])
    y_sp, y_m = y_sp[:, :m], y_m[:, :m]
    wave = np.linalg.norm(y_sp - y_m, axis=1) / np.linalg.norm(y_m, axis=1)
    env_sp = _identity_envelopes(y_sp, models.fs, models.cfg)
    env_m = _identity_envelopes(y_m, models.fs, models.cfg)
    env = ((env_sp - env_m).abs().mean(-1) / env_m.mean(-1))[0].cpu().numpy()
    f_sp = feat.post_process(env_sp, models.cfg)[0].numpy()
    f_m = feat.post_process(env_m, models.cfg)[0].numpy()
    feat_err = np.sqrt(np.mean((f_sp - f_m) ** 2, axis=1))
    corr = [float(np.corrcoef(f_sp[c], f_m[c])[0, 1]) for c in range(f_sp.shape[0])]
    errs = {"waveform": wave, "envelope": env, "feature": feat_err}
    return errs, {"spice": y_sp, "model": y_m, "features_spice": f_sp, "features_model": f_m,
                  "correlation": corr, "samples": m}


def _clip_row(k: int, res, errs: dict, calibrated: dict, fs: float, options: TransientOptions) -> dict:
    """The ``transient.json`` entry of clip ``k``."""
    names = options.clip_names
    return {
        "clip": k, "name": None if names is None else str(names[k]),
        "seconds_audio": calibrated["samples"] / fs, "sim_seconds": res.seconds,
        "waveform_rel_rms_error": errs["waveform"].tolist(),
        "vs_continuous_model_rel_rms_error": errs["ct_ideal"].tolist(),
        "vs_fitted_continuous_rel_rms_error": errs["ct_fit"].tolist(),
        "vs_bank_discrete_rel_rms_error": errs["dt_bank"].tolist(),
        "discrete_vs_continuous_rel_rms_error": errs["dt_vs_ct"].tolist(),
        "vs_continuous_model_envelope_rel_error": errs["env_ct_ideal"].tolist(),
        "vs_bank_discrete_envelope_rel_error": errs["env_dt_bank"].tolist(),
        "discrete_vs_continuous_envelope_rel_error": errs["env_dt_vs_ct"].tolist(),
        "envelope_rel_error": errs["envelope"].tolist(),
        "feature_rms_error": errs["feature"].tolist(), "feature_correlation": calibrated["correlation"]}


def _check_clip(k: int, x, res, chans, models: _Models, up: int, sim_dir: Path,
                options: TransientOptions) -> tuple[dict, dict]:
    """All three comparisons of one simulated clip; writes ``clipK_outputs.npz``.  Returns the
    clip's ``transient.json`` entry and its per-channel errors by name."""
    y_up = _circuit_output(res, chans, x.size * up, models.fs * up, options)
    errs, signals = _compare_models(x, y_up, up, models, options.t_step)
    cal_errs, cal = _compare_calibrated(x, signals["spice"], models)
    errs.update(cal_errs)
    np.savez_compressed(sim_dir / f"clip{k}_outputs.npz", spice=cal["spice"], model=cal["model"],
                        bank_discrete=signals["bank_discrete"], continuous=signals["continuous"],
                        features_spice=cal["features_spice"], features_model=cal["features_model"])
    return _clip_row(k, res, errs, cal, models.fs, options), errs


def _summary(errs: dict[str, np.ndarray], models: _Models, results, wall: float) -> dict:
    """The ``summary`` of ``transient.json`` from the per-clip errors ``[clips, C]`` by name."""
    def per_channel(key):
        return errs[key].mean(0).tolist()

    def mean(key):
        return float(errs[key].mean())

    return {
        "mean_waveform_rel_rms_error": mean("waveform"),
        "max_waveform_rel_rms_error": float(errs["waveform"].max()),
        "per_channel_waveform_rel_rms_error": per_channel("waveform"),
        "mean_envelope_rel_error": mean("envelope"),
        "per_channel_envelope_rel_error": per_channel("envelope"),
        "mean_feature_rms_error": mean("feature"),
        "discretization": models.method,
        "per_channel_vs_continuous_model": per_channel("ct_ideal"),
        "per_channel_vs_fitted_continuous": per_channel("ct_fit"),
        "per_channel_vs_bank_discrete": per_channel("dt_bank"),
        "per_channel_discrete_vs_continuous": per_channel("dt_vs_ct"),
        "mean_vs_continuous_model": mean("ct_ideal"),
        "mean_vs_fitted_continuous": mean("ct_fit"),
        "mean_vs_bank_discrete": mean("dt_bank"),
        "mean_discrete_vs_continuous": mean("dt_vs_ct"),
        "per_channel_envelope_vs_continuous_model": per_channel("env_ct_ideal"),
        "per_channel_envelope_vs_bank_discrete": per_channel("env_dt_bank"),
        "per_channel_envelope_discrete_vs_continuous": per_channel("env_dt_vs_ct"),
        "discrete_vs_continuous_by_method": {
            m: {"waveform": per_channel(f"wave_{m}"), "envelope": per_channel(f"env_{m}")}
            for m in models.by_method},
        "wall_seconds": wall, "sim_seconds": float(sum(r.seconds for r in results))}


def transient_check(spec, ac_results, clips: Sequence[np.ndarray], out_dir: str | Path,
                    options: TransientOptions = TransientOptions()) -> dict[str, Any]:
    """Simulate the bank on ``clips`` (float arrays at the bank's sample rate) and compare.

    ``ac_results``: the AC verification (``ac.json`` dict or path) whose fitted
    biquads define the calibrated model; ``options``: :class:`TransientOptions`.
    Writes ``out_dir/tran/clipN.*`` and ``out_dir/transient.json``; returns the
    JSON content.
    """
    spec = load_spec(spec)
    chans = list(spec.channels)
    if not isinstance(ac_results, dict):
        ac_results = _ac_results(ac_results)
    models = _comparison_models(spec, ac_results)
    up = _upsampling(options.t_step, models.fs)
    if not clips:
        raise ValueError("clips must hold at least one audio array")
    out_dir = Path(out_dir)
    sim_dir = out_dir / "tran"
    inputs, paths = _write_clip_netlists(chans, clips, sim_dir, models.fs, up, options)
    log.info("transient: %d clips x %.2f s, %d channels, step %g s, %d workers", len(paths),
             int(round(options.duration_s * models.fs)) / models.fs, len(chans), options.t_step,
             options.workers)
    results, wall = run_with_progress(paths, desc="spice tran", unit="clip", workers=options.workers,
                                      timeout=options.timeout, progress=options.progress)
    per_clip, clip_errs = [], []
    for k, (x, res) in enumerate(zip(inputs, results)):
        row, errs = _check_clip(k, x, res, chans, models, up, sim_dir, options)
        per_clip.append(row)
        clip_errs.append(errs)
    errs = {key: np.array([e[key] for e in clip_errs]) for key in clip_errs[0]}
    result = {
        "format": "learnafe-spice-tran/1", "t_step_s": options.t_step,
        "amplitude_v": options.amplitude_v, "corner": options.corner,
        "topology": options.topology, "caps": options.caps, "sample_rate": models.fs,
        "features": models.cfg.to_dict(), "clips": per_clip,
        "summary": _summary(errs, models, results, wall)}
    write_json(out_dir / "transient.json", result, indent=1, newline=False)
    log.info("transient done in %.1f s: mean waveform error %.2f %%, envelope error %.2f %%", wall,
             100 * result["summary"]["mean_waveform_rel_rms_error"],
             100 * result["summary"]["mean_envelope_rel_error"])
    return result
