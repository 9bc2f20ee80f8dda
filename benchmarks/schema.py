"""The results schema: a row is a few typed parts, and their fields are its columns.

A row is one job's measurement: its ``Identity`` (what was measured, under
which conditions), its status, and what it measured: ``Counts``, ``Times``,
``Memory``, ``Training`` and the metrics its task adds (each task declares its
columns, see ``declare``). Each field carries its unit and meaning, so
``columns()``, the README's schema table and every writer follow from these
classes: a row cannot be written with a column they do not declare.

On disk a row is flat (``Row.record``: one column per field, None left out)
and read back by ``Row.from_record``/``Identity.from_record``, which fill in
what rows of older versions lack with the defaults they were written under.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any, ClassVar

import pandas as pd

from architectures import Family
from architectures._enum import TextEnum
from benchmarks.measure.device import Backend

SCHEMA_VERSION = 2
SAMPLES_COLUMN = "time_samples_ms"  # rows.jsonl only: every timed call, in ms
ROUNDS_COLUMN = "time_round_medians_ms"  # rows.jsonl only: each round's median (run --rounds)
RAW_COLUMNS = (SAMPLES_COLUMN, ROUNDS_COLUMN)  # lists, kept out of results.csv


class SchemaError(ValueError):
    """A row that does not fit the schema: a column it does not declare, a bad value."""


class Mode(TextEnum):
    """What a row timed: one forward pass, or one training step (and maybe training)."""

    INFER = "infer"
    TRAIN = "train"


class Status(TextEnum):
    """How a job ended."""

    OK = "ok"
    FAILED = "failed"
    OOM = "oom"
    DIVERGED = "diverged"


@dataclass(frozen=True)
class Column:
    name: str
    unit: str
    meaning: str


def column(unit: str, meaning: str, **default: Any) -> Any:
    """A dataclass field that is a column of the schema (``default=`` as for ``field``)."""
    return field(metadata={"unit": unit, "meaning": meaning}, **default)


def optional(unit: str, meaning: str) -> Any:
    """A column that a row may lack (None: not measured)."""
    return column(unit, meaning, default=None)


class Config(Mapping[str, Any]):
    """A net's config overrides: an immutable, hashable mapping, written as canonical JSON."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Any] | None = None) -> None:
        self._items = dict(sorted((items or {}).items()))

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self.json())

    def __repr__(self) -> str:
        return f"Config({self._items!r})"

    def __reduce__(self) -> tuple[type[Config], tuple[dict[str, Any]]]:
        return Config, (self._items,)

    def json(self) -> str:
        return json.dumps(self._items, sort_keys=True)

    def text(self) -> str:
        """'depth=22, growth_rate=6', for labels."""
        return ", ".join(f"{key}={value}" for key, value in self._items.items())

    @classmethod
    def parse(cls, value: object) -> Config:
        """A config from its JSON text, a mapping, or nothing (NaN, None, ''): {}."""
        if isinstance(value, Mapping):
            return cls(value)
        if not present(value) or value == "":
            return cls()
        try:
            items = json.loads(str(value))
        except json.JSONDecodeError:
            raise SchemaError(f"config {value!r} is not JSON") from None
        if not isinstance(items, dict):
            raise SchemaError(f"config {value!r} is not a JSON object")
        return cls(items)


def shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


@dataclass(frozen=True)
class Identity:
    """What a row measured and under which conditions. Every field but ``suite`` and
    ``family`` is in its key: two rows with one key measured the same thing."""

    suite: str = column("", "suite the job came from")
    arch: str = column("", "registered architecture name")
    family: Family = column("", "architecture family")
    config: Config = column("", "config overrides as JSON ({} for the registered defaults)")
    dataset: str = column("", "data set trained and evaluated on, or synthetic inputs")
    device: str = column("", "cpu or cuda")
    dtype: str = column("", "fp32 (TF32 off), tf32 (CUDA), or bf16/fp16 autocast")
    mode: Mode = column("", "infer: one forward pass; train: one optimizer step (and training)")
    batch_size: int = column("samples", "batch size of the timed call")
    input_shape: tuple[int, ...] = column("", "first input per sample: an image's C x H x W")
    seed: int = column("", "seed of initialisation, data order and augmentation")
    threads: int = column("", "torch intra-op threads")
    backend: Backend = Backend()  # its settings, each a column (measure/device.py)

    DESCRIPTIVE: ClassVar[tuple[str, ...]] = ("suite", "family")  # not in the key

    def key(self, without: Collection[str] = ()) -> tuple[Any, ...]:
        """The key for matching rows: its columns as written, minus ``without``."""
        record = self.record()
        return tuple(record[name] for name in key_fields(without))

    def record(self) -> dict[str, Any]:
        """The identity's columns as written: text for the config, shape and enums, one
        column per backend setting."""
        record = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "backend"}
        return {
            **record,
            "family": str(self.family),
            "config": self.config.json(),
            "mode": str(self.mode),
            "input_shape": shape_text(self.input_shape),
            **self.backend.columns(),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Identity:
        """The identity of a row as written (or as pandas read it back); settings that
        older rows lack were off."""
        try:
            values: dict[str, Any] = {
                "suite": _text(record.get("suite")),
                "arch": str(record["arch"]),
                "family": Family.parse(record.get("family")),
                "config": Config.parse(record.get("config")),
                "dataset": _text(record["dataset"]),
                "device": str(record["device"]),
                "dtype": str(record["dtype"]),
                "mode": Mode(record["mode"]),
                "batch_size": int(record["batch_size"]),
                "input_shape": parse_shape(record["input_shape"]),
                "seed": int(record["seed"]),
                "threads": int(record["threads"]),
            }
        except KeyError as error:
            raise SchemaError(f"a row lacks the identity column {error}") from None
        except (TypeError, ValueError) as error:
            raise SchemaError(f"a row's identity is malformed: {error}") from None
        backend = Backend(**{name: _flag(record.get(name)) for name in SETTINGS})
        return cls(**values, backend=backend)

    def label(self, details: Iterable[str] = ()) -> str:
        """The row for people: 'densenet40_k12 (depth=22)', then whichever of ``details``
        (identity fields) are asked for: 'infer b=64', 'on mnist5k', 'seed=1', and the
        conditions in brackets: '[cpu, bf16, compile, 2 threads]' (a setting when on)."""
        details = set(details)
        parts = [self.arch + (f" ({self.config.text()})" if self.config else "")]
        if "mode" in details:
            parts.append(str(self.mode))
        if "batch_size" in details:
            parts.append(f"b={self.batch_size}")
        if "dataset" in details and self.dataset != SYNTHETIC:
            parts.append(f"on {self.dataset}")
        if "seed" in details:
            parts.append(f"seed={self.seed}")
        conditions = [str(getattr(self, name)) for name in ("device", "dtype") if name in details]
        conditions += [name for name in SETTINGS if name in details and getattr(self.backend, name)]
        if "threads" in details:
            conditions.append(f"{self.threads} threads")
        return " ".join(parts) + (f" [{', '.join(conditions)}]" if conditions else "")


SYNTHETIC = "synthetic"  # the data set of rows timed on random inputs
NO_OVERRIDES = "{}"  # the config column of a net built with its registered defaults
SETTINGS = Backend.names()  # the backend settings, each an identity column
CONDITIONS = ("device", "dtype", *SETTINGS, "threads")  # what a label names where rows differ


def parse_shape(value: object) -> tuple[int, ...]:
    """A shape as written ('3x32x32'; a one-number shape may read back as a number)."""
    if isinstance(value, tuple | list):
        return tuple(int(n) for n in value)
    return tuple(int(float(n)) for n in str(value).split("x") if n)


def _text(value: object) -> str:
    """A text column as written ('' for a missing value)."""
    return str(value) if present(value) else ""


def _flag(value: object) -> bool:
    """A backend setting as written (or missing: off)."""
    if not present(value):
        return False
    if isinstance(value, str):
        return value == "True"
    return bool(value)


def key_fields(without: Collection[str] = ()) -> tuple[str, ...]:
    """The identity columns that make the key, minus ``without``."""
    names = [item.name for item in _columns_of(Identity)]
    unknown = set(without) - set(names)
    if unknown:
        raise ValueError(f"not identity columns: {sorted(unknown)}")
    skip = {*Identity.DESCRIPTIVE, *without}
    return tuple(name for name in names if name not in skip)


@dataclass(frozen=True)
class Counts:
    """What a net costs, whatever else the machine is doing."""

    params: int | None = optional("count", "parameters")
    trainable_params: int | None = optional("count", "parameters that require grad")
    macs: int | None = optional(
        "MAC/sample", "forward multiply-accumulates per sample (FlopCounterMode)"
    )
    flops: int | None = optional("FLOP/sample", "2 x macs")
    fvcore_macs: int | None = optional("MAC/sample", "the same count by fvcore")
    flop_disagreement_pct: float | None = optional("%", "(fvcore_macs - macs) / macs")
    fvcore_uncounted: str | None = optional("", "ops fvcore met but did not count, op:count;...")
    step_gflop: float | None = optional(
        "GFLOP", "FLOPs of one timed call (train: forward + backward, counted)"
    )
    instructions: int | None = optional(
        "instructions/call", "CPU instructions of one timed call, counted by callgrind (1 thread)"
    )


@dataclass(frozen=True)
class Times:
    """How long one call takes: the statistics of its samples, and the rates they give."""

    compile_s: float | None = optional("s", "compiled jobs: the first call, which compiles")
    time_median_ms: float | None = optional("ms", "median time of one call")
    time_p90_ms: float | None = optional("ms", "90th percentile")
    time_iqr_ms: float | None = optional("ms", "interquartile range")
    time_mean_ms: float | None = optional("ms", "mean")
    time_n: int | None = optional("count", "timed calls")
    time_rounds: int | None = optional(
        "count", "rounds the timed calls were spread over (run --rounds)"
    )
    throughput_per_s: float | None = optional("samples/s", "batch_size / time_median")
    achieved_gflops_per_s: float | None = optional("GFLOP/s", "step_gflop / time_median")
    hw_efficiency: float | None = optional(
        "fraction", "achieved GFLOP/s over the calibration matmul's"
    )


@dataclass(frozen=True)
class Memory:
    peak_mem_mb: float | None = optional(
        "MiB", "peak memory of the call above that held before the build"
    )
    mem_method: str | None = optional("", "cuda_max_allocated or cpu_peak_rss")


@dataclass(frozen=True)
class Training:
    """The recipe and budget of a training job, its split of the training set, and what
    training reached. Validation decides (best epoch, time to target); test reports."""

    epochs: int | None = optional("", "training budget in epochs (train rows)")
    time_budget_s: float | None = optional(
        "s", "training cap in seconds, if any (studies of time); the nearer budget binds"
    )
    train_subset: int | None = optional(
        "samples", "training samples used, if fewer than the data set's"
    )
    optimizer: str | None = optional("", "sgd (Nesterov momentum 0.9) or adamw")
    lr: float | None = optional("", "peak learning rate")
    weight_decay: float | None = optional("", "weight decay")
    schedule: str | None = optional("", "onecycle or cosine learning-rate schedule")
    warmup: float | None = optional("fraction", "of the budget spent warming the rate up")
    label_smoothing: float | None = optional("", "label smoothing of the cross-entropy")
    curriculum_epochs: int | None = optional(
        "", "visual QA: epochs at the start trained on non-relational questions only"
    )
    train_size: int | None = optional("samples", "training samples trained on")
    val_size: int | None = optional("samples", "training samples held out for validation")
    val_seed: int | None = optional("", "seed of the validation hold-out")
    epochs_done: int | None = optional("", "epochs trained, the last maybe cut by a time cap")
    budget_cut: bool | None = optional("", "a time cap stopped training before its epochs")
    train_time_s: float | None = optional("s", "training time, evaluation and compilation excluded")
    train_compile_s: float | None = optional(
        "s", "compiled training: its first step, which compiles"
    )
    train_samples_per_s: float | None = optional(
        "samples/s", "training samples per second (a task's sample: an image, a question)"
    )
    train_steps: int | None = optional("count", "optimizer steps taken")
    train_hw_efficiency: float | None = optional(
        "fraction", "training loop GFLOP/s over the calibration's"
    )
    train_loss: float | None = optional("", "mean training loss of the last epoch")
    train_acc: float | None = optional(
        "fraction", "training accuracy of the last epoch (augmented batches)"
    )
    val_acc: float | None = optional("fraction", "validation accuracy after training")
    best_val_acc: float | None = optional("fraction", "best validation accuracy of any epoch")
    best_epoch: int | None = optional("", "the epoch of best_val_acc")
    test_acc: float | None = optional("fraction", "test accuracy after training")
    target_acc: float | None = optional("fraction", "target validation accuracy, if set")
    time_to_target_s: float | None = optional(
        "s", "training time until validation accuracy first reached the target"
    )


@dataclass(frozen=True)
class Node:
    """The machine a job ran on: under ``--executor ray`` a run's rows come from many, and
    each row's efficiency and normalised times use its own machine's calibration."""

    hostname: str | None = optional("", "host name of the machine the job ran on")
    node_id: str | None = optional("", "Ray's id of the node (--executor ray)")
    device_name: str | None = optional("", "the GPU's name, or the CPU model")
    cpu: str | None = optional("", "the CPU model")
    calibration_matmul_s: float | None = optional(
        "s", "this machine's calibration matmul in the job's dtype (compare --normalize)"
    )
    calibration_gflops_per_s: float | None = optional(
        "GFLOP/s", "the calibration matmul's rate (hw_efficiency divides by it)"
    )
    ray_num_cpus: float | None = optional("count", "CPUs Ray reserved for the job")
    ray_num_gpus: float | None = optional("count", "GPUs Ray reserved for it (a share if packed)")


PARTS = (Identity, Counts, Times, Memory, Training, Node)  # the typed parts of a row
_DECLARED: dict[str, Column] = {}  # metric columns declared by the tasks


@dataclass(frozen=True, kw_only=True)
class Row:
    """One job's row. ``metrics`` holds the columns its task declared; ``samples_ms``
    every timed call and ``round_medians_ms`` the median of each round of them (run
    --rounds: the independent unit of a significance test), both in rows.jsonl only."""

    schema_version: int = column("", "version of this schema", default=SCHEMA_VERSION)
    identity: Identity
    status: Status = column("", "ok, failed, oom or diverged", default=Status.OK)
    message: str = column("", "why a job failed, or what was not measured", default="")
    counts: Counts = field(default_factory=Counts)
    times: Times = field(default_factory=Times)
    memory: Memory = field(default_factory=Memory)
    training: Training = field(default_factory=Training)
    metrics: Mapping[str, float] = field(default_factory=dict)
    node: Node = field(default_factory=Node)
    started_at: str | None = optional("ISO 8601", "when the job started (UTC)")
    duration_s: float | None = optional("s", "wall time of the whole job")
    samples_ms: tuple[float, ...] = ()
    round_medians_ms: tuple[float, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    def record(self) -> dict[str, Any]:
        """The row as written: one column per field, in schema order, None left out.
        A metric its task did not declare is a SchemaError."""
        undeclared = sorted(set(self.metrics) - set(declared()))
        if undeclared:
            raise SchemaError(f"{self.identity.arch}: undeclared columns {undeclared}")
        flat: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "identity":
                flat.update(value.record())
            elif item.name == "metrics":
                flat.update(value)
            elif item.name == "samples_ms":
                flat[SAMPLES_COLUMN] = list(value) if value else None
            elif item.name == "round_medians_ms":
                flat[ROUNDS_COLUMN] = list(value) if value else None
            elif is_dataclass(value):
                flat.update({f.name: getattr(value, f.name) for f in fields(value)})
            else:
                flat[item.name] = str(value) if isinstance(value, TextEnum) else value
        return {name: value for name, value in flat.items() if value is not None}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Row:
        """A row as written; a column the schema does not know is a SchemaError."""
        known = {*column_names(), *RAW_COLUMNS}
        unknown = sorted(set(record) - known)
        if unknown:
            raise SchemaError(f"unknown columns {unknown}")
        values = {name: value for name, value in record.items() if present(value)}

        def part(kind: type) -> Any:
            return kind(**{f.name: values[f.name] for f in fields(kind) if f.name in values})

        return cls(
            schema_version=values.get("schema_version", SCHEMA_VERSION),
            identity=Identity.from_record(record),
            status=Status(values.get("status", Status.OK)),
            message=values.get("message", ""),
            counts=part(Counts),
            times=part(Times),
            memory=part(Memory),
            training=part(Training),
            node=part(Node),
            metrics={name: values[name] for name in declared() if name in values},
            started_at=values.get("started_at"),
            duration_s=values.get("duration_s"),
            samples_ms=tuple(values.get(SAMPLES_COLUMN) or ()),
            round_medians_ms=tuple(values.get(ROUNDS_COLUMN) or ()),
        )

    def but(self, **changes: Any) -> Row:
        """This row with some fields replaced."""
        return replace(self, **changes)


def present(value: object) -> bool:
    """Whether a cell holds a value (not None, NaN or pandas' NA; a list always does)."""
    return value is not None and not (pd.api.types.is_scalar(value) and pd.isna(value))


def declare(*metrics: Column) -> None:
    """Add a task's metric columns to the schema (``tasks.register`` does); a name the
    schema already uses for another meaning is a SchemaError."""
    core = {c.name: c for c in _core_columns()}
    for item in metrics:
        known = core.get(item.name) or _DECLARED.get(item.name)
        if known is not None and known != item:
            raise SchemaError(f"column {item.name!r} is already declared as {known}")
        _DECLARED[item.name] = item


def declared() -> dict[str, Column]:
    """The tasks' metric columns by name (importing the tasks declares the shipped ones)."""
    import benchmarks.tasks  # noqa: F401  (the shipped tasks declare their columns)

    return dict(_DECLARED)


def _columns_of(kind: type) -> list[Column]:
    """The columns of a part: its fields with a meaning, a nested part's in its place."""
    found = []
    for item in fields(kind):
        if "meaning" in item.metadata:
            found.append(Column(item.name, item.metadata["unit"], item.metadata["meaning"]))
        elif item.name == "backend":
            found += _columns_of(Backend)
    return found


def _row_columns(*names: str) -> list[Column]:
    """The columns of the Row's own fields ``names``, in that order."""
    own = {column.name: column for column in _columns_of(Row)}
    return [own[name] for name in names]


def _core_columns(metrics: Iterable[Column] = ()) -> list[Column]:
    """The columns in order: version, identity, status, the measured parts, ``metrics``
    (the tasks'), the machine, the job's timestamps."""
    return [
        *_row_columns("schema_version"),
        *_columns_of(Identity),
        *_row_columns("status", "message"),
        *(column for part in PARTS[1:-1] for column in _columns_of(part)),
        *metrics,
        *_columns_of(Node),
        *_row_columns("started_at", "duration_s"),
    ]


def columns() -> tuple[Column, ...]:
    """Every column in order: the parts' fields, then the tasks' metrics, then timestamps."""
    return tuple(_core_columns(declared().values()))


def column_names() -> tuple[str, ...]:
    return tuple(item.name for item in columns())


def numeric_columns() -> tuple[str, ...]:
    """The columns that hold numbers (or nothing, when not measured): the parts' int and
    float fields, and the tasks' metrics."""
    numbers = (int, float, int | None, float | None)
    names = [
        item.name
        for part in (Row, *PARTS)
        for item in fields(part)
        if "meaning" in item.metadata and typing.get_type_hints(part)[item.name] in numbers
    ]
    return (*names, *declared())


def schema_markdown() -> str:
    """The schema as a Markdown table, for the README."""
    return pd.DataFrame([vars(item) for item in columns()]).to_markdown(index=False)
