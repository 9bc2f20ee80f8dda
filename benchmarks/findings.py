"""The claims about network structure the suite exists to test, checked against a run.

Each check looks for the rows its claim needs (same data set, device, dtype,
threads and backend settings; accuracy averaged over seeds) and returns a
Finding: the verdict (held, not held, or not measured in this run), the
evidence numbers and the thresholds it applied. A verdict never comes without
its numbers. Which nets to compare comes from the registry's declared
relations (a net's depth, its twin and what changed), never from their names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import pandas as pd
from torch import nn

import architectures
from architectures import Change, Family, RegistryError
from architectures._enum import TextEnum
from architectures.layers import SeparableConv3x3
from benchmarks import results
from benchmarks.measure.flops import module_table
from benchmarks.schema import (
    NO_OVERRIDES,
    SETTINGS,
    Identity,
    Mode,
    Status,
    key_fields,
    parse_shape,
)
from benchmarks.tasks.vqa import BY_KIND

TIE_PTS = 0.5  # accuracy differences (points) below this are ties
DENSE_TOLERANCE_PTS = 1.0  # "reaches residual accuracy": within this many points
MATCHED_FLOPS = 0.25  # two nets have matched FLOPs when within this fraction
SEPARABLE_PREDICTION_TOLERANCE = 0.05  # measured/predicted MAC and parameter ratios
LATENCY_LAG = 1.5  # latency "drops by much less": latency ratio >= this x the FLOP ratio
ATTENTION_MARGIN_PTS = 2.0  # cross-attention over late fusion, relational questions
FLOOR_MARGIN_PTS = 5.0  # "clearly above the floor"
UNGROUPED = (Family.RESNET.value, Family.PLAIN.value)
SETTING = key_fields(without=("arch", "config", "mode", "batch_size", "input_shape", "seed"))


class Verdict(TextEnum):
    HELD = "held"
    NOT_HELD = "not held"
    NOT_MEASURED = "not measured"


HELD, NOT_HELD, NOT_MEASURED = Verdict.HELD, Verdict.NOT_HELD, Verdict.NOT_MEASURED


@dataclass(frozen=True)
class Finding:
    claim: str
    verdict: Verdict
    evidence: str
    threshold: str


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def trained_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Training rows with an accuracy, one per job (results.summarize): the mean over
    seeds of its test accuracy as ``acc`` (and of its task's metrics); ``name`` is the
    net's label."""
    trained = results.summarize(results.trained_rows(table))
    trained = trained.assign(acc=trained["test_acc_mean"])
    return trained.assign(name=results.labels(trained, among=()))


def relations(arch: str) -> architectures.Relations:
    """The net's declared relations (none for a net this installation does not know)."""
    try:
        return architectures.spec(arch).relations
    except RegistryError:
        return architectures.Relations()


def settings(rows: pd.DataFrame) -> list[pd.DataFrame]:
    """The rows of each setting (data set, device, dtype, threads, backend settings):
    claims compare nets within one."""
    if rows.empty:
        return []
    return [part for _, part in rows.groupby(list(SETTING), sort=False, dropna=False)]


def family_pairs(
    rows: pd.DataFrame, first: tuple[str, ...], second: tuple[str, ...], suffixes: tuple[str, str]
) -> pd.DataFrame:
    """Every pair of a row of the ``first`` families and one of the ``second``."""
    left, right = rows[rows["family"].isin(first)], rows[rows["family"].isin(second)]
    return left.merge(right, how="cross", suffixes=suffixes)


def where(row: Any) -> str:
    """'mnist5k, cpu, fp32' (and the backend settings that are on) of a row, or of the
    first row of a part."""
    first = row.iloc[0] if isinstance(row, pd.DataFrame) else row
    identity = Identity.from_record(dict(first))
    on = [name for name in SETTINGS if getattr(identity.backend, name)]
    return ", ".join([identity.dataset, identity.device, identity.dtype, *on])


def residual_beats_plain(table: pd.DataFrame) -> Finding:
    claim = "Residual connections beat plain nets as depth grows"
    threshold = (
        f"the deepest plain net below the shallowest by more than {TIE_PTS} points, and the "
        f"residual net of that depth above it by more than {TIE_PTS} points"
    )
    for part in settings(results.depth_series(trained_rows(table))):
        plain = part[part["kind"] == Family.PLAIN.value].set_index("depth")
        residual = part[part["kind"] == Family.RESNET.value].set_index("depth")
        if len(plain) < 2 or plain.index.max() not in residual.index:
            continue
        shallow, deep = plain.loc[plain.index.min()], plain.loc[plain.index.max()]
        rescue = residual.loc[plain.index.max()]
        degrades = shallow["acc"] - deep["acc"] > TIE_PTS / 100
        rescues = rescue["acc"] - deep["acc"] > TIE_PTS / 100
        evidence = f"{where(part)}: " + ", ".join(
            f"{row['name']} {pct(row['acc'])}" for row in (shallow, deep, rescue)
        )
        return Finding(claim, HELD if degrades and rescues else NOT_HELD, evidence, threshold)
    return Finding(
        claim, NOT_MEASURED, "needs plain nets at two depths and the deeper resnet", threshold
    )


def dense_matches_residual(table: pd.DataFrame) -> Finding:
    claim = "Dense connectivity reaches residual accuracy with fewer parameters"
    threshold = (
        f"a DenseNet within {DENSE_TOLERANCE_PTS} point of a ResNet that has more parameters"
    )
    for part in settings(trained_rows(table)):
        pairs = family_pairs(part, (Family.DENSENET.value,), (Family.RESNET.value,), ("_d", "_r"))
        pairs = pairs[pairs["params_d"] < pairs["params_r"]]
        if pairs.empty:
            continue
        pairs = pairs.assign(gap=pairs["acc_d"] - pairs["acc_r"]).sort_values("gap")
        best = pairs.iloc[-1]
        evidence = (
            f"{where(part)}: {best['name_d']} {pct(best['acc_d'])} with {best['params_d']:,.0f} "
            f"parameters vs {best['name_r']} {pct(best['acc_r'])} with {best['params_r']:,.0f}"
        )
        held = best["gap"] >= -DENSE_TOLERANCE_PTS / 100
        return Finding(claim, HELD if held else NOT_HELD, evidence, threshold)
    return Finding(claim, NOT_MEASURED, "needs a DenseNet and a larger ResNet trained", threshold)


def grouped_at_matched_flops(table: pd.DataFrame) -> Finding:
    claim = "Grouped convolutions: at matched FLOPs, the grouped net is at least as accurate"
    threshold = (
        f"FLOPs within {MATCHED_FLOPS:.0%}; the grouped net's accuracy no more than "
        f"{TIE_PTS} points below"
    )
    for part in settings(trained_rows(table)):
        pairs = family_pairs(part, (Family.GROUPED.value,), UNGROUPED, ("_g", "_d"))
        pairs = pairs.assign(flop_ratio=pairs["flops_g"] / pairs["flops_d"])
        pairs = pairs[(pairs["flop_ratio"] - 1).abs() <= MATCHED_FLOPS]
        if pairs.empty:
            continue
        verdicts, lines = [], []
        for pair in pairs.itertuples():
            verdicts.append(pair.acc_g >= pair.acc_d - TIE_PTS / 100)
            lines.append(
                f"{pair.name_g} {pct(pair.acc_g)} vs {pair.name_d} {pct(pair.acc_d)} "
                f"(FLOP ratio {pair.flop_ratio:.2f})"
            )
        evidence = f"{where(part)}: " + "; ".join(lines)
        return Finding(claim, HELD if all(verdicts) else NOT_HELD, evidence, threshold)
    closest = nearest_flops_pair(table)
    return Finding(
        claim, NOT_MEASURED, f"no grouped net with a FLOP-matched ungrouped one{closest}", threshold
    )


def nearest_flops_pair(table: pd.DataFrame) -> str:
    """' (closest: A at 0.25x the FLOPs of B)', or '' when there is no pair at all."""
    pairs = family_pairs(trained_rows(table), (Family.GROUPED.value,), UNGROUPED, ("_g", "_d"))
    if pairs.empty:
        return ""
    pairs = pairs.assign(ratio=pairs["flops_g"] / pairs["flops_d"])
    best = pairs.iloc[(pairs["ratio"].map(lambda r: abs(r - 1))).argmin()]
    return f" (closest: {best['name_g']} at {best['ratio']:.2f}x the FLOPs of {best['name_d']})"


def predicted_separable_ratios(
    standard: str, separable: str, input_shape: str
) -> tuple[float, float]:
    """(MAC ratio, parameter ratio) that Howard et al. 2017 (eq. 5) predict for the
    separable twin: each replaced 3x3 layer costs 1/C_out + 1/9 of the standard one,
    every other layer stays as it is."""
    channels, height, _ = parse_shape(input_shape)
    config: dict[str, Any] = {"in_channels": channels}
    dense_model = architectures.create(standard, **config)
    twin = architectures.create(separable, **config)
    inputs = architectures.spec(standard).example_inputs(1, image_size=height, **config)
    table = module_table(dense_model, inputs, max_depth=99).set_index("module")
    replaced = [
        name for name, module in twin.named_modules() if isinstance(module, SeparableConv3x3)
    ]
    macs, params = table.loc["(model)", "macs"], table.loc["(model)", "params"]
    for name in replaced:
        layer = cast(nn.Conv2d, dense_model.get_submodule(name))
        factor = 1 / layer.out_channels + 1 / 9
        macs -= table.loc[name, "macs"] * (1 - factor)
        params -= table.loc[name, "params"] * (1 - factor)
    return macs / table.loc["(model)", "macs"], params / table.loc["(model)", "params"]


def separable_cuts_flops(table: pd.DataFrame) -> Finding:
    claim = (
        "Depthwise-separable convolutions cut FLOPs and parameters by the predicted factor, "
        "at a stated cost in accuracy, and their latency drops by much less than their FLOPs"
    )
    threshold = (
        f"MAC and parameter ratios within {SEPARABLE_PREDICTION_TOLERANCE:.0%} of the "
        f"prediction (1/C_out + 1/9 per replaced 3x3 layer); batch-1 latency ratio at least "
        f"{LATENCY_LAG}x the MAC ratio"
    )
    ok = table[(table["status"] == Status.OK) & (table["config"] == NO_OVERRIDES)]
    latency = ok[(ok["mode"] == Mode.INFER) & (ok["batch_size"] == 1)]
    trained = trained_rows(table)
    conditions = results.keys(latency, without=("arch",))
    for index, row in enumerate(latency.itertuples()):
        twin = relations(row.arch)
        if twin.change is not Change.SEPARABLE:
            continue
        alike = [key == conditions[index] for key in conditions]
        base = latency[pd.Series(alike, index=latency.index) & (latency["arch"] == twin.twin)]
        if base.empty:
            continue
        base = base.iloc[0]
        mac_ratio, param_ratio = row.macs / base["macs"], row.params / base["params"]
        latency_ratio = row.time_median_ms / base["time_median_ms"]
        predicted_macs, predicted_params = predicted_separable_ratios(
            base["arch"], row.arch, row.input_shape
        )
        as_predicted = all(
            abs(measured / predicted - 1) <= SEPARABLE_PREDICTION_TOLERANCE
            for measured, predicted in (
                (mac_ratio, predicted_macs),
                (param_ratio, predicted_params),
            )
        )
        lags = latency_ratio >= LATENCY_LAG * mac_ratio
        cost = accuracy_cost(trained, row.arch, base["arch"], base)
        evidence = (
            f"{where(base)}: {row.arch} vs {base['arch']}: "
            f"MACs x{mac_ratio:.3f} (predicted x{predicted_macs:.3f}), "
            f"parameters x{param_ratio:.3f} (predicted x{predicted_params:.3f}), "
            f"batch-1 latency x{latency_ratio:.2f}{cost}"
        )
        return Finding(claim, HELD if as_predicted and lags else NOT_HELD, evidence, threshold)
    return Finding(
        claim, NOT_MEASURED, "needs a separable net and its twin timed at batch 1", threshold
    )


CONDITIONS = ("device", "dtype", "threads", *(name for name in SETTINGS if name != "cuda_graphs"))


def accuracy_cost(trained: pd.DataFrame, twin: str, base: str, latency_row: pd.Series) -> str:
    """'; accuracy 90.1% vs 91.0% (-0.9 points)': both nets trained on one data set under
    the latency row's conditions (device, dtype, threads, backend settings but CUDA
    graphs); its own data set first, then any (latency is often timed on synthetic
    inputs); '' when none has both."""
    others = key_fields(without=CONDITIONS)  # the key's other columns
    (wanted,) = results.keys(latency_row.to_frame().T, without=others)
    alike = trained[[key == wanted for key in results.keys(trained, without=others)]]
    alike = alike[alike["config"] == NO_OVERRIDES]
    for dataset in dict.fromkeys([latency_row["dataset"], *alike["dataset"]]):
        acc = alike[alike["dataset"] == dataset].groupby("arch")["acc"].mean()
        if twin in acc and base in acc:
            on = "" if dataset == latency_row["dataset"] else f", on {dataset}"
            points = 100 * (acc[twin] - acc[base])
            return f"; accuracy {pct(acc[twin])} vs {pct(acc[base])} ({points:+.1f} points{on})"
    return ""


def attention_beats_late_fusion(table: pd.DataFrame) -> Finding:
    claim = (
        "Cross-modal attention beats late fusion on relational questions, and is clearly "
        "above the answer-prior floors"
    )
    threshold = (
        f"the attention net above its late-fusion twin by more than {ATTENTION_MARGIN_PTS} "
        f"points on relational questions, and above every floor by more than "
        f"{FLOOR_MARGIN_PTS} points"
    )
    (relational,) = (metric for metric in BY_KIND if metric.column == "test_acc_rel")
    for part in settings(trained_rows(table)):
        nets = part[part["config"] == NO_OVERRIDES].set_index("arch")
        pairs = [
            (arch, twin.twin)
            for arch, twin in ((arch, relations(arch)) for arch in nets.index)
            if twin.change is Change.ATTENTION and twin.twin in nets.index
        ]
        if not pairs:
            continue
        (attention_net, late_net), *_ = pairs
        attention, late = nets.loc[attention_net], nets.loc[late_net]
        gap = attention[relational.column] - late[relational.column]
        above = all(
            attention[metric.column] - attention[metric.floor] > FLOOR_MARGIN_PTS / 100
            for metric in BY_KIND
        )
        evidence = f"{where(part)}: " + "; ".join(
            f"{metric.name} {pct(attention[metric.column])} ({attention_net}) vs "
            f"{pct(late[metric.column])} ({late_net}), floor {pct(attention[metric.floor])}"
            for metric in BY_KIND
        )
        held = gap > ATTENTION_MARGIN_PTS / 100 and above
        return Finding(claim, HELD if held else NOT_HELD, evidence, threshold)
    return Finding(
        claim,
        NOT_MEASURED,
        "needs an attention net and its late-fusion twin trained on one data set",
        threshold,
    )


CHECKS: tuple[Callable[[pd.DataFrame], Finding], ...] = (
    residual_beats_plain,
    dense_matches_residual,
    grouped_at_matched_flops,
    separable_cuts_flops,
    attention_beats_late_fusion,
)


def check_all(table: pd.DataFrame) -> list[Finding]:
    """Every claim's finding for a run's table, in the order of CHECKS."""
    return [check(table) for check in CHECKS]
