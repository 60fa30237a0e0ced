"""Mixup of training batches (Zhang et al. 2018; between-class learning of sounds, Tokozume
et al. 2018): ``augment.mixup_alpha`` > 0 mixes every training batch with a permutation of
itself, on the waveform, before the front end:

    x~_i = lam x_i + (1 - lam) x_{perm(i)},   lam ~ Beta(alpha, alpha), one lam per batch

and trains on ``lam L(y_i) + (1 - lam) L(y_{perm(i)})``.  With L_BPF that is exactly the
loss with the cross-entropy (or the distillation mix, whose teacher sees the mixed clips)
replaced by its lam-weighted pair: the hardware terms and the KL term do not depend on the
label, so they appear once.  ``lam`` and ``perm`` are drawn from a generator seeded by
``(seed, epoch, batch in epoch, rank)``, so a resumed run draws the same ones.  ``alpha`` 0
(the default) draws nothing and trains bit for bit as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Mixup", "draw_mixup", "mixed_loss"]


@dataclass(frozen=True)
class Mixup:
    """One batch's mixing weight ``lam`` and partner permutation ``perm``."""

    lam: float
    perm: torch.Tensor

    def audio(self, audio: torch.Tensor) -> torch.Tensor:
        """``lam x + (1 - lam) x[perm]`` along the batch dimension."""
        return self.lam * audio + (1.0 - self.lam) * audio[self.perm]

    def dominant(self, labels: torch.Tensor) -> torch.Tensor:
        """The label of the larger share of each mixed clip (for the training accuracy)."""
        return labels if self.lam >= 0.5 else labels[self.perm]


def draw_mixup(alpha: float, key: tuple, n: int) -> Mixup | None:
    """The mixing of a batch of ``n`` clips for the seed tuple ``key`` (None when ``alpha``
    is 0 or the batch has one clip)."""
    if not float(alpha) > 0.0 or n < 2:
        return None
    rng = np.random.default_rng([int(k) for k in key])
    lam = float(rng.beta(float(alpha), float(alpha)))
    perm = torch.from_numpy(rng.permutation(n).astype(np.int64))
    return Mixup(lam, perm)


def mixed_loss(loss_fn, out: dict, labels: torch.Tensor, teacher_logits, mix: Mixup | None):
    """``loss_fn`` (a :class:`~learnafe.training.loss.BPFLoss`) on the model's output ``out``;
    with ``mix`` the lam-weighted pair of the losses against ``labels`` and their permutation
    (module doc).  Returns ``(loss, terms)`` as ``BPFLoss`` does."""
    args = (out["logits"], labels, out["power"], out["area"])
    loss, terms = loss_fn(*args, teacher_logits=teacher_logits)
    if mix is None:
        return loss, terms
    loss2, terms2 = loss_fn(out["logits"], labels[mix.perm], out["power"], out["area"],
                            teacher_logits=teacher_logits)
    lam = mix.lam
    return lam * loss + (1.0 - lam) * loss2, {k: lam * v + (1.0 - lam) * terms2[k] for k, v in terms.items()}
