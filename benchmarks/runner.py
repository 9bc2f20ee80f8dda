"""Jobs to rows: expand a suite, measure each job, write each row as it is done.

A job is one architecture (with config overrides) in one mode at one batch
size, on one device in one dtype; it becomes exactly one row, a failure too.
Jobs run through an Executor: in this process, or each in a fresh child process
(``--isolate``) so that one model's memory and library state cannot skew the
next. An executor only maps jobs to rows; the runner owns the files.
"""

from __future__ import annotations

import concurrent.futures
import gc
import json
import logging
import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import torch

import architectures
from benchmarks.data import DataSpec, is_question_answering
from benchmarks.data.sort_of_clevr import SortOfClevr
from benchmarks.errors import UserError
from benchmarks.measure import memory
from benchmarks.measure.calibration import Calibration
from benchmarks.measure.device import (
    Backend,
    check_dtype,
    compiled,
    graphed,
    synchronize,
    to_device,
    use_math,
)
from benchmarks.measure.flops import count_flops, count_step_flops
from benchmarks.measure.latency import Timing, TimingConfig, inference_call, time_calls
from benchmarks.measure.params import count_parameters
from benchmarks.measure.train_step import train_step_call
from benchmarks.results import (
    CURVE_COLUMN,
    CURVES_FILE,
    ENV_FILE,
    ROWS_FILE,
    SAMPLES_COLUMN,
    SCHEMA_VERSION,
    RowLog,
    read_env,
    read_rows,
    row_key,
    write_atomic,
    write_results_csv,
)
from benchmarks.suites import Suite
from benchmarks.train import TrainConfig, train
from benchmarks.train_vqa import answer_all, question_batch, train_vqa

log = logging.getLogger(__name__)
Calibrations = Mapping[str, Calibration]  # by dtype: each job's efficiency uses its dtype's


@dataclass(frozen=True)
class Job:
    suite: str
    arch: str
    config: str  # canonical JSON of the user's config overrides
    mode: str  # "infer" or "train"
    batch_size: int
    device: str
    dtype: str
    threads: int
    input_shape: tuple[int, int, int]  # (C, H, W) the model is built and measured for
    fitted: str = "{}"  # canonical JSON of the builder keys the data set fixes (classes, ...)
    data: DataSpec | None = None
    seed: int = 0
    measure: tuple[str, ...] = ("flops", "time", "memory")
    timing: TimingConfig = field(default_factory=TimingConfig)
    training: TrainConfig | None = None  # set on training jobs that measure accuracy
    backend: Backend = field(default_factory=Backend)

    def overrides(self) -> dict[str, Any]:
        """The builder's config: the input's channels, the data set's keys, then the user's."""
        return {
            "in_channels": self.input_shape[0],
            **json.loads(self.fitted),
            **json.loads(self.config),
        }

    def identity(self) -> dict[str, Any]:
        """The row's identity columns."""
        return {
            "schema_version": SCHEMA_VERSION,
            "suite": self.suite,
            "arch": self.arch,
            "family": architectures.spec(self.arch).family,
            "config": self.config,
            "dataset": self.data.name if self.data else "synthetic",
            "device": torch.device(self.device).type,
            "dtype": self.dtype,
            "mode": self.mode,
            "batch_size": self.batch_size,
            "input_shape": "x".join(map(str, self.input_shape)),
            "seed": self.seed,
            "threads": self.threads,
            **self.backend.columns(),
            "cuda_graphs": self.graphed,
        }

    @property
    def graphed(self) -> bool:
        """Whether the timed call is replayed from a CUDA graph (inference only)."""
        return self.backend.cuda_graphs and self.mode == "infer"

    def describe(self) -> str:
        config = "" if self.config == "{}" else f" {self.config}"
        seed = f" seed={self.seed}" if self.training else ""
        return f"{self.arch}{config} {self.mode} b={self.batch_size}{seed}"


def expand_jobs(
    suite: Suite,
    device: torch.device,
    threads: int,
    *,
    data_root: str | None = None,
    download: bool = False,
    cache_dir: str | None = None,
) -> list[Job]:
    """Per architecture: an inference job per batch size, and a training job per seed
    (timing the training step, and training to accuracy when the suite measures it).
    With a data set, models are built for its input shape, classes and vocabulary.
    A setting the device cannot honour (tf32 or CUDA graphs on the CPU) is a UserError."""
    try:
        for entry in suite.entries:
            suite.backend_for(entry).check(device)
            check_dtype(suite.dtype_for(entry), device)
    except ValueError as error:
        raise UserError(str(error)) from None
    jobs = []
    for entry in suite.entries:
        name = suite.dataset_for(entry)
        data = DataSpec(name, data_root, download, cache_dir) if name else None
        dataset = data.load() if data else None  # loaded once per process; fails early
        common = {
            "suite": suite.name,
            "arch": entry.arch,
            "config": entry.config_json,
            "device": str(device),
            "dtype": suite.dtype_for(entry),
            "threads": threads,
            "input_shape": dataset.shape
            if dataset
            else _default_shape(entry.arch, suite.input_size),
            "fitted": json.dumps(dataset.model_config() if dataset else {}, sort_keys=True),
            "data": data,
            "measure": suite.measure,
            "timing": suite.timing,
            "backend": suite.backend_for(entry),
        }
        for batch in suite.batch_sizes_for(entry):
            jobs.append(Job(mode="infer", batch_size=batch, seed=suite.seeds[0], **common))
        if suite.train_batch_size_for(entry):
            training = suite.training_for(entry) if suite.measures_accuracy(entry) else None
            for seed in suite.seeds if training else suite.seeds[:1]:
                jobs.append(
                    Job(
                        mode="train",
                        batch_size=suite.train_batch_size_for(entry),
                        seed=seed,
                        training=training,
                        **common,
                    )
                )
    return jobs


def _default_shape(arch: str, input_size: int | None) -> tuple[int, int, int]:
    channels, height, width = architectures.spec(arch).input_shape
    return (channels, input_size, input_size) if input_size else (channels, height, width)


def execute(job: Job, calibration: Calibration | None = None) -> dict[str, Any]:
    """Run one job (``calibration``: in the job's dtype, for hardware efficiency); never
    raises for a failure of the model, which becomes the row's status."""
    row = {**job.identity(), "status": "ok", "message": ""}
    row["started_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    started = time.perf_counter()
    try:
        row.update(measure(job, calibration))
    except torch.cuda.OutOfMemoryError as error:
        row.update(status="oom", message=_first_line(error))
    except MemoryError as error:
        row.update(status="oom", message=f"MemoryError: {_first_line(error)}")
    except Exception as error:  # any other failure of the model: recorded, the run goes on
        log.debug("job %s failed", job.describe(), exc_info=True)
        status = "oom" if "out of memory" in str(error) else "failed"
        row.update(status=status, message=f"{type(error).__name__}: {_first_line(error)}")
    finally:
        gc.collect()
        if job.device.startswith("cuda"):
            torch.cuda.empty_cache()
    row["duration_s"] = round(time.perf_counter() - started, 3)
    return row


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [""])[0][:300]


def measure(job: Job, calibration: Calibration | None) -> dict[str, Any]:
    """The metrics of one job, measured in this process."""
    torch.set_num_threads(job.threads)
    torch.manual_seed(job.seed)
    device = torch.device(job.device)
    job.backend.apply(device)
    use_math(job.dtype)
    baseline = memory.current_bytes(device)
    model = to_device(architectures.create(job.arch, **job.overrides()), device, job.backend)
    inputs = job_inputs(job, device)
    result: dict[str, Any] = {}
    params = count_parameters(model)
    result.update(params=params.total, trainable_params=params.trainable)

    if "flops" in job.measure:
        result.update(flop_columns(model, inputs))
    call = timed_call(job, model, inputs, device, compile=job.backend.compile)
    if job.mode == "infer":
        step_flops = result.get("flops", 0) * job.batch_size
    elif "flops" in job.measure:  # counted eagerly: FLOPs do not depend on compilation
        eager = (
            timed_call(job, model, inputs, device, compile=False) if job.backend.compile else call
        )
        step_flops = count_step_flops(eager)
    else:
        step_flops = 0
    call = first_call(job, call, device, result)

    if "memory" in job.measure:
        peak = memory.peak_bytes(call, device)
        if peak is not None and baseline is not None:
            result["peak_mem_mb"] = round((peak - baseline) / memory.MIB, 2)
            result["mem_method"] = memory.method(device)

    if "time" in job.measure:
        timing = time_calls(call, device, job.timing)
        result.update(timing_columns(timing, job.batch_size))
        if step_flops:
            result.update(efficiency_columns(step_flops / 1e9, timing, calibration))

    if job.training is not None:
        del model, call
        result.update(train_to_accuracy(job, device))
        if step_flops and calibration and result.get("train_steps"):
            achieved = step_flops / 1e9 * result["train_steps"] / result["train_time_s"]
            result["train_hw_efficiency"] = calibration.efficiency(achieved)
    return result


def job_inputs(job: Job, device: torch.device) -> tuple[torch.Tensor, ...]:
    """The job's random example inputs on ``device``, images in the backend's layout."""
    inputs = architectures.spec(job.arch).example_inputs(
        job.batch_size, image_size=job.input_shape[1], device=device, **job.overrides()
    )
    layout = job.backend.memory_format()
    return tuple(t.contiguous(memory_format=layout) if t.dim() == 4 else t for t in inputs)


def first_call(
    job: Job, call: Callable[[], torch.Tensor], device: torch.device, result: dict[str, Any]
) -> Callable[[], torch.Tensor]:
    """Run the call once, untimed (it compiles, when compiled: ``compile_s``), check its
    output is finite, and capture it in a CUDA graph when asked; the call to time."""
    synchronize(device)
    started = time.perf_counter()
    output = call()
    synchronize(device)
    if job.backend.compile:
        result["compile_s"] = time.perf_counter() - started
    if not torch.isfinite(output).all():
        raise FloatingPointError("non-finite output (NaN or inf)")
    return graphed(call, device) if job.graphed else call


def timed_call(
    job: Job,
    model: torch.nn.Module,
    inputs: tuple[torch.Tensor, ...],
    device: torch.device,
    *,
    compile: bool,
) -> Callable[[], torch.Tensor]:
    """The call a job times: a forward pass (infer) or a training step (train)."""
    if job.mode == "infer":
        return inference_call(compiled(model, compile), inputs, device, job.dtype)
    num_classes = architectures.spec(job.arch).config(**job.overrides())["num_classes"]
    forward, targets = training_batch(job, model, inputs, num_classes, device, compile=compile)
    return train_step_call(model, forward, targets, device, job.dtype)


def training_batch(
    job: Job,
    model: torch.nn.Module,
    inputs: tuple[torch.Tensor, ...],
    num_classes: int,
    device: torch.device,
    *,
    compile: bool = False,
) -> tuple[Callable[[], torch.Tensor], torch.Tensor]:
    """What the job's timed training step runs: (forward, targets). On Sort-of-CLEVR a
    step is train_vqa's: each of the batch's images encoded once, all its questions
    answered (batch_size images, 20 x batch_size questions)."""
    if job.data is not None and is_question_answering(job.data.name):
        tokens = question_batch(job.batch_size, device)
        targets = torch.randint(num_classes, (tokens.shape[0] * tokens.shape[1],), device=device)
        answer = compiled(answer_all, compile)
        return lambda: answer(model, inputs[0], tokens), targets
    targets = torch.randint(num_classes, (job.batch_size,), device=device)
    forward = compiled(model, compile)
    return lambda: forward(*inputs), targets


def flop_columns(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> dict[str, Any]:
    """Per-sample MACs/FLOPs by both counters, counted at batch 1."""
    counts = count_flops(model, tuple(tensor[:1] for tensor in inputs))
    columns = {
        "macs": counts.macs,
        "flops": counts.flops,
        "fvcore_macs": counts.fvcore_macs,
        "flop_disagreement_pct": counts.disagreement_pct,
        "fvcore_uncounted": ";".join(f"{op}:{n}" for op, n in counts.fvcore_uncounted.items()),
    }
    if counts.fvcore_error:
        columns["message"] = f"fvcore: {counts.fvcore_error}"
    return columns


def timing_columns(timing: Timing, batch_size: int) -> dict[str, Any]:
    return {
        "time_median_ms": timing.median * 1e3,
        "time_p90_ms": timing.p90 * 1e3,
        "time_iqr_ms": timing.iqr * 1e3,
        "time_mean_ms": timing.mean * 1e3,
        "time_n": len(timing.samples),
        "time_rounds": 1,
        "throughput_per_s": batch_size / timing.median,
        SAMPLES_COLUMN: [round(sample * 1e3, 6) for sample in timing.samples],
    }


def train_to_accuracy(job: Job, device: torch.device) -> dict[str, Any]:
    """Train a freshly initialised model under the job's budget: the accuracy columns and curve."""
    config = job.training
    dataset = job.data.load()
    torch.manual_seed(job.seed)
    model = architectures.create(job.arch, **job.overrides())

    def progress(epoch: dict[str, Any]) -> None:
        log.info(
            "    %s epoch %d/%d: loss %.3f, test accuracy %.2f%% (%.0f s of training)",
            job.arch, epoch["epoch"], config.epochs, epoch["train_loss"],
            100 * epoch["test_acc"], epoch["train_time_s"],
        )  # fmt: skip

    trainer = train_vqa if isinstance(dataset, SortOfClevr) else train
    outcome = trainer(
        model, dataset, config,
        batch_size=job.batch_size, device=device, dtype=job.dtype, seed=job.seed,
        backend=job.backend, on_epoch=progress,
    )  # fmt: skip
    columns = {
        "epochs": config.epochs,
        "lr": config.lr,
        "weight_decay": config.weight_decay,
        "schedule": config.schedule,
        "label_smoothing": config.label_smoothing,
        "time_budget_s": config.time_budget_s,
        "train_subset": config.train_subset,
        "target_acc": config.target_accuracy,
        **outcome.columns(),
        CURVE_COLUMN: outcome.curve,
    }
    if outcome.status != "ok":
        columns.update(status=outcome.status, message=outcome.message)
    return columns


class Executor(Protocol):
    """Maps jobs to rows, in order. A Ray executor for many machines fits behind this too."""

    def run(self, jobs: Sequence[Job], calibrations: Calibrations) -> Iterator[dict[str, Any]]: ...


class InProcessExecutor:
    """Runs every job in this process, one after the other."""

    def run(self, jobs: Sequence[Job], calibrations: Calibrations) -> Iterator[dict[str, Any]]:
        for job in jobs:
            yield execute(job, calibrations.get(job.dtype))


class SubprocessExecutor:
    """Runs each job in a fresh child process (spawned, so no state is inherited)."""

    def run(self, jobs: Sequence[Job], calibrations: Calibrations) -> Iterator[dict[str, Any]]:
        context = multiprocessing.get_context("spawn")
        for job in jobs:
            with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
                try:
                    yield pool.submit(execute, job, calibrations.get(job.dtype)).result()
                except BrokenProcessPool:
                    yield {
                        **job.identity(),
                        "status": "failed",
                        "message": "the job's process died (killed, or out of memory?)",
                    }


@dataclass
class RunOutcome:
    rows: list[dict[str, Any]]
    skipped: int
    interrupted: bool = False

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [row for row in self.rows if row.get("status") != "ok"]


def prepare_run_dir(out: Path, resume: bool) -> list[dict[str, Any]]:
    """Create (or, resuming, reopen) a run directory; the rows it already holds."""
    rows_path = out / ROWS_FILE
    if rows_path.exists() and not resume:
        raise UserError(
            f"{out} already holds a run: add --resume to finish it, or choose another --out"
        )
    if resume and not rows_path.exists():
        raise UserError(f"nothing to resume: {rows_path} does not exist")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise UserError(f"cannot write to {out}: {error.strerror or error}") from None
    return read_rows(rows_path) if resume else []


def record_session(out: Path, env: dict[str, Any], calibrations: Calibrations) -> None:
    """env.json: the latest environment, and every session's start and calibrations (by
    dtype); ``calibration`` is the first dtype's, the one compare --normalize divides by."""
    path = out / ENV_FILE
    sessions = read_env(path).get("sessions", [])
    by_dtype = {dtype: calibration.as_dict() for dtype, calibration in calibrations.items()}
    session = {
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": env.get("command"),
        "calibrations": by_dtype,
    }
    first = next(iter(by_dtype.values()), None)
    record = {
        **env,
        "calibration": first,
        "calibrations": by_dtype,
        "sessions": [*sessions, session],
    }
    write_atomic(path, json.dumps(record, indent=2, default=str) + "\n")


def run(
    jobs: Sequence[Job],
    out: Path,
    *,
    executor: Executor,
    calibrations: Calibrations,
    done: Iterable[dict[str, Any]] = (),
    rounds: int = 1,
) -> RunOutcome:
    """Run the jobs not already ``done`` (rows with status ok), appending each row to
    rows.jsonl as it finishes; results.csv is rewritten at the end, also on Ctrl-C.

    With ``rounds`` > 1 the jobs that only time (no training) run again, round after
    round, and each row pools the samples of every round: a burst of load on a shared
    machine then hits one round of several jobs instead of all of one job's samples."""
    finished = {row_key(row) for row in done if row.get("status") == "ok"}
    todo = [job for job in jobs if row_key(job.identity()) not in finished]
    if len(todo) < len(jobs):
        log.info("resuming: %d of %d jobs already done", len(jobs) - len(todo), len(jobs))
    outcome = RunOutcome(rows=[], skipped=len(jobs) - len(todo))
    row_log, curve_log = RowLog(out / ROWS_FILE), RowLog(out / CURVES_FILE)
    started = time.perf_counter()
    try:
        for index, row in enumerate(executor.run(todo, calibrations), 1):
            for epoch in row.pop(CURVE_COLUMN, []):
                curve_log.append({**todo[index - 1].identity(), **epoch})
            row_log.append(row)
            outcome.rows.append(row)
            log.info("%s", progress_line(index, len(todo), todo[index - 1], row, started))
        for round_number in range(2, rounds + 1):
            run_round(todo, outcome, row_log, executor, calibrations, round_number)
    except KeyboardInterrupt:
        outcome.interrupted = True
    finally:
        write_results_csv(out)
    return outcome


def run_round(
    jobs: Sequence[Job],
    outcome: RunOutcome,
    row_log: RowLog,
    executor: Executor,
    calibrations: Calibrations,
    round_number: int,
) -> None:
    """Time the timing-only jobs that succeeded once more, pooling their samples."""
    rows = {row_key(row): index for index, row in enumerate(outcome.rows)}
    timed = [
        job
        for job in jobs
        if job.training is None
        and row_key(job.identity()) in rows
        and outcome.rows[rows[row_key(job.identity())]].get(SAMPLES_COLUMN)
    ]
    log.info("round %d: timing %d jobs again", round_number, len(timed))
    for job, row in zip(timed, executor.run(timed, calibrations), strict=True):
        index = rows[row_key(job.identity())]
        if row["status"] == "ok":
            outcome.rows[index] = pooled(outcome.rows[index], row, round_number, calibrations)
            row_log.append(outcome.rows[index])


def pooled(
    first: dict[str, Any], again: dict[str, Any], rounds: int, calibrations: Calibrations
) -> dict[str, Any]:
    """``first`` with the samples of ``again`` added and its timing columns recomputed."""
    samples = [*first[SAMPLES_COLUMN], *again[SAMPLES_COLUMN]]
    timing = Timing(tuple(sample / 1e3 for sample in samples))
    row = {**first, **timing_columns(timing, first["batch_size"]), "time_rounds": rounds}
    if first.get("step_gflop"):
        row.update(
            efficiency_columns(first["step_gflop"], timing, calibrations.get(first["dtype"]))
        )
    return row


def efficiency_columns(
    step_gflop: float, timing: Timing, calibration: Calibration | None
) -> dict[str, Any]:
    """Achieved GFLOP/s of the timed call, and its fraction of the calibration matmul's."""
    columns = {"step_gflop": step_gflop, "achieved_gflops_per_s": step_gflop / timing.median}
    if calibration is not None:
        columns["hw_efficiency"] = calibration.efficiency(columns["achieved_gflops_per_s"])
    return columns


def progress_line(index: int, total: int, job: Job, row: dict[str, Any], started: float) -> str:
    elapsed = time.perf_counter() - started
    eta = elapsed / index * (total - index)
    if row["status"] != "ok":
        what = f"{row['status'].upper()}: {row['message']}"
    elif "time_median_ms" in row:
        what = f"{row['time_median_ms']:.2f} ms median, p90 {row['time_p90_ms']:.2f} ms"
    else:
        what = "ok"
    return (
        f"[{index}/{total}] {job.describe()}: {what} ({_clock(elapsed)} elapsed, ETA {_clock(eta)})"
    )


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}:{seconds:02d}"
