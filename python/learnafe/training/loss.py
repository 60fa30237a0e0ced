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

Class weights (``class_weights``, e.g. :func:`unknown_class_weights` for ``cost.unknown_weight``)
weight the cross-entropy of every clip by the weight ``w_y`` of its label and normalise by the
batch's weights: ``CE_w = sum_i w_{y_i} CE_i / sum_i w_{y_i}`` (``CE_i`` the clip's label-smoothed
cross-entropy).  Weights of 1 (or None) are the unweighted mean, computed as before.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from learnafe.data.classes import UNKNOWN_LABEL

__all__ = ["BPFLoss", "distillation_loss", "weighted_cross_entropy", "unknown_class_weights"]


def unknown_class_weights(weight: float, n_classes: int) -> tuple[float, ...] | None:
    """Class weights with ``weight`` for ``unknown`` and 1 for every other class (None when
    ``weight`` is 1: the unweighted loss)."""
    if not float(weight) > 0.0:
        raise ValueError(f"unknown class weight must be > 0, got {weight!r}")
    if float(weight) == 1.0:
        return None
    if not UNKNOWN_LABEL < int(n_classes):
        raise ValueError(f"unknown class weight: the classifier has {n_classes} classes, no unknown "
                         f"label {UNKNOWN_LABEL}")
    return tuple(float(weight) if c == UNKNOWN_LABEL else 1.0 for c in range(int(n_classes)))


def weighted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, class_weights=None, *,
                           label_smoothing: float = 0.0) -> torch.Tensor:
    """``sum_i w_{y_i} CE_i / sum_i w_{y_i}`` (module doc); ``class_weights`` None: the plain
    mean ``F.cross_entropy``."""
    if class_weights is None:
        return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    w = torch.as_tensor(class_weights, dtype=logits.dtype, device=logits.device)
    if w.shape != (logits.shape[1],):
        raise ValueError(f"weighted_cross_entropy: {w.numel()} class weights for "
                         f"{logits.shape[1]} classes")
    per_clip = F.cross_entropy(logits, labels, label_smoothing=label_smoothing, reduction="none")
    wy = w[labels]
    return (wy * per_clip).sum() / wy.sum()


def distillation_loss(logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, *,
                      weight: float, temperature: float, label_smoothing: float = 0.0,
                      class_weights=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, kl)``: ``loss = (1 - weight) CE(logits, labels) + weight T^2 KL(p_teacher || p_student)``
    with ``p = softmax(. / T)``, the KL averaged over the batch; ``kl`` is the (undetached)
    KL term without the ``T^2`` factor.  No gradient flows into ``teacher_logits``;
    ``class_weights`` weight the CE term (:func:`weighted_cross_entropy`)."""
    if logits.shape != teacher_logits.shape:
        raise ValueError(f"distillation_loss: the teacher's logits {tuple(teacher_logits.shape)} do "
                         f"not match the student's {tuple(logits.shape)}")
    t = float(temperature)
    ce = weighted_cross_entropy(logits, labels, class_weights, label_smoothing=label_smoothing)
    log_s = F.log_softmax(logits / t, dim=1)
    log_t = F.log_softmax(teacher_logits.detach().to(logits.dtype) / t, dim=1)
    kl = F.kl_div(log_s, log_t, log_target=True, reduction="batchmean")
    return (1.0 - float(weight)) * ce + float(weight) * t * t * kl, kl


class BPFLoss(nn.Module):
    """``L_BPF`` with its terms (``class_weights``: per-class weights of the CE term, module
    doc).  ``forward`` returns ``(total, terms)`` where
    ``terms`` holds detached floats ``ce``, ``power`` (P/P_ref), ``area``
    (A/A_ref) and ``total``."""

    def __init__(self, p_ref: float, a_ref: float, *, lambda_ce: float = 1.0,
                 lambda_i: float = 0.0, lambda_c: float = 0.0, label_smoothing: float = 0.0,
                 distill_weight: float = 0.0, distill_temperature: float = 1.0,
                 class_weights=None):
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
        if class_weights is not None and not all(float(w) > 0.0 for w in class_weights):
            raise ValueError(f"BPFLoss: class_weights must all be > 0, got {class_weights!r}")
        self.class_weights = None if class_weights is None else tuple(float(w) for w in class_weights)

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
                                       label_smoothing=self.label_smoothing,
                                       class_weights=self.class_weights)
        else:
            ce = weighted_cross_entropy(logits, labels, self.class_weights,
                                        label_smoothing=self.label_smoothing)
        p = power / self.p_ref
        a = area / self.a_ref
        total = self.lambda_ce * ce + self.lambda_i * p + self.lambda_c * a
        terms = {"total": float(total.detach()), "ce": float(ce.detach()),
                 "power": float(p.detach()), "area": float(a.detach())}
        if kl is not None:
            terms["kl"] = float(kl.detach())
        return total, terms
