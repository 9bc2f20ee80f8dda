"""Figures from synthetic runs: each written when the data is there, skipped (with the
reason) when it is not, with fixed family colours and the expected series."""

from __future__ import annotations

import colorsys
import itertools
from dataclasses import replace

import matplotlib.colors
import matplotlib.figure
import pytest

from architectures import Family
from benchmarks import plots, results
from benchmarks.schema import Identity
from benchmarks.tasks.vqa import BY_SUBTYPE

from helpers import measured_net, result_row, write_run

SUBTYPES = [metric.name for metric in BY_SUBTYPE]


def fusion_rows(arch: str, rel: float, nonrel: float) -> list[dict]:
    vqa = {"dataset": "sort_of_clevr", "input_shape": "3x75x75"}
    rows = measured_net(arch, "fusion", (rel + nonrel) / 2, **vqa)
    rows[-1].update(test_acc_rel=rel, test_acc_nonrel=nonrel, floor_rel=0.7, floor_nonrel=0.55)
    return rows


def curve(arch: str, family: str, epoch: int, **metrics) -> dict:
    """One epoch's record of curves.jsonl: the job's identity, the epoch's metrics."""
    identity = Identity.from_record(result_row(arch, family, mode="train", batch_size=64))
    return {**identity.record(), "epoch": epoch, **metrics}


@pytest.fixture
def full_run(tmp_path):
    rows = []
    for seed, noise in ((0, 0.0), (1, 0.01)):
        for arch, family, accuracy in (
            ("plain20", "plain", 0.91), ("plain56", "plain", 0.88),
            ("resnet20", "resnet", 0.92), ("resnet56", "resnet", 0.93), ("wrn16_2", "wide", 0.93),
        ):  # fmt: skip
            rows += [
                row for row in measured_net(arch, family, accuracy + noise, seed=seed)
                if seed == 0 or row["mode"] == "train"
            ]  # fmt: skip
    rows += measured_net("resnet20_dw", "separable", 0.90, macs=1_500_000, flops=3_000_000)
    rows += measured_net("densenet40_k12", "densenet", 0.925, params=90_000, macs=50_000_000)
    rows += measured_net("resnet20_grouped", "grouped", 0.915, macs=9_000_000, flops=18_000_000)
    rows += fusion_rows("fusion_concat", 0.72, 0.6) + fusion_rows("fusion_xattn", 0.9, 0.97)
    subtypes = {f"acc_{name}": 0.8 for name in SUBTYPES} | {
        f"floor_{name}": 0.6 for name in SUBTYPES
    }
    kinds = {"test_acc_rel": 0.85, "test_acc_nonrel": 0.95, "floor_rel": 0.7, "floor_nonrel": 0.55}
    curves = [
        curve("resnet20", "resnet", epoch, test_acc=0.5 + epoch / 10, train_loss=1 / epoch)
        for epoch in (1, 2, 3)
    ] + [
        {**curve("fusion_xattn", "fusion", 1, test_acc=0.9, train_loss=0.3, **subtypes, **kinds),
         "dataset": "sort_of_clevr", "input_shape": "3x75x75"}
    ]  # fmt: skip
    return results.load_run(write_run(tmp_path / "run", rows, curves))


def test_every_figure_is_drawn_from_a_complete_run(full_run):
    drawn = plots.draw(full_run)
    assert list(drawn.written) == [name for name, _ in plots.figure_list()]
    assert "question_kinds" in drawn.written  # the question-answering task's figure
    assert drawn.skipped == {}
    for name in drawn.written:
        for suffix in plots.FORMATS:
            path = full_run.path / plots.FIGURES_DIR / f"{name}.{suffix}"
            assert path.stat().st_size > 1000, path


def test_figures_have_the_expected_panels_and_series(full_run):
    accuracy = plots.accuracy_vs_flops(full_run)
    assert len(accuracy.axes) == 2  # mnist5k and sort_of_clevr: accuracies are not comparable
    cost = plots.accuracy_vs_cost(full_run)
    assert len(cost.axes) == 4  # (latency, params) x two data sets
    throughput = plots.throughput_vs_batch(full_run)
    labels = throughput.axes[0].get_legend_handles_labels()[1]
    assert len(labels) == len(set(full_run.inference()["arch"]))
    depth = plots.depth_degradation(full_run)
    assert {text.get_text() for text in depth.axes[0].get_legend().get_texts()} == {
        "plain", "resnet"
    }  # fmt: skip
    width = plots.width_vs_depth(full_run)
    assert len(width.axes) == 2  # accuracy and step time against parameters, mnist5k
    assert {text.get_text() for text in width.axes[1].get_legend().get_texts()} == {
        "wide", "deep"
    }  # fmt: skip
    curves = plots.training_curves(full_run)
    assert len(curves.axes) == 6  # (accuracy, loss, by question kind) x two data sets
    assert [ax.axison for ax in curves.axes[2::3]] == [False, True]  # mnist5k has no kinds:
    assert curves.axes[2].get_legend() is not None  # its third cell holds the row's legend
    kinds = plots.figure_list()[-1][1](full_run)
    assert len(kinds.axes) == 2  # by kind, and per subtype from the curves
    floors = [line for line in kinds.axes[0].collections if line.get_linestyle()[0][1]]
    assert len(floors) == 2  # a dashed floor for each kind


def test_family_colours_are_fixed_across_figures(full_run):
    assert set(Family) <= set(plots.FAMILY_COLOURS)
    figure = plots.accuracy_vs_flops(full_run)
    points = figure.axes[0].collections[-1]  # the scatter drawn over the error bars
    colours = {matplotlib.colors.to_hex(c) for c in points.get_facecolors()}
    expected = {matplotlib.colors.to_hex(plots.family_colour(f)) for f in
                ("plain", "resnet", "separable", "densenet", "grouped", "wide")}  # fmt: skip
    assert colours == expected
    bars = plots.latency_bars(full_run).axes[0].patches
    assert {matplotlib.colors.to_hex(bar.get_facecolor()) for bar in bars} >= expected


def test_a_run_without_training_draws_what_it_can_and_says_what_it_skipped(tmp_path):
    rows = measured_net("resnet20", "resnet", None) + measured_net("plain20", "plain", None)
    run = results.load_run(write_run(tmp_path / "run", rows))
    drawn = plots.draw(run)
    assert set(drawn.written) == {"latency", "throughput", "achieved_flops"}
    assert set(drawn.skipped) == {
        "accuracy_vs_flops", "accuracy_vs_cost", "depth", "width", "training_curves",
        "question_kinds",
    }  # fmt: skip
    assert "no accuracy" in drawn.skipped["accuracy_vs_flops"]
    assert "curves" in drawn.skipped["training_curves"]


def test_one_batch_size_has_no_throughput_curve(tmp_path):
    run = results.load_run(write_run(tmp_path / "run", [result_row("resnet20", "resnet")]))
    assert "one inference batch size" in plots.draw(run).skipped["throughput"]


def test_pareto_front_keeps_points_no_cheaper_point_beats():
    xs, ys = [1, 2, 3, 4, 5], [50, 40, 60, 70, 65]
    assert plots.pareto_front(xs, ys) == ([1, 3, 4], [50, 60, 70])


def test_captions_state_device_dtype_data_set_and_budget(full_run):
    text = plots.caption(full_run, full_run.trained(), budget=True)
    assert text.startswith("test CPU · fp32 · mnist5k, sort_of_clevr")
    assert "2 epochs" in text
    avx2 = replace(full_run, env={**full_run.env, "torch_cpu_capability": "AVX2"})
    assert plots.caption(avx2, avx2.trained()).startswith("test CPU (AVX2) · fp32")


def test_bar_panels_show_only_their_nets_and_use_log_scale_across_decades(tmp_path):
    """A panel names the nets it has (a training step of one net: one row, not an empty
    row for each other net); a panel spanning decades gets a log axis; the calibration's
    rate has its unit."""
    rows = [
        result_row("resnet20", "resnet", achieved_gflops_per_s=2.0),
        result_row("resnet56", "resnet", achieved_gflops_per_s=500.0),
        result_row("resnet56", "resnet", mode="train", batch_size=512, achieved_gflops_per_s=90.0),
    ]
    figure = plots.achieved_flops(results.load_run(write_run(tmp_path, rows)))
    infer, train = figure.axes[:2]
    assert infer.get_ylim() == (1.5, -0.5) and train.get_ylim() == (0.5, -0.5)
    assert [label.get_text() for label in train.get_yticklabels()] == ["resnet56"]
    assert infer.get_xscale() == "log" and train.get_xscale() == "linear"
    assert "fp32 100 GFLOP/s, dotted line" in figure.get_suptitle()


def test_four_bar_panels_are_two_rows_of_two(tmp_path):
    """A figure a report column wide: four panels (two inference and two training batch
    sizes) as a 2 x 2 grid, each row naming its nets."""
    rows = [
        result_row("resnet20", "resnet", mode=mode, batch_size=batch)
        for mode, batch in (("infer", 1), ("infer", 64), ("train", 8), ("train", 64))
    ]
    figure = plots.achieved_flops(results.load_run(write_run(tmp_path, rows)))
    assert plots.axes_grid(figure).shape == (2, 2)
    named = [bool(ax.get_yticklabels()[0].get_text()) for ax in figure.axes]
    assert named == [True, False, True, False]


def test_the_budget_caption_names_each_data_set_in_numeric_order(tmp_path):
    """'budget: cifar10 5 epochs; sort_of_clevr 16 epochs', not '16 epochs; 5 epochs'."""
    rows = measured_net("resnet20", "resnet", 0.9, dataset="cifar10", epochs=5)
    rows += measured_net("plain20", "plain", 0.9, dataset="cifar10", epochs=20, time_budget_s=30)
    rows += measured_net("fusion_concat", "fusion", 0.7, dataset="sort_of_clevr", epochs=16)
    trained = results.load_run(write_run(tmp_path, rows)).trained()
    assert plots.budget_text(trained) == (
        "budget: cifar10 5 epochs, 20 epochs or 30 s; sort_of_clevr 16 epochs"
    )
    assert plots.budget_text(trained[trained["dataset"] == "cifar10"]).startswith("budget 5")


def test_members_of_one_family_differ_in_hue_and_lightness():
    """Four fusion nets were four near-identical browns: any two members now differ
    clearly in lightness and in hue."""
    shades = plots.shade_range(plots.family_colour("fusion"), 4)
    hls = [colorsys.rgb_to_hls(*shade) for shade in shades]
    for first, second in itertools.combinations(hls, 2):
        assert abs(first[1] - second[1]) >= 0.12
        assert abs(first[0] - second[0]) >= 0.04


def test_throughput_names_only_batch_sizes_whose_labels_do_not_collide(tmp_path):
    """Batch sizes 50 and 64 on a log axis ran together: the first of the two is named,
    and no minor tick is (the minor formatter had labelled 50 beside 64)."""
    rows = [
        result_row("resnet20", "resnet", batch_size=batch, throughput_per_s=100.0 * batch)
        for batch in (1, 8, 50, 64)
    ]
    figure = plots.throughput_vs_batch(results.load_run(write_run(tmp_path, rows)))
    figure.draw_without_rendering()
    ax = figure.axes[0]
    assert [label.get_text() for label in ax.get_xticklabels()] == ["1", "8", "50", ""]
    assert not any(label.get_text() for label in ax.xaxis.get_minorticklabels())
    assert plots.spaced([1, 8, 50, 64, 128]) == [1, 8, 50, 128]


def test_backend_variants_list_the_fp32_baseline_first(tmp_path):
    rows = [
        result_row("resnet20", "resnet", **variant)
        for variant in ({"dtype": "bf16"}, {"compile": True}, {}, {"channels_last": True})
    ]
    table = results.labelled(results.load(write_run(tmp_path, rows)))
    assert list(table["label"]) == [
        "resnet20 [fp32]", "resnet20 [fp32, channels_last]", "resnet20 [fp32, compile]",
        "resnet20 [bf16]",
    ]  # fmt: skip


def test_point_labels_stay_inside_the_axes_on_a_white_ground(full_run):
    figure = plots.accuracy_vs_flops(full_run)
    figure.draw_without_rendering()
    ax = figure.axes[0]
    frame = ax.get_window_extent()
    for text in ax.texts:
        box = text.get_window_extent()
        assert frame.x0 - 1 <= box.x0 and box.x1 <= frame.x1 + 1, text.get_text()
        assert text.get_bbox_patch().get_facecolor()[:3] == (1.0, 1.0, 1.0)


def test_a_zero_bar_has_its_value_written(tmp_path, full_run):
    figure = plots.figure_list()[-1][1](full_run)
    values = [text.get_text() for text in figure.axes[0].texts]
    assert values and all(value.isdigit() for value in values)  # '72', and '0' for a 0% bar


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (270e3, 860e3, {"300k", "500k"}),
        (422e3, 438e3, {"426k", "432k", "438k"}),
        (1.97407, 1.97407, {"1.5", "1.8", "2.1", "2.4", "2.7"}),  # one point: not '1.97407'
    ],
)
def test_log_axes_name_a_few_ticks_that_do_not_run_together(low, high, expected):
    """'700k800k900k1M' and '422.5k425k427.5k...' ran together under a decade."""
    figure = matplotlib.figure.Figure()
    ax = figure.subplots()
    ax.scatter([low, high], [1, 2])
    plots.log_scale(ax, "x")
    figure.draw_without_rendering()
    left, right = ax.get_xlim()
    ticks = [*zip(ax.get_xticks(), ax.get_xticklabels(), strict=True)]
    ticks += zip(ax.get_xticks(minor=True), ax.get_xticklabels(minor=True), strict=True)
    named = {label.get_text() for tick, label in ticks if left <= tick <= right}
    assert named - {""} == expected
