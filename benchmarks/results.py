"""A run's files, and a run loaded for analysis.

A run directory holds:

- ``rows.jsonl``: one row (schema.Row.record) per measured job, appended and
  flushed as soon as the job ends (with the raw timing samples);
- ``results.csv``: the same rows without the raw samples, one per job (the
  latest row wins when a job was re-run), written atomically at the end;
- ``curves.jsonl``: one line per epoch of every training job, with its identity;
- ``env.json``: the environment and the calibration of each session that
  wrote to the run.

Every row carries ``schema_version``; the loader refuses rows of another one.
The analysis (figures, report, findings, compare, the CLI's summary) reads a
run through ``load``/``load_run`` and names its rows with ``labels``.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

import architectures
from architectures import Change, Family
from benchmarks import __version__
from benchmarks.errors import UserError
from benchmarks.options import DTYPE_NAMES
from benchmarks.schema import (
    CONDITIONS,
    NO_OVERRIDES,
    RAW_COLUMNS,
    SCHEMA_VERSION,
    SETTINGS,
    Identity,
    Mode,
    SchemaError,
    Status,
    column_names,
    declared,
    key_fields,
    numeric_columns,
    present,
)
from benchmarks.uncertainty import mean_interval

ROWS_FILE, RESULTS_FILE, ENV_FILE = "rows.jsonl", "results.csv", "env.json"
CURVES_FILE = "curves.jsonl"


# --- writing --------------------------------------------------------------------------


class JsonLines:
    """Appends records to a JSON-lines file, each on disk before the next; a record that
    cannot be written whole (a full disk) is taken back, so the file ends in whole lines."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: Mapping[str, Any]) -> None:
        data = (json.dumps(record, default=str) + "\n").encode()
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            size = os.lseek(descriptor, 0, os.SEEK_END)
            try:
                while data:
                    data = data[os.write(descriptor, data) :]
                os.fsync(descriptor)
            except OSError as error:
                os.ftruncate(descriptor, size)
                raise UserError(
                    f"cannot append to {self.path}: {error.strerror or error}; the lines before "
                    "are kept (make room, then --resume)"
                ) from None
        finally:
            os.close(descriptor)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new, never a
    part; a write that fails (a full disk) leaves the old file and no temporary."""
    name = None
    try:
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
            name = tmp.name
            tmp.write(text)
            tmp.flush()
            os.fsync(tmp.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(name, 0o666 & ~umask)  # a normal file's mode, not the temporary file's 0600
        os.replace(name, path)
    except OSError as error:
        if name:
            Path(name).unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {error.strerror or error}") from None


def write_results_csv(run_dir: Path) -> pd.DataFrame:
    """Rewrite results.csv from rows.jsonl; returns the table."""
    rows = read_rows(run_dir / ROWS_FILE) if (run_dir / ROWS_FILE).exists() else []
    table = to_frame(rows)
    write_atomic(run_dir / RESULTS_FILE, table.to_csv(index=False))
    return table


# --- reading --------------------------------------------------------------------------


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file; a last line cut short by a crash is skipped."""
    try:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise UserError(f"{path} is not text (UTF-8)") from None
    records = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number < len(lines):
                raise UserError(f"{path}: line {number} is not valid JSON") from None
            continue
        if not isinstance(record, dict):
            raise UserError(f"{path}: line {number} is not a row (a JSON object)")
        records.append(record)
    return records


def identities(table: pd.DataFrame | Iterable[Mapping[str, Any]]) -> list[Identity]:
    """The identity of each row of a table (or of records)."""
    records = table.to_dict("records") if isinstance(table, pd.DataFrame) else table
    try:
        return [Identity.from_record(record) for record in records]
    except SchemaError as error:
        raise UserError(f"not an archbench results table: {error}") from None


def keys(table: pd.DataFrame, without: Collection[str] = ()) -> list[tuple[str, ...]]:
    """Each row's key for matching (Identity.key): rows with one key measured one thing."""
    return [identity.key(without) for identity in identities(table)]


def to_frame(records: Iterable[Mapping[str, Any]], *, samples: bool = False) -> pd.DataFrame:
    """Rows as a DataFrame in schema order, one per key (the latest wins), the raw
    samples only when asked; backend settings that older rows lack were off."""
    records = [{**dict.fromkeys(SETTINGS, False), **record} for record in records]
    if not records:
        return pd.DataFrame(columns=list(column_names()))
    table = pd.DataFrame(records)
    table = table[~pd.Series(keys(table)).duplicated(keep="last").to_numpy()]
    names = column_names()
    extra = [c for c in table.columns if c not in names and (samples or c not in RAW_COLUMNS)]
    return table.reindex(columns=[*names, *extra]).reset_index(drop=True)


def load(path: str | Path, *, samples: bool = False) -> pd.DataFrame:
    """A run's results as a DataFrame, from its directory, rows.jsonl or results.csv;
    with ``samples``, the raw timings too (RAW_COLUMNS: every call's, each round's
    median; from rows.jsonl).

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
        if not path.read_bytes().endswith(b"\n"):
            raise UserError(f"{path} ends in a line cut short (a crash while copying it?)")
        try:
            records = pd.read_csv(path).to_dict("records")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
            raise UserError(f"{path} is not a results CSV: {str(error).strip()}") from None
    required = key_fields(without=SETTINGS)  # rows from before the settings had them off
    missing = sorted({name for row in records for name in required if name not in row})
    if missing:
        raise UserError(f"{path} lacks the columns {missing}: not an archbench results file")
    check_schema_versions(records, path)
    table = to_frame(records, samples=samples)
    check_numbers(table, path)
    unknown = sorted(set(table["status"].dropna().astype(str)) - {str(s) for s in Status})
    if unknown:
        raise UserError(f"{path}: unknown status {unknown}; a row's is one of {list(Status)}")
    if samples and path.suffix != ".jsonl":  # a results.csv: the raw timings are beside it
        beside = path.parent / ROWS_FILE
        timed = read_rows(beside) if beside.exists() else []
        by_key = dict(zip(keys(pd.DataFrame(timed)), timed, strict=True)) if timed else {}
        for column in RAW_COLUMNS:
            table[column] = [by_key.get(key, {}).get(column) for key in keys(table)]
    elif samples:
        for column in RAW_COLUMNS:
            if column not in table:
                table[column] = None
    for column in RAW_COLUMNS if samples else ():
        if not all(map(is_number_list, table[column])):
            raise UserError(f"{path}: {column} holds something other than lists of numbers")
    return table


def is_number_list(value: object) -> bool:
    """Whether a raw timing cell is empty or a list of numbers."""
    if not isinstance(value, list):
        return not present(value)
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)


def check_numbers(table: pd.DataFrame, path: Path, names: Iterable[str] | None = None) -> None:
    """UserError when a column of numbers (``names``, default the schema's) holds text
    ('fast' where a time belongs)."""
    for name in numeric_columns() if names is None else names:
        if name not in table or pd.api.types.is_numeric_dtype(table[name]):
            continue
        numbers = pd.to_numeric(table[name], errors="coerce")
        text = table[name][table[name].notna() & numbers.isna()]
        if len(text):
            raise UserError(
                f"{path}: column {name} holds text ({text.iloc[0]!r}) where numbers belong"
            )
        table[name] = numbers


def check_schema_versions(records: Iterable[Mapping[str, Any]], path: Path) -> None:
    """UserError when any of a file's rows is of another schema version than this one."""
    versions = {row.get("schema_version") for row in records}
    if versions - {SCHEMA_VERSION}:
        raise UserError(
            f"{path} has results schema version {sorted(map(str, versions))}, "
            f"this archbench reads version {SCHEMA_VERSION}"
        )


def read_env(path: Path) -> dict[str, Any]:
    """A run's env.json, {} when there is none; UserError when it is not JSON, not an
    object, or its calibrations are not calibration records."""
    if not path.exists():
        return {}
    try:
        env = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(env, dict):
        raise UserError(f"{path} is not an environment record (a JSON object)")
    calibrations = env.get("calibrations") or {}
    if not isinstance(calibrations, dict):
        raise UserError(f"{path}: calibrations is {json.dumps(calibrations)}, not a table by dtype")
    named = {"calibration": env.get("calibration")}
    named |= {f"calibrations.{dtype}": record for dtype, record in calibrations.items()}
    for name, record in named.items():
        if record is not None and not is_calibration(record):
            raise UserError(f"{path}: {name} is {json.dumps(record)}, not a calibration record")
    return env


def is_calibration(record: object) -> bool:
    """Whether an env.json calibration has its rates as numbers."""
    rates = ("matmul_median_s", "matmul_gflops_per_s")
    return isinstance(record, dict) and all(
        isinstance(record.get(rate, 0), int | float) and not isinstance(record.get(rate), bool)
        for rate in rates
    )


# --- a run, for analysis --------------------------------------------------------------


@dataclass
class Run:
    """A run directory loaded: what the figures, the report and the findings read."""

    path: Path
    table: pd.DataFrame  # every row, with the raw timings (RAW_COLUMNS)
    curves: pd.DataFrame  # one row per epoch of every training job
    env: dict[str, Any]
    left_out: tuple[str, ...] = ()  # the parts that could not be read, and why

    @property
    def ok(self) -> pd.DataFrame:
        return self.table[self.table["status"] == Status.OK]

    def trained(self) -> pd.DataFrame:
        """Training rows with an accuracy, one per job across seeds (mean and std)."""
        return summarize(trained_rows(self.table))

    def inference(self) -> pd.DataFrame:
        return self.ok[(self.ok["mode"] == Mode.INFER) & self.ok["time_median_ms"].notna()]


def load_run(path: str | Path) -> Run:
    """A run directory's results, curves and environment (UserError when it has no
    readable results); curves or an environment that cannot be read are left out, and
    the run says so (``left_out``)."""
    path = Path(path)
    table = load(path, samples=True)  # the findings judge speed-ups on the raw timings
    left_out = []
    try:
        curves = read_curves(path / CURVES_FILE)
    except UserError as error:
        curves, left_out = pd.DataFrame(), [str(error)]
    try:
        env = read_env(path / ENV_FILE)
    except UserError as error:
        env, left_out = {}, [*left_out, str(error)]
    return Run(path, table, curves, env, tuple(left_out))


CURVE_COLUMNS = ("epoch", "train_loss", "test_acc")  # of every epoch's record


def read_curves(path: Path) -> pd.DataFrame:
    """A run's curves: one row per epoch of every training job, with its identity."""
    curves = pd.DataFrame(read_rows(path) if path.exists() else [])
    missing = [c for c in (*key_fields(without=SETTINGS), *CURVE_COLUMNS) if c not in curves]
    if len(curves) and missing:
        raise UserError(f"{path} lacks the columns {missing}: not curves of archbench")
    check_numbers(curves, path, [*numeric_columns(), *CURVE_COLUMNS])
    return curves


def trained_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of jobs that trained to an accuracy and ended well (every seed)."""
    ok = table[table["status"] == Status.OK]
    return ok[(ok["mode"] == Mode.TRAIN) & ok["test_acc"].notna()]


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """One row per job across seeds: the first seed's row, with the test accuracy's
    mean, sample standard deviation and 95% confidence interval's half width over the
    seeds (``test_acc_std``, ``test_acc_ci95``: NaN for one seed), and the mean over
    the seeds of every metric a task declared."""
    if table.empty:
        return table.assign(seeds=[], test_acc_mean=[], test_acc_std=[], test_acc_ci95=[])
    grouped = table.assign(_job=keys(table, without=("seed",))).groupby("_job", sort=False)
    summary = grouped.first()
    summary["seeds"] = grouped["seed"].nunique()
    summary["test_acc_mean"] = grouped["test_acc"].mean()
    summary["test_acc_std"] = grouped["test_acc"].std(ddof=1)
    summary["test_acc_ci95"] = grouped["test_acc"].agg(
        lambda values: mean_interval(list(values.dropna()))[2] if values.notna().any() else None
    )
    metrics = [name for name in declared() if name in table]
    summary[metrics] = grouped[metrics].mean()
    return summary.reset_index(drop=True)


def depth_series(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of plain and residual twins of a depth series (He et al.'s CIFAR nets,
    as the registry declares them) at their default config, with their ``kind`` (the
    family: plain or resnet) and ``depth``."""
    residual = [
        spec
        for spec in map(architectures.spec, architectures.list_architectures())
        if spec.relations.change is Change.RESIDUAL and spec.relations.depth
    ]
    depths = {spec.name: spec.relations.depth for spec in residual}
    depths |= {
        spec.relations.twin: spec.relations.depth for spec in residual if spec.relations.twin
    }
    series = rows[rows["arch"].isin(list(depths)) & (rows["config"] == NO_OVERRIDES)]
    kind = series["family"].map(lambda family: str(Family.parse(family)))
    return series.assign(kind=kind, depth=series["arch"].map(depths).astype(float))


def width_series(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of wide nets (Zagoruyko & Komodakis' WRNs) and of thin, deep ones (the
    ResNets of a depth series, as the registry declares them) at their default config,
    with their ``kind``: 'wide' or 'deep'."""
    rows = rows[rows["config"] == NO_OVERRIDES]
    kinds = [width_kind(a, f) for a, f in zip(rows["arch"], rows["family"], strict=True)]
    return rows.assign(kind=kinds).dropna(subset=["kind"])


def width_kind(arch: str, family: object) -> str | None:
    """'wide' for a wide net, 'deep' for a ResNet of a depth series, else None."""
    family = Family.parse(family)
    if family is Family.WIDE:
        return "wide"
    return "deep" if family is Family.RESNET and relations(arch).depth else None


def relations(arch: str) -> architectures.Relations:
    """The net's declared relations (none for a net this installation does not know)."""
    try:
        return architectures.spec(arch).relations
    except architectures.RegistryError:
        return architectures.Relations()


def labels(
    table: pd.DataFrame, details: Iterable[str] = (), among: Iterable[str] = CONDITIONS
) -> list[str]:
    """Each row's label (Identity.label) with ``details``, and those of ``among`` whose
    values differ between the rows: 'resnet20 [bf16, compile]' beside 'resnet20 [fp32]'."""
    rows = identities(table)
    records = [row.record() for row in rows]
    varying = [name for name in among if len({record[name] for record in records}) > 1]
    return [row.label([*details, *varying]) for row in rows]


def labelled(table: pd.DataFrame) -> pd.DataFrame:
    """The table with a ``label`` column (see labels), sorted by family order, then net,
    then its variants, the baseline first (fp32 before other dtypes, settings off before
    on), then label."""
    table = table.assign(label=labels(table))
    order = [
        (Family.parse(family).rank, row.arch, row.config.text(), variant_rank(row), label)
        for family, row, label in zip(
            table["family"], identities(table), table["label"], strict=True
        )
    ]
    ranks = sorted(range(len(order)), key=order.__getitem__)
    return table.iloc[ranks]


def variant_rank(identity: Identity) -> tuple[int, int]:
    """A net's variant in order: its dtype's place (fp32 first), then how many backend
    settings are on."""
    dtype = DTYPE_NAMES.index(identity.dtype) if identity.dtype in DTYPE_NAMES else len(DTYPE_NAMES)
    return dtype, sum(identity.backend.columns().values())


def calibration_peaks(env: Mapping[str, Any], dtypes: Iterable[str]) -> dict[str, float]:
    """The calibration matmul's GFLOP/s in each of ``dtypes`` the run calibrated."""
    calibrations = env.get("calibrations") or {}
    if not calibrations and env.get("calibration"):  # runs from before per-dtype calibration
        calibrations = {env["calibration"]["dtype"]: env["calibration"]}
    return {
        dtype: calibrations[dtype]["matmul_gflops_per_s"]
        for dtype in sorted(dtypes)
        if dtype in calibrations
    }


def was_cut(row: Mapping[str, Any]) -> bool:
    """Whether a time cap cut the row's training short (rows from before: not)."""
    value = row.get("budget_cut")
    return present(value) and bool(value)


def accuracy_texts(summary: pd.DataFrame) -> list[str]:
    """Each summarized job's test accuracy in percent: '91.20 ± 0.35, 95% CI 90.33-92.07'
    over seeds, '91.20' for one seed, '' for none; ' (cut)' when a time cap cut its
    training short."""
    texts = []
    for row in summary.to_dict("records"):
        mean, std, half = row["test_acc_mean"], row["test_acc_std"], row["test_acc_ci95"]
        if pd.isna(mean):
            texts.append("")
            continue
        text = f"{100 * mean:.2f}"
        if not pd.isna(std):
            low, high = 100 * (mean - half), 100 * (mean + half)
            text += f" ± {100 * std:.2f}, 95% CI {low:.2f}-{high:.2f}"
        texts.append(text + (" (cut)" if was_cut(row) else ""))
    return texts


# --- the environment ------------------------------------------------------------------


def environment(device: torch.device, threads: int) -> dict[str, Any]:
    """What the numbers depend on besides the model: software, hardware, settings."""
    return {
        "archbench": __version__,
        "schema_version": SCHEMA_VERSION,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "cpu": cpu_model(),
        "cpu_features": cpu_features(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "device": device.type,
        "device_name": device_name(device),
        "git_commit": git_commit(),
        "command": sys.argv,
    }


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU model."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    return cpuinfo_value(("model name",)) or platform.processor() or platform.machine()


def cpuinfo_value(keys: tuple[str, ...], cpuinfo: str | None = None) -> str | None:
    """The value of the first line of ``cpuinfo`` (default: /proc/cpuinfo) whose key is
    one of ``keys``; None where there is none, or no /proc/cpuinfo."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in keys:
            return value.strip()
    return None


# Instruction-set extensions that decide which kernels torch and oneDNN run (x86, Arm)
ISA_FEATURES = (
    "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16",
    "asimd", "sve", "sve2", "bf16",
)  # fmt: skip


def cpu_features(cpuinfo: str | None = None) -> list[str]:
    """Which of ISA_FEATURES the CPU has, from the first "flags" (x86) or "Features"
    (Arm) line of ``cpuinfo`` (default: /proc/cpuinfo; none elsewhere). Two CPUs of one
    model name can differ in them, and their timings with them: bf16 autocast above all."""
    present = set((cpuinfo_value(("flags", "Features"), cpuinfo) or "").split())
    return [feature for feature in ISA_FEATURES if feature in present]


def git_commit() -> str | None:
    """The commit of the working directory's repository, with +dirty if its code has
    changes (outputs under results/, such as the run being written, are not code)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ":(top,exclude)results"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")
