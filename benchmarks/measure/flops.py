"""Multiply-accumulates (MACs) and FLOPs, by two independent counters.

Convention (torchvision's documented ``_ops``, fvcore's "flops"): only
convolutions, matrix products and attention are counted; one multiply-add is
one MAC and FLOPs = 2 x MACs. Normalisation, activations, pooling and
element-wise additions are not counted by either counter.

- Primary: ``torch.utils.flop_counter.FlopCounterMode``, at the dispatcher, so
  it sees every conv/matmul whatever Python code issued it. torch 2.14 counts 0
  for ``scaled_dot_product_attention`` on the CPU (its CPU kernel has no
  formula) and ``nn.MultiheadAttention``'s inference fast path bypasses the
  counter; here the CPU kernels get the analytic formula and counting runs with
  autograd enabled, which turns the fast path off. Its backward formula for
  convolutions ignores ``groups``; it is replaced by a correct one.
- Second: fvcore's ``FlopCountAnalysis`` (JIT trace), given the same formula
  for attention and told to skip the ops outside the convention. The ops it
  met but could not count are returned, not printed.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import math
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

log = logging.getLogger(__name__)
aten = torch.ops.aten


def attention_macs(
    query_shape: Sequence[int], key_shape: Sequence[int], value_shape: Sequence[int]
) -> int:
    """MACs of softmax(Q K^T) V: L*S*E for the scores plus L*S*Ev for the weighted sum,
    for every batch and head. Shapes are (..., L, E), (..., S, E), (..., S, Ev)."""
    *batch, length, embed = query_shape
    source_length, value_embed = key_shape[-2], value_shape[-1]
    return math.prod(batch) * length * source_length * (embed + value_embed)


Shape = Sequence[int]


def _sdpa_forward_flops(
    query_shape: Shape, key_shape: Shape, value_shape: Shape, *args: Any, **kwargs: Any
) -> int:
    return 2 * attention_macs(query_shape, key_shape, value_shape)


def _sdpa_backward_flops(
    grad_shape: Shape,
    query_shape: Shape,
    key_shape: Shape,
    value_shape: Shape,
    *args: Any,
    **kwargs: Any,
) -> int:
    # Gradients of Q, K (through the scores) and of V, P (through the sum): twice the forward.
    return 4 * attention_macs(query_shape, key_shape, value_shape)


def _conv_backward_flops(
    grad_output_shape: Shape, input_shape: Shape, weight_shape: Shape, bias_sizes: Any,
    stride: Any, padding: Any, dilation: Any, transposed: bool, output_padding: Any,
    groups: int, output_mask: Sequence[bool], **kwargs: Any,
) -> int:  # fmt: skip
    # Each of grad_input and grad_weight costs one forward convolution. torch 2.14's own
    # formula ignores ``groups`` and counts a depthwise backward as a dense one.
    macs_per_pass = math.prod(input_shape if transposed else grad_output_shape) * math.prod(
        weight_shape[1:]
    )
    return 2 * macs_per_pass * (int(output_mask[0]) + int(output_mask[1]))


# Formulas that FlopCounterMode lacks or gets wrong, keyed by the aten op.
CORRECTED_FORMULAS = {
    aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_forward_flops,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _sdpa_backward_flops,
    aten.convolution_backward: _conv_backward_flops,
}

# fvcore counts these by default; they are outside the conv/matmul convention.
FVCORE_SKIPPED = (
    "aten::batch_norm",
    "aten::group_norm",
    "aten::layer_norm",
    "aten::instance_norm",
    "aten::adaptive_avg_pool2d",
    "aten::upsample_nearest2d",
    "aten::upsample_bilinear2d",
    "aten::grid_sampler",
)


def fvcore_handles() -> dict[str, Any]:
    """fvcore's handles for the ops of the convention (each returns MACs)."""
    from fvcore.nn import jit_handles as jh

    def attention(node_inputs: Sequence[Any], outputs: Sequence[Any]) -> int:
        return attention_macs(*(jh.get_shape(value) for value in node_inputs[:3]))

    return {
        "aten::_convolution": jh.conv_flop_jit,
        "aten::addmm": jh.addmm_flop_jit,
        "aten::bmm": jh.bmm_flop_jit,
        "aten::einsum": jh.einsum_flop_jit,
        "aten::linear": jh.linear_flop_jit,
        "aten::matmul": jh.matmul_flop_jit,
        "aten::mm": jh.matmul_flop_jit,
        "aten::scaled_dot_product_attention": attention,
        **dict.fromkeys(FVCORE_SKIPPED),  # None: known and deliberately not counted
    }


@dataclass(frozen=True)
class FlopCount:
    """Forward-pass counts for the inputs given (divide by the batch for per-sample)."""

    macs: int
    fvcore_macs: int | None
    fvcore_uncounted: dict[str, int] = field(default_factory=dict)
    fvcore_error: str | None = None

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def disagreement_pct(self) -> float | None:
        """fvcore's count relative to the primary one, in percent."""
        if self.fvcore_macs is None or self.macs == 0:
            return None
        return 100.0 * (self.fvcore_macs - self.macs) / self.macs


def flop_counter() -> FlopCounterMode:
    """FlopCounterMode with CORRECTED_FORMULAS (CPU attention, grouped conv backward)."""
    return FlopCounterMode(display=False, custom_mapping=CORRECTED_FORMULAS)


def count_macs(model: nn.Module, inputs: Sequence[torch.Tensor]) -> int:
    """Forward MACs of ``model(*inputs)`` by FlopCounterMode."""
    with flop_counter() as counter, torch.enable_grad():
        model(*inputs)
    return counter.get_total_flops() // 2


def count_step_flops(step: Callable[..., object], *args: Any) -> int:
    """FLOPs of any callable, e.g. a training step (forward + backward)."""
    with flop_counter() as counter:
        step(*args)
    return counter.get_total_flops()


def count_fvcore_macs(
    model: nn.Module, inputs: Sequence[torch.Tensor]
) -> tuple[int, dict[str, int]]:
    """Forward MACs by fvcore, and the ops it could not count (name -> occurrences)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fvcore's and the JIT tracer's own warnings
        from fvcore.nn import FlopCountAnalysis

        analysis = FlopCountAnalysis(model, tuple(inputs))
        analysis.clear_op_handles().set_op_handle(**fvcore_handles())
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        with torch.enable_grad():
            total = analysis.total()
        return int(total), dict(Counter(analysis.unsupported_ops()))


@functools.cache
def fvcore_installed() -> bool:
    """Whether fvcore is there to count beside archbench (said once when it is not)."""
    if importlib.util.find_spec("fvcore") is None:
        log.warning(
            "fvcore is not installed: its count (fvcore_macs) is left empty; "
            "pip install 'archbench[fvcore]' to have it"
        )
        return False
    return True


def count_flops(
    model: nn.Module, inputs: Sequence[torch.Tensor], *, fvcore: bool = True
) -> FlopCount:
    """Both counters on one forward pass of ``model(*inputs)`` in eval mode."""
    was_training = model.training
    model.eval()
    try:
        macs = count_macs(model, inputs)
        if not (fvcore and fvcore_installed()):
            return FlopCount(macs=macs, fvcore_macs=None)
        try:
            fvcore_macs, uncounted = count_fvcore_macs(model, inputs)
        except Exception as error:  # tracing fails on some models; the primary count stands
            log.warning("fvcore could not count %s: %s", type(model).__name__, error)
            return FlopCount(macs=macs, fvcore_macs=None, fvcore_error=str(error).splitlines()[0])
        return FlopCount(macs=macs, fvcore_macs=fvcore_macs, fvcore_uncounted=uncounted)
    finally:
        model.train(was_training)


@dataclass(frozen=True)
class LayerCost:
    """What one convolution or linear layer costs per sample, from its shapes alone."""

    macs: int
    weights: int  # its weight's entries (the bias left out)


def layer_costs(model: nn.Module, inputs: Sequence[torch.Tensor]) -> dict[str, LayerCost]:
    """Every Conv2d's and Linear's MACs for ``inputs`` (batch 1) and weight count, from
    the layer's shapes and no FLOP counter: a convolution does C_in / groups x k_h x k_w
    multiply-adds per output value, a linear layer in_features per output value."""
    outputs: dict[str, tuple[int, ...]] = {}

    def recorder(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, output: torch.Tensor) -> None:
            outputs[name] = tuple(output.shape)

        return hook

    layers = {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d | nn.Linear)
    }
    handles = [module.register_forward_hook(recorder(name)) for name, module in layers.items()]
    try:
        with torch.no_grad():
            model.eval()(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    costs = {}
    for name, layer in layers.items():
        values = math.prod(outputs[name])  # output values (batch 1)
        if isinstance(layer, nn.Conv2d):
            per_value = layer.in_channels // layer.groups * math.prod(layer.kernel_size)
        else:
            per_value = layer.in_features
        costs[name] = LayerCost(macs=values * per_value, weights=layer.weight.numel())
    return costs


def module_table(
    model: nn.Module, inputs: Sequence[torch.Tensor], max_depth: int = 2
) -> pd.DataFrame:
    """Per-module parameters, MACs and output shape, down to ``max_depth`` levels."""
    shapes: dict[str, str] = {}
    handles = [
        module.register_forward_hook(_shape_recorder(shapes, name))
        for name, module in model.named_modules()
    ]
    try:
        with flop_counter() as counter, torch.enable_grad():
            model.eval()(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    prefix = type(model).__name__
    flops = {
        key.removeprefix(prefix).removeprefix("."): sum(ops.values())
        for key, ops in counter.get_flop_counts().items()
    }
    rows = []
    for name, module in model.named_modules():
        depth = 0 if not name else name.count(".") + 1
        if depth > max_depth:
            continue
        rows.append(
            {
                "module": name or "(model)",
                "type": type(module).__name__,
                "params": sum(p.numel() for p in module.parameters()),
                "macs": flops.get(name, 0) // 2,
                "output_shape": shapes.get(name, ""),
            }
        )
    return pd.DataFrame(rows)


def _shape_recorder(shapes: dict[str, str], name: str) -> Callable[..., None]:
    def hook(module: nn.Module, args: Any, output: Any) -> None:
        if name not in shapes and isinstance(output, torch.Tensor):
            shapes[name] = "x".join(map(str, output.shape))

    return hook
