"""A run directory claimed for writing: one run at a time, and every file left readable.

``claim`` takes an OS lock on the directory for as long as the run writes to it (a
second run or resume in the same directory is refused, naming the one that holds it;
the kernel drops the lock of a process that died, so a stale lock file never blocks),
removes the temporaries of an atomic write that a crash or a full disk cut short, and
moves a last line that a crash or a full disk cut short out of ``rows.jsonl`` and
``curves.jsonl`` (into ``NAME.partial``) so that what is appended next starts on a line
of its own. A resumed run's rows must be of this schema version, and its jobs those it
was started with (``plan.json``), unless forced.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import socket
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.errors import UserError
from benchmarks.results import (
    CURVES_FILE,
    ENV_FILE,
    ROWS_FILE,
    check_schema_versions,
    read_env,
    read_rows,
    write_atomic,
)

log = logging.getLogger(__name__)
LOCK_FILE, PLAN_FILE = ".archbench.lock", "plan.json"


@contextmanager
def claim(
    out: Path, plan: Sequence[str], *, resume: bool, force: bool = False
) -> Iterator[list[dict[str, Any]]]:
    """Hold ``out`` for a run of the jobs ``plan`` describes (one text per job); yields
    the rows it already holds when resuming. A directory this run created and wrote no
    row to is removed again when the run ends (an interrupt before the first row)."""
    rows_path = out / ROWS_FILE
    if resume and not rows_path.exists():
        raise UserError(f"nothing to resume: {rows_path} does not exist")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot write to {out}: {error.strerror or error}") from None
    try:
        with locked(out):
            if rows_path.exists() and not resume:
                raise UserError(
                    f"{out} already holds a run: add --resume to finish it, or choose another --out"
                )
            remove_temporaries(out)
            for name in (ROWS_FILE, CURVES_FILE):
                set_aside_partial_line(out / name)
            done = read_rows(rows_path) if resume else []
            check_schema_versions(done, rows_path)
            read_env(out / ENV_FILE)  # a resumed run adds to it: it must be readable
            check_plan(out, plan, resume=resume, force=force)
            yield done
    finally:
        if created and not rows_path.exists():
            shutil.rmtree(out, ignore_errors=True)


@contextmanager
def locked(out: Path) -> Iterator[None]:
    """An exclusive lock on ``out`` (its LOCK_FILE names the holder), or a UserError
    naming the process that holds it."""
    path = out / LOCK_FILE
    while True:
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise UserError(f"cannot write to {out}: {error.strerror or error}") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(descriptor)
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise UserError(f"cannot lock {path}: {error.strerror}") from None
            raise UserError(
                f"{out} is in use by {holder(path)}: wait for it, or choose another --out"
            ) from None
        if same_file(descriptor, path):
            break
        os.close(descriptor)  # its holder removed the file as we opened it: take the new one
    try:
        try:
            os.ftruncate(descriptor, 0)
            os.write(descriptor, json.dumps(holder_record()).encode())
        except OSError as error:
            raise UserError(f"cannot write to {out}: {error.strerror or error}") from None
        yield
    finally:
        path.unlink(missing_ok=True)  # before unlocking: a waiting run then opens a new file
        os.close(descriptor)


def same_file(descriptor: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(descriptor), os.stat(path))
    except FileNotFoundError:
        return False


def holder_record() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["archbench", *sys.argv[1:]]),
    }


def holder(path: Path) -> str:
    """Who holds the lock, in words, from what it wrote in the lock file."""
    try:
        record = json.loads(path.read_text())
        return (
            f"another run (pid {record['pid']} on {record['hostname']}, since "
            f"{record['started_at']}: {record['command']})"
        )
    except (OSError, ValueError, KeyError, TypeError):
        return "another run"


def remove_temporaries(out: Path) -> None:
    """Delete what an atomic write that never finished left behind (tmp*.tmp)."""
    for stale in out.glob("tmp*.tmp"):
        stale.unlink(missing_ok=True)
        log.info("removed %s, left by a write that did not finish", stale.name)


def set_aside_partial_line(path: Path) -> None:
    """Move the last line of a JSON-lines file that lacks its newline (a crash or a full
    disk while appending) to ``path.partial``, so that the next record is a line of its own."""
    if not path.exists():
        return
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return
    cut = data.rfind(b"\n") + 1
    aside = path.with_name(path.name + ".partial")
    with aside.open("ab") as file:
        file.write(data[cut:] + b"\n")
    os.truncate(path, cut)
    log.warning(
        "%s ended in a line cut short (%d bytes: a crash or a full disk while writing); "
        "moved to %s", path, len(data) - cut, aside.name,
    )  # fmt: skip


def check_plan(out: Path, plan: Sequence[str], *, resume: bool, force: bool) -> None:
    """Record the run's jobs in PLAN_FILE; resuming, refuse jobs it was not started with
    (another suite, batch size, budget...) unless ``force``, which adds them to it."""
    path = out / PLAN_FILE
    recorded = read_plan(path) if resume else None
    if recorded is not None and not force:
        others = [job for job in plan if job not in set(recorded["jobs"])]
        if others:
            raise UserError(
                f"{out} was started with other jobs or settings ({len(others)} of the "
                f"{len(plan)} jobs asked for now are not among its {len(recorded['jobs'])}); "
                f"resume with the command that started it ({recorded['command']}), or add "
                "--force to add these to it"
            )
    jobs = [*(recorded["jobs"] if recorded else []), *plan]
    record = {"command": holder_record()["command"], "jobs": list(dict.fromkeys(jobs))}
    if recorded:
        record["command"] = recorded["command"]
    write_atomic(path, json.dumps(record, indent=1) + "\n")


def read_plan(path: Path) -> dict[str, Any] | None:
    """A run's plan, None for a run from before plans were recorded."""
    if not path.exists():
        return None
    try:
        plan = json.loads(path.read_text())
        if isinstance(plan, dict) and isinstance(plan.get("jobs"), list):
            return plan
    except ValueError:
        pass
    raise UserError(f"{path} is not a run plan written by archbench (delete it to resume anyway)")
