"""The front-end contract every filter bank implements.

A front end maps audio ``[B, T]`` (or ``[T]``) at :attr:`FrontEnd.sample_rate`
to features ``[B, C, F]`` (``C = n_channels``, ``F = T // features.hop``, in
the audio's dtype).  Implementations: the learnable analog bank
(:class:`learnafe.frontends.AnalogFilterBank`), the fixed digital bank
(:class:`learnafe.frontends.DigitalFilterBank`), the SPICE-calibrated bank
(:class:`learnafe.spice.calibrated.SpiceCalibratedBank`) and the XyloAudio 3
front end (:class:`learnafe.xylo.quantized.XyloA3Frontend`).

What training and evaluation rely on (and ``tests/test_frontend_contract.py``
checks for each of them):

* ``forward(audio)`` -> features; :meth:`feature_shape` says their shape;
* :meth:`cost` -> ``(power W, area um^2)`` scalar tensors; :attr:`has_cost`
  says whether they come from a hardware model (differentiable) or are zero;
* :meth:`forward_with_cost` -> ``(features, power, area)`` of one pass: what a
  training step uses (a circuit bank maps its parameters to the circuit once for
  all three);
* :attr:`trainable`: whether any parameter requires a gradient;
* :meth:`to_dict` / :meth:`from_dict` (the JSON spec, format :attr:`spec_format`)
  rebuild a front end giving identical features; :meth:`save` / :meth:`load`
  do the same through a file.
"""

from __future__ import annotations

import torch

from learnafe._jsonio import read_json, write_json


class FrontEnd(torch.nn.Module):
    """Base class of the front ends (see the module docstring)."""

    #: The ``"format"`` string of :meth:`to_dict`.
    spec_format: str = ""
    #: True when :meth:`cost` comes from a hardware model (power and area of a circuit).
    has_cost: bool = False

    sample_rate: float

    @property
    def n_channels(self) -> int:
        raise NotImplementedError

    @property
    def trainable(self) -> bool:
        """Whether training can change the front end (some parameter requires a gradient)."""
        return any(p.requires_grad for p in self.parameters())

    def feature_shape(self, n_samples: int) -> tuple[int, int]:
        """``(channels, frames)`` of the features of a clip of ``n_samples`` samples."""
        return self.n_channels, int(n_samples) // self.features.hop

    def power(self) -> torch.Tensor:
        """Supply power (W), a scalar tensor; zero without a hardware model."""
        return torch.zeros((), dtype=torch.float32)

    def area(self) -> torch.Tensor:
        """Capacitor area (um^2), a scalar tensor; zero without a hardware model."""
        return torch.zeros((), dtype=torch.float32)

    def cost(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(power W, area um^2)``: what the loss's hardware term uses."""
        return self.power(), self.area()

    def forward_with_cost(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(features, power W, area um^2)``: :meth:`forward` and :meth:`cost` in one pass."""
        power, area = self.cost()
        return self(audio), power, area

    def to_dict(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, spec: dict) -> "FrontEnd":
        raise NotImplementedError

    def save(self, path) -> None:
        """Write :meth:`to_dict` as JSON, atomically."""
        write_json(path, self.to_dict(), indent=1, newline=False)

    @classmethod
    def load(cls, path) -> "FrontEnd":
        """A front end from a file written by :meth:`save`."""
        return cls.from_dict(read_json(path, f"{cls.__name__} spec"))


__all__ = ["FrontEnd"]
