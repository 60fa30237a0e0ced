"""The learnable analog front end: a bank of DSSF band-pass filters trained as a circuit.

The parameters are per-channel log-domain scale factors of a reference (conventional) design,
``I1 = I1_ref * exp(phi_I1)`` and likewise for I2, C1, C2.  The design map
(:mod:`learnafe.frontends.design_map`) keeps the physical values inside :class:`Bounds` whatever
the parameters: a straight-through clamp to the box, the minimum centre spacing ``min_spacing``
(default 1.1; 0 is a free bank) and the Nyquist guard ``f0_max_fraction * fs``; the steps and their
gradients are stated in docs/circuits.md ("The learnable bank").  ``project_()`` clamps the
parameters themselves to the box (optional: the forward pass already stays inside the bounds).

Circuit -> discrete coefficients (:mod:`learnafe.circuits.discretize`) -> fused envelope op
(:func:`learnafe.ops.filterbank_envelope`) -> log / normalisation.  Circuit arithmetic is float64
whatever the module dtype; the op runs in the audio's dtype.

The default transconductance model is the SKY130 tt gm/Id table
(:func:`learnafe.circuits.sky130_table`) with the devices' output conductance
(``output_conductance=True``); ``gm_model="weak_inversion"`` gives the textbook model,
``output_conductance=False`` ideal devices.  A spec records its model; a spec without one (or
without ``min_spacing`` or ``output_conductance``) rebuilds with weak inversion, a free bank and
ideal devices.

Training-time perturbations (all off by default; docs/circuits.md states their models):

* thermal noise (:class:`NoiseConfig`): each channel's output noise
  (:func:`learnafe.circuits.cost.output_noise_variance`) referred to the filter input as white
  Gaussian noise drawn inside the fused op (``noise_std``), audio amplitude 1.0 being
  ``full_scale_v`` volts of differential peak; optionally scaled per training batch
  (``train_scale_min``, ``train_scale_max``, ``train_p_zero``);
* mismatch (:class:`MismatchConfig`): I1, I2, C1, C2 times ``1 + sigma * N(0, 1)``, per batch or
  fixed per chip, with uniform sigmas or per-channel SKY130 ones
  (:func:`learnafe.circuits.mismatch.sky130_mismatch`), applied to the projected design;
* process corners (:class:`CornerConfig`): the gm/Id table of a SKY130 corner (tt, ss, ff)
  replaces the bank's model for a forward pass, per batch or fixed; currents and capacitors stay
  the nominal design's.

``power()``/``area()`` (and the spec) are the nominal design's values.
"""

from __future__ import annotations

import inspect
import math
import os
from dataclasses import fields
from typing import Any, Union

import numpy as np
import torch

from learnafe.circuits import cost, dssf
from learnafe.circuits.discretize import discretize, noise_gain
from learnafe.circuits.transconductance import TransconductanceModel, load_gm_model
from learnafe.frontends import features as feat
from learnafe.frontends.bank_io import BankSerialisation
from learnafe.frontends.bank_options import BankOptions
from learnafe.frontends.base import FrontEnd
from learnafe.frontends.design_map import ArrayLike, DesignMap
from learnafe.frontends.features import FeatureConfig
from learnafe.frontends.spec import KEYS, SPEC_FORMAT, Bounds, CornerConfig, MismatchConfig, NoiseConfig
from learnafe.frontends.variation import ChipStack, ChipVariation

#: A transconductance model, a gm/Id table JSON path or ``gm_model`` dict, or None (the shipped SKY130 tt table).
GmModelLike = Union[TransconductanceModel, str, os.PathLike, dict, None]



def _as_channel_vector(name, v, n):
    arr = np.asarray(v, dtype=np.float64).reshape(-1)
    if arr.size == 1 and n > 1:
        arr = np.full(n, arr[0])
    if arr.size != n:
        raise ValueError(f"{name} must have one value per channel ({n}), got {arr.size}")
    return arr



class AnalogFilterBank(DesignMap, ChipVariation, BankSerialisation, FrontEnd):
    """A learnable bank of DSSF band-pass filters (see the module docstring).

    Args:
        i1, i2, c1, c2: reference design per channel (A, A, F, F); the learnable
            factors start at 1 (phi = 0).
        sample_rate: audio rate in Hz.
        gm_model: None (default: the shipped SKY130 tt gm/Id table), ``"weak_inversion"``,
            ``"sky130-ss"``/``"sky130-ff"``, a :class:`~learnafe.circuits.TransconductanceModel`,
            a gm/Id JSON path or a ``gm_model`` dict.
        features: :class:`~learnafe.frontends.features.FeatureConfig` or dict.
        options: :class:`~learnafe.frontends.bank_options.BankOptions` or a dict of its fields:
            ``discretization``, ``bounds``, ``noise``, ``mismatch``, ``min_spacing``, ``corners``,
            ``output_conductance``.
        **option_keywords: the same fields as keywords (``noise={"mode": "always"}``,
            ``min_spacing=0``); each replaces that field of ``options`` and is checked by
            :class:`BankOptions` (an unknown name is a ``TypeError``).

    The design map is :class:`~learnafe.frontends.design_map.DesignMap`, mismatch, corners and
    chip stacks :class:`~learnafe.frontends.variation.ChipVariation`, the spec
    :class:`~learnafe.frontends.bank_io.BankSerialisation`.  A
    :class:`~learnafe.frontends.base.FrontEnd` with a hardware cost (``power()``, ``area()``).
    """

    spec_format = SPEC_FORMAT
    has_cost = True

    def __init__(self, i1: ArrayLike, i2: ArrayLike, c1: ArrayLike, c2: ArrayLike, sample_rate: float = 20000.0,
                 gm_model: GmModelLike = None, features: FeatureConfig | dict | None = None,
                 options: BankOptions | dict | None = None, **option_keywords: Any) -> None:
        super().__init__()
        i1 = np.asarray(i1, dtype=np.float64).reshape(-1)
        n = i1.size
        if n < 1:
            raise ValueError("a bank needs at least one channel")
        i2, c1, c2 = (_as_channel_vector(k, v, n) for k, v in (("I2", i2), ("C1", c1), ("C2", c2)))
        dssf.check_circuit(i1, i2, c1, c2)
        sample_rate = float(sample_rate)
        if not (math.isfinite(sample_rate) and sample_rate > 0):
            raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate!r}")
        opts = BankOptions.of(options, option_keywords)
        self.sample_rate = sample_rate
        self.gm_model: TransconductanceModel = load_gm_model(gm_model)
        self.features = feat.FeatureConfig.from_dict(features)
        self.discretization = opts.discretization
        self.bounds = opts.bounds
        self.noise = opts.noise
        self.mismatch = opts.mismatch
        self.min_spacing = opts.min_spacing
        self.corners = opts.corners
        self.output_conductance = opts.output_conductance
        self._log_box = self._make_box()
        ref = {"I1": i1, "I2": i2, "C1": c1, "C2": c2}
        for k, (lo, hi) in self._log_box.items():
            v = np.log(ref[k])
            if np.any(v < lo - 1e-9) or np.any(v > hi + 1e-9):
                bad = ref[k][(v < lo - 1e-9) | (v > hi + 1e-9)][0]
                raise ValueError(f"reference {k}={bad:.4g} is outside its bounds "
                                 f"[{math.exp(lo):.4g}, {math.exp(hi):.4g}]; change the design or the bounds")
        p = dssf.channel_parameters(i1, i2, c1, c2, self.gm_model,
                                    output_conductance=self.output_conductance)
        f0_max = self.bounds.f0_max_fraction * sample_rate
        if np.any(p.f0_hz > f0_max * (1 + 1e-9)):
            raise ValueError(f"reference centre frequency {p.f0_hz.max():.6g} Hz is above "
                             f"{self.bounds.f0_max_fraction} * sample_rate = {f0_max:.6g} Hz; lower f_hi or raise sample_rate")
        for k in KEYS:
            self.register_buffer(f"ref_{k}", torch.as_tensor(ref[k], dtype=torch.float64))
        self.phi_I1 = torch.nn.Parameter(torch.zeros(n, dtype=torch.float64))
        self.phi_I2 = torch.nn.Parameter(torch.zeros(n, dtype=torch.float64))
        self.phi_C1 = torch.nn.Parameter(torch.zeros(n, dtype=torch.float64))
        self.phi_C2 = torch.nn.Parameter(torch.zeros(n, dtype=torch.float64))
        self.register_buffer("chip_factors", self._draw_chip_factors())


    # ------------------------------------------------------------ structure ---

    @property
    def n_channels(self) -> int:
        return int(self.ref_I1.numel())


    def bank_options(self) -> BankOptions:
        """The bank's :class:`~learnafe.frontends.bank_options.BankOptions` (what ``options=`` takes)."""
        return BankOptions(discretization=self.discretization, bounds=self.bounds, noise=self.noise,
                           mismatch=self.mismatch, min_spacing=self.min_spacing, corners=self.corners,
                           output_conductance=self.output_conductance)

    # ------------------------------------------------------------------ cost ---

    def power(self, vals: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Supply power (W) of the bank (or of the nominal circuit ``vals``), differentiable scalar (float64)."""
        vals = self.circuit() if vals is None else vals
        return cost.power_w(vals["I1"], vals["I2"])

    def area(self, vals: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Capacitor area (um^2) of the bank (or of the nominal circuit ``vals``), differentiable scalar (float64)."""
        vals = self.circuit() if vals is None else vals
        return cost.cap_area_um2(vals["C1"], vals["C2"])

    def cost(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(power W, area um^2)`` of the nominal circuit, from one pass of the design map."""
        vals = self.circuit()
        return self.power(vals), self.area(vals)

    def reference_power(self) -> float:
        """Power (W) of the reference design (phi = 0): P_ref for a normalised loss term."""
        return float(cost.power_w(self.ref_I1, self.ref_I2))

    def reference_area(self) -> float:
        """Capacitor area (um^2) of the reference design (phi = 0): A_ref."""
        return float(cost.cap_area_um2(self.ref_C1, self.ref_C2))

    def output_noise_rms(self, vals: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Integrated differential output noise (V rms) per channel, tensor [C]."""
        vals = self.circuit() if vals is None else vals
        p = self.parameters_of(vals)
        return torch.sqrt(cost.output_noise_variance(vals["I1"], vals["I2"], vals["C1"], vals["C2"], p.gm1, p.gm2))

    def input_noise_std(self, vals: dict[str, torch.Tensor] | None = None, b: torch.Tensor | None = None,
                        a: torch.Tensor | None = None) -> torch.Tensor:
        """Per-sample std (audio units) of the white input-referred noise of each channel, tensor [C]."""
        vals = self.circuit() if vals is None else vals
        if b is None:
            b, a = discretize(*self._s_coefficients(vals), self.sample_rate, self.discretization)
        out_var = self.output_noise_rms(vals) ** 2 / self.noise.full_scale_v ** 2
        return torch.sqrt(out_var / noise_gain(b, a))

    # --------------------------------------------------------------- forward ---

    def noise_active(self) -> bool:
        return self.noise.mode == "always" or (self.noise.mode == "train" and self.training)

    def noise_scale(self) -> "float | torch.Tensor":
        """The factor on the nominal noise std of this forward pass: drawn per call in training
        mode when the noise config asks for it (:class:`NoiseConfig`, from torch's global RNG; a
        0-dim tensor, so a compiled graph draws it too), else 1."""
        cfg = self.noise
        if not (self.training and cfg.draws_scale):
            return 1.0
        u = torch.rand(2, dtype=torch.float64)
        drawn = cfg.train_scale_min + (cfg.train_scale_max - cfg.train_scale_min) * u[1]
        return torch.where(u[0] < cfg.train_p_zero, torch.zeros_like(drawn), drawn)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio ``[B, T]`` (amplitude 1.0 = full scale) -> features ``[B, C, T // hop]``."""
        return self._features(audio, self._chip_circuit())

    def forward_with_cost(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(features, power W, area um^2)`` with one pass of the design map phi -> circuit:
        the nominal circuit gives the power and area, and the features too unless this pass
        draws mismatch or a process corner (then this pass's chip is made from the same design)."""
        design = self._design()
        nominal = self._chip(design)
        factors, corner = self.mismatch_factors(), self.corner_model()
        chip = nominal if factors is None and corner is None else self._chip(design, factors, corner)
        return self._features(audio, chip), self.power(nominal), self.area(nominal)

    def _chip_circuit(self) -> dict[str, torch.Tensor]:
        """The circuit of this forward pass: the nominal one with this pass's mismatch and corner."""
        return self.circuit(self.mismatch_factors(), self.corner_model())

    def _features(self, audio: torch.Tensor, vals: dict[str, torch.Tensor]) -> torch.Tensor:
        """Features of ``audio`` through the circuit ``vals`` (with its kT/C noise when active)."""
        x, was_1d = feat.check_audio(audio)
        b, a = discretize(*self._s_coefficients(vals), self.sample_rate, self.discretization)
        # kT/C noise: drawn inside the fused op (one call, nothing of size [B, C, T]);
        # its seed comes from torch's generator, so torch.manual_seed fixes it.  The std is
        # scaled by the level drawn for this batch (exactly 0 gives the noise-free features).
        std = self.input_noise_std(vals, b, a) * self.noise_scale() if self.noise_active() else None
        env = feat.envelopes(x, b, a, self.sample_rate, self.features, noise_std=std)
        out = feat.post_process(env, self.features)
        return out[0] if was_1d else out

    @torch.no_grad()
    def project_(self) -> "AnalogFilterBank":
        """Clamp the parameters in place so every log value lies inside its bound (optional; see the module doc)."""
        for k in KEYS:
            lo, hi = self._log_box[k]
            log_ref = torch.log(getattr(self, f"ref_{k}"))
            phi = self._phi(k)
            phi.copy_(torch.clamp(log_ref + phi.to(torch.float64), lo, hi) - log_ref)
        return self

    # ------------------------------------------------------------ baseline ---

    @classmethod
    def conventional(cls, n_channels: int = 16, f_lo: float = 100.0, f_hi: float = 8000.0, q: float | None = None,
                     sample_rate: float = 20000.0, c_unit: float = 1e-12, gain: float = 1.0,
                     gm_model: GmModelLike = None, **options: Any) -> "AnalogFilterBank":
        """The hand-designed baseline: log-spaced centres f_lo..f_hi, constant Q, C1 = c_unit, C2 = gain * c_unit.

        ``q=None`` picks the Q at which neighbouring channels cross at their half-power
        (-3.01 dB) points: ``Q = 1 / (2 sinh(ln(r) / 2))`` with r = (f_hi/f_lo)^(1/(n-1))
        (3.41 for 16 channels over 100 Hz-8 kHz).  Currents from the inverse design
        (:func:`learnafe.circuits.dssf.design_channel`) with the gm model (default: the shipped
        SKY130 tt table) and, with ``output_conductance`` (default), the devices' gds, so the
        centres and Q are exact under the model the bank computes with.  ``options``: ``features``,
        ``options`` and the :class:`~learnafe.frontends.bank_options.BankOptions` fields, as for
        the constructor.
        """
        if isinstance(n_channels, bool) or not isinstance(n_channels, int) or n_channels < 1:
            raise ValueError(f"n_channels must be a positive integer, got {n_channels!r}")
        if not (0 < f_lo and (f_lo < f_hi or (n_channels == 1 and f_lo == f_hi))):
            raise ValueError(f"need 0 < f_lo < f_hi (Hz), got f_lo={f_lo!r}, f_hi={f_hi!r}")
        if f_hi >= sample_rate / 2:
            raise ValueError(f"f_hi={f_hi} Hz is at or above the Nyquist frequency {sample_rate / 2} Hz of sample_rate")
        centres = np.geomspace(f_lo, f_hi, n_channels)
        if q is None:
            if n_channels < 2:
                raise ValueError("q must be given for a one-channel bank (no neighbours to cross)")
            q = dssf.q_for_crossing((f_hi / f_lo) ** (1.0 / (n_channels - 1)))
        features = options.pop("features", None)
        opts = BankOptions.of(options.pop("options", None), options)
        gm = load_gm_model(gm_model)
        d = dssf.design_channel(centres, q, gain, c_unit, gm, output_conductance=opts.output_conductance)
        return cls(d["I1"], d["I2"], d["C1"], d["C2"], sample_rate=sample_rate, gm_model=gm, features=features,
                   options=opts)

    @classmethod
    def option_names(cls) -> frozenset[str]:
        """The keywords :meth:`conventional` takes: its own design arguments, ``features``,
        ``options`` and every :class:`~learnafe.frontends.bank_options.BankOptions` field."""
        own = set(inspect.signature(cls.conventional).parameters) - {"cls", "options"}
        return frozenset(own | {"features", "options"} | {f.name for f in fields(BankOptions)})

    def extra_repr(self) -> str:
        return (f"n_channels={self.n_channels}, sample_rate={self.sample_rate}, gm_model={self.gm_model!r}, "
                f"discretization={self.discretization!r}, min_spacing={self.min_spacing}, "
                f"output_conductance={self.output_conductance}")


__all__ = ["AnalogFilterBank", "BankOptions", "ChipStack", "Bounds", "NoiseConfig", "MismatchConfig", "CornerConfig", "SPEC_FORMAT"]
