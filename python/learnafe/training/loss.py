"""The co-design loss L_BPF.

    L_BPF = lambda_CE * CE(logits, labels) + lambda_I * P / P_ref + lambda_C * A / A_ref

``P`` is the filter bank's power (W) and ``A`` its capacitor area (um^2), both
differentiable functions of the bank's log-scale factors; ``P_ref`` and
``A_ref`` normalise them (a run uses the conventional design's power and area,
so the hardware terms start at 1 and read as "fraction of the hand design").
Each term is returned separately for logging.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["BPFLoss"]


class BPFLoss(nn.Module):
    """``L_BPF`` with its terms.  ``forward`` returns ``(total, terms)`` where
    ``terms`` holds detached floats ``ce``, ``power`` (P/P_ref), ``area``
    (A/A_ref) and ``total``."""

    def __init__(self, p_ref: float, a_ref: float, *, lambda_ce: float = 1.0,
                 lambda_i: float = 0.0, lambda_c: float = 0.0, label_smoothing: float = 0.0):
        super().__init__()
        for name, v in (("p_ref", p_ref), ("a_ref", a_ref)):
            if not float(v) > 0.0:
                raise ValueError(f"BPFLoss: {name} must be a positive reference value, got {v!r}")
        for name, v in (("lambda_ce", lambda_ce), ("lambda_i", lambda_i), ("lambda_c", lambda_c)):
            if float(v) < 0.0:
                raise ValueError(f"BPFLoss: {name} must be >= 0, got {v!r}")
        self.p_ref, self.a_ref = float(p_ref), float(a_ref)
        self.lambda_ce, self.lambda_i, self.lambda_c = float(lambda_ce), float(lambda_i), float(lambda_c)
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, power: torch.Tensor,
                area: torch.Tensor) -> tuple[torch.Tensor, dict]:
        ce = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        p = power / self.p_ref
        a = area / self.a_ref
        total = self.lambda_ce * ce + self.lambda_i * p + self.lambda_c * a
        terms = {"total": float(total.detach()), "ce": float(ce.detach()),
                 "power": float(p.detach()), "area": float(a.detach())}
        return total, terms
