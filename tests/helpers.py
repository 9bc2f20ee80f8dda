"""Tiny architectures and settings shared by the tests (tests/ is on sys.path under pytest)."""

from __future__ import annotations

import torch
from torch import nn

from benchmarks.measure.latency import TimingConfig

FAST_TIMING = TimingConfig(warmup=1, min_samples=3, max_samples=5, min_time_s=0.0)


class TinyNet(nn.Module):
    """A conv and a linear layer: fast to build, count and time."""

    def __init__(self, *, width: int = 4, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


class BrokenNet(TinyNet):
    """Raises in forward, as a model with a bug would."""

    def forward(self, x):
        raise RuntimeError("this model is broken on purpose")


class NaNNet(TinyNet):
    """Produces NaN outputs."""

    def forward(self, x):
        return super().forward(x) * torch.nan
