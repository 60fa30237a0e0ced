"""The co-design loss L_BPF.

    L_BPF = lambda_CE * CE(logits, labels) + lambda_I * P / P_ref + lambda_C * A / A_ref

``P`` is the filter bank's power (W) and ``A`` its capacitor area (um^2), both
differentiable functions of the bank's log-scale factors; ``P_ref`` and
``A_ref`` normalise them (a run uses the conventional design's power and area,
so the hardware terms start at 1 and read as "fraction of the hand design").
Each term is returned separately for logging.

With a teacher (knowledge distillation, Hinton et al. 2015) the cross-entropy term is

    (1 - w) CE(logits, labels) + w T^2 KL(softmax(teacher / T) || softmax(logits / T))

(:func:`distillation_loss`); the hardware terms are unchanged.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["BPFLoss", "distillation_loss"]


def distillation_loss(logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, *,
                      weight: float, temperature: float,
                      label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, kl)``: ``loss = (1 - weight) CE(logits, labels) + weight T^2 KL(p_teacher || p_student)``
    with ``p = softmax(. / T)``, the KL averaged over the batch; ``kl`` is the (undetached)
    KL term without the ``T^2`` factor.  No gradient flows into ``teacher_logits``."""
    if logits.shape != teacher_logits.shape:
        raise ValueError(f"distillation_loss: the teacher's logits {tuple(teacher_logits.shape)} do "
                         f"not match the student's {tuple(logits.shape)}")
    t = float(temperature)
    ce = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    log_s = F.log_softmax(logits / t, dim=1)
    log_t = F.log_softmax(teacher_logits.detach().to(logits.dtype) / t, dim=1)
    kl = F.kl_div(log_s, log_t, log_target=True, reduction="batchmean")
    return (1.0 - float(weight)) * ce + float(weight) * t * t * kl, kl


class BPFLoss(nn.Module):
    """``L_BPF`` with its terms.  ``forward`` returns ``(total, terms)`` where
    ``terms`` holds detached floats ``ce``, ``power`` (P/P_ref), ``area``
    (A/A_ref) and ``total``."""

    def __init__(self, p_ref: float, a_ref: float, *, lambda_ce: float = 1.0,
                 lambda_i: float = 0.0, lambda_c: float = 0.0, label_smoothing: float = 0.0,
                 distill_weight: float = 0.0, distill_temperature: float = 1.0):
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
        if not 0.0 <= float(distill_weight) <= 1.0:
            raise ValueError(f"BPFLoss: distill_weight must be in [0, 1], got {distill_weight!r}")
        if not float(distill_temperature) > 0.0:
            raise ValueError(f"BPFLoss: distill_temperature must be > 0, got {distill_temperature!r}")
        self.distill_weight, self.distill_temperature = float(distill_weight), float(distill_temperature)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, power: torch.Tensor,
                area: torch.Tensor, teacher_logits: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        """``teacher_logits`` (needed when ``distill_weight`` > 0) make the CE term the
        distillation mix of :func:`distillation_loss`; ``terms`` then also holds ``kl``."""
        kl = None
        if self.distill_weight > 0.0:
            if teacher_logits is None:
                raise ValueError("BPFLoss: distill_weight > 0 needs the teacher's logits")
            ce, kl = distillation_loss(logits, teacher_logits, labels, weight=self.distill_weight,
                                       temperature=self.distill_temperature,
                                       label_smoothing=self.label_smoothing)
        else:
            ce = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        p = power / self.p_ref
        a = area / self.a_ref
        total = self.lambda_ce * ce + self.lambda_i * p + self.lambda_c * a
        terms = {"total": float(total.detach()), "ce": float(ce.detach()),
                 "power": float(p.detach()), "area": float(a.detach())}
        if kl is not None:
            terms["kl"] = float(kl.detach())
        return total, terms
