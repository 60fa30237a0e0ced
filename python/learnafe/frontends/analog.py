"""The learnable analog front end: a bank of DSSF band-pass filters trained as a circuit.

Parameters are per-channel log-domain scale factors relative to a reference
(conventional) design::

    I1 = I1_ref * exp(phi_I1),  I2 = I2_ref * exp(phi_I2),
    C1 = C1_ref * exp(phi_C1),  C2 = C2_ref * exp(phi_C2)

The physical values always respect :class:`Bounds`, whatever the parameters:

1. each log value is clamped to its box ([i_min, i_max] for currents, also
   intersected with a gm/Id table's range; [c_min, c_max] for capacitors) with a
   straight-through gradient (the optimiser still sees the loss's slope at the
   bound, so a parameter can come back);
2. **the bank stays a bank** (``min_spacing`` r, default 1.1; 0 switches it off): after the
   Nyquist guard of step 3 is applied to the nominal design, the centres are made
   ascending with each at least r times its lower neighbour by a deterministic monotone
   projection, top down: the top channel keeps its centre, and each lower channel's
   target is ``t_k = min(w0_k, t_{k+1} / r)``, i.e. ``t_k = min_{j >= k} w0_j / r^(j-k)``
   (a reverse running minimum, vectorised).  Channel k then gets both capacitors scaled
   by ``s_k = w0_k / t_k >= 1``: scaling C1 and C2 together moves w0 exactly (w0 ~
   1/sqrt(C1 C2)) and keeps Q and the gain C2/C1 for any gm model, and since the factor is
   never below 1 the capacitors never cross c_min (c_max gives way, as for the Nyquist
   guard).  Where no constraint is active ``s_k`` is exactly 1.0, so a bank that already
   satisfies the spacing (the conventional bank, ratio 1.34) is bit-for-bit unchanged.
   The gradient is the exact gradient of this piecewise-smooth map: a channel pinned
   below its upper neighbour passes its centre gradient to that neighbour (they move
   together), while its own capacitors cost area in proportion to ``s_k``, so the cost
   terms pull its raw centre back to the pinned one.  The alternative, a
   reparametrisation of the log-centres as ``log r + softplus(.)`` increments, would
   replace the per-channel circuit scale factors phi (the paper's parameters, the spec's
   ``phi``) by centre parameters and need Q and gain parametrised separately; the
   projection keeps phi and holds for any phi, whatever the loss weights.  Shrinking
   capacitors to push channels up instead would run into c_min.
3. a channel whose centre frequency would exceed ``f0_max_fraction * fs`` gets both
   capacitors scaled up by ``w0 / w0_max`` (exact for any gm model; keeps Q and gain).
   This guard also runs last, after mismatch and with the gm model of the chip's corner.

Step 1 already keeps every forward pass inside the bounds, so ``project_()``
(which clamps the parameters themselves to the box) is optional: calling it
after ``optimizer.step()`` stops a parameter from drifting far past a bound,
so it comes back sooner once the loss wants it back.  The trainer
(:mod:`learnafe.training`) does not call it.

Circuit -> discrete coefficients (:mod:`learnafe.circuits.discretize`) -> fused
envelope op (:func:`learnafe.ops.filterbank_envelope`) -> log / normalisation.
All circuit arithmetic is float64 (whatever the module dtype); the op runs in
the audio's dtype.

The default transconductance model is the shipped SKY130 tt gm/Id table
(:func:`learnafe.circuits.sky130_table`), the circuit that is built, with the devices'
output conductance from the same table (``output_conductance=True``: gds1, gds2 enter the
filters, the projections of steps 2 and 3, the spec's f0/Q/gain; differentiable); pass
``gm_model="weak_inversion"`` for the textbook model, ``output_conductance=False`` for
ideal devices.  Specs record their model, and
a spec without one (or without ``min_spacing`` or ``output_conductance``) rebuilds as it
did before these defaults (weak inversion, a free bank, ideal devices).

Training-time perturbations (all off by default):

* thermal noise (:class:`NoiseConfig`): each channel's integrated output noise
  ``var = q I1 C2 / (2 C1^2 gm1) + q I2 / (2 C1 gm2)`` (= n k T (1 + C2/C1) / (2 C1) in
  weak inversion; :func:`learnafe.circuits.cost.output_noise_variance`) is
  referred to the filter input as white Gaussian noise, independent per channel,
  batch item and sample, whose per-sample variance makes the discrete filter's
  output variance equal that value; audio amplitude 1.0 is ``full_scale_v`` volts
  (differential peak), so the noise in audio units is divided by ``full_scale_v``.
  Smaller capacitors cost SNR.  The noise is drawn inside the fused envelope op
  (``noise_std`` of :func:`learnafe.ops.filterbank_envelope`, a counter-based
  generator seeded from torch's default generator) and regenerated in its
  backward pass; the gradient reaches the circuit through the std as well.
  Optionally the level is drawn per training batch (``train_scale_min``,
  ``train_scale_max``, ``train_p_zero``: a scale on the std, exactly 0 on a fraction
  of batches), so the classifier does not come to depend on the noise floor.
* mismatch (:class:`MismatchConfig`): I1, I2, C1, C2 are multiplied by
  ``1 + sigma * N(0, 1)`` (relative Gaussian error), drawn per batch in training
  or fixed per chip from a seed; ``source="sky130"`` takes per-channel sigmas
  from the SKY130 model files (:func:`learnafe.circuits.mismatch.sky130_mismatch`)
  at the nominal design.  Mismatch perturbs the designed (projected) values, so a
  chip may break the spacing slightly, as silicon would.
* process corners (:class:`CornerConfig`): the gm/Id table of a SKY130 corner
  (tt, ss, ff) replaces the bank's model for a forward pass, drawn per training
  batch or fixed (a chip from that corner).  Currents and capacitors stay the
  nominal design's.

``power()``/``area()`` (and the spec) are the nominal design values.
"""

from __future__ import annotations

import math
import os
from typing import Any, Sequence, Union

import numpy as np
import torch

from learnafe.circuits import cost, dssf
from learnafe.circuits.discretize import METHODS, digital_response, discretize, noise_gain
from learnafe.circuits.transconductance import GmIdTable, TransconductanceModel, load_gm_model, sky130_table
from learnafe.frontends import features as feat
from learnafe.frontends.base import FrontEnd
from learnafe.frontends.features import FeatureConfig
from learnafe.frontends.spec import (
    DEFAULT_MIN_SPACING,
    KEYS,
    SPEC_FORMAT,
    UNITS,
    BankSpec,
    Bounds,
    CornerConfig,
    MismatchConfig,
    NoiseConfig,
    check_min_spacing,
)

#: Per-channel values: a sequence, a NumPy array or a tensor (a scalar is broadcast where allowed).
ArrayLike = Union[Sequence[float], np.ndarray, torch.Tensor, float]
#: A transconductance model, a gm/Id table JSON path or ``gm_model`` dict, or None (the shipped SKY130 tt table).
GmModelLike = Union[TransconductanceModel, str, os.PathLike, dict, None]


def _st_clamp(x, lo, hi):
    """Clamp in value, identity in gradient (straight-through)."""
    return x + (torch.clamp(x, lo, hi) - x).detach()


def _as_channel_vector(name, v, n):
    arr = np.asarray(v, dtype=np.float64).reshape(-1)
    if arr.size == 1 and n > 1:
        arr = np.full(n, arr[0])
    if arr.size != n:
        raise ValueError(f"{name} must have one value per channel ({n}), got {arr.size}")
    return arr


class AnalogFilterBank(FrontEnd):
    """A learnable bank of DSSF band-pass filters (see the module docstring).

    Args:
        i1, i2, c1, c2: reference design per channel (A, A, F, F); the learnable
            factors start at 1 (phi = 0).
        sample_rate: audio rate in Hz.
        gm_model: None (default: the shipped SKY130 tt gm/Id table), ``"weak_inversion"``,
            ``"sky130-ss"``/``"sky130-ff"``, a :class:`~learnafe.circuits.TransconductanceModel`,
            a gm/Id JSON path or a ``gm_model`` dict.
        features: :class:`~learnafe.frontends.features.FeatureConfig` or dict.
        discretization: ``"bilinear"`` (pre-warped at w0), ``"matched_z"``, ``"impulse_invariance"`` or
            ``"magnitude_matched"`` (:mod:`learnafe.circuits.discretize`).
        bounds, noise, mismatch, corners: :class:`Bounds`, :class:`NoiseConfig`, :class:`MismatchConfig`,
            :class:`CornerConfig` or dicts.
        min_spacing: smallest ratio of neighbouring centres the design map enforces (default
            1.1: each centre at least 10 % above its lower neighbour; 1: ascending only; 0: off,
            a free bank).  See the module docstring.

    A :class:`~learnafe.frontends.base.FrontEnd` with a hardware cost (``power()``, ``area()``).
    """

    spec_format = SPEC_FORMAT
    has_cost = True

    def __init__(self, i1: ArrayLike, i2: ArrayLike, c1: ArrayLike, c2: ArrayLike, sample_rate: float = 20000.0,
                 gm_model: GmModelLike = None, features: FeatureConfig | dict | None = None,
                 discretization: str = "bilinear", bounds: Bounds | dict | None = None,
                 noise: NoiseConfig | dict | None = None, mismatch: MismatchConfig | dict | None = None,
                 min_spacing: float = DEFAULT_MIN_SPACING, corners: CornerConfig | dict | None = None,
                 output_conductance: bool = True) -> None:
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
        if discretization not in METHODS:
            raise ValueError(f"discretization must be one of {METHODS}, got {discretization!r}")
        self.sample_rate = sample_rate
        self.gm_model: TransconductanceModel = load_gm_model(gm_model)
        self.features = feat.FeatureConfig.from_dict(features)
        self.discretization = discretization
        self.bounds = Bounds.from_dict(bounds)
        self.noise = NoiseConfig.from_dict(noise)
        self.mismatch = MismatchConfig.from_dict(mismatch)
        self.min_spacing = check_min_spacing(min_spacing)
        self.corners = CornerConfig.from_dict(corners)
        if not isinstance(output_conductance, bool):
            raise ValueError(f"output_conductance must be True or False, got {output_conductance!r}")
        self.output_conductance = output_conductance
        self._log_box = self._make_box()
        ref = {"I1": i1, "I2": i2, "C1": c1, "C2": c2}
        for k, (lo, hi) in self._log_box.items():
            v = np.log(ref[k])
            if np.any(v < lo - 1e-9) or np.any(v > hi + 1e-9):
                bad = ref[k][(v < lo - 1e-9) | (v > hi + 1e-9)][0]
                raise ValueError(f"reference {k}={bad:.4g} is outside its bounds "
                                 f"[{math.exp(lo):.4g}, {math.exp(hi):.4g}]; change the design or the bounds")
        p = dssf.channel_parameters(i1, i2, c1, c2, self.gm_model, output_conductance=output_conductance)
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

    def _make_box(self) -> dict:
        b = self.bounds
        box = {"I1": [b.i_min, b.i_max], "I2": [b.i_min, b.i_max], "C1": [b.c_min, b.c_max], "C2": [b.c_min, b.c_max]}
        tables = [self.gm_model] + ([sky130_table(c) for c in self.corners.corners]
                                    if self.corners.mode != "off" else [])
        for table in tables:
            if not isinstance(table, GmIdTable):
                continue
            for k, dev in (("I1", "m1"), ("I2", "m2")):
                lo, hi = table.current_range(dev)
                box[k] = [max(box[k][0], lo), min(box[k][1], hi)]
                if box[k][0] >= box[k][1]:
                    raise ValueError(f"the gm/Id table range of {dev} does not overlap the current bounds "
                                     f"[{b.i_min:.3g}, {b.i_max:.3g}] A")
        return {k: (math.log(lo), math.log(hi)) for k, (lo, hi) in box.items()}

    def _phi(self, key):
        return getattr(self, f"phi_{key}")

    def _draw_chip_factors(self):
        n = self.n_channels
        if self.mismatch.mode != "fixed":
            return torch.ones(4, n, dtype=torch.float64)
        gen = torch.Generator().manual_seed(self.mismatch.seed)
        return self._factors(torch.randn(4, n, generator=gen, dtype=torch.float64))

    def _factors(self, eps):
        m = self.mismatch
        sig = torch.tensor([m.sigma_i, m.sigma_i, m.sigma_c, m.sigma_c], dtype=torch.float64).unsqueeze(1)
        return torch.clamp(1 + sig * eps, min=0.05)

    def mismatch_sigmas(self) -> torch.Tensor:
        """Relative 1-sigma mismatch [4, C] (I1, I2, C1, C2) of the nominal design: per channel from
        the SKY130 model files (``source="sky130"``) or the uniform ``sigma_i``, ``sigma_c``."""
        m = self.mismatch
        if m.source == "sky130":
            from learnafe.circuits.mismatch import sky130_mismatch

            with torch.no_grad():
                v = {k: t.detach().cpu().numpy() for k, t in self.circuit().items() if k in KEYS}
            sig = sky130_mismatch(v["I1"], v["I2"], v["C1"], v["C2"])
            return torch.as_tensor(np.stack([sig[f"sigma_{k}"] for k in KEYS]), dtype=torch.float64,
                                   device=self.ref_I1.device)
        return torch.tensor([m.sigma_i, m.sigma_i, m.sigma_c, m.sigma_c], dtype=torch.float64,
                            device=self.ref_I1.device).unsqueeze(1).expand(4, self.n_channels)

    def mismatch_factors(self) -> torch.Tensor | None:
        """The multiplicative factors [4, C] (I1, I2, C1, C2) a forward pass uses now, or None."""
        mode = self.mismatch.mode
        if mode == "off" or (mode == "per_batch" and not self.training):
            return None
        if self.mismatch.source == "sky130":
            if mode == "fixed":
                gen = torch.Generator().manual_seed(self.mismatch.seed)
                eps = torch.randn(4, self.n_channels, generator=gen, dtype=torch.float64).to(self.ref_I1.device)
            else:
                eps = torch.randn(4, self.n_channels, dtype=torch.float64, device=self.ref_I1.device)
            return torch.clamp(1 + self.mismatch_sigmas() * eps, min=0.05)
        if mode == "fixed":
            return self.chip_factors
        return self._factors(torch.randn(4, self.n_channels, dtype=torch.float64, device=self.ref_I1.device))

    def corner_model(self) -> TransconductanceModel | None:
        """The gm model of this forward pass's process corner, or None for the bank's own model."""
        c = self.corners
        if c.mode == "fixed":
            return sky130_table(c.corners[0])
        if c.mode == "per_batch" and self.training:
            return sky130_table(c.corners[int(torch.randint(len(c.corners), ()))])
        return None

    # --------------------------------------------------------------- circuit ---

    def _device_conductances(self, vals, gm_model) -> None:
        """Add ``gm1, gm2, gds1, gds2`` of the currents in ``vals`` under ``gm_model`` (in place;
        gds is None unless the bank uses the output conductance and the model knows it)."""
        vals["gm1"], vals["gm2"] = gm_model.gm1(vals["I1"]), gm_model.gm2(vals["I2"])
        vals["gds1"], vals["gds2"] = dssf.output_conductances(gm_model, vals["I1"], vals["I2"],
                                                              self.output_conductance)

    def _nyquist_guard(self, vals, gm_model) -> None:
        """Scale both capacitors of every channel above f0_max up to it, and add the device
        conductances (:meth:`_device_conductances`), in place.  Scaling C1 and C2 by k divides
        w0 by k exactly and keeps Q and the gain, with or without gds."""
        self._device_conductances(vals, gm_model)
        w0 = self.parameters_of(vals).w0
        w0_max = 2 * math.pi * self.bounds.f0_max_fraction * self.sample_rate
        k = torch.clamp(w0 / w0_max, min=1.0)
        vals["C1"] = vals["C1"] * k
        vals["C2"] = vals["C2"] * k

    def _space_centres(self, vals) -> None:
        """The spacing projection (module docstring, step 2), in place on the nominal values."""
        self._nyquist_guard(vals, self.gm_model)
        w0 = self.parameters_of(vals).w0
        n = w0.numel()
        if n < 2:
            return
        idx = torch.arange(n, device=w0.device)
        log_r = math.log(self.min_spacing)
        # t_k = min_{j >= k} w0_j r^(k - j): reverse running minimum of log w0_j - j log r
        key = torch.log(w0.detach()) - idx.to(torch.float64) * log_r
        _, arg = torch.cummin(key.flip(0), dim=0)
        j = (n - 1) - arg.flip(0)                           # index of the binding channel, j >= k
        steps = (j - idx).to(torch.float64)
        target = w0[j] * torch.where(steps > 0, torch.exp(-steps * log_r), torch.ones_like(steps))
        s = torch.where(j == idx, torch.ones_like(w0), w0 / target)
        vals["C1"] = vals["C1"] * s
        vals["C2"] = vals["C2"] * s

    def circuit(self, factors: torch.Tensor | None = None,
                gm_model: TransconductanceModel | None = None) -> dict[str, torch.Tensor]:
        """Physical per-channel values (float64 tensors [C], differentiable in phi) after bounds.

        Returns ``I1, I2, C1, C2``, the transconductances ``gm1, gm2`` they give and the
        output conductances ``gds1, gds2`` (None without :attr:`output_conductance`).
        ``factors`` ([4, C], optional): mismatch multipliers for I1, I2, C1, C2.
        ``gm_model`` (optional): the model of the chip's process corner (default: the bank's own);
        the design map (bounds, spacing) always uses the bank's own model.
        """
        return self._chip(self._design(), factors, gm_model)

    def _design(self) -> dict[str, torch.Tensor]:
        """The design map's values ``I1, I2, C1, C2`` (bounds and spacing applied) of phi."""
        vals = {}
        for k in KEYS:
            lo, hi = self._log_box[k]
            ref = getattr(self, f"ref_{k}").to(torch.float64)
            log_v = _st_clamp(torch.log(ref) + self._phi(k).to(torch.float64), lo, hi)
            vals[k] = torch.exp(log_v)
        if self.min_spacing:
            self._space_centres(vals)
        return vals

    def _chip(self, design: dict[str, torch.Tensor], factors: torch.Tensor | None = None,
              gm_model: TransconductanceModel | None = None) -> dict[str, torch.Tensor]:
        """The circuit of a chip of ``design`` (a new dict): mismatch ``factors``, the Nyquist
        guard and the devices' conductances under ``gm_model`` (default the bank's own)."""
        vals = dict(design)
        if factors is not None:
            for j, k in enumerate(KEYS):
                lo, hi = self._log_box[k]
                vals[k] = torch.clamp(vals[k] * factors[j].to(torch.float64), math.exp(lo), math.exp(hi))
        self._nyquist_guard(vals, self.gm_model if gm_model is None else gm_model)
        return vals

    def parameters_of(self, vals: dict) -> dssf.ChannelParameters:
        """gm1, gm2, w0, Q, gain of ``vals`` (its ``gm1``, ``gm2``, ``gds1``, ``gds2`` when present,
        else the bank's model)."""
        if "gm1" in vals and "gm2" in vals:
            return dssf.parameters_from_gm(vals["gm1"], vals["gm2"], vals["C1"], vals["C2"],
                                           vals.get("gds1"), vals.get("gds2"))
        return dssf.channel_parameters(vals["I1"], vals["I2"], vals["C1"], vals["C2"], self.gm_model, validate=False,
                                       output_conductance=self.output_conductance)

    def _s_coefficients(self, vals):
        p = self.parameters_of(vals)
        return dssf.s_coefficients(p.gm1, p.gm2, vals["C1"], vals["C2"], p.gds1, p.gds2)

    def coefficients(self, factors: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Discrete biquads ``(b [C, 3], a [C, 2])`` (float64 tensors, differentiable) of the nominal bank."""
        return discretize(*self._s_coefficients(self.circuit(factors)), self.sample_rate, self.discretization)

    def center_frequencies(self) -> torch.Tensor:
        """Centre frequencies f0 (Hz), tensor [C]."""
        return self.parameters_of(self.circuit()).f0_hz

    def q(self) -> torch.Tensor:
        """Quality factors, tensor [C]."""
        return self.parameters_of(self.circuit()).q

    def gain(self) -> torch.Tensor:
        """Peak gain magnitudes, tensor [C]: C2/C1 for ideal devices, slightly less with the
        output conductance (:func:`learnafe.circuits.dssf.parameters_from_gm`)."""
        return self.parameters_of(self.circuit()).gain

    def frequency_response(self, freqs_hz: ArrayLike, discrete: bool = False) -> torch.Tensor:
        """Complex response [C, F] at ``freqs_hz``: the analog H(j 2 pi f), or the discretised biquads."""
        vals = self.circuit()
        if discrete:
            b, a = discretize(*self._s_coefficients(vals), self.sample_rate, self.discretization)
            return digital_response(freqs_hz, b, a, self.sample_rate)
        f = torch.as_tensor(np.asarray(freqs_hz, dtype=np.float64))
        return dssf.analog_response(f, *self._s_coefficients(vals))

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

    # ------------------------------------------------------------------ spec ---

    def spec(self) -> BankSpec:
        """The circuit spec (:class:`~learnafe.frontends.spec.BankSpec`) of the bank as it is now."""
        return BankSpec.from_dict(self.to_dict())

    def to_dict(self) -> dict:
        """The JSON circuit spec (``learnafe-bank/1``, docs/ARCHITECTURE.md); JSON-clean floats."""
        with torch.no_grad():
            vals = {k: v.detach().cpu().numpy() for k, v in self.circuit().items() if k in KEYS}
            p = dssf.channel_parameters(vals["I1"], vals["I2"], vals["C1"], vals["C2"], self.gm_model,
                                        output_conductance=self.output_conductance)
            pw = cost.channel_power_w(vals["I1"], vals["I2"])
            ar = cost.channel_cap_area_um2(vals["C1"], vals["C2"])
            noise = np.sqrt(cost.output_noise_variance(vals["I1"], vals["I2"], vals["C1"], vals["C2"], p.gm1, p.gm2))
        channels = [{"I1": float(vals["I1"][c]), "I2": float(vals["I2"][c]), "C1": float(vals["C1"][c]),
                     "C2": float(vals["C2"][c]), "f0_hz": float(p.f0_hz[c]), "q": float(p.q[c]),
                     "gain": float(p.gain[c]), "power_w": float(pw[c]), "area_um2": float(ar[c]),
                     "output_noise_vrms": float(noise[c])}
                    for c in range(self.n_channels)]
        return {
            "format": SPEC_FORMAT,
            "units": dict(UNITS),
            "sample_rate": self.sample_rate,
            "gm_model": self.gm_model.to_dict(),
            "output_conductance": self.output_conductance,
            "features": self.features.to_dict(),
            "discretization": self.discretization,
            "bounds": self.bounds.to_dict(),
            "min_spacing": self.min_spacing,
            "noise": self.noise.to_dict(),
            "mismatch": self.mismatch.to_dict(),
            "corners": self.corners.to_dict(),
            "channels": channels,
            "total_power_w": float(pw.sum()),
            "total_cap_area_um2": float(ar.sum()),
            "reference": {k: getattr(self, f"ref_{k}").cpu().tolist() for k in KEYS},
            "phi": {k: self._phi(k).detach().to(torch.float64).cpu().tolist() for k in KEYS},
            "reference_power_w": self.reference_power(),
            "reference_cap_area_um2": self.reference_area(),
        }

    @classmethod
    def from_dict(cls, spec: dict | BankSpec) -> "AnalogFilterBank":
        """Rebuild a bank from :meth:`to_dict` output, a :class:`~learnafe.frontends.spec.BankSpec`, or a
        hand-written spec with channels only (checked by :meth:`BankSpec.from_dict`).

        With ``reference`` and ``phi`` present the bank is restored exactly; otherwise the
        channel values become the reference design with phi = 0.  A spec without
        ``gm_model`` is read with weak inversion and one without ``min_spacing`` as a free
        bank, as before those defaults changed, so old specs rebuild unchanged.
        """
        spec = BankSpec.from_dict(spec)
        if spec.reference is not None and spec.phi is not None:
            ref = {k: spec.reference[k] for k in KEYS}
            phi = {k: spec.phi[k] for k in KEYS}
        else:
            ref = {k: spec.values(k) for k in KEYS}
            phi = None
        bank = cls(ref["I1"], ref["I2"], ref["C1"], ref["C2"],
                   sample_rate=20000.0 if spec.sample_rate is None else spec.sample_rate,
                   gm_model="weak_inversion" if spec.gm_model is None else dict(spec.gm_model),
                   features=spec.features, discretization=spec.discretization or "bilinear", bounds=spec.bounds,
                   noise=spec.noise, mismatch=spec.mismatch,
                   min_spacing=0.0 if spec.min_spacing is None else spec.min_spacing, corners=spec.corners,
                   output_conductance=bool(spec.output_conductance))
        if phi is not None:
            with torch.no_grad():
                for k in KEYS:
                    bank._phi(k).copy_(torch.as_tensor(np.asarray(phi[k], dtype=np.float64)))
        return bank

    @classmethod
    def load(cls, path: str | os.PathLike) -> "AnalogFilterBank":
        """A bank from a spec file written by :meth:`save` (or a run's ``bank.json``)."""
        return cls.from_dict(BankSpec.load(path))

    # ------------------------------------------------------------ baseline ---

    @classmethod
    def conventional(cls, n_channels: int = 16, f_lo: float = 100.0, f_hi: float = 8000.0, q: float | None = None,
                     sample_rate: float = 20000.0, c_unit: float = 1e-12, gain: float = 1.0,
                     gm_model: GmModelLike = None, output_conductance: bool = True,
                     **kwargs: Any) -> "AnalogFilterBank":
        """The hand-designed baseline: log-spaced centres f_lo..f_hi, constant Q, C1 = c_unit, C2 = gain * c_unit.

        ``q=None`` picks the Q at which neighbouring channels cross at their half-power
        (-3.01 dB) points: ``Q = 1 / (2 sinh(ln(r) / 2))`` with r = (f_hi/f_lo)^(1/(n-1))
        (3.41 for 16 channels over 100 Hz-8 kHz).  Currents from the inverse design
        (:func:`learnafe.circuits.dssf.design_channel`) with the gm model (default: the shipped
        SKY130 tt table) and, with ``output_conductance`` (default), the devices' gds, so the
        centres and Q are exact under the model the bank computes with.
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
        gm = load_gm_model(gm_model)
        d = dssf.design_channel(centres, q, gain, c_unit, gm, output_conductance=output_conductance)
        return cls(d["I1"], d["I2"], d["C1"], d["C2"], sample_rate=sample_rate, gm_model=gm,
                   output_conductance=output_conductance, **kwargs)

    def extra_repr(self) -> str:
        return (f"n_channels={self.n_channels}, sample_rate={self.sample_rate}, gm_model={self.gm_model!r}, "
                f"discretization={self.discretization!r}, min_spacing={self.min_spacing}, "
                f"output_conductance={self.output_conductance}")


__all__ = ["AnalogFilterBank", "Bounds", "NoiseConfig", "MismatchConfig", "CornerConfig", "SPEC_FORMAT"]
