"""Accuracy under a stated budget: a fast, device-resident training loop.

The data set lives on the training device as one uint8 tensor. Each batch is
sliced from a shuffled index, augmented there (random crop from a 4-pixel
zero padding, horizontal flip where the data set allows it) and normalised by
the training set's per-channel mean and std: no per-sample Python, no
DataLoader workers. SGD with Nesterov momentum, weight decay, a one-cycle or
cosine learning-rate schedule and optional label smoothing (or AdamW); the
job's dtype (bf16/fp16 autocast, tf32) and backend settings (channels_last,
torch.compile of the training forward; evaluation runs the eager model). Every
epoch is a fresh permutation cut into full batches (a last, partial one would
make a compiled model compile again). ``fit`` is the loop itself, shared with
the question-answering task (train_vqa.py); ``train`` feeds it images.

The budget is a number of epochs, optionally capped by seconds of training
(evaluation excluded; with compile, the first step, which compiles, is timed apart
as ``compile_s``). The schedule follows whichever budget is nearer its end,
so the learning rate reaches zero when training stops. The test set is
evaluated after every epoch.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.data import ImageDataset
from benchmarks.measure.device import (
    DEFAULT_BACKEND,
    Backend,
    compiled,
    grad_scaler,
    precision,
    synchronize,
    to_device,
)

log = logging.getLogger(__name__)
SCHEDULES = ("onecycle", "cosine")
OPTIMIZERS = ("sgd", "adamw")


@dataclass(frozen=True)
class TrainConfig:
    """The training budget and recipe; every field is recorded in the results row."""

    epochs: int = 10
    lr: float = 0.1  # peak learning rate
    momentum: float = 0.9
    weight_decay: float = 5e-4
    optimizer: str = "sgd"  # sgd (Nesterov momentum) or adamw
    schedule: str = "onecycle"  # onecycle: linear warm-up then linear decay to 0; cosine
    warmup: float = 0.2  # fraction of the budget spent warming up
    label_smoothing: float = 0.0
    time_budget_s: float | None = None  # stop after this much training time
    target_accuracy: float | None = None  # record the time at which test accuracy reaches it
    train_subset: int | None = None  # train on this many images (fixed-seed subset)
    eval_batch_size: int = 1000

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, not {self.epochs}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {self.optimizer!r}"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"schedule must be one of {', '.join(SCHEDULES)}, not {self.schedule!r}"
            )
        if self.lr <= 0 or not 0 <= self.warmup < 1 or not 0 <= self.label_smoothing < 1:
            raise ValueError("lr must be positive, warmup and label_smoothing in [0, 1)")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise ValueError(f"time_budget_s must be positive, not {self.time_budget_s}")


@dataclass
class TrainResult:
    status: str = "ok"  # ok or diverged
    message: str = ""
    epochs_done: int = 0
    train_time_s: float = 0.0
    train_loss: float | None = None
    train_acc: float | None = None
    test_acc: float | None = None
    best_test_acc: float | None = None
    time_to_target_s: float | None = None
    train_samples_per_s: float | None = None
    train_steps: int = 0
    compile_s: float | None = None  # the first step, excluded from train_time_s
    details: dict[str, float] = field(default_factory=dict)  # the last epoch's other test metrics
    curve: list[dict[str, Any]] = field(default_factory=list)

    def columns(self) -> dict[str, Any]:
        """The result's row columns (accuracies as fractions), without status and curve."""
        skip = ("status", "message", "curve", "details")
        return {**{k: v for k, v in asdict(self).items() if k not in skip}, **self.details}


def lr_factor(progress: float, schedule: str, warmup: float) -> float:
    """Learning rate as a fraction of the peak at ``progress`` in [0, 1] of the budget."""
    progress = min(max(progress, 0.0), 1.0)
    if warmup and progress < warmup:
        return progress / warmup
    rest = (progress - warmup) / (1 - warmup)
    return 1 - rest if schedule == "onecycle" else 0.5 * (1 + math.cos(math.pi * rest))


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


class Normalizer:
    """uint8 images to floats standardised by the training set's channel mean and std."""

    def __init__(self, train_images: torch.Tensor, channels_last: bool = False) -> None:
        pixels = train_images.float().div_(255).transpose(0, 1).flatten(1)
        self.mean = pixels.mean(1)[None, :, None, None]
        self.std = pixels.std(1).clamp_min(1e-3)[None, :, None, None]
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        out = (images.float().div_(255) - self.mean.to(images.device)) / self.std.to(images.device)
        return out.contiguous(memory_format=self.memory_format)


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


Batch = tuple[torch.Tensor, torch.Tensor]  # (logits, targets) of one training step


def full_batches(count: int, batch_size: int) -> int:
    """Batches an epoch of ``count`` samples has: the full ones, or one if none is full."""
    return max(1, count // batch_size)


def shuffled_batches(
    count: int, batch_size: int, generator: torch.Generator, device: torch.device
) -> list[torch.Tensor]:
    """Index tensors of one epoch: a fresh permutation of ``count`` cut into batches of
    ``batch_size``, the last partial one dropped unless no batch is full."""
    order = torch.randperm(count, generator=generator, device=device)
    return list(order.split(batch_size))[: full_batches(count, batch_size)]


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum, or AdamW, at the config's peak learning rate."""
    if config.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=True,
        weight_decay=config.weight_decay,
    )


def fit(
    model: nn.Module,
    config: TrainConfig,
    *,
    batches: Callable[[], Iterator[Callable[[], Batch]]],
    steps_per_epoch: int,
    evaluate_epoch: Callable[[], dict[str, float]],
    device: torch.device,
    dtype: str = "fp32",
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    compiling: bool = False,
) -> TrainResult:
    """The budgeted training loop that every task shares.

    ``batches()`` yields, for one epoch, callables that run the model on one
    batch and return (logits, targets); ``evaluate_epoch()`` returns the test
    metrics after an epoch, ``test_acc`` among them. ``compiling``: the first
    step compiles; its time is kept out of the training time, as ``compile_s``.
    """
    optimizer, scaler = make_optimizer(model, config), grad_scaler(device, dtype)
    total_steps = config.epochs * steps_per_epoch
    result, step, samples = TrainResult(), 0, 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        synchronize(device)
        epoch_start = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        seen = 0
        for batch in batches():
            elapsed = result.train_time_s + time.perf_counter() - epoch_start
            budget = elapsed / config.time_budget_s if config.time_budget_s else 0.0
            progress = max(step / total_steps, budget)
            if progress >= 1:
                break
            for group in optimizer.param_groups:
                group["lr"] = config.lr * lr_factor(progress, config.schedule, config.warmup)
            timing_compilation = compiling and step == 0
            if timing_compilation:
                synchronize(device)
                compile_started = time.perf_counter()
            with precision(device, dtype):
                logits, targets = batch()
                loss = F.cross_entropy(logits, targets, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if timing_compilation:
                synchronize(device)
                result.compile_s = time.perf_counter() - compile_started
                epoch_start += result.compile_s  # off the training clock
            loss_sum += loss.detach().float() * len(targets)
            correct += (logits.argmax(1) == targets).sum()
            seen += len(targets)
            step += 1
        synchronize(device)
        result.train_time_s += time.perf_counter() - epoch_start
        if seen == 0:
            break
        samples += seen
        result.train_samples_per_s = samples / result.train_time_s
        result.train_steps = step
        train_loss = loss_sum.item() / seen
        if not math.isfinite(train_loss):
            result.status, result.message = "diverged", f"loss became {train_loss} in epoch {epoch}"
            log.warning("training diverged in epoch %d", epoch)
            break
        _record_epoch(result, epoch, train_loss, correct.item() / seen, evaluate_epoch(), config)
        if on_epoch is not None:
            on_epoch(result.curve[-1])
    return result


def train(
    model: nn.Module,
    dataset: ImageDataset,
    config: TrainConfig,
    *,
    batch_size: int,
    device: torch.device,
    dtype: str = "fp32",
    seed: int = 0,
    backend: Backend = DEFAULT_BACKEND,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train an image classifier under ``config``'s budget, testing after each epoch."""
    if config.train_subset:
        dataset = dataset.subset(config.train_subset, seed=0)
    model = to_device(model, device, backend)
    forward = compiled(model, backend.compile)
    generator = torch.Generator(device=device).manual_seed(seed)
    images, labels = dataset.train_images.to(device), dataset.train_labels.to(device)
    test_images, test_labels = dataset.test_images.to(device), dataset.test_labels.to(device)
    normalize = Normalizer(images, backend.channels_last)

    def batches() -> Iterator[Callable[[], Batch]]:
        for index in shuffled_batches(len(labels), batch_size, generator, device):
            inputs = normalize(augment(images[index], generator, flip=dataset.flip))
            yield lambda inputs=inputs, index=index: (forward(inputs), labels[index])

    def evaluate_epoch() -> dict[str, float]:
        accuracy = evaluate(
            model, test_images, test_labels, normalize,
            batch_size=config.eval_batch_size, device=device, dtype=dtype,
        )  # fmt: skip
        return {"test_acc": accuracy}

    return fit(
        model, config,
        batches=batches, steps_per_epoch=full_batches(len(labels), batch_size),
        evaluate_epoch=evaluate_epoch, device=device, dtype=dtype, on_epoch=on_epoch,
        compiling=backend.compile,
    )  # fmt: skip


def _record_epoch(
    result: TrainResult,
    epoch: int,
    train_loss: float,
    train_acc: float,
    metrics: dict[str, float],
    config: TrainConfig,
) -> None:
    test_acc = metrics["test_acc"]
    result.epochs_done = epoch
    result.train_loss, result.train_acc, result.test_acc = train_loss, train_acc, test_acc
    result.best_test_acc = max(result.best_test_acc or 0.0, test_acc)
    result.details = {key: value for key, value in metrics.items() if key != "test_acc"}
    reached = config.target_accuracy is not None and test_acc >= config.target_accuracy
    if reached and result.time_to_target_s is None:
        result.time_to_target_s = result.train_time_s
    result.curve.append(
        {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "train_time_s": result.train_time_s,
            **metrics,
        }
    )
    log.debug("epoch %d: loss %.4f, train %.4f, test %.4f", epoch, train_loss, train_acc, test_acc)
