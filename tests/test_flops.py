"""MAC counting: hand-computed nets, attention, grouped backward, torchvision's documented _ops."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import architectures
from benchmarks.measure import flops
from benchmarks.measure.flops import (
    attention_macs,
    count_flops,
    count_step_flops,
    module_table,
)
from benchmarks.measure.params import count_parameters


class TinyConvNet(nn.Module):
    """conv 3->8 (3x3, pad 1, bias) on 8x8, ReLU, global pool, linear 8->5."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        return self.fc(F.relu(self.conv(x)).mean((2, 3)))


def test_tiny_conv_net_by_hand():
    model = TinyConvNet()
    params = count_parameters(model)
    assert params.total == (3 * 8 * 9 + 8) + (8 * 5 + 5) == 269
    model.fc.weight.requires_grad_(False)
    assert count_parameters(model).trainable == 269 - 40

    counts = count_flops(model, (torch.randn(1, 3, 8, 8),))
    conv_macs = 8 * 8 * 8 * (3 * 9)  # output positions x output channels x (C_in * k * k)
    linear_macs = 8 * 5
    assert counts.macs == conv_macs + linear_macs
    assert counts.flops == 2 * counts.macs
    assert counts.fvcore_macs == counts.macs
    assert counts.disagreement_pct == 0


def test_grouped_and_depthwise_backward_cost_twice_the_forward():
    for groups in (1, 4, 16):
        conv = nn.Conv2d(16, 16, 3, padding=1, groups=groups, bias=False)
        x = torch.randn(2, 16, 8, 8, requires_grad=True)
        forward = 2 * 2 * 16 * 64 * (16 // groups) * 9
        total = count_step_flops(lambda: conv(x).sum().backward())  # noqa: B023
        assert total == 3 * forward, groups  # forward + grad_input + grad_weight


class SDPA(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


def test_scaled_dot_product_attention_matches_the_formula():
    q, k, v = torch.randn(2, 4, 16, 8), torch.randn(2, 4, 10, 8), torch.randn(2, 4, 10, 6)
    expected = 2 * 4 * 16 * 10 * (8 + 6)
    assert attention_macs(q.shape, k.shape, v.shape) == expected
    counts = count_flops(SDPA(), (q, k, v))
    assert counts.macs == expected
    assert counts.fvcore_macs == expected


def test_attention_backward_is_counted():
    q = torch.randn(2, 4, 16, 8, requires_grad=True)
    total = count_step_flops(lambda: F.scaled_dot_product_attention(q, q, q).sum().backward())
    assert total == 3 * 2 * attention_macs(q.shape, q.shape, q.shape)


class SelfAttention(nn.Module):
    def __init__(self, dim: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x):
        return self.attention(x, x, x, need_weights=False)[0]


def test_multihead_attention_fast_path_does_not_hide_flops():
    batch, length, dim, heads = 2, 16, 32, 4
    model = SelfAttention(dim, heads).eval()
    projections = 4 * batch * length * dim * dim  # q, k, v and output projections
    scores = attention_macs(
        (batch, heads, length, dim // heads),
        (batch, heads, length, dim // heads),
        (batch, heads, length, dim // heads),
    )
    with torch.no_grad():  # the fast path's conditions: eval and no grad
        counts = count_flops(model, (torch.randn(batch, length, dim),))
    assert counts.macs == projections + scores
    assert counts.fvcore_macs == projections + scores


# torchvision 0.29 weights' meta "_ops": GMACs of conv and matmul at 224x224, batch 1.
TORCHVISION_OPS = {
    "resnet18": 1.814,
    "resnet50": 4.089,
    "densenet121": 2.834,
    "mobilenet_v2": 0.301,
    "resnext50_32x4d": 4.23,
    "shufflenet_v2_x1_0": 0.145,
}


@pytest.mark.parametrize(("name", "gmacs"), TORCHVISION_OPS.items())
def test_torchvision_documented_ops(name, gmacs):
    counts = count_flops(
        architectures.create(f"torchvision:{name}"), (torch.randn(1, 3, 224, 224),)
    )
    assert counts.macs / 1e9 == pytest.approx(gmacs, rel=0.01)
    assert counts.fvcore_macs / 1e9 == pytest.approx(gmacs, rel=0.01)


def test_fvcore_uncounted_ops_are_collected_not_printed(capsys, caplog):
    with caplog.at_level(logging.WARNING):
        counts = count_flops(architectures.create("resnet20"), (torch.randn(1, 3, 32, 32),))
    assert counts.fvcore_uncounted.get("aten::pad", 0) > 0  # option A shortcuts pad with zeros
    captured = capsys.readouterr()
    assert captured.out == "" and "Unsupported" not in captured.err
    assert not caplog.records


def test_without_fvcore_the_count_stands_and_says_so_once(monkeypatch, caplog):
    """fvcore is an extra: without it the primary count is made, fvcore_macs left empty,
    and one warning says how to install it."""
    real_find_spec = flops.importlib.util.find_spec
    monkeypatch.setattr(
        flops.importlib.util,
        "find_spec",
        lambda name: None if name == "fvcore" else real_find_spec(name),
    )
    flops.fvcore_installed.cache_clear()
    try:
        with caplog.at_level(logging.WARNING):
            counts = [count_flops(nn.Linear(4, 3), (torch.randn(1, 4),)) for _ in range(2)]
    finally:
        flops.fvcore_installed.cache_clear()
    assert [(c.macs, c.fvcore_macs, c.fvcore_error) for c in counts] == [(12, None, None)] * 2
    assert [r.getMessage() for r in caplog.records] == [
        "fvcore is not installed: its count (fvcore_macs) is left empty; "
        "pip install 'archbench[fvcore]' to have it"
    ]


def test_module_table_adds_up():
    model = architectures.create("resnet20")
    table = module_table(model, (torch.randn(1, 3, 32, 32),), max_depth=1)
    assert list(table["module"]) == ["(model)", "stem", "stages", "head"]
    children = table.iloc[1:]
    assert children["params"].sum() == table.iloc[0]["params"] == 269_722
    assert children["macs"].sum() == table.iloc[0]["macs"]
    assert table.iloc[-1]["output_shape"] == "1x10"
