"""archbench from Python (a notebook, a script): measure any module as the harness
measures the zoo, run a suite, load a run.

    import torch
    from benchmarks import api

    row = api.measure(torch.nn.Linear(512, 10), (torch.randn(32, 512),))
    row["params"], row["macs"], row["time_median_ms"], row["peak_mem_mb"]

``measure`` returns the columns of a results row (README, "Results schema");
``run`` runs a suite into a run directory and returns its table; ``load`` reads a
run directory (or rows.jsonl / results.csv) into a DataFrame.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from architectures import Family
from benchmarks import results, runner
from benchmarks.measure import memory
from benchmarks.measure.device import resolve_device, use_math
from benchmarks.measure.latency import TimingConfig, inference_call
from benchmarks.schema import SYNTHETIC, Config, Identity, Mode
from benchmarks.suites import Suite, load_suite

log = logging.getLogger(__name__)
__all__ = ["load", "measure", "run"]


def measure(
    model: nn.Module,
    example_inputs: Sequence[torch.Tensor],
    *,
    name: str | None = None,
    device: str = "cpu",
    dtype: str = "fp32",
    threads: int | None = None,
    measure: Sequence[str] = ("flops", "time", "memory"),
    timing: TimingConfig | None = None,
) -> dict[str, Any]:
    """One forward pass of ``model(*example_inputs)`` measured as ``archbench run``
    measures an inference job: parameters, MACs and FLOPs per sample (two counters),
    latency and throughput at the inputs' batch size, and peak memory of the model (its
    parameters and buffers, and what the call allocates on top of what was held before
    it). The model is moved to ``device``; ``dtype`` is fp32, tf32 (CUDA), bf16 or fp16
    (autocast). Returns the row's columns (a dict; raw samples under
    ``time_samples_ms``)."""
    target = resolve_device(device)
    if threads is not None:
        torch.set_num_threads(threads)
    use_math(dtype)
    model = model.to(target)
    inputs = tuple(tensor.to(target) for tensor in example_inputs)
    identity = Identity(
        suite="api", arch=name or type(model).__name__, family=Family.OTHER, config=Config(),
        dataset=SYNTHETIC, device=target.type, dtype=dtype, mode=Mode.INFER,
        batch_size=len(inputs[0]), input_shape=tuple(inputs[0].shape[1:]), seed=0,
        threads=torch.get_num_threads(),
    )  # fmt: skip
    job = runner.Job(identity, timing=timing or TimingConfig())
    row = runner.measure_model(
        replace(job, measure=tuple(m for m in measure if m != "memory")), model, inputs, None, None
    )
    if "memory" in measure:  # the model's: its weights, and what its call adds to the process
        call = inference_call(model, inputs, target, dtype)
        call()  # the state libraries create on a first call is not the model's
        weights = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
        held = memory.current_bytes(target)
        baseline = None if held is None else held - weights
        row = replace(row, memory=runner.peak_memory(call, target, baseline))
    return row.record()


def run(
    suite: str | Suite = "quick", out: str | Path | None = None, **changes: Any
) -> pd.DataFrame:
    """Run a suite (a shipped name, a TOML path, or a ``Suite``) with ``changes`` to its
    settings (``Suite`` fields: ``measure=("flops", "time")``, ``batch_sizes=(1,)``...)
    into ``out`` (default: runs/NAME), on its device with torch's threads; the rows."""
    chosen = (suite if isinstance(suite, Suite) else load_suite(suite)).replace(**changes)
    folder = Path(out or f"runs/{chosen.name}")
    runner.run_suite(
        chosen, folder, device=resolve_device(chosen.device), threads=torch.get_num_threads()
    )
    return load(folder)


def load(path: str | Path) -> pd.DataFrame:
    """A run directory, rows.jsonl or results.csv as a DataFrame, one row per job."""
    return results.load(path)
