"""Forward-pass timings of the quick suite's architectures with pytest-benchmark.

Not part of the test run (``pytest`` collects ``tests/`` only). As a
pytest-benchmark user would::

    pytest benchmarks/perf --benchmark-autosave
    pytest benchmarks/perf --benchmark-compare --benchmark-compare-fail=median:10%
    archbench compare .benchmarks/.../0001_*.json .benchmarks/.../0002_*.json

Each benchmark's ``extra_info`` holds the archbench identity of the timing
(architecture, config, input shape, batch size, ...) and its parameters and
MACs, so ``archbench compare`` matches it with other files and runs.
"""

from __future__ import annotations

import pytest
import torch

import architectures
from benchmarks.measure.flops import count_macs
from benchmarks.measure.params import count_parameters
from benchmarks.suites import load_suite

QUICK = load_suite("quick")


@pytest.mark.parametrize("batch_size", QUICK.batch_sizes)
@pytest.mark.parametrize("entry", QUICK.entries, ids=[entry.arch for entry in QUICK.entries])
def test_forward(benchmark, entry, batch_size):
    spec = architectures.spec(entry.arch)
    model = architectures.create(entry.arch, **entry.config).eval()
    inputs = spec.example_inputs(batch_size, **entry.config)
    macs = count_macs(model, tuple(tensor[:1] for tensor in inputs))
    benchmark.extra_info.update(
        arch=entry.arch, config=entry.config_json, dataset="synthetic", device="cpu",
        dtype="fp32", mode="infer", batch_size=batch_size,
        input_shape="x".join(map(str, inputs[0].shape[1:])),
        params=count_parameters(model).total, macs=macs, flops=2 * macs,
    )  # fmt: skip
    with torch.inference_mode():
        output = benchmark(model, *inputs)
    assert torch.isfinite(output).all()
