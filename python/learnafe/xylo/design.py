"""Coefficient designer for the XyloAudio 3 band-pass filter bank.

Every channel of the chip is a second-order band-pass filter with numerator
``b = b0 * (1, 0, -1)``: the digital resonator that ``scipy.signal.iirpeak``
designs (the bilinear image of an analog band-pass, exact peak frequency and
exact -3 dB bandwidth in the digital domain, unit gain at the centre; its
coefficients are stated in :func:`resonator`).

The chip stores it in integers (``rockpool``'s ``BlockDiagram``):

- ``F = B_b + B_af`` fractional bits of the 16-bit signed taps: 14 when
  ``max(|a1|, |a2|) >= 1``, 15 otherwise (``B_a - 1 -`` integer bits);
  ``a1_int = round(a1 * 2^F)``, ``a2_int = round(a2 * 2^F)``;
- ``B_b = floor(-log2(b0))`` so that ``scale_out = b0 * 2^B_b`` lies in
  [0.5, 1) (stored rounded to 4 decimals, as the reference table does);
  ``peak_gain(AR+MA) * 2^-B_b * scale_out = 1``;
- ``B_worst_case``: extra integer bits so that neither the AR state nor the
  output can overflow for any 14-bit input: ``ceil(log2(max(||h_AR||_1,
  ||h||_1) * 2^-B_b))`` (l1 norms of the quantised filter's impulse
  responses), never below 2 (the smallest value of the chip's default table;
  the bound alone gives 1 for its channels 10, 11, 12 and 14);
- ``B_wf = 8`` extra fractional bits of the AR state, ``B_in = 14``.

Given the centres and Q read off the chip's default table (:data:`DEFAULT_CENTRES_HZ`,
:data:`DEFAULT_Q`), :func:`design_bank` reproduces that table exactly (tested
against ``rockpool``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
from scipy.signal import lfilter

SYSTEM_CLOCK_HZ = 50_000_000
#: XyloAudio 3 audio sample rate: the 50 MHz system clock divided by 64 * 16.
XYLO_SAMPLE_RATE = SYSTEM_CLOCK_HZ / 1024
NUM_FILTERS = 16
B_IN = 14      # input bits
B_A = 16       # bits of the a-taps (signed)
B_WF = 8       # extra fractional bits of the AR state (against the dead zone)
MIN_WORST_CASE_BITS = 2
SHIFT_REGISTER_MAX = 15  # B_b, B_af, B_wf live in 4-bit register fields


#: Centres (Hz) and -3 dB Q of the float designs that the chip's default table
#: quantises, read off the table with :func:`read_off` (rounded to 1 mHz and
#: 1e-6).  The quantised low channels peak higher than designed (channel 0:
#: designed 99.2 Hz, realised 105.3 Hz; see :func:`peak_and_q`): 16-bit taps
#: cannot place poles that close to z = 1 more finely.
DEFAULT_CENTRES_HZ = (99.232, 136.402, 201.505, 278.434, 388.613, 544.33, 763.529, 1071.163,
                      1503.104, 2108.096, 2958.258, 4152.199, 5831.914, 8204.166, 11584.745,
                      16567.272)
DEFAULT_Q = (2.926435, 2.867892, 3.020865, 2.975644, 2.96109, 2.956861, 2.956904, 2.957673,
             2.959331, 2.958705, 2.960084, 2.962005, 2.966333, 2.975015, 2.995169, 3.053625)


@dataclass(frozen=True)
class XyloChannel:
    """One row of the chip's filter table (fields as in rockpool's ``BlockDiagram``)."""

    B_worst_case: int
    B_b: int
    B_af: int
    a1: int
    a2: int
    scale_out: float
    B_in: int = B_IN
    B_a: int = B_A
    B_wf: int = B_WF

    def __post_init__(self):
        for name in ("B_worst_case", "B_b", "B_af", "a1", "a2", "B_in", "B_a", "B_wf"):
            value = getattr(self, name)
            if isinstance(value, (bool, float)) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"XyloChannel.{name} must be an integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in ("B_b", "B_af", "B_wf"):
            if not 0 <= getattr(self, name) <= SHIFT_REGISTER_MAX:
                raise ValueError(f"XyloChannel.{name}={getattr(self, name)} must be in 0..15 "
                                 "(4-bit register field)")
        lim = 1 << (self.B_a - 1)
        for name in ("a1", "a2"):
            if not -lim <= getattr(self, name) < lim:
                raise ValueError(f"XyloChannel.{name}={getattr(self, name)} does not fit in "
                                 f"{self.B_a} signed bits")
        if self.B_worst_case < 0:
            raise ValueError("XyloChannel.B_worst_case must be >= 0")
        if not 0.5 <= float(self.scale_out) <= 1.0:
            raise ValueError(f"XyloChannel.scale_out={self.scale_out} must be in [0.5, 1]")
        object.__setattr__(self, "scale_out", float(self.scale_out))

    @property
    def frac_bits(self) -> int:
        """Fractional bits of the taps: ``a = a_int / 2^(B_b + B_af)``."""
        return self.B_b + self.B_af

    @property
    def B_w(self) -> int:
        """Bits of the AR state register: ``B_in + B_worst_case + B_wf``."""
        return self.B_in + self.B_worst_case + self.B_wf

    @property
    def B_out(self) -> int:
        """Bits of the output register (equal to ``B_w`` on this chip)."""
        return self.B_in + self.B_worst_case + self.B_wf

    def taps(self) -> tuple[float, float]:
        """The quantised (a1, a2) as real numbers."""
        scale = 2.0 ** -self.frac_bits
        return self.a1 * scale, self.a2 * scale

    def to_dict(self) -> dict:
        return asdict(self)


def float_design(centre_hz: float, q: float, sample_rate: float = XYLO_SAMPLE_RATE
                 ) -> tuple[float, float, float]:
    """(b0, a1, a2) of the band-pass with peak ``centre_hz`` and -3 dB Q ``q``.

    Identical to ``scipy.signal.iirpeak(centre_hz, q, fs=sample_rate)`` (``b =
    b0 * (1, 0, -1)``, ``a = (1, a1, a2)``), in float64.
    """
    centre_hz = float(centre_hz)
    q = float(q)
    nyq = sample_rate / 2
    if not 0 < centre_hz < nyq:
        raise ValueError(f"centre frequency {centre_hz} Hz must lie in (0, {nyq:g}) Hz "
                         f"(the Nyquist frequency at {sample_rate:g} Hz)")
    if not q > 0 or not math.isfinite(q):
        raise ValueError(f"Q must be a positive finite number, got {q}")
    bandwidth = centre_hz / q
    if bandwidth >= nyq:
        raise ValueError(f"Q={q} at {centre_hz} Hz gives a bandwidth {bandwidth:g} Hz above "
                         f"Nyquist; raise Q")
    return resonator(centre_hz, q, sample_rate)


def resonator(centre_hz, q, sample_rate: float):
    """The one implementation of the resonator design: ``(b0, a1, a2)`` for floats (``math``)
    or torch tensors (``torch``, differentiable), unchecked::

        beta = tan(pi (centre / Q) / fs),  a2 = (1 - beta) / (1 + beta),
        a1 = -(1 + a2) cos(2 pi centre / fs),  b0 = (1 - a2) / 2

    :func:`float_design` checks its arguments and calls it;
    :func:`learnafe.xylo.quantized.torch_design` calls it with tensors.
    """
    xp = math
    if type(centre_hz).__module__.startswith("torch") or type(q).__module__.startswith("torch"):
        import torch as xp
    beta = xp.tan(math.pi * (centre_hz / q) / sample_rate)
    a2 = (1.0 - beta) / (1.0 + beta)
    a1 = -(1.0 + a2) * xp.cos(2.0 * math.pi * centre_hz / sample_rate)
    b0 = (1.0 - a2) / 2.0
    return b0, a1, a2


def _impulse_l1(a1: float, a2: float, ma: bool, tol: float = 1e-12, max_len: int = 1 << 22
                ) -> float:
    """l1 norm of the impulse response of 1/A(z) (times (1 - z^-2) if ``ma``)."""
    # Decay time from the pole radius: enough samples for |h| < tol relative.
    radius = math.sqrt(abs(a2)) if a1 * a1 < 4 * a2 else max(
        abs(np.roots([1.0, a1, a2])))
    if radius >= 1.0:
        return math.inf
    n = int(min(max_len, max(64, math.log(tol) / math.log(radius) + 64)))
    impulse = np.zeros(n)
    impulse[0] = 1.0
    b = [1.0, 0.0, -1.0] if ma else [1.0]
    return float(np.abs(lfilter(b, [1.0, a1, a2], impulse)).sum())


def round_taps(a1: float, a2: float, B_a: int = B_A) -> tuple[int, int, int]:
    """(a1_int, a2_int, F): the taps rounded to the most fractional bits F that
    keep both within ``B_a`` signed bits."""
    lim = 1 << (B_a - 1)
    for int_bits in range(B_a):
        frac = B_a - 1 - int_bits
        q1, q2 = round(a1 * 2 ** frac), round(a2 * 2 ** frac)
        if -lim <= q1 < lim and -lim <= q2 < lim:
            return q1, q2, frac
    raise ValueError(f"taps a1={a1}, a2={a2} do not fit in {B_a} bits")


def quantize_channel(b0: float, a1: float, a2: float, *, B_wf: int = B_WF, B_in: int = B_IN,
                     B_a: int = B_A, min_worst_case: int = MIN_WORST_CASE_BITS) -> XyloChannel:
    """Integer configuration of the band-pass ``b0 (1 - z^-2) / (1 + a1 z^-1 + a2 z^-2)``."""
    if not 0 < b0 < 1:
        raise ValueError(f"b0={b0} must lie in (0, 1) for a unit-peak-gain band-pass")
    q1, q2, frac = round_taps(a1, a2, B_a)
    B_b = math.floor(-math.log2(b0))
    scale_out = b0 * 2.0 ** B_b
    if scale_out >= 1.0:  # guard the floating-point edge b0 = 2^-k
        B_b -= 1
        scale_out /= 2
    B_af = frac - B_b
    if B_af < 0 or B_b > SHIFT_REGISTER_MAX or B_af > SHIFT_REGISTER_MAX:
        raise ValueError(
            f"band-pass with b0={b0:.3g} needs B_b={B_b}, B_af={B_af}: outside the 4-bit shift "
            f"registers (0..15); the bandwidth is too narrow (raise the centre frequency or "
            f"lower Q)")
    fa1, fa2 = q1 / 2.0 ** frac, q2 / 2.0 ** frac
    l1 = max(_impulse_l1(fa1, fa2, ma=False), _impulse_l1(fa1, fa2, ma=True)) * 2.0 ** -B_b
    if not math.isfinite(l1):
        raise ValueError(f"quantised taps a1={q1}, a2={q2} (2^-{frac}) are unstable")
    worst = max(min_worst_case, math.ceil(math.log2(l1)) if l1 > 0 else 0)
    return XyloChannel(B_worst_case=worst, B_b=B_b, B_af=B_af, a1=q1, a2=q2,
                       scale_out=round(scale_out, 4), B_in=B_in, B_a=B_a, B_wf=B_wf)


def _realised(a1: float, a2: float, sample_rate: float) -> tuple[float, float]:
    """Peak frequency and -3 dB Q of ``(1 - z^-2) / (1 + a1 z^-1 + a2 z^-2)``: the
    peak is at ``cos(w) = -a1 / (1 + a2)``, the bandwidth from
    ``a2 = (1 - tan(bw/2)) / (1 + tan(bw/2))``."""
    w0 = math.acos(max(-1.0, min(1.0, -a1 / (1.0 + a2))))
    bw = 2 * math.atan((1.0 - a2) / (1.0 + a2))
    return w0 * sample_rate / (2 * math.pi), w0 / bw


QUANTIZATION = ("round", "best")


def _nearby_taps(q1: int, q2: int, frac: int, sample_rate: float, search: int, B_a: int = B_A):
    """Yield ``(a1_int, a2_int, realised f0, realised Q)`` for the stable band-pass taps
    within ``search`` integer steps of ``(q1, q2)`` (scale 2^-frac) that fit in ``B_a`` bits."""
    scale, lim = 2.0 ** frac, 1 << (B_a - 1)
    for d1 in range(-search, search + 1):
        for d2 in range(-search, search + 1):
            i1, i2 = q1 + d1, q2 + d2
            if not (-lim <= i1 < lim and -lim <= i2 < lim):
                continue
            fa1, fa2 = i1 / scale, i2 / scale
            if not (abs(fa1) < 1 + fa2 and fa2 < 1):  # unstable or not a band-pass
                continue
            f, qq = _realised(fa1, fa2, sample_rate)
            yield i1, i2, f, qq


def quantized_taps(centre_hz: float, q: float, sample_rate: float = XYLO_SAMPLE_RATE, *,
                   quantization: str = "round", search: int = 2) -> tuple[float, int, int, int]:
    """(b0, a1_int, a2_int, F) of a channel (see :func:`design_channel`), without
    the integer bit widths."""
    if quantization not in QUANTIZATION:
        raise ValueError(f"quantization must be one of {QUANTIZATION}, got {quantization!r}")
    b0, a1, a2 = float_design(centre_hz, q, sample_rate)
    q1, q2, frac = round_taps(a1, a2)
    if quantization == "round":
        return b0, q1, q2, frac
    best, best_err = (q1, q2), math.inf
    for i1, i2, f, qq in _nearby_taps(q1, q2, frac, sample_rate, search):
        err = math.log(f / centre_hz) ** 2 + math.log(qq / q) ** 2
        if err < best_err:
            best, best_err = (i1, i2), err
    return (1.0 - best[1] / 2.0 ** frac) / 2.0, best[0], best[1], frac


def _over(error_pct: float, limit_pct: float) -> float:
    """|error| in units of the limit (a zero limit: 0 for an exact hit, else inf)."""
    if limit_pct > 0:
        return abs(error_pct) / limit_pct
    return 0.0 if error_pct == 0 else math.inf


def grid_limit(centre_hz: float, q: float, sample_rate: float = XYLO_SAMPLE_RATE, *,
               f0_pct: float = 2.0, q_pct: float = 5.0, search: int = 8) -> dict:
    """How close the chip's integer taps can come to a channel's centre and Q.

    Searches the tap pairs within ``search`` steps of the rounded design (the
    chip's ``B_a``-bit taps at the most fractional bits that fit) for the one
    with the smallest ``max(|f0 error| / f0_pct, |Q error| / q_pct)``.  Returns
    ``{"within": bool, "f0_error_pct", "q_error_pct", "a1", "a2"}`` of that pair:
    ``within`` False means no chip configuration meets both limits, whatever the
    rounding (at low centres one step of a1 moves f0 by several per cent).
    """
    _, a1, a2 = float_design(centre_hz, q, sample_rate)
    q1, q2, frac = round_taps(a1, a2)
    best = None
    for i1, i2, f, qq in _nearby_taps(q1, q2, frac, sample_rate, search):
        ef, eq = 100 * (f / centre_hz - 1), 100 * (qq / q - 1)
        rf, rq = _over(ef, f0_pct), _over(eq, q_pct)
        score = (max(rf, rq), rf * rf + rq * rq)
        if best is None or score < best[0]:
            best = (score, ef, eq, i1, i2)
    if best is None:
        raise ValueError(f"no stable chip taps near centre {centre_hz:g} Hz, Q {q:g}")
    return {"within": best[0][0] <= 1.0, "f0_error_pct": best[1], "q_error_pct": best[2],
            "a1": best[3], "a2": best[4]}


def design_channel(centre_hz: float, q: float, sample_rate: float = XYLO_SAMPLE_RATE, *,
                   B_wf: int = B_WF, quantization: str = "round", search: int = 2) -> XyloChannel:
    """Design one chip channel from its centre frequency and -3 dB Q.

    ``quantization="round"`` rounds each tap to the nearest integer (how the
    chip's default table was made; :func:`design_bank` reproduces it).
    ``"best"`` tries the integer taps within ``search`` steps of the rounded
    ones and keeps the pair whose realised peak and Q are closest to the
    target (least squares of the log errors), with ``b0 = (1 - a2) / 2`` of the
    chosen taps (unit peak gain).  Low channels gain most: one step of ``a1``
    moves a 100 Hz centre by about 18 %, and plain rounding can land 14 %
    off where the best pair is within half a step.
    """
    b0, q1, q2, frac = quantized_taps(centre_hz, q, sample_rate, quantization=quantization,
                                      search=search)
    return quantize_channel(b0, q1 / 2.0 ** frac, q2 / 2.0 ** frac, B_wf=B_wf)


def design_bank(centres_hz: Sequence[float], q: float | Sequence[float],
                sample_rate: float = XYLO_SAMPLE_RATE, *, B_wf: int = B_WF,
                quantization: str = "round") -> list[XyloChannel]:
    """Design a bank; ``q`` is one value or one per channel (see :func:`design_channel`)."""
    centres = np.atleast_1d(np.asarray(centres_hz, dtype=float))
    if centres.ndim != 1 or centres.size == 0:
        raise ValueError("centres_hz must be a non-empty 1-D sequence of frequencies in Hz")
    qs = np.broadcast_to(np.asarray(q, dtype=float), centres.shape) if np.ndim(q) == 0 else \
        np.asarray(q, dtype=float)
    if qs.shape != centres.shape:
        raise ValueError(f"q has {qs.size} values for {centres.size} centres; pass one Q or "
                         "one per channel")
    out = []
    for i, (f, qq) in enumerate(zip(centres, qs)):
        try:
            out.append(design_channel(f, qq, sample_rate, B_wf=B_wf, quantization=quantization))
        except ValueError as exc:
            raise ValueError(f"channel {i} (centre {f:g} Hz, Q {qq:g}): {exc}") from None
    return out


def read_off(channel: XyloChannel, sample_rate: float = XYLO_SAMPLE_RATE
             ) -> tuple[float, float]:
    """(centre Hz, Q) of the float design a table row quantises.

    The -3 dB bandwidth comes from ``scale_out`` (it carries ``b0 = (1 - a2) / 2``
    of the unquantised design to 4 significant decimals, more precise than
    ``a2``'s integer for the low channels), kept inside the rounding interval
    of ``a2``; the centre from ``a1 = -(1 + a2) cos(w0)``.
    """
    b0 = channel.scale_out * 2.0 ** -channel.B_b
    a2 = 1.0 - 2.0 * b0
    # Keep a2 inside the rounding interval of the stored integer: for channel
    # 14 of the default table the 4-decimal scale_out alone implies a2 * 2^15 =
    # 19488.77, whose rounding (19489) is not the stored 19488; the unrounded
    # scale_out must have been 0.81052..0.81055.
    frac = 2.0 ** channel.frac_bits
    a2 = min(max(a2, (channel.a2 - 0.49) / frac), (channel.a2 + 0.49) / frac)
    beta = (1.0 - a2) / (1.0 + a2)
    bandwidth = math.atan(beta) * sample_rate / math.pi
    a1 = channel.a1 * 2.0 ** -channel.frac_bits
    w0 = math.acos(max(-1.0, min(1.0, -a1 / (1.0 + a2))))
    centre = w0 * sample_rate / (2 * math.pi)
    return centre, centre / bandwidth


def peak_and_q(channel: XyloChannel, sample_rate: float = XYLO_SAMPLE_RATE
               ) -> tuple[float, float]:
    """Peak frequency and -3 dB Q of the *quantised* filter (what the chip realises)."""
    return _realised(*channel.taps(), sample_rate)
