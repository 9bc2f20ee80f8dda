"""--executor ray: the same rows as on one machine, from many (a real local Ray)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from benchmarks import results, runner
from benchmarks.compare import Settings as CompareSettings
from benchmarks.compare import Side, compare
from benchmarks.ray_executor import RayExecutor, resources_for
from benchmarks.schema import Node, Status, Times, columns
from benchmarks.suites import Entry, Suite
from benchmarks.train import TrainConfig

from helpers import FAST_TIMING, TINY_SUITE, result_row, run_cli, write_fake_cifar10

TESTS = Path(__file__).parent
CPU = torch.device("cpu")
SETUP = {"worker_process_setup_hook": "helpers.register_toy_architectures"}


@pytest.fixture
def ray(monkeypatch):
    """The ray module: its workers (started by the test) import tests/helpers."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    paths = [str(TESTS), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    return ray


@pytest.fixture
def local_ray(ray, toy_architectures):
    """A Ray instance on this machine, two CPUs; its workers know the toy nets too."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=SETUP)
    yield
    ray.shutdown()


def suite_of(*names: str, **settings) -> Suite:
    settings = {"batch_sizes": (2,), "train_batch_size": 0, "timing": FAST_TIMING, **settings}
    return Suite(name="test", entries=tuple(Entry(name) for name in names), **settings)


def run(suite: Suite, out: Path, executor) -> runner.RunOutcome:
    out.mkdir(parents=True, exist_ok=True)
    (out / results.ENV_FILE).write_text("{}")  # record_nodes adds the nodes to it
    jobs = runner.expand_jobs(suite, CPU, threads=1)
    return runner.run(jobs, out, executor=executor, calibrations={})


MACHINE = {
    c.name for part in (Times, Node) for c in columns() if c.name in part.__dataclass_fields__
}
VARYING = MACHINE | {
    "peak_mem_mb", "started_at", "duration_s", "time_samples_ms", "time_round_medians_ms",
    "train_time_s",
    "train_samples_per_s", "train_hw_efficiency",
}  # fmt: skip


def comparable(out: Path) -> list[dict]:
    """The rows of a run without what depends on the machine and the moment, such as
    a noisy timing's note in a row's message."""
    rows = [
        {k: v for k, v in row.items() if k not in VARYING}
        | {"message": without_noise_notes(row["message"])}
        for row in results.read_rows(out / results.ROWS_FILE)
    ]
    return sorted(rows, key=json.dumps)


def without_noise_notes(message: str) -> str:
    return runner.join(
        *(part for part in message.split("; ") if not part.startswith("noisy timing"))
    )


def test_jobs_ask_for_what_they_measure_on():
    suite = suite_of("resnet20_dw", "resnet20", train_batch_size=4)
    timing, *_ = runner.expand_jobs(suite, CPU, threads=2)
    assert resources_for(timing).options() == {"num_cpus": 2.0, "num_gpus": 0.0}
    accuracy_only = suite_of(
        "resnet20_dw", measure=("accuracy",), train_batch_size=4, dataset="mnist5k"
    )
    training_only = runner.expand_jobs(accuracy_only, CPU, threads=2)[-1]
    assert training_only.trains and "time" not in training_only.measure
    assert resources_for(training_only, pack_training=4).num_cpus == 2.0  # CPUs: never packed
    on_gpu = runner.expand_jobs(suite, torch.device("cuda"), threads=2)[0]
    assert resources_for(on_gpu).options() == {"num_cpus": 1.0, "num_gpus": 1.0}
    assert resources_for(on_gpu, pack_training=2).num_gpus == 1.0  # it times: a whole GPU
    training_on_gpu = runner.expand_jobs(accuracy_only, torch.device("cuda"), threads=2)[-1]
    assert resources_for(training_on_gpu).exclusive
    packed = resources_for(training_on_gpu, pack_training=4)
    assert packed.num_gpus == 0.25 and not packed.exclusive


def test_without_ray_the_executor_is_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE)
    code = run_cli(
        ["run", "--suite", str(suite), "--executor", "ray", "--out", str(tmp_path / "r")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "archbench[ray]" in err[0]
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_ray_gives_the_rows_of_the_local_executors(local_ray, tmp_path):
    training = TrainConfig(epochs=1, lr=0.05, train_subset=256)
    suite = suite_of("resnet20_dw", dataset="mnist5k", train_batch_size=8, training=training)
    outs = {name: tmp_path / name for name in ("inprocess", "isolate", "ray")}
    run(suite, outs["inprocess"], runner.InProcessExecutor())
    run(suite, outs["isolate"], runner.SubprocessExecutor())
    outcome = run(suite, outs["ray"], RayExecutor())
    assert len(outcome.rows) == 2 and all(row.ok for row in outcome.rows)
    assert comparable(outs["ray"]) == comparable(outs["inprocess"]) == comparable(outs["isolate"])
    trained = next(row for row in outcome.rows if row.training.test_acc is not None)
    assert trained.node.node_id and trained.node.ray_num_cpus == 1.0
    assert trained.node.calibration_matmul_s > 0  # the node calibrated itself


@pytest.mark.slow
def test_a_failing_job_is_a_row_that_names_its_node(local_ray, tmp_path):
    outcome = run(suite_of("broken", "tiny"), tmp_path, RayExecutor())
    by_arch = {row.identity.arch: row for row in outcome.rows}
    assert not by_arch["broken"].ok and by_arch["tiny"].ok
    assert by_arch["broken"].message.startswith(f"on {by_arch['tiny'].node.hostname}: ")
    assert "broken on purpose" in by_arch["broken"].message


@pytest.mark.slow
def test_a_data_set_missing_on_a_worker_is_a_row_naming_node_and_path(local_ray, tmp_path):
    data = tmp_path / "shared"
    write_fake_cifar10(data)
    training = TrainConfig(epochs=1, train_subset=16)
    suite = suite_of("tiny", dataset="cifar10", train_batch_size=4, training=training)
    cache = str(tmp_path / "cache")
    jobs = runner.expand_jobs(suite, CPU, threads=1, data_root=str(data), cache_dir=cache)
    shutil.rmtree(data)  # the driver found it; the workers do not
    out = tmp_path / "run"
    out.mkdir()
    outcome = runner.run(jobs, out, executor=RayExecutor(), calibrations={})
    (trained,) = [row for row in outcome.rows if row.identity.mode == "train"]
    assert trained.status is Status.FAILED
    assert trained.message.startswith(f"on {socket.gethostname()}: UserError: cifar10 not found")
    assert str(data) in trained.message


@pytest.mark.slow
def test_a_killed_task_is_retried_once_then_recorded(local_ray, tmp_path):
    from helpers import always_dies, dies_first_time

    retried = run(
        suite_of("tiny", batch_sizes=(2, 3)), tmp_path / "a", RayExecutor(task=dies_first_time)
    )
    assert [row.ok for row in retried.rows] == [True, True]
    dead = run(suite_of("tiny"), tmp_path / "b", RayExecutor(task=always_dies))
    (row,) = dead.rows
    assert not row.ok and "worker or node died (tried 2 times)" in row.message
    lines = (tmp_path / "a" / results.ROWS_FILE).read_text().splitlines()
    assert len(lines) == 2  # no row written twice


@pytest.mark.slow
def test_two_nodes_each_calibrate_and_record_themselves(ray, toy_architectures, tmp_path):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        ray.init(address=cluster.address, log_to_driver=False, runtime_env=SETUP)
        out = tmp_path / "run"
        outcome = run(suite_of("tiny", batch_sizes=(2, 3, 4, 5, 6, 7)), out, RayExecutor())
    finally:
        ray.shutdown()
        cluster.shutdown()
    nodes = {row.node.node_id for row in outcome.rows}
    assert len(nodes) == 2 and all(row.node.calibration_matmul_s for row in outcome.rows)
    listed = json.loads((out / results.ENV_FILE).read_text())["nodes"]
    assert {node["node_id"] for node in listed} == nodes
    assert all(node["calibrations"]["fp32"]["matmul_median_s"] > 0 for node in listed)


@pytest.mark.slow
def test_resume_finishes_a_run_whose_driver_was_killed(tmp_path):
    suite = tmp_path / "suite.toml"
    suite.write_text(TINY_SUITE.replace("batch_sizes = [2]", "batch_sizes = [2, 3, 4, 5, 6]"))
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "benchmarks.cli", "run", "--suite", str(suite),
        "--executor", "ray", "--threads", "1", "--no-plots", "--out", str(out),
    ]  # fmt: skip
    driver = subprocess.Popen(command, start_new_session=True)
    rows = out / results.ROWS_FILE
    deadline = time.monotonic() + 120
    while not (rows.exists() and rows.read_text().count("\n") >= 1) and time.monotonic() < deadline:
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray it started
    driver.wait()
    assert len(results.read_rows(rows)) >= 1
    subprocess.run([*command, "--resume"], check=True, timeout=300)
    keys = [json.dumps([r["arch"], r["mode"], r["batch_size"]]) for r in results.read_rows(rows)]
    assert len(keys) == len(set(keys)) == 6  # each job once: 5 inference sizes and a step


def test_normalize_uses_each_rows_own_machine():
    def side(calibrations):
        rows = [
            result_row(
                "resnet20", "resnet", batch_size=b, time_median_ms=2.0 * c,
                calibration_matmul_s=c, key=str(b),
            )
            for b, c in calibrations.items()
        ]  # fmt: skip
        return Side("x", pd.DataFrame(rows).assign(samples=None, acc_values=[[]] * len(rows)), 1.0)

    baseline, current = side({1: 1.0, 2: 1.0}), side({1: 1.0, 2: 3.0})  # b=2 ran on a slower node
    found = compare(baseline, current, CompareSettings(normalize=True))
    ratios = {c.job: c.ratio for c in found if c.metric == "time_median_ms"}
    assert all(r == pytest.approx(1.0) for r in ratios.values()), ratios
