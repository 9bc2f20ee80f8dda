"""Training step time: forward, cross-entropy loss, backward and an SGD step."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.measure.device import grad_scaler, precision


def train_step_call(
    model: nn.Module,
    forward: Callable[[], torch.Tensor],
    targets: torch.Tensor,
    device: torch.device,
    dtype: str = "fp32",
) -> Callable[[], torch.Tensor]:
    """One training step of ``model`` on a fixed batch (SGD, momentum 0.9, lr 0.01):
    ``forward()`` returns the logits for ``targets``."""
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = grad_scaler(device, dtype)

    def step() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with precision(device, dtype):
            loss = F.cross_entropy(forward(), targets)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss

    return step
