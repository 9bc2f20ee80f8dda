"""Noise floors: how much one seed's test accuracy varies, per data set and recipe.

A finding comparing one-seed rows needs to know how far apart two seeds of
the same net land. The floor is measured, not assumed: one reference net
trained with 5 seeds under the recipe, the standard deviation over the seeds of
its test accuracy (and of its task's metrics, such as relational accuracy).
The floors ship in ``noise_floors.json`` beside this module,
written from committed multi-seed runs::

    archbench run --suite noise --out results/noise-floor-quick
    python -m benchmarks.noise results/noise-floor-*

(``results/README.md`` has the commands of the shipped floors.)

A recipe is the training columns that decide what a seed can reach (see
``recipe``); a floor applies to rows of its data set and recipe only. Writing
keeps the shipped floors of recipes the runs given do not measure again.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.results import load, read_env, trained_rows
from benchmarks.tasks import all_tasks

log = logging.getLogger(__name__)
FLOORS = Path(__file__).with_name("noise_floors.json")
MIN_SEEDS = 5


@dataclass(frozen=True)
class Floor:
    dataset: str
    recipe: str
    sd: dict[str, float]  # over the seeds, of test_acc and of the task's metrics (fractions)
    reference: str  # the net trained
    accuracies: tuple[float, ...]  # its test accuracy, seed by seed
    source: str  # the run directory it was measured in
    commit: str


def recipe(row: Mapping[str, Any]) -> str:
    """What decides how far a seed gets, from a training row: 'sgd lr=0.1 wd=0.0005
    onecycle warmup=0.2 ls=0 epochs=2 batch=64 train=3600 val=400', and the curriculum
    epochs where there are any."""

    def number(name: str) -> str:
        value = row.get(name)
        return "?" if value is None or pd.isna(value) else f"{float(value):g}"

    text = (
        f"{row.get('optimizer')} lr={number('lr')} wd={number('weight_decay')} "
        f"{row.get('schedule')} warmup={number('warmup')} ls={number('label_smoothing')} "
        f"epochs={number('epochs')} batch={number('batch_size')} "
        f"train={number('train_size')} val={number('val_size')}"
    )
    curriculum = row.get("curriculum_epochs")
    if curriculum is not None and not pd.isna(curriculum) and curriculum > 0:
        text += f" curriculum={number('curriculum_epochs')}"
    return text


def read(path: Path) -> tuple[Floor, ...]:
    """The floors written at ``path`` (none if there is no file)."""
    if not path.exists():
        return ()
    return tuple(
        Floor(**{**item, "accuracies": tuple(item["accuracies"])})
        for item in json.loads(path.read_text())["floors"]
    )


@functools.cache
def floors() -> tuple[Floor, ...]:
    """The shipped floors."""
    return read(FLOORS)


def floor_for(row: Mapping[str, Any]) -> Floor | None:
    """The floor of a training row's data set and recipe, if one was measured."""
    key = (row.get("dataset"), recipe(row))
    return next((f for f in floors() if (f.dataset, f.recipe) == key), None)


def measure(run_dir: Path) -> list[Floor]:
    """The floors a multi-seed run measures: one per net, data set and recipe with at
    least MIN_SEEDS seeds."""
    rows = trained_rows(load(run_dir))
    commit = str(read_env(run_dir / "env.json").get("git_commit"))
    scored = [metric.column for task in all_tasks() for metric in task.metrics]
    metrics = ["test_acc", *(name for name in scored if name in rows)]
    found = []
    keys = [recipe(row) for _, row in rows.iterrows()]
    for (arch, dataset, key), group in rows.groupby(
        [rows["arch"], rows["dataset"], pd.Series(keys, index=rows.index)], sort=False
    ):
        group = group.sort_values("seed")
        if len(group) < MIN_SEEDS:
            continue
        spreads = {m: statistics.stdev(group[m]) for m in metrics if group[m].notna().all()}
        found.append(
            Floor(
                dataset=str(dataset),
                recipe=str(key),
                sd=spreads,
                reference=str(arch),
                accuracies=tuple(float(acc) for acc in group["test_acc"]),
                source=str(run_dir),
                commit=commit,
            )
        )
    return found


def floors_markdown() -> str:
    """The shipped floors as a Markdown table, for the README."""
    table = pd.DataFrame(
        [
            {
                "data set": floor.dataset,
                "recipe": floor.recipe,
                "reference": f"{floor.reference}, {len(floor.accuracies)} seeds",
                "sd of test accuracy (points)": f"{100 * floor.sd['test_acc']:.2f}",
                "other metrics (points)": ", ".join(
                    f"{name} {100 * sd:.2f}" for name, sd in floor.sd.items() if name != "test_acc"
                ),
                "measured in": f"`{floor.source}` at {floor.commit[:7]}",
            }
            for floor in floors()
        ]
    )
    return table.to_markdown(index=False) if len(table) else "(none measured)"


def write(found: Sequence[Floor], path: Path = FLOORS) -> None:
    """Write the floors, one per data set and recipe: those found replace the ones at
    ``path`` of the same key (the later one wins), the others there are kept."""
    unique = {(floor.dataset, floor.recipe): floor for floor in (*read(path), *found)}
    document = {
        "about": "noise floors: sd of test accuracy over seeds (python -m benchmarks.noise)",
        "floors": [asdict(floor) for floor in unique.values()],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("runs", nargs="+", type=Path, help="multi-seed run directories")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    found = [floor for run in args.runs for floor in measure(run)]
    for floor in found:
        log.info("%s, %s: sd of test accuracy %.2f points (%s, %d seeds)", floor.dataset,
                 floor.recipe, 100 * floor.sd["test_acc"], floor.reference,
                 len(floor.accuracies))  # fmt: skip
    write(found)
    log.info("written to %s", FLOORS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
