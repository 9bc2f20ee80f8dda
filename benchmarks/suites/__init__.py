"""Suites: named experiment matrices shipped as TOML files beside this module.

A suite file (a user's own too, passed by path) has these keys, all optional
but ``architectures``:

    description = "what the suite is for"
    architectures = ["resnet20", "plain*", {arch = "resnet20_grouped", config = {groups = 8}}]
    # an entry's table may also set its own dataset, dtype, batch_sizes, train_batch_size,
    # seeds, rounds, training overrides and backend settings (channels_last...), for one name, a
    # pattern or a list: {arch = "*", dtype = "bf16"}, {arch = ["resnet20", "plain20"], rounds = 5}
    batch_sizes = [1, 64]          # inference rows, one per batch size
    train_batch_size = 32          # a training-step row at this batch size; 0 for none
    dtype = "fp32"                 # fp32 (TF32 off), tf32 (CUDA), bf16 or fp16 (autocast)
    device = "auto"                # auto, cpu or cuda
    channels_last = false          # NHWC layout of model and inputs
    cudnn_benchmark = false        # let cuDNN autotune (CUDA)
    compile = false                # torch.compile; compilation timed apart (compile_s)
    cuda_graphs = false            # replay inference from a CUDA graph (CUDA)
    input_size = 32                # square image side of the jobs that do not train; default:
                                   # each architecture's own, or the data set's
    dataset = "mnist5k"            # mnist5k, cifar10, cifar100, imagefolder:PATH; none: synthetic
    seeds = [0, 1, 2]              # one training row per seed
    measure = ["flops", "time", "memory", "accuracy"]  # or ["flops", "instructions"] alone
    rounds = 1                     # time every call and step in so many rounds (--rounds sets
                                   # every net's, an entry's own rounds included)

    [training]                     # see benchmarks.train.TrainConfig: the budget and recipe
    epochs = 10                    # the budget is work; time_budget_s caps it for time studies
    lr = 0.1
    val_fraction = 0.1             # of the training set, held out (val_seed) to decide on

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
from benchmarks import tasks
from benchmarks.errors import UserError
from benchmarks.measure.device import DTYPES, Backend
from benchmarks.measure.latency import TimingConfig
from benchmarks.options import shipped_suites
from benchmarks.suites.types import check_fields, toml_text
from benchmarks.train import TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_MEASURE = ("flops", "time", "memory", "accuracy")
MEASUREMENTS = (*DEFAULT_MEASURE, "instructions")
CALL_MEASUREMENTS = ("flops", "time", "memory", "instructions")  # of one call: inference rows
SLOWED_BY_VALGRIND = ("time", "memory", "accuracy")  # not measured with instructions
DEVICES = ("auto", "cpu", "cuda")
BACKEND_KEYS = Backend.names()
ENTRY_KEYS = {
    "arch", "config", "dataset", "dtype", "batch_sizes", "training", "train_batch_size",
    "seeds", "rounds", *BACKEND_KEYS,
}  # fmt: skip


@dataclass(frozen=True)
class Entry:
    """One architecture of a suite, with config overrides, and optionally its own data
    set, dtype, batch sizes, seeds, training and backend settings (so one suite can time
    every net in two dtypes, eager and compiled, train image and fusion nets, and give
    one net more seeds or rounds); None: the suite's."""

    arch: str
    config: Mapping[str, Any] = field(default_factory=dict)
    dataset: str | None = None
    dtype: str | None = None
    batch_sizes: tuple[int, ...] | None = None  # () for no inference rows
    training: Mapping[str, Any] = field(default_factory=dict)
    train_batch_size: int | None = None  # 0 for no training rows
    seeds: tuple[int, ...] | None = None
    rounds: int | None = None
    channels_last: bool | None = None
    cudnn_benchmark: bool | None = None
    compile: bool | None = None
    cuda_graphs: bool | None = None

    def __post_init__(self) -> None:
        for key in ("batch_sizes", "seeds"):
            if getattr(self, key) is not None:
                object.__setattr__(self, key, tuple(getattr(self, key)))
        if self.rounds is not None:
            check_whole_number(self.rounds, "rounds")

    @property
    def config_json(self) -> str:
        return json.dumps(dict(self.config), sort_keys=True)

    def key(self) -> str:
        """What makes two entries the same (repeats are dropped)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


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
    measure: tuple[str, ...] = DEFAULT_MEASURE
    timing: TimingConfig = field(default_factory=TimingConfig)
    training: TrainConfig = field(default_factory=TrainConfig)
    channels_last: bool = False
    cudnn_benchmark: bool = False
    compile: bool = False
    cuda_graphs: bool = False
    pack_training: int = 1  # --executor ray: GPU jobs that do not time share a GPU so many ways
    rounds: int = 1  # timings repeated round after round (runner.run), pooled

    def __post_init__(self) -> None:
        if not self.entries:
            raise UserError(f"suite {self.name!r} has no architectures")
        check_whole_number(self.rounds, "rounds")
        check_whole_number(self.pack_training, "pack_training")
        if not self.batch_sizes:
            raise UserError("batch_sizes must list at least one batch size")
        for entry in (None, *self.entries):
            check_batch_sizes(self.batch_sizes_for(entry))
            check_train_batch_size(self.train_batch_size_for(entry))
            check_dtype_name(self.dtype_for(entry))
        if self.input_size is not None and self.input_size < 1:
            raise UserError(f"input_size must be positive, not {self.input_size}")
        if self.device not in DEVICES:
            raise UserError(f"device must be one of {', '.join(DEVICES)}, not {self.device!r}")
        if not self.measure:
            raise UserError(f"measure must list at least one of {', '.join(MEASUREMENTS)}")
        unknown = sorted(set(self.measure) - set(MEASUREMENTS))
        if unknown:
            raise UserError(f"unknown measurement {unknown}; choose from {', '.join(MEASUREMENTS)}")
        slowed = [name for name in SLOWED_BY_VALGRIND if name in self.measure]
        if "instructions" in self.measure and slowed:
            raise UserError(
                f"instructions are counted under valgrind, which slows everything 50-fold: "
                f"measure {', '.join(slowed)} in another run (--measure flops,instructions here)"
            )
        for seeds in (self.seeds, *(entry.seeds for entry in self.entries if entry.seeds)):
            if not seeds or len(set(seeds)) < len(seeds):
                raise UserError(f"seeds must be distinct integers, not {list(seeds)}")
        for entry in self.entries:  # unknown names, keys and mismatched data fail before any work
            arch = architectures.spec(entry.arch)
            if entry.config:
                arch.validate(**entry.config)
            self.training_for(entry)
            dataset = self.dataset_for(entry)
            gives = tasks.for_dataset(dataset).input_kind if dataset else arch.input_kind
            if gives is not arch.input_kind:
                raise UserError(
                    f"{entry.arch} takes {arch.input_kind} inputs; {dataset} gives {gives} inputs"
                )

    def replace(self, **changes: Any) -> Suite:
        return dataclasses.replace(self, **changes)

    def backend_for(self, entry: Entry | None) -> Backend:
        """The suite's backend settings with the entry's own."""

        def setting(key: str) -> bool:
            own = getattr(entry, key) if entry else None
            return getattr(self, key) if own is None else own

        return Backend(**{key: setting(key) for key in BACKEND_KEYS})

    def dataset_for(self, entry: Entry) -> str | None:
        return entry.dataset or self.dataset

    def dtype_for(self, entry: Entry | None) -> str:
        return entry.dtype if entry and entry.dtype else self.dtype

    def batch_sizes_for(self, entry: Entry | None) -> tuple[int, ...]:
        return self.batch_sizes if entry is None or entry.batch_sizes is None else entry.batch_sizes

    def seeds_for(self, entry: Entry) -> tuple[int, ...]:
        return self.seeds if entry.seeds is None else entry.seeds

    def rounds_for(self, entry: Entry) -> int:
        return self.rounds if entry.rounds is None else entry.rounds

    @property
    def most_rounds(self) -> int:
        """The rounds of the net timed in the most."""
        return max(self.rounds_for(entry) for entry in self.entries)

    def train_batch_size_for(self, entry: Entry | None) -> int:
        own = None if entry is None else entry.train_batch_size
        return self.train_batch_size if own is None else own

    def training_for(self, entry: Entry) -> TrainConfig:
        """The suite's training recipe with the entry's overrides."""
        try:
            return dataclasses.replace(self.training, **entry.training)
        except (TypeError, ValueError) as error:
            raise UserError(f"training of {entry.arch}: {error}") from None

    def like_its_own(self, entry: Entry) -> Entry:
        """A net the user names, with the data set, training batch size and recipe this
        suite gives its own nets of the same input kind, where the suite's data set
        does not fit it (the quick suite's fusion nets: their Sort-of-CLEVR)."""
        kind = architectures.spec(entry.arch).input_kind
        if self.dataset is None or tasks.for_dataset(self.dataset).input_kind is kind:
            return entry
        for own in self.entries:
            fits = own.dataset and tasks.for_dataset(own.dataset).input_kind is kind
            if fits and architectures.spec(own.arch).input_kind is kind:
                return dataclasses.replace(
                    entry, dataset=own.dataset, training={**own.training, **entry.training},
                    train_batch_size=own.train_batch_size,
                )  # fmt: skip
        return entry

    def measures_accuracy(self, entry: Entry) -> bool:
        """Training to accuracy needs a data set and training rows."""
        trains = "accuracy" in self.measure and self.train_batch_size_for(entry) > 0
        return trains and self.dataset_for(entry) is not None


def check_whole_number(value: Any, key: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UserError(f"{key} must be a whole number >= 1, not {value}")


def check_batch_sizes(sizes: tuple[int, ...]) -> None:
    if any(not isinstance(b, int) or b < 1 for b in sizes):
        raise UserError(f"batch sizes must be positive integers, not {list(sizes)}")


def check_train_batch_size(size: int) -> None:
    if not isinstance(size, int) or size < 0 or size == 1:
        raise UserError("train_batch_size must be 0 (no training rows) or at least 2")


def check_dtype_name(dtype: str) -> None:
    if dtype not in DTYPES:
        raise UserError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")


def load_suite(name_or_path: str) -> Suite:
    """A shipped suite by name, or a suite file by path."""
    if name_or_path.endswith(".toml") or Path(name_or_path).exists():
        path = Path(name_or_path)
        if path.is_dir():
            raise UserError(f"{path} is a directory, not a suite file (a .toml)")
        if not path.is_file():
            raise UserError(f"suite file {path} does not exist")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise UserError(f"suite file {path} is not UTF-8 text ({error.reason})") from None
        except OSError as error:
            raise UserError(f"cannot read the suite file {path}: {error.strerror}") from None
        return parse_suite(path.stem, text, source=str(path))
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
    where = f"suite {source}: "
    if not isinstance(data["architectures"], list):
        raise UserError(
            f"{where}architectures = {toml_text(data['architectures'])}: "
            "expected a list of names and tables"
        )
    check_fields(data, Suite, where)
    check_fields(data.get("timing", {}), TimingConfig, f"{where}timing.")
    check_fields(data.get("training", {}), TrainConfig, f"{where}training.")
    try:
        entries = expand_entries(data.pop("architectures"))
        timing = TimingConfig(**data.pop("timing", {}))
        training = TrainConfig(**data.pop("training", {}))
        settings: dict[str, Any] = {
            key: tuple(value) if isinstance(value, list) else value for key, value in data.items()
        }
        return Suite(name=name, entries=entries, timing=timing, training=training, **settings)
    except (TypeError, ValueError) as error:
        raise UserError(f"{where}{error}") from None
    except UserError as error:
        raise UserError(f"{where}{error}") from None


def expand_entries(items: list[Any]) -> tuple[Entry, ...]:
    """Names, wildcard patterns and tables of ENTRY_KEYS (whose arch may be a pattern, or
    a list of names and patterns, sharing the table's settings), in order, without repeats."""
    entries: list[Entry] = []
    for item in items:
        if isinstance(item, str):
            item = {"arch": item}
        if not (isinstance(item, dict) and set(item) <= ENTRY_KEYS and "arch" in item):
            keys = ", ".join(sorted(ENTRY_KEYS))
            raise UserError(
                f"an architecture entry must be a name or a table of {keys}, not {item!r}"
            )
        patterns = item["arch"] if isinstance(item["arch"], list) else [item["arch"]]
        if not all(isinstance(pattern, str) for pattern in patterns):
            raise UserError(f"arch = {toml_text(item['arch'])}: expected a name or a list of names")
        where = f"{', '.join(patterns)}: "
        check_fields({k: v for k, v in item.items() if k != "arch"}, Entry, where)
        check_fields(item.get("training", {}), TrainConfig, f"{where}training.")
        names = [name for pattern in patterns for name in matching(pattern)]
        entries += [Entry(**{**item, "arch": name}) for name in names]
    unique = {entry.key(): entry for entry in entries}
    return tuple(unique.values())


def matching(pattern: str) -> list[str]:
    """The registered names a wildcard pattern matches, or the one name given."""
    if not any(char in pattern for char in "*?["):
        return [pattern]
    matched = architectures.list_architectures(pattern)
    if not matched:
        raise UserError(f"no architecture matches {pattern!r}")
    return matched
