"""Device and precision: the settings every measurement shares, each explicit."""

from __future__ import annotations

import contextlib

import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str) -> torch.device:
    """'auto' is CUDA when available, else the CPU; 'cuda' without a GPU is a ValueError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA device")
    return device


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so a timer read afterwards has seen them finish."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, dtype: str) -> contextlib.AbstractContextManager:
    """Autocast to bf16/fp16 (mixed precision); fp32 runs as is."""
    if dtype == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[dtype])
