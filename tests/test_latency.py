"""Timing loop and statistics, on a fake clock."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from benchmarks.measure import memory
from benchmarks.measure.latency import Timing, TimingConfig, time_calls

CPU = torch.device("cpu")


class FakeClock:
    """Advances by the next of ``durations`` whenever the timed call runs."""

    def __init__(self, durations):
        self.now, self.durations, self.calls = 0.0, list(durations), 0

    def __call__(self) -> float:
        return self.now

    def call(self) -> None:
        self.calls += 1
        self.now += self.durations.pop(0) if self.durations else 1.0


def test_statistics_of_known_samples():
    timing = Timing(tuple(float(x) for x in range(1, 11)))  # 1..10
    assert timing.median == 5.5
    assert timing.mean == 5.5
    assert timing.quantile(0.0) == 1 and timing.quantile(1.0) == 10
    assert timing.p90 == pytest.approx(9.1)  # numpy's linear interpolation
    assert timing.iqr == pytest.approx(7.75 - 3.25)


def test_warmup_calls_are_not_timed():
    clock = FakeClock([100.0, 100.0, 1.0, 2.0, 3.0])
    config = TimingConfig(warmup=2, min_samples=3, max_samples=3, min_time_s=0)
    timing = time_calls(clock.call, CPU, config, clock=clock)
    assert timing.samples == (1.0, 2.0, 3.0)
    assert clock.calls == 5


def test_sampling_runs_until_min_time_once_min_samples_are_reached():
    clock = FakeClock([0.125] * 100)
    config = TimingConfig(warmup=0, min_samples=3, max_samples=100, min_time_s=1.0)
    timing = time_calls(clock.call, CPU, config, clock=clock)
    assert timing.samples == (0.125,) * 8  # 8 x 0.125 s reach the second


def test_slow_calls_stop_at_min_samples_and_fast_ones_at_max_samples():
    config = TimingConfig(warmup=0, min_samples=4, max_samples=50, min_time_s=1.0)
    clock = FakeClock([5.0] * 10)
    assert len(time_calls(clock.call, CPU, config, clock=clock).samples) == 4
    clock = FakeClock([1e-6] * 1000)
    assert len(time_calls(clock.call, CPU, config, clock=clock).samples) == 50


def test_invalid_timing_config():
    with pytest.raises(ValueError):
        TimingConfig(min_samples=10, max_samples=5)


def test_a_spread_over_half_the_median_is_noted():
    from benchmarks.runner import noise_note

    assert noise_note(Timing((1.0, 1.0, 1.1, 1.1, 1.2))) == ""
    note = noise_note(Timing((0.01, 0.01, 0.04, 0.09, 0.09)))
    assert note.startswith("noisy timing: IQR 80 ms over half the median 40 ms")


FAULTS_OF_TIMED_CALLS = """
import resource, statistics, torch
from benchmarks.measure.latency import TimingConfig, time_calls
faults = []
def call():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(12 * 2**20).sum()  # 48 MiB, freed again
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
config = TimingConfig(warmup=3, min_samples=9, max_samples=9, min_time_s=0)
time_calls(call, torch.device("cpu"), config)
print(statistics.median(faults[config.warmup:]))
"""


@pytest.mark.skipif(not memory.can_keep_freed_memory(), reason="glibc's allocator only")
def test_timed_calls_reuse_the_memory_they_free_rather_than_fault_it_in_anew():
    """glibc unmaps a freed block of 32 MiB or more at once, so that by default every
    call faults 12,288 fresh pages in (wrn16_2 at batch 128: 65,000 a call, 1.5x its
    time). In a fresh process, whose heap no earlier test shaped."""
    result = subprocess.run(
        [sys.executable, "-c", FAULTS_OF_TIMED_CALLS], capture_output=True, text=True, check=True
    )
    assert float(result.stdout.split()[-1]) < 1_000  # the heap settles in a few calls
