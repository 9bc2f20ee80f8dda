"""Peak memory of a measured call, on top of what was held before the model was built.

- CUDA: ``torch.cuda.max_memory_allocated`` (tensors only, not the allocator's cache).
- CPU (Linux): the process's peak resident set size (VmHWM in /proc/self/status),
  reset before the call by writing 5 to /proc/self/clear_refs. Before each
  reading, glibc's ``malloc_trim`` hands freed heap memory back to the system,
  so that the resident set tracks live allocations and memory freed by an
  earlier model does not hide the next one's. ``--isolate`` (one process per
  job) removes what sharing is left.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import re
from collections.abc import Callable
from pathlib import Path

import torch

from benchmarks.measure.device import synchronize

log = logging.getLogger(__name__)
MIB = 2**20
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _load_libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None


_LIBC = _load_libc()


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
    """The peak memory while ``call`` runs (None where it cannot be measured)."""
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        call()
        synchronize(device)
        return torch.cuda.max_memory_allocated(device)
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
