"""The Python API: the README's example as it stands, and the model's own memory."""

from __future__ import annotations

import re

import torch
from torch import nn

from benchmarks import api

from helpers import README


def test_the_readmes_example_runs(tmp_path, monkeypatch, capsys):
    text = README.read_text()
    code = re.search(r"<!-- api-example -->\n```python\n(.*?)```", text, re.DOTALL).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out
    assert "parameters" in printed and "resnet20" in printed
    assert (tmp_path / "runs" / "mine" / "rows.jsonl").exists()


def test_measure_gives_a_rows_columns_and_the_models_memory():
    model = nn.Sequential(nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))
    row = api.measure(model, (torch.randn(16, 1024),), name="mlp", threads=1)
    assert (row["arch"], row["batch_size"], row["input_shape"]) == ("mlp", 16, "1024")
    assert row["params"] == 1024 * 1024 + 1024 + 1024 * 10 + 10
    assert row["macs"] == 1024 * 1024 + 1024 * 10
    assert row["time_median_ms"] > 0 and row["status"] == "ok"
    weights_mb = row["params"] * 4 / 2**20
    if row.get("peak_mem_mb") is not None:  # where the peak resident set can be reset
        assert weights_mb * 0.9 <= row["peak_mem_mb"] < weights_mb + 50
