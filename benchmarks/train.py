"""Training under a stated budget: the recipe, the optimizer step, and the loop every task shares.

A task (benchmarks/tasks/) hands ``fit`` its batches (callables that run the
model on one batch and return logits and targets) and its evaluation; ``fit``
owns the rest: SGD with Nesterov momentum or AdamW, weight decay, a one-cycle
or cosine learning-rate schedule, optional label smoothing, the job's dtype
(bf16/fp16 autocast, with loss scaling for fp16), the budget and the
bookkeeping. Every step is an ``OptimizerStep``, the same object the runner
times for a training-step row, so the timed step is the step training takes.

The budget is work: a number of epochs, so that a seed gives the same
accuracy on a fast, slow or busy machine. A cap in seconds of training
(evaluation excluded; with compile, the first step, which compiles, is timed
apart as ``compile_s``) is there for "accuracy within T seconds" studies; a
run it stops early says so (``budget_cut``). The schedule follows whichever
budget is nearer its end, so the learning rate reaches zero when training
stops.

A task holds out a fixed, seeded part of its training set for validation
(``val_fraction``, ``val_seed``). Everything decided during training is
decided on it: the best epoch and the time to a target accuracy. The test set
decides nothing: the row reports the test accuracy of the model training ends
with (curves show it per epoch, as test accuracy).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.measure.device import grad_scaler, precision, synchronize
from benchmarks.progress import current as reporter
from benchmarks.schema import Status

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
    time_budget_s: float | None = None  # stop after this much training time (studies of time)
    target_accuracy: float | None = None  # record when validation accuracy first reaches it
    train_subset: int | None = None  # train on this many images (fixed-seed subset)
    val_fraction: float = 0.1  # of the training images, held out to decide on (seeded)
    val_seed: int = 0
    eval_batch_size: int = 1000
    curriculum_epochs: int = 0  # visual QA: the first epochs train on non-relational questions

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
        if not 0 < self.lr < math.inf:
            raise ValueError(f"lr must be a positive number, not {self.lr}")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup must be in [0, 1), not {self.warmup}")
        if not 0 <= self.label_smoothing < 1 or not 0 <= self.momentum < 1:
            raise ValueError("label_smoothing and momentum must be in [0, 1)")
        if not 0 <= self.weight_decay < math.inf:
            raise ValueError(f"weight_decay must be 0 or more, not {self.weight_decay}")
        if self.time_budget_s is not None and not 0 < self.time_budget_s < math.inf:
            raise ValueError(f"time_budget_s must be a positive number, not {self.time_budget_s}")
        if self.target_accuracy is not None and not 0 <= self.target_accuracy <= 1:
            raise ValueError(f"target_accuracy is a fraction in [0, 1], not {self.target_accuracy}")
        if self.train_subset is not None and self.train_subset < 2:
            raise ValueError(f"train_subset must be at least 2 images, not {self.train_subset}")
        if self.eval_batch_size < 1:
            raise ValueError(f"eval_batch_size must be positive, not {self.eval_batch_size}")
        if not 0 <= self.curriculum_epochs < self.epochs:
            raise ValueError(
                f"curriculum_epochs must be in [0, epochs), not {self.curriculum_epochs}"
            )
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), not {self.val_fraction}")


# An epoch whose mean training loss is not finite, or more than this many times the
# loss of the first step (the net at initialisation, about ln(classes)), has diverged: a
# learning rate far too high can keep the loss finite, at 1e20, while accuracy sits at chance.
DIVERGED_ABOVE = 100.0


@dataclass(frozen=True)
class Split:
    """How many samples a task trained on and held out for validation, and the seed."""

    train: int
    val: int
    seed: int


def holdout(count: int, config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the samples to train on and of those held out for validation: a fixed
    permutation of ``count`` by ``config.val_seed``, its first ``val_fraction`` held out
    (at least one sample on each side)."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(config.val_seed))
    held = min(max(1, round(config.val_fraction * count)), count - 1)
    return order[held:], order[:held]


@dataclass
class TrainResult:
    """What training reached: the last epoch's numbers, the curve, how it ended. Best
    epoch and time to target are decided on validation accuracy; ``test_acc`` is the
    last epoch's."""

    status: Status = Status.OK  # ok or diverged
    message: str = ""
    split: Split | None = None
    epochs_done: int = 0
    budget_cut: bool = False  # a time budget stopped training before its epochs
    train_time_s: float = 0.0
    train_loss: float | None = None
    train_acc: float | None = None
    val_acc: float | None = None
    best_val_acc: float | None = None
    best_epoch: int | None = None
    test_acc: float | None = None
    time_to_target_s: float | None = None
    train_samples_per_s: float | None = None
    train_steps: int = 0
    compile_s: float | None = None  # the first step, excluded from train_time_s
    curve: list[dict[str, Any]] = field(default_factory=list)  # one record per epoch

    @property
    def final(self) -> dict[str, Any]:
        """The last epoch's record (every metric its task evaluated), {} before one."""
        return self.curve[-1] if self.curve else {}

    def add_epoch(
        self,
        epoch: int,
        train_loss: float,
        train_acc: float,
        metrics: dict[str, float],
        target: float | None,
    ) -> None:
        """Record an epoch: its training numbers and its evaluation ``metrics`` (val_acc,
        which decides, and test_acc and the task's metrics, which are reported)."""
        val_acc, test_acc = metrics["val_acc"], metrics["test_acc"]
        self.epochs_done = epoch
        self.train_loss, self.train_acc = train_loss, train_acc
        self.val_acc, self.test_acc = val_acc, test_acc
        if self.best_val_acc is None or val_acc > self.best_val_acc:
            self.best_val_acc, self.best_epoch = val_acc, epoch
        if target is not None and val_acc >= target and self.time_to_target_s is None:
            self.time_to_target_s = self.train_time_s
        record = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc}
        self.curve.append({**record, "train_time_s": self.train_time_s, **metrics})
        log.debug("epoch %d: loss %.4f, validation %.4f", epoch, train_loss, val_acc)


def lr_factor(progress: float, schedule: str, warmup: float) -> float:
    """Learning rate as a fraction of the peak at ``progress`` in [0, 1] of the budget."""
    progress = min(max(progress, 0.0), 1.0)
    if warmup and progress < warmup:
        return progress / warmup
    rest = (progress - warmup) / (1 - warmup)
    return 1 - rest if schedule == "onecycle" else 0.5 * (1 + math.cos(math.pi * rest))


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


class Stepped(NamedTuple):
    loss: torch.Tensor
    logits: torch.Tensor
    targets: torch.Tensor


class OptimizerStep:
    """One optimizer step of the recipe on a batch: the forward and the loss under the
    dtype's autocast, zero_grad, the (fp16: scaled) backward, the step, the scaler's
    update. Training takes these steps; a training-step row times one."""

    def __init__(
        self, model: nn.Module, config: TrainConfig, device: torch.device, dtype: str
    ) -> None:
        self.optimizer = make_optimizer(model, config)
        self.scaler = grad_scaler(device, dtype)
        self.device, self.dtype = device, dtype
        self.label_smoothing = config.label_smoothing

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def __call__(self, batch: Callable[[], Batch]) -> Stepped:
        with precision(self.device, self.dtype):
            logits, targets = batch()
            loss = F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return Stepped(loss, logits, targets)


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
    split: Split | None = None,
) -> TrainResult:
    """The budgeted training loop that every task shares.

    ``batches()`` yields, for one epoch, callables that run the model on one
    batch and return (logits, targets); ``evaluate_epoch()`` returns the metrics
    after an epoch: ``val_acc`` (on the held-out ``split``), which decides the
    best epoch and the time to target, and ``test_acc`` and the task's metrics,
    which are only reported. ``compiling``: the first step compiles; its time is
    kept out of the training time, as ``compile_s``.
    """
    step = OptimizerStep(model, config, device, dtype)
    total_steps = config.epochs * steps_per_epoch
    result, steps, samples = TrainResult(split=split), 0, 0
    first_loss = math.inf  # the first step's (DIVERGED_ABOVE)
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
            progress = max(steps / total_steps, budget)
            if progress >= 1:
                result.budget_cut = steps < total_steps
                break
            step.set_lr(config.lr * lr_factor(progress, config.schedule, config.warmup))
            timing_compilation = compiling and steps == 0
            if timing_compilation:
                synchronize(device)
                compile_started = time.perf_counter()
            loss, logits, targets = step(batch)
            if steps == 0:
                first_loss = loss.item()
            if timing_compilation:
                synchronize(device)
                result.compile_s = time.perf_counter() - compile_started
                epoch_start += result.compile_s  # off the training clock
            loss_sum += loss.detach().float() * len(targets)
            correct += (logits.argmax(1) == targets).sum()
            seen += len(targets)
            steps += 1
            reporter().training_step(steps, total_steps, epoch, config.epochs)
        synchronize(device)
        result.train_time_s += time.perf_counter() - epoch_start
        if seen == 0:
            break
        samples += seen
        result.train_samples_per_s = samples / result.train_time_s
        result.train_steps = steps
        train_loss = loss_sum.item() / seen
        if not math.isfinite(train_loss) or train_loss > DIVERGED_ABOVE * first_loss:
            result.status = Status.DIVERGED
            result.message = f"loss became {train_loss:.3g} in epoch {epoch}"
            if math.isfinite(train_loss):
                result.message += (
                    f", over {DIVERGED_ABOVE:g} times the first step's {first_loss:.3g}"
                )
            log.warning("training diverged in epoch %d", epoch)
            break
        metrics = evaluate_epoch()
        result.add_epoch(epoch, train_loss, correct.item() / seen, metrics, config.target_accuracy)
        if on_epoch is not None:
            on_epoch(result.final)
    return result
