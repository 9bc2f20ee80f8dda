"""Image classification: image nets on mnist5k, CIFAR-10/100 and ImageFolder trees.

The data set lives on the training device as one uint8 tensor. Each batch is
sliced from a shuffled index, augmented there (random crop from a 4-pixel
zero padding, horizontal flip where the data set allows it) and normalised by
the training set's per-channel mean and std: no per-sample Python, no
DataLoader workers. The job's backend settings apply (channels_last, and
torch.compile of the training forward; evaluation runs the eager model).
Top-1 accuracy is its one metric: no floors beyond chance.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from architectures import InputKind
from benchmarks.data import IMAGE_SETS, ImageDataset, load_images, provides_images
from benchmarks.errors import UserError
from benchmarks.measure.device import DEFAULT_BACKEND, Backend, compiled, precision, to_device
from benchmarks.tasks import Forward, Task, register
from benchmarks.train import (
    Batch,
    Normalizer,
    Split,
    TrainConfig,
    TrainResult,
    fit,
    full_batches,
    holdout,
    shuffled_batches,
)


def augment(
    images: torch.Tensor, generator: torch.Generator, *, flip: bool, padding: int = 4
) -> torch.Tensor:
    """Random crops of ``images`` (B, C, H, W) from a zero padding, and random flips."""
    batch, _, height, width = images.shape
    padded = F.pad(images, (padding,) * 4)
    device = images.device
    dy = torch.randint(0, 2 * padding + 1, (batch, 1), generator=generator, device=device)
    dx = torch.randint(0, 2 * padding + 1, (batch, 1), generator=generator, device=device)
    rows = (dy + torch.arange(height, device=device))[:, :, None]
    cols = (dx + torch.arange(width, device=device))[:, None, :]
    samples = torch.arange(batch, device=device)[:, None, None]
    crops = padded[samples, :, rows, cols].permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C, H, W)
    if flip:
        flipped = torch.rand(batch, generator=generator, device=device) < 0.5
        crops = torch.where(flipped[:, None, None, None], crops.flip(3), crops)
    return crops


def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    normalize: Normalizer,
    *,
    batch_size: int,
    device: torch.device,
    dtype: str = "fp32",
) -> float:
    """Top-1 accuracy of ``model`` on device-resident uint8 ``images``."""
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=device)
    with torch.inference_mode(), precision(device, dtype):
        for start in range(0, len(labels), batch_size):
            logits = model(normalize(images[start : start + batch_size]))
            correct += (logits.argmax(1) == labels[start : start + batch_size]).sum()
    return correct.item() / len(labels)


def train(
    model: nn.Module,
    data: ImageDataset,
    config: TrainConfig,
    *,
    batch_size: int,
    device: torch.device,
    dtype: str = "fp32",
    seed: int = 0,
    backend: Backend = DEFAULT_BACKEND,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train an image classifier under ``config``'s budget on all but the held-out part
    of its training images, validating (and testing, for the curves) after each epoch."""
    if config.curriculum_epochs:
        raise UserError(
            "curriculum_epochs is a visual question answering recipe, not a classifier's"
        )
    dataset = data.subset(config.train_subset, seed=0) if config.train_subset else data
    model = to_device(model, device, backend)
    forward = compiled(model, backend.compile)
    generator = torch.Generator(device=device).manual_seed(seed)
    kept, held = holdout(len(dataset.train_labels), config)
    images, labels = dataset.train_images[kept].to(device), dataset.train_labels[kept].to(device)
    val_images, val_labels = (
        t[held].to(device) for t in (dataset.train_images, dataset.train_labels)
    )
    test_images, test_labels = dataset.test_images.to(device), dataset.test_labels.to(device)
    normalize = Normalizer(images, backend.channels_last)

    def batch(inputs: torch.Tensor, index: torch.Tensor) -> Batch:
        return forward(inputs), labels[index]

    def batches() -> Iterator[Callable[[], Batch]]:
        for index in shuffled_batches(len(labels), batch_size, generator, device):
            inputs = normalize(augment(images[index], generator, flip=dataset.flip))
            yield functools.partial(batch, inputs, index)

    def accuracy(images: torch.Tensor, labels: torch.Tensor) -> float:
        return evaluate(
            model, images, labels, normalize,
            batch_size=config.eval_batch_size, device=device, dtype=dtype,
        )  # fmt: skip

    def evaluate_epoch() -> dict[str, float]:
        return {
            "val_acc": accuracy(val_images, val_labels),
            "test_acc": accuracy(test_images, test_labels),
        }

    return fit(
        model, config,
        batches=batches, steps_per_epoch=full_batches(len(labels), batch_size),
        evaluate_epoch=evaluate_epoch, device=device, dtype=dtype, on_epoch=on_epoch,
        compiling=backend.compile, split=Split(len(kept), len(held), config.val_seed),
    )  # fmt: skip


def load(name: str, *, root: Path | None, download: bool, cache_dir: Path | None) -> ImageDataset:
    return load_images(name, data_root=root, download=download, cache_dir=cache_dir)


def training_batch(
    model: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    num_classes: int,
    device: torch.device,
    *,
    compile: bool,
) -> tuple[Forward, torch.Tensor]:
    """The images and random labels of a step: a forward pass of the (compiled) model."""
    targets = torch.randint(num_classes, (len(inputs[0]),), device=device)
    forward = compiled(model, compile)
    return lambda: forward(*inputs), targets


IMAGE_CLASSIFICATION = register(
    Task(
        name="image classification",
        input_kind=InputKind.IMAGE,
        datasets=", ".join(IMAGE_SETS),
        provides=provides_images,
        load=load,
        training_batch=training_batch,
        train=train,
    )
)
