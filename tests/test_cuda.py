"""The CUDA path on a real GPU; every test here is skipped without one (their CPU twins
are in test_gpu_path.py). Run on a GPU machine: pytest tests/test_cuda.py"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from benchmarks import results, runner
from benchmarks.measure.device import graphed, precision, use_math
from benchmarks.measure.latency import TimingConfig, cuda_event_timer, inference_call, time_calls
from benchmarks.suites import Entry, Suite

from helpers import FAST_TIMING, TinyNet, run_cli

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = torch.device("cuda")


def test_event_timer_measures_gpu_time_not_launch_time():
    a = torch.randn(4096, 4096, device=CUDA)
    once = time_calls(lambda: a @ a, CUDA, TimingConfig(2, 10, 10, 0.0), timer=cuda_event_timer())
    twice = time_calls(lambda: (a @ a, a @ a), CUDA, TimingConfig(2, 10, 10, 0.0))
    assert 1.6 < twice.median / once.median < 2.4


def test_fp32_is_true_fp32_and_tf32_is_not():
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(8, 64, 32, 32, generator=generator)
    weight = torch.randn(64, 64, 3, 3, generator=generator)
    exact = F.conv2d(image.double(), weight.double(), padding=1)

    def error(dtype: str) -> float:
        use_math(dtype)
        with precision(CUDA, dtype):
            out = F.conv2d(image.to(CUDA), weight.to(CUDA), padding=1)
        return ((out.double().cpu() - exact).abs().max() / exact.abs().max()).item()

    assert error("fp32") < 1e-5 < error("tf32")


def test_a_graphed_call_replays_the_eager_result():
    model = TinyNet().to(CUDA)
    x = torch.randn(4, 3, 8, 8, device=CUDA)
    call = inference_call(model, (x,), CUDA, "bf16")
    eager = call().clone()
    replay = graphed(call, CUDA)
    assert torch.equal(replay(), eager)


def test_every_flag_runs_and_is_recorded(tmp_path):
    out = tmp_path / "run"
    argv = [
        "run", "--arch", "resnet20", "--device", "cuda", "--dtype", "tf32", "--channels-last",
        "--cudnn-benchmark", "--cuda-graphs", "--batch-sizes", "1,64", "--train-batch-size", "64",
        "--measure", "flops,time,memory", "--out", str(out), "--no-plots",
    ]  # fmt: skip
    assert run_cli(argv) == 0
    rows = results.read_rows(out / results.ROWS_FILE)
    assert [row["status"] for row in rows] == ["ok"] * 3
    for row in rows:
        assert (row["device"], row["dtype"], row["channels_last"]) == ("cuda", "tf32", True)
        assert row["cudnn_benchmark"] and row["mem_method"] == "cuda_max_allocated"
        assert row["cuda_graphs"] is (row["mode"] == "infer")
        assert 0 < row["hw_efficiency"] < 1
    env = json.loads((out / results.ENV_FILE).read_text())
    assert env["calibrations"]["tf32"]["matmul_gflops_per_s"] > 0


def test_out_of_memory_is_a_row_and_memory_is_freed(toy_architectures, tmp_path):
    suite = Suite(
        name="test", entries=(Entry("tiny", config={"width": 8}),), batch_sizes=(1 << 40, 2),
        train_batch_size=0, input_size=64, timing=FAST_TIMING,
    )  # fmt: skip
    before = torch.cuda.memory_allocated()
    jobs = runner.expand_jobs(suite, CUDA, threads=1)
    runner.run(jobs, tmp_path, executor=runner.InProcessExecutor(), calibrations={})
    rows = results.read_rows(tmp_path / results.ROWS_FILE)
    assert [row["status"] for row in rows] == ["oom", "ok"]
    assert torch.cuda.memory_allocated() == before


def test_compile_on_the_gpu_times_compilation_apart(toy_architectures, tmp_path):
    suite = Suite(
        name="test", entries=(Entry("tiny"),), batch_sizes=(16,), train_batch_size=0,
        compile=True, timing=FAST_TIMING,
    )  # fmt: skip
    jobs = runner.expand_jobs(suite, CUDA, threads=1)
    runner.run(jobs, tmp_path, executor=runner.InProcessExecutor(), calibrations={})
    row = results.read_rows(tmp_path / results.ROWS_FILE)[0]
    assert row["status"] == "ok" and row["compile"] is True
    assert row["compile_s"] > 10 * row["time_median_ms"] / 1e3
