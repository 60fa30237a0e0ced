"""The analog bank's serialisation: the ``learnafe-bank/1`` circuit spec (``to_dict``,
``from_dict``, ``load``, :class:`~learnafe.frontends.spec.BankSpec`).

:class:`BankSerialisation` is the part of :class:`~learnafe.frontends.analog.AnalogFilterBank`
that writes and reads its spec; the format is documented in docs/ARCHITECTURE.md and checked
by :meth:`BankSpec.from_dict`.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from learnafe.circuits import cost, dssf
from learnafe.frontends.spec import KEYS, SPEC_FORMAT, UNITS, BankSpec

__all__ = ["BankSerialisation"]


class BankSerialisation:
    """``spec``, ``to_dict``, ``from_dict`` and ``load`` of an analog bank (mixed into ``AnalogFilterBank``)."""

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
    def from_dict(cls, spec: dict | BankSpec) -> "BankSerialisation":
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
    def load(cls, path: str | os.PathLike) -> "BankSerialisation":
        """A bank from a spec file written by :meth:`save` (or a run's ``bank.json``)."""
        return cls.from_dict(BankSpec.load(path))
