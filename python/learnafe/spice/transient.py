"""Transient check: the transistor-level bank on real audio against the calibrated model.

Each clip (its loudest window, faded in and out over 5 ms) is scaled to
``amplitude_v`` volts peak (differential), band-limited
upsampled to the simulator's output grid (so the ``filesource``'s linear
interpolation adds no audible error: at 8 kHz a 20 kHz staircase or
linear-interpolated input would lose up to 5 dB), fed to a ``.tran`` of the
whole bank through the XSPICE ``filesource``, and the differential outputs are
brought back to the audio rate with an anti-aliasing polyphase resampler.
The same audio (in units of full scale) goes through the calibrated front
end's biquads.  Compared per channel: the filter outputs (relative RMS error)
and the features (envelopes through the bank's own envelope op, then its log
/ normalisation).

Time step: the simulator's step is limited to ``t_step`` (Gear integration;
its irregular time points are interpolated onto the ``t_step`` grid).  A
50 us step is too coarse for the top channels (8-23 % error); at 5 us (the
default) the 8 kHz channel's output is within about 3 % RMS, the 1 kHz channel's
within 0.1 %, of a trapezoidal run with the simulator's own error-controlled
step (about 0.3 us).
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

DEFAULT_T_STEP = 5e-6
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
    from scipy.signal import resample_poly

    from learnafe import ops
    from learnafe.frontends import features as feat
    from learnafe.spice.calibrated import calibrated_coefficients

    spec = load_spec(spec)
    chans = list(spec.channels)
    b, a, fs, features = calibrated_coefficients(ac_results, spec.sample_rate)
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
        write_filesource(src, resample_poly(x, up, 1), fs * up)
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
        y_sp = resample_poly(np.array(ys), 1, up, axis=1)[:, :x.size] / amplitude_v
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
        np.savez_compressed(sim_dir / f"clip{k}_outputs.npz", spice=y_sp, model=y_m,
                            features_spice=f_sp, features_model=f_m)
        per_clip.append({
            "clip": k, "name": None if clip_names is None else str(clip_names[k]),
            "seconds_audio": m / fs, "sim_seconds": res.seconds,
            "waveform_rel_rms_error": wave_err[k].tolist(),
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
            "wall_seconds": wall, "sim_seconds": float(sum(r.seconds for r in results))},
    }
    write_json(out_dir / "transient.json", result, indent=1, newline=False)
    log.info("transient done in %.1f s: mean waveform error %.2f %%, envelope error %.2f %%", wall,
             100 * result["summary"]["mean_waveform_rel_rms_error"],
             100 * result["summary"]["mean_envelope_rel_error"])
    return result
