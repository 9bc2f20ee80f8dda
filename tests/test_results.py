"""The results schema and a run's files: typed rows, round trips, validation, labels,
environment."""

from __future__ import annotations

import json
import subprocess

import pandas as pd
import pytest
import torch

from benchmarks import results, schema
from benchmarks.measure.device import Backend
from benchmarks.schema import SAMPLES_COLUMN, Config, Identity, Mode, Row, SchemaError, Status

from helpers import result_row


def make_row(**changes) -> dict:
    row = {
        "schema_version": schema.SCHEMA_VERSION,
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
        SAMPLES_COLUMN: [2.4, 2.5, 2.6],
    }
    return {**row, **changes}


def write(path, *rows: dict) -> None:
    log = results.JsonLines(path / results.ROWS_FILE)
    for row in rows:
        log.append(row)


def test_jsonl_and_csv_round_trip(tmp_path):
    write(tmp_path, make_row(), make_row(batch_size=64, time_median_ms=40.0))
    table = results.write_results_csv(tmp_path)
    from_jsonl = results.load(tmp_path / results.ROWS_FILE)
    from_csv = results.load(tmp_path / results.RESULTS_FILE)
    names = schema.column_names()
    assert list(from_jsonl.columns[: len(names)]) == list(names)
    pd.testing.assert_frame_equal(from_jsonl, table)
    assert list(from_csv["batch_size"]) == [1, 64]
    assert list(from_csv["time_median_ms"]) == [2.5, 40.0]
    assert from_csv["params"].iloc[0] == 269722


def test_raw_samples_load_on_request_from_either_file(tmp_path):
    write(tmp_path, make_row(), make_row(batch_size=64, **{SAMPLES_COLUMN: [40.0, 41.0]}))
    results.write_results_csv(tmp_path)
    assert SAMPLES_COLUMN not in results.load(tmp_path)
    for path in (tmp_path, tmp_path / results.RESULTS_FILE):
        samples = results.load(path, samples=True)[SAMPLES_COLUMN]
        assert list(samples) == [[2.4, 2.5, 2.6], [40.0, 41.0]]


def test_latest_row_of_a_job_wins(tmp_path):
    write(tmp_path, make_row(status="failed"), make_row(status="ok"))
    assert list(results.load(tmp_path)["status"]) == ["ok"]


def test_a_line_cut_short_by_a_crash_is_skipped(tmp_path):
    path = tmp_path / results.ROWS_FILE
    path.write_text(json.dumps(make_row()) + "\n" + '{"schema_version": 1, "arch": "res')
    assert len(results.load(path)) == 1


def test_other_schema_version_is_refused(tmp_path):
    write(tmp_path, make_row(schema_version=99))
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
    names = schema.column_names()
    assert len(set(names)) == len(names)
    assert all(column.meaning for column in schema.columns())
    assert set(schema.key_fields()) <= set(names)
    assert {"threads", *Backend.names()} <= set(schema.key_fields())  # compare matches on them
    assert {"test_acc_rel", "floor_rel"} <= set(names)  # declared by the question-answering task


def test_a_row_round_trips_through_its_record():
    record = {**result_row("resnet20", "resnet", config='{"depth": 56}'), "message": "x"}
    record = {key: value for key, value in record.items() if value is not None}
    row = Row.from_record(record)
    assert row.identity.config == Config({"depth": 56}) and row.identity.mode is Mode.INFER
    assert row.status is Status.OK and row.times.time_median_ms == 2.0
    assert row.record() == record


def test_a_column_the_schema_does_not_declare_cannot_be_written(tmp_path):
    row = Row.from_record(result_row("resnet20", "resnet"))
    with pytest.raises(SchemaError, match=r"undeclared columns \['top5_acc'\]"):
        row.but(metrics={"top5_acc": 0.99}).record()
    with pytest.raises(SchemaError, match=r"unknown columns \['latency_ms'\]"):
        Row.from_record({**result_row("resnet20", "resnet"), "latency_ms": 2.0})


def test_a_task_cannot_redeclare_a_column_with_another_meaning(scratch_tasks):
    with pytest.raises(SchemaError, match="already declared"):
        schema.declare(schema.Column("test_acc", "%", "something else"))


def test_identity_key_and_label():
    identity = Identity.from_record(
        result_row("densenet40_k12", "densenet", config='{"depth": 22}')
    )
    assert identity.label() == "densenet40_k12 (depth=22)"
    details = ("mode", "batch_size", "dataset", "dtype", "threads")
    assert (
        identity.label(details)
        == "densenet40_k12 (depth=22) infer b=1 on mnist5k [fp32, 2 threads]"
    )
    assert identity.key() == tuple(identity.record()[name] for name in schema.key_fields())
    assert len(identity.key(without=("seed",))) == len(identity.key()) - 1
    with pytest.raises(ValueError, match="not identity columns"):
        identity.key(without=("colour",))


def test_labels_name_only_the_conditions_that_differ():
    rows = [
        result_row("resnet20", "resnet", dtype="bf16", compile=True),
        result_row("resnet20", "resnet", dtype="fp32", threads=1),
    ]
    assert results.labels(results.to_frame(rows)) == [
        "resnet20 [bf16, compile, 2 threads]", "resnet20 [fp32, 1 threads]"
    ]  # fmt: skip


def test_rows_written_before_the_backend_settings_read_back_with_them_off(tmp_path):
    old = {key: value for key, value in result_row("resnet20", "resnet").items()}
    for key in Backend.names():
        del old[key]
    (tmp_path / results.ROWS_FILE).write_text(json.dumps(old) + "\n")
    loaded = results.load(tmp_path)
    assert results.keys(loaded) == results.keys(
        results.to_frame([result_row("resnet20", "resnet")])
    )
    assert not loaded[list(Backend.names())].any(axis=None)


def test_environment_records_what_numbers_depend_on():
    env = results.environment(torch.device("cpu"), threads=2)
    assert env["torch"] == torch.__version__ and env["threads"] == 2
    assert env["device"] == "cpu" and env["cpu"]
    json.dumps(env, default=str)


def test_environment_records_the_cpus_instruction_set_extensions():
    """Runs of this project were made on two machines that both call themselves "AMD
    EPYC": one with AVX-512 and its BF16 instructions, one with AVX2 only, where bf16
    autocast ran many times slower than fp32. The environment tells them apart."""
    env = results.environment(torch.device("cpu"), threads=2)
    assert env["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert isinstance(env["cpu_features"], list)
    core = "flags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16 ht\n"
    x86 = f"processor\t: 0\n{core}\nprocessor\t: 1\n{core}"
    assert results.cpu_features(x86) == ["avx2", "fma", "avx512f", "avx512_bf16"]
    assert results.cpu_features("Features\t: fp asimd sve bf16 crc32\n") == ["asimd", "sve", "bf16"]
    assert results.cpu_features("model name\t: a CPU without flags\n") == []


def test_the_commit_is_dirty_for_changed_code_not_for_results(tmp_path, monkeypatch):
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "results").mkdir()
    for name in ("code.py", "results/rows.jsonl"):
        (tmp_path / name).write_text("1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "x")
    monkeypatch.chdir(tmp_path / "results")
    (tmp_path / "results" / "rows.jsonl").write_text("2\n")  # a run rewriting its results
    assert not results.git_commit().endswith("+dirty")
    (tmp_path / "code.py").write_text("2\n")
    assert results.git_commit().endswith("+dirty")
