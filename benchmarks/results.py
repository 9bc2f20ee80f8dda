"""The results schema, and reading and writing a run's files.

A run directory holds:

- ``rows.jsonl``: one JSON object per measured job, appended and flushed as
  soon as the job ends (with the raw timing samples);
- ``results.csv``: the same rows without the raw samples, one per job (the
  latest row wins when a job was re-run), written atomically at the end;
- ``env.json``: the environment and the calibration of each session that
  wrote to the run.

Every row carries ``schema_version``; the loader refuses rows of another one.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from benchmarks import __version__
from benchmarks.errors import UserError
from benchmarks.measure.device import Backend

SCHEMA_VERSION = 2
ROWS_FILE, RESULTS_FILE, ENV_FILE = "rows.jsonl", "results.csv", "env.json"
CURVES_FILE = "curves.jsonl"  # one line per epoch of every training job, with its identity


@dataclass(frozen=True)
class Column:
    name: str
    unit: str
    meaning: str


COLUMNS = (
    Column("schema_version", "", "version of this schema"),
    Column("suite", "", "suite the job came from"),
    Column("arch", "", "registered architecture name"),
    Column("family", "", "architecture family"),
    Column("config", "", "config overrides as JSON ({} for the registered defaults)"),
    Column("dataset", "", "data set trained and evaluated on, or synthetic inputs"),
    Column("device", "", "cpu or cuda"),
    Column("dtype", "", "fp32 (TF32 off), tf32 (CUDA), or bf16/fp16 autocast"),
    Column("mode", "", "infer: one forward pass; train: forward + backward + SGD step"),
    Column("batch_size", "samples", "batch size of the timed call"),
    Column("input_shape", "", "image C x H x W"),
    Column("seed", "", "seed of initialisation, data order and augmentation"),
    Column("threads", "", "torch intra-op threads"),
    Column("channels_last", "", "model and inputs in channels-last (NHWC) layout"),
    Column("cudnn_benchmark", "", "cuDNN autotuned its algorithms (CUDA)"),
    Column("compile", "", "torch.compile'd (the first call, compiling, is not timed)"),
    Column("cuda_graphs", "", "inference replayed from a CUDA graph"),
    Column("status", "", "ok, failed, oom or diverged"),
    Column("message", "", "why a job failed, or what was not measured"),
    Column("params", "count", "parameters"),
    Column("trainable_params", "count", "parameters that require grad"),
    Column("macs", "MAC/sample", "forward multiply-accumulates per sample (FlopCounterMode)"),
    Column("flops", "FLOP/sample", "2 x macs"),
    Column("fvcore_macs", "MAC/sample", "the same count by fvcore"),
    Column("flop_disagreement_pct", "%", "(fvcore_macs - macs) / macs"),
    Column("fvcore_uncounted", "", "ops fvcore met but did not count, op:count;..."),
    Column("step_gflop", "GFLOP", "FLOPs of one timed call (train: forward + backward, counted)"),
    Column("compile_s", "s", "compiled jobs: the first call (compilation) or training step"),
    Column("time_median_ms", "ms", "median time of one call"),
    Column("time_p90_ms", "ms", "90th percentile"),
    Column("time_iqr_ms", "ms", "interquartile range"),
    Column("time_mean_ms", "ms", "mean"),
    Column("time_n", "count", "timed calls"),
    Column("time_rounds", "count", "rounds the timed calls were spread over (run --rounds)"),
    Column("throughput_per_s", "samples/s", "batch_size / time_median"),
    Column("achieved_gflops_per_s", "GFLOP/s", "step_gflop / time_median"),
    Column("hw_efficiency", "fraction", "achieved GFLOP/s over the calibration matmul's"),
    Column("peak_mem_mb", "MiB", "peak memory of the call above that held before the build"),
    Column("mem_method", "", "cuda_max_allocated or cpu_peak_rss"),
    Column("epochs", "", "training budget in epochs (train rows)"),
    Column("time_budget_s", "s", "training budget in seconds, if any; the nearer budget binds"),
    Column("train_subset", "images", "training images used, if fewer than the data set's"),
    Column("lr", "", "peak learning rate (SGD, Nesterov momentum 0.9)"),
    Column("weight_decay", "", "weight decay"),
    Column("schedule", "", "onecycle or cosine learning-rate schedule"),
    Column("label_smoothing", "", "label smoothing of the cross-entropy"),
    Column("epochs_done", "", "epochs trained, the last maybe cut by the time budget"),
    Column("train_time_s", "s", "training time, evaluation (and compilation) excluded"),
    Column("train_samples_per_s", "samples/s", "training samples (VQA: questions) per second"),
    Column("train_steps", "count", "optimizer steps taken"),
    Column("train_hw_efficiency", "fraction", "training loop GFLOP/s over the calibration's"),
    Column("train_loss", "", "mean training loss of the last epoch"),
    Column("train_acc", "fraction", "training accuracy of the last epoch (augmented batches)"),
    Column("test_acc", "fraction", "test accuracy after training"),
    Column("best_test_acc", "fraction", "best test accuracy after any epoch"),
    Column("test_acc_nonrel", "fraction", "VQA: test accuracy on non-relational questions"),
    Column("test_acc_rel", "fraction", "VQA: test accuracy on relational questions"),
    Column("floor_nonrel", "fraction", "VQA: no-fusion floor on non-relational questions"),
    Column("floor_rel", "fraction", "VQA: no-fusion floor on relational questions"),
    Column("target_acc", "fraction", "target test accuracy, if set"),
    Column("time_to_target_s", "s", "training time until the target was first reached"),
    Column("started_at", "ISO 8601", "when the job started (UTC)"),
    Column("duration_s", "s", "wall time of the whole job"),
)
COLUMN_NAMES = tuple(column.name for column in COLUMNS)
SAMPLES_COLUMN = "time_samples_ms"  # rows.jsonl only: every timed call, in ms
CURVE_COLUMN = "curve"  # per-epoch records, moved from a job's row to curves.jsonl
SETTING_DEFAULTS = Backend().columns()  # rows written before these columns existed had them off
KEY_COLUMNS = (
    "arch", "config", "dataset", "device", "dtype", "mode", "batch_size", "input_shape", "seed",
    *SETTING_DEFAULTS,
)  # fmt: skip


def row_key(row: Mapping[str, Any]) -> tuple:
    """The identity of a row: what must match for two rows to measure the same thing."""
    return tuple(row[column] for column in KEY_COLUMNS)


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """One row per job across seeds: the first seed's row, with the test accuracy's
    mean and sample standard deviation over the seeds (``test_acc_std`` NaN for one)."""
    keys = [column for column in KEY_COLUMNS if column != "seed"]
    grouped = table.groupby(keys, sort=False, dropna=False)
    summary = grouped.first()
    summary["seeds"] = grouped["seed"].nunique()
    summary["test_acc_mean"] = grouped["test_acc"].mean()
    summary["test_acc_std"] = grouped["test_acc"].std(ddof=1)
    return summary.reset_index()


def schema_markdown() -> str:
    """The schema as a Markdown table, for the README."""
    table = pd.DataFrame([vars(column) for column in COLUMNS])
    return table.to_markdown(index=False)


class RowLog:
    """Appends rows to ``rows.jsonl``, each flushed to disk before the next job starts."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, row: Mapping[str, Any]) -> None:
        with self.path.open("a") as file:
            file.write(json.dumps(row, default=str) + "\n")
            file.flush()
            os.fsync(file.fileno())


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a rows.jsonl file; a last line cut short by a crash is skipped."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if number < len(lines):
                raise UserError(f"{path}: line {number} is not valid JSON") from None
    return with_setting_defaults(rows)


def with_setting_defaults(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with the backend settings filled in where a row predates them (all off)."""
    return [{**SETTING_DEFAULTS, **row} for row in rows]


def to_frame(rows: Iterable[Mapping[str, Any]], *, samples: bool = False) -> pd.DataFrame:
    """Rows as a DataFrame in schema order, one per key (the latest wins), no raw samples."""
    table = pd.DataFrame(with_setting_defaults(list(rows)))
    if table.empty:
        return pd.DataFrame(columns=list(COLUMN_NAMES))
    table = table.drop_duplicates(list(KEY_COLUMNS), keep="last")
    extra = [c for c in table.columns if c not in COLUMN_NAMES and (samples or c != SAMPLES_COLUMN)]
    return table.reindex(columns=[*COLUMN_NAMES, *extra]).reset_index(drop=True)


def load(path: str | Path, *, samples: bool = False) -> pd.DataFrame:
    """A run's results as a DataFrame, from its directory, rows.jsonl or results.csv;
    with ``samples``, the raw timings too (the column SAMPLES_COLUMN, from rows.jsonl).

    Raises UserError when the file is missing or of another schema version.
    """
    path = Path(path)
    if path.is_dir():
        path = path / ROWS_FILE if (path / ROWS_FILE).exists() else path / RESULTS_FILE
    if not path.is_file():
        raise UserError(f"no results at {path}")
    if path.suffix == ".jsonl":
        records = read_rows(path)
    else:
        try:
            records = with_setting_defaults(pd.read_csv(path).to_dict("records"))
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
            raise UserError(f"{path} is not a results CSV: {str(error).strip()}") from None
    missing = sorted({column for row in records for column in KEY_COLUMNS if column not in row})
    if missing:
        raise UserError(f"{path} lacks the columns {missing}: not an archbench results file")
    versions = {row.get("schema_version") for row in records}
    if versions - {SCHEMA_VERSION}:
        raise UserError(
            f"{path} has results schema version {sorted(map(str, versions))}, "
            f"this archbench reads version {SCHEMA_VERSION}"
        )
    table = to_frame(records, samples=samples)
    if samples and path.suffix != ".jsonl":  # a results.csv: the samples are beside it
        beside = path.parent / ROWS_FILE
        timed = (
            {row_key(row): row.get(SAMPLES_COLUMN) for row in read_rows(beside)}
            if beside.exists()
            else {}
        )
        table[SAMPLES_COLUMN] = [timed.get(row_key(row)) for row in table.to_dict("records")]
    elif samples and SAMPLES_COLUMN not in table:
        table[SAMPLES_COLUMN] = None
    return table


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new, never a part."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(text)
        tmp.flush()
        os.fsync(tmp.fileno())
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp.name, 0o666 & ~umask)  # a normal file's mode, not the temporary file's 0600
    os.replace(tmp.name, path)


def write_results_csv(run_dir: Path) -> pd.DataFrame:
    """Rewrite results.csv from rows.jsonl; returns the table."""
    table = (
        to_frame(read_rows(run_dir / ROWS_FILE)) if (run_dir / ROWS_FILE).exists() else to_frame([])
    )
    write_atomic(run_dir / RESULTS_FILE, table.to_csv(index=False))
    return table


def read_env(path: Path) -> dict[str, Any]:
    """A run's env.json, {} when there is none (UserError when it is not JSON)."""
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise UserError(f"{path} is not valid JSON: {error}") from None


def environment(device: torch.device, threads: int) -> dict[str, Any]:
    """What the numbers depend on besides the model: software, hardware, settings."""
    env = {
        "archbench": __version__,
        "schema_version": SCHEMA_VERSION,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
        "git_commit": git_commit(),
        "command": sys.argv,
    }
    return env


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str | None:
    """The commit of the working directory's repository, with +dirty if it has changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")
