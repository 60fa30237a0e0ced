"""An exponential moving average of a model's weights (``optimiser.ema_decay``).

The trainer validates, keeps as the best model and deploys the average instead of
the raw weights when the decay is above zero.  After optimiser step ``n`` (1, 2, ...)
every floating-point entry of the state (parameters and buffers: the bank's
log-scale factors, the DSCNN's weights and its batch-norm statistics) moves as
``avg <- avg + (1 - d_n) (w - avg)`` with ``d_n = min(decay, (1 + n) / (10 + n))``,
the warm-up of TensorFlow's ``ExponentialMovingAverage``, so the first steps do not
drag the initial weights along; integer entries (batch-norm step counters) are
copied.  The bank's parameters live in boxes of log values (``project_``), which are
convex, so the average of projected weights stays inside them.
"""

from __future__ import annotations

import copy

import torch

__all__ = ["WeightAverage"]


class WeightAverage(torch.nn.Module):
    """A copy of ``model`` that follows its weights as an exponential moving average.

    ``module`` is the averaged model (never trained directly); its ``state_dict`` has
    the keys of ``model``'s, prefixed by ``module.``, plus the update counter.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1) for a weight average, got {decay!r}")
        self.decay = float(decay)
        self.module = copy.deepcopy(model)
        self.module.requires_grad_(False)
        self.register_buffer("updates", torch.zeros((), dtype=torch.int64))

    def rate(self) -> float:
        """The decay of the next update (after the warm-up: ``decay``)."""
        n = int(self.updates) + 1
        return min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Move the average one step towards ``model``'s current weights."""
        d = self.rate()
        own = self.module.state_dict()
        for key, value in model.state_dict().items():
            avg = own[key]
            if avg.is_floating_point():
                avg.lerp_(value.to(avg.dtype), 1.0 - d)
            else:
                avg.copy_(value)
        self.updates += 1
