"""`archbench compare`: verdicts per metric kind, significance, normalisation, the
pytest-benchmark format, output formats, exit codes and bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import stats

import architectures
from benchmarks import compare, gate_trial, results
from benchmarks.compare import Settings, Side
from benchmarks.measure.flops import count_macs
from benchmarks.schema import ROUNDS_COLUMN, SAMPLES_COLUMN, Identity

from helpers import REPO, measured_net, result_row, run_cli, write_run

KEYS = set(Identity.from_record(result_row("resnet20", "resnet")).record())


def side(rows: list[dict], calibration_s: float | None = None) -> Side:
    table = results.to_frame(rows)
    table["samples"] = [row.get(SAMPLES_COLUMN) for row in rows]
    table["rounds"] = [row.get(ROUNDS_COLUMN) for row in rows]
    return Side("test", compare.pool_seeds(table), calibration_s)


def timing(
    median: float, spread: float, n: int = 30, seed: int = 0, arch: str = "resnet20", **changes
) -> dict:
    """An inference row whose raw samples scatter around ``median``."""
    samples = np.random.default_rng(seed).normal(median, spread, n).tolist()
    return result_row(
        arch, "resnet", time_median_ms=float(np.median(samples)),
        time_iqr_ms=spread * 1.35, **{SAMPLES_COLUMN: samples}, **changes,
    )  # fmt: skip


def verdict(comparisons, metric: str) -> str:
    (item,) = [c for c in comparisons if c.metric == metric]
    return item.verdict


@pytest.mark.parametrize(
    ("base", "current", "expected"),
    [
        (timing(10.0, 0.3), timing(13.0, 0.3, seed=1), "regressed"),  # 30% slower, clearly
        (timing(10.0, 0.3), timing(10.1, 0.3, seed=1), "ok"),  # within the threshold
        (timing(10.0, 0.3), timing(8.0, 0.3, seed=1), "improved"),
        (timing(10.0, 6.0), timing(11.5, 6.0, seed=1), "ok"),  # 15% slower, buried in noise
    ],
)
def test_timing_needs_both_threshold_and_significance(base, current, expected):
    comparisons = compare.compare(side([base]), side([current]))
    assert verdict(comparisons, "time_median_ms") == expected


def test_pure_noise_is_never_significant_and_a_clear_shift_always_is():
    rng = np.random.default_rng(0)
    noise = [
        compare.mann_whitney_p(rng.normal(10, 1, 30), rng.normal(10, 1, 30)) for _ in range(200)
    ]
    assert np.mean(np.array(noise) < compare.SIGNIFICANCE) < 0.1  # about 5% by construction
    shifted = [
        compare.mann_whitney_p(rng.normal(10, 1, 30), rng.normal(12, 1, 30)) for _ in range(50)
    ]
    assert max(shifted) < 1e-4


def test_without_samples_intervals_decide():
    base = result_row("resnet20", "resnet", time_median_ms=10.0, time_iqr_ms=0.5)
    apart = result_row("resnet20", "resnet", time_median_ms=13.0, time_iqr_ms=0.5)
    overlapping = result_row("resnet20", "resnet", time_median_ms=13.0, time_iqr_ms=6.0)
    assert verdict(compare.compare(side([base]), side([apart])), "time_median_ms") == "regressed"
    assert verdict(compare.compare(side([base]), side([overlapping])), "time_median_ms") == "ok"


def test_per_metric_threshold():
    settings = Settings(thresholds={"time_median_ms": 0.5})
    comparisons = compare.compare(side([timing(10.0, 0.3)]), side([timing(13.0, 0.3)]), settings)
    assert verdict(comparisons, "time_median_ms") == "ok"


def test_normalize_divides_by_each_runs_calibration():
    slow_machine = side([timing(20.0, 0.3, seed=1)], calibration_s=0.02)
    fast_machine = side([timing(10.0, 0.3)], calibration_s=0.01)
    raw = compare.compare(fast_machine, slow_machine)
    assert verdict(raw, "time_median_ms") == "regressed"
    normalized = compare.compare(fast_machine, slow_machine, Settings(normalize=True))
    assert verdict(normalized, "time_median_ms") == "ok"
    with pytest.raises(compare.UserError, match="calibration"):
        compare.compare(side([timing(10.0, 0.3)]), fast_machine, Settings(normalize=True))


def test_exact_metrics_any_difference_is_changed():
    base = side([result_row("resnet20", "resnet", params=269_722)])
    same = compare.compare(base, side([result_row("resnet20", "resnet", params=269_722)]))
    bigger = compare.compare(base, side([result_row("resnet20", "resnet", params=269_723)]))
    assert verdict(same, "params") == "ok" and verdict(bigger, "params") == "changed"
    assert compare.exit_code(bigger) == 1 and compare.exit_code(same) == 0


def test_memory_uses_the_threshold_and_a_floor():
    base = side([result_row("resnet20", "resnet", peak_mem_mb=100.0)])
    grown = compare.compare(base, side([result_row("resnet20", "resnet", peak_mem_mb=130.0)]))
    tiny = side([result_row("resnet20", "resnet", peak_mem_mb=1.0)])
    doubled_but_tiny = compare.compare(
        tiny, side([result_row("resnet20", "resnet", peak_mem_mb=1.8)])
    )
    assert verdict(grown, "peak_mem_mb") == "regressed"
    assert verdict(doubled_but_tiny, "peak_mem_mb") == "ok"


def trained(*accuracies: float) -> list[dict]:
    return [
        measured_net("resnet20", "resnet", accuracy, seed=seed)[-1]
        for seed, accuracy in enumerate(accuracies)
    ]


@pytest.mark.parametrize(
    ("base", "current", "expected"),
    [
        ((0.92,), (0.905,), "regressed"),  # 1.5 points, one seed each
        ((0.92,), (0.915,), "ok"),
        ((0.92, 0.93, 0.91), (0.90, 0.91, 0.89), "regressed"),  # 2 points, tight seeds
        ((0.92, 0.97, 0.87), (0.90, 0.95, 0.85), "ok"),  # 2 points, within the seed spread
        ((0.90,), (0.93,), "improved"),
    ],
)
def test_accuracy_tolerance_and_seed_spread(base, current, expected):
    comparisons = compare.compare(side(trained(*base)), side(trained(*current)))
    assert verdict(comparisons, "test_acc") == expected


def test_rows_on_one_side_only_are_new_or_missing():
    base = side([timing(10.0, 0.3), timing(10.0, 0.3, batch_size=64)])
    current = side([timing(10.0, 0.3), timing(10.0, 0.3, batch_size=8)])
    verdicts = {c.job: c.verdict for c in compare.compare(base, current) if c.metric == "row"}
    assert sorted(verdicts.values()) == ["missing", "new"]
    assert compare.exit_code(compare.compare(base, current)) == 0


def test_markdown_and_json_output():
    comparisons = compare.compare(side([timing(10.0, 0.3)]), side([timing(13.0, 0.3, seed=1)]))
    markdown = compare.render(comparisons, "markdown")
    assert markdown.startswith("**archbench compare**: 5 comparisons: 1 regressed, 4 ok")
    assert "| regressed " in markdown
    data = json.loads(compare.render(comparisons, "json"))
    assert data["exit_code"] == 1
    assert {c["verdict"] for c in data["comparisons"]} >= {"regressed", "ok"}


def test_cli_exit_codes_and_bad_input(tmp_path, capsys):
    base = write_run(tmp_path / "base", [timing(10.0, 0.3)])
    slower = write_run(tmp_path / "slower", [timing(13.0, 0.3, seed=1)])
    other = write_run(tmp_path / "other", [timing(10.0, 0.3, arch="plain20")])
    old = tmp_path / "old.jsonl"
    old.write_text(json.dumps(result_row("resnet20", "resnet", schema_version=1)) + "\n")
    assert run_cli(["compare", str(base), str(base)]) == 0
    assert run_cli(["compare", str(base), str(slower), "--format", "markdown"]) == 1
    assert "regressed" in capsys.readouterr().out
    for bad, message in (
        ([str(tmp_path / "nowhere"), str(base)], "no results at"),
        ([str(old), str(base)], "schema version"),
        ([str(base), str(other)], "no job in common"),
    ):
        assert run_cli(["compare", *bad]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


def test_runs_on_cpus_with_other_instruction_sets_get_a_note(tmp_path, capsys):
    """--normalize scales by a matmul; it cannot undo kernels that an instruction set
    enables (bf16 above all), so the CLI says when the two CPUs' extensions differ."""

    def run(name: str, features: list[str]) -> str:
        env = {"calibration": {"matmul_median_s": 0.01}, "cpu_features": features}
        return str(write_run(tmp_path / name, [timing(10.0, 0.3)], env=env))

    wide, narrow = run("wide", ["avx2", "fma", "avx512f", "avx512_bf16"]), run("narrow", ["avx2"])
    assert run_cli(["compare", wide, narrow, "--normalize"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "instruction set" in err
    assert "only the baseline's: avx512_bf16 avx512f fma" in err
    assert run_cli(["compare", wide, wide]) == 0 and not capsys.readouterr().err


@pytest.mark.slow
def test_reads_the_json_pytest_benchmark_writes(tmp_path):
    """A real pytest-benchmark file from benchmarks/perf, compared with itself and with
    a copy in which one benchmark got 30% slower: synthetic timings (10 values within
    +/-5% of the median) in both, so that no load on the machine decides the verdict."""
    out = tmp_path / "bench.json"
    subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks/perf", "-q", "-k", "resnet20_dw and 1",
         "-p", "no:cacheprovider", f"--benchmark-json={out}", "--benchmark-min-rounds=10",
         "--benchmark-max-time=0.2"],
        cwd=REPO, check=True, capture_output=True,
    )  # fmt: skip
    loaded = compare.load_side(out)
    (row,) = loaded.rows.to_dict("records")
    assert row["arch"] == "resnet20_dw" and row["params"] > 0 and row["macs"] > 0
    assert loaded.calibration_s > 0
    assert compare.exit_code(compare.compare(loaded, loaded)) == 0
    data = json.loads(out.read_text())
    stats = data["benchmarks"][0]["stats"]
    assert row["time_median_ms"] == pytest.approx(stats["median"] * 1e3)
    median = stats["median"]
    stats["iqr"] = 0.05 * median
    stats["data"] = [median * (0.95 + 0.01 * i) for i in range(11)]  # the U test decides
    out.write_text(json.dumps(data))
    stats["median"] *= 1.3
    stats["data"] = [value * 1.3 for value in stats["data"]]
    slowed = tmp_path / "slowed.json"
    slowed.write_text(json.dumps(data))
    assert run_cli(["compare", str(out), str(slowed)]) == 1


def test_pytest_benchmark_files_with_or_without_archbench_identity(tmp_path):
    """extra_info from before the seed and threads were kept: seed 0, the machine's threads;
    a benchmark of somebody else's: its full name, as is."""
    identity = {k: v for k, v in result_row("resnet20", "resnet").items() if k in KEYS}
    del identity["seed"], identity["threads"]
    stats = {"median": 0.002, "iqr": 0.0001}
    data = {
        "machine_info": {"torch_threads": 2, "archbench_calibration_s": 0.01},
        "benchmarks": [
            {"fullname": "perf::resnet20", "stats": stats, "extra_info": identity},
            {"fullname": "test_mine.py::test_sort", "stats": stats},
        ],
    }
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    rows = compare.load_side(path).rows
    assert list(rows["arch"]) == ["resnet20", "test_mine.py::test_sort"]
    assert list(rows["threads"]) == [2, 2] and list(rows["seed"]) == [0, 0]
    data["benchmarks"][0]["extra_info"]["batch_size"] = "large"
    path.write_text(json.dumps(data))
    with pytest.raises(compare.UserError, match="perf::resnet20: a row's identity is malformed"):
        compare.load_side(path)


def test_the_gate_trials_slowed_resnet20_does_a_third_more_work():
    create = gate_trial.slowed_create(architectures.create)
    image = (torch.randn(1, 3, 32, 32),)
    normal, slowed = (
        count_macs(make("resnet20"), image) for make in (architectures.create, create)
    )
    assert slowed / normal == pytest.approx(4 / 3, rel=0.02)
    assert count_macs(create("plain20"), image) == count_macs(
        architectures.create("plain20"), image
    )


def test_counts_print_as_exact_integers_and_times_without_exponents():
    comparisons = [
        compare.Comparison("resnet20", "params", 269_400, 269_412, 269_412 / 269_400,
                           compare.Verdict.CHANGED),
        compare.Comparison("wrn28_10", "time_median_ms", 123_456.7, 130_000.2, 1.053,
                           compare.Verdict.OK),
        compare.Comparison("tiny", "time_median_ms", 0.012345, 0.0125, 1.0126, compare.Verdict.OK),
    ]  # fmt: skip
    text = compare.render(comparisons, "table", everything=True)
    assert "269,400" in text and "269,412" in text and "1.00004" in text
    assert "123,457" in text and "130,000" in text and "e+" not in text
    assert "0.01234" in text or "0.01235" in text


def in_rounds(round_medians: list[float], calls: int = 20, spread: float = 0.01) -> dict:
    """A row timed in rounds (run --rounds): each round's calls tight around its median."""
    rng = np.random.default_rng(len(round_medians))
    samples = [s for m in round_medians for s in rng.normal(m, spread, calls).tolist()]
    return result_row(
        "resnet20", "resnet", time_median_ms=float(np.median(samples)), time_iqr_ms=spread,
        **{SAMPLES_COLUMN: samples, ROUNDS_COLUMN: round_medians},
    )  # fmt: skip


def test_timed_in_rounds_the_round_is_the_unit_of_the_test():
    drifting = in_rounds([8.0, 10.0, 12.0, 9.0, 11.0])
    slower = in_rounds([9.2, 11.5, 13.0, 10.4, 12.6])  # 15% slower, within the rounds' drift
    (item,) = [
        c for c in compare.compare(side([drifting]), side([slower])) if c.metric == "time_median_ms"
    ]
    assert item.verdict == "ok" and "over 5 and 5 rounds" in item.note
    calls = compare.mann_whitney_p(drifting[SAMPLES_COLUMN], slower[SAMPLES_COLUMN])
    assert calls < 1e-6  # the calls of one process would have called it significant
    clearly = in_rounds([13.0, 14.0, 13.5, 14.5, 13.2])
    assert (
        verdict(compare.compare(side([drifting]), side([clearly])), "time_median_ms") == "regressed"
    )


def test_too_few_rounds_is_said_not_guessed():
    base, current = in_rounds([10.0, 10.1, 9.9]), in_rounds([13.0, 13.1, 12.9])
    comparisons = compare.compare(side([base]), side([current]))
    (item,) = [c for c in comparisons if c.metric == "time_median_ms"]
    assert item.verdict == "too few rounds to test" and "3 and 3 rounds" in item.note
    assert compare.exit_code(comparisons) == 0
    same = in_rounds([10.0, 10.1, 9.9])
    assert verdict(compare.compare(side([base]), side([same])), "time_median_ms") == "ok"


def test_the_test_is_scipys_mann_whitney():
    rng = np.random.default_rng(3)
    a, b = rng.normal(10, 1, 40), rng.normal(10.5, 1, 40)
    expected = stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic")
    assert compare.mann_whitney_p(a, b) == pytest.approx(expected.pvalue)
    assert compare.mann_whitney_p([1, 2, 3, 4], [5, 6, 7, 8]) == pytest.approx(2 / 70)  # exact


def test_rounds_on_one_side_only_fall_back_to_the_calls():
    """An older baseline has no round medians: the gate keeps its call-level test."""
    base = timing(10.0, 0.3)
    base.pop(ROUNDS_COLUMN, None)
    slower = in_rounds([13.0, 13.1, 12.9])
    (item,) = [
        c for c in compare.compare(side([base]), side([slower])) if c.metric == "time_median_ms"
    ]
    assert item.verdict == "regressed" and "calls of one process" in item.note
