"""Progress: an ETA from the durations of each kind of job, bars on a terminal, log
lines elsewhere, nothing with --quiet."""

from __future__ import annotations

import io
import subprocess
import sys
from types import SimpleNamespace

import pandas as pd
import pytest

from benchmarks import progress
from benchmarks.schema import Status

from helpers import TINY_SUITE, run_cli


def job(mode: str = "infer", *, trains: bool = False, arch: str = "resnet20") -> SimpleNamespace:
    identity = SimpleNamespace(mode=mode, arch=arch)
    return SimpleNamespace(identity=identity, trains=trains, describe=lambda: f"{arch} {mode}")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_eta_adds_each_kind_of_jobs_own_duration():
    """Two timings of 2 s, then a training run of 100 s: the two runs left take 200 s and
    the timing left 2 s (a count-based ETA would say 3 x 34.7 s)."""
    timing, training = job(), job("train", trains=True)
    jobs = [timing, timing, training, training, training, timing]
    clock = Clock()
    remaining = progress.Remaining(jobs, clock)
    assert remaining.seconds() is None and remaining.text() == "0:00 elapsed, ETA ?"
    for seconds, done in ((2, timing), (2, timing), (100, training)):
        clock.now += seconds
        remaining.done(done)
    assert remaining.seconds() == 2 * 100 + 2
    assert remaining.text() == "1:44 elapsed, ETA 3:22"


def test_a_kind_not_yet_seen_takes_the_mean_of_those_seen():
    clock = Clock()
    remaining = progress.Remaining([job(), job("train", trains=True)], clock)
    clock.now = 4.0
    remaining.done(job())
    assert remaining.seconds() == 4.0


def test_bars_show_the_jobs_and_the_training_steps():
    out = io.StringIO()
    bars = progress.Bars(file=out)
    done = SimpleNamespace(ok=True, status=Status.OK, times=SimpleNamespace(time_median_ms=None))
    with progress.reporting(bars):
        assert progress.current() is bars
        bars.start([job("train", trains=True), job()])
        for step in range(1, 5):
            progress.current().training_step(step, 4, epoch=1 + step // 3, epochs=2)
        assert (bars.steps.n, bars.steps.total, bars.steps.desc) == (4, 4, "  training, epoch 2/2")
        bars.job_done(job("train", trains=True), done)
    assert progress.current() is not bars
    text = out.getvalue()
    assert "training:   0%" in text and bars.steps is None  # closed with its job
    assert "jobs:  50%" in text and "resnet20 done; " in text and "ETA " in text


@pytest.mark.parametrize("quiet", [False, True])
def test_without_a_terminal_each_job_is_a_log_line_and_quiet_has_none(tmp_path, quiet):
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE)
    argv = [*(["-q"] if quiet else []), "run", "--suite", str(suite), "--measure", "time"]
    argv += ["--train-batch-size", "0", "--no-plots", "--out", str(tmp_path / "run")]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.cli", *argv], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "resnet20_dw" in done.stdout  # the summary table, quiet or not
    if quiet:  # warnings only
        assert "[1/" not in done.stderr and "jobs on cpu" not in done.stderr
    else:
        assert "[1/1] resnet20_dw infer b=2: " in done.stderr and "elapsed, ETA 0:00" in done.stderr


def test_log_dir_writes_each_jobs_curve_and_row_for_tensorboard(tmp_path):
    """`run --log-dir`: one TensorBoard run per job, its curve by epoch and its row."""
    events = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE)
    argv = ["run", "--suite", str(suite), "--dataset", "mnist5k", "--epochs", "2"]
    argv += ["--train-subset", "64", "--no-plots", "--out", str(tmp_path / "run")]
    assert run_cli([*argv, "--log-dir", str(tmp_path / "tb")]) == 0
    timed, trained = sorted((tmp_path / "tb").iterdir())  # one folder per job
    assert timed.name.startswith("resnet20_dw_infer_b=2_on_mnist5k_cpu_fp32")
    assert trained.name.startswith("resnet20_dw_train_b=4_on_mnist5k_seed=0_cpu_fp32")
    curve = events.EventAccumulator(str(trained)).Reload()
    assert [event.step for event in curve.Scalars("curve/train_loss")] == [1, 2]
    row = pd.read_csv(tmp_path / "run" / "results.csv").query("mode == 'train'").iloc[0]
    assert curve.Scalars("curve/test_acc")[-1].value == pytest.approx(row["test_acc"])
    assert curve.Scalars("row/params")[0].value == row["params"]
    timing = events.EventAccumulator(str(timed)).Reload()
    assert "row/time_median_ms" in timing.Tags()["scalars"]
