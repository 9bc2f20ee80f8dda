"""`archbench compare`: is the current run slower, bigger or less accurate than a baseline?

Inputs are archbench runs (a run directory, ``rows.jsonl`` or ``results.csv``)
or pytest-benchmark JSON files. Rows are matched on their identity's key
without the seed (the seeds of one training job are pooled; the thread count
and backend settings must match) and compared metric by metric, each of one
kind:

- exact (params, MACs, FLOPs): any difference is ``changed``;
- counted (instructions, by callgrind): ``regressed`` or ``improved`` past a
  threshold (default 1%); no test, the count hardly moves between runs;
- timing (latency or step time, and peak memory): ``regressed`` or
  ``improved`` needs both a ratio of medians beyond the metric's threshold
  (default 10%) and significance: a two-sided Mann-Whitney U test (p < 0.05)
  on the round medians where both runs were timed in rounds (too few: ``too few
  rounds to test``), else on the raw samples of one process (as asv does),
  or non-overlapping intervals (median ± IQR/2) when the samples are missing.
  Peak memory has a single value per row: the threshold alone, and 1 MiB;
- accuracy: a drop of more than the tolerance (default 1 point), and with
  several seeds on both sides, of more than twice the standard error of the
  difference of the means.

``normalize`` scales each side's times by its calibration matmul time
(``env.json``), so that runs from two machines, or from one machine at two
speeds, compare fairly. Rows only in the baseline are ``missing``, rows only
in the current run ``new``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from architectures import Family
from architectures._enum import TextEnum
from benchmarks import results
from benchmarks.errors import UserError
from benchmarks.options import (
    DEFAULT_ACC_TOLERANCE_PTS,
    DEFAULT_INSTRUCTION_THRESHOLD,
    DEFAULT_THRESHOLD,
    MIN_ROUNDS_FOR_TEST,
)
from benchmarks.schema import (
    ROUNDS_COLUMN,
    SAMPLES_COLUMN,
    SETTINGS,
    SYNTHETIC,
    Config,
    Identity,
    Mode,
    SchemaError,
    key_fields,
    present,
)

POOLED = ("seed",)  # the seeds of one job are pooled: the key without them
LABEL_DETAILS = ("mode", "batch_size", "dataset", "device", "dtype", *SETTINGS, "threads")
EXACT = ("params", "macs", "flops")
INSTRUCTIONS = ("instructions",)
TIMES = ("time_median_ms",)
MEMORY = ("peak_mem_mb",)
ACCURACY = ("test_acc",)
SIGNIFICANCE = 0.05
MEMORY_FLOOR_MB = 1.0
MIN_SAMPLES_FOR_TEST = 5  # fewer on either side: the interval rule instead


class Verdict(TextEnum):
    """A metric's verdict, in the order tables list them."""

    REGRESSED = "regressed"
    CHANGED = "changed"
    UNMEASURED = "not measured"  # in CURRENT, where the baseline has it (a crash, say)
    MISSING = "missing"
    NEW = "new"
    IMPROVED = "improved"
    UNTESTED = "too few rounds to test"
    OK = "ok"


FAILING = (Verdict.REGRESSED, Verdict.CHANGED, Verdict.UNMEASURED)


@dataclass
class Side:
    """One input: its rows (one per identity), with raw samples, and its calibration."""

    source: str
    rows: pd.DataFrame
    calibration_s: float | None = None
    cpu_features: tuple[str, ...] | None = None  # env.json's, where it records them


@dataclass(frozen=True)
class Comparison:
    job: str
    metric: str
    baseline: float | None
    current: float | None
    ratio: float | None
    verdict: Verdict
    note: str = ""


@dataclass
class Settings:
    thresholds: dict[str, float] = field(default_factory=dict)  # metric -> fraction
    default_threshold: float = DEFAULT_THRESHOLD
    acc_tolerance_pts: float = DEFAULT_ACC_TOLERANCE_PTS
    normalize: bool = False

    def threshold(self, metric: str) -> float:
        """The metric's own threshold, else the instructions' default or the timings'."""
        if metric in INSTRUCTIONS:
            return self.thresholds.get(metric, DEFAULT_INSTRUCTION_THRESHOLD)
        return self.thresholds.get(metric, self.default_threshold)


# --- reading --------------------------------------------------------------------------


def load_side(path: str | Path) -> Side:
    """An archbench run or a pytest-benchmark JSON file, as rows keyed by identity."""
    path = Path(path)
    if path.suffix == ".json":
        return load_pytest_benchmark(path)
    raw = {SAMPLES_COLUMN: "samples", ROUNDS_COLUMN: "rounds"}
    table = results.load(path, samples=True).rename(columns=raw)
    env = results.read_env((path if path.is_dir() else path.parent) / results.ENV_FILE)
    calibration = (env.get("calibration") or {}).get("matmul_median_s")
    features = env.get("cpu_features")
    features = tuple(features) if isinstance(features, list) else None
    return Side(str(path), pool_seeds(table), calibration, features)


def instruction_set_note(baseline: Side, current: Side) -> str | None:
    """A line saying where the two runs' CPUs differ in instruction-set extensions
    (results.cpu_features), or None: --normalize scales by a matmul's time and cannot
    undo kernels that an extension enables or takes away (bf16 ones above all)."""
    if baseline.cpu_features is None or current.cpu_features is None:
        return None
    ours, theirs = set(baseline.cpu_features), set(current.cpu_features)
    if ours == theirs:
        return None
    only = [
        f"only the {name}'s: {' '.join(sorted(features))}"
        for name, features in (("baseline", ours - theirs), ("current run", theirs - ours))
        if features
    ]
    return (
        f"the two runs ran on CPUs with different instruction set extensions ({'; '.join(only)}):"
        " their times compare the machines' kernels as well as the code"
    )


def load_pytest_benchmark(path: Path) -> Side:
    """A pytest-benchmark JSON file: one timing row per benchmark, identified by the
    archbench keys in its ``extra_info`` when it has them, else by its full name."""
    if not path.is_file():
        raise UserError(f"no results at {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path} is not JSON: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise UserError(f"{path} is neither an archbench run nor a pytest-benchmark file")
    machine = data.get("machine_info") or {}
    if not isinstance(machine, dict) or not isinstance(machine.get("torch_threads", 0), int):
        raise UserError(f"{path}: machine_info is not a table with torch_threads a whole number")
    threads, calibration = machine.get("torch_threads", 0), machine.get("archbench_calibration_s")
    if calibration is not None and not (isinstance(calibration, int | float) and calibration > 0):
        raise UserError(f"{path}: archbench_calibration_s is {calibration!r}, not seconds")
    rows = [benchmark_row(bench, threads, path) for bench in data["benchmarks"]]
    return Side(str(path), pool_seeds(pd.DataFrame(rows)), calibration)


def benchmark_row(bench: Any, threads: int, path: Path) -> dict[str, Any]:
    """One pytest-benchmark entry as a row; UserError naming it when it is malformed."""
    name = bench.get("fullname") if isinstance(bench, dict) else None
    if not isinstance(name, str):
        raise UserError(f"{path}: a benchmark without a fullname: {json.dumps(bench)[:80]}")
    info, stats = bench.get("extra_info") or {}, bench.get("stats")
    if not isinstance(stats, dict) or not isinstance(info, dict):
        raise UserError(f"{path}: benchmark {name} has no stats (or extra_info is not a table)")
    try:
        identity = benchmark_identity(name, info, threads)
        raw = stats.get("data")
        return {
            **identity.record(),
            "params": info.get("params"),
            "macs": info.get("macs"),
            "flops": info.get("flops"),
            "time_median_ms": float(stats["median"]) * 1e3,
            "time_iqr_ms": float(stats["iqr"]) * 1e3,
            "samples": [float(value) * 1e3 for value in raw] if raw else None,
            "rounds": None,
        }
    except SchemaError as error:
        raise UserError(f"{path}: benchmark {name}: {error}") from None
    except (KeyError, TypeError, ValueError) as error:
        raise UserError(f"{path}: benchmark {name}: {type(error).__name__}: {error}") from None


def benchmark_identity(fullname: str, info: dict[str, Any], threads: int) -> Identity:
    """A pytest-benchmark's identity: archbench's, kept in ``extra_info`` (benchmarks/perf
    writes it; files from before its seed and threads were kept ran seed 0 on the
    machine's ``threads``), or else its full name as the architecture, timed as is."""
    if "arch" in info:
        return Identity.from_record({"seed": 0, "threads": threads, **info})
    return Identity(
        suite="pytest-benchmark", arch=fullname, family=Family.OTHER, config=Config(),
        dataset=SYNTHETIC, device="cpu", dtype="fp32", mode=Mode.INFER, batch_size=1,
        input_shape=(), seed=0, threads=threads,
    )  # fmt: skip


def pool_seeds(table: pd.DataFrame) -> pd.DataFrame:
    """One row per job (``key``: its identity's, without the seed): exact metrics and
    timings of the first seed, the samples and round medians of all, and every seed's
    accuracy in ``acc_values``."""
    if table.empty:
        return table
    pooled = []
    jobs = table.assign(key=results.keys(table, without=POOLED))
    for _, group in jobs.groupby("key", sort=False):
        row = group.iloc[0].to_dict()
        for raw in ("samples", "rounds"):
            values = [v for value in group.get(raw, []) if isinstance(value, list) for v in value]
            row[raw] = values or None
        accuracy = group["test_acc"].dropna().tolist() if "test_acc" in group else []
        row["acc_values"] = accuracy
        pooled.append(row)
    return pd.DataFrame(pooled)


# --- statistics -----------------------------------------------------------------------


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of the Mann-Whitney U test: exact for small samples without
    ties (the rounds of a run), else the normal approximation with tie and continuity
    corrections (as asv does)."""
    return float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def intervals_apart(base: pd.Series, current: pd.Series, scale: float) -> bool:
    """Whether median ± IQR/2 of the two rows do not overlap."""
    low_high = []
    for row, factor in ((base, 1.0), (current, scale)):
        median, iqr = row["time_median_ms"] * factor, (row.get("time_iqr_ms") or 0) * factor
        low_high.append((median - iqr / 2, median + iqr / 2))
    (b_low, b_high), (c_low, c_high) = low_high
    return c_low > b_high or c_high < b_low


# --- comparing ------------------------------------------------------------------------


def job_label(row: pd.Series) -> str:
    """'resnet20 infer b=1 on mnist5k [cpu, fp32]'."""
    return Identity.from_record(row.to_dict()).label(LABEL_DETAILS)


def compare(baseline: Side, current: Side, settings: Settings | None = None) -> list[Comparison]:
    """Every metric of every row, baseline against current."""
    settings = settings or Settings()
    if baseline.rows.empty or current.rows.empty:
        raise UserError("nothing to compare: one of the two inputs has no rows")
    base = {row["key"]: row for _, row in baseline.rows.iterrows()}
    cur = {row["key"]: row for _, row in current.rows.iterrows()}
    if not base.keys() & cur.keys():
        raise UserError(
            f"{baseline.source} and {current.source} have no job in common "
            f"(same {', '.join(key_names())})"
        )
    comparisons = []
    for key in dict.fromkeys([*base, *cur]):
        if key not in cur:
            comparisons.append(row_only(base[key], Verdict.MISSING))
        elif key not in base:
            comparisons.append(row_only(cur[key], Verdict.NEW))
        else:
            scale = 1.0
            if settings.normalize:
                scale = calibration_scale(base[key], cur[key], baseline, current)
            comparisons += compare_row(base[key], cur[key], settings, scale)
    return comparisons


def calibration_scale(base: pd.Series, cur: pd.Series, baseline: Side, current: Side) -> float:
    """Baseline over current calibration matmul time, each side's from its row's own
    machine where the row records one (a run on a Ray cluster spans machines), else from
    its run's env.json."""

    def seconds(row: pd.Series, side: Side) -> float | None:
        value = row.get("calibration_matmul_s")
        return float(value) if present(value) else side.calibration_s

    ours, theirs = seconds(base, baseline), seconds(cur, current)
    if not (ours and theirs):
        raise UserError("--normalize needs the calibration of both runs (env.json)")
    return ours / theirs


def key_names() -> list[str]:
    return [name.replace("_", " ") for name in key_fields(without=POOLED)]


def row_only(row: pd.Series, verdict: Verdict) -> Comparison:
    return Comparison(job_label(row), "row", None, None, None, verdict)


def compare_row(
    base: pd.Series, cur: pd.Series, settings: Settings, scale: float
) -> list[Comparison]:
    label = job_label(base)
    out = []
    for metric in (*EXACT, *INSTRUCTIONS, *TIMES, *MEMORY):
        if present(base.get(metric)) and not present(cur.get(metric)):
            failed = present(cur.get("status")) and cur.get("status") != "ok"
            why = f": {cur['status']}: {cur.get('message')}" if failed else ""
            out.append(
                Comparison(label, metric, float(base[metric]), None, None, Verdict.UNMEASURED,
                           f"not in current{why}"[:200])
            )  # fmt: skip
    for metric in EXACT:
        if present(base.get(metric)) and present(cur.get(metric)):
            b, c = float(base[metric]), float(cur[metric])
            verdict = Verdict.OK if b == c else Verdict.CHANGED
            out.append(Comparison(label, metric, b, c, c / b if b else None, verdict))
    for metric in INSTRUCTIONS:
        if present(base.get(metric)) and present(cur.get(metric)):
            b, c = float(base[metric]), float(cur[metric])
            verdict = shift(c / b, settings.threshold(metric)) if b else Verdict.OK
            out.append(Comparison(label, metric, b, c, c / b if b else None, verdict))
    for metric in TIMES:
        if present(base.get(metric)) and present(cur.get(metric)):
            out.append(compare_timing(label, metric, base, cur, settings, scale))
    for metric in MEMORY:
        if present(base.get(metric)) and present(cur.get(metric)):
            out.append(compare_memory(label, metric, base, cur, settings))
    for metric in ACCURACY:
        if base.get("acc_values") and cur.get("acc_values"):
            out.append(compare_accuracy(label, metric, base, cur, settings))
    return out


def compare_timing(
    label: str, metric: str, base: pd.Series, cur: pd.Series, settings: Settings, scale: float
) -> Comparison:
    """A timing's verdict: past the threshold and significant. Where both sides were
    timed in rounds (run --rounds, ab), the unit of the test is the round (its median):
    calls within a round are not independent; with fewer than MIN_ROUNDS_FOR_TEST a side,
    a shift past the threshold is UNTESTED. Otherwise (a side of one round, such as an
    older baseline) the calls' samples, or without them the intervals (median +/-
    IQR/2)."""
    b, c = float(base[metric]), float(cur[metric]) * scale
    ratio = c / b
    verdict = shift(ratio, settings.threshold(metric))
    base_rounds, cur_rounds = base.get("rounds") or [], cur.get("rounds") or []
    base_samples, cur_samples = base.get("samples") or [], cur.get("samples") or []
    if min(len(base_rounds), len(cur_rounds)) > 1:
        counts = f"{len(base_rounds)} and {len(cur_rounds)} rounds"
        if min(len(base_rounds), len(cur_rounds)) < MIN_ROUNDS_FOR_TEST:
            untested = Verdict.OK if verdict is Verdict.OK else Verdict.UNTESTED
            return Comparison(label, metric, b, c, ratio, untested, f"{counts}: too few to test")
        p = mann_whitney_p(base_rounds, [r * scale for r in cur_rounds])
        significant, note = p < SIGNIFICANCE, f"p={p:.2g} over {counts}"
    elif min(len(base_samples), len(cur_samples)) >= MIN_SAMPLES_FOR_TEST:
        p = mann_whitney_p(base_samples, [s * scale for s in cur_samples])
        significant, note = p < SIGNIFICANCE, f"p={p:.2g} over calls of one process"
    else:
        significant, note = intervals_apart(base, cur, scale), "intervals (no samples)"
    return Comparison(label, metric, b, c, ratio, verdict if significant else Verdict.OK, note)


def compare_memory(
    label: str, metric: str, base: pd.Series, cur: pd.Series, settings: Settings
) -> Comparison:
    b, c = float(base[metric]), float(cur[metric])
    ratio = c / b if b else None
    beyond_floor = ratio is not None and abs(c - b) > MEMORY_FLOOR_MB
    verdict = shift(ratio, settings.threshold(metric)) if ratio and beyond_floor else Verdict.OK
    return Comparison(label, metric, b, c, ratio, verdict)


def shift(ratio: float, threshold: float) -> Verdict:
    """A cost's verdict from current / baseline: regressed past 1 + threshold, improved
    below its inverse, else ok."""
    if ratio > 1 + threshold:
        return Verdict.REGRESSED
    return Verdict.IMPROVED if ratio < 1 / (1 + threshold) else Verdict.OK


def compare_accuracy(
    label: str, metric: str, base: pd.Series, cur: pd.Series, settings: Settings
) -> Comparison:
    b_values, c_values = np.asarray(base["acc_values"]), np.asarray(cur["acc_values"])
    b, c = float(b_values.mean()), float(c_values.mean())
    margin = settings.acc_tolerance_pts / 100
    note = f"{len(b_values)} vs {len(c_values)} seeds"
    if len(b_values) > 1 and len(c_values) > 1:
        error = math.sqrt(
            b_values.var(ddof=1) / len(b_values) + c_values.var(ddof=1) / len(c_values)
        )
        margin = max(margin, 2 * error)
        note += f", 2 x s.e. {200 * error:.2f} pts"
    verdict = Verdict.OK
    if c < b - margin:
        verdict = Verdict.REGRESSED
    elif c > b + margin:
        verdict = Verdict.IMPROVED
    return Comparison(label, metric, b, c, c / b if b else None, verdict, note)


def exit_code(comparisons: Sequence[Comparison]) -> int:
    """1 when anything regressed or an exact metric changed, else 0."""
    return int(any(item.verdict in FAILING for item in comparisons))


# --- output ---------------------------------------------------------------------------


def as_table(comparisons: Sequence[Comparison], everything: bool = False) -> pd.DataFrame:
    shown = [record(item) for item in comparisons if everything or item.verdict is not Verdict.OK]
    table = pd.DataFrame(shown, columns=list(Comparison.__annotations__))
    rank = {str(verdict): index for index, verdict in enumerate(Verdict)}
    return table.sort_values("verdict", key=lambda v: v.map(rank), kind="stable")


def record(comparison: Comparison) -> dict[str, Any]:
    """A comparison as written (its verdict as text)."""
    return {**asdict(comparison), "verdict": str(comparison.verdict)}


def value_text(metric: str, value: float | None, ratio: bool = False) -> str:
    """A cell of the table: counts as exact integers (269,412), their ratios to 6
    significant digits (1.00004: a change of 12 parameters shows), other values and
    ratios to 4 significant digits without exponents (123,457 ms, 0.01235 ms, 1.053)."""
    if value is None or pd.isna(value):
        return ""
    if metric in (*EXACT, *INSTRUCTIONS):
        return f"{value:.6g}" if ratio else f"{round(value):,}"
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(0, 3 - math.floor(math.log10(abs(value))))
    return f"{value:,.{decimals}f}"


def summary_line(comparisons: Sequence[Comparison]) -> str:
    counts = {verdict: sum(c.verdict is verdict for c in comparisons) for verdict in Verdict}
    parts = [f"{count} {verdict}" for verdict, count in counts.items() if count]
    return f"{len(comparisons)} comparisons: " + ", ".join(parts)


def render(comparisons: Sequence[Comparison], fmt: str, everything: bool = False) -> str:
    """The comparison as a terminal table, Markdown (a pull-request comment) or JSON."""
    if fmt == "json":
        return json.dumps(
            {
                "summary": summary_line(comparisons),
                "exit_code": exit_code(comparisons),
                "comparisons": [record(item) for item in comparisons],
            },
            indent=2,
        )
    table = as_table(comparisons, everything)
    for column in ("baseline", "current", "ratio"):
        texts = map(value_text, table["metric"], table[column], [column == "ratio"] * len(table))
        table[column] = list(texts)
    summary = summary_line(comparisons)
    if table.empty:
        return summary + " (nothing to show: everything is ok)"
    numbers = ("baseline", "current", "ratio")  # as value_text wrote them, right-aligned
    align = ["right" if column in numbers else "left" for column in table.columns]
    options = {"index": False, "disable_numparse": True, "colalign": align}
    if fmt == "markdown":
        return f"**archbench compare**: {summary}\n\n" + table.to_markdown(**options)
    return table.to_markdown(tablefmt="simple", **options) + "\n\n" + summary
