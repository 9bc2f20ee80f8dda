"""The results schema: round trips, validation, environment."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from benchmarks import results


def make_row(**changes) -> dict:
    row = {
        "schema_version": results.SCHEMA_VERSION,
        "suite": "quick",
        "arch": "resnet20",
        "family": "resnet",
        "config": "{}",
        "dataset": "mnist5k",
        "device": "cpu",
        "dtype": "fp32",
        "mode": "infer",
        "batch_size": 1,
        "input_shape": "3x32x32",
        "seed": 0,
        "threads": 2,
        "status": "ok",
        "message": "",
        "params": 269722,
        "time_median_ms": 2.5,
        results.SAMPLES_COLUMN: [2.4, 2.5, 2.6],
    }
    return {**row, **changes}


def test_jsonl_and_csv_round_trip(tmp_path):
    log = results.RowLog(tmp_path / results.ROWS_FILE)
    log.append(make_row())
    log.append(make_row(batch_size=64, time_median_ms=40.0))
    table = results.write_results_csv(tmp_path)
    from_jsonl = results.load(tmp_path / results.ROWS_FILE)
    from_csv = results.load(tmp_path / results.RESULTS_FILE)
    assert list(from_jsonl.columns[: len(results.COLUMN_NAMES)]) == list(results.COLUMN_NAMES)
    pd.testing.assert_frame_equal(from_jsonl, table)
    assert list(from_csv["batch_size"]) == [1, 64]
    assert list(from_csv["time_median_ms"]) == [2.5, 40.0]
    assert from_csv["params"].iloc[0] == 269722


def test_raw_samples_load_on_request_from_either_file(tmp_path):
    log = results.RowLog(tmp_path / results.ROWS_FILE)
    log.append(make_row())
    log.append(make_row(batch_size=64, **{results.SAMPLES_COLUMN: [40.0, 41.0]}))
    results.write_results_csv(tmp_path)
    assert results.SAMPLES_COLUMN not in results.load(tmp_path)
    for path in (tmp_path, tmp_path / results.RESULTS_FILE):
        samples = results.load(path, samples=True)[results.SAMPLES_COLUMN]
        assert list(samples) == [[2.4, 2.5, 2.6], [40.0, 41.0]]


def test_latest_row_of_a_job_wins(tmp_path):
    log = results.RowLog(tmp_path / results.ROWS_FILE)
    log.append(make_row(status="failed"))
    log.append(make_row(status="ok"))
    assert list(results.load(tmp_path)["status"]) == ["ok"]


def test_a_line_cut_short_by_a_crash_is_skipped(tmp_path):
    path = tmp_path / results.ROWS_FILE
    path.write_text(json.dumps(make_row()) + "\n" + '{"schema_version": 1, "arch": "res')
    assert len(results.load(path)) == 1


def test_other_schema_version_is_refused(tmp_path):
    results.RowLog(tmp_path / results.ROWS_FILE).append(make_row(schema_version=99))
    with pytest.raises(results.UserError, match="schema version"):
        results.load(tmp_path)


def test_missing_or_foreign_files_are_user_errors(tmp_path):
    with pytest.raises(results.UserError, match="no results"):
        results.load(tmp_path / "nothing")
    foreign = tmp_path / "other.csv"
    foreign.write_text("a,b\n1,2\n")
    with pytest.raises(results.UserError, match="not an archbench results file"):
        results.load(foreign)


def test_summary_gives_accuracy_mean_and_std_over_seeds():
    rows = [
        make_row(mode="train", seed=seed, test_acc=acc) for seed, acc in enumerate([0.9, 0.8, 0.7])
    ]
    rows.append(make_row(mode="infer"))
    summary = results.summarize(results.to_frame(rows))
    train = summary[summary["mode"] == "train"].iloc[0]
    assert train["seeds"] == 3
    assert train["test_acc_mean"] == pytest.approx(0.8)
    assert train["test_acc_std"] == pytest.approx(0.1)
    assert len(summary) == 2


def test_every_schema_column_has_unit_and_meaning_documented():
    assert len(set(results.COLUMN_NAMES)) == len(results.COLUMN_NAMES)
    assert all(column.meaning for column in results.COLUMNS)
    assert set(results.KEY_COLUMNS) <= set(results.COLUMN_NAMES)


def test_environment_records_what_numbers_depend_on():
    env = results.environment(torch.device("cpu"), threads=2)
    assert env["torch"] == torch.__version__ and env["threads"] == 2
    assert env["device"] == "cpu" and env["cpu"]
    json.dumps(env, default=str)
