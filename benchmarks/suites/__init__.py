"""Suites: named experiment matrices shipped as TOML files beside this module.

A suite file (a user's own too, passed by path) has these keys, all optional
but ``architectures``:

    description = "what the suite is for"
    architectures = ["resnet20", "plain*", {arch = "resnet20_grouped", config = {groups = 8}}]
    batch_sizes = [1, 64]          # inference rows, one per batch size
    train_batch_size = 32          # a training-step row at this batch size; 0 for none
    dtype = "fp32"                 # fp32, bf16 or fp16 (autocast)
    device = "auto"                # auto, cpu or cuda
    input_size = 32                # square image side; default: each architecture's own
    dataset = "mnist5k"            # mnist5k, cifar10, cifar100, imagefolder:PATH; none: synthetic
    seeds = [0, 1, 2]              # one training row per seed
    measure = ["flops", "time", "memory", "accuracy"]

    [training]                     # see benchmarks.train.TrainConfig: the budget and recipe
    epochs = 10
    lr = 0.1
    time_budget_s = 60

    [timing]                       # see benchmarks.measure.latency.TimingConfig
    warmup = 5
    min_samples = 20
    min_time_s = 1.0
    max_samples = 500
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import architectures
from architectures._registry import unknown_name_message
from benchmarks.errors import UserError
from benchmarks.measure.device import DTYPES
from benchmarks.measure.latency import TimingConfig
from benchmarks.train import TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MEASUREMENTS = ("flops", "time", "memory", "accuracy")


@dataclass(frozen=True)
class Entry:
    """One architecture of a suite, with config overrides."""

    arch: str
    config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def config_json(self) -> str:
        return json.dumps(dict(self.config), sort_keys=True)


@dataclass(frozen=True)
class Suite:
    name: str
    entries: tuple[Entry, ...]
    description: str = ""
    batch_sizes: tuple[int, ...] = (1, 64)
    train_batch_size: int = 32
    dtype: str = "fp32"
    device: str = "auto"
    input_size: int | None = None
    dataset: str | None = None
    seeds: tuple[int, ...] = (0,)
    measure: tuple[str, ...] = MEASUREMENTS
    timing: TimingConfig = field(default_factory=TimingConfig)
    training: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if not self.entries:
            raise UserError(f"suite {self.name!r} has no architectures")
        if not self.batch_sizes or any(b < 1 for b in self.batch_sizes):
            raise UserError(f"batch sizes must be positive integers, not {list(self.batch_sizes)}")
        if self.train_batch_size < 0 or self.train_batch_size == 1:
            raise UserError("train_batch_size must be 0 (no training rows) or at least 2")
        if self.dtype not in DTYPES:
            raise UserError(f"dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        if self.input_size is not None and self.input_size < 1:
            raise UserError(f"input_size must be positive, not {self.input_size}")
        unknown = sorted(set(self.measure) - set(MEASUREMENTS))
        if unknown:
            raise UserError(f"unknown measurement {unknown}; choose from {', '.join(MEASUREMENTS)}")
        if self.dataset is not None and self.input_size is not None:
            raise UserError("input_size applies to synthetic inputs; a data set fixes its own")
        if not self.seeds or len(set(self.seeds)) < len(self.seeds):
            raise UserError(f"seeds must be distinct integers, not {list(self.seeds)}")
        for entry in self.entries:  # unknown names and config keys fail here, before any work
            arch = architectures.spec(entry.arch)
            arch.config(**entry.config)
            if self.dataset and arch.input_kind is not architectures.InputKind.IMAGE:
                kind = arch.input_kind.value
                raise UserError(
                    f"{entry.arch} takes {kind}; the data set {self.dataset} has images only"
                )

    def replace(self, **changes: Any) -> Suite:
        return dataclasses.replace(self, **changes)

    @property
    def measures_accuracy(self) -> bool:
        """Training to accuracy needs a data set and training rows."""
        return "accuracy" in self.measure and self.dataset is not None and self.train_batch_size > 0


def shipped_suites() -> list[str]:
    """Names of the suites shipped with archbench."""
    files = importlib.resources.files(__name__).iterdir()
    return sorted(f.name.removesuffix(".toml") for f in files if f.name.endswith(".toml"))


def load_suite(name_or_path: str) -> Suite:
    """A shipped suite by name, or a suite file by path."""
    if name_or_path.endswith(".toml") or Path(name_or_path).exists():
        path = Path(name_or_path)
        if not path.is_file():
            raise UserError(f"suite file {path} does not exist")
        return parse_suite(path.stem, path.read_text(), source=str(path))
    if name_or_path not in shipped_suites():
        raise UserError(
            unknown_name_message(
                name_or_path,
                shipped_suites(),
                kind="suite",
                see=f"shipped: {', '.join(shipped_suites())}; or give a .toml file",
            )
        )
    text = importlib.resources.files(__name__).joinpath(f"{name_or_path}.toml").read_text()
    return parse_suite(name_or_path, text, source=name_or_path)


def parse_suite(name: str, text: str, *, source: str) -> Suite:
    """Validate a suite's TOML; any problem is one UserError naming ``source``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"suite {source} is not valid TOML: {error}") from None
    known = {f.name for f in dataclasses.fields(Suite)} - {"name", "entries"} | {"architectures"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(
            f"suite {source}: unknown key {unknown}; valid keys: {', '.join(sorted(known))}"
        )
    if "architectures" not in data:
        raise UserError(f"suite {source} has no 'architectures' list")
    try:
        entries = expand_entries(data.pop("architectures"))
        timing = TimingConfig(**data.pop("timing", {}))
        training = TrainConfig(**data.pop("training", {}))
        settings = {
            key: tuple(value) if isinstance(value, list) else value for key, value in data.items()
        }
        return Suite(name=name, entries=entries, timing=timing, training=training, **settings)
    except (TypeError, ValueError) as error:
        raise UserError(f"suite {source}: {error}") from None


def expand_entries(items: list[Any]) -> tuple[Entry, ...]:
    """Names, wildcard patterns and {arch, config} tables, in order, without repeats."""
    entries: list[Entry] = []
    for item in items:
        if isinstance(item, str) and any(char in item for char in "*?["):
            matched = architectures.list_architectures(item)
            if not matched:
                raise UserError(f"no architecture matches {item!r}")
            entries += [Entry(name) for name in matched]
        elif isinstance(item, str):
            entries.append(Entry(item))
        elif isinstance(item, dict) and set(item) <= {"arch", "config"} and "arch" in item:
            entries.append(Entry(item["arch"], item.get("config", {})))
        else:
            raise UserError(
                f"an architecture entry must be a name or {{arch, config}}, not {item!r}"
            )
    unique = {(entry.arch, entry.config_json): entry for entry in entries}
    return tuple(unique.values())
