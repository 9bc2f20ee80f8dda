"""Jobs to rows: expand a suite, measure each job, write each row as it is done.

A job is one architecture (with config overrides) in one mode at one batch
size, on one device in one dtype; it becomes exactly one row, a failure too.
Jobs run through an Executor: in this process, or each in a fresh child process
(``--isolate``) so that one model's memory and library state cannot skew the
next; a run that trains in this process times its rounds after the first in a
fresh process each. An executor only maps jobs to measurements; the runner owns
the files.
What a job trains on, and how, is its task's (benchmarks/tasks/), looked up
by the net's input kind.
"""

from __future__ import annotations

import concurrent.futures
import gc
import json
import logging
import multiprocessing
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import torch

import architectures
from architectures import ArchSpec
from benchmarks import progress, run_dir, tasks
from benchmarks.errors import UserError
from benchmarks.measure import instructions, memory
from benchmarks.measure.calibration import Calibration, calibrate
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
from benchmarks.results import (
    CURVES_FILE,
    ENV_FILE,
    ROWS_FILE,
    JsonLines,
    cpu_model,
    device_name,
    environment,
    identities,
    read_env,
    read_rows,
    write_atomic,
    write_results_csv,
)
from benchmarks.schema import (
    SYNTHETIC,
    Config,
    Counts,
    Identity,
    Memory,
    Mode,
    Node,
    Row,
    Status,
    Times,
    Training,
)
from benchmarks.suites import CALL_MEASUREMENTS, Entry, Suite
from benchmarks.tasks import DataSpec, Task
from benchmarks.train import OptimizerStep, TrainConfig, TrainResult

log = logging.getLogger(__name__)
Calibrations = Mapping[str, Calibration]  # by dtype: each job's efficiency uses its dtype's
NOISY_IQR_FRACTION = 0.5  # of the median: past it, a row's timing carries a warning


@dataclass(frozen=True)
class Job:
    """One row to measure: its identity, and how (data, what to measure, timing, recipe)."""

    identity: Identity
    fitted: Config = Config()  # the builder keys the data set fixes (classes, channels, ...)
    data: DataSpec | None = None
    measure: tuple[str, ...] = ("flops", "time", "memory")
    timing: TimingConfig = field(default_factory=TimingConfig)
    recipe: TrainConfig = field(default_factory=TrainConfig)  # of the timed step and training
    trains: bool = False  # a training job that trains to accuracy under the recipe's budget
    rounds: int = 1  # timed so many times, round after round (run), its samples pooled

    @property
    def spec(self) -> ArchSpec:
        return architectures.spec(self.identity.arch)

    @property
    def task(self) -> Task:
        return tasks.for_input(self.spec.input_kind)

    @property
    def backend(self) -> Backend:
        return self.identity.backend

    def overrides(self) -> dict[str, Any]:
        """The builder's config: the data set's keys, then the user's."""
        return {**self.fitted, **self.identity.config}

    def describe(self) -> str:
        return self.identity.label(("mode", "batch_size", *(("seed",) if self.trains else ())))

    def plan(self) -> str:
        """What the job measures and how, as one text: a run is resumed with the same."""
        how = {
            "measure": list(self.measure),
            "timing": asdict(self.timing),
            "recipe": asdict(self.recipe),
            "trains": self.trains,
        }
        return json.dumps({**self.identity.record(), **how}, sort_keys=True, default=str)


@dataclass(frozen=True)
class Measured:
    """What a job gave: its row, and its training curve (one record per epoch)."""

    row: Row
    curve: tuple[dict[str, Any], ...] = ()


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
        spec = architectures.spec(entry.arch)
        config = Config(entry.config)
        identity = Identity(
            suite=suite.name,
            arch=entry.arch,
            family=spec.family,
            config=config,
            dataset=name or SYNTHETIC,
            device=device.type,
            dtype=suite.dtype_for(entry),
            mode=Mode.INFER,
            batch_size=1,
            input_shape=dataset.shape
            if dataset
            else spec.sample_shape(spec.config(**config), suite.input_size),
            seed=suite.seeds_for(entry)[0],
            threads=threads,
            backend=suite.backend_for(entry),
        )
        entry_job = Job(
            identity,
            fitted=Config(dataset.model_config() if dataset else {}),
            data=data,
            measure=suite.measure,
            timing=suite.timing,
            recipe=suite.training_for(entry),
            rounds=suite.rounds_for(entry),
        )
        timing_job = entry_job
        if dataset and (spec.native_input or suite.input_size):
            timing_job = synthetic(entry_job, spec, suite.input_size)
        if any(name in CALL_MEASUREMENTS for name in suite.measure):  # not accuracy alone
            for batch in suite.batch_sizes_for(entry):
                batch_identity = replace(timing_job.identity, batch_size=batch)
                jobs.append(replace(timing_job, identity=batch_identity))
        jobs += training_jobs(suite, entry, entry_job, timing_job)
    return jobs


def synthetic(job: Job, spec: ArchSpec, input_size: int | None) -> Job:
    """``job`` on random inputs of the net's own shape (``input_size`` square), its own
    head: how the jobs that do not train time a model of another library, or at
    ``--input-size``, in a suite with a data set."""
    config = spec.config(**job.identity.config)
    identity = replace(
        job.identity, dataset=SYNTHETIC, input_shape=spec.sample_shape(config, input_size)
    )
    return replace(job, identity=identity, fitted=Config(), data=None)


def training_jobs(suite: Suite, entry: Entry, entry_job: Job, timing_job: Job) -> list[Job]:
    """The entry's training jobs: one per seed when it trains to accuracy (on the data
    set), else one that times the step (the first seed's, as the inference rows are
    timed); none without a training batch size."""
    batch = suite.train_batch_size_for(entry)
    if not batch:
        return []
    trains = suite.measures_accuracy(entry)
    entry_job = entry_job if trains else timing_job
    identity = entry_job.identity
    graphless = replace(identity.backend, cuda_graphs=False)  # CUDA graphs: inference only
    base = replace(identity, mode=Mode.TRAIN, batch_size=batch, backend=graphless)
    seeds = suite.seeds_for(entry)
    seeds = seeds if trains else seeds[:1]
    return [replace(entry_job, identity=replace(base, seed=seed), trains=trains) for seed in seeds]


def execute(job: Job, calibration: Calibration | None = None) -> Measured:
    """Run one job (``calibration``: in the job's dtype, for hardware efficiency); never
    raises for a failure of the model, which becomes the row's status."""
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    started = time.perf_counter()
    try:
        measured = measure(job, calibration)
    except torch.cuda.OutOfMemoryError as error:
        measured = failed(job, Status.OOM, first_line(error))
    except MemoryError as error:
        measured = failed(job, Status.OOM, f"MemoryError: {first_line(error)}")
    except Exception as error:  # any other failure of the model: recorded, the run goes on
        log.debug("job %s failed", job.describe(), exc_info=True)
        status = Status.OOM if is_out_of_memory(error) else Status.FAILED
        measured = failed(job, status, f"{type(error).__name__}: {first_line(error)}")
    finally:
        gc.collect()
        if job.identity.device == "cuda":
            torch.cuda.empty_cache()
    duration = round(time.perf_counter() - started, 3)
    row = measured.row.but(
        started_at=started_at,
        duration_s=duration,
        node=this_node(job.identity.device, calibration),
    )
    return replace(measured, row=row)


def is_out_of_memory(error: BaseException) -> bool:
    """Whether an exception says an allocation failed (CUDA's, or the CPU allocator's)."""
    return any(words in str(error) for words in ("out of memory", "can't allocate memory"))


def this_node(device: str, calibration: Calibration | None) -> Node:
    """This machine, for a row: its names and the calibration its job's rates used."""
    try:
        name: str | None = device_name(torch.device(device))
    except (RuntimeError, AssertionError):  # a CUDA row on a machine whose CUDA failed
        name = None
    return Node(
        hostname=socket.gethostname(),
        device_name=name,
        cpu=cpu_model(),
        calibration_matmul_s=calibration.matmul_median_s if calibration else None,
        calibration_gflops_per_s=calibration.matmul_gflops_per_s if calibration else None,
    )


def failed(job: Job, status: Status, message: str) -> Measured:
    return Measured(Row(identity=job.identity, status=status, message=message))


def first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [""])[0][:300]


def measure(job: Job, calibration: Calibration | None) -> Measured:
    """The metrics of one job, measured in this process."""
    identity = job.identity
    torch.set_num_threads(identity.threads)
    torch.manual_seed(identity.seed)
    device = torch.device(identity.device)
    job.backend.apply(device)
    use_math(identity.dtype)
    baseline = memory.current_bytes(device)
    model = to_device(architectures.create(identity.arch, **job.overrides()), device, job.backend)
    row = measure_model(job, model, job_inputs(job, device), calibration, baseline)
    if not job.trains:
        return Measured(row)
    del model
    return train_to_accuracy(job, device, row, calibration)


def measure_model(
    job: Job,
    model: torch.nn.Module,
    inputs: tuple[torch.Tensor, ...],
    calibration: Calibration | None,
    baseline: int | None,
) -> Row:
    """The row of a built model's call: counts, times and peak memory above ``baseline``
    (the bytes held before the model was built), as ``job.measure`` asks."""
    identity, device = job.identity, torch.device(job.identity.device)
    counts, message = count_costs(job, model, inputs)
    call = timed_call(job, model, inputs, device, compile=job.backend.compile)
    if counts.flops is not None:
        flops = step_flops(job, counts.flops, model, inputs, device, call)
        counts = replace(counts, step_gflop=flops / 1e9)
    call, compile_s = first_call(job, call, device)
    used = peak_memory(call, device, baseline) if "memory" in job.measure else Memory()
    if "instructions" in job.measure:
        counts = replace(counts, instructions=instructions.count(call))
    times = Times(compile_s=compile_s)
    samples: tuple[float, ...] = ()
    round_medians: tuple[float, ...] = ()
    status = Status.OK
    if "time" in job.measure:
        timing = time_calls(call, device, job.timing)
        times = times_of(timing, identity.batch_size, counts.step_gflop, calibration, compile_s)
        message = join(message, noise_note(timing))
        samples = tuple(round(sample * 1e3, 6) for sample in timing.samples)
        round_medians = (round(timing.median * 1e3, 6),)
        if identity.mode is Mode.TRAIN and not torch.isfinite(call()).all():
            status = Status.DIVERGED  # the recipe's steps on random labels: NaN arithmetic
            message = join(message, "the timed training step's loss became non-finite")
    stepped = identity.mode is Mode.TRAIN  # the timed step ran the recipe's optimizer
    return Row(
        identity=identity,
        status=status,
        message=message,
        counts=counts,
        times=times,
        memory=used,
        training=Training(optimizer=job.recipe.optimizer) if stepped else Training(),
        samples_ms=samples,
        round_medians_ms=round_medians,
    )


def noise_note(timing: Timing) -> str:
    """A warning, logged and kept in the row, when the samples spread too much to mean
    much: an interquartile range of more than half the median."""
    if timing.iqr <= NOISY_IQR_FRACTION * timing.median:
        return ""
    note = (
        f"noisy timing: IQR {timing.iqr * 1e3:.3g} ms over half the median "
        f"{timing.median * 1e3:.3g} ms (a busy machine? try --rounds or --isolate)"
    )
    log.warning("%s", note)
    return note


def job_inputs(job: Job, device: torch.device) -> tuple[torch.Tensor, ...]:
    """The job's random example inputs on ``device``, images in the backend's layout."""
    inputs = job.spec.example_inputs(
        job.identity.batch_size, shape=job.identity.input_shape, device=device, **job.overrides()
    )
    layout = job.backend.memory_format()
    return tuple(t.contiguous(memory_format=layout) if t.dim() == 4 else t for t in inputs)


def count_costs(
    job: Job, model: torch.nn.Module, inputs: tuple[torch.Tensor, ...]
) -> tuple[Counts, str]:
    """Parameters, and per-sample MACs/FLOPs by both counters at batch 1 when the job
    counts FLOPs; a message when fvcore could not count."""
    params = count_parameters(model)
    counts = Counts(params=params.total, trainable_params=params.trainable)
    if "flops" not in job.measure:
        return counts, ""
    flops = count_flops(model, tuple(tensor[:1] for tensor in inputs))
    counts = replace(
        counts,
        macs=flops.macs,
        flops=flops.flops,
        fvcore_macs=flops.fvcore_macs,
        flop_disagreement_pct=flops.disagreement_pct,
        fvcore_uncounted=";".join(f"{op}:{n}" for op, n in flops.fvcore_uncounted.items()),
    )
    return counts, f"fvcore: {flops.fvcore_error}" if flops.fvcore_error else ""


def timed_call(
    job: Job,
    model: torch.nn.Module,
    inputs: tuple[torch.Tensor, ...],
    device: torch.device,
    *,
    compile: bool,
) -> Callable[[], torch.Tensor]:
    """The call a job times: a forward pass (infer), or an optimizer step of the job's
    recipe on its task's training batch (train), the step that training takes."""
    identity = job.identity
    if identity.mode is Mode.INFER:
        return inference_call(compiled(model, compile), inputs, device, identity.dtype)
    num_classes = job.spec.config(**job.overrides())["num_classes"]
    forward, targets = job.task.training_batch(model, inputs, num_classes, device, compile=compile)
    step = OptimizerStep(model, job.recipe, device, identity.dtype)
    model.train()
    return lambda: step(lambda: (forward(), targets)).loss


def step_flops(
    job: Job,
    per_sample: int,
    model: torch.nn.Module,
    inputs: tuple[torch.Tensor, ...],
    device: torch.device,
    call: Callable[[], torch.Tensor],
) -> float:
    """FLOPs of one timed call: the forward's ``per_sample`` count times the batch
    (infer), or forward and backward counted on the eager step (train: compilation does
    not change them)."""
    if job.identity.mode is Mode.INFER:
        return per_sample * job.identity.batch_size
    compiled_call = job.backend.compile
    eager = timed_call(job, model, inputs, device, compile=False) if compiled_call else call
    return count_step_flops(eager)


def first_call(
    job: Job, call: Callable[[], torch.Tensor], device: torch.device
) -> tuple[Callable[[], torch.Tensor], float | None]:
    """Run the call once, untimed, and check its output is finite: the call to time (in a
    CUDA graph when asked) and, when compiled, the seconds it took (compilation)."""
    synchronize(device)
    started = time.perf_counter()
    output = call()
    synchronize(device)
    compile_s = time.perf_counter() - started if job.backend.compile else None
    if not torch.isfinite(output).all():
        raise FloatingPointError("non-finite output (NaN or inf)")
    return (graphed(call, device) if job.backend.cuda_graphs else call), compile_s


def join(*messages: str) -> str:
    """A row's messages, in one: '; '-separated, the empty ones left out."""
    return "; ".join(message for message in messages if message)


def peak_memory(
    call: Callable[[], torch.Tensor], device: torch.device, baseline: int | None
) -> Memory:
    """Peak memory of the call above what the process held before the model was built."""
    peak = memory.peak_bytes(call, device)
    if peak is None or baseline is None:
        return Memory()
    return Memory(
        peak_mem_mb=round((peak - baseline) / memory.MIB, 2), mem_method=memory.method(device)
    )


def times_of(
    timing: Timing,
    batch_size: int,
    step_gflop: float | None,
    calibration: Calibration | None,
    compile_s: float | None,
    rounds: int = 1,
) -> Times:
    """The timing columns of samples: their statistics, throughput, and the achieved
    GFLOP/s with its fraction of the calibration matmul's (hardware efficiency)."""
    achieved = step_gflop / timing.median if step_gflop else None
    return Times(
        compile_s=compile_s,
        time_median_ms=timing.median * 1e3,
        time_p90_ms=timing.p90 * 1e3,
        time_iqr_ms=timing.iqr * 1e3,
        time_mean_ms=timing.mean * 1e3,
        time_n=len(timing.samples),
        time_rounds=rounds,
        throughput_per_s=batch_size / timing.median,
        achieved_gflops_per_s=achieved,
        hw_efficiency=calibration.efficiency(achieved) if achieved and calibration else None,
    )


def train_to_accuracy(
    job: Job, device: torch.device, row: Row, calibration: Calibration | None
) -> Measured:
    """Train a freshly initialised model under the job's budget: ``row`` with the training
    columns and the task's metrics, and the curve."""
    identity, recipe = job.identity, job.recipe
    assert job.data is not None, "a job that trains has a data set"
    torch.manual_seed(identity.seed)
    model = architectures.create(identity.arch, **job.overrides())

    def log_epoch(epoch: dict[str, Any]) -> None:
        log.info(
            "    %s epoch %d/%d: loss %.3f, validation %.2f%%, test %.2f%% (%.0f s of training)",
            identity.arch, epoch["epoch"], recipe.epochs, epoch["train_loss"],
            100 * epoch["val_acc"], 100 * epoch["test_acc"], epoch["train_time_s"],
        )  # fmt: skip

    data = job.data.load()
    with memory.freed_memory_kept():
        outcome = job.task.train(
            model, data, recipe,
            batch_size=identity.batch_size, device=device, dtype=identity.dtype,
            seed=identity.seed, backend=job.backend, on_epoch=log_epoch,
        )  # fmt: skip
    training = training_part(recipe, outcome, row.counts.step_gflop, calibration)
    row = row.but(
        training=training,
        metrics=tasks.metric_columns(job.task, outcome.final),
        status=outcome.status,  # the job's verdict is its training's
        message=join(row.message, outcome.message),
    )
    return Measured(row, tuple(outcome.curve))


def training_part(
    recipe: TrainConfig,
    outcome: TrainResult,
    step_gflop: float | None,
    calibration: Calibration | None,
) -> Training:
    """The training columns: the recipe and budget, and what training reached, with the
    loop's hardware efficiency (the step's FLOPs x steps / training time)."""
    efficiency = None
    if step_gflop and calibration and outcome.train_steps:
        achieved = step_gflop * outcome.train_steps / outcome.train_time_s
        efficiency = calibration.efficiency(achieved)
    split = outcome.split
    return Training(
        epochs=recipe.epochs,
        time_budget_s=recipe.time_budget_s,
        train_subset=recipe.train_subset,
        optimizer=recipe.optimizer,
        lr=recipe.lr,
        weight_decay=recipe.weight_decay,
        schedule=recipe.schedule,
        warmup=recipe.warmup,
        label_smoothing=recipe.label_smoothing,
        curriculum_epochs=recipe.curriculum_epochs,
        train_size=split.train if split else None,
        val_size=split.val if split else None,
        val_seed=split.seed if split else None,
        epochs_done=outcome.epochs_done,
        budget_cut=outcome.budget_cut,
        train_time_s=outcome.train_time_s,
        train_compile_s=outcome.compile_s,
        train_samples_per_s=outcome.train_samples_per_s,
        train_steps=outcome.train_steps,
        train_hw_efficiency=efficiency,
        train_loss=outcome.train_loss,
        train_acc=outcome.train_acc,
        val_acc=outcome.val_acc,
        best_val_acc=outcome.best_val_acc,
        best_epoch=outcome.best_epoch,
        test_acc=outcome.test_acc,
        target_acc=recipe.target_accuracy,
        time_to_target_s=outcome.time_to_target_s,
    )


class Executor(Protocol):
    """Maps jobs to measurements, each job's as it finishes (in any order: a row names
    its job). In this process, in child processes, or on Ray (benchmarks.ray_executor)."""

    def run(self, jobs: Sequence[Job], calibrations: Calibrations) -> Iterator[Measured]: ...


class InProcessExecutor:
    """Runs every job in this process, one after the other."""

    def run(self, jobs: Sequence[Job], calibrations: Calibrations) -> Iterator[Measured]:
        for job in jobs:
            yield execute(job, calibrations.get(job.identity.dtype))


class SubprocessExecutor:
    """Runs each job in a fresh child process (spawned, so no state is inherited)."""

    def run(self, jobs: Sequence[Job], calibrations: Calibrations) -> Iterator[Measured]:
        for job in jobs:
            yield from in_a_fresh_process([job], calibrations)


class RoundProcessExecutor:
    """Runs the jobs it is given, a round of timings (run), one after the other in one
    fresh child process: the round is a draw of what a new process does
    (rounds_executor_for)."""

    def run(self, jobs: Sequence[Job], calibrations: Calibrations) -> Iterator[Measured]:
        yield from in_a_fresh_process(jobs, calibrations)


def in_a_fresh_process(jobs: Sequence[Job], calibrations: Calibrations) -> Iterator[Measured]:
    """``jobs`` measured in turn in one spawned child process (no state inherited), each
    as it finishes; if the process dies, the job it ran and those after it fail."""
    context = multiprocessing.get_context("spawn")
    pool = concurrent.futures.ProcessPoolExecutor(1, mp_context=context)
    died = "the job's process died (killed, or out of memory?)"
    try:
        futures = [pool.submit(execute, job, calibrations.get(job.identity.dtype)) for job in jobs]
        for job, future in zip(jobs, futures, strict=True):
            try:
                yield future.result()
            except BrokenProcessPool:
                yield failed(job, Status.FAILED, died)
    finally:  # also on Ctrl-C: the jobs not started are not run
        pool.shutdown(cancel_futures=True)


def rounds_executor_for(executor: Executor, jobs: Sequence[Job]) -> Executor:
    """What times the rounds after the first: a fresh process for each round when jobs
    train in this process, else ``executor``. A round in a process of its own is a draw
    of what a new process does (its memory layout, its allocator's history), as pyperf
    spawns processes for its samples; rounds in one process share that one draw, and a
    process that has trained for an hour is the furthest from a new one. A run that
    only times keeps its rounds here (compiled variants are not compiled again each
    round), and so does a net registered at run time (architectures.register in a
    script), which a new process would not know."""
    portable = all(architectures.known_on_import(job.identity.arch) for job in jobs)
    if isinstance(executor, InProcessExecutor) and portable and any(j.trains for j in jobs):
        return RoundProcessExecutor()
    return executor


@dataclass
class RunOutcome:
    rows: list[Row]
    skipped: int  # jobs an earlier session had done
    earlier: int = 0  # rows the run directory held before
    interrupted: bool = False

    @property
    def failures(self) -> list[Row]:
        return [row for row in self.rows if not row.ok]

    @property
    def kept(self) -> int:
        """Rows the run directory holds now."""
        return self.earlier + len(self.rows)


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


NODE_NAMES = ("hostname", "node_id", "device_name", "cpu")


def record_nodes(out: Path) -> None:
    """env.json's ``nodes``: every machine the run's rows ran on, with its calibration
    matmul by dtype (under ``--executor ray`` a run may span many)."""
    path, rows_path = out / ENV_FILE, out / ROWS_FILE
    if not (path.exists() and rows_path.exists()):
        return
    nodes: dict[tuple[Any, ...], dict[str, Any]] = {}
    for record in read_rows(rows_path):
        if "hostname" not in record:
            continue  # a row of an older version, or of a worker that died
        names = {name: record.get(name) for name in NODE_NAMES}
        node = nodes.setdefault(tuple(names.values()), {**names, "calibrations": {}})
        if record.get("calibration_matmul_s") is not None:
            node["calibrations"][record["dtype"]] = {
                "matmul_median_s": record["calibration_matmul_s"],
                "matmul_gflops_per_s": record["calibration_gflops_per_s"],
            }
    env = read_env(path)
    env["nodes"] = list(nodes.values())
    write_atomic(path, json.dumps(env, indent=2, default=str) + "\n")


def run_suite(
    suite: Suite,
    out: Path,
    *,
    device: torch.device,
    threads: int,
    data_root: str | None = None,
    download: bool = False,
    cache_dir: str | None = None,
    resume: bool = False,
    force: bool = False,
    executor: Executor | None = None,
) -> RunOutcome:
    """Measure a suite into the run directory ``out``: expand its jobs (loading the data
    sets, so that a missing one fails before anything is written), claim the directory
    (run_dir.claim: resuming, with the jobs it was started with unless ``force``),
    calibrate each dtype, record the environment, and run the jobs (those not done, when
    resuming) through ``executor`` (default: one after the other in this process)."""
    jobs = expand_jobs(
        suite, device, threads, data_root=data_root, download=download, cache_dir=cache_dir
    )
    if not jobs:
        raise UserError(
            f"suite {suite.name} has no jobs: no batch sizes and no training batch size"
        )
    plan = [job.plan() for job in jobs]
    with run_dir.claim(out, plan, resume=resume, force=force) as done:
        announce(suite, jobs, device, out)
        dtypes = dict.fromkeys([suite.dtype, *(job.identity.dtype for job in jobs)])
        calibrations = {dtype: calibrate(device, dtype) for dtype in dtypes}  # suite's first
        record_session(out, {**environment(device, threads), "suite": suite.name}, calibrations)
        executor = executor or default_executor(suite)
        return run(
            jobs,
            out,
            executor=executor,
            calibrations=calibrations,
            done=done,
            rounds_executor=rounds_executor_for(executor, jobs),
        )


def default_executor(suite: Suite) -> Executor:
    """In this process; in one valgrind process when the suite counts instructions."""
    if "instructions" in suite.measure:
        from benchmarks.callgrind_executor import CallgrindExecutor  # imports this module

        return CallgrindExecutor()
    return InProcessExecutor()


def announce(suite: Suite, jobs: Sequence[Job], device: torch.device, out: Path) -> None:
    """Log what is about to run, and whether it measures accuracy."""
    threads = jobs[0].identity.threads if jobs else torch.get_num_threads()
    about = f": {suite.description}" if suite.description else ""
    log.info("suite %s%s", suite.name, about)
    log.info("%d jobs on %s (%s, %d threads) -> %s", len(jobs), device, suite.dtype, threads, out)
    trained: dict[Identity, list[Job]] = {}  # a training job's seeds, by all but the seed
    for job in jobs:
        if job.trains:
            trained.setdefault(replace(job.identity, seed=0), []).append(job)
    for seeded in trained.values():
        job, seeds = seeded[0], [each.identity.seed for each in seeded]
        budget = job.recipe.time_budget_s
        cap = f", at most {budget:g} s" if budget else ""
        epochs = f"{job.recipe.epochs} epoch{'' if job.recipe.epochs == 1 else 's'}"
        log.info(
            "accuracy of %s: %s, %s%s, seeds %s",
            job.identity.arch, job.identity.dataset, epochs, cap, seeds,
        )  # fmt: skip
    if not trained:
        why = "no data set or no training" if "accuracy" in suite.measure else "--measure"
        log.warning("No accuracy in this run (%s): efficiency only.", why)


def run(
    jobs: Sequence[Job],
    out: Path,
    *,
    executor: Executor,
    calibrations: Calibrations,
    done: Iterable[Mapping[str, Any]] = (),
    rounds_executor: Executor | None = None,
) -> RunOutcome:
    """Run the jobs not already ``done`` (rows with status ok), appending each row to
    rows.jsonl as it finishes; results.csv is rewritten at the end, also on Ctrl-C.

    A job of ``rounds`` > 1 is timed again, round after round (a training job's step,
    not its training), and its row pools the samples of every round: a burst of load on
    a shared machine then hits one round of several jobs instead of all of one job's
    samples, and each round's median pairs jobs timed back to back (side_by_side). Every
    other round runs in reverse order (A B, B A), so that a drift in load falls on a pair
    alike. The rounds after the first run through ``rounds_executor`` (default:
    ``executor``; run_suite's: rounds_executor_for)."""
    done = list(done)
    ok = [row for row in done if row.get("status") == Status.OK]
    finished = {identity.key() for identity in identities(ok)}
    todo = [job for job in jobs if job.identity.key() not in finished]
    if len(todo) < len(jobs):
        log.info("resuming: %d of %d jobs already done", len(jobs) - len(todo), len(jobs))
    outcome = RunOutcome(rows=[], skipped=len(jobs) - len(todo), earlier=len(done))
    row_log, curve_log = JsonLines(out / ROWS_FILE), JsonLines(out / CURVES_FILE)
    progress.current().start(todo)
    by_key = {job.identity.key(): job for job in todo}
    measurements = executor.run(todo, calibrations)
    try:
        for measured in measurements:
            job = by_key[measured.row.identity.key()]
            for epoch in measured.curve:
                curve_log.append({**job.identity.record(), **epoch})
            row_log.append(measured.row.record())
            outcome.rows.append(measured.row)
            progress.current().job_done(job, measured.row)
        for round_number in range(2, max((job.rounds for job in todo), default=1) + 1):
            again = time_again(
                todo, outcome.rows, rounds_executor or executor, calibrations, round_number
            )
            for index, row in again.items():
                outcome.rows[index] = row
                row_log.append(row.record())
    except KeyboardInterrupt:
        outcome.interrupted = True
    except UserError:  # a row could not be written (a full disk): those before are kept
        finish(measurements, out, quietly=True)
        raise
    finish(measurements, out)
    return outcome


def finish(measurements: Iterator[Measured], out: Path, *, quietly: bool = False) -> None:
    """Stop what still runs (a Ray executor cancels its tasks) and write results.csv and
    env.json's nodes from rows.jsonl; ``quietly``: after another error, which a failure
    here (the same full disk) must not hide."""
    close = getattr(measurements, "close", None)
    if close:
        close()
    try:
        write_results_csv(out)
        record_nodes(out)
    except UserError as error:
        if not quietly:
            kept = f"the rows are kept in {out / ROWS_FILE} (make room, then --resume)"
            raise UserError(f"{error}; {kept}") from None
        log.warning("%s", error)


def time_again(
    jobs: Sequence[Job],
    rows: Sequence[Row],
    executor: Executor,
    calibrations: Calibrations,
    round_number: int,
) -> dict[int, Row]:
    """Time the jobs that succeeded and have ``round_number`` rounds or more once more
    (a training job's step, at its first seed only: the seeds time the same step; FLOPs
    and memory are not measured again), in reverse order in even rounds: by the index
    of their row in ``rows``, that row with the new samples pooled into it."""
    index = {row.identity.key(): position for position, row in enumerate(rows)}
    timed, stepped = [], set()
    for job in jobs:
        position = index.get(job.identity.key())
        if position is None or not rows[position].ok or not rows[position].samples_ms:
            continue
        if job.rounds < round_number:  # this net's rounds are done
            continue
        unseeded = replace(job.identity, seed=0).key()
        if job.trains and unseeded in stepped:
            continue
        stepped.add(unseeded)
        timed.append(replace(job, trains=False, measure=("time",)))  # counted already
    timed = side_by_side(timed)
    if round_number % 2 == 0:
        timed.reverse()
    log.info("round %d: timing %d jobs again", round_number, len(timed))
    pooled_rows = {}
    for measured in executor.run(timed, calibrations):
        position = index[measured.row.identity.key()]
        if measured.row.ok:
            pooled_rows[position] = pooled(rows[position], measured.row, round_number, calibrations)
        else:  # the row keeps the rounds it has
            log.warning(
                "round %d: %s %s: %s",
                round_number, measured.row.identity.label(("mode", "batch_size")),
                measured.row.status, measured.row.message,
            )  # fmt: skip
    return pooled_rows


def side_by_side(jobs: Sequence[Job]) -> list[Job]:
    """``jobs`` grouped by what they time (the mode and batch size, in the order each
    first appears): every net's and variant's batch-1 inference, say, one right after the
    other. Run in turn (Ray runs them at once, in any order), the two sides of a paired
    ratio are then timed seconds apart, not a net's other jobs apart. (The first pass
    keeps each net's jobs together, its training between them: its round pairs them
    further apart.)"""
    same: dict[tuple[Mode, int], list[Job]] = {}
    for job in jobs:
        same.setdefault((job.identity.mode, job.identity.batch_size), []).append(job)
    return [job for group in same.values() for job in group]


def pooled(first: Row, again: Row, rounds: int, calibrations: Calibrations) -> Row:
    """``first`` with the samples of ``again`` added (and its round's median) and its
    timing columns recomputed."""
    samples = (*first.samples_ms, *again.samples_ms)
    round_medians = (*first.round_medians_ms, *again.round_medians_ms)
    timing = Timing(tuple(sample / 1e3 for sample in samples))
    times = times_of(
        timing,
        first.identity.batch_size,
        first.counts.step_gflop,
        calibrations.get(first.identity.dtype),
        first.times.compile_s,
        rounds,
    )
    return first.but(times=times, samples_ms=samples, round_medians_ms=round_medians)
