"""The runner: rows, failures, resume, interruption, and the executors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import architectures
from architectures import Family
from benchmarks import results, run_dir, runner
from benchmarks.schema import ROUNDS_COLUMN, SAMPLES_COLUMN, Mode, Status
from benchmarks.suites import Entry, Suite
from benchmarks.train import OptimizerStep, TrainConfig

from helpers import FAST_TIMING, TinyNet

CPU = torch.device("cpu")


def suite_of(*names: str, **settings) -> Suite:
    settings = {"batch_sizes": (2,), "train_batch_size": 4, "timing": FAST_TIMING, **settings}
    return Suite(name="test", entries=tuple(Entry(name) for name in names), **settings)


def run_suite(suite: Suite, out, executor=None, done=()) -> runner.RunOutcome:
    jobs = runner.expand_jobs(suite, CPU, threads=1)
    return runner.run(
        jobs, out, executor=executor or runner.InProcessExecutor(), calibrations={}, done=done
    )


def test_expand_jobs_one_per_batch_size_plus_training(toy_architectures):
    jobs = runner.expand_jobs(suite_of("tiny", batch_sizes=(1, 8), train_batch_size=4), CPU, 1)
    assert [(job.identity.mode, job.identity.batch_size) for job in jobs] == [
        (Mode.INFER, 1),
        (Mode.INFER, 8),
        (Mode.TRAIN, 4),
    ]
    no_training = suite_of("tiny", batch_sizes=(1,), train_batch_size=0)
    assert [job.identity.mode for job in runner.expand_jobs(no_training, CPU, 1)] == [Mode.INFER]


def test_rows_are_complete_and_written_as_they_finish(toy_architectures, tmp_path):
    outcome = run_suite(suite_of("tiny"), tmp_path)
    lines = (tmp_path / results.ROWS_FILE).read_text().splitlines()
    assert len(lines) == len(outcome.rows) == 2
    infer, train = (json.loads(line) for line in lines)
    assert infer["status"] == train["status"] == "ok"
    assert infer["mode"] == "infer" and train["mode"] == "train"
    assert infer["params"] == 3 * 4 * 9 + 4 + 4 * 10 + 10
    assert infer["macs"] == 6 * 6 * 4 * 27 + 40  # 8x8 input, 3x3 conv without padding
    assert infer["step_gflop"] == pytest.approx(infer["flops"] * 2 / 1e9)
    assert train["step_gflop"] > 2 * infer["step_gflop"]  # forward + backward at batch 4
    assert len(infer[SAMPLES_COLUMN]) == infer["time_n"] >= 3
    assert infer["throughput_per_s"] == pytest.approx(2 / (infer["time_median_ms"] / 1e3))
    table = results.load(tmp_path)
    assert len(table) == 2 and SAMPLES_COLUMN not in table.columns


def test_failures_become_rows_and_the_run_goes_on(toy_architectures, tmp_path):
    outcome = run_suite(suite_of("broken", "nan", "tiny", train_batch_size=0), tmp_path)
    by_arch = {row.identity.arch: row for row in outcome.rows}
    assert by_arch["broken"].status is Status.FAILED
    assert "broken on purpose" in by_arch["broken"].message
    assert by_arch["nan"].status is Status.FAILED and "non-finite" in by_arch["nan"].message
    assert by_arch["tiny"].status is Status.OK
    assert [row.identity.arch for row in outcome.failures] == ["broken", "nan"]


def test_resume_runs_only_what_is_missing_or_failed(toy_architectures, tmp_path):
    first = run_suite(suite_of("tiny", "broken", train_batch_size=0), tmp_path)
    done = results.read_rows(tmp_path / results.ROWS_FILE)
    assert len(done) == 2
    second = run_suite(
        suite_of("tiny", "broken", batch_sizes=(2, 3), train_batch_size=0), tmp_path, done=done
    )
    assert second.skipped == 1  # tiny b=2 was done; broken b=2 failed and is tried again
    assert {(row.identity.arch, row.identity.batch_size) for row in second.rows} == {
        ("broken", 2),
        ("tiny", 3),
        ("broken", 3),
    }
    assert len(first.rows) == 2
    table = results.load(tmp_path / results.RESULTS_FILE)
    assert len(table) == 4  # one row per job: the retried failure replaced the old one


def test_existing_run_needs_resume(toy_architectures, tmp_path):
    run_suite(suite_of("tiny", train_batch_size=0), tmp_path)
    with (
        pytest.raises(results.UserError, match="--resume"),
        run_dir.claim(tmp_path, [], resume=False),
    ):
        pass
    missing = tmp_path / "new"
    with (
        pytest.raises(results.UserError, match="nothing to resume"),
        run_dir.claim(missing, [], resume=True),
    ):
        pass
    assert not (tmp_path / "new").exists()


class InterruptAfterFirst:
    """An executor that is interrupted (Ctrl-C) after its first row."""

    def run(self, jobs, calibrations):
        yield runner.execute(jobs[0], calibrations.get(jobs[0].identity.dtype))
        raise KeyboardInterrupt


def test_interrupt_keeps_finished_rows(toy_architectures, tmp_path):
    outcome = run_suite(suite_of("tiny", batch_sizes=(2, 3, 4)), tmp_path, InterruptAfterFirst())
    assert outcome.interrupted and len(outcome.rows) == 1
    assert len(results.load(tmp_path / results.RESULTS_FILE)) == 1
    done = results.read_rows(tmp_path / results.ROWS_FILE)
    rest = run_suite(suite_of("tiny", batch_sizes=(2, 3, 4)), tmp_path, done=done)
    assert rest.skipped == 1 and len(rest.rows) == 3


@pytest.mark.slow
def test_isolated_jobs_run_in_child_processes(tmp_path):
    outcome = run_suite(
        suite_of("resnet20_dw", train_batch_size=0), tmp_path, runner.SubprocessExecutor()
    )
    (row,) = outcome.rows
    assert row.ok and row.times.time_n >= 3 and row.counts.params == 39_018


@pytest.mark.slow
def test_rounds_after_training_are_timed_in_a_fresh_process(tmp_path, monkeypatch):
    """Training changes this process's heap: a run that trained here times its later
    rounds in a new process each (runner.measure, patched here, sees only the first
    pass); a run that only times keeps them here."""
    training = TrainConfig(epochs=1, train_subset=64)
    suite = suite_of(
        "resnet20_dw", batch_sizes=(1,), dataset="mnist5k", training=training, rounds=2
    )
    here = []
    measure = runner.measure
    monkeypatch.setattr(runner, "measure", lambda job, *a: here.append(job) or measure(job, *a))
    runner.run_suite(suite, tmp_path, device=CPU, threads=1)
    assert [(job.identity.mode, job.trains) for job in here] == [
        (Mode.INFER, False), (Mode.TRAIN, True)
    ]  # fmt: skip
    rows = results.load(tmp_path)
    assert (rows["status"] == "ok").all() and (rows["time_rounds"] == 2).all()
    jobs = runner.expand_jobs(suite, CPU, threads=1)
    in_process = runner.InProcessExecutor()
    assert isinstance(runner.rounds_executor_for(in_process, jobs), runner.RoundProcessExecutor)
    timing_only = [job for job in jobs if not job.trains]
    assert runner.rounds_executor_for(in_process, timing_only) is in_process


def test_a_net_registered_at_run_time_keeps_its_rounds_here(toy_architectures):
    """A new process would not know it (its later rounds would fail there)."""
    training = TrainConfig(epochs=1, train_subset=64)
    suite = suite_of("tiny", dataset="mnist5k", training=training, rounds=2)
    jobs = runner.expand_jobs(suite, CPU, threads=1)
    assert any(job.trains for job in jobs)
    in_process = runner.InProcessExecutor()
    assert runner.rounds_executor_for(in_process, jobs) is in_process
    assert architectures.known_on_import("resnet20")
    assert architectures.known_on_import("torchvision:resnet18")  # resolved on demand, anywhere
    assert not architectures.known_on_import("tiny")


class FailingRounds:
    def run(self, jobs, calibrations):
        for job in jobs:
            yield runner.failed(job, Status.FAILED, "RuntimeError: the round broke")


def test_a_failed_round_is_reported_and_the_row_keeps_its_rounds(
    toy_architectures, tmp_path, caplog
):
    jobs = runner.expand_jobs(suite_of("tiny", train_batch_size=0, rounds=2), CPU, threads=1)
    outcome = runner.run(
        jobs,
        tmp_path,
        executor=runner.InProcessExecutor(),
        calibrations={},
        rounds_executor=FailingRounds(),
    )
    (row,) = outcome.rows
    assert row.ok and len(row.round_medians_ms) == 1
    assert "round 2: tiny infer b=2 failed: RuntimeError: the round broke" in caplog.text


def test_training_jobs_carry_accuracy_and_write_curves(toy_architectures, tmp_path):
    training = TrainConfig(epochs=2, lr=0.05, train_subset=256)
    suite = suite_of("tiny", dataset="mnist5k", seeds=(0, 1), training=training)
    jobs = runner.expand_jobs(suite, CPU, threads=1)
    assert [(job.identity.mode, job.identity.seed) for job in jobs] == [
        (Mode.INFER, 0), (Mode.TRAIN, 0), (Mode.TRAIN, 1)
    ]  # fmt: skip
    outcome = runner.run(jobs, tmp_path, executor=runner.InProcessExecutor(), calibrations={})
    infer, *train = outcome.rows
    assert infer.identity.dataset == "mnist5k" and infer.identity.input_shape == (1, 32, 32)
    assert infer.training.test_acc is None
    for row in train:
        assert row.ok and 0 <= row.training.test_acc <= 1
        assert (row.training.epochs, row.training.epochs_done) == (2, 2)
        assert row.training.train_subset == 256 and row.training.optimizer == "sgd"
    curves = [
        json.loads(line) for line in (tmp_path / results.CURVES_FILE).read_text().splitlines()
    ]
    assert [(c["seed"], c["epoch"]) for c in curves] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert curves[-1]["test_acc"] == train[1].training.test_acc


def test_a_diverging_training_job_is_recorded_as_such(toy_architectures, tmp_path):
    training = TrainConfig(epochs=2, lr=1e12, warmup=0, train_subset=128)
    suite = suite_of("tiny", batch_sizes=(2,), dataset="mnist5k", training=training)
    jobs = runner.expand_jobs(suite, CPU, threads=1)
    outcome = runner.run(jobs, tmp_path, executor=runner.InProcessExecutor(), calibrations={})
    infer, trained = outcome.rows
    assert infer.ok
    assert trained.status is Status.DIVERGED and "epoch 1" in trained.message
    assert trained.times.time_median_ms > 0  # the step time was measured before training


@pytest.mark.parametrize(
    ("dataset", "side", "strides", "vocab_size"),
    [
        ("sort_of_clevr:300", 75, (2, 2, 2, 2), 24),
        ("sort_of_clevr_small:300", 32, (2, 2, 2, 1), 24),
        ("sort_of_clevr_small_bits:300", 32, (2, 2, 2, 1), 12),  # the paper's 11 bits
    ],
)
def test_fusion_nets_train_on_question_answering_rows(tmp_path, dataset, side, strides, vocab_size):
    training = TrainConfig(epochs=2, optimizer="adamw", lr=1e-3, curriculum_epochs=1)
    entry = Entry("fusion_rn", dataset=dataset, train_batch_size=8)
    suite = Suite(
        name="t", entries=(entry,), batch_sizes=(2,), timing=FAST_TIMING, training=training
    )
    jobs = runner.expand_jobs(suite, CPU, threads=1, cache_dir=str(tmp_path / "cache"))
    fitted = {"in_channels": 3, "num_classes": 10, "vocab_size": vocab_size, "strides": strides}
    assert jobs[0].fitted == fitted
    cells = architectures.create("fusion_rn", **fitted).encode_image(torch.zeros(1, 3, side, side))
    assert cells.shape[-2:] == ((5, 5) if side == 75 else (4, 4))  # about an object a cell
    outcome = runner.run(jobs, tmp_path, executor=runner.InProcessExecutor(), calibrations={})
    infer, trained = outcome.rows
    assert infer.identity.input_shape == (3, side, side) and infer.counts.macs > 0
    assert trained.ok and trained.identity.batch_size == 8
    assert 0 <= trained.training.test_acc <= 1 and trained.training.curriculum_epochs == 1
    assert set(trained.metrics) == {"test_acc_rel", "test_acc_nonrel", "floor_rel", "floor_nonrel"}
    assert all(0 <= value <= 1 for value in trained.metrics.values())


def test_question_answering_step_answers_every_question_of_its_images(tmp_path):
    """The timed training step of a fusion net is its task's: 8 images, 160 questions."""
    entry = Entry("fusion_xattn", dataset="sort_of_clevr:300", train_batch_size=8)
    suite = Suite(name="t", entries=(entry,), batch_sizes=(2,), timing=FAST_TIMING)
    job = runner.expand_jobs(suite, CPU, threads=1, cache_dir=str(tmp_path / "cache"))[-1]
    assert job.identity.mode is Mode.TRAIN and job.data.name == "sort_of_clevr:300"
    model = architectures.create(job.identity.arch, **job.overrides())
    inputs = runner.job_inputs(job, CPU)
    forward, targets = job.task.training_batch(model, inputs, 10, CPU, compile=False)
    assert forward().shape == (160, 10) and targets.shape == (160,)


def test_the_timed_training_step_is_the_recipes_optimizer_step(
    toy_architectures, tmp_path, monkeypatch
):
    """An AdamW job times AdamW steps, through the OptimizerStep that training takes."""
    steps = []

    class Recorded(OptimizerStep):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            steps.append(self)

    monkeypatch.setattr(runner, "OptimizerStep", Recorded)
    recipe = TrainConfig(optimizer="adamw", lr=3e-4, label_smoothing=0.1)
    jobs = runner.expand_jobs(suite_of("tiny", training=recipe), CPU, threads=1)[-1:]
    (row,) = runner.run(jobs, tmp_path, executor=runner.InProcessExecutor(), calibrations={}).rows
    (step,) = steps
    assert isinstance(step.optimizer, torch.optim.AdamW) and step.label_smoothing == 0.1
    assert step.optimizer.param_groups[0]["lr"] == 3e-4
    assert row.training.optimizer == "adamw" and row.training.test_acc is None


def test_rounds_pool_the_samples_of_timing_jobs(toy_architectures, tmp_path):
    jobs = runner.expand_jobs(suite_of("tiny", batch_sizes=(1,), rounds=3), CPU, threads=1)
    outcome = runner.run(jobs, tmp_path, executor=runner.InProcessExecutor(), calibrations={})
    lines = results.read_rows(tmp_path / results.ROWS_FILE)
    assert len(lines) == 2 + 2 * 2  # infer and train-step rows, each timed twice more
    sizes = [len(line[SAMPLES_COLUMN]) for line in lines if line["mode"] == Mode.INFER]
    assert sizes[0] < sizes[1] < sizes[2]  # each round adds its samples to the row
    infer = results.load(tmp_path).set_index("mode").loc[str(Mode.INFER)]
    assert infer["time_rounds"] == 3 and infer["time_n"] == sizes[2]
    assert all(row.ok for row in outcome.rows)
    medians = [line[ROUNDS_COLUMN] for line in lines if line["mode"] == Mode.INFER]
    assert [len(m) for m in medians] == [1, 2, 3]  # each round's median, the test's unit
    assert medians[2][0] == pytest.approx(float(np.median(lines[0][SAMPLES_COLUMN])))


def test_rounds_time_a_training_step_again_not_the_training(toy_architectures, tmp_path):
    """Each round times the step of the first seed (the seeds' steps are the same) and
    pools it into that row, which keeps its accuracy; nothing trains twice."""
    suite = suite_of(
        "tiny",
        batch_sizes=(1,),
        dataset="mnist5k",
        seeds=(0, 1),
        training=TrainConfig(epochs=1),
        rounds=3,
    )
    jobs = runner.expand_jobs(suite, CPU, threads=1)
    runner.run(jobs, tmp_path, executor=runner.InProcessExecutor(), calibrations={})
    lines = results.read_rows(tmp_path / results.ROWS_FILE)
    steps = [(line["mode"], line["seed"]) for line in lines]
    again = [(Mode.TRAIN, 0), (Mode.INFER, 0), (Mode.INFER, 0), (Mode.TRAIN, 0)]  # B A, A B
    assert steps == [(Mode.INFER, 0), (Mode.TRAIN, 0), (Mode.TRAIN, 1), *again]
    first, last = lines[1], lines[-1]
    assert len(last[ROUNDS_COLUMN]) == 3 and len(last[SAMPLES_COLUMN]) > len(first[SAMPLES_COLUMN])
    assert last["test_acc"] == first["test_acc"] is not None
    assert len(results.read_rows(tmp_path / results.CURVES_FILE)) == 2  # one epoch, two seeds


def test_each_net_is_timed_in_its_own_rounds_in_alternating_order(
    toy_architectures, tmp_path, monkeypatch
):
    """A net that sets rounds = 1 is timed once; the others again in each round, the
    order reversed every other round (A B, then B A), so that a drift in the machine's
    load falls on both nets of a pair alike. A round times, and counts nothing again."""
    entries = (Entry("tiny", batch_sizes=(2, 3)), Entry("tiny", batch_sizes=(4,), rounds=1))
    suite = suite_of("tiny", train_batch_size=0, rounds=3).replace(entries=entries)
    jobs = runner.expand_jobs(suite, CPU, threads=1)
    counted = []
    count_flops = runner.count_flops
    monkeypatch.setattr(runner, "count_flops", lambda *a: counted.append(1) or count_flops(*a))
    runner.run(jobs, tmp_path, executor=runner.InProcessExecutor(), calibrations={})
    assert len(counted) == len(jobs)
    lines = results.read_rows(tmp_path / results.ROWS_FILE)
    assert [line["batch_size"] for line in lines] == [2, 3, 4, 3, 2, 2, 3]  # A B, B A, A B
    rounds = results.load(tmp_path).set_index("batch_size")["time_rounds"]
    assert rounds.to_dict() == {2: 3, 3: 3, 4: 1}


def test_a_round_times_the_nets_of_a_pair_one_right_after_the_other(toy_architectures, tmp_path):
    """In a round, two nets' timings of one thing (the same batch, the same mode) come
    back to back, so that a burst of load falls on both sides of a paired ratio; the
    first pass, which trains and counts, keeps each net's jobs together. The nets differ
    in name, config and seed, as a pair may."""
    architectures.register("other", family=Family.OTHER, paper="none", input_shape=(3, 8, 8))(
        TinyNet
    )
    entries = (Entry("tiny"), Entry("other", config={"width": 8}, seeds=(1,)))
    suite = suite_of("tiny", batch_sizes=(2, 3), rounds=3).replace(entries=entries)
    jobs = runner.expand_jobs(suite, CPU, threads=1)
    runner.run(jobs, tmp_path, executor=runner.InProcessExecutor(), calibrations={})
    lines = results.read_rows(tmp_path / results.ROWS_FILE)
    timed = [(line["arch"] == "other", line["mode"], line["batch_size"]) for line in lines]
    a, b = False, True
    first = [(a, "infer", 2), (a, "infer", 3), (a, "train", 4)]
    first += [(b, "infer", 2), (b, "infer", 3), (b, "train", 4)]
    reversed_round = [(b, "train", 4), (a, "train", 4), (b, "infer", 3), (a, "infer", 3)]
    reversed_round += [(b, "infer", 2), (a, "infer", 2)]
    in_order = [(a, "infer", 2), (b, "infer", 2), (a, "infer", 3), (b, "infer", 3)]
    in_order += [(a, "train", 4), (b, "train", 4)]
    assert timed == first + reversed_round + in_order


def test_a_timed_step_that_diverges_is_recorded_as_such(toy_architectures, tmp_path):
    """The recipe's steps on random labels can blow up: the times are then of NaN
    arithmetic, and the row says so instead of passing them off as a step time."""
    recipe = TrainConfig(lr=1e12, warmup=0)
    jobs = runner.expand_jobs(suite_of("tiny", training=recipe), CPU, threads=1)[-1:]
    (row,) = runner.run(jobs, tmp_path, executor=runner.InProcessExecutor(), calibrations={}).rows
    assert row.status is Status.DIVERGED and "timed training step" in row.message
