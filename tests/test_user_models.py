"""Your own models: a .py file's factory, an importable module's, an installed
plug-in's registrations; each measured through `archbench run` as the zoo is."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

import architectures
from architectures import user

from helpers import run_cli

MODEL = """\
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, width: int = 16, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, padding=1)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.head(self.conv(x).relu().mean((2, 3)))


def no_classes():
    return nn.Linear(3, 3)
"""
EFFICIENCY = ["--measure", "flops,time", "--batch-sizes", "2", "--train-batch-size", "0",
              "--no-plots"]  # fmt: skip


def rows_of(out) -> list[dict]:
    return [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]


def tiny_params(width: int, in_channels: int, num_classes: int) -> int:
    return width * in_channels * 9 + width + width * num_classes + num_classes


def test_a_file_factory_runs_like_the_zoo(tmp_path):
    (tmp_path / "mynets.py").write_text(MODEL)
    out = tmp_path / "run"
    name = f"{tmp_path / 'mynets.py'}:TinyNet"
    assert run_cli(["run", "--arch", name, *EFFICIENCY, "--out", str(out)]) == 0
    (row,) = rows_of(out)
    assert row["arch"] == name and row["status"] == "ok" and row["family"] == "other"
    assert row["params"] == tiny_params(16, 1, 10)  # fitted to mnist5k, the suite's data set
    assert row["macs"] > 0 and row["time_median_ms"] > 0


@pytest.fixture
def installed(tmp_path, monkeypatch, scratch_registry):
    """A package `plugnets` on sys.path, installed with an archbench entry point."""
    package = tmp_path / "plugnets"
    package.mkdir()
    (package / "__init__.py").write_text(
        MODEL + textwrap.dedent('''
            import architectures

            architectures.register("plugnet", family="other", paper="a plug-in", width=8)(TinyNet)
        ''')
    )  # fmt: skip
    info = tmp_path / "plugnets-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plugnets\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[archbench.architectures]\nplugnets = plugnets\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("plugnets", None)


def test_an_installed_plugin_registers_its_nets(installed, tmp_path):
    user.load_plugins()
    assert architectures.spec("plugnet").paper == "a plug-in"
    out = tmp_path / "run"
    assert run_cli(["run", "--arch", "plugnet", "plugnets:TinyNet", *EFFICIENCY,
                    "--out", str(out)]) == 0  # fmt: skip
    params = {row["arch"]: row["params"] for row in rows_of(out)}
    assert params == {"plugnet": tiny_params(8, 1, 10), "plugnets:TinyNet": tiny_params(16, 1, 10)}


def test_a_broken_plugin_is_a_warning(installed, tmp_path, caplog):
    (tmp_path / "plugnets" / "__init__.py").write_text("raise RuntimeError('oops')\n")
    user.load_plugins()
    assert "plug-in plugnets (plugnets) failed: oops" in caplog.text
    assert "resnet20" in architectures.list_architectures()


@pytest.mark.parametrize(
    ("name", "said"),
    [("missing.py:Net", "no model file missing.py"),
     ("no_such_module_x:Net", "cannot import 'no_such_module_x'"),
     ("{file}:Nothing", "has no model factory 'Nothing'"),
     ("{file}:no_classes", "must take keyword arguments ['num_classes', 'in_channels']")],
)  # fmt: skip
def test_a_bad_user_model_is_one_line(tmp_path, capsys, name, said):
    (tmp_path / "mynets.py").write_text(MODEL)
    name = name.format(file=tmp_path / "mynets.py")
    assert run_cli(["run", "--arch", name, *EFFICIENCY, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and said in err
