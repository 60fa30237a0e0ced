"""XyloAudio 3 banks as front ends of the co-design classifier.

:class:`XyloA3Frontend` maps audio ``[B, T]`` at the run's sample rate to the
same ``[B, C, F]`` features as the run's own front end (rectify, first-order
envelope, frames, log, normalisation; :mod:`learnafe.frontends.features`),
computed from a XyloAudio 3 bank at the chip's rate.  Three modes:

- ``"bitexact"``: resample to ``50e6/1024`` Hz, 14-bit quantisation, the
  bit-exact integer bank (:meth:`XyloA3FilterBank.filter`), then the feature
  path in float64.  No gradients (the classifier can still be fine-tuned on it:
  training with the chip's exact quantisation in the loop).
- ``"float"``: the unquantised design (``iirpeak`` coefficients at the chip
  rate) on the unquantised resampled audio; differentiable.
- ``"ste"``: a float model of the quantised bank: the taps are rounded to the
  chip's fractional bits and the input to 14 bits with a straight-through
  estimator (forward: quantised values; backward: identity), so centres and Q
  (``learn_bank=True``) and the classifier can be trained with the chip's
  quantisation in the loop.  It leaves out the truncation of the shifts and
  the one-sample latch, which ``"bitexact"`` has.

Frames: the run's hop (e.g. 200 samples at 20 kHz = 10 ms) becomes
``round(hop * 48828.125 / sample_rate)`` chip samples (488 = 9.994 ms); the
frame count is cropped (or the last frame repeated) to the run's ``T // hop``.
The per-channel ``gains`` (the analog bank's peak gains) scale the unit-gain
chip outputs so features without normalisation keep the run's levels.
"""

from __future__ import annotations

import numpy as np
import torch

from learnafe import ops
from learnafe.frontends.base import FrontEnd
from learnafe.frontends.features import FeatureConfig, check_audio, post_process
from learnafe.xylo.bank import XyloA3FilterBank, quantize_audio, resample_to_chip
from learnafe.xylo.design import B_IN, design_bank, quantized_taps, read_off, resonator

MODES = ("bitexact", "float", "ste")
FULL_SCALE = (1 << (B_IN - 1)) - 1


def _round_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


def torch_design(centre_hz: torch.Tensor, q: torch.Tensor, sample_rate: float):
    """Differentiable (b0, a1, a2) per channel, as :func:`learnafe.xylo.design.float_design`."""
    return resonator(centre_hz, q, sample_rate)


class XyloA3Frontend(FrontEnd):
    """Audio ``[B, T]`` -> features ``[B, C, F]`` through a XyloAudio 3 bank.

    Args:
        bank: the designed chip bank (its channels' centres/Q seed the float
            and STE modes).
        centres_hz, q: the float design of each channel (default: read off the
            bank's table with :func:`learnafe.xylo.design.read_off`).
        sample_rate: the audio rate of the input (the run's, e.g. 20 kHz).
        features: the feature configuration (a run's ``bank.json["features"]``).
        gains: per-channel output gain (default 1).
        mode: ``"bitexact"``, ``"float"`` or ``"ste"``.
        learn_bank: make log centres and log Q trainable (``"float"``/``"ste"``).
        input_scale: audio full scale 1.0 -> ``input_scale * (2^13 - 1)``.
        quantization: how ``"ste"`` rounds the taps (``"round"`` or ``"best"``, as
            :func:`learnafe.xylo.design.design_channel`; use the bank's).
    """

    CHUNK = 8  # clips filtered at once in bit-exact mode
    spec_format = "learnafe-xylo-frontend/1"

    def __init__(self, bank: XyloA3FilterBank, *, sample_rate: float, features=None,
                 centres_hz=None, q=None, gains=None, mode: str = "bitexact",
                 learn_bank: bool = False, input_scale: float = 1.0, quantization: str = "round"):
        super().__init__()

        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if learn_bank and mode == "bitexact":
            raise ValueError("learn_bank needs mode='float' or 'ste' (the bit-exact bank has no "
                             "gradients)")
        if not sample_rate > 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        self.bank = bank
        self.mode = mode
        self.sample_rate = float(sample_rate)
        self.features = FeatureConfig.from_dict(features)
        self.input_scale = float(input_scale)
        self.quantization = quantization
        self.trainable_bank = bool(learn_bank)
        C = len(bank)
        if centres_hz is None or q is None:
            ro = np.array([read_off(ch, bank.sample_rate) for ch in bank.channels])
            centres_hz = ro[:, 0] if centres_hz is None else centres_hz
            q = ro[:, 1] if q is None else q
        log_c = torch.log(torch.as_tensor(np.asarray(centres_hz, dtype=np.float64)))
        log_q = torch.log(torch.as_tensor(np.asarray(q, dtype=np.float64)))
        if log_c.shape != (C,) or log_q.shape != (C,):
            raise ValueError(f"centres_hz and q need one value per channel ({C})")
        if learn_bank:
            self.log_centre = torch.nn.Parameter(log_c)
            self.log_q = torch.nn.Parameter(log_q)
        else:
            self.register_buffer("log_centre", log_c)
            self.register_buffer("log_q", log_q)
        g = torch.ones(C, dtype=torch.float64) if gains is None else \
            torch.as_tensor(np.asarray(gains, dtype=np.float64))
        if g.shape != (C,):
            raise ValueError(f"gains needs one value per channel ({C})")
        self.register_buffer("gains", g)
        self.hop_chip = max(1, int(round(self.features.hop * bank.sample_rate / self.sample_rate)))

    @property
    def n_channels(self) -> int:
        return len(self.bank)

    def center_frequencies(self) -> torch.Tensor:
        return torch.exp(self.log_centre)

    def q(self) -> torch.Tensor:
        return torch.exp(self.log_q)

    def coefficients(self):
        """(b [C, 3], a [C, 2]) in float64 of the float (``"float"``) or quantised (``"ste"``)
        model at the chip rate, including the per-channel gains."""
        b0, a1, a2 = torch_design(self.center_frequencies(), self.q(), self.bank.sample_rate)
        if self.mode == "ste":
            # Forward: the chip's integer taps for the current centres/Q (the
            # designer's rounding); backward: the float design's gradient.
            with torch.no_grad():
                taps = [quantized_taps(float(f), float(q), self.bank.sample_rate,
                                       quantization=self.quantization)
                        for f, q in zip(self.center_frequencies(), self.q())]
                qa1 = torch.tensor([t[1] / 2.0 ** t[3] for t in taps], dtype=a1.dtype)
                qa2 = torch.tensor([t[2] / 2.0 ** t[3] for t in taps], dtype=a2.dtype)
            a1 = a1 + (qa1 - a1).detach()
            a2 = a2 + (qa2 - a2).detach()
        b0 = b0 * self.gains
        b = torch.stack([b0, torch.zeros_like(b0), -b0], dim=1)
        return b, torch.stack([a1, a2], dim=1)

    def _chip_input(self, x: torch.Tensor) -> torch.Tensor:
        chip = resample_to_chip(x.detach().to(torch.float64).cpu().numpy(), self.sample_rate,
                                self.bank.sample_rate)
        return torch.from_numpy(np.ascontiguousarray(chip)) * self.input_scale

    def _frames(self, env: torch.Tensor, n_frames: int) -> torch.Tensor:
        F = env.shape[-1]
        if F >= n_frames:
            return env[..., :n_frames]
        return torch.cat([env, env[..., -1:].expand(*env.shape[:-1], n_frames - F)], dim=-1)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x, was_1d = check_audio(audio)
        n_frames = x.shape[-1] // self.features.hop
        if n_frames < 1:
            raise ValueError(f"audio of {x.shape[-1]} samples is shorter than one frame "
                             f"({self.features.hop} samples)")
        chip = self._chip_input(x)
        cfg = self.features
        if self.mode == "bitexact":
            q = quantize_audio(chip.numpy())
            scale = self.bank.scale_out * 2.0 ** -self.bank.field("B_wf").astype(np.float64) \
                / FULL_SCALE * self.gains.numpy() / self.input_scale
            ident_b = np.array([[1.0, 0.0, 0.0]])
            ident_a = np.zeros((1, 2))
            envs = []
            for i in range(0, q.shape[0], self.CHUNK):  # bounded memory: [chunk, C, T] at a time
                y = self.bank.filter(q[i:i + self.CHUNK])  # int64 [b, C, T]
                b, C, T = y.shape
                yf = (y * scale[None, :, None]).reshape(b * C, T)
                envs.append(ops.filterbank_envelope(yf, ident_b, ident_a, hop=self.hop_chip,
                                                    tau=cfg.tau, sample_rate=self.bank.sample_rate,
                                                    rectify=cfg.rectify).reshape(b, C, -1))
            env = torch.from_numpy(np.concatenate(envs, axis=0))
        else:
            if self.mode == "ste":
                chip = _round_ste(chip * FULL_SCALE) / FULL_SCALE
            b, a = self.coefficients()
            env = ops.filterbank_envelope(chip / self.input_scale, b, a, hop=self.hop_chip,
                                          tau=cfg.tau, sample_rate=self.bank.sample_rate,
                                          rectify=cfg.rectify)
        out = post_process(self._frames(env, n_frames), cfg).to(audio.dtype)
        return out[0] if was_1d else out

    def to_dict(self) -> dict:
        """The front end as JSON: the chip bank, the feature configuration and the (possibly
        trained) log centres and log Q, so :meth:`from_dict` restores it exactly."""
        return {"format": self.spec_format, "bank": self.bank.to_dict(), "sample_rate": self.sample_rate,
                "features": self.features.to_dict(), "mode": self.mode, "learn_bank": self.trainable_bank,
                "input_scale": self.input_scale, "quantization": self.quantization,
                "log_centre": self.log_centre.detach().cpu().tolist(),
                "log_q": self.log_q.detach().cpu().tolist(), "gains": self.gains.cpu().tolist()}

    @classmethod
    def from_dict(cls, spec: dict) -> "XyloA3Frontend":
        if not isinstance(spec, dict) or spec.get("format") != cls.spec_format:
            got = spec.get("format") if isinstance(spec, dict) else type(spec).__name__
            raise ValueError(f"XyloAudio 3 front-end spec must have format {cls.spec_format!r}, got {got!r}; "
                             "write it with XyloA3Frontend.to_dict()")
        missing = [k for k in ("bank", "sample_rate", "log_centre", "log_q") if k not in spec]
        if missing:
            raise ValueError(f"XyloAudio 3 front-end spec lacks {missing}")
        fe = cls(XyloA3FilterBank.from_dict(spec["bank"]), sample_rate=spec["sample_rate"],
                 features=spec.get("features"), centres_hz=np.exp(spec["log_centre"]), q=np.exp(spec["log_q"]),
                 gains=spec.get("gains"), mode=spec.get("mode", "bitexact"),
                 learn_bank=bool(spec.get("learn_bank", False)), input_scale=spec.get("input_scale", 1.0),
                 quantization=spec.get("quantization", "round"))
        with torch.no_grad():  # the logs themselves: exp then log would not round-trip bit for bit
            fe.log_centre.copy_(torch.as_tensor(spec["log_centre"], dtype=torch.float64))
            fe.log_q.copy_(torch.as_tensor(spec["log_q"], dtype=torch.float64))
        return fe

    def quantized_bank(self) -> XyloA3FilterBank:
        """The chip bank of the current (possibly trained) centres and Q."""
        with torch.no_grad():
            return XyloA3FilterBank(design_bank(self.center_frequencies().numpy(), self.q().numpy(),
                                                self.bank.sample_rate,
                                                quantization=self.quantization),
                                    self.bank.sample_rate)
