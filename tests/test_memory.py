"""Peak memory on the CPU (Linux /proc)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmarks.measure import memory

CPU = torch.device("cpu")
pytestmark = pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc"
)


def test_peak_sees_a_temporary_allocation_that_is_freed_again():
    baseline = memory.current_bytes(CPU)
    peak = memory.peak_bytes(lambda: torch.ones(50 * 2**20).sum(), CPU)  # 200 MiB, then freed
    assert peak - baseline >= 190 * memory.MIB
    assert memory.current_bytes(CPU) - baseline < 50 * memory.MIB


def test_memory_freed_by_an_earlier_call_does_not_hide_the_next_one():
    memory.peak_bytes(lambda: torch.ones(50 * 2**20).sum(), CPU)
    baseline = memory.current_bytes(CPU)
    peak = memory.peak_bytes(lambda: torch.ones(50 * 2**20).sum(), CPU)
    assert peak - baseline >= 190 * memory.MIB
