"""The XyloAudio 3 fixed-point band-pass filter bank, bit-exact with the chip.

:class:`XyloA3FilterBank` holds one :class:`~learnafe.xylo.design.XyloChannel`
per channel and filters 14-bit integer audio with the C++ kernel (``filterbank`` in
``cpp/xylo_filterbank.cpp``, bound as ``learnafe._core.xylo_filterbank``: int64, batched,
OpenMP).  Its output equals rockpool's ``ChipButterworth`` sample for sample.

The recursion the kernel implements, per channel (all integers, ``>>`` an
arithmetic right shift; the fields are those of
:class:`~learnafe.xylo.design.XyloChannel`)::

    w[n] = ((x[n] << B_wf) + ((-a2 w[n-2] - a1 w[n-1]) >> B_af)) >> B_b     (AR stage)
    y[n] = w[n-1] - w[n-3]                                                  (MA stage b = (1, 0, -1),
                                                                             AR output latched one sample)

with zero initial state and overflow checks on the input (``B_in`` bits), the
AR state (``B_w`` bits) and the output (``B_out`` bits) (:class:`XyloOverflowError`);
``filter(..., scale_out=True)`` multiplies channel c by its ``scale_out``.  The
coefficients come from the resonator design of :mod:`learnafe.xylo.design`.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from scipy.signal import resample_poly

from learnafe._jsonio import write_json
from learnafe.xylo.design import (
    B_IN,
    XYLO_SAMPLE_RATE,
    XyloChannel,
    design_bank,
    peak_and_q,
)

# XyloOverflowError is re-exported: the bank raises it (through the kernel calls).
from learnafe.xylo.kernel import TABLE_FIELDS, as_int_signal, filter_channels
from learnafe.xylo.kernel import XyloOverflowError as XyloOverflowError

#: The chip's default filter table, as shipped in rockpool 3.1's
#: ``ChipButterworth`` (``BlockDiagram`` fields B_worst_case, B_b, B_af, a1, a2,
#: scale_out; B_in = 14, B_a = 16, B_wf = 8 for all).
DEFAULT_TABLE: tuple[tuple[int, int, int, int, int, float], ...] = (
    (7, 8, 6, -32694, 16313, 0.5573),
    (6, 8, 6, -32663, 16284, 0.7810),
    (6, 7, 7, -32617, 16244, 0.5470),
    (5, 7, 7, -32551, 16188, 0.7660),
    (5, 6, 8, -32453, 16110, 0.5359),
    (4, 6, 8, -32305, 16000, 0.7492),
    (4, 5, 9, -32077, 15848, 0.5230),
    (3, 5, 9, -31718, 15638, 0.7288),
    (3, 4, 10, -31139, 15347, 0.5065),
    (2, 4, 10, -30185, 14947, 0.7018),
    (2, 4, 10, -28582, 14402, 0.9679),
    (2, 3, 11, -25862, 13666, 0.6635),
    (2, 3, 11, -21262, 12687, 0.9026),
    (2, 2, 13, -27375, 22803, 0.6082),
    (2, 2, 13, -4180, 19488, 0.8105),
    (2, 1, 14, 25566, 15280, 0.5337),
)

def quantize_audio(x, num_bits: int = B_IN, scale: float = 1.0) -> np.ndarray:
    """Float audio in [-1, 1] -> int64 samples of ``num_bits`` bits (|q| < 2^(num_bits-1)).

    ``q = round(scale * x * (2^(num_bits-1) - 1))`` clipped to the symmetric range
    the chip accepts.
    """
    arr = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError("x contains NaN or inf")
    full = (1 << (num_bits - 1)) - 1
    return np.clip(np.round(arr * scale * full), -full, full).astype(np.int64)


def resample_to_chip(audio, sample_rate: float, chip_rate: float = XYLO_SAMPLE_RATE) -> np.ndarray:
    """Float audio ``[T]`` or ``[B, T]`` at ``sample_rate`` -> the chip's audio rate
    (polyphase resampling with the exact rational ratio, e.g. 625/256 from 20 kHz)."""
    if not sample_rate > 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    arr = np.asarray(audio, dtype=np.float64)
    ratio = Fraction(chip_rate).limit_denominator(1 << 20) / Fraction(sample_rate).limit_denominator(1 << 20)
    if ratio == 1:
        return arr.copy()
    return resample_poly(arr, ratio.numerator, ratio.denominator, axis=-1)


class XyloA3FilterBank:
    """A bank of XyloAudio 3 fixed-point band-pass channels.

    Args:
        channels: the integer configuration per channel (1 to 16 channels).
        sample_rate: the audio rate the table was designed for (the chip's is
            ``50e6 / 1024`` Hz).
    """

    def __init__(self, channels: Sequence[XyloChannel], sample_rate: float = XYLO_SAMPLE_RATE):
        channels = list(channels)
        if not channels:
            raise ValueError("channels is empty; give 1 to 16 XyloChannel rows")
        for i, ch in enumerate(channels):
            if not isinstance(ch, XyloChannel):
                raise ValueError(f"channels[{i}] must be a XyloChannel, got {type(ch).__name__}")
        if not sample_rate > 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        self.channels: list[XyloChannel] = channels
        self.sample_rate = float(sample_rate)

    # -- construction ------------------------------------------------------
    @classmethod
    def default(cls) -> "XyloA3FilterBank":
        """The chip's 16 default filters."""
        return cls([XyloChannel(*row) for row in DEFAULT_TABLE])

    @classmethod
    def design(cls, centres_hz, q, sample_rate: float = XYLO_SAMPLE_RATE) -> "XyloA3FilterBank":
        """Design a bank from centre frequencies and Q (see :mod:`learnafe.xylo.design`)."""
        return cls(design_bank(centres_hz, q, sample_rate), sample_rate)

    def select(self, indices: Iterable[int]) -> "XyloA3FilterBank":
        idx = list(indices)
        for i in idx:
            if not 0 <= i < len(self.channels):
                raise ValueError(f"channel index {i} out of range 0..{len(self.channels) - 1}")
        return XyloA3FilterBank([self.channels[i] for i in idx], self.sample_rate)

    def __len__(self) -> int:
        return len(self.channels)

    @property
    def num_channels(self) -> int:
        return len(self.channels)

    def __eq__(self, other) -> bool:
        return (isinstance(other, XyloA3FilterBank) and self.channels == other.channels
                and self.sample_rate == other.sample_rate)

    def __repr__(self) -> str:
        return f"XyloA3FilterBank({len(self.channels)} channels at {self.sample_rate:g} Hz)"

    # -- arrays ------------------------------------------------------------
    def field(self, name: str) -> np.ndarray:
        """One field across channels, e.g. ``bank.field("a1")``."""
        return np.array([getattr(ch, name) for ch in self.channels])

    @property
    def scale_out(self) -> np.ndarray:
        return self.field("scale_out").astype(np.float64)

    def table(self) -> tuple[tuple[int, ...], ...]:
        """The integer configuration, one row of :data:`TABLE_FIELDS` per channel (the
        ``table`` argument of ``torch.ops.learnafe.xylo_filterbank``)."""
        return tuple(tuple(getattr(ch, f) for f in TABLE_FIELDS) for ch in self.channels)

    # -- filtering ---------------------------------------------------------
    def filter(self, x, prepend_reversed: bool = False, *, scale_out: bool = False,
               overflow: str = "raise", num_threads: int | None = None,
               return_overflow: bool = False):
        """Filter integer audio through the bank.

        Args:
            x: int array ``[T]`` or ``[B, T]`` of 14-bit samples (|x| < 2^13), or
                an integer torch tensor: then the outputs are tensors, computed by
                the custom operator ``torch.ops.learnafe.xylo_filterbank``
                (:mod:`learnafe.xylo.torch_ops`; works under ``torch.compile``
                and ``torch.export``, overflow raised inside the operator).
            prepend_reversed: filter ``(x reversed, x)`` and keep the last T
                outputs, as rockpool's ``ChipButterworth.evolve`` does.
            scale_out: multiply each channel by its ``scale_out`` (float64 result,
                like the reference's ``evolve(scale_out=True)``).
            overflow: ``"raise"`` (:class:`XyloOverflowError` where the reference
                raises) or ``"report"`` (no exception; use ``return_overflow``).
            num_threads: OpenMP threads (None: the default).
            return_overflow: also return ``(kind, sample)`` arrays ``[B, C]``:
                kind 0 none, 1 input, 2 AR state, 3 output; sample the first
                offending index (negative inside the reversed prefix).

        Returns:
            int64 ``[B, C, T]`` (float64 with ``scale_out``); with
            ``return_overflow`` a tuple ``(y, kind, sample)``.
        """
        if overflow not in ("raise", "report"):
            raise ValueError(f"overflow must be 'raise' or 'report', got {overflow!r}")
        if type(x).__module__.startswith("torch"):
            return self._filter_tensor(x, prepend_reversed, scale_out, overflow, num_threads,
                                       return_overflow)
        xb, _ = as_int_signal(x)
        threads = 0 if num_threads is None else int(num_threads)
        y, kind, where = filter_channels(self.channels, xb, prepend_reversed, threads, overflow)
        if scale_out:
            y = y * self.scale_out[None, :, None]
        return (y, kind, where) if return_overflow else y

    def _filter_tensor(self, x, prepend_reversed, scale_out, overflow, num_threads, return_overflow):
        import torch

        from learnafe.xylo import torch_ops  # noqa: F401 - registers torch.ops.learnafe.xylo_filterbank

        if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
            raise ValueError(
                f"x must be an integer tensor (14-bit audio samples, |x| < 2^13), got dtype "
                f"{x.dtype}; quantise float audio first with learnafe.xylo.quantize_audio(x)")
        if x.dim() not in (1, 2):
            raise ValueError(f"x must have shape [T] or [B, T], got {tuple(x.shape)}")
        if x.shape[-1] == 0:
            raise ValueError("x is empty (T = 0)")
        if x.device.type != "cpu":
            raise ValueError(f"x is on device {x.device}; the kernels run on the CPU: pass x.cpu()")
        if num_threads is not None and (isinstance(num_threads, bool) or int(num_threads) < 1):
            raise ValueError(f"num_threads must be a positive integer or None, got {num_threads!r}")
        single = x.dim() == 1
        xb = x.reshape(1, -1) if single else x
        table = torch.tensor(self.table(), dtype=torch.int64)
        y, kind, where = torch.ops.learnafe.xylo_filterbank(
            xb.to(torch.int64), table, bool(prepend_reversed), overflow == "raise",
            0 if num_threads is None else int(num_threads))
        if scale_out:
            y = y * torch.tensor([ch.scale_out for ch in self.channels], dtype=torch.float64)[None, :, None]
        return (y, kind, where) if return_overflow else y

    # -- float model ---------------------------------------------------------
    def float_coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        """(b [C, 3], a [C, 2]) of the float filter each channel realises.

        Ignores the truncation of the shifts and the one-sample latch:
        ``y = 2^(B_wf - B_b) (1 - z^-2) / (1 + a1 z^-1 + a2 z^-2) x``.
        """
        b = np.zeros((len(self), 3))
        a = np.zeros((len(self), 2))
        for i, ch in enumerate(self.channels):
            g = 2.0 ** (ch.B_wf - ch.B_b)
            b[i] = (g, 0.0, -g)
            a[i] = ch.taps()
        return b, a

    def frequency_response(self, freqs_hz, *, scale_out: bool = True) -> np.ndarray:
        """Complex response [C, F] of the float model (unit peak gain with ``scale_out``
        and the ``2^B_wf`` input shift removed)."""
        f = np.asarray(freqs_hz, dtype=float)
        z1 = np.exp(-2j * np.pi * f / self.sample_rate)
        b, a = self.float_coefficients()
        out = []
        for i, ch in enumerate(self.channels):
            num = (b[i, 0] + b[i, 2] * z1 * z1) * 2.0 ** -ch.B_wf
            if scale_out:
                num = num * ch.scale_out
            out.append(num / (1 + a[i, 0] * z1 + a[i, 1] * z1 * z1))
        return np.array(out)

    def centres_and_q(self) -> tuple[np.ndarray, np.ndarray]:
        """Peak frequency (Hz) and -3 dB Q each quantised channel realises."""
        pq = np.array([peak_and_q(ch, self.sample_rate) for ch in self.channels])
        return pq[:, 0], pq[:, 1]

    # -- serialisation ---------------------------------------------------------
    def to_dict(self) -> dict:
        centres, qs = self.centres_and_q()
        return {
            "format": "learnafe-xylo-bank/1",
            "chip": "XyloAudio 3 (SYNS65302)",
            "sample_rate": self.sample_rate,
            "channels": [dict(ch.to_dict(), realised_centre_hz=float(f), realised_q=float(q))
                         for ch, f, q in zip(self.channels, centres, qs)],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "XyloA3FilterBank":
        if d.get("format") != "learnafe-xylo-bank/1":
            raise ValueError(f"not a learnafe-xylo-bank/1 document (format={d.get('format')!r})")
        keys = ("B_worst_case", "B_b", "B_af", "a1", "a2", "scale_out", "B_in", "B_a", "B_wf")
        chans = [XyloChannel(**{k: c[k] for k in keys if k in c}) for c in d["channels"]]
        return cls(chans, float(d.get("sample_rate", XYLO_SAMPLE_RATE)))

    def save(self, path) -> Path:
        path = Path(path)
        write_json(path, self.to_dict())
        return path

    @classmethod
    def load(cls, path) -> "XyloA3FilterBank":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no Xylo bank file at {path}")
        return cls.from_dict(json.loads(path.read_text()))
