"""Comparison figures of a run, drawn with seaborn into ``RUN_DIR/figures/``.

Each figure is drawn only when the run has the data for it; the others are
reported as skipped, with the reason. Every family keeps one colour across
all figures (``FAMILY_COLOURS``); several members of one family get shades of
it. Captions state the device, dtype, data set and training budget.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from benchmarks import results
from benchmarks.catalog import FAMILY_ORDER, family_rank
from benchmarks.findings import by_depth
from benchmarks.train_vqa import GROUPS, group_name

log = logging.getLogger(__name__)
CALIBRATION_LINES = ((":", "dotted"), ("-.", "dash-dotted"), ("--", "dashed"), ("-", "solid"))
WIDE_RANGE = 30  # bar panels whose largest value passes the smallest this many times: log x
VARIANT_COLUMNS = ("dtype", *results.SETTING_DEFAULTS)
FIGURES_DIR = "figures"
FORMATS = ("png", "svg")
FAMILY_COLOURS = dict(
    zip(FAMILY_ORDER, sns.color_palette("colorblind", len(FAMILY_ORDER)), strict=True)
)
OTHER_COLOUR = (0.5, 0.5, 0.5)


class Skip(Exception):
    """A figure the run has no data for; the message says what is missing."""


@dataclass
class Run:
    """What the figures and the report are drawn from."""

    path: Path
    table: pd.DataFrame  # every row of results.csv
    curves: pd.DataFrame  # one row per epoch of every training job
    env: dict

    @property
    def ok(self) -> pd.DataFrame:
        return self.table[self.table["status"] == "ok"]

    def trained(self) -> pd.DataFrame:
        """Training rows with an accuracy, one per job across seeds (mean and std)."""
        rows = self.ok[(self.ok["mode"] == "train") & self.ok["test_acc"].notna()]
        return results.summarize(rows) if len(rows) else rows

    def inference(self) -> pd.DataFrame:
        return self.ok[(self.ok["mode"] == "infer") & self.ok["time_median_ms"].notna()]


def load_run(path: str | Path) -> Run:
    """A run directory's results, curves and environment (UserError when it has none)."""
    path = Path(path)
    table = results.load(path)
    curves_file = path / results.CURVES_FILE
    curves = (
        pd.read_json(curves_file, lines=True)
        if curves_file.exists() and curves_file.stat().st_size
        else pd.DataFrame()
    )
    return Run(path, table, curves, results.read_env(path / results.ENV_FILE))


def arch_label(row: pd.Series) -> str:
    """The architecture's name, with its config when it is not the default:
    'densenet40_k12 (depth=22)'."""
    if row["config"] in ("{}", None) or pd.isna(row["config"]):
        return row["arch"]
    config = ", ".join(f"{key}={value}" for key, value in json.loads(row["config"]).items())
    return f"{row['arch']} ({config})"


def variant_label(row: pd.Series, varying: list[str]) -> str:
    """' [bf16, compile]': the row's dtype and settings among those that vary."""
    parts = [
        str(row[c]) if c == "dtype" else c
        for c in varying
        if c == "dtype" or (not pd.isna(row[c]) and bool(row[c]))
    ]
    return f" [{', '.join(parts)}]" if parts else ""


def row_labels(table: pd.DataFrame) -> list[str]:
    """Each row's architecture label; where the rows differ in dtype or backend settings,
    the labels name them: 'resnet20 [bf16]'."""
    varying = [c for c in VARIANT_COLUMNS if c in table and table[c].nunique() > 1]
    return [arch_label(row) + variant_label(row, varying) for _, row in table.iterrows()]


def labelled(table: pd.DataFrame) -> pd.DataFrame:
    """The table with a ``label`` column (see row_labels), sorted by family order, then label."""
    table = table.assign(label=row_labels(table))
    order = table["family"].map(family_rank)
    return table.assign(_rank=order).sort_values(["_rank", "label"]).drop(columns="_rank")


def arch_colours(table: pd.DataFrame) -> dict[str, tuple]:
    """label -> colour: its family's colour, in shades when a family has several members."""
    colours = {}
    for family, members in labelled(table).groupby("family", sort=False):
        base = FAMILY_COLOURS.get(family, OTHER_COLOUR)
        labels = list(dict.fromkeys(members["label"]))
        shades = [base] if len(labels) == 1 else shade_range(base, len(labels))
        colours.update(zip(labels, shades, strict=True))
    return colours


def shade_range(base: tuple, count: int) -> list[tuple]:
    """``count`` shades of ``base``, from darker to lighter."""
    base = np.asarray(base)
    mix = np.linspace(-0.45, 0.45, count)
    return [tuple(base * (1 + m) if m < 0 else base + (1 - base) * m) for m in mix]


def caption(run: Run, rows: pd.DataFrame, budget: bool = False) -> str:
    """Device, dtype, data set (and training budget) of the rows a figure shows."""
    device = run.env.get("device_name") or ", ".join(sorted(set(rows["device"])))
    parts = [device, "/".join(sorted(set(rows["dtype"])))]
    datasets = sorted(set(rows["dataset"].dropna()) - {"synthetic"})
    if datasets:
        parts.append(", ".join(datasets))
    if budget:
        parts.append(budget_text(rows))
    return " · ".join(parts)


def budget_text(rows: pd.DataFrame) -> str:
    """The training budget of the rows, e.g. '2 epochs or 25 s'."""
    budgets = set()
    for row in rows.itertuples():
        text = f"{row.epochs:g} epochs" if pd.notna(row.epochs) else ""
        if pd.notna(row.time_budget_s):
            text += f" or {row.time_budget_s:g} s" if text else f"{row.time_budget_s:g} s"
        budgets.add(text)
    budgets.discard("")
    return "budget " + "; ".join(sorted(budgets)) if budgets else "budget not recorded"


def new_figure(rows: int, cols: int, width: float = 5.0, height: float = 3.6) -> Figure:
    figure = Figure(figsize=(width * cols, height * rows), layout="constrained")
    figure.subplots(rows, cols, squeeze=False)
    return figure


def axes_grid(figure: Figure) -> np.ndarray:
    return np.asarray(figure.axes).reshape(figure.axes[0].get_gridspec().get_geometry())


def family_legend(figure: Figure, families: list[str]) -> None:
    handles = [
        matplotlib.patches.Patch(color=FAMILY_COLOURS.get(f, OTHER_COLOUR), label=f)
        for f in families
    ]
    figure.legend(handles=handles, loc="outside right center", title="family", frameon=False)


LABEL_OFFSETS = ((4, 5), (4, -11), (-4, 5), (-4, -11), (4, 13), (4, -19), (-4, 13), (-4, -19))


def label_points(ax, xs, ys, labels, fontsize: float = 7) -> None:
    """Name each point, at the first of a few offsets whose box overlaps neither a
    label already placed nor another point's marker (boxes estimated from the text
    length, in points). Call once the layout is final (``draw_without_rendering``)."""
    xs, ys, points_to_pixels = list(xs), list(ys), ax.figure.dpi / 72
    centres = [
        tuple(ax.transData.transform((x, y)) / points_to_pixels)
        for x, y in zip(xs, ys, strict=True)
    ]
    markers = [(cx - 5, cy - 5, cx + 5, cy + 5) for cx, cy in centres]
    placed: list[tuple[float, float, float, float]] = []
    for index, ((px, py), text) in enumerate(zip(centres, labels, strict=True)):
        obstacles = placed + markers[:index] + markers[index + 1 :]
        size = (0.6 * fontsize * len(text), fontsize)
        for dx, dy in (*LABEL_OFFSETS, LABEL_OFFSETS[0]):
            left = px + dx - (size[0] if dx < 0 else 0)
            candidate = (left, py + dy, left + size[0], py + dy + size[1])
            if not any(overlaps(candidate, other) for other in obstacles):
                break
        placed.append(candidate)
        ax.annotate(
            text, (xs[index], ys[index]), textcoords="offset points", xytext=(dx, dy),
            fontsize=fontsize, ha="right" if dx < 0 else "left",
        )  # fmt: skip


def overlaps(a: tuple, b: tuple) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def pareto_front(xs: pd.Series, ys: pd.Series) -> tuple[list, list]:
    """Points no other point beats on both lower x and higher y, in order of x."""
    front_x, front_y, best = [], [], -np.inf
    for x, y in sorted(zip(xs, ys, strict=True), key=lambda p: (p[0], -p[1])):
        if y > best:
            front_x.append(x)
            front_y.append(y)
            best = y
    return front_x, front_y


def log_scale(ax, which: str) -> None:
    """A log scale on axis ``which`` ('x' or 'y') labelled 200, 500, 1k, 2k rather than
    in powers of ten (every minor tick labelled when the axis spans under a decade)."""
    getattr(ax, f"set_{which}scale")("log")
    axis = getattr(ax, f"{which}axis")
    engineering = matplotlib.ticker.EngFormatter(sep="")

    def minor(value: float, position: int) -> str:
        low, high = sorted(axis.get_view_interval())
        mantissa = round(value / 10 ** math.floor(math.log10(value)))
        return engineering(value) if high < 10 * low or mantissa in (2, 5) else ""

    axis.set_major_formatter(engineering)
    axis.set_minor_formatter(matplotlib.ticker.FuncFormatter(minor))


def require(rows: pd.DataFrame, what: str) -> pd.DataFrame:
    if rows.empty:
        raise Skip(f"no {what} in this run")
    return rows


def with_efficiency(run: Run, trained: pd.DataFrame) -> pd.DataFrame:
    """Training rows with their job's batch-1 latency (from the matching inference row)."""
    keys = ["arch", "config", "device", "dtype", "input_shape"]  # latency needs no data set
    inference = run.inference()
    batch1 = inference[inference["batch_size"] == 1][[*keys, "time_median_ms"]]
    batch1 = batch1.drop_duplicates(keys).rename(columns={"time_median_ms": "latency_b1_ms"})
    return trained.drop(columns=["time_median_ms"]).merge(batch1, on=keys, how="left")


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
            colours = [FAMILY_COLOURS.get(f, OTHER_COLOUR) for f in points["family"]]
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
    figure.suptitle(f"{title}\n{caption(run, trained, budget=True)}", fontsize=10)
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
    figure = new_figure(1, len(settings), width=4.2, height=max(2.5, 0.8 + 0.28 * len(labels)))
    for ax, (mode, batch) in zip(figure.axes, settings, strict=True):
        part = rows[(rows["mode"] == mode) & (rows["batch_size"] == batch)]
        columns = [value, *([whisker] if whisker else [])]
        part = part.groupby("label")[columns].median()  # across seeds
        part = part.join(rows.groupby("label")["family"].first()).reindex(labels)
        positions = np.arange(len(labels))
        colours = [FAMILY_COLOURS.get(f, OTHER_COLOUR) for f in part["family"]]
        ax.barh(positions, part[value], color=colours)
        if whisker:
            ax.hlines(positions, part[value], part[whisker], color="0.2", linewidth=1)
        ax.set_yticks(positions, labels if ax is figure.axes[0] else [""] * len(labels))
        ax.set_ylim(len(labels) - 0.5, -0.5)  # every panel the same rows, the first on top
        ax.set_title(f"{'inference' if mode == 'infer' else 'training step'}, batch {batch}")
        values = part[value].dropna()
        wide = len(values) and values.max() > WIDE_RANGE * values[values > 0].min()
        if wide:  # values over orders of magnitude: the small ones stay readable
            log_scale(ax, "x")
        ax.set_xlabel(x_label + (" (log)" if wide else ""))
    family_legend(figure, list(dict.fromkeys(rows["family"])))
    figure.suptitle(f"{title}\n{caption(run, rows)}", fontsize=10)
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
    ax.set_xticks(sorted(rows["batch_size"].unique()))
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8, frameon=False)
    figure.suptitle(f"Throughput vs batch size\n{caption(run, rows)}", fontsize=10)
    return figure


def achieved_flops(run: Run) -> Figure:
    """Figure 5: achieved GFLOP/s per architecture: fewer FLOPs are not proportionally
    less time when the kernels (depthwise, grouped) reach a lower rate."""
    rows = require(run.ok[run.ok["achieved_gflops_per_s"].notna()], "FLOP rates")
    peaks = calibration_peaks(run.env, set(rows["dtype"]))
    styles = dict(zip(peaks, CALIBRATION_LINES, strict=False))
    rates = ", ".join(f"{dtype} {peaks[dtype]:.0f} {styles[dtype][1]}" for dtype in styles)
    figure = per_batch_bars(
        run, rows, "achieved_gflops_per_s",
        "Achieved GFLOP/s" + (f" (calibration matmul: {rates})" if peaks else ""),
        "GFLOP/s",
    )  # fmt: skip
    for ax in figure.axes:
        for dtype, (style, _) in styles.items():
            ax.axvline(peaks[dtype], color="0.3", linestyle=style, linewidth=1)
    return figure


def calibration_peaks(env: dict, dtypes: set[str]) -> dict[str, float]:
    """The calibration matmul's GFLOP/s in each of ``dtypes`` the run calibrated."""
    calibrations = env.get("calibrations") or {}
    if not calibrations and env.get("calibration"):  # runs from before per-dtype calibration
        calibrations = {env["calibration"]["dtype"]: env["calibration"]}
    return {
        dtype: calibrations[dtype]["matmul_gflops_per_s"]
        for dtype in sorted(dtypes)
        if dtype in calibrations
    }


def depth_degradation(run: Run) -> Figure:
    """Figure 6: test error against depth, plain vs residual (mean and seed spread)."""
    rows = by_depth(run.ok[(run.ok["mode"] == "train") & run.ok["test_acc"].notna()])
    rows = rows.assign(error=100 * (1 - rows["test_acc"]))
    if rows.empty or rows.groupby("kind")["depth"].nunique().max() < 2:
        raise Skip("no plain or residual net at two depths")
    datasets = list(dict.fromkeys(rows["dataset"]))
    figure = new_figure(1, len(datasets), width=5, height=4)
    palette = {kind: FAMILY_COLOURS[kind] for kind in ("plain", "resnet")}
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
    figure.suptitle(
        f"Depth: plain vs residual ({spread})\n{caption(run, rows, budget=True)}", fontsize=10
    )
    return figure


def training_curves(run: Run) -> Figure:
    """Figure 7: test accuracy and train loss per epoch, one row of panels per suite
    and data set; for question answering a third panel splits the accuracy into
    relational (solid) and non-relational (dashed) beside the floors (dotted)."""
    curves = run.curves
    if curves.empty or "epoch" not in curves:
        raise Skip("no training curves (curves.jsonl) in this run")
    curves = labelled(curves[curves["seed"] == curves["seed"].min()])
    groups = list(dict.fromkeys(zip(curves["suite"], curves["dataset"], strict=True)))
    by_kind = "test_acc_rel" in curves and curves["test_acc_rel"].notna().any()
    figure = new_figure(len(groups), 3 if by_kind else 2, width=5, height=3.4)
    colours = arch_colours(curves)
    for row_axes, (suite, dataset) in zip(axes_grid(figure), groups, strict=True):
        part = curves[(curves["suite"] == suite) & (curves["dataset"] == dataset)]
        for ax, column, name in zip(
            row_axes, ("test_acc", "train_loss"), ("test accuracy", "train loss"), strict=False
        ):
            values = part.assign(value=part[column] * (100 if column == "test_acc" else 1))
            sns.lineplot(
                values, x="epoch", y="value", hue="label", palette=colours, marker="o",
                markersize=5, ax=ax, legend=ax is row_axes[1],
            )  # fmt: skip
            ax.set(xlabel="epoch", ylabel=f"{name}{' (%)' if column == 'test_acc' else ''}")
            ax.set_title(f"{suite}: {dataset}", fontsize=9)
        row_axes[1].legend(loc="upper right", fontsize=7, frameon=False)
        if by_kind:
            kind_curves(row_axes[2], part, colours)
        for ax in row_axes:
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    figure.suptitle(f"Training curves (first seed)\n{caption(run, curves)}", fontsize=10)
    return figure


def kind_curves(ax, part: pd.DataFrame, colours: dict) -> None:
    """Relational (solid) and non-relational (dashed) test accuracy per epoch, with the
    floors dotted; hidden for rows without question answering."""
    part = part[part["test_acc_rel"].notna()]
    if part.empty:
        ax.set_visible(False)
        return
    for label, net in part.groupby("label", sort=False):
        ax.plot(net["epoch"], 100 * net["test_acc_rel"], color=colours[label], marker="o", ms=3)
        ax.plot(net["epoch"], 100 * net["test_acc_nonrel"], color=colours[label], ls="--")
    for kind, name in (("rel", "relational"), ("nonrel", "non-relational")):
        floor = 100 * part[f"floor_{kind}"].iloc[0]
        ax.axhline(floor, color="0.2", linestyle=":", linewidth=1)
        ax.annotate(f"{name} floor", (0.01, floor), xycoords=("axes fraction", "data"),
                    xytext=(0, 2), textcoords="offset points", fontsize=7)  # fmt: skip
    ax.set(xlabel="epoch", ylabel="test accuracy (%)")
    ax.set_title("relational (solid), non-relational (dashed)", fontsize=9)


def question_kinds(run: Run) -> Figure:
    """Figure 8: relational vs non-relational accuracy (and per subtype) of each fusion
    net, with the data set's no-fusion floors as dashed reference lines."""
    trained = run.trained()
    rows = labelled(
        require(
            trained[trained["test_acc_rel"].notna()] if len(trained) else trained,
            "question-answering accuracy",
        )
    )
    last = last_epochs(run.curves, rows)
    figure = new_figure(1, 2 if last is not None else 1, width=5.5, height=4)
    colours = arch_colours(rows)
    bars_with_floors(
        figure.axes[0], rows, [("rel", "relational"), ("nonrel", "non-relational")], colours
    )
    if last is not None:
        subtypes = [(group_name(k, s), group_name(k, s)) for k, s in GROUPS]
        bars_with_floors(figure.axes[1], last, subtypes, colours, prefix="acc_")
    figure.legend(
        *figure.axes[0].get_legend_handles_labels(),
        loc="outside right center",
        frameon=False,
        fontsize=8,
    )
    figure.suptitle(
        f"Question answering by kind; dashed: no-fusion floor\n{caption(run, rows, budget=True)}",
        fontsize=10,
    )
    return figure


def last_epochs(curves: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame | None:
    """The last curve record of each job in ``rows`` (first seed), or None without subtypes."""
    if curves.empty or "acc_closest" not in curves:
        return None
    keys = [key for key in ("arch", "config", "dataset", "seed") if key in curves]
    ends = labelled(curves.sort_values("epoch").groupby(keys, sort=False).tail(1))
    ends = ends[ends["label"].isin(rows["label"]) & (ends["seed"] == ends["seed"].min())]
    return ends if len(ends) else None


def bars_with_floors(
    ax, rows: pd.DataFrame, groups: list[tuple[str, str]], colours: dict, prefix: str = "test_acc_"
) -> None:
    """Grouped bars of ``prefix + group`` per net, and each group's floor as a dashed line."""
    labels = list(dict.fromkeys(rows["label"]))
    width = 0.8 / len(labels)
    for position, (group, _) in enumerate(groups):
        for index, label in enumerate(labels):
            value = rows.loc[rows["label"] == label, f"{prefix}{group}"].iloc[0]
            x = position - 0.4 + width * (index + 0.5)
            ax.bar(
                x, 100 * value, width, color=colours[label], label=label if position == 0 else None
            )
        floor = rows[f"floor_{group}"].dropna()
        if len(floor):
            ax.hlines(
                100 * floor.iloc[0],
                position - 0.45,
                position + 0.45,
                colors="0.15",
                linestyles="--",
            )
    ax.set_xticks(
        range(len(groups)), [name for _, name in groups], rotation=20 if len(groups) > 3 else 0
    )
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)


FIGURE_LIST: tuple[tuple[str, Callable[[Run], Figure]], ...] = (
    ("accuracy_vs_flops", accuracy_vs_flops),
    ("accuracy_vs_cost", accuracy_vs_cost),
    ("latency", latency_bars),
    ("throughput", throughput_vs_batch),
    ("achieved_flops", achieved_flops),
    ("depth", depth_degradation),
    ("training_curves", training_curves),
    ("question_kinds", question_kinds),
)


@dataclass
class Drawn:
    """The figures written (name -> PNG path) and those skipped (name -> why)."""

    written: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def draw(run: Run) -> Drawn:
    """Write every figure the run has data for into ``run.path/figures`` (PNG and SVG)."""
    out = run.path / FIGURES_DIR
    out.mkdir(exist_ok=True)
    drawn = Drawn()
    with sns.axes_style("whitegrid"), matplotlib.rc_context({"svg.hashsalt": "archbench"}):
        for name, make in FIGURE_LIST:
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
    return drawn
