"""The Task seam: a third task, written here without an edit to the package (tiny data,
a tiny model), runs through `archbench run`, its figures and the report."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn

import architectures
from architectures import Family, InputKind
from benchmarks import plots, results, tasks
from benchmarks.cli import main
from benchmarks.errors import UserError
from benchmarks.tasks import Metric, Task
from benchmarks.train import Split, fit, full_batches, shuffled_batches

WORDS, LENGTH, KEY_WORD = 16, 12, 3  # a sentence is positive when it holds the key word
TOKENS = InputKind(
    "tokens",
    ("vocab_size",),
    lambda spec, batch, shape, config, device: (
        torch.randint(config["vocab_size"], (batch, *shape), device=device),
    ),
)


class BagOfWords(nn.Module):
    def __init__(self, *, vocab_size: int = WORDS, num_classes: int = 2) -> None:
        super().__init__()
        self.embed = nn.EmbeddingBag(vocab_size, 8)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embed(tokens))


@dataclass(frozen=True)
class Sentences:
    name: str
    tokens: torch.Tensor
    labels: torch.Tensor
    shape: tuple[int, ...] = (LENGTH,)

    def model_config(self) -> dict[str, int]:
        return {"vocab_size": WORDS, "num_classes": 2}


def load(name: str, **where: Any) -> Sentences:
    tokens = torch.randint(WORDS, (400, LENGTH), generator=torch.Generator().manual_seed(0))
    return Sentences(name, tokens, (tokens == KEY_WORD).any(1).long())


def training_batch(model, inputs, num_classes, device, *, compile):
    return lambda: model(*inputs), torch.randint(num_classes, (len(inputs[0]),), device=device)


def train(model, data, config, *, batch_size, device, dtype, seed, backend, on_epoch):
    """Sentences 0-259 train, 260-299 validate, 300-399 test."""
    tokens, labels, generator = data.tokens, data.labels, torch.Generator().manual_seed(seed)
    positive = labels[300:] == 1

    def batches():
        for index in shuffled_batches(260, batch_size, generator, device):
            yield functools.partial(lambda i: (model(tokens[i]), labels[i]), index)

    def hits(part: slice) -> torch.Tensor:
        with torch.no_grad():
            return model.eval()(tokens[part]).argmax(1) == labels[part]

    def evaluate() -> dict[str, float]:
        test = hits(slice(300, None))
        recall = test[positive].float().mean().item()
        floor = float(positive.float().mean() > 0.5)  # the majority answer's recall
        val_acc = hits(slice(260, 300)).float().mean().item()
        return {"val_acc": val_acc, "test_acc": test.float().mean().item(), "recall": recall,
                "floor_recall": floor}  # fmt: skip

    return fit(model, config, batches=batches, steps_per_epoch=full_batches(260, batch_size),
               evaluate_epoch=evaluate, device=device, dtype=dtype, on_epoch=on_epoch,
               split=Split(260, 40, 0))  # fmt: skip


TEXT = Task(
    name="text classification", input_kind=TOKENS, datasets="sentences",
    provides=lambda name: name == "sentences", load=load, training_batch=training_batch,
    train=train, metrics=(Metric("positives", "recall", "floor_recall", "recall of positives"),),
    figure="text_metrics",
)  # fmt: skip
SUITE = """
architectures = ["bag_of_words"]
dataset = "sentences"
batch_sizes = [1, 8]
train_batch_size = 25
[training]
epochs = 3
lr = 0.5
[timing]
warmup = 1
min_samples = 3
max_samples = 5
min_time_s = 0
"""


@pytest.fixture
def text_task(scratch_registry, scratch_tasks):
    tasks.register(TEXT)
    architectures.register(
        "bag_of_words", family=Family.OTHER, paper="none", input_kind=TOKENS, input_shape=(LENGTH,)
    )(BagOfWords)


def test_a_third_task_runs_through_the_cli_figures_and_report(text_task, tmp_path, capsys):
    suite, out = tmp_path / "text.toml", tmp_path / "run"
    suite.write_text(SUITE)
    assert main(["run", "--suite", str(suite), "--out", str(out), "--threads", "1"]) == 0
    table = results.load(out)
    trained = table[table["mode"] == "train"].iloc[0]
    assert trained["input_shape"] == str(LENGTH) and trained["status"] == "ok"
    assert trained["test_acc"] > 0.6 and 0 <= trained["recall"] <= 1  # chance: about 0.5
    assert list(table.columns).index("recall") < list(table.columns).index("started_at")
    printed = capsys.readouterr().out
    assert "positives (floors) %" in printed and "text_metrics" in printed
    for figure in ("latency", "training_curves", "text_metrics"):
        assert (out / plots.FIGURES_DIR / f"{figure}.png").stat().st_size > 1000
    report = (out / "report.md").read_text()
    assert "positives (%)" in report and "positives floor (%)" in report


def test_tasks_refuse_a_second_task_for_an_input_kind_and_name_every_data_set(scratch_tasks):
    with pytest.raises(ValueError, match="already has a task: image classification"):
        tasks.register(Task(**{**vars(TEXT), "input_kind": InputKind.IMAGE}))
    with pytest.raises(UserError, match=r"choose from mnist5k.*sort_of_clevr"):
        tasks.for_dataset("nonesuch")
