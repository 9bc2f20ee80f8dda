"""Progress of a run: bars on a terminal, log lines elsewhere, nothing with --quiet.

The runner reports each finished job, and the training loop each step, to the
current reporter (``reporting`` puts one in place, ``current`` returns it). The
default logs one line per job; the CLI puts ``Bars`` (tqdm) in its place when
stderr is a terminal. The ETA adds up, over the jobs still to run, the mean
duration of the finished jobs of their kind (timing, training step, training
run), not the mean of all jobs: a run's training runs take minutes, its timings
seconds.
"""

from __future__ import annotations

import contextlib
import logging
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.runner import Job
    from benchmarks.schema import Row

log = logging.getLogger(__name__)


def kind(job: Job) -> str:
    """What a job does, as far as its duration goes."""
    return "training run" if job.trains else f"{job.identity.mode} timing"


class Remaining:
    """The time a run still needs, from the durations of its finished jobs by kind."""

    def __init__(self, jobs: Sequence[Job], clock: Callable[[], float] = time.perf_counter):
        self.left = Counter(kind(job) for job in jobs)
        self.took: dict[str, list[float]] = defaultdict(list)
        self.clock = clock
        self.started = self.last = clock()

    def done(self, job: Job) -> None:
        now = self.clock()
        self.took[kind(job)].append(now - self.last)
        self.left[kind(job)] -= 1
        self.last = now

    def elapsed(self) -> float:
        return self.clock() - self.started

    def seconds(self) -> float | None:
        """The estimate; None before any job finished."""
        every = [seconds for durations in self.took.values() for seconds in durations]
        if not every:
            return None
        fallback = statistics.mean(every)  # a kind not seen yet
        return sum(
            count * (statistics.mean(self.took[name]) if self.took[name] else fallback)
            for name, count in self.left.items()
        )

    def text(self) -> str:
        eta = self.seconds()
        left = "?" if eta is None else clock_text(eta)
        return f"{clock_text(self.elapsed())} elapsed, ETA {left}"


def clock_text(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def outcome_text(row: Row) -> str:
    """A finished job's result in a few words."""
    if not row.ok:
        return f"{str(row.status).upper()}: {row.message}"
    if row.times.time_median_ms is not None:
        return f"{row.times.time_median_ms:.2f} ms median, p90 {row.times.time_p90_ms:.2f} ms"
    return str(row.status)


class Progress:
    """Log lines: one per finished job (the default, and where stderr is no terminal)."""

    def __init__(self) -> None:
        self.remaining = Remaining(())
        self.total, self.finished = 0, 0

    def start(self, jobs: Sequence[Job]) -> None:
        self.remaining = Remaining(jobs)
        self.total, self.finished = len(jobs), 0

    def count(self, job: Job) -> None:
        """One more job finished."""
        self.remaining.done(job)
        self.finished += 1

    def job_done(self, job: Job, row: Row) -> None:
        self.count(job)
        log.info(
            "[%d/%d] %s: %s (%s)",
            self.finished, self.total, job.describe(), outcome_text(row), self.remaining.text(),
        )  # fmt: skip

    def training_step(self, step: int, total: int, epoch: int, epochs: int) -> None:
        """Step ``step`` of ``total`` done, in ``epoch`` of ``epochs`` (the epochs log
        their own lines)."""

    def close(self) -> None:
        pass


class Bars(Progress):
    """tqdm bars on a terminal: the run's jobs, and the steps of a training run; log
    lines are written above them."""

    def __init__(self, file: IO[str] | None = None) -> None:
        super().__init__()
        self.file = file
        self.jobs: Any = None
        self.steps: Any = None
        self.epoch = 0  # the one the steps' bar names

    def start(self, jobs: Sequence[Job]) -> None:
        from tqdm import tqdm

        super().start(jobs)
        self.jobs = tqdm(
            total=len(jobs), desc="jobs", unit="job", file=self.file, dynamic_ncols=True,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}{postfix}",
            postfix=self.remaining.text(),
        )  # fmt: skip

    def job_done(self, job: Job, row: Row) -> None:
        self.count(job)
        self.close_steps()
        if not row.ok:
            log.warning("%s: %s", job.describe(), outcome_text(row))
        self.jobs.set_postfix_str(f"{job.identity.arch} done; {self.remaining.text()}")
        self.jobs.update(1)

    def training_step(self, step: int, total: int, epoch: int, epochs: int) -> None:
        """Called between the steps of a timed training loop: a bar made once a run and
        named once an epoch; otherwise tqdm's update, which redraws at most 10 times a
        second."""
        if self.steps is None or step == 1:
            self.new_steps(total)
        if epoch != self.epoch:
            self.epoch = epoch
            self.steps.set_description_str(f"  training, epoch {epoch}/{epochs}", refresh=False)
        self.steps.update(step - self.steps.n)

    def new_steps(self, total: int) -> None:
        from tqdm import tqdm

        self.close_steps()
        self.epoch = 0
        self.steps = tqdm(
            total=total, desc="  training", unit="step", file=self.file, leave=False,
            dynamic_ncols=True, position=1,
        )  # fmt: skip

    def close_steps(self) -> None:
        if self.steps is not None:
            self.steps.close()
            self.steps = None

    def close(self) -> None:
        self.close_steps()
        if self.jobs is not None:
            self.jobs.close()


_current: Progress = Progress()


def current() -> Progress:
    return _current


@contextlib.contextmanager
def reporting(progress: Progress) -> Iterator[Progress]:
    """``progress`` is the current reporter within; with ``Bars``, log lines go above
    the bars."""
    global _current
    previous, _current = _current, progress
    try:
        with redirected_logging(progress):
            yield progress
    finally:
        progress.close()
        _current = previous


@contextlib.contextmanager
def redirected_logging(progress: Progress) -> Iterator[None]:
    if not isinstance(progress, Bars):
        yield
        return
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm():
        yield
