"""Depthwise-separable CNN (DS-CNN) keyword classifier.

The classifier reads the front end's feature map ``[B, C, F]`` (C filter-bank
channels, F frames) as a one-plane image with time on the first and frequency on
the second axis, the layout of the DS-CNN of Zhang et al., "Hello Edge: Keyword
Spotting on Microcontrollers" (2017):

    input norm -> conv (kt x kf, stride st x sf) -> BN -> ReLU
               -> depth x [depthwise 3x3 -> BN -> ReLU -> pointwise 1x1 -> BN -> ReLU]
               -> global average pool -> dropout -> linear

Input normalisation (``input_norm``):

- ``"clip"``: subtract each clip's mean log-feature (one scalar per clip) and then
  apply a per-channel affine BatchNorm.  For log features, an input gain change
  is an additive constant, so this makes the classifier invariant to recording
  level, which matters when a model trained on synthetic speech meets real
  microphones.
- ``"batch"``: per-channel BatchNorm only.
- ``"none"``: features are used as they come.

The first convolution's stride (default 4 frames x 2 channels) sets the time
resolution of the network: with 10 ms feature frames it works on 40 ms steps,
the resolution of Hello Edge's DS-CNN (40 ms windows, 20 ms hop, stride 2),
and halves the compute of a stride-2 map.

The default (width 64, depth 4, first kernel 8x4) has 22,700 trainable
parameters, the size of the paper's 22k classifier; :func:`DSCNN.num_parameters`
and :meth:`DSCNN.summary` report it.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DSCNN"]

_NORMS = ("clip", "batch", "none")


class _DSBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.depthwise = nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.pointwise = nn.Conv2d(width, width, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.depthwise(x)))
        return torch.relu(self.bn2(self.pointwise(x)))


class DSCNN(nn.Module):
    """DS-CNN over a ``[B, C, F]`` feature map; returns logits ``[B, n_classes]``.

    Args:
        n_channels: number of filter-bank channels C (the frequency axis).
        n_classes: number of output classes (12 for the Speech Commands task).
        width: feature maps of every convolution.
        depth: number of depthwise-separable blocks.
        first_kernel: (time, frequency) kernel of the first convolution.
        stride: (time, frequency) stride of the first convolution.
        dropout: dropout before the final linear layer.
        input_norm: ``"clip"``, ``"batch"`` or ``"none"`` (see the module doc).
    """

    def __init__(self, n_channels: int = 16, n_classes: int = 12, *, width: int = 64,
                 depth: int = 4, first_kernel: tuple[int, int] = (8, 4),
                 stride: tuple[int, int] = (4, 2), dropout: float = 0.1, input_norm: str = "clip"):
        super().__init__()
        for name, val in (("n_channels", n_channels), ("n_classes", n_classes),
                          ("width", width)):
            if int(val) < 1:
                raise ValueError(f"DSCNN: {name} must be a positive integer, got {val!r}")
        if int(depth) < 0:
            raise ValueError(f"DSCNN: depth must be >= 0, got {depth!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"DSCNN: dropout must be in [0, 1), got {dropout!r}")
        if input_norm not in _NORMS:
            raise ValueError(f"DSCNN: input_norm must be one of {_NORMS}, got {input_norm!r}")
        kt, kf = (int(k) for k in first_kernel)
        if kt < 1 or kf < 1:
            raise ValueError(f"DSCNN: first_kernel must be two positive integers, got {first_kernel!r}")
        self.n_channels, self.n_classes = int(n_channels), int(n_classes)
        self.width, self.depth, self.input_norm = int(width), int(depth), input_norm
        st, sf = (int(k) for k in stride)
        if st < 1 or sf < 1:
            raise ValueError(f"DSCNN: stride must be two positive integers, got {stride!r}")
        self.first_kernel, self.stride = (kt, kf), (st, sf)
        self.norm = nn.BatchNorm1d(self.n_channels) if input_norm != "none" else None
        # 'same'-style padding so that a 16-channel map survives the stride.
        self.conv = nn.Conv2d(1, self.width, (kt, kf), stride=(st, sf), padding=(kt // 2, kf // 2),
                              bias=False)
        self.bn = nn.BatchNorm2d(self.width)
        self.blocks = nn.Sequential(*[_DSBlock(self.width) for _ in range(self.depth)])
        self.dropout = nn.Dropout(float(dropout))
        self.fc = nn.Linear(self.width, self.n_classes)

    def config(self) -> dict:
        """Constructor arguments (JSON-serialisable) that rebuild this model."""
        return {"n_channels": self.n_channels, "n_classes": self.n_classes, "width": self.width,
                "depth": self.depth, "first_kernel": list(self.first_kernel),
                "stride": list(self.stride),
                "dropout": self.dropout.p, "input_norm": self.input_norm}

    def normalise(self, feats: torch.Tensor) -> torch.Tensor:
        """Apply the input normalisation to ``[B, C, F]`` features."""
        if self.input_norm == "clip":
            feats = feats - feats.mean(dim=(1, 2), keepdim=True)
        if self.norm is not None:
            feats = self.norm(feats)
        return feats

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        if feats.dim() != 3 or feats.shape[1] != self.n_channels:
            raise ValueError(f"DSCNN expects features [batch, {self.n_channels} channels, frames], "
                             f"got shape {tuple(feats.shape)}")
        x = self.normalise(feats)
        x = x.transpose(1, 2).unsqueeze(1)  # [B, 1, F (time), C (frequency)]
        x = torch.relu(self.bn(self.conv(x)))
        x = self.blocks(x)
        x = x.mean(dim=(2, 3))
        return self.fc(self.dropout(x))

    def num_parameters(self) -> int:
        """Number of trainable parameters (BatchNorm running statistics excluded)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def summary(self) -> str:
        """One line: architecture and parameter count."""
        return (f"DSCNN(width={self.width}, depth={self.depth}, first_kernel={self.first_kernel}, "
                f"stride={self.stride}, "
                f"input_norm={self.input_norm!r}): {self.num_parameters():,} parameters")
