"""Comparison figures of a run, drawn with seaborn into ``RUN_DIR/figures/``.

Each figure is drawn only when the run has the data for it; the others are
reported as skipped, with the reason. Every family keeps one colour across
all figures (``FAMILY_COLOURS``); several members of one family get shades of
it. Captions state the device, dtype, data set and training budget. A task
that reports metrics beside test accuracy (benchmarks/tasks/) gets a figure of
them, named by the task, and a panel of them in the training curves.
"""

from __future__ import annotations

import colorsys
import functools
import inspect
import logging
import math
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from architectures import Family
from benchmarks import tasks
from benchmarks.errors import UserError
from benchmarks.results import (
    Run,
    calibration_peaks,
    depth_series,
    keys,
    labelled,
    trained_rows,
    width_series,
)
from benchmarks.schema import SYNTHETIC, Mode
from benchmarks.tasks import Metric, Task

log = logging.getLogger(__name__)
CALIBRATION_LINES = ((":", "dotted"), ("-.", "dash-dotted"), ("--", "dashed"), ("-", "solid"))
METRIC_LINES = (("-", "solid"), ("--", "dashed"), ("-.", "dash-dotted"))
HUE_SPREAD = 0.08  # a family's members' hues, either way (about 30 degrees)
TITLE_CHARS_PER_INCH = 13  # at the title's 10 points
WIDE_RANGE = 30  # bar panels whose largest value passes the smallest this many times: log x
FIGURES_DIR = "figures"
FORMATS = ("png", "svg")
ZOO = [family for family in Family if family is not Family.OTHER]
FAMILY_COLOURS = {
    **dict(zip(ZOO, sns.color_palette("colorblind", len(ZOO)), strict=True)),
    Family.OTHER: (0.5, 0.5, 0.5),
}
Colour = tuple[float, float, float]


def rgb(values: Sequence[float]) -> Colour:
    red, green, blue = values[:3]
    return float(red), float(green), float(blue)


def family_colour(family: object) -> Colour:
    """The fixed colour of a family (grey outside the zoo)."""
    return rgb(FAMILY_COLOURS[Family.parse(family)])


class Skip(Exception):
    """A figure the run has no data for; the message says what is missing."""


def arch_colours(table: pd.DataFrame) -> dict[str, Colour]:
    """label -> colour: its family's colour, in shades when a family has several members."""
    colours: dict[str, Colour] = {}
    for family, members in labelled(table).groupby("family", sort=False):
        base = family_colour(family)
        names = list(dict.fromkeys(members["label"]))
        shades = [base] if len(names) == 1 else shade_range(base, len(names))
        colours.update(zip(names, shades, strict=True))
    return colours


def shade_range(base: Colour, count: int) -> list[Colour]:
    """``count`` members of one family: its hue turned a little either way and its
    lightness from dark to light, so that any two differ in both (shades of lightness
    alone made four fusion nets near-identical browns)."""
    hue, _, saturation = colorsys.rgb_to_hls(*base)
    spread = min(1.0, (count - 1) / 3)  # two members: a third of the full spread
    turns = np.linspace(-HUE_SPREAD, HUE_SPREAD, count) * spread
    lightness = 0.47 + np.linspace(-0.2, 0.2, count) * min(1.0, (count - 1) / 2)  # none pale
    return [
        rgb(colorsys.hls_to_rgb((hue + turn) % 1, light, min(1.0, 1.15 * saturation)))
        for turn, light in zip(turns, lightness, strict=True)
    ]


def caption(run: Run, rows: pd.DataFrame, budget: bool = False) -> str:
    """Device, dtype, data set (and training budget) of the rows a figure shows."""
    device = run.env.get("device_name") or ", ".join(sorted(set(rows["device"])))
    capability = run.env.get("torch_cpu_capability")  # two CPUs of one name may differ
    if capability and set(rows["device"]) == {"cpu"}:
        device += f" ({capability})"
    parts = [device, "/".join(sorted(set(rows["dtype"])))]
    datasets = sorted(set(rows["dataset"].dropna()) - {SYNTHETIC})
    if datasets:
        parts.append(", ".join(datasets))
    if budget:
        parts.append(budget_text(rows))
    return " · ".join(parts)


def budget_text(rows: pd.DataFrame) -> str:
    """The training budget of each data set the rows trained on, in the caption's order:
    'budget 2 epochs or 25 s', or 'budget: cifar10 5 epochs; sort_of_clevr 16 epochs'."""
    budgets: dict[str, set[tuple[float, float]]] = {}
    for row in rows.itertuples():
        if pd.notna(row.epochs) or pd.notna(row.time_budget_s):
            budget = (row.epochs, row.time_budget_s)
            budgets.setdefault(row.dataset, set()).add(tuple(np.nan_to_num(budget, nan=-1)))
    if not budgets:
        return "budget not recorded"
    texts = {dataset: ", ".join(map(one_budget, sorted(b))) for dataset, b in budgets.items()}
    if len(texts) == 1:
        return f"budget {next(iter(texts.values()))}"
    return "budget: " + "; ".join(f"{dataset} {texts[dataset]}" for dataset in sorted(texts))


def one_budget(budget: tuple[float, float]) -> str:
    """(epochs, seconds), -1 where there is none: '2 epochs or 25 s'."""
    epochs, seconds = budget
    parts = [f"{epochs:g} epoch{'' if epochs == 1 else 's'}"] if epochs >= 0 else []
    parts += [f"{seconds:g} s"] if seconds >= 0 else []
    return " or ".join(parts)


def set_title(figure: Figure, text: str) -> None:
    """The figure's title and caption, each line wrapped to the figure's width (a long
    caption ran off both edges of a one-panel figure)."""
    width = int(figure.get_figwidth() * TITLE_CHARS_PER_INCH)
    lines = [textwrap.fill(line, width) for line in text.split("\n")]
    figure.suptitle("\n".join(lines), fontsize=10)


def new_figure(rows: int, cols: int, width: float = 5.0, height: float = 3.6) -> Figure:
    figure = Figure(figsize=(width * cols, height * rows), layout="constrained")
    figure.subplots(rows, cols, squeeze=False)
    return figure


def axes_grid(figure: Figure) -> np.ndarray:
    """The figure's axes as the grid they were laid out in (rows x columns)."""
    grid = figure.axes[0].get_gridspec()
    assert grid is not None, "new_figure lays the axes out in a grid"
    return np.asarray(figure.axes).reshape(grid.get_geometry())


def family_legend(figure: Figure, families: list[str], *, below: bool = False) -> None:
    """The legend of family colours, right of the panels (or ``below`` them, in a row)."""
    handles = [matplotlib.patches.Patch(color=family_colour(f), label=str(f)) for f in families]
    if below:
        figure.legend(
            handles=handles, loc="outside lower center", ncols=len(handles), frameon=False
        )
    else:
        figure.legend(handles=handles, loc="outside right center", title="family", frameon=False)


Box = tuple[float, float, float, float]  # left, bottom, right, top, in points
LABEL_OFFSETS = ((4, 5), (4, -11), (-4, 5), (-4, -11), (4, 13), (4, -19), (-4, 13), (-4, -19))


def label_points(
    ax: Axes, xs: Sequence[float], ys: Sequence[float], labels: Sequence[str], fontsize: float = 7
) -> None:
    """Name each point, at the first of a few offsets whose box stays inside the axes and
    overlaps neither a label already placed nor another point's marker (else at the
    least bad of them; boxes estimated from the text length, in points); on a white
    ground, so that a line under a label (the Pareto front) does not strike it through.
    Call once the layout is final (``draw_without_rendering``)."""
    xs, ys, points_to_pixels = list(xs), list(ys), ax.figure.dpi / 72
    centres = [
        tuple(ax.transData.transform((x, y)) / points_to_pixels)
        for x, y in zip(xs, ys, strict=True)
    ]
    frame = [side / points_to_pixels for side in ax.get_window_extent().extents]
    markers = [(cx - 5, cy - 5, cx + 5, cy + 5) for cx, cy in centres]
    placed: list[Box] = []
    for index, ((px, py), text) in enumerate(zip(centres, labels, strict=True)):
        obstacles = placed + markers[:index] + markers[index + 1 :]
        size = (0.62 * fontsize * len(text) + 2, fontsize + 2)
        boxes = [label_box((px, py), offset, size) for offset in LABEL_OFFSETS]
        costs = [placement_cost(box, frame, obstacles) for box in boxes]
        best = costs.index(min(costs))  # the first free place, else the least bad
        (dx, dy), candidate = LABEL_OFFSETS[best], boxes[best]
        placed.append(candidate)
        ax.annotate(
            text, (xs[index], ys[index]), textcoords="offset points", xytext=(dx, dy),
            fontsize=fontsize, ha="right" if dx < 0 else "left", zorder=4,
            bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8},
        )  # fmt: skip


def label_box(
    centre: tuple[float, float], offset: tuple[int, int], size: tuple[float, float]
) -> Box:
    """Where a label of ``size`` at ``offset`` from its point's ``centre`` lies."""
    (x, y), (dx, dy), (width, height) = centre, offset, size
    left = x + dx - (width if dx < 0 else 0)
    return (left, y + dy, left + width, y + dy + height)


def placement_cost(box: Box, frame: Sequence[float], obstacles: Sequence[Box]) -> float:
    """How bad a label's place is: its area outside the axes (doubled), and its overlap
    with labels and markers; 0 when free."""
    area = (box[2] - box[0]) * (box[3] - box[1])
    outside = area - overlap_area(box, frame)
    return 2 * outside + sum(overlap_area(box, other) for other in obstacles)


def overlap_area(a: Sequence[float], b: Sequence[float]) -> float:
    """The area two boxes (left, bottom, right, top) share."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, width) * max(0.0, height)


def pareto_front(xs: pd.Series, ys: pd.Series) -> tuple[list, list]:
    """Points no other point beats on both lower x and higher y, in order of x."""
    front_x, front_y, best = [], [], -np.inf
    for x, y in sorted(zip(xs, ys, strict=True), key=lambda p: (p[0], -p[1])):
        if y > best:
            front_x.append(x)
            front_y.append(y)
            best = y
    return front_x, front_y


def log_scale(ax: Axes, which: str) -> None:
    """A log scale on axis ``which`` ('x' or 'y') labelled 200, 500, 1k, 2k rather than
    in powers of ten (300 too when the axis spans under a decade, a few round ticks when
    it spans under 3x)."""
    getattr(ax, f"set_{which}scale")("log")
    axis = getattr(ax, f"{which}axis")
    engineering = matplotlib.ticker.EngFormatter(sep="")

    def number(value: float, position: int | None = None) -> str:  # 0.95, not 950m
        return f"{value:.3g}" if value < 1 else engineering(value)

    def minor(value: float, position: int) -> str:
        low, high = sorted(axis.get_view_interval())
        mantissa = round(value / 10 ** math.floor(math.log10(value)))
        named = (2, 3, 5) if high < 10 * low else (2, 5)  # within a decade: a few more
        return number(value) if mantissa in named else ""

    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(number))
    axis.set_minor_formatter(matplotlib.ticker.FuncFormatter(minor))
    low, high = sorted(axis.get_data_interval())
    if low > 0 and high < 3 * low:  # a narrow span: a few round ticks, not every minor one
        if high < 1.01 * low:  # one point: round ticks around it
            low, high = low / 1.25, high * 1.25
        ticks = matplotlib.ticker.MaxNLocator(3).tick_values(low, high)
        axis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def require(rows: pd.DataFrame, what: str) -> pd.DataFrame:
    if rows.empty:
        raise Skip(f"no {what} in this run")
    return rows


LATENCY_MATCH = ("dataset", "mode", "batch_size", "seed", "cuda_graphs")  # latency needs none


def with_efficiency(run: Run, trained: pd.DataFrame) -> pd.DataFrame:
    """Training rows with their net's batch-1 latency (from the matching inference row:
    same net and conditions, whatever data set it was timed on)."""
    inference = run.inference()
    batch1 = inference[inference["batch_size"] == 1]
    latency = pd.DataFrame(
        {"_net": keys(batch1, without=LATENCY_MATCH), "latency_b1_ms": batch1["time_median_ms"]}
    ).drop_duplicates("_net")
    trained = trained.assign(_net=keys(trained, without=LATENCY_MATCH))
    return trained.merge(latency, on="_net", how="left").drop(columns="_net")


def accuracy_scatter(run: Run, panels: list[tuple[str, str]], title: str) -> Figure:
    """Test accuracy against each (column, axis label) of ``panels`` on a log scale,
    one row of panels per data set, with the Pareto front dashed."""
    trained = labelled(with_efficiency(run, require(run.trained(), "accuracy")))
    datasets = list(dict.fromkeys(trained["dataset"]))
    figure = new_figure(len(datasets), len(panels), width=max(5.0, 7.0 / len(panels)))
    for row_axes, dataset in zip(axes_grid(figure), datasets, strict=True):
        rows = trained[trained["dataset"] == dataset]
        for ax, (column, column_label) in zip(row_axes, panels, strict=True):
            points = rows[rows[column].notna()]
            ax.set_xlabel(column_label)
            if points.empty:
                ax.text(0.5, 0.5, "not measured in this run", ha="center", transform=ax.transAxes)
                continue
            accuracy = 100 * points["test_acc_mean"]
            colours = [family_colour(f) for f in points["family"]]
            ax.errorbar(
                points[column], accuracy, yerr=100 * points["test_acc_std"].fillna(0),
                fmt="none", ecolor="0.6", elinewidth=1,
            )  # fmt: skip
            ax.scatter(points[column], accuracy, c=colours, s=40, zorder=3)
            front = pareto_front(points[column], accuracy)
            ax.step(*front, where="post", color="0.4", linestyle="--", linewidth=1, zorder=2)
            log_scale(ax, "x")
            ax.set_ylabel(f"test accuracy (%), {dataset}")
            ax.margins(x=0.15, y=0.12)
    family_legend(figure, list(dict.fromkeys(trained["family"])))
    set_title(figure, f"{title}\n{caption(run, trained, budget=True)}")
    figure.draw_without_rendering()
    for row_axes, dataset in zip(axes_grid(figure), datasets, strict=True):
        rows = trained[trained["dataset"] == dataset]
        for ax, (column, _) in zip(row_axes, panels, strict=True):
            points = rows[rows[column].notna()]
            label_points(ax, points[column], 100 * points["test_acc_mean"], points["label"])
    return figure


def accuracy_vs_flops(run: Run) -> Figure:
    """Figure 1: accuracy against forward FLOPs, with the Pareto front (dashed)."""
    return accuracy_scatter(
        run,
        [("flops", "forward FLOP per sample (log)")],
        "Accuracy vs FLOPs (dashed: Pareto front)",
    )


def accuracy_vs_cost(run: Run) -> Figure:
    """Figure 2: accuracy against batch-1 latency and against parameters."""
    return accuracy_scatter(
        run,
        [("latency_b1_ms", "latency at batch 1 (ms, log)"), ("params", "parameters (log)")],
        "Accuracy vs latency and parameters (dashed: Pareto front)",
    )


def per_batch_bars(
    run: Run, rows: pd.DataFrame, value: str, title: str, x_label: str, whisker: str | None = None
) -> Figure:
    """Horizontal bars of ``value`` per architecture (median over seeds), grouped by
    family, one panel per (mode, batch size); ``whisker`` draws a line from the bar's
    end to that column."""
    rows = labelled(rows[rows[value].notna()])
    settings = list(dict.fromkeys(zip(rows["mode"], rows["batch_size"], strict=True)))
    labels = list(dict.fromkeys(rows["label"]))
    columns = 2 if len(settings) == 4 else min(len(settings), 3)  # a report column wide
    height = max(2.5, 0.8 + 0.28 * len(labels))
    width = 5.4 if columns == 2 else 4.2  # the names of the nets take room in each column
    figure = new_figure(math.ceil(len(settings) / columns), columns, width=width, height=height)
    for spare in figure.axes[len(settings) :]:
        spare.remove()
    shown: list[str] = []  # the rows named on the panel to the left
    for index, (ax, (mode, batch)) in enumerate(zip(figure.axes, settings, strict=True)):
        shown = [] if index % columns == 0 else shown
        part = rows[(rows["mode"] == mode) & (rows["batch_size"] == batch)]
        measured = [value, *([whisker] if whisker else [])]
        part = part.groupby("label")[measured].median()  # across seeds
        here = [label for label in labels if label in part.index]  # no empty rows
        part = part.join(rows.groupby("label")["family"].first()).reindex(here)
        positions = np.arange(len(here))
        colours = [family_colour(f) for f in part["family"]]
        ax.barh(positions, part[value], color=colours)
        if whisker:
            ax.hlines(positions, part[value], part[whisker], color="0.2", linewidth=1)
        ax.set_yticks(positions, here if here != shown else [""] * len(here))
        ax.set_ylim(len(here) - 0.5, -0.5)  # the first on top
        shown = here
        ax.set_title(f"{'inference' if mode == Mode.INFER else 'training step'}, batch {batch}")
        values = part[value].dropna()
        wide = len(values) and values.max() > WIDE_RANGE * values[values > 0].min()
        if wide:  # values over orders of magnitude: the small ones stay readable
            log_scale(ax, "x")
        ax.set_xlabel(x_label + (" (log)" if wide else ""))
    family_legend(figure, list(dict.fromkeys(rows["family"])), below=len(figure.axes) > columns)
    set_title(figure, f"{title}\n{caption(run, rows)}")
    return figure


def latency_bars(run: Run) -> Figure:
    """Figure 3: median latency per architecture (line to the p90), at each batch size."""
    rows = require(run.inference(), "inference timings")
    return per_batch_bars(
        run, rows, "time_median_ms", "Latency: median, line to p90", "ms per call",
        whisker="time_p90_ms",
    )  # fmt: skip


def throughput_vs_batch(run: Run) -> Figure:
    """Figure 4: inference throughput against batch size, one line per architecture."""
    rows = labelled(require(run.inference(), "inference timings"))
    if rows["batch_size"].nunique() < 2:
        raise Skip("one inference batch size only: no throughput curve")
    figure = new_figure(1, 1, width=7, height=4.5)
    ax = figure.axes[0]
    sns.lineplot(
        rows, x="batch_size", y="throughput_per_s", hue="label", palette=arch_colours(rows),
        style="label", markers=True, dashes=False, ax=ax,
    )  # fmt: skip
    log_scale(ax, "x")
    log_scale(ax, "y")
    ax.set(xlabel="batch size (log)", ylabel="samples/s (log)")
    batches = sorted(rows["batch_size"].unique())
    named = spaced(batches)
    ax.set_xticks(batches, [f"{b:g}" if b in named else "" for b in batches])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # only the batch sizes
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8, frameon=False)
    fusion = (rows["family"].map(Family.parse) == Family.FUSION).any()
    sample = " (a fusion net's sample: one image and one question)" if fusion else ""
    set_title(figure, f"Throughput vs batch size{sample}\n{caption(run, rows)}")
    return figure


def spaced(values: Sequence[float], ratio: float = 1.5) -> list[float]:
    """The ascending ``values`` whose tick labels on a log axis do not run together: each
    at least ``ratio`` times the last kept."""
    kept: list[float] = []
    for value in values:
        if not kept or value >= ratio * kept[-1]:
            kept.append(value)
    return kept


def achieved_flops(run: Run) -> Figure:
    """Figure 5: achieved GFLOP/s per architecture: fewer FLOPs are not proportionally
    less time when the kernels (depthwise, grouped) reach a lower rate."""
    rows = require(run.ok[run.ok["achieved_gflops_per_s"].notna()], "FLOP rates")
    peaks = calibration_peaks(run.env, set(rows["dtype"]))
    styles = dict(zip(peaks, CALIBRATION_LINES, strict=False))
    rates = ", ".join(
        f"{dtype} {peaks[dtype]:.0f} GFLOP/s, {styles[dtype][1]} line" for dtype in styles
    )
    figure = per_batch_bars(
        run, rows, "achieved_gflops_per_s",
        "Achieved GFLOP/s" + (f" (calibration matmul: {rates})" if peaks else ""),
        "GFLOP/s",
    )  # fmt: skip
    for ax in figure.axes:
        for dtype, (style, _) in styles.items():
            ax.axvline(peaks[dtype], color="0.3", linestyle=style, linewidth=1)
    return figure


def depth_degradation(run: Run) -> Figure:
    """Figure 6: test error against depth, plain vs residual (the mean over seeds, bars
    their spread where there are several)."""
    rows = depth_series(trained_rows(run.table))
    rows = rows.assign(error=100 * (1 - rows["test_acc"]))
    if rows.empty or rows.groupby("kind")["depth"].nunique().max() < 2:
        raise Skip("no plain or residual net at two depths")
    datasets = list(dict.fromkeys(rows["dataset"]))
    figure = new_figure(1, len(datasets), width=5, height=4)
    palette = {kind: family_colour(kind) for kind in rows["kind"].unique()}
    for ax, dataset in zip(figure.axes, datasets, strict=True):
        sns.lineplot(
            rows[rows["dataset"] == dataset], x="depth", y="error", hue="kind", palette=palette,
            marker="o", errorbar="sd", err_style="bars", ax=ax,
        )  # fmt: skip
        ax.set(xlabel="depth (layers)", ylabel=f"test error (%), {dataset}")
        ax.set_xticks(sorted(rows["depth"].unique()))
        ax.legend(title="", frameon=False)
    seeds = rows.groupby(["arch", "dataset"])["seed"].nunique().max()
    spread = f"bars: sd over {seeds} seeds" if seeds > 1 else "one seed"
    set_title(figure, f"Depth: plain vs residual ({spread})\n{caption(run, rows, budget=True)}")
    return figure


def width_vs_depth(run: Run) -> Figure:
    """Figure 7: test accuracy and training-step time against parameters, wide nets
    (WRN) vs thin, deep ones (the CIFAR ResNets), one row per data set."""
    rows = width_series(trained_rows(run.table))
    if rows.empty or rows["kind"].nunique() < 2:
        raise Skip("no wide net and CIFAR ResNet trained in this run")
    rows = rows.assign(accuracy=100 * rows["test_acc"], step=rows["time_median_ms"])
    datasets = list(dict.fromkeys(rows["dataset"]))
    figure = new_figure(len(datasets), 2, width=5, height=3.8)
    palette = {"wide": family_colour(Family.WIDE), "deep": family_colour(Family.RESNET)}
    for (accuracy_ax, step_ax), dataset in zip(axes_grid(figure), datasets, strict=True):
        part = rows[rows["dataset"] == dataset].sort_values("params")
        batch = ", ".join(f"{b:.0f}" for b in part["batch_size"].unique())
        panels = ((accuracy_ax, "accuracy", f"test accuracy (%), {dataset}"),
                  (step_ax, "step", f"training step (ms, batch {batch})"))  # fmt: skip
        for ax, column, label in panels:
            sns.lineplot(
                part, x="params", y=column, hue="kind", palette=palette, style="kind",
                markers={"wide": "s", "deep": "o"}, dashes=False, errorbar="sd",
                err_style="bars", ax=ax,
            )  # fmt: skip
            log_scale(ax, "x")
            ax.set(xlabel="parameters (log)", ylabel=label)
            ax.legend(title="", frameon=False)
        figure.draw_without_rendering()
        for ax, column, _ in panels:
            means = part.groupby("arch", sort=False)[["params", column]].mean()
            label_points(ax, means["params"], means[column], list(means.index))
    seeds = rows.groupby(["arch", "dataset"])["seed"].nunique().max()
    spread = f"bars: sd over {seeds} seeds" if seeds > 1 else "one seed"
    set_title(figure, f"Width vs depth ({spread})\n{caption(run, rows, budget=True)}")
    return figure


def task_of(dataset: str) -> Task | None:
    """The task that provides ``dataset``, None for one this installation does not know."""
    try:
        return tasks.for_dataset(dataset)
    except UserError:
        return None


def training_curves(run: Run) -> Figure:
    """Figure 8: test accuracy and train loss per epoch, one row of panels per suite
    and data set; where the data set's task reports metrics beside test accuracy (the
    relational and non-relational accuracy of question answering), a third panel draws
    them beside their floors (dotted)."""
    curves = run.curves
    if curves.empty or "epoch" not in curves:
        raise Skip("no training curves (curves.jsonl) in this run")
    curves = labelled(curves[curves["seed"] == curves["seed"].min()])
    groups = list(dict.fromkeys(zip(curves["suite"], curves["dataset"], strict=True)))
    metrics = {dataset: metrics_in(curves, task_of(dataset)) for _, dataset in groups}
    figure = new_figure(len(groups), 3 if any(metrics.values()) else 2, width=4.2, height=3.4)
    colours, markers = arch_colours(curves), arch_markers(curves)
    for row_axes, (suite, dataset) in zip(axes_grid(figure), groups, strict=True):
        part = curves[(curves["suite"] == suite) & (curves["dataset"] == dataset)]
        for ax, column, name in zip(
            row_axes, ("test_acc", "train_loss"), ("test accuracy", "train loss"), strict=False
        ):
            values = part.assign(value=part[column] * (100 if column == "test_acc" else 1))
            sns.lineplot(
                values, x="epoch", y="value", hue="label", palette=colours, style="label",
                markers=markers, dashes=False, markersize=5, ax=ax, legend=ax is row_axes[1],
            )  # fmt: skip
            ax.set(xlabel="epoch", ylabel=f"{name}{' (%)' if column == 'test_acc' else ''}")
            ax.set_title(f"{suite}: {dataset}", fontsize=9)
        handles, names = row_axes[1].get_legend_handles_labels()
        row_axes[1].get_legend().remove()
        beside = row_axes[1]  # the row's legend goes right of its last panel
        if len(row_axes) > 2:
            beside = row_axes[2]
            metric_curves(row_axes[2], part, metrics[dataset], colours, markers)
        where, anchor = ("center left", (1.02, 0.5)) if beside.axison else ("center", (0.5, 0.5))
        beside.legend(handles, names, loc=where, bbox_to_anchor=anchor, fontsize=7, frameon=False)
        for ax in row_axes:
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    set_title(figure, f"Training curves (first seed)\n{caption(run, curves)}")
    return figure


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "p", "h", "*")


def arch_markers(table: pd.DataFrame) -> dict[str, str]:
    """label -> marker: each member of a family its own (as its shade is its own)."""
    markers: dict[str, str] = {}
    for _, members in labelled(table).groupby("family", sort=False):
        names = list(dict.fromkeys(members["label"]))
        markers.update({n: MARKERS[i % len(MARKERS)] for i, n in enumerate(names)})
    return markers


def metrics_in(table: pd.DataFrame, task: Task | None) -> tuple[Metric, ...]:
    """The task's metrics that ``table`` has values of (none without a task)."""
    if task is None:
        return ()
    return tuple(m for m in task.metrics if m.column in table and table[m.column].notna().any())


def metric_curves(
    ax: Axes,
    part: pd.DataFrame,
    metrics: Sequence[Metric],
    colours: dict[str, Colour],
    markers: dict[str, str],
) -> None:
    """Each of a task's metrics per epoch, one line style per metric, their floors
    dotted; for a data set whose task has none the panel holds only the legend."""
    if not metrics:
        ax.axis("off")
        return
    for label, net in part.groupby("label", sort=False):
        for metric, (style, _) in zip(metrics, METRIC_LINES, strict=False):
            ax.plot(net["epoch"], 100 * net[metric.column], color=colours[label], ls=style,
                    marker=markers[label] if style == "-" else None, ms=4)  # fmt: skip
    for metric in metrics:
        floor = 100 * part[metric.floor].iloc[0]
        ax.axhline(floor, color="0.2", linestyle=":", linewidth=1)
        ax.annotate(f"{metric.name} floor", (0.01, floor), xycoords=("axes fraction", "data"),
                    xytext=(0, 2), textcoords="offset points", fontsize=7)  # fmt: skip
    ax.set(xlabel="epoch", ylabel="test accuracy (%)")
    styles = zip(metrics, METRIC_LINES, strict=False)
    ax.set_title(", ".join(f"{m.name} ({name})" for m, (_, name) in styles), fontsize=9)


def task_metrics(run: Run, task: Task) -> Figure:
    """Figure 9 (one per task that has metrics, e.g. question_kinds): each net's metrics
    (bars, relational and non-relational accuracy) with their floors as dashed lines,
    and the finer breakdown of the last epoch (per question subtype)."""
    trained = run.trained()
    of_task = trained.loc[trained["dataset"].map(lambda name: task_of(name) is task).astype(bool)]
    metrics = metrics_in(of_task, task)
    measured = of_task.dropna(subset=[m.column for m in metrics]) if metrics else of_task[:0]
    rows = labelled(require(measured, f"{task.name} metrics"))
    last = last_epochs(run.curves, rows, task.breakdown)
    figure = new_figure(1, 2 if last is not None else 1, width=5.5, height=4)
    colours, names = arch_colours(rows), list(dict.fromkeys(rows["label"]))
    bars_with_floors(figure.axes[0], rows, metrics, colours, names)
    if last is not None:
        bars_with_floors(figure.axes[1], last, task.breakdown, colours, names)
    figure.legend(
        *figure.axes[0].get_legend_handles_labels(),
        loc="outside right center",
        frameon=False,
        fontsize=8,
    )
    set_title(
        figure,
        f"{task.name.capitalize()}: each metric per net; dashed: its no-skill floor\n"
        f"{caption(run, rows, budget=True)}",
    )
    return figure


def last_epochs(
    curves: pd.DataFrame, rows: pd.DataFrame, breakdown: Sequence[Metric]
) -> pd.DataFrame | None:
    """The last curve record of each job of the labelled ``rows`` (first seed), labelled
    as there, or None when the curves lack the breakdown."""
    if curves.empty or not breakdown or breakdown[0].column not in curves:
        return None
    first_seed = curves[curves["seed"] == curves["seed"].min()]
    jobs = pd.Series(keys(first_seed), index=first_seed.index)
    ends = first_seed.sort_values("epoch").groupby(jobs, sort=False).tail(1)
    label = dict(zip(keys(rows, without=("seed",)), rows["label"], strict=True))
    ends = ends.assign(label=[label.get(key) for key in keys(ends, without=("seed",))])
    ends = ends[ends["label"].notna()]
    return ends if len(ends) else None


def bars_with_floors(
    ax: Axes,
    rows: pd.DataFrame,
    metrics: Sequence[Metric],
    colours: dict[str, Colour],
    names: Sequence[str],
) -> None:
    """Grouped bars of each metric per net (in the order of ``names``), each with its value
    written on it (a 0% bar is then not taken for a missing one), and each metric's floor
    as a dashed line."""
    names = [name for name in names if name in set(rows["label"])]
    width = 0.8 / len(names)
    for position, metric in enumerate(metrics):
        for index, name in enumerate(names):
            value = 100 * rows.loc[rows["label"] == name, metric.column].iloc[0]
            x = position - 0.4 + width * (index + 0.5)
            ax.bar(x, value, width, color=colours[name], label=name if position == 0 else None)
            inside = value >= 10  # in white at the bar's top, clear of the floors' lines
            ax.annotate(
                f"{value:.0f}", (x, value), xytext=(0, -2 if inside else 2),
                textcoords="offset points", ha="center", va="top" if inside else "bottom",
                fontsize=6 if len(metrics) > 3 else 7, color="white" if inside else "0.15",
            )  # fmt: skip
        floor = rows[metric.floor].dropna()
        if len(floor):
            ax.hlines(100 * floor.iloc[0], position - 0.45, position + 0.45, colors="0.15",
                      linestyles="--")  # fmt: skip
    rotation = 20 if len(metrics) > 3 else 0
    ax.set_xticks(range(len(metrics)), [metric.name for metric in metrics], rotation=rotation)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)


Drawing = Callable[[Run], Figure]
FIGURE_LIST: tuple[tuple[str, Drawing], ...] = (
    ("accuracy_vs_flops", accuracy_vs_flops),
    ("accuracy_vs_cost", accuracy_vs_cost),
    ("latency", latency_bars),
    ("throughput", throughput_vs_batch),
    ("achieved_flops", achieved_flops),
    ("depth", depth_degradation),
    ("width", width_vs_depth),
    ("training_curves", training_curves),
)


def figure_list() -> list[tuple[str, Drawing]]:
    """Every figure by name: the shared ones, then one per task that reports metrics."""
    of_tasks = [
        (task.figure, functools.partial(task_metrics, task=task))
        for task in tasks.all_tasks()
        if task.figure
    ]
    return [*FIGURE_LIST, *of_tasks]


def figure_caption(drawing: Drawing) -> str:
    """What a figure shows, from its drawing's docstring: 'Median latency per
    architecture (line to the p90), at each batch size.'"""
    doc = inspect.getdoc(getattr(drawing, "func", drawing)) or ""
    first = " ".join(doc.split("\n\n")[0].split())
    text = re.sub(r"^Figure \d+( \([^)]*\))?: ", "", first)
    return text[:1].upper() + text[1:]


@dataclass
class Drawn:
    """The figures written (name -> PNG path) and those skipped (name -> why)."""

    written: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    captions: dict[str, str] = field(default_factory=dict)  # of the figures written


def draw(run: Run) -> Drawn:
    """Write every figure the run has data for into ``run.path/figures`` (PNG and SVG)."""
    out = run.path / FIGURES_DIR
    out.mkdir(exist_ok=True)
    drawn = Drawn()
    with sns.axes_style("whitegrid"), matplotlib.rc_context({"svg.hashsalt": "archbench"}):
        for name, make in figure_list():
            try:
                figure = make(run)
            except Skip as reason:
                drawn.skipped[name] = str(reason)
                log.debug("figure %s skipped: %s", name, reason)
                continue
            for suffix in FORMATS:
                figure.savefig(
                    out / f"{name}.{suffix}",
                    dpi=110,
                    metadata={"Date": None} if suffix == "svg" else None,
                )
            drawn.written[name] = out / f"{name}.png"
            drawn.captions[name] = figure_caption(make)
    return drawn
