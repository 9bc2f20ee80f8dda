"""Peak memory of a measured call, on top of what was held before the model was built.

- CUDA: ``torch.cuda.max_memory_allocated`` (tensors only, not the allocator's cache).
- CPU (Linux): the process's peak resident set size (VmHWM in /proc/self/status),
  reset before the call by writing 5 to /proc/self/clear_refs. Before each
  reading, glibc's ``malloc_trim`` hands freed heap memory back to the system,
  and while the call runs glibc hands back each large block as it is freed, so
  that the resident set tracks live allocations and memory freed by an earlier
  model does not hide the next one's. Timing and training keep freed memory
  instead (``freed_memory_kept``); where their heap kept a free hole that a later
  call's blocks fit, pages of it reused and freed again still count, so a peak
  in a process shared by many jobs can read high (mobilenet_v2 at batch 128: 724
  MiB after four nets had trained, 298 MiB alone; the old settings did this too).
  ``--isolate`` (one process per job) measures each job on a fresh heap.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from benchmarks.measure.device import synchronize

log = logging.getLogger(__name__)
MIB = 2**20
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


# mallopt's parameters (glibc's malloc.h), and the two settings the harness switches between
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4
KEEP_FREED = {M_MMAP_MAX: 0, M_TRIM_THRESHOLD: 2**31 - 1}
HAND_BACK_FREED = {M_MMAP_THRESHOLD: 128 * 1024, M_TRIM_THRESHOLD: 128 * 1024, M_MMAP_MAX: 65536}


def _load_libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


_LIBC = _load_libc()
_kept_depth = 0  # how many ``freed_memory_kept`` contexts are open


def can_keep_freed_memory() -> bool:
    """Whether this process's allocator is glibc's, whose hand-back can be turned off."""
    return _LIBC is not None


@contextmanager
def freed_memory_kept() -> Iterator[None]:
    """Let glibc keep the memory the calls inside free, for the next call to reuse; hand
    it back after (glibc only; elsewhere nothing changes).

    By default glibc maps a large block apart and unmaps it when it is freed, and trims
    the heap's free top, so that each call may fault its activations in anew, a page at
    a time: at batch 128, wrn16_2 took 65,000 page faults and 1.5x the time a call, and
    densenet40_k12 1.8x the time, unless an earlier allocation happened to pin the heap
    (a training step's did). With every block from a heap that is never trimmed, each
    call reuses warm pages whatever ran before it, as under tcmalloc or jemalloc, which
    hold freed pages for reuse. Timing and training run so. (In a thread of its own, a
    block larger than the thread's heap, 64 MiB, is still mapped apart.) Contexts nest:
    memory is handed back when the outermost one ends.
    """
    global _kept_depth
    _kept_depth += 1
    _set_allocator(KEEP_FREED)
    try:
        yield
    finally:
        _kept_depth -= 1
        if _kept_depth == 0:
            hand_back_freed_memory()
            release_freed_memory()


def hand_back_freed_memory() -> None:
    """glibc's default settings, held fixed: a block of 128 KiB or more is mapped apart
    and unmapped when freed, and the heap's free top trimmed (glibc only)."""
    _set_allocator(HAND_BACK_FREED)


def _set_allocator(settings: dict[int, int]) -> None:
    if _LIBC is not None:
        for parameter, value in settings.items():
            _LIBC.mallopt(parameter, value)


def release_freed_memory() -> None:
    """Return freed heap memory to the system (glibc only), so RSS counts live memory."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def method(device: torch.device) -> str:
    """How memory is measured on ``device``, for the results row."""
    return "cuda_max_allocated" if device.type == "cuda" else "cpu_peak_rss"


def current_bytes(device: torch.device) -> int | None:
    """Memory held now: allocated CUDA tensors, or the process's resident set."""
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device)
    if not _STATUS.exists():
        return None
    release_freed_memory()
    return _status_kib("VmRSS") * 1024


def peak_bytes(call: Callable[[], object], device: torch.device) -> int | None:
    """The peak memory while ``call`` runs (None where it cannot be measured); on the CPU
    measured with freed memory handed back, then kept again inside ``freed_memory_kept``."""
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        call()
        synchronize(device)
        return torch.cuda.max_memory_allocated(device)
    hand_back_freed_memory()
    try:
        return _peak_resident_bytes(call)
    finally:
        if _kept_depth:
            _set_allocator(KEEP_FREED)


def _peak_resident_bytes(call: Callable[[], object]) -> int | None:
    release_freed_memory()
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        log.debug("cannot reset the peak RSS here; CPU peak memory is not measured")
        return None
    call()
    return _status_kib("VmHWM") * 1024


def _status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{_STATUS} has no {field}")
    return int(match.group(1))


def forward_bytes(name: str, image_size: int | None = None) -> int:
    """About the bytes the outputs of every leaf module of ``name``'s forward pass at
    batch 1 hold (what a pass that keeps them for backward needs) at images of side
    ``image_size``: counted in a pass at the model's own input size, scaled by the
    ratio of image areas (exact for convolutions; a part that grows faster, attention
    over cells, is underestimated)."""
    import architectures

    arch = architectures.spec(name)
    total = 0

    def add(module: torch.nn.Module, args: object, output: object) -> None:
        nonlocal total
        tensors = torch.utils._pytree.tree_leaves(output)
        total += sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))

    model = architectures.create(name)
    for module in model.modules():
        if not list(module.children()):
            module.register_forward_hook(add)
    with torch.no_grad():
        model.eval()(*arch.example_inputs(1))
    own_side = arch.input_shape[-1]
    return round(total * ((image_size or own_side) / own_side) ** 2)


def available_bytes() -> int | None:
    """The memory this machine has free (MemAvailable of /proc/meminfo), None elsewhere."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None
