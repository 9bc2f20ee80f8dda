"""Runs a run's jobs in ONE child process under valgrind's callgrind, for `run --measure
instructions`: torch is imported once (about 20 s under valgrind), then each job is
measured as in process, its timed call counted by ``measure.instructions.count``.

The parent sends the jobs in a file and reads each job's measurement back, pickled,
from the child's standard output as it finishes (the child's own prints go to
standard error), so the runner writes every row as it arrives. A child that dies
leaves the jobs it had not finished as failed rows, with valgrind's last words.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from benchmarks.errors import UserError
from benchmarks.measure.instructions import OUT_ENV
from benchmarks.runner import Calibrations, Job, Measured, execute, failed
from benchmarks.schema import Status

log = logging.getLogger(__name__)
VALGRIND_FLAGS = (
    "--tool=callgrind",
    "--collect-atstart=no",  # counted only between count()'s toggles
    "--instr-atstart=no",  # instrumented only for the counted calls (count() asks)
    "--dump-line=no",
    "--dump-instr=no",
    "--compress-strings=no",  # plain function names in every dump
    "--compress-pos=no",
)
HASH_SEED = "0"  # CPython's string hashes, and so its dict probing, the same every run


class CallgrindExecutor:
    """One valgrind process for all jobs; on the CPU, one thread."""

    def __init__(self) -> None:
        if shutil.which("valgrind") is None:
            raise UserError(
                "--measure instructions needs valgrind (Debian/Ubuntu: apt install valgrind)"
            )

    def run(self, jobs: Sequence[Job], calibrations: Calibrations) -> Iterator[Measured]:
        with tempfile.TemporaryDirectory(prefix="archbench-callgrind-") as work:
            folder = Path(work)
            (folder / "jobs.pkl").write_bytes(pickle.dumps((list(jobs), dict(calibrations))))
            log.info("counting instructions under valgrind's callgrind, one thread")
            child = subprocess.Popen(command(folder), stdout=subprocess.PIPE, env=child_env(folder))
            assert child.stdout is not None
            done: set[tuple[str, ...]] = set()
            try:
                while True:
                    try:
                        measured = pickle.load(child.stdout)
                    except EOFError:
                        break
                    done.add(measured.row.identity.key())
                    yield measured
                child.wait()
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait()
            reason = last_words(folder / "valgrind.log", child.returncode)
            for job in jobs:
                if job.identity.key() not in done:
                    yield failed(job, Status.FAILED, reason)


def command(folder: Path) -> list[str]:
    return [
        "valgrind", *VALGRIND_FLAGS, f"--callgrind-out-file={folder / 'callgrind.out'}",
        f"--log-file={folder / 'valgrind.log'}",
        sys.executable, "-m", "benchmarks.callgrind_executor", str(folder),
    ]  # fmt: skip


def child_env(folder: Path) -> dict[str, str]:
    return {**os.environ, OUT_ENV: str(folder / "callgrind.out"), "PYTHONHASHSEED": HASH_SEED}


def last_words(log_file: Path, returncode: int | None) -> str:
    """Why the child stopped before every job was measured."""
    lines = log_file.read_text().splitlines() if log_file.exists() else []
    said = [line.split("== ", 1)[-1] for line in lines if "terminating" in line]
    why = f": {said[-1]}" if said else " (its errors are above)"
    return f"the callgrind process ended (exit {returncode}) before this job{why}"[:300]


def child(folder: Path) -> None:
    """In the valgrind process: measure each job, and send each measurement back."""
    results = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not mix in
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    jobs, calibrations = pickle.loads((folder / "jobs.pkl").read_bytes())
    for job in jobs:
        pickle.dump(execute(job, calibrations.get(job.identity.dtype)), results)
        results.flush()


if __name__ == "__main__":
    child(Path(sys.argv[1]))
