"""Intervals over seeds and from noise floors, the seeds that would decide, and the noise
floors measured from a multi-seed run."""

from __future__ import annotations

import json
import math

import pytest
from scipy import stats

from benchmarks import noise, results, uncertainty
from benchmarks.uncertainty import above, difference, mean_interval, seeds_to_decide

from helpers import result_row, write_run


def test_welch_interval_over_seeds():
    a, b = [0.91, 0.92, 0.93], [0.88, 0.885, 0.89]
    estimate = difference(a, b, noise=None)
    expected = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert estimate.value == pytest.approx(0.035)
    assert (estimate.low, estimate.high) == pytest.approx((expected.low, expected.high))
    assert "Welch, 3 vs 3 seeds" in estimate.text()


def test_one_seed_takes_its_interval_from_the_noise_floor():
    estimate = difference([0.90], [0.88], noise=0.005)
    half = 1.959964 * 0.005 * math.sqrt(2)
    assert (estimate.low, estimate.high) == pytest.approx((0.02 - half, 0.02 + half))
    unknown = difference([0.90], [0.88], noise=None)
    assert unknown.low is None and "no noise floor" in unknown.how


def test_a_mean_above_a_floor():
    estimate = above([0.80, 0.81, 0.82], 0.70, noise=None)
    assert estimate.value == pytest.approx(0.11) and estimate.low < 0.11 < estimate.high
    assert above([0.80], 0.70, noise=0.01).high == pytest.approx(0.1 + 1.959964 * 0.01)


def test_seeds_to_decide_grow_as_the_gap_to_the_margin_shrinks():
    wide = difference([0.91, 0.90], [0.90, 0.905], noise=None)  # +0.25 points, spread ~0.5
    near = seeds_to_decide(wide, margin=0.004)  # 0.15 points from the margin
    far = seeds_to_decide(wide, margin=0.02)  # 1.75 points from it
    assert far is not None and (near is None or near > far)
    assert seeds_to_decide(difference([0.9], [0.8], noise=None), 0.005) is None  # no spread


def test_mean_interval():
    mean, sd, half = mean_interval([0.90, 0.92, 0.94])
    assert (mean, sd) == pytest.approx((0.92, 0.02))
    assert half == pytest.approx(stats.t.ppf(0.975, 2) * 0.02 / math.sqrt(3))
    assert math.isnan(mean_interval([0.9])[1])


def test_noise_floors_are_measured_from_a_five_seed_run(tmp_path, monkeypatch):
    recipe = {
        "optimizer": "sgd", "lr": 0.1, "weight_decay": 5e-4, "schedule": "onecycle",
        "warmup": 0.2, "label_smoothing": 0.0, "train_size": 3600, "val_size": 400,
    }  # fmt: skip
    accuracies = [0.95, 0.952, 0.948, 0.951, 0.949]
    rows = [
        result_row("resnet20", "resnet", mode="train", batch_size=64, seed=seed, test_acc=acc,
                   **recipe)
        for seed, acc in enumerate(accuracies)
    ]  # fmt: skip
    run = write_run(tmp_path / "run", rows)
    (floor,) = noise.measure(run)
    assert floor.sd["test_acc"] == pytest.approx(stats.tstd(accuracies))
    assert floor.dataset == "mnist5k" and "epochs=2 batch=64 train=3600 val=400" in floor.recipe
    path = tmp_path / "floors.json"
    noise.write([floor], path)
    monkeypatch.setattr(noise, "FLOORS", path)
    noise.floors.cache_clear()
    try:
        assert noise.floor_for(rows[0]) == floor
        assert noise.floor_for({**rows[0], "lr": 0.2}) is None  # another recipe
        assert noise.floor_for({**rows[0], "curriculum_epochs": 0}) == floor  # none, as before
        assert noise.floor_for({**rows[0], "curriculum_epochs": 1}) is None
        assert json.loads(path.read_text())["floors"][0]["reference"] == "resnet20"
    finally:
        noise.floors.cache_clear()
    assert len(results.load(run)) == 5


def test_writing_floors_keeps_those_not_measured_again(tmp_path):
    """A floor measured in an earlier run stays until a run measures its recipe again."""

    def floor(dataset: str, sd: float, source: str) -> noise.Floor:
        return noise.Floor(dataset, "sgd lr=0.1", {"test_acc": sd}, "resnet20", (0.9,) * 5,
                           source, "abc")  # fmt: skip

    path = tmp_path / "floors.json"
    noise.write([floor("mnist5k", 0.01, "old"), floor("cifar10", 0.02, "old")], path)
    noise.write([floor("cifar10", 0.03, "new")], path)
    kept = {item["dataset"]: item for item in json.loads(path.read_text())["floors"]}
    assert kept["mnist5k"]["source"] == "old"
    assert kept["cifar10"]["source"] == "new" and kept["cifar10"]["sd"]["test_acc"] == 0.03


def test_a_question_answering_floor_spreads_its_metrics_not_their_floors(tmp_path):
    rows = [
        result_row("fusion_concat", "fusion", mode="train", batch_size=8, seed=seed,
                   dataset="sort_of_clevr:1200", test_acc=0.47 + seed / 100,
                   test_acc_rel=0.45 + seed / 100, test_acc_nonrel=0.5, floor_rel=0.7,
                   floor_nonrel=0.55)
        for seed in range(5)
    ]  # fmt: skip
    (floor,) = noise.measure(write_run(tmp_path / "run", rows))
    assert set(floor.sd) == {"test_acc", "test_acc_rel", "test_acc_nonrel"}
    assert floor.sd["test_acc_nonrel"] == 0.0


def test_the_median_interval_comes_from_order_statistics():
    """For 20 values the 6th and 15th smallest (95.9% coverage); none below 6 values."""
    assert uncertainty.median_interval(list(range(20, 0, -1))) == (6, 15)
    assert uncertainty.median_interval([1.0, 2.0, 3.0, 4.0, 5.0]) is None


def test_a_speed_up_over_paired_rounds_and_over_calls():
    rounds = uncertainty.ratio_of_rounds([11.0, 22.0, 11.0, 22.0], [10.0, 20.0, 10.0, 20.0])
    assert rounds.value == pytest.approx(0.1) and rounds.low == rounds.high == pytest.approx(0.1)
    assert rounds.how == "4 rounds, paired"  # round i with round i: the 2x drift cancels
    calls = uncertainty.ratio_of_medians([float(v) for v in range(1, 21)], [10.0] * 20)
    assert calls.value == pytest.approx(0.05) and calls.how == "20 vs 20 calls"
    # each median at 97.5% (5th and 16th of 20), so that the two joined cover 95%
    assert (calls.low, calls.high) == (pytest.approx(-0.5), pytest.approx(0.6))
    wide = uncertainty.widened(calls, 0.1, "why")
    assert (wide.low, wide.high) == (calls.low, calls.high) and wide.how.endswith(", why")
    narrow = uncertainty.ratio_of_medians([10.5] * 20, [10.0] * 20)
    band = uncertainty.widened(narrow, 0.1, "why")  # the calls agree; the processes may not
    assert (band.low, band.high) == (pytest.approx(1.05 / 1.1 - 1), pytest.approx(1.155 - 1))


def test_rounds_to_decide_a_speed_up_on_the_log_scale():
    """+15.5% with the per-round log ratios 0.036 apart: 4 rounds span +10%, 5 clear it."""
    logs = [0.098, 0.1815, 0.1363, 0.1613]
    estimate = uncertainty.ratio_of_rounds([math.exp(v) for v in logs], [1.0] * 4)
    assert estimate.low < 0.1 < estimate.value
    assert uncertainty.rounds_to_decide(estimate, 0.1) == 5
    calls = uncertainty.ratio_of_medians([1.155] * 20, [1.0] * 20)
    assert uncertainty.rounds_to_decide(calls, 0.1) is None  # no spread over rounds
