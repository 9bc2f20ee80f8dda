"""Every registered architecture, the moment it is registered: shapes, gradients, config, init."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import architectures

NAMES = architectures.list_architectures()


def forward(name: str, batch_size: int = 2, **overrides) -> torch.Tensor:
    torch.manual_seed(0)
    model = architectures.create(name, **overrides)
    inputs = architectures.spec(name).example_inputs(batch_size, **overrides)
    return model(*inputs)


@pytest.mark.parametrize("name", NAMES)
def test_forward_and_backward_at_default_shape(name):
    torch.manual_seed(0)
    model = architectures.create(name)
    logits = model(*architectures.spec(name).example_inputs(2))
    num_classes = architectures.spec(name).defaults["num_classes"]
    assert logits.shape == (2, num_classes)
    assert torch.isfinite(logits).all()

    logits.logsumexp(dim=1).mean().backward()
    for parameter_name, parameter in model.named_parameters():
        assert parameter.grad is not None, f"{parameter_name} got no gradient"
        assert torch.isfinite(parameter.grad).all(), f"{parameter_name} has a non-finite gradient"


@pytest.mark.parametrize("name", NAMES)
def test_num_classes_and_single_channel_input(name):
    model = architectures.create(name, num_classes=7, in_channels=1).eval()
    with torch.no_grad():
        logits = model(*architectures.spec(name).example_inputs(2, num_classes=7, in_channels=1))
    assert logits.shape == (2, 7)


@pytest.mark.parametrize("name", NAMES)
def test_larger_input_than_default(name):
    arch = architectures.spec(name)
    model = architectures.create(name).eval()
    with torch.no_grad():
        logits = model(*arch.example_inputs(1, image_size=2 * arch.input_shape[1]))
    assert logits.shape == (1, arch.defaults["num_classes"])


@pytest.mark.parametrize("name", NAMES)
def test_he_initialisation(name):
    """Convolutions start at He et al.'s fan-out scale sqrt(2 / (k*k*C_out)); BN at 1 and 0."""
    torch.manual_seed(0)
    model = architectures.create(name)
    for module_name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and module.weight.numel() >= 4096:
            k_h, k_w = module.kernel_size
            expected = math.sqrt(2 / (module.out_channels * k_h * k_w))
            assert module.weight.std().item() == pytest.approx(expected, rel=0.1), module_name
        if isinstance(module, nn.BatchNorm2d) and module.affine:
            assert torch.all(module.weight == 1) and torch.all(module.bias == 0), module_name
