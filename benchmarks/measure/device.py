"""Device, precision and backend settings: everything that changes what is timed, explicit.

Numerics are a dtype: ``fp32`` (true fp32: TF32 off for CUDA matmuls *and*
cuDNN convolutions, although PyTorch's default leaves cuDNN's on), ``tf32``
(fp32 tensors, TF32 tensor-core math in CUDA matmuls and convolutions), and
``bf16``/``fp16`` (autocast, TF32 off for what stays in fp32). The other
switches are ``Backend`` flags; each is recorded in every row it applies to.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypeVar, cast

import torch
from torch import nn

DTYPES = {
    "fp32": torch.float32,
    "tf32": torch.float32,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}
CUDA_ONLY_DTYPES = ("tf32",)
COMPILE_BACKEND = "inductor"  # torch.compile's backend (tests swap in "eager")


def setting(meaning: str) -> Any:
    """A backend setting: off by default, a column of every row (its meaning for the schema)."""
    return field(default=False, metadata={"unit": "", "meaning": meaning})


@dataclass(frozen=True)
class Backend:
    """Execution settings beside the dtype (all off by default, as in PyTorch but for TF32).

    ``compile``: the first call (compilation) is timed apart, as compile_s.
    ``cuda_graphs``: inference is captured once in a CUDA graph and replayed.
    """

    channels_last: bool = setting("model and inputs in channels-last (NHWC) layout")
    cudnn_benchmark: bool = setting("cuDNN autotuned its algorithms per shape (CUDA)")
    compile: bool = setting("torch.compile'd (the first call, compiling, is not timed)")
    cuda_graphs: bool = setting("inference replayed from a CUDA graph (CUDA)")

    def columns(self) -> dict[str, bool]:
        """The settings as row columns."""
        return asdict(self)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(item.name for item in fields(cls))

    def check(self, device: torch.device) -> None:
        """ValueError for a setting the device cannot honour."""
        for name in ("cudnn_benchmark", "cuda_graphs"):
            flag = name.replace("_", "-")
            if getattr(self, name) and device.type != "cuda":
                raise ValueError(f"{flag} needs a CUDA device (--no-{flag} runs without it)")

    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def apply(self, device: torch.device) -> None:
        """Set cuDNN's autotuning, a process-wide switch, to this job's value (every job
        sets it, so none inherits the previous job's)."""
        torch.backends.cudnn.benchmark = self.cudnn_benchmark and device.type == "cuda"


DEFAULT_BACKEND = Backend()


def resolve_device(name: str) -> torch.device:
    """'auto' is CUDA when available, else the CPU; 'cuda' without a GPU is a ValueError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for (--device or the suite): no CUDA device here")
    return device


def check_dtype(dtype: str, device: torch.device) -> None:
    """ValueError for a dtype that means nothing on ``device`` (tf32 on the CPU)."""
    if dtype in CUDA_ONLY_DTYPES and device.type != "cuda":
        raise ValueError(f"{dtype} is a CUDA setting; on the {device.type} use fp32")


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so a timer read afterwards has seen them finish."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def use_math(dtype: str) -> None:
    """Switch TF32 for CUDA matmuls and cuDNN convolutions on for tf32 and off for every
    other dtype, process-wide, forward and backward. Every job and calibration calls it
    first: fp32 is then true fp32 (PyTorch's default leaves cuDNN's TF32 on)."""
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = dtype == "tf32"


def precision(
    device: torch.device, dtype: str, *, cache: bool = True
) -> contextlib.AbstractContextManager:
    """Autocast the block to bf16/fp16; fp32 and tf32 run as they are (see use_math).
    ``cache=False`` turns off autocast's weight-cast cache, which a call captured in a
    CUDA graph must not use."""
    if DTYPES[dtype] is torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[dtype], cache_enabled=cache)


def grad_scaler(device: torch.device, dtype: str) -> torch.amp.GradScaler:
    """Loss scaling for fp16 training, so small gradients do not underflow; a
    pass-through for every other dtype (bf16 has fp32's exponent range)."""
    return torch.amp.GradScaler(device.type, enabled=dtype == "fp16")


Compilable = TypeVar("Compilable", bound=Callable[..., Any])


def compiled(function: Compilable, enabled: bool) -> Compilable:
    """``torch.compile(function)`` when enabled (a module or a function), else ``function``;
    a compiled function is called as the original is."""
    if not enabled:
        return function
    return cast(Compilable, torch.compile(function, backend=COMPILE_BACKEND))


def to_device(model: nn.Module, device: torch.device, backend: Backend) -> nn.Module:
    """The model on ``device`` in the backend's memory layout."""
    return model.to(device).to(memory_format=backend.memory_format())


def graphed(call: Callable[[], torch.Tensor], device: torch.device) -> Callable[[], torch.Tensor]:
    """``call`` captured once in a CUDA graph: each later call replays its kernels on the
    same (static) inputs, without Python or launch overhead, and returns the same output
    tensor, overwritten. Warmed up on a side stream first, as the capture requires."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(3):
            call()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        output = call()

    def replay() -> torch.Tensor:
        graph.replay()
        return output

    return replay
