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
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

from learnafe.circuits.discretize import bilinear_prewarped
from learnafe.frontends.digital import DigitalFilterBank

log = logging.getLogger(__name__)

AC_JSON = "ac.json"


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
    obtained (``method``, see the module docstring) under ``"calibration"``.
    """

    def __init__(self, b, a, sample_rate: float = 20000.0, features=None, method: str = "zfit"):
        if method not in METHODS:
            raise ValueError(f"method={method!r}; use one of {', '.join(METHODS)}")
        super().__init__(b, a, sample_rate, features=features)
        self.method = method

    def to_dict(self) -> dict:
        return {**super().to_dict(), "calibration": {"source": "spice", "method": self.method}}

    @classmethod
    def from_dict(cls, spec: dict) -> "SpiceCalibratedBank":
        bank = DigitalFilterBank.from_dict(spec)
        method = (spec.get("calibration") or {}).get("method", "zfit")
        return cls(bank.b, bank.a, bank.sample_rate, features=bank.features, method=method)


def calibrated_frontend(run_dir, sample_rate: float | None = None, method: str = "zfit") -> SpiceCalibratedBank:
    """A fixed front end ([B, T] audio -> [B, C, F] features) built from the SPICE-fitted biquads.

    ``run_dir``: a run directory verified by ``learnafe verify`` (reads
    ``RUN/spice/ac.json``), a directory holding ``ac.json``, the file itself,
    or its loaded dict.  The features (hop, envelope, log, normalisation) are
    those of the verified bank.
    """
    b, a, fs, features = calibrated_coefficients(run_dir, sample_rate, method)
    return SpiceCalibratedBank(b, a, fs, features=features, method=method)
