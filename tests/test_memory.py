"""Peak memory on the CPU (Linux /proc)."""

from __future__ import annotations

import re
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


def resident_bytes() -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE).group(1)) * 1024


def test_a_peak_is_measured_with_each_freed_block_handed_back_at_once():
    """Timing and training keep freed memory; a peak measured as they leave glibc would
    count every page a call ever touched, not the most it held at once."""
    resident_after_free = []

    def call() -> None:
        torch.ones(2**27).sum()  # 512 MiB, freed
        resident_after_free.append(resident_bytes())

    with memory.freed_memory_kept():
        baseline = memory.current_bytes(CPU)
        memory.peak_bytes(call, CPU)
    assert resident_after_free[0] - baseline < 100 * memory.MIB


def allocator_settings(monkeypatch) -> list[dict[int, int]]:
    """Every setting the harness gives glibc's allocator from now on, in order."""
    settings: list[dict[int, int]] = []
    monkeypatch.setattr(memory, "_set_allocator", settings.append)
    return settings


def test_leaving_a_nested_kept_context_keeps_freed_memory_for_the_outer_one(monkeypatch):
    settings = allocator_settings(monkeypatch)
    with memory.freed_memory_kept():
        with memory.freed_memory_kept():
            pass
        assert settings[-1] == memory.KEEP_FREED
    assert settings[-1] == memory.HAND_BACK_FREED


def test_a_peak_measured_inside_a_kept_context_leaves_it_keeping_freed_memory(monkeypatch):
    settings = allocator_settings(monkeypatch)
    with memory.freed_memory_kept():
        memory.peak_bytes(lambda: None, CPU)
        assert settings[-1] == memory.KEEP_FREED
    assert settings[-1] == memory.HAND_BACK_FREED
