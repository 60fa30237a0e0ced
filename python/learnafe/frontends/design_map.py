"""The analog bank's design map: learnable factors phi -> bounded, spaced circuit values -> a chip's
circuit (mismatch, Nyquist guard, device conductances) -> H(s) and the discrete biquads.

The steps (bounds, spacing projection, Nyquist guard) are stated in docs/circuits.md ("The
learnable bank"); :class:`DesignMap` is the part of
:class:`~learnafe.frontends.analog.AnalogFilterBank` that computes them.  It reads the
bank's ``bounds``, ``gm_model``, ``corners``, ``sample_rate``, ``min_spacing``,
``output_conductance``, ``discretization``, the buffers ``ref_*`` and parameters ``phi_*``.
"""

from __future__ import annotations

import math
from typing import Sequence, Union

import numpy as np
import torch

from learnafe.circuits import dssf
from learnafe.circuits.discretize import digital_response, discretize
from learnafe.circuits.transconductance import GmIdTable, TransconductanceModel, sky130_table
from learnafe.frontends.spec import KEYS

#: Per-channel values: a sequence, a NumPy array or a tensor (a scalar is broadcast where allowed).
ArrayLike = Union[Sequence[float], np.ndarray, torch.Tensor, float]

__all__ = ["DesignMap", "ArrayLike"]


def _st_clamp(x, lo, hi):
    """Clamp in value, identity in gradient (straight-through)."""
    return x + (torch.clamp(x, lo, hi) - x).detach()


class DesignMap:
    """phi -> circuit -> coefficients of an analog bank (mixed into ``AnalogFilterBank``)."""

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
