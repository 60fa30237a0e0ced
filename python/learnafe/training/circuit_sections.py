"""The sections of a training configuration that set the analog bank's circuit variation:
process corners per training batch (``corners``), kT/C noise (``noise``) and device mismatch
(``mismatch``).  ``noise`` and ``mismatch`` have the fields of the bank's own types
(:class:`~learnafe.circuits.variation.NoiseConfig`, :class:`~learnafe.circuits.variation.MismatchConfig`:
the same names and defaults), which check them, and :meth:`BankVariationSection.bank_config`
builds the bank's type."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from learnafe.circuits.transconductance import SKY130_CORNERS
from learnafe.circuits.variation import MismatchConfig, NoiseConfig
from learnafe.training.section import Section, option

__all__ = ["CornerSection", "BankVariationSection", "NoiseSection", "MismatchSection"]


@dataclass(frozen=True)
class CornerSection(Section):
    """Corner-per-batch training: the process corners one of which each training batch uses."""

    name: ClassVar[str] = "corners"
    names: tuple = option((), "process corners, one drawn per training batch (a list; the flag and "
                             "flat files: comma-separated, e.g. tt,ss,ff; none: off)")

    def check(self) -> None:
        ok = isinstance(self.names, (list, tuple)) and all(isinstance(c, str) for c in self.names)
        if ok:
            self._set("names", tuple(c.strip() for c in self.names))
        self._need(ok and all(c in SKY130_CORNERS for c in self.names), "names",
                   f"use a list of {SKY130_CORNERS} (e.g. [\"tt\", \"ss\", \"ff\"]) or [] (off)")


class BankVariationSection(Section):
    """A section whose fields are those of one of the bank's variation types
    (:mod:`learnafe.circuits.variation`), with the same names and defaults; the type checks
    them (one check for the bank and the training) and :meth:`bank_config` builds it."""

    bank_type: ClassVar[type] = object

    def check(self) -> None:
        try:
            self.bank_config()
        except ValueError as exc:
            raise ValueError(f"training option {exc}") from None

    def bank_config(self):
        """The section as the bank's own type (what :class:`~learnafe.frontends.AnalogFilterBank` takes)."""
        return self.bank_type(**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)})


def bank_option(bank_type: type, leaf: str, help: str) -> Any:
    """A field of a :class:`BankVariationSection` with the default of ``bank_type``'s field ``leaf``."""
    return option(next(f.default for f in dataclasses.fields(bank_type) if f.name == leaf), help)


@dataclass(frozen=True)
class NoiseSection(BankVariationSection):
    """kT/C thermal noise of the analog bank's channels (the bank's NoiseConfig)."""

    name: ClassVar[str] = "noise"
    bank_type: ClassVar[type] = NoiseConfig
    mode: str = bank_option(NoiseConfig, "mode", "kT/C noise of the channels: off, train (training "
                                               "forward passes only) or always")
    full_scale_v: float = bank_option(NoiseConfig, "full_scale_v", "volts (differential peak) that audio "
                                                               "amplitude 1.0 maps to; the noise is "
                                                               "referred to audio by it")
    train_scale_min: float = bank_option(NoiseConfig, "train_scale_min", "lowest per-batch scale of the "
                                                                     "noise std in training (1, 1: "
                                                                     "nominal level only)")
    train_scale_max: float = bank_option(NoiseConfig, "train_scale_max", "highest per-batch scale of the "
                                                                     "noise std in training")
    train_p_zero: float = bank_option(NoiseConfig, "train_p_zero", "fraction of training batches without "
                                                               "noise")


@dataclass(frozen=True)
class MismatchSection(BankVariationSection):
    """Device mismatch of the analog bank's currents and capacitors (the bank's MismatchConfig)."""

    name: ClassVar[str] = "mismatch"
    bank_type: ClassVar[type] = MismatchConfig
    mode: str = bank_option(MismatchConfig, "mode", "off, per_batch (a fresh draw every training "
                                                  "batch) or fixed (one chip drawn from `seed`, in "
                                                  "training and evaluation)")
    sigma_i: float = bank_option(MismatchConfig, "sigma_i", "relative 1-sigma error of the bias currents "
                                                          "with source uniform (0.02: 2 per cent)")
    sigma_c: float = bank_option(MismatchConfig, "sigma_c", "relative 1-sigma error of the capacitors "
                                                          "with source uniform")
    seed: int = bank_option(MismatchConfig, "seed", "seed of the chip of mode fixed")
    source: str = bank_option(MismatchConfig, "source", "uniform (sigma_i, sigma_c for every device) or "
                                                      "sky130 (per-channel sigmas of the SKY130 model "
                                                      "files; sigma_i, sigma_c stay 0)")
