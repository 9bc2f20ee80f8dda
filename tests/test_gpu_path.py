"""The GPU path on the CPU: precision and backend settings, the timer, OOM handling,
compilation, per-entry dtypes and the gpu_validate suite (CUDA itself: test_cuda.py)."""

from __future__ import annotations

import json

import pytest
import torch

import architectures
from architectures import Family
from benchmarks import results, runner
from benchmarks.data import sort_of_clevr
from benchmarks.measure import device as device_module
from benchmarks.measure.calibration import Calibration
from benchmarks.measure.device import Backend, check_dtype, grad_scaler, precision, use_math
from benchmarks.measure.latency import TimingConfig, time_calls, timer_for
from benchmarks.schema import Mode
from benchmarks.suites import Entry, Suite, load_suite, parse_suite
from benchmarks.train import TrainConfig, shuffled_batches

from helpers import FAST_TIMING, TinyNet, result_row, run_cli, write_fake_cifar10

CPU = torch.device("cpu")


def tiny_suite(**settings) -> Suite:
    settings = {"batch_sizes": (2,), "train_batch_size": 4, "timing": FAST_TIMING, **settings}
    return Suite(name="test", entries=(Entry("tiny"),), **settings)


def run_jobs(jobs, out, calibrations=None) -> list[dict]:
    runner.run(jobs, out, executor=runner.InProcessExecutor(), calibrations=calibrations or {})
    return results.read_rows(out / results.ROWS_FILE)


@pytest.mark.parametrize(
    ("dtype", "tf32", "autocast"),
    [("fp32", False, None), ("tf32", True, None), ("bf16", False, torch.bfloat16)],
)
def test_dtypes_set_tf32_everywhere_and_autocast_in_the_block(dtype, tf32, autocast):
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = True  # PyTorch's default: fp32 must switch it off
    use_math(dtype)
    assert torch.backends.cuda.matmul.allow_tf32 is torch.backends.cudnn.allow_tf32 is tf32
    with precision(CPU, dtype):
        assert torch.is_autocast_enabled("cpu") is (autocast is not None)
        if autocast is not None:
            assert torch.get_autocast_dtype("cpu") == autocast
    assert not torch.is_autocast_enabled("cpu")
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_every_job_sets_its_dtypes_math(toy_architectures, tmp_path):
    torch.backends.cudnn.allow_tf32 = True
    run_jobs(runner.expand_jobs(tiny_suite(train_batch_size=0), CPU, threads=1), tmp_path)
    assert torch.backends.cudnn.allow_tf32 is False


def test_cuda_only_settings_are_refused_on_the_cpu():
    with pytest.raises(ValueError, match="tf32 is a CUDA setting"):
        check_dtype("tf32", CPU)
    with pytest.raises(ValueError, match="cuda-graphs needs a CUDA device"):
        Backend(cuda_graphs=True).check(CPU)
    with pytest.raises(ValueError, match="cudnn-benchmark needs a CUDA device"):
        Backend(cudnn_benchmark=True).check(CPU)
    Backend(channels_last=True, compile=True).check(CPU)  # these work on the CPU


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--dtype", "tf32"], "tf32 is a CUDA setting"),
        (["--cuda-graphs"], "cuda-graphs needs a CUDA device"),
        (["--cudnn-benchmark"], "cudnn-benchmark needs a CUDA device"),
    ],
)
def test_cli_refuses_cuda_settings_on_the_cpu_in_one_line(tmp_path, capsys, flags, message):
    argv = ["run", "--arch", "plain20", "--device", "cpu", "--measure", "flops"]
    assert run_cli([*argv, "--out", str(tmp_path / "run"), *flags]) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_time_calls_takes_the_timer_the_cuda_event_timer_plugs_into():
    calls = []

    def fake_event_timer(call):  # the CUDA timer's contract: run the call once, its seconds
        call()
        return 0.25

    timing = time_calls(
        lambda: calls.append(1), CPU, TimingConfig(2, 5, 5, 0.0), timer=fake_event_timer
    )
    assert timing.samples == (0.25,) * 5 and len(calls) == 2 + 5
    assert timer_for(CPU)(lambda: None) >= 0  # the CPU's own timer is the wall clock


def test_an_out_of_memory_job_is_recorded_and_the_run_goes_on(scratch_registry, tmp_path):
    class OutOfMemoryNet(TinyNet):
        def forward(self, x):
            if x.shape[0] > 2:  # as a GPU would at a batch size too large for it
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 80 GiB")
            return super().forward(x)

    architectures.register("oom_net", family=Family.OTHER, paper="none", input_shape=(3, 8, 8))(
        OutOfMemoryNet
    )
    suite = Suite(
        name="test", entries=(Entry("oom_net"),), batch_sizes=(1, 64, 2), train_batch_size=0,
        timing=FAST_TIMING,
    )  # fmt: skip
    rows = run_jobs(runner.expand_jobs(suite, CPU, threads=1), tmp_path)
    assert [(row["batch_size"], row["status"]) for row in rows] == [
        (1, "ok"),
        (64, "oom"),
        (2, "ok"),
    ]
    assert "out of memory" in rows[1]["message"]


def test_backend_settings_and_dtype_are_applied_and_recorded(scratch_registry, tmp_path):
    seen = []

    class LayoutNet(TinyNet):
        def forward(self, x):
            seen.append(x.is_contiguous(memory_format=torch.channels_last))
            return super().forward(x)

    architectures.register("tiny", family=Family.OTHER, paper="none", input_shape=(3, 8, 8))(
        LayoutNet
    )
    jobs = runner.expand_jobs(tiny_suite(channels_last=True, dtype="bf16"), CPU, threads=1)
    rows = run_jobs(jobs, tmp_path)
    assert all(seen) and len(seen) > 5
    for row in rows:
        assert row["status"] == "ok"
        assert (row["dtype"], row["channels_last"], row["compile"]) == ("bf16", True, False)
        assert row["cudnn_benchmark"] is False and row["cuda_graphs"] is False
        assert "compile_s" not in row


def test_compiled_jobs_time_compilation_apart(toy_architectures, tmp_path, monkeypatch):
    monkeypatch.setattr(device_module, "COMPILE_BACKEND", "eager")  # dynamo without codegen
    compiles = []
    real_compile = torch.compile
    monkeypatch.setattr(
        torch, "compile", lambda f, **kw: compiles.append(f) or real_compile(f, **kw)
    )
    suite = tiny_suite(
        compile=True, dataset="mnist5k", training=TrainConfig(epochs=1, train_subset=64)
    )
    rows = run_jobs(runner.expand_jobs(suite, CPU, threads=1), tmp_path)
    infer, train = rows
    assert infer["compile"] is train["compile"] is True
    assert infer["compile_s"] > 0 and train["compile_s"] > 0
    assert train["test_acc"] is not None and train["train_samples_per_s"] > 0
    assert len(compiles) >= 3  # the timed forward, the timed training step, the training


@pytest.mark.slow
def test_inductor_compiles_a_model_on_the_cpu(toy_architectures, tmp_path):
    """The real torch.compile (inductor, C++ codegen): same outputs, compilation timed apart."""
    suite = tiny_suite(compile=True, train_batch_size=0)
    row = run_jobs(runner.expand_jobs(suite, CPU, threads=1), tmp_path)[0]
    assert row["status"] == "ok" and row["compile_s"] > 0.5 > row["time_median_ms"] / 1e3
    model = TinyNet().eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.inference_mode():
        assert torch.allclose(torch.compile(model)(x), model(x), atol=1e-5)


def test_epochs_are_full_batches_unless_none_is_full():
    generator = torch.Generator().manual_seed(0)
    batches = shuffled_batches(10, 4, generator, CPU)
    assert [len(b) for b in batches] == [4, 4] and len(set(torch.cat(batches).tolist())) == 8
    assert [len(b) for b in shuffled_batches(3, 4, generator, CPU)] == [3]


def test_entries_set_their_own_dtype_batch_sizes_and_name_lists(toy_architectures):
    text = """
        batch_sizes = [1, 8]
        [[architectures]]
        arch = "tiny"
        dtype = "bf16"
        [[architectures]]
        arch = "tiny"
        [[architectures]]
        arch = ["tiny", "nan"]
        batch_sizes = []
        train_batch_size = 0
        [[architectures]]
        arch = "tiny"
        channels_last = true
        batch_sizes = [1]
        train_batch_size = 0
    """
    suite = parse_suite("mixed", text, source="test")
    assert len(suite.entries) == 5  # tiny in bf16, tiny, the list's two, tiny NHWC
    jobs = runner.expand_jobs(suite.replace(timing=FAST_TIMING), CPU, threads=1)
    described = [
        (job.identity.arch, job.identity.dtype, str(job.identity.mode), job.identity.batch_size)
        for job in jobs
    ]
    assert described == [
        ("tiny", "bf16", "infer", 1), ("tiny", "bf16", "infer", 8), ("tiny", "bf16", "train", 32),
        ("tiny", "fp32", "infer", 1), ("tiny", "fp32", "infer", 8), ("tiny", "fp32", "train", 32),
        ("tiny", "fp32", "infer", 1),
    ]  # fmt: skip
    assert [job.backend.channels_last for job in jobs] == [False] * 6 + [True]
    assert len({job.identity.key() for job in jobs}) == len(jobs)


def test_each_dtype_is_calibrated_and_used_for_its_rows(toy_architectures, tmp_path):
    suite = tmp_path / "two.toml"
    suite.write_text(
        'batch_sizes = [2]\ntrain_batch_size = 0\nmeasure = ["flops", "time"]\n'
        "[timing]\nwarmup = 1\nmin_samples = 3\nmin_time_s = 0.0\n"
        '[[architectures]]\narch = "tiny"\ndtype = "bf16"\n'
        '[[architectures]]\narch = "tiny"\n'
    )
    out = tmp_path / "run"
    assert (
        run_cli(["run", "--suite", str(suite), "--device", "cpu", "--out", str(out), "--no-plots"])
        == 0
    )
    env = json.loads((out / results.ENV_FILE).read_text())
    assert set(env["calibrations"]) == {"fp32", "bf16"} and env["calibration"]["dtype"] == "fp32"
    for row in results.read_rows(out / results.ROWS_FILE):
        peak = env["calibrations"][row["dtype"]]["matmul_gflops_per_s"]
        assert row["hw_efficiency"] == pytest.approx(row["achieved_gflops_per_s"] / peak)


def test_labels_name_the_dtype_and_settings_where_rows_differ():
    rows = [
        result_row("resnet20", "resnet", dtype="bf16", compile=True),
        result_row("resnet20", "resnet", dtype="fp32"),
    ]
    assert set(results.labelled(results.to_frame(rows))["label"]) == {
        "resnet20 [bf16, compile]", "resnet20 [fp32]"
    }  # fmt: skip
    assert list(results.labelled(results.to_frame(rows[:1]))["label"]) == ["resnet20"]


def test_gpu_validate_holds_every_part_the_issue_lists(tmp_path, monkeypatch):
    write_fake_cifar10(tmp_path / "data")
    monkeypatch.setattr(sort_of_clevr, "DEFAULT_SIZE", 240)
    suite = load_suite("gpu_validate")
    jobs = runner.expand_jobs(
        suite, torch.device("cuda"), threads=1, data_root=str(tmp_path / "data"),
        cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    assert all(job.identity.device == "cuda" for job in jobs)
    assert all(job.backend == Backend(channels_last=True, cudnn_benchmark=True) for job in jobs)

    efficiency = [job.identity for job in jobs if job.data is None]
    everything = set(architectures.list_architectures())
    for setting in (
        ("bf16", "infer", 1), ("bf16", "infer", 256), ("bf16", "train", 256),
        ("fp32", "infer", 1), ("fp32", "infer", 256),
    ):  # fmt: skip
        timed = {j.arch for j in efficiency if (j.dtype, j.mode, j.batch_size) == setting}
        assert timed == everything, setting
    assert len(efficiency) == 5 * len(everything)
    assert not any(job.trains for job in jobs if job.data is None)

    trained = {job.identity.arch: job for job in jobs if job.trains}
    depth = {"plain20", "plain56", "resnet20", "resnet56"}
    width = {"resnet20", "resnet20_grouped", "resnet20_dw", "mobilenet_v2", "resnext29_2x32d"}
    fusion = {"fusion_concat", "fusion_film", "fusion_xattn", "fusion_san", "fusion_rn"}
    assert set(trained) == depth | width | {"resnet18_cifar"} | fusion
    assert all(job.data.name == "cifar10" for name, job in trained.items() if name not in fusion)
    assert all(job.data.name == "sort_of_clevr" for name, job in trained.items() if name in fusion)
    assert all(
        job.identity.dtype == "bf16" and job.identity.mode is Mode.TRAIN for job in trained.values()
    )
    assert trained["resnet18_cifar"].recipe.target_accuracy == 0.94
    assert trained["resnet20"].recipe.target_accuracy == 0.91
    assert len({trained[name].recipe for name in depth | width}) == 1  # one budget for all
    assert not any(job.recipe.time_budget_s for job in jobs)  # work budgets: epochs
    assert {job.recipe.epochs for job in trained.values()} == {10, 15, 12}
    assert len(jobs) == len(efficiency) + len(trained)  # no inference rows from training entries


def test_training_rows_carry_the_training_loops_hardware_efficiency(toy_architectures, tmp_path):
    calibration = Calibration("cpu", "fp32", 8, 1e-3, 100.0, "", 1e-3, 100.0)
    suite = tiny_suite(dataset="mnist5k", training=TrainConfig(epochs=2, train_subset=64))
    jobs = [job for job in runner.expand_jobs(suite, CPU, threads=1) if job.trains]
    row = run_jobs(jobs, tmp_path, {"fp32": calibration})[0]
    assert row["train_size"] + row["val_size"] == 64  # a tenth held out for validation
    assert row["train_steps"] == 2 * (row["train_size"] // 4)
    achieved = row["step_gflop"] * row["train_steps"] / row["train_time_s"]
    assert row["train_hw_efficiency"] == pytest.approx(achieved / 100.0)
    assert row["hw_efficiency"] == pytest.approx(row["achieved_gflops_per_s"] / 100.0)


def test_fp16_training_scales_the_loss_and_other_dtypes_do_not(toy_architectures, tmp_path):
    assert grad_scaler(CPU, "fp16").is_enabled()
    assert not any(grad_scaler(CPU, dtype).is_enabled() for dtype in ("fp32", "bf16"))
    suite = tiny_suite(
        dtype="fp16", dataset="mnist5k", training=TrainConfig(epochs=1, train_subset=64)
    )
    rows = run_jobs(runner.expand_jobs(suite, CPU, threads=1), tmp_path)
    assert [row["status"] for row in rows] == ["ok", "ok"] and rows[1]["test_acc"] is not None
