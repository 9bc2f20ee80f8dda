"""Parameter counts against the papers, and the twins' structural identities."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import architectures
from architectures.layers import SeparableConv3x3
from architectures.wide import VARIANTS
from benchmarks.measure.params import count_parameters_of

# (name, params in the paper, relative tolerance): He et al. 2016 Table 6,
# Xie et al. 2017 Table 7, Huang et al. 2017 Table 2.
PAPER_PARAMS = [
    ("resnet20", 0.27e6, 0.02),
    ("resnet32", 0.46e6, 0.02),
    ("resnet44", 0.66e6, 0.02),
    ("resnet56", 0.85e6, 0.02),
    ("resnet110", 1.7e6, 0.05),
    ("resnext29_8x64d", 34.4e6, 0.02),
    ("resnext29_16x64d", 68.1e6, 0.02),
    ("densenet40_k12", 1.0e6, 0.05),
    ("densenet_bc100_k12", 0.8e6, 0.05),
]


@pytest.mark.parametrize(("name", "paper", "tolerance"), PAPER_PARAMS)
def test_parameter_count_matches_paper(name, paper, tolerance):
    assert count_parameters_of(name).total == pytest.approx(paper, rel=tolerance)


# Zagoruyko & Komodakis 2016, Table 4 (CIFAR, parameters to 0.1M): (depth, widen, params).
WRN_TABLE_4 = [
    (40, 1, 0.6e6), (40, 2, 2.2e6), (40, 4, 8.9e6), (40, 8, 35.7e6), (28, 10, 36.5e6),
    (28, 12, 52.5e6), (22, 8, 17.2e6), (22, 10, 26.8e6), (16, 8, 11.0e6), (16, 10, 17.1e6),
]  # fmt: skip


@pytest.mark.parametrize(("depth", "widen", "paper"), WRN_TABLE_4)
def test_wide_resnet_parameters_match_the_papers_table(depth, widen, paper):
    counted = count_parameters_of("wrn16_1", depth=depth, widen=widen).total
    assert counted == pytest.approx(paper, abs=0.05e6)


def wrn_parameters(depth: int, widen: int, classes: int = 10) -> int:
    """WRN-depth-widen's parameters worked out by hand from its layers: a 3x3 stem to 16
    channels; blocks of BN, 3x3 conv, BN, 3x3 conv (and a 1x1 projection where the shape
    changes); a final BN and the linear classifier."""
    blocks = (depth - 4) // 6
    total, channels = 3 * 16 * 9, 16
    for width in (16 * widen, 32 * widen, 64 * widen):
        for _ in range(blocks):
            total += 2 * channels + 9 * channels * width + 2 * width + 9 * width * width
            total += channels * width if channels != width else 0  # the projection
            channels = width
    return total + 2 * channels + channels * classes + classes


@pytest.mark.parametrize(("depth", "widen"), VARIANTS)
def test_every_registered_wide_resnet_has_its_hand_counted_parameters(depth, widen):
    assert count_parameters_of(f"wrn{depth}_{widen}").total == wrn_parameters(depth, widen)


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_plain_net_has_exactly_its_resnet_twins_parameters(depth):
    assert count_parameters_of(f"plain{depth}") == count_parameters_of(f"resnet{depth}")


def test_plain18_is_resnet18_without_its_projection_shortcuts():
    resnet = architectures.create("resnet18_cifar")
    projections = sum(p.numel() for name, p in resnet.named_parameters() if ".shortcut." in name)
    assert projections > 0
    assert (
        count_parameters_of("plain18").total
        == count_parameters_of("resnet18_cifar").total - projections
    )


def test_groups_sweep_at_fixed_width_divides_block_conv_weights():
    """The grouped CIFAR ResNet keeps every shape; only the 3x3 block convs get `groups`."""
    dense, grouped = (
        architectures.create("resnet20"),
        architectures.create("resnet20_grouped", groups=8),
    )
    for (name, a), (_, b) in zip(dense.named_modules(), grouped.named_modules(), strict=True):
        if isinstance(a, nn.Conv2d):
            expected_groups = 8 if name.startswith("stages") else 1
            assert b.groups == expected_groups, name
            assert b.weight.numel() * expected_groups == a.weight.numel(), name


def conv_flops_by_module(model: nn.Module) -> dict[str, int]:
    """FLOPs of each module (FlopCounterMode counts convolutions and matmuls only) at 32x32."""
    with FlopCounterMode(display=False) as counter:
        model(torch.randn(1, 3, 32, 32))
    prefix = type(model).__name__ + "."
    return {
        key.removeprefix(prefix): sum(counts.values())
        for key, counts in counter.get_flop_counts().items()
    }


@pytest.mark.parametrize("depth", [20, 56])
def test_separable_twin_costs_one_over_c_out_plus_one_ninth(depth):
    """Howard et al. 2017, eq. 5: a replaced 3x3 layer costs 1/C_out + 1/9 in weights and MACs."""
    standard = architectures.create(f"resnet{depth}")
    separable = architectures.create(f"resnet{depth}_dw")
    standard_flops, separable_flops = (
        conv_flops_by_module(standard),
        conv_flops_by_module(separable),
    )
    replaced = [
        (name, module)
        for name, module in separable.named_modules()
        if isinstance(module, SeparableConv3x3)
    ]
    assert len(replaced) == 2 * 3 * (depth - 2) // 6  # two 3x3 convs per block, all replaced

    for name, module in replaced:
        conv = standard.get_submodule(name)
        assert conv.kernel_size == (3, 3) and conv.groups == 1
        ratio = 1 / conv.out_channels + 1 / 9
        separable_weights = module.depthwise[0].weight.numel() + module.pointwise.weight.numel()
        assert separable_weights == pytest.approx(conv.weight.numel() * ratio, rel=1e-9), name
        assert separable_flops[name] == pytest.approx(standard_flops[name] * ratio, rel=1e-9), name
