"""The co-design model: front end (filter bank) + classifier, and how to build them.

:class:`CoDesignModel` is what training, evaluation and fine-tuning share:
``forward(audio [B, T], mask=None)`` returns a dict with ``logits`` and the
bank's differentiable ``power`` (W) and ``area`` (um^2), so that one
DistributedDataParallel forward covers every parameter the loss touches.

The front end is a :class:`learnafe.frontends.FrontEnd` mapping audio ``[B, T]``
to features ``[B, C, F]``; its ``cost()`` gives the hardware cost (power, area).
The learnable :class:`learnafe.frontends.AnalogFilterBank` has a circuit cost
model; the others (a SPICE-calibrated or fixed-point bank used for fine-tuning)
cost nothing in the loss, and so does any plain ``nn.Module`` front end.
"""

from __future__ import annotations

import torch
from torch import nn

from learnafe.frontends import AnalogFilterBank
from learnafe.frontends.base import FrontEnd
from learnafe.frontends.classic import SPEC_FORMAT, ClassicFilterBank
from learnafe.models import DSCNN
from learnafe.training.config import TrainConfig

__all__ = ["CoDesignModel", "build_frontend", "frontend_from_dict", "build_classifier",
           "feature_shape", "hardware_cost", "chip_frontend", "apply_feature_mask"]


def build_frontend(cfg: TrainConfig) -> nn.Module:
    """The conventional (hand-designed) bank of the configuration's ``bank`` section:
    ``n_channels`` centres log-spaced from ``f_low`` to ``f_high`` at constant ``q``, designed
    with ``gm_model`` (the same model the bank then computes with), ``output_conductance`` and
    ``min_spacing``, corner-per-batch (``corners.names``) training, the ``noise`` and
    ``mismatch`` sections (the bank's own NoiseConfig and MismatchConfig), plus the extra
    ``bank.options`` (features, bounds ...), which override the former.  Co-design starts
    from it; conventional training keeps it frozen.

    ``bank.kind`` other than ``analog`` gives the fixed classic bank of that kind
    (:class:`learnafe.frontends.classic.ClassicFilterBank`) from ``n_channels``, ``f_low``,
    ``f_high``, ``q``, ``filter_order`` and ``data.sample_rate``; ``bank.options`` then holds
    its feature options (``{"features": {...}}``)."""
    if cfg.bank.kind != "analog":
        return _classic_frontend(cfg)
    bank_cls = AnalogFilterBank
    kwargs = dict(n_channels=cfg.bank.n_channels, f_lo=cfg.bank.f_low, f_hi=cfg.bank.f_high,
                  q=cfg.bank.q if cfg.bank.q > 0 else None, sample_rate=float(cfg.data.sample_rate),
                  gm_model=cfg.bank.gm_model, output_conductance=cfg.bank.output_conductance,
                  min_spacing=cfg.bank.min_spacing)
    corners = list(cfg.corners.names)
    if corners:
        kwargs["corners"] = {"mode": "per_batch", "corners": corners}
    kwargs.update(noise=cfg.noise.bank_config(), mismatch=cfg.mismatch.bank_config())
    kwargs.update(cfg.bank.options)
    valid = set(bank_cls.option_names())
    unknown = sorted(k for k in cfg.bank.options if k not in valid)
    if unknown:
        raise ValueError(f"training option bank.options has unknown AnalogFilterBank option(s) "
                         f"{unknown}; valid: {sorted(valid)}")
    return bank_cls.conventional(**kwargs)


def _classic_frontend(cfg: TrainConfig) -> FrontEnd:
    unknown = sorted(k for k in cfg.bank.options if k != "features")
    if unknown:
        raise ValueError(f"training option bank.options has option(s) {unknown} a {cfg.bank.kind} "
                         "bank does not take; it takes only 'features'")
    for section in ("noise", "mismatch"):
        if getattr(cfg, section) != type(getattr(cfg, section))():
            raise ValueError(f"training option {section} is a setting of the analog bank's circuit; a "
                             f"{cfg.bank.kind} bank has none: leave the {section} section at its defaults "
                             "or use bank.kind analog")
    return ClassicFilterBank(cfg.bank.kind, n_channels=cfg.bank.n_channels, f_low=cfg.bank.f_low,
                             f_high=cfg.bank.f_high, sample_rate=float(cfg.data.sample_rate),
                             order=cfg.bank.filter_order, q=cfg.bank.q, features=cfg.bank.options.get("features"))


def frontend_from_dict(spec: dict) -> nn.Module:
    """Rebuild a bank from its spec (``bank.json``): the circuit spec of the analog bank, or
    a classic bank's spec (format ``learnafe-classic-bank/1``)."""
    if isinstance(spec, dict) and spec.get("format") == SPEC_FORMAT:
        return ClassicFilterBank.from_dict(spec)
    return AnalogFilterBank.from_dict(spec)


def chip_frontend(frontend: nn.Module, seed: int, sigma_i: float, sigma_c: float) -> nn.Module:
    """One sampled chip of ``frontend``: a copy whose I1, I2 (C1, C2) carry fixed random
    relative errors of standard deviation ``sigma_i`` (``sigma_c``), drawn from ``seed``
    (the bank's ``MismatchConfig`` in ``fixed`` mode)."""
    if not isinstance(frontend, AnalogFilterBank):
        raise ValueError(f"mismatch sampling needs an AnalogFilterBank, got {type(frontend).__name__}")
    spec = frontend.to_dict()
    spec["mismatch"] = {"mode": "fixed", "sigma_i": float(sigma_i), "sigma_c": float(sigma_c),
                        "seed": int(seed)}
    chip = frontend_from_dict(spec)
    chip.eval()
    return chip


def build_classifier(cfg: TrainConfig, n_channels: int, n_classes: int = 12) -> DSCNN:
    return DSCNN(n_channels, n_classes, width=cfg.classifier.width, depth=cfg.classifier.depth, dropout=cfg.classifier.dropout,
                 input_norm=cfg.classifier.input_norm)


def hardware_cost(frontend: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """``(power W, area um^2)`` as differentiable scalars; zeros if the front end has no cost model."""
    if isinstance(frontend, FrontEnd):
        return frontend.cost()
    z = torch.zeros((), dtype=torch.float32)
    return z, z


@torch.no_grad()
def feature_shape(frontend: nn.Module, n_samples: int) -> tuple[int, int]:
    """``(channels, frames)`` the front end produces for a clip of ``n_samples``."""
    was = frontend.training
    frontend.eval()
    try:
        f = frontend(torch.zeros(1, int(n_samples)))
    finally:
        frontend.train(was)
    if f.dim() != 3 or f.shape[0] != 1:
        raise ValueError(f"a front end must map audio [B, T] to features [B, C, F]; "
                         f"{type(frontend).__name__} returned shape {tuple(f.shape)}")
    return int(f.shape[1]), int(f.shape[2])


def apply_feature_mask(feats: torch.Tensor, mask: torch.Tensor | None, *,
                       detach_fill: bool = False) -> torch.Tensor:
    """SpecAugment-like masking: cells of ``feats`` ``[B, C, F]`` where ``mask`` is True
    take the clip's mean feature (the neutral value after the classifier's clip norm).
    ``detach_fill``: no gradient flows through the fill value (XyloAudio 3 QAT)."""
    if mask is None:
        return feats
    fill = feats.mean(dim=(1, 2), keepdim=True).expand_as(feats)
    return torch.where(mask, fill.detach() if detach_fill else fill, feats)


class CoDesignModel(nn.Module):
    """Front end + classifier.  ``forward(audio, mask=None) -> {"logits", "power", "area"}``.

    ``mask`` (bool ``[B, C, F]``, True = masked) replaces masked feature cells by
    the clip's mean feature before the classifier (SpecAugment-like masking).
    """

    def __init__(self, frontend: nn.Module, classifier: nn.Module):
        super().__init__()
        self.frontend = frontend
        self.classifier = classifier

    def features(self, audio: torch.Tensor) -> torch.Tensor:
        return self.frontend(audio)

    def forward(self, audio: torch.Tensor, mask: torch.Tensor | None = None) -> dict:
        if isinstance(self.frontend, FrontEnd):
            feats, power, area = self.frontend.forward_with_cost(audio)
        else:
            feats, (power, area) = self.frontend(audio), hardware_cost(self.frontend)
        feats = apply_feature_mask(feats, mask)
        return {"logits": self.classifier(feats), "power": power, "area": area}
