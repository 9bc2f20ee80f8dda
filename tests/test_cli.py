"""`archbench` as a user meets it: list, --version, --help, bad input, and the README's table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import architectures
from benchmarks import catalog
from benchmarks.cli import main


def test_list_prints_every_architecture_with_family_input_and_params(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in architectures.list_architectures():
        assert name in out
    assert "269,722" in out  # resnet20
    assert "image 3x32x32" in out and "separable" in out


def test_list_with_a_wildcard_shows_only_matches(capsys):
    assert main(["list", "resnext*", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "name,family,input,params,paper"
    assert [line.split(",")[0] for line in lines[1:]] == architectures.list_architectures(
        "resnext*"
    )


def test_list_without_match_is_one_line_and_exit_2(capsys):
    assert main(["list", "nosuchnet*"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no architecture matches 'nosuchnet*'" in err


def test_console_script_version_and_help():
    version = subprocess.run(
        [sys.executable, "-m", "benchmarks.cli", "--version"], capture_output=True, text=True
    )
    assert version.returncode == 0 and version.stdout.startswith("archbench ")
    help_text = subprocess.run(
        [sys.executable, "-m", "benchmarks.cli", "--help"], capture_output=True, text=True
    )
    assert help_text.returncode == 0 and "list" in help_text.stdout


def test_unknown_command_exits_2():
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2


def test_readme_table_is_generated_from_the_registry():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    _, _, rest = readme.partition(catalog.TABLE_START)
    committed, _, _ = rest.partition(catalog.TABLE_END)
    assert committed.strip() == catalog.readme_table().strip(), (
        "README's architecture table is stale: run `python -m benchmarks.catalog`"
    )
