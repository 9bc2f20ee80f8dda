"""`archbench ab`: two commits timed side by side on one machine, in alternating rounds.

Each commit is checked out into a temporary git worktree and imported from there by
the same Python environment (nothing is installed). A round runs the suite's timing
jobs once per side, each in a fresh process, the order of the sides alternating
(A B, B A, A B, ...), so that drift of the machine's speed hits both sides alike. A
side's rounds are then merged into one run (``SIDE/``): each job's row pools the calls
of every round and keeps one median per round, the unit that compare's significance
test counts (consecutive calls in one process are not independent samples).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from benchmarks.errors import UserError
from benchmarks.results import (
    ROWS_FILE,
    JsonLines,
    identities,
    read_rows,
    write_atomic,
    write_results_csv,
)
from benchmarks.runner import pooled
from benchmarks.schema import Row
from benchmarks.suites import load_suite

log = logging.getLogger(__name__)
SIDES = ("A", "B")


def ab(
    refs: tuple[str, str], out: Path, *, suite: str, rounds: int, run_args: Sequence[str] = ()
) -> tuple[Path, Path]:
    """Time ``suite`` at the commits ``refs`` (A, B) in ``rounds`` alternating rounds
    into ``out``; the two merged runs (out/A, out/B)."""
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} is not empty: choose another --out")
    if os.path.isfile(suite):
        suite = os.path.abspath(suite)  # the worktrees run elsewhere
    # a suite's rounds = N would repeat each round N times ("--rounds 1" only then: a
    # commit from before --rounds does not know the flag)
    one_round = ["--rounds", "1"] if rounds_of(suite) > 1 else []
    with worktree(refs[0]) as tree_a, worktree(refs[1]) as tree_b:
        trees = dict(zip(SIDES, (tree_a, tree_b), strict=True))
        for number in range(1, rounds + 1):
            order = SIDES if number % 2 else SIDES[::-1]
            for side in order:
                log.info("round %d/%d: %s (%s)", number, rounds, side, refs[SIDES.index(side)])
                command = ["run", "--suite", suite, "--measure", "flops,time", "--no-plots"]
                command += one_round  # each time, not the suite's rounds
                run_side(
                    trees[side], [*command, *run_args, "--out", str(round_dir(out, side, number))]
                )
    for side in SIDES:
        merge_rounds([round_dir(out, side, n) for n in range(1, rounds + 1)], out / side)
    return out / "A", out / "B"


def rounds_of(suite: str) -> int:
    """The rounds the suite sets, as this commit reads it (1 when it cannot)."""
    try:
        return load_suite(suite).most_rounds
    except UserError:  # a suite of the compared commits only: they run it as it is
        return 1


def round_dir(out: Path, side: str, number: int) -> Path:
    return out / "rounds" / f"{side}{number}"


@contextmanager
def worktree(ref: str) -> Iterator[Path]:
    """The commit ``ref`` of the repository here, checked out into a temporary folder."""
    top = git("rev-parse", "--show-toplevel")
    place = Path(tempfile.mkdtemp(prefix="archbench-ab-")) / "tree"
    git("worktree", "add", "--detach", str(place), ref, cwd=top)
    try:
        yield place
    finally:
        git("worktree", "remove", "--force", str(place), cwd=top)
        shutil.rmtree(place.parent, ignore_errors=True)


def git(*args: str, cwd: str | None = None) -> str:
    """A git command's output; UserError (one line) when it fails."""
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=cwd, check=True)
    except FileNotFoundError:
        raise UserError("archbench ab needs git") from None
    except subprocess.CalledProcessError as error:
        last = (error.stderr.strip().splitlines() or ["failed"])[-1]
        raise UserError(f"git {' '.join(args)}: {last}") from None
    return done.stdout.strip()


def run_side(tree: Path, argv: Sequence[str]) -> None:
    """`archbench ARGV` in a fresh process that imports the code of ``tree``."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run([sys.executable, "-m", "benchmarks.cli", *argv], cwd=tree, env=env)
    if done.returncode not in (0, 1):  # 1: some jobs failed, as rows
        raise UserError(f"archbench {' '.join(argv)} failed in {tree} (exit {done.returncode})")


def merge_rounds(round_dirs: Sequence[Path], out: Path) -> None:
    """One run of a side: each ok timing row of the first round with the calls of every
    round pooled and each round's median kept (runner.pooled, as run --rounds does)."""
    out.mkdir(parents=True, exist_ok=True)
    merged: dict[tuple[str, ...], Row] = {}
    for number, folder in enumerate(round_dirs, 1):
        records = [r for r in read_rows(folder / ROWS_FILE) if r.get("status") == "ok"]
        for identity, record in zip(identities(records), records, strict=True):
            key, row = identity.key(), Row.from_record(record)
            if not row.samples_ms:
                continue
            merged[key] = pooled(merged[key], row, number, {}) if key in merged else row
    log_file = JsonLines(out / ROWS_FILE)
    for row in merged.values():
        log_file.append(row.record())
    write_results_csv(out)
    env = round_dirs[0] / "env.json"
    if env.exists():
        write_atomic(out / "env.json", env.read_text())
