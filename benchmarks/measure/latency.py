"""Latency and throughput: many individually timed calls after a warm-up.

Every call is timed on its own, so the raw samples can be compared later
(``archbench compare`` tests them with Mann-Whitney U). On the CPU a call is
timed with ``time.perf_counter``; on CUDA with a pair of CUDA events around it
and a synchronisation after it (``timer_for``). Sampling stops once both ``min_samples`` calls
and ``min_time_s`` seconds are reached, or at ``max_samples``.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from benchmarks.measure.device import precision, synchronize
from benchmarks.measure.memory import freed_memory_kept


@dataclass(frozen=True)
class TimingConfig:
    warmup: int = 5
    min_samples: int = 20
    max_samples: int = 500
    min_time_s: float = 1.0

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.min_samples < 1 or self.max_samples < self.min_samples:
            raise ValueError(f"invalid timing settings {self}")
        if not 0 <= self.min_time_s < math.inf:
            raise ValueError(f"min_time_s must be 0 or more seconds, not {self.min_time_s}")


DEFAULT_TIMING = TimingConfig()


@dataclass(frozen=True)
class Timing:
    """Seconds per call: the raw samples and their summary statistics."""

    samples: tuple[float, ...]

    def quantile(self, q: float) -> float:
        """Linear-interpolated quantile, like numpy's default."""
        ordered = sorted(self.samples)
        position = q * (len(ordered) - 1)
        low = int(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p90(self) -> float:
        return self.quantile(0.9)

    @property
    def iqr(self) -> float:
        return self.quantile(0.75) - self.quantile(0.25)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples)


Timer = Callable[[Callable[[], object]], float]  # runs a call once; its seconds


def wall_clock_timer(clock: Callable[[], float] = time.perf_counter) -> Timer:
    """Times a call by the host clock (the CPU's timer; the CUDA timer's twin in tests)."""

    def timed(call: Callable[[], object]) -> float:
        begin = clock()
        call()
        return clock() - begin

    return timed


def cuda_event_timer() -> Timer:
    """Times a call by CUDA events recorded around it on the current stream: the GPU's
    time from the first kernel queued to the last one finished, read after a sync."""

    def timed(call: Callable[[], object]) -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        call()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3

    return timed


def timer_for(device: torch.device, clock: Callable[[], float] = time.perf_counter) -> Timer:
    """CUDA events on a GPU, else ``clock``."""
    return cuda_event_timer() if device.type == "cuda" else wall_clock_timer(clock)


def time_calls(
    call: Callable[[], object],
    device: torch.device,
    config: TimingConfig = DEFAULT_TIMING,
    clock: Callable[[], float] = time.perf_counter,
    timer: Timer | None = None,
) -> Timing:
    """Warm up, then time ``call`` once per sample (by ``timer``, default the device's)
    until the config is satisfied; ``clock`` measures the time spent sampling. Freed
    memory is kept for reuse meanwhile (``memory.freed_memory_kept``)."""
    timer = timer or timer_for(device, clock)
    with freed_memory_kept():
        for _ in range(config.warmup):
            call()
        synchronize(device)
        samples: list[float] = []
        started = clock()
        while len(samples) < config.max_samples and (
            len(samples) < config.min_samples or clock() - started < config.min_time_s
        ):
            samples.append(timer(call))
    return Timing(tuple(samples))


def inference_call(
    model: nn.Module, inputs: Sequence[torch.Tensor], device: torch.device, dtype: str
) -> Callable[[], torch.Tensor]:
    """One forward pass in eval mode under ``torch.inference_mode`` and the precision
    asked (without autocast's weight cache, so that the call can be graphed)."""
    model.eval()

    def call() -> torch.Tensor:
        with torch.inference_mode(), precision(device, dtype, cache=False):
            return model(*inputs)

    return call
