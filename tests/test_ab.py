"""archbench ab: two commits of a fixture repository timed in alternating rounds."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from benchmarks import results
from benchmarks.schema import ROUNDS_COLUMN, SAMPLES_COLUMN

from helpers import REPO, run_cli

SUITE = """
architectures = ["resnet20_dw"]
batch_sizes = [2]
train_batch_size = 0
[timing]
warmup = 1
min_samples = 5
max_samples = 20
min_time_s = 0.05
"""
ELEVEN_CLASSES = """
import dataclasses as _dataclasses
from architectures import _registry as _r
_spec = _r._REGISTRY["resnet20_dw"]
_r._REGISTRY["resnet20_dw"] = _dataclasses.replace(
    _spec, defaults={**_spec.defaults, "num_classes": 11}
)
"""


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def fixture_repo(tmp_path, monkeypatch) -> Path:
    """This project's committed code (commit A), and a commit B whose resnet20_dw has an
    eleventh class (a count that must show) and whose forward passes sleep 3 ms."""
    root = tmp_path / "repo"
    root.mkdir()
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=REPO, capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(root, filter="data")
    git("init", "-q", cwd=root)
    git("-c", "user.name=t", "-c", "user.email=t@t", "add", "-A", cwd=root)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "A", cwd=root)
    latency = root / "benchmarks" / "measure" / "latency.py"
    latency.write_text(
        latency.read_text().replace(
            "            return model(*inputs)",
            "            time.sleep(0.003)\n            return model(*inputs)",
        )
    )
    init = root / "architectures" / "__init__.py"
    init.write_text(init.read_text() + ELEVEN_CLASSES)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "B", cwd=root)
    monkeypatch.chdir(root)
    return root


@pytest.mark.slow
def test_ab_times_two_commits_in_alternating_rounds(fixture_repo, tmp_path, capsys):
    suite = tmp_path / "tiny.toml"
    suite.write_text(SUITE)
    out = tmp_path / "ab"
    argv = ["ab", "HEAD~1", "HEAD", "--suite", str(suite), "--out", str(out), "--all"]
    assert run_cli([*argv, "--format", "json"]) == 1  # B's count changed
    verdicts = json.loads(capsys.readouterr().out.split("\n\n", 1)[1])["comparisons"]
    by_metric = {item["metric"]: item for item in verdicts}
    assert by_metric["params"]["verdict"] == "changed"  # B's code ran on side B
    assert "over 4 and 4 rounds" in by_metric["time_median_ms"]["note"]
    for side in ("A", "B"):
        (row,) = results.read_rows(out / side / results.ROWS_FILE)
        assert len(row[ROUNDS_COLUMN]) == 4 and row["time_rounds"] == 4
        per_round = [len(r[SAMPLES_COLUMN]) for r in rounds_of(out, side)]
        assert len(row[SAMPLES_COLUMN]) == sum(per_round)
    started = sorted(
        (path.stat().st_mtime, path.parent.name) for path in (out / "rounds").glob("*/env.json")
    )
    assert [name for _, name in started] == ["A1", "B1", "B2", "A2", "A3", "B3", "B4", "A4"]
    assert git("worktree", "list", cwd=fixture_repo).count("\n") == 0  # removed again


def rounds_of(out: Path, side: str) -> list[dict]:
    return [
        results.read_rows(folder / results.ROWS_FILE)[0]
        for folder in sorted((out / "rounds").glob(f"{side}*"))
    ]


def test_ab_of_an_unknown_commit_is_one_line(fixture_repo, tmp_path, capsys):
    assert run_cli(["ab", "nosuchref", "--out", str(tmp_path / "ab")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("archbench: error: git worktree add") and len(error.splitlines()) == 1
