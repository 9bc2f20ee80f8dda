"""Forward-pass timings of the quick suite's inference jobs with pytest-benchmark.

Not part of the test run (``pytest`` collects ``tests/`` only). As a
pytest-benchmark user would::

    pytest benchmarks/perf --benchmark-autosave
    pytest benchmarks/perf --benchmark-compare --benchmark-compare-fail=median:10%
    archbench compare .benchmarks/.../0001_*.json .benchmarks/.../0002_*.json

The jobs are the runner's own (``archbench run``'s inference jobs of the quick
suite: the same models, inputs and identity), so each benchmark's
``extra_info`` holds the job's identity and its parameters and MACs, and
``archbench compare`` matches it with `archbench run`'s rows.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

import architectures
from benchmarks import runner
from benchmarks.measure.flops import count_macs
from benchmarks.measure.params import count_parameters
from benchmarks.schema import Mode
from benchmarks.suites import load_suite

CPU = torch.device("cpu")
JOBS = [
    job
    for job in runner.expand_jobs(load_suite("quick"), CPU, torch.get_num_threads())
    if job.identity.mode is Mode.INFER
]


@pytest.mark.parametrize("job", JOBS, ids=[job.describe() for job in JOBS])
def test_forward(benchmark: Any, job: runner.Job) -> None:
    torch.manual_seed(job.identity.seed)
    model = architectures.create(job.identity.arch, **job.overrides()).eval()
    inputs = runner.job_inputs(job, CPU)
    macs = count_macs(model, tuple(tensor[:1] for tensor in inputs))
    benchmark.extra_info.update(
        **job.identity.record(),
        params=count_parameters(model).total,
        macs=macs,
        flops=2 * macs,
    )
    with torch.inference_mode():
        output = benchmark(model, *inputs)
    assert torch.isfinite(output).all()
