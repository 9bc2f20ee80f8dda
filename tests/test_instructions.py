"""Instruction counts under callgrind: the dump parser, the one-process executor, and
(slow, with valgrind) counts that repeat and grow with the work."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pytest

from benchmarks import callgrind_executor, cli, compare
from benchmarks.measure import instructions
from benchmarks.schema import Status

from helpers import run_cli

DUMP = """\
# callgrind format
events: Ir
summary: 1000
fn=main
0 100
cfn=work
calls=1 0
0 850
fn=work
0 800
fn=unicodekeys_lookup_unicode
0 50
fn=lookdict_unicode
0 50
"""


def test_self_costs_leave_out_callee_lines():
    costs = instructions.self_costs(DUMP)
    assert costs == {"main": 100, "work": 800, "unicodekeys_lookup_unicode": 50,
                     "lookdict_unicode": 50}  # fmt: skip
    assert sum(costs.values()) == 1000  # the dump's summary


def test_denoised_total_leaves_out_name_lookups():
    assert instructions.denoised_total(instructions.self_costs(DUMP)) == 900


def test_count_outside_callgrind_says_so(monkeypatch):
    monkeypatch.delenv(instructions.OUT_ENV, raising=False)
    with pytest.raises(instructions.NotUnderCallgrind, match="callgrind process"):
        instructions.count(lambda: None)


def test_latest_dump_is_the_highest_number(tmp_path):
    for name in ("callgrind.out", "callgrind.out.2", "callgrind.out.10", "callgrind.out.x"):
        (tmp_path / name).write_text("")
    assert instructions.latest_dump(tmp_path / "callgrind.out").name == "callgrind.out.10"


@pytest.mark.parametrize(
    "extra",
    [["--measure", "instructions,time"], ["--measure", "instructions", "--threads", "2"],
     ["--measure", "instructions", "--isolate"], ["--measure", "instructions", "--rounds", "3"]],
)  # fmt: skip
def test_instructions_are_counted_in_a_run_of_their_own(tmp_path, capsys, extra):
    assert run_cli(["run", "--arch", "resnet20", *extra, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "valgrind" in err
    assert not (tmp_path / "r").exists()


def test_without_valgrind_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    argv = ["run", "--arch", "resnet20", "--measure", "instructions", "--out", str(tmp_path / "r")]
    assert run_cli(argv) == 2
    assert "needs valgrind" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def natively(folder):
    """The executor's child without valgrind: the protocol, but nothing to count with."""
    return [sys.executable, "-m", "benchmarks.callgrind_executor", str(folder)]


def test_each_job_comes_back_as_a_row(tmp_path, monkeypatch):
    monkeypatch.setattr(callgrind_executor, "command", natively)
    out = tmp_path / "r"
    argv = ["run", "--arch", "resnet20", "--measure", "instructions", "--batch-sizes", "1",
            "--train-batch-size", "0", "--no-plots", "--out", str(out)]  # fmt: skip
    assert run_cli(argv) == 1  # the job failed: no callgrind to switch on
    rows = (out / "rows.jsonl").read_text().splitlines()
    assert len(rows) == 1 and "RuntimeError: callgrind_control" in rows[0]


def test_a_child_that_dies_leaves_failed_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(
        callgrind_executor, "command", lambda folder: [sys.executable, "-c", "raise SystemExit(3)"]
    )
    out = tmp_path / "r"
    argv = ["run", "--arch", "resnet20", "plain20", "--measure", "instructions", "--batch-sizes",
            "1", "--train-batch-size", "0", "--no-plots", "--out", str(out)]  # fmt: skip
    assert run_cli(argv) == 1
    rows = (out / "rows.jsonl").read_text().splitlines()
    assert len(rows) == 2
    assert all(Status.FAILED.value in row and "ended (exit 3)" in row for row in rows)


def test_compare_judges_instructions_by_their_threshold():
    def side(count: float):
        table = compare.pd.DataFrame([{**row_identity(), "instructions": count}])
        return compare.Side("x", compare.pool_seeds(table))

    base = side(1_000_000)
    verdicts = {
        count: compare.compare(base, side(count))[0].verdict
        for count in (1_005_000, 1_020_000, 980_000)
    }
    assert verdicts == {
        1_005_000: compare.Verdict.OK,
        1_020_000: compare.Verdict.REGRESSED,
        980_000: compare.Verdict.IMPROVED,
    }
    loose = compare.Settings(thresholds={"instructions": 0.03})
    assert compare.compare(base, side(1_020_000), loose)[0].verdict is compare.Verdict.OK
    assert cli.threshold("instructions=0.5") == ("instructions", 0.005)


def row_identity() -> dict:
    return {
        "suite": "quick", "arch": "resnet20", "family": "resnet", "config": "{}",
        "dataset": "mnist5k", "device": "cpu", "dtype": "fp32", "mode": "infer",
        "batch_size": 1, "input_shape": "1x32x32", "seed": 0, "threads": 1, "status": "ok",
    }  # fmt: skip


COUNTING = """\
import torch
from torch import nn
from benchmarks.measure.instructions import count

torch.set_num_threads(1)
torch.manual_seed(0)
tiny = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 30 * 30, 256))
extra = nn.Linear(256, 256)
x = torch.randn(4, 3, 32, 32)
call = lambda: tiny(x)
more = lambda: extra(tiny(x))  # one more matmul: 4 x 256 x 256 MACs
with torch.no_grad():
    call(), call(), more()  # warm: the allocator's first growth is not the call's
    print(count(call), count(call), count(more))
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind")
def test_the_same_call_counts_the_same_and_a_matmul_counts_more(tmp_path):
    """Under valgrind, as the executor runs it."""
    out = tmp_path / "callgrind.out"
    command = ["valgrind", *callgrind_executor.VALGRIND_FLAGS, f"--callgrind-out-file={out}",
               f"--log-file={tmp_path / 'cg.log'}", sys.executable, "-c", COUNTING]  # fmt: skip
    env = {**callgrind_executor.child_env(tmp_path), instructions.OUT_ENV: str(out)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, textwrap.shorten(done.stderr, 500)
    first, again, more = map(int, done.stdout.split())
    assert abs(again - first) <= 0.002 * first  # 0.11% seen once on a 4.9M-instruction call
    assert more > first + 4 * 256 * 256 / 8  # at best one 8-wide FMA per 8 MACs
