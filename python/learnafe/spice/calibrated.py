"""The SPICE-calibrated front end: the bank as the transistor-level circuit really filters.

Two ways from the simulated ``.ac`` response of each channel to a digital
biquad at the audio rate (``method``):

- ``"zfit"`` (default): the z-domain biquad fitted directly to the simulated
  complex response over the channel's band below 0.45 fs
  (:func:`learnafe.spice.fit.fit_digital_biquad`).  Closest to the circuit over
  the whole band; on the conventional bank the RMS error relative to the peak is
  0.5 % at 1 kHz and 5.7 % at 8 kHz (20 kHz audio);
- ``"bilinear"``: the s-domain biquad fitted to the response (general numerator,
  :func:`learnafe.spice.fit.fit_biquad`) mapped by the bilinear transform
  pre-warped at the fitted centre (the learnable bank's mapping).  Exact at f0,
  but it squeezes the upper skirt towards Nyquist: 0.7 % at 1 kHz, 26 % at 8 kHz.

The coefficients become a fixed :class:`learnafe.frontends.DigitalFilterBank`
with the feature configuration of the verified bank, so features for a whole
data set are regenerated at the speed of the kernel op.

With the ``.noise`` results of the same circuit (``noise.json`` next to ``ac.json``) the bank
adds each channel's input-referred circuit noise (:func:`learnafe.spice.noise.input_noise_std`:
shot, flicker and resistance noise instead of the kT/C model).  Mode and full scale follow the
verified bank's ``noise`` section (``mode``, ``full_scale_v``): the calibrated bank is noisy
exactly when the bank the classifier is trained with is.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import torch

from learnafe.circuits.discretize import bilinear_prewarped
from learnafe.frontends import features as feat
from learnafe.frontends.digital import DigitalFilterBank
from learnafe.spice.noise import input_noise_std

log = logging.getLogger(__name__)

AC_JSON = "ac.json"
NOISE_JSON = "noise.json"
NOISE_MODES = ("off", "train", "always")


def _ac_results(source) -> dict:
    """ac.json content from a dict, an ``ac.json`` path, a verify dir or a run dir."""
    if isinstance(source, dict):
        return source
    p = Path(source)
    for cand in (p, p / AC_JSON, p / "spice" / AC_JSON):
        if cand.is_file():
            return json.loads(cand.read_text())
    raise FileNotFoundError(f"no SPICE AC results under {p} (looked for {AC_JSON} and "
                            f"spice/{AC_JSON}); run `learnafe verify RUN` or `learnafe spice ac "
                            "SPEC.json --out DIR` first")


def discretize_fitted(b_s, a_s, sample_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Fitted s-domain biquads -> z-domain ``(b [C, 3], a [C, 2])``.

    ``b_s[c] = (b2, b1, b0)`` and ``a_s[c] = (a1, a0)`` of
    ``(b2 s^2 + b1 s + b0) / (s^2 + a1 s + a0)``; the bilinear transform pre-warped
    at the analog centre ``w0 = sqrt(a0)``
    (:func:`learnafe.circuits.discretize.bilinear_prewarped`), which maps it
    exactly onto the digital one.
    """
    b_s = np.asarray(b_s, dtype=np.float64)
    a_s = np.asarray(a_s, dtype=np.float64)
    if b_s.ndim != 2 or b_s.shape[1] != 3 or a_s.shape != (b_s.shape[0], 2):
        raise ValueError(f"need b_s [C, 3] and a_s [C, 2], got {b_s.shape} and {a_s.shape}")
    nyq = math.pi * sample_rate
    bz, az = np.empty((len(b_s), 3)), np.empty((len(b_s), 2))
    for c, (bs, as_) in enumerate(zip(b_s, a_s)):
        w0 = math.sqrt(as_[1])
        if not w0 < 0.98 * nyq:
            raise ValueError(f"channel {c}: fitted centre {w0 / (2 * math.pi):.1f} Hz is too close to the "
                             f"Nyquist frequency {sample_rate / 2:g} Hz to discretise")
        bz[c], az[c] = bilinear_prewarped(bs[0], bs[1], bs[2], as_[0], as_[1], w0, sample_rate)
    return bz, az


METHODS = ("zfit", "bilinear")


def calibrated_coefficients(source, sample_rate: float | None = None, method: str = "zfit"):
    """``(b, a, sample_rate, features)`` of the calibrated bank from AC results.

    With ``method="zfit"`` a channel without a stable z-domain fit at this sample
    rate (or AC results from before such fits) falls back to the bilinear mapping,
    with a warning naming the channel.
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r}; use one of {', '.join(METHODS)}")
    ac = _ac_results(source)
    fs = float(sample_rate or ac.get("sample_rate") or 0)
    if not fs > 0:
        raise ValueError("the AC results carry no sample_rate; pass sample_rate=... (Hz)")
    rows = ac["channels"]
    b, a = discretize_fitted([r["spice"]["b"] for r in rows], [r["spice"]["a"] for r in rows], fs)
    if method == "zfit":
        for c, r in enumerate(rows):
            dig = r["spice"].get("digital")
            if dig and dig.get("stable") and math.isclose(dig.get("sample_rate", 0), fs):
                b[c], a[c] = dig["b"], dig["a"]
            else:
                log.warning("channel %d: no stable z-domain fit at %g Hz; using the bilinear "
                            "mapping", c, fs)
    return b, a, fs, ac.get("features")


class SpiceCalibratedBank(DigitalFilterBank):
    """The SPICE-calibrated front end: a fixed biquad bank from the simulated circuit.

    A :class:`~learnafe.frontends.DigitalFilterBank` (same features, same file
    format ``learnafe-digital-bank/1``) that also records how its biquads were
    obtained (``method``, see the module docstring) under ``"calibration"``, and
    optionally carries the circuit's noise:

    Args:
        noise_std: per-channel std (audio units) of the white input-referred noise
            (:func:`learnafe.spice.noise.input_noise_std`), or None for a noiseless bank.
        noise_mode: ``"off"``, ``"train"`` (training mode only) or ``"always"``, as the
            analog bank's ``noise.mode``.
        noise_source: a short note of where ``noise_std`` comes from (kept in the spec).
    """

    def __init__(self, b, a, sample_rate: float = 20000.0, features=None, method: str = "zfit",
                 noise_std=None, noise_mode: str = "off", noise_source: str | None = None):
        if method not in METHODS:
            raise ValueError(f"method={method!r}; use one of {', '.join(METHODS)}")
        super().__init__(b, a, sample_rate, features=features)
        self.method = method
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if noise_std is None:
            noise_mode = "off"
        else:
            std = np.asarray(noise_std, dtype=np.float64).reshape(-1)
            if std.shape != (self.n_channels,) or not np.all(np.isfinite(std) & (std >= 0)):
                raise ValueError(f"noise_std must hold {self.n_channels} finite values >= 0 (one per "
                                 f"channel, audio units), got {np.asarray(noise_std).tolist()!r}")
            self.register_buffer("noise_std", torch.as_tensor(std))
        self.noise_mode = noise_mode
        self.noise_source = noise_source

    def input_noise_std(self) -> torch.Tensor | None:
        """Per-channel std (audio units) of the white input-referred noise, tensor [C] (None: noiseless)."""
        return getattr(self, "noise_std", None)

    def noise_active(self) -> bool:
        return self.noise_mode == "always" or (self.noise_mode == "train" and self.training)

    def forward(self, audio):
        """Audio ``[B, T]`` -> features ``[B, C, T // hop]``, with the circuit's noise when active."""
        if not self.noise_active():
            return super().forward(audio)
        x, was_1d = feat.check_audio(audio)
        # the white input-referred noise of each channel is drawn inside the fused op (one
        # call; its seed comes from torch's generator, so torch.manual_seed fixes it)
        env = feat.envelopes(x, self.b, self.a, self.sample_rate, self.features, noise_std=self.noise_std)
        out = feat.post_process(env, self.features)
        return out[0] if was_1d else out

    def to_dict(self) -> dict:
        d = {**super().to_dict(), "calibration": {"source": "spice", "method": self.method}}
        std = self.input_noise_std()
        if std is not None:
            d["calibration"]["noise"] = {"mode": self.noise_mode, "input_std": std.cpu().tolist(),
                                         "source": self.noise_source}
        return d

    @classmethod
    def from_dict(cls, spec: dict) -> "SpiceCalibratedBank":
        bank = DigitalFilterBank.from_dict(spec)
        cal = spec.get("calibration") or {}
        noise = cal.get("noise") or {}
        return cls(bank.b, bank.a, bank.sample_rate, features=bank.features,
                   method=cal.get("method", "zfit"), noise_std=noise.get("input_std"),
                   noise_mode=noise.get("mode", "off"), noise_source=noise.get("source"))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", method={self.method}, noise={self.noise_mode}"


def _noise_results(source, noise):
    """``noise.json`` content: the ``noise`` argument, or the file next to the AC results."""
    if noise is None or noise == "off":
        return None
    if isinstance(noise, dict):
        return noise
    if noise != "auto":
        p = Path(noise)
        if not p.is_file():
            raise FileNotFoundError(f"noise results {p} not found (write them with `learnafe spice "
                                    "noise SPEC --out DIR` or `learnafe verify RUN`)")
        return json.loads(p.read_text())
    if isinstance(source, dict):
        return None
    p = Path(source)
    for cand in (p.parent / NOISE_JSON if p.is_file() else p / NOISE_JSON, p / "spice" / NOISE_JSON):
        if cand.is_file():
            return json.loads(cand.read_text())
    return None


def calibrated_frontend(run_dir, sample_rate: float | None = None, method: str = "zfit",
                        noise="auto", noise_mode: str | None = None) -> SpiceCalibratedBank:
    """A fixed front end ([B, T] audio -> [B, C, F] features) built from the SPICE-fitted biquads.

    ``run_dir``: a run directory verified by ``learnafe verify`` (reads
    ``RUN/spice/ac.json``), a directory holding ``ac.json``, the file itself,
    or its loaded dict.  The features (hop, envelope, log, normalisation) are
    those of the verified bank.

    ``noise``: ``"auto"`` (default) uses the circuit's ``.noise`` results
    (``noise.json``) found next to the AC results, if any; a ``noise.json`` path
    or its dict; ``"off"`` or None for a noiseless bank.  Mode (default: the
    verified bank's ``noise.mode``) and full scale (its ``noise.full_scale_v``,
    default 0.1 V) as recorded in the noise results.
    """
    b, a, fs, features = calibrated_coefficients(run_dir, sample_rate, method)
    res = _noise_results(run_dir, noise)
    if res is None:
        return SpiceCalibratedBank(b, a, fs, features=features, method=method)

    cfg = res.get("noise_config") or {}
    mode = noise_mode or cfg.get("mode", "off")
    std = input_noise_std(res, b, a, float(cfg.get("full_scale_v", 0.1)))
    lo, hi = res["band_hz"]
    return SpiceCalibratedBank(
        b, a, fs, features=features, method=method, noise_std=std, noise_mode=mode,
        noise_source=f"ngspice .noise, {res.get('corner', 'tt')} corner, {lo:g}-{hi:g} Hz, "
                     f"full scale {float(cfg.get('full_scale_v', 0.1)):g} V")
