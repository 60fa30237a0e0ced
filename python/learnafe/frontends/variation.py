"""Fab variation of the analog bank: mismatch factors, process corners, and a stack of sampled
chips evaluated in one batched op call.

:class:`ChipVariation` is the part of :class:`~learnafe.frontends.analog.AnalogFilterBank`
that draws a forward pass's mismatch factors (:class:`~learnafe.frontends.spec.MismatchConfig`)
and corner model (:class:`~learnafe.frontends.spec.CornerConfig`).  :meth:`ChipVariation.chip_stack`
turns K chips (mismatch factors and/or corners) of one design into a :class:`ChipStack`: per-chip
discrete biquads and noise std, run through one per-example
:func:`learnafe.ops.filterbank_envelope` call on a batch laid out as K chips x clips.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np
import torch

from learnafe.circuits.discretize import discretize
from learnafe.circuits.mismatch import sky130_mismatch
from learnafe.circuits.transconductance import SKY130_CORNERS, TransconductanceModel, load_gm_model, sky130_table
from learnafe.circuits.variation import MISMATCH_SOURCES
from learnafe.frontends import features as feat
from learnafe.frontends.features import FeatureConfig
from learnafe.frontends.spec import KEYS
from learnafe.ops.operators import torch_seed

#: A chip's process corner: a SKY130 corner name (``SKY130_CORNERS``), a gm model or what
#: :func:`~learnafe.circuits.transconductance.load_gm_model` reads, or None (the bank's own model).
CornerLike = Union[str, TransconductanceModel, None]

__all__ = ["ChipVariation", "ChipStack"]


class ChipVariation:
    """Mismatch, corners and chip stacks of an analog bank (mixed into ``AnalogFilterBank``)."""

    def _draw_chip_factors(self):
        """The factors of a uniform ``fixed`` mismatch (a buffer of the bank), else ones."""
        m = self.mismatch
        if m.mode != "fixed":
            return torch.ones(4, self.n_channels, dtype=torch.float64)
        return self.draw_factors(m.seed, "uniform", m.sigma_i, m.sigma_c)

    def mismatch_sigmas(self) -> torch.Tensor:
        """Relative 1-sigma mismatch [4, C] (I1, I2, C1, C2) of the nominal design: per channel from
        the SKY130 model files (``source="sky130"``) or the uniform ``sigma_i``, ``sigma_c``."""
        m = self.mismatch
        return self.sigmas_of(m.source, m.sigma_i, m.sigma_c)

    def _sky130_sigmas(self) -> torch.Tensor:
        """Per-channel SKY130 sigmas [4, C] of the nominal circuit
        (:func:`learnafe.circuits.mismatch.sky130_mismatch`)."""
        with torch.no_grad():
            v = {k: t.detach().cpu().numpy() for k, t in self.circuit().items() if k in KEYS}
        sig = sky130_mismatch(v["I1"], v["I2"], v["C1"], v["C2"])
        return torch.as_tensor(np.stack([sig[f"sigma_{k}"] for k in KEYS]), dtype=torch.float64,
                               device=self.ref_I1.device)

    def mismatch_factors(self) -> torch.Tensor | None:
        """The multiplicative factors [4, C] (I1, I2, C1, C2) a forward pass uses now, or None."""
        m = self.mismatch
        if m.mode == "off" or (m.mode == "per_batch" and not self.training):
            return None
        if m.mode == "fixed":
            return self.draw_factors(m.seed, "sky130") if m.source == "sky130" else self.chip_factors
        eps = torch.randn(4, self.n_channels, dtype=torch.float64, device=self.ref_I1.device)
        return torch.clamp(1 + self.mismatch_sigmas() * eps, min=0.05)

    def corner_model(self) -> TransconductanceModel | None:
        """The gm model of this forward pass's process corner, or None for the bank's own model."""
        c = self.corners
        if c.mode == "fixed":
            return sky130_table(c.corners[0])
        if c.mode == "per_batch" and self.training:
            return sky130_table(c.corners[int(torch.randint(len(c.corners), ()))])
        return None

    # ------------------------------------------------------------ chip stack ---

    def draw_factors(self, seed: int, source: str = "sky130", sigma_i: float = 0.0,
                     sigma_c: float = 0.0) -> torch.Tensor:
        """The mismatch factors [4, C] (I1, I2, C1, C2) of the chip drawn from ``seed``: those a copy
        of this bank with ``MismatchConfig(mode="fixed", seed=seed, source=source, sigma_i=..,
        sigma_c=..)`` uses (``source="sky130"``: the per-channel SKY130 figures, the sigmas unused)."""
        if source not in MISMATCH_SOURCES:
            raise ValueError(f"source must be one of {MISMATCH_SOURCES}, got {source!r}")
        gen = torch.Generator().manual_seed(int(seed))
        eps = torch.randn(4, self.n_channels, generator=gen, dtype=torch.float64)
        if source == "sky130":
            sig = self._sky130_sigmas()
            return torch.clamp(1 + sig * eps.to(sig.device), min=0.05)
        sig = torch.tensor([sigma_i, sigma_i, sigma_c, sigma_c], dtype=torch.float64).unsqueeze(1)
        return torch.clamp(1 + sig * eps, min=0.05)

    def sigmas_of(self, source: str = "sky130", sigma_i: float = 0.0, sigma_c: float = 0.0) -> torch.Tensor:
        """The relative 1-sigma mismatch [4, C] (I1, I2, C1, C2) that :meth:`draw_factors` draws with."""
        if source not in MISMATCH_SOURCES:
            raise ValueError(f"source must be one of {MISMATCH_SOURCES}, got {source!r}")
        if source == "sky130":
            return self._sky130_sigmas()
        return torch.tensor([sigma_i, sigma_i, sigma_c, sigma_c], dtype=torch.float64,
                            device=self.ref_I1.device).unsqueeze(1).expand(4, self.n_channels)

    def chip_stack(self, factors: torch.Tensor | Sequence[torch.Tensor | None] | None = None,
                   corners: Sequence[CornerLike] | None = None) -> "ChipStack":
        """K chips of this design as one :class:`ChipStack` (evaluated in one batched op call).

        ``factors``: mismatch factors of each chip, ``[K, 4, C]`` or a sequence of K ``[4, C]``
        tensors or None (no mismatch); ``corners``: K process corners (a SKY130 corner name, a
        gm model or None for the bank's own model).  Either may be None (no mismatch / the
        bank's model for every chip); given both, they have the same length.  Chip k is the
        circuit ``circuit(factors[k], corner model k)``, i.e. what a copy of this bank with
        that fixed mismatch and corner computes; the noise std is that of this bank's noise
        setting in its current mode (none unless the noise is active).
        """
        if factors is None and corners is None:
            raise ValueError("chip_stack needs factors [K, 4, C] or K corners (or both)")
        fac = list(factors) if factors is not None else None
        cor = list(corners) if corners is not None else None
        k = len(fac) if fac is not None else len(cor)
        if fac is not None and cor is not None and len(cor) != k:
            raise ValueError(f"factors has {k} chips but corners has {len(cor)}; give one corner per chip")
        if k < 1:
            raise ValueError("chip_stack needs at least one chip")
        fac = fac if fac is not None else [None] * k
        cor = cor if cor is not None else [None] * k
        n = self.n_channels
        for j, f in enumerate(fac):
            if f is not None and tuple(f.shape) != (4, n):
                raise ValueError(f"factors of chip {j} must have shape [4, {n}] (I1, I2, C1, C2 per channel), "
                                 f"got {tuple(f.shape)}")
        models = [None if c is None else (sky130_table(c) if isinstance(c, str) and c in SKY130_CORNERS
                                          else load_gm_model(c)) for c in cor]
        design = self._design()
        bs, as_, stds, f0 = [], [], [], []
        noisy = self.noise_active()
        scale = self.noise_scale() if noisy else None
        for f, m in zip(fac, models):
            vals = self._chip(design, f, m)
            b, a = discretize(*self._s_coefficients(vals), self.sample_rate, self.discretization)
            bs.append(b)
            as_.append(a)
            f0.append(self.parameters_of(vals).f0_hz)
            if noisy:
                stds.append(self.input_noise_std(vals, b, a) * scale)
        return ChipStack(b=torch.stack(bs), a=torch.stack(as_), noise_std=torch.stack(stds) if noisy else None,
                         f0_hz=torch.stack(f0), sample_rate=self.sample_rate, features=self.features)


@dataclass(frozen=True)
class ChipStack:
    """K chips of one analog bank as per-example coefficients (:meth:`ChipVariation.chip_stack`).

    Calling it on audio ``[B, T]`` gives features ``[K, B, C, F]``: chip k's features of every
    clip, equal to that chip's own forward pass.  The whole stack is one call of the
    per-example :func:`learnafe.ops.filterbank_envelope` on the batch laid out as K chips x B
    clips (``b [K*B, C, 3]``; with noise, ``noise_std [K*B, C]``, one seed drawn from torch's
    generator for all chips and ``noise_batch=B``, so item ``j*B + i`` draws the noise keyed by
    ``(seed, i, c, t)``): every chip gets the noise its own forward pass would draw from the same
    generator state.
    """

    #: Discrete numerators ``[K, C, 3]`` (float64).
    b: torch.Tensor
    #: Discrete denominators ``[K, C, 2]`` (float64).
    a: torch.Tensor
    #: Input-referred noise std ``[K, C]`` (audio units), or None (noise off).
    noise_std: torch.Tensor | None
    #: Centre frequencies of each chip (Hz), ``[K, C]``.
    f0_hz: torch.Tensor
    sample_rate: float
    features: FeatureConfig

    @property
    def n_chips(self) -> int:
        return int(self.b.shape[0])

    def __call__(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio ``[B, T]`` (or ``[T]``) -> features ``[K, B, C, T // hop]`` (or ``[K, C, T // hop]``)."""
        x, was_1d = feat.check_audio(audio)
        k, n = self.n_chips, x.shape[0]
        b = self.b.repeat_interleave(n, dim=0)
        a = self.a.repeat_interleave(n, dim=0)
        if self.noise_std is None:
            env = feat.envelopes(x.repeat(k, 1), b, a, self.sample_rate, self.features)
        else:
            # one seed for every chip and the items keyed modulo the clips: chip j's clip i draws
            # the noise (seed, i, c, t) of the chip's own call on the clips
            env = feat.envelopes(x.repeat(k, 1), b, a, self.sample_rate, self.features,
                                 noise_std=self.noise_std.repeat_interleave(n, dim=0), seed=torch_seed(),
                                 noise_batch=n)
        out = feat.post_process(env.reshape(k, n, *env.shape[1:]), self.features)
        return out[:, 0] if was_1d else out
