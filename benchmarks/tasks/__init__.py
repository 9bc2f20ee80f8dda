"""Tasks: what a net is trained and tested on, looked up by the net's input kind.

A task owns its data sets (loaded by name), the batch of a training step (the
runner times an ``OptimizerStep`` on it; training takes the same steps), its
budgeted training, and the metrics it reports beside test accuracy, each read
against a no-skill floor. The runner, the figures, the report and the CLI know
a task only through the ``Task`` protocol, so a new task is one module that
calls ``register``:

- image classification (classification.py): image nets on mnist5k, CIFAR, ImageFolder;
- visual question answering (vqa.py): image + question nets on Sort-of-CLEVR.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from architectures import InputKind
from benchmarks.errors import UserError
from benchmarks.measure.device import Backend
from benchmarks.schema import Column, declare
from benchmarks.train import TrainConfig, TrainResult


@dataclass(frozen=True)
class Metric:
    """A metric a task reports beside test accuracy, and the floor it is read against."""

    name: str  # for people: "relational"
    column: str  # its column in a row or a curve: "test_acc_rel"
    floor: str  # the column of its no-skill floor: "floor_rel"
    meaning: str

    def columns(self) -> tuple[Column, Column]:
        """Its column and its floor's, for the schema."""
        return (
            Column(self.column, "fraction", self.meaning),
            Column(self.floor, "fraction", f"no-skill floor of {self.column}"),
        )


class Data(Protocol):
    """A loaded data set: its name, the shape of one sample's first input, and the
    builder keys it fixes (classes, channels, vocabulary)."""

    @property
    def name(self) -> str: ...

    @property
    def shape(self) -> tuple[int, ...]: ...

    def model_config(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class DataSpec:
    """Where a data set comes from: everything a task's ``load`` needs, hashable."""

    name: str
    root: str | None = None
    download: bool = False
    cache_dir: str | None = None

    def load(self) -> Data:
        """The data set, loaded once per process by the task that provides it."""
        return _load_once(self)


@functools.cache
def _load_once(spec: DataSpec) -> Data:
    return for_dataset(spec.name).load(
        spec.name,
        root=Path(spec.root) if spec.root else None,
        download=spec.download,
        cache_dir=Path(spec.cache_dir) if spec.cache_dir else None,
    )


Forward = Callable[[], torch.Tensor]  # runs the model on a fixed batch: the logits


class Loader(Protocol):
    def __call__(
        self, name: str, *, root: Path | None, download: bool, cache_dir: Path | None
    ) -> Data:
        """The data set ``name`` (UserError when it is missing)."""
        ...


class StepBatch(Protocol):
    def __call__(
        self,
        model: nn.Module,
        inputs: tuple[torch.Tensor, ...],
        num_classes: int,
        device: torch.device,
        *,
        compile: bool,
    ) -> tuple[Forward, torch.Tensor]:
        """What one training step runs on random ``inputs``: (forward, targets)."""
        ...


class Trainer(Protocol):
    """Trains with train.fit, whose epoch records (train_loss, test_acc, train_time_s and
    the task's metrics) are the curves."""

    def __call__(
        self,
        model: nn.Module,
        data: Any,
        config: TrainConfig,
        *,
        batch_size: int,
        device: torch.device,
        dtype: str,
        seed: int,
        backend: Backend,
        on_epoch: Callable[[dict[str, Any]], None] | None,
    ) -> TrainResult:
        """Train a fresh ``model`` on ``data`` under ``config``'s budget, testing every
        epoch (``test_acc`` and the task's metrics and floors in each curve record)."""
        ...


@dataclass(frozen=True)
class Task:
    """One task: its data, its training step and training, its metrics and their floors."""

    name: str  # "image classification"
    input_kind: InputKind  # the nets it serves
    datasets: str  # the data set names it provides, for help and errors
    provides: Callable[[str], bool]  # whether a data set name is one of its
    load: Loader
    training_batch: StepBatch
    train: Trainer
    metrics: tuple[Metric, ...] = ()  # row columns beside test_acc, each with its floor
    breakdown: tuple[Metric, ...] = ()  # finer metrics of every epoch (curves.jsonl only)
    figure: str = ""  # the name of the figure of its metrics


_TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Serve ``task.input_kind``'s nets with ``task``; its metric columns join the schema."""
    kind = task.input_kind.name
    if kind in _TASKS:
        raise ValueError(f"input kind {kind!r} already has a task: {_TASKS[kind].name}")
    declare(*(column for metric in task.metrics for column in metric.columns()))
    _TASKS[kind] = task
    return task


def all_tasks() -> list[Task]:
    return list(_TASKS.values())


def for_input(kind: InputKind) -> Task:
    """The task that serves nets taking ``kind`` inputs."""
    if kind.name not in _TASKS:
        raise UserError(f"no task serves {kind.name} inputs")
    return _TASKS[kind.name]


def for_dataset(name: str) -> Task:
    """The task that provides the data set ``name`` (UserError naming them all)."""
    for task in _TASKS.values():
        if task.provides(name):
            return task
    names = "; ".join(task.datasets for task in _TASKS.values())
    raise UserError(f"unknown data set {name!r}; choose from {names}")


def metric_columns(task: Task, record: dict[str, Any]) -> dict[str, float]:
    """The task's metrics and floors found in ``record`` (an epoch's), for a row."""
    names = [name for metric in task.metrics for name in (metric.column, metric.floor)]
    return {name: record[name] for name in names if name in record}


from benchmarks.tasks import classification, vqa  # noqa: E402, F401  (they register)

__all__ = [
    "Data",
    "DataSpec",
    "Metric",
    "Task",
    "all_tasks",
    "for_dataset",
    "for_input",
    "metric_columns",
    "register",
]
