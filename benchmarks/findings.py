"""The claims about network structure the suite exists to test, judged against a run.

Each claim is judged in every group of rows it applies to: one data set,
device, dtype, thread count and backend settings, with training either cut
short by a time cap or not (never the two mixed). In each group a Judgement
gives the verdict (held, not held, inconclusive), the evidence with its 95%
intervals and, when inconclusive, how many seeds would decide it; the
Finding's headline counts the groups ("held in 2 of 3 groups").

Every accuracy comparison is a difference of means over seeds with a 95%
interval (benchmarks/uncertainty.py): Welch's with two or more seeds a side,
else one from the noise floor measured for the data set and recipe
(benchmarks/noise.py). A condition holds when its interval clears the margin,
fails when the interval lies wholly on the other side, and is inconclusive
when it spans the margin (or there is no interval). Which nets are compared
comes from the registry's families and declared relations, never from names.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np
import pandas as pd
from torch import nn

import architectures
from architectures import Change, Family
from architectures._enum import TextEnum
from architectures.layers import SeparableConv3x3
from benchmarks import noise, results
from benchmarks.compare import DEFAULT_THRESHOLD
from benchmarks.measure.flops import layer_costs
from benchmarks.measure.params import count_parameters
from benchmarks.options import MIN_ROUNDS_FOR_TEST
from benchmarks.schema import (
    NO_OVERRIDES,
    ROUNDS_COLUMN,
    SAMPLES_COLUMN,
    SETTINGS,
    Identity,
    Mode,
    Status,
    declared,
    key_fields,
    parse_shape,
)
from benchmarks.tasks.vqa import BY_KIND
from benchmarks.uncertainty import (
    Estimate,
    above,
    difference,
    ratio_of_medians,
    ratio_of_rounds,
    rounds_to_decide,
    seeds_to_decide,
    widened,
)

TIE_PTS = 0.5  # accuracy differences (points) within this are ties
DENSE_TOLERANCE_PTS = 1.0  # "reaches residual accuracy": within this many points
MATCHED_FLOPS = 0.25  # two nets have matched FLOPs when within this fraction
SEPARABLE_PREDICTION_TOLERANCE = 0.05  # measured/predicted MAC and parameter ratios
LATENCY_LAG = 1.5  # latency "drops by much less": latency ratio >= this x the FLOP ratio
ATTENTION_MARGIN_PTS = 2.0  # cross-attention over late fusion, relational questions
FLOOR_MARGIN_PTS = 5.0  # "clearly above the floor"
MATCHED_PARAMS = 0.25  # a wide and a deep net have matched parameters when within this
TIMING_NOISE = DEFAULT_THRESHOLD  # a speed-up counts beyond this (the CI gate's threshold)
RETIME = "time both again in more rounds (run --rounds N), on a quieter machine"
UNGROUPED = (Family.RESNET.value, Family.PLAIN.value)
GROUP = (*key_fields(without=("arch", "config", "mode", "batch_size", "input_shape", "seed")),)


class Verdict(TextEnum):
    HELD = "held"
    NOT_HELD = "not held"
    INCONCLUSIVE = "inconclusive"
    NOT_MEASURED = "not measured"


HELD, NOT_HELD, INCONCLUSIVE, NOT_MEASURED = Verdict


@dataclass(frozen=True)
class Judgement:
    """A claim's verdict in one group of rows, with the evidence and, for an inconclusive
    verdict, what would decide it."""

    group: str
    verdict: Verdict
    evidence: str
    to_decide: str = ""


@dataclass(frozen=True)
class Finding:
    claim: str
    threshold: str
    judgements: tuple[Judgement, ...] = ()
    missing: str = ""  # why no group has what the claim needs

    @property
    def verdicts(self) -> list[Verdict]:
        return [judgement.verdict for judgement in self.judgements]

    @property
    def headline(self) -> str:
        """'held in 2 of 3 groups (inconclusive in 1)', or 'not measured'; 'comparisons'
        where a group holds more than one (two attention nets against one twin)."""
        if not self.judgements:
            return str(NOT_MEASURED)
        total, held = len(self.verdicts), self.verdicts.count(HELD)
        others = [
            f"{verdict} in {self.verdicts.count(verdict)}"
            for verdict in (NOT_HELD, INCONCLUSIVE)
            if verdict in self.verdicts
        ]
        one_each = len({judgement.group for judgement in self.judgements}) == total
        unit = ("group" if one_each else "comparison") + ("" if total == 1 else "s")
        return f"held in {held} of {total} {unit}" + (f" ({', '.join(others)})" if others else "")


@dataclass(frozen=True)
class Check:
    """One condition of a claim: an estimate against its margin."""

    what: str
    estimate: Estimate
    margin: float
    unit: str = " points"  # of the estimate's text (a fraction shown x100)
    undecided: str = ""  # what would decide it, where more seeds would not

    @property
    def verdict(self) -> Verdict:
        """Held when the interval lies above the margin, not held when below it,
        inconclusive when it spans it or there is none."""
        low, high = self.estimate.low, self.estimate.high
        if low is None or high is None:
            return INCONCLUSIVE
        if low > self.margin:
            return HELD
        return NOT_HELD if high < self.margin else INCONCLUSIVE

    def text(self) -> str:
        return f"{self.what}: {self.estimate.text(unit=self.unit)}"

    def to_decide(self) -> str:
        """For an inconclusive check: what would decide it (the seeds a side, for an
        accuracy)."""
        if self.undecided:
            return f"{self.what}: {self.undecided}"
        seeds = seeds_to_decide(self.estimate, self.margin)
        if self.estimate.spread is None:
            return f"{self.what}: two or more seeds a side, or a noise floor for this recipe"
        if seeds is None:
            return f"{self.what}: more than 100 seeds a side at the observed spread"
        return f"{self.what}: about {seeds} seeds a side at the observed spread"


def judge(group: str, checks: Sequence[Check], facts: str = "") -> Judgement:
    """The group's verdict over all its checks: not held if any is, held if all are,
    else inconclusive."""
    verdicts = [check.verdict for check in checks]
    if NOT_HELD in verdicts:
        verdict = NOT_HELD
    else:
        verdict = HELD if all(v is HELD for v in verdicts) else INCONCLUSIVE
    evidence = "; ".join([*([facts] if facts else []), *(check.text() for check in checks)])
    undecided = [check.to_decide() for check in checks if check.verdict is INCONCLUSIVE]
    to_decide = "; ".join(undecided) if verdict is INCONCLUSIVE else ""
    return Judgement(group, verdict, evidence, to_decide)


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def trained_jobs(table: pd.DataFrame) -> pd.DataFrame:
    """Training rows with an accuracy, one per job (results.summarize): ``acc`` the mean
    test accuracy over seeds and ``values`` each seed's, ``<metric>_values`` the same
    for the tasks' metrics; ``name`` the net's label."""
    rows = results.trained_rows(table)
    summary = results.summarize(rows)
    if summary.empty:
        return summary.assign(acc=[], values=[], name=[], budget_cut=[])
    jobs = rows.assign(_job=results.keys(rows, without=("seed",))).groupby("_job", sort=False)
    columns = ["test_acc", *(name for name in declared() if name in rows)]
    per_seed = {f"{column}_values": list(jobs[column].agg(list)) for column in columns}
    return summary.assign(
        acc=summary["test_acc_mean"],
        values=per_seed.pop("test_acc_values"),
        **per_seed,
        name=results.labels(summary, among=()),
        budget_cut=cut_flags(summary),
    )


def groups(rows: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The rows of each group (see the module docstring) with the group's name."""
    if rows.empty:
        return []
    rows = rows.assign(budget_cut=cut_flags(rows))
    found = []
    for _, part in rows.groupby([*GROUP, "budget_cut"], sort=False, dropna=False):
        cut_short = ", training cut short by a time cap" if part["budget_cut"].iloc[0] else ""
        found.append((where(part.iloc[0]) + cut_short, part))
    return found


def cut_flags(rows: pd.DataFrame) -> list[bool]:
    """Whether a time cap cut each row's training short."""
    return [results.was_cut(row) for row in rows.to_dict("records")]


def where(row: pd.Series) -> str:
    """'mnist5k, cpu, fp32' (and the backend settings that are on) of a row."""
    identity = Identity.from_record(dict(row))
    on = [name for name in SETTINGS if getattr(identity.backend, name)]
    return ", ".join([identity.dataset, identity.device, identity.dtype, *on])


def floor_of(*rows: pd.Series, column: str = "test_acc") -> float | None:
    """The noise floor for comparing these rows' ``column``: the larger of theirs (None
    unless each has one)."""
    found = [noise.floor_for(dict(row)) for row in rows]
    spreads = [floor.sd.get(column) for floor in found if floor is not None]
    if len(spreads) < len(rows) or None in spreads:
        return None
    return max(cast(list[float], spreads))


def seeds_text(row: pd.Series) -> str:
    seeds = int(row["seeds"])
    return f"{row['name']} {pct(row['acc'])} ({seeds} seed{'s' if seeds != 1 else ''})"


def residual_beats_plain(table: pd.DataFrame) -> Finding:
    claim = "Residual connections beat plain nets as depth grows"
    threshold = (
        f"the deepest plain net below the shallowest by more than {TIE_PTS} points, and the "
        f"residual net of that depth above it by more than {TIE_PTS} points, each difference's "
        "95% interval clear of the margin"
    )
    judgements = []
    for group, part in groups(results.depth_series(trained_jobs(table))):
        plain = part[part["kind"] == Family.PLAIN.value].set_index("depth")
        residual = part[part["kind"] == Family.RESNET.value].set_index("depth")
        if len(plain) < 2 or plain.index.max() not in residual.index:
            continue
        shallow, deep = plain.loc[plain.index.min()], plain.loc[plain.index.max()]
        rescue = residual.loc[plain.index.max()]
        checks = [
            Check(
                f"{a['name']} - {b['name']}",
                difference(a["values"], b["values"], floor_of(a, b)),
                TIE_PTS / 100,
            )
            for a, b in ((shallow, deep), (rescue, deep))
        ]
        facts = ", ".join(seeds_text(row) for row in (shallow, deep, rescue))
        judgements.append(judge(group, checks, facts))
    missing = "needs plain nets at two depths and the residual net of the deeper one"
    return Finding(claim, threshold, tuple(judgements), missing)


@dataclass(frozen=True)
class Frontier:
    """The residual nets' accuracy at a parameter count: what it is, and per seed."""

    text: str
    values: list[float]


def residual_frontier(resnets: pd.DataFrame, params: float) -> Frontier | None:
    """The group's residual accuracy-vs-parameters frontier (the best accuracy reached
    with at most so many parameters) at ``params``: interpolated on log parameters
    between the two frontier nets that bracket it, the smallest ResNet's when ``params``
    is below all, None when it is above every ResNet's count."""
    if resnets.empty or params > resnets["params"].max():
        return None
    frontier, best = [], -math.inf
    for _, row in resnets.sort_values("params").iterrows():
        if row["acc"] > best:
            frontier.append(row)
            best = row["acc"]
    below = [row for row in frontier if row["params"] < params]
    at_or_above = [row for row in frontier if row["params"] >= params]
    if not below or not at_or_above:
        net = at_or_above[0] if at_or_above else below[-1]
        return Frontier(f"{net['name']} at {net['params']:,.0f} parameters", list(net["values"]))
    low, high = below[-1], at_or_above[0]
    weight = math.log(params / low["params"]) / math.log(high["params"] / low["params"])
    if len(low["values"]) == len(high["values"]):
        values = list(
            weight * np.asarray(high["values"]) + (1 - weight) * np.asarray(low["values"])
        )
    else:
        values = [weight * high["acc"] + (1 - weight) * low["acc"]]
    text = (
        f"the residual frontier at {params:,.0f} parameters, interpolated between "
        f"{low['name']} ({low['params']:,.0f}) and {high['name']} ({high['params']:,.0f})"
    )
    return Frontier(text, values)


def dense_matches_residual(table: pd.DataFrame) -> Finding:
    claim = "Dense connectivity reaches residual accuracy with fewer parameters"
    threshold = (
        f"every DenseNet no more than {DENSE_TOLERANCE_PTS} point below the group's residual "
        "accuracy-vs-parameters frontier at its own parameter count (interpolated on log "
        "parameters), the difference's 95% interval clear of the margin"
    )
    judgements = []
    for group, part in groups(trained_jobs(table)):
        resnets = part[part["family"] == Family.RESNET.value]
        checks, facts = [], []
        for _, dense in part[part["family"] == Family.DENSENET.value].iterrows():
            frontier = residual_frontier(resnets, dense["params"])
            if frontier is None:
                continue
            noise_floor = floor_of(dense, *(row for _, row in resnets.iterrows()))
            estimate = difference(dense["values"], frontier.values, noise_floor)
            checks.append(
                Check(f"{dense['name']} - frontier", estimate, -DENSE_TOLERANCE_PTS / 100)
            )
            facts.append(
                f"{seeds_text(dense)} with {dense['params']:,.0f} parameters vs "
                f"{frontier.text}: {pct(float(np.mean(frontier.values)))}"
            )
        if checks:
            judgements.append(judge(group, checks, "; ".join(facts)))
    missing = "needs a DenseNet and a ResNet at least as large, trained in one group"
    return Finding(claim, threshold, tuple(judgements), missing)


def grouped_at_matched_flops(table: pd.DataFrame) -> Finding:
    claim = "Grouped convolutions: at matched FLOPs, the grouped net is at least as accurate"
    threshold = (
        f"each grouped net no more than {TIE_PTS} points below the most accurate ungrouped net "
        f"within {MATCHED_FLOPS:.0%} of its FLOPs, the difference's 95% interval clear of "
        "the margin"
    )
    judgements = []
    for group, part in groups(trained_jobs(table)):
        ungrouped = part[part["family"].isin(UNGROUPED)]
        checks, facts = [], []
        for _, grouped in part[part["family"] == Family.GROUPED.value].iterrows():
            ratio = grouped["flops"] / ungrouped["flops"]
            matched = ungrouped[(ratio - 1).abs() <= MATCHED_FLOPS]
            if matched.empty:
                continue
            best = matched.loc[matched["acc"].idxmax()]
            estimate = difference(grouped["values"], best["values"], floor_of(grouped, best))
            checks.append(Check(f"{grouped['name']} - {best['name']}", estimate, -TIE_PTS / 100))
            flop_ratio = grouped["flops"] / best["flops"]
            facts.append(
                f"{seeds_text(grouped)} vs {seeds_text(best)} (FLOP ratio {flop_ratio:.2f})"
            )
        if checks:
            judgements.append(judge(group, checks, "; ".join(facts)))
    jobs = trained_jobs(table)
    closest = nearest_pair(
        jobs, jobs["family"] == Family.GROUPED.value, jobs["family"].isin(UNGROUPED), "flops",
        "FLOPs",
    )  # fmt: skip
    missing = f"no grouped net with a FLOP-matched ungrouped one{closest}"
    return Finding(claim, threshold, tuple(judgements), missing)


def nearest_pair(rows: pd.DataFrame, first: pd.Series, second: pd.Series, column: str,
                 what: str) -> str:  # fmt: skip
    """' (closest: A at 0.25x the FLOPs of B)': the pair of a ``first`` and a ``second`` net
    of ``rows`` nearest in ``column``; '' when there is no pair at all."""
    pairs = rows[first].merge(rows[second], how="cross", suffixes=("_a", "_b"))
    if pairs.empty:
        return ""
    pairs = pairs.assign(ratio=pairs[f"{column}_a"] / pairs[f"{column}_b"])
    best = pairs.iloc[pairs["ratio"].map(lambda r: abs(math.log(r))).argmin()]
    return f" (closest: {best['arch_a']} at {best['ratio']:.2f}x the {what} of {best['arch_b']})"


def predicted_separable_ratios(
    standard: str, separable: str, input_shape: str
) -> tuple[float, float]:
    """(MAC ratio, parameter ratio) that Howard et al. 2017 (eq. 5) predict for the
    separable twin, from the standard net's layer shapes (no FLOP counter): each
    replaced 3x3 convolution costs 1/C_out + 1/9 of its MACs and weights, every other
    layer stays as it is."""
    channels, height, _ = parse_shape(input_shape)
    config: dict[str, Any] = {"in_channels": channels}
    dense_model = architectures.create(standard, **config)
    twin = architectures.create(separable, **config)
    inputs = architectures.spec(standard).example_inputs(1, image_size=height, **config)
    costs = layer_costs(dense_model, inputs)
    total_macs = sum(cost.macs for cost in costs.values())
    total_params = count_parameters(dense_model).total
    macs, params = float(total_macs), float(total_params)
    for name, module in twin.named_modules():
        if isinstance(module, SeparableConv3x3):
            layer = cast(nn.Conv2d, dense_model.get_submodule(name))
            factor = 1 / layer.out_channels + 1 / 9
            macs -= costs[name].macs * (1 - factor)
            params -= costs[name].weights * (1 - factor)
    return macs / total_macs, params / total_params


def separable_cuts_flops(table: pd.DataFrame) -> Finding:
    claim = (
        "Depthwise-separable convolutions cut FLOPs and parameters by the predicted factor, "
        "at a stated cost in accuracy, and their latency drops by much less than their FLOPs"
    )
    threshold = (
        f"MAC and parameter ratios within {SEPARABLE_PREDICTION_TOLERANCE:.0%} of the "
        "prediction from the layer shapes (1/C_out + 1/9 per replaced 3x3 layer); batch-1 "
        f"latency ratio at least {LATENCY_LAG}x the MAC ratio"
    )
    ok = table[(table["status"] == Status.OK) & (table["config"] == NO_OVERRIDES)]
    latency = ok[(ok["mode"] == Mode.INFER) & (ok["batch_size"] == 1)]
    trained = trained_jobs(table)
    judgements = []
    for group, part in groups(latency):
        for _, row in part.iterrows():
            twin = results.relations(row["arch"])
            base = part[part["arch"] == twin.twin]
            if twin.change is not Change.SEPARABLE or base.empty:
                continue
            judgements.append(separable_judgement(group, row, base.iloc[0], trained))
    missing = "needs a separable net and its declared twin timed at batch 1"
    return Finding(claim, threshold, tuple(judgements), missing)


def separable_judgement(
    group: str, row: pd.Series, base: pd.Series, trained: pd.DataFrame
) -> Judgement:
    """The counts against the prediction and the latency lag (exact checks), and the
    accuracy cost with its interval where both nets trained."""
    mac_ratio, param_ratio = row["macs"] / base["macs"], row["params"] / base["params"]
    latency_ratio = row["time_median_ms"] / base["time_median_ms"]
    predicted_macs, predicted_params = predicted_separable_ratios(
        base["arch"], row["arch"], row["input_shape"]
    )
    as_predicted = all(
        abs(measured / predicted - 1) <= SEPARABLE_PREDICTION_TOLERANCE
        for measured, predicted in ((mac_ratio, predicted_macs), (param_ratio, predicted_params))
    )
    lags = latency_ratio >= LATENCY_LAG * mac_ratio
    evidence = (
        f"{row['arch']} vs {base['arch']}: MACs x{mac_ratio:.3f} (predicted "
        f"x{predicted_macs:.3f}), parameters x{param_ratio:.3f} (predicted "
        f"x{predicted_params:.3f}), batch-1 latency x{latency_ratio:.2f}"
        f"{accuracy_cost(trained, row['arch'], base['arch'], base)}"
    )
    return Judgement(group, HELD if as_predicted and lags else NOT_HELD, evidence)


CONDITIONS = ("device", "dtype", "threads", *(name for name in SETTINGS if name != "cuda_graphs"))


def accuracy_cost(trained: pd.DataFrame, twin: str, base: str, latency_row: pd.Series) -> str:
    """'; accuracy cost -1.8 points [-3.1, -0.5] (...) : 94.4% vs 96.2%': both nets
    trained on one data set under the latency row's conditions (device, dtype, threads,
    backend settings but CUDA graphs), its own data set first, then any (latency is
    often timed on synthetic inputs); '' when none has both."""
    others = key_fields(without=CONDITIONS)  # the key's other columns
    (wanted,) = results.keys(latency_row.to_frame().T, without=others)
    same = [key == wanted for key in results.keys(trained, without=others)]
    alike = trained.loc[pd.Series(same, index=trained.index, dtype=bool)]
    alike = alike[(alike["config"] == NO_OVERRIDES) & ~alike["budget_cut"]]
    for dataset in dict.fromkeys([latency_row["dataset"], *alike["dataset"]]):
        nets = alike[alike["dataset"] == dataset].set_index("arch")
        if twin in nets.index and base in nets.index:
            a, b = nets.loc[twin], nets.loc[base]
            cost = difference(a["values"], b["values"], floor_of(a, b))
            on = "" if dataset == latency_row["dataset"] else f" on {dataset}"
            return f"; accuracy{on} {pct(a['acc'])} vs {pct(b['acc'])}: {cost.text()}"
    return ""


def attention_beats_late_fusion(table: pd.DataFrame) -> Finding:
    claim = (
        "Cross-modal attention beats late fusion on relational questions, and is clearly "
        "above the answer-prior floors"
    )
    threshold = (
        f"the attention net above its late-fusion twin by more than {ATTENTION_MARGIN_PTS} "
        f"points on relational questions, and above every floor by more than "
        f"{FLOOR_MARGIN_PTS} points, each 95% interval clear of its margin"
    )
    (relational,) = (metric for metric in BY_KIND if metric.column == "test_acc_rel")
    judgements = []
    for group, part in groups(trained_jobs(table)):
        for attention, late in attention_twins(part):
            attention_net, late_net, column = attention["name"], late["name"], relational.column
            checks = [
                Check(
                    f"{relational.name}, {attention_net} - {late_net}",
                    difference(
                        attention[f"{column}_values"],
                        late[f"{column}_values"],
                        floor_of(attention, late, column=column),
                    ),
                    ATTENTION_MARGIN_PTS / 100,
                ),
                *(
                    Check(
                        f"{metric.name}, {attention_net} - floor {pct(attention[metric.floor])}",
                        above(
                            attention[f"{metric.column}_values"],
                            attention[metric.floor],
                            floor_of(attention, column=metric.column),
                        ),
                        FLOOR_MARGIN_PTS / 100,
                    )
                    for metric in BY_KIND
                ),
            ]
            facts = ", ".join(
                f"{metric.name} {pct(attention[metric.column])} vs {pct(late[metric.column])}"
                for metric in BY_KIND
            )
            judgements.append(judge(group, checks, f"{attention_net} vs {late_net}: {facts}"))
    missing = "needs an attention net and its late-fusion twin trained in one group"
    return Finding(claim, threshold, tuple(judgements), missing)


def attention_twins(part: pd.DataFrame) -> list[tuple[pd.Series, pd.Series]]:
    """(attention net, its late-fusion twin) of a group's trained jobs, each pair built
    with the same config overrides (a suite may give every net finer cells, say)."""
    pairs = []
    for _, alike in part.groupby("config", sort=False):
        nets = alike.set_index("arch")
        pairs += [
            (nets.loc[arch], nets.loc[twin.twin])
            for arch, twin in ((arch, results.relations(arch)) for arch in nets.index)
            if twin.change is Change.ATTENTION and twin.twin in nets.index
        ]
    return pairs


def width_beats_depth(table: pd.DataFrame) -> Finding:
    claim = (
        "Width vs depth: at matched parameters, a wide, shallow residual net is faster per "
        "training step and per image than a thin, deep one, at no loss of accuracy"
    )
    threshold = (
        f"each wide net against the CIFAR ResNet nearest it in parameters (within "
        f"{MATCHED_PARAMS:.0%}): its training step and its inference at the largest batch "
        f"both nets ran faster by more than {TIMING_NOISE:.0%} (the CI gate's threshold), "
        f"and its accuracy no more than {TIE_PTS} points below, each 95% interval clear of "
        f"its margin (a speed-up's from {MIN_ROUNDS_FOR_TEST} or more rounds timed in turn, "
        f"else from the calls and at least +/-{TIMING_NOISE:.0%}); a run that only times "
        "judges the speed"
    )
    ok = table[(table["status"] == Status.OK) & (table["config"] == NO_OVERRIDES)]
    judgements = []
    for group, part in groups(ok):
        jobs = trained_jobs(part).set_index("arch")
        for wide, deep in width_pairs(part):
            checks = [*speed_checks(part, wide, deep), *accuracy_checks(jobs, wide, deep)]
            if not checks:
                continue
            facts = (
                f"{wide} vs {deep}: parameters x{params_of(part, wide) / params_of(part, deep):.2f}"
            )
            if not any(check.what.startswith("accuracy") for check in checks):
                facts += " (accuracy not trained in this group)"
            judgements.append(judge(group, checks, facts))
    nets = results.width_series(ok).drop_duplicates("arch")
    kind = nets["kind"]
    closest = nearest_pair(nets, kind == "wide", kind == "deep", "params", "parameters")
    missing = f"needs a wide net and a CIFAR ResNet within {MATCHED_PARAMS:.0%} of its size"
    missing += closest
    return Finding(claim, threshold, tuple(judgements), missing)


def params_of(rows: pd.DataFrame, arch: str) -> float:
    return float(rows.loc[rows["arch"] == arch, "params"].iloc[0])


def width_pairs(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """(wide net, the deep ResNet nearest it in parameters, within MATCHED_PARAMS)."""
    nets = results.width_series(rows).drop_duplicates("arch").set_index("arch")
    deep = nets[nets["kind"] == "deep"]["params"]
    pairs = []
    for wide, params in nets[nets["kind"] == "wide"]["params"].items():
        distance = (params / deep).map(lambda ratio: abs(math.log(ratio)))
        if len(distance) and distance.min() <= math.log(1 + MATCHED_PARAMS):
            pairs.append((str(wide), str(distance.idxmin())))
    return pairs


def speed_checks(rows: pd.DataFrame, wide: str, deep: str) -> list[Check]:
    """The wide net's speed-up over the deep one per training step and per image, at the
    largest batch both were timed at (of a net's seeds, the row timed in most rounds):
    its interval from speedup, against the timing threshold."""
    checks = []
    for mode, what in ((Mode.TRAIN, "training step"), (Mode.INFER, "inference")):
        timed = rows[(rows["mode"] == mode) & rows["time_median_ms"].notna()]
        kept = timed["time_rounds"].fillna(1) if "time_rounds" in timed else 1
        timed = timed.assign(kept=kept).sort_values(["kept", "seed"], ascending=[False, True])
        first = timed.drop_duplicates(["arch", "batch_size"])
        rows_of = {
            arch: first[first["arch"] == arch].set_index("batch_size") for arch in (wide, deep)
        }
        batches = set(rows_of[wide].index) & set(rows_of[deep].index)
        if not batches:
            continue
        batch = max(batches)
        fast, slow = rows_of[wide].loc[batch], rows_of[deep].loc[batch]
        estimate = speedup(slow, fast)
        how = f"{fast['time_median_ms']:.4g} vs {slow['time_median_ms']:.4g} ms at batch {batch}"
        estimate = replace(estimate, how=f"{how}, {estimate.how}")
        rounds = rounds_to_decide(estimate, TIMING_NOISE)
        retime = f"about {rounds} rounds at the observed spread (run --rounds {rounds})"
        undecided = retime if rounds else RETIME
        checks.append(Check(f"{what} speed-up", estimate, TIMING_NOISE, "%", undecided))
    return checks


def speedup(slow: pd.Series, fast: pd.Series) -> Estimate:
    """How much faster ``fast`` ran than ``slow`` (two rows' timings): over their rounds
    where both kept the medians of the same MIN_ROUNDS_FOR_TEST or more rounds; else over
    their calls, the interval no narrower than the timing noise between processes."""
    slow_rounds, fast_rounds = complete_rounds(slow), complete_rounds(fast)
    if len(slow_rounds) == len(fast_rounds) >= MIN_ROUNDS_FOR_TEST:
        return ratio_of_rounds(slow_rounds, fast_rounds)
    slow_calls, fast_calls = raw_timings(slow, SAMPLES_COLUMN), raw_timings(fast, SAMPLES_COLUMN)
    if slow_calls and fast_calls:
        estimate = ratio_of_medians(slow_calls, fast_calls)
    else:
        value = slow["time_median_ms"] / fast["time_median_ms"] - 1
        estimate = Estimate(value, None, None, "medians only")
    why = f"fewer than {MIN_ROUNDS_FOR_TEST} rounds: at least +/-{TIMING_NOISE:.0%} timing noise"
    return widened(estimate, TIMING_NOISE, why)


def complete_rounds(row: pd.Series) -> list[float]:
    """A row's round medians when it kept one for every round it was timed in (a round
    that failed leaves a gap, after which rounds no longer pair by position)."""
    medians = raw_timings(row, ROUNDS_COLUMN)
    return medians if len(medians) == row.get("time_rounds") else []


def raw_timings(row: pd.Series, column: str) -> list[float]:
    """A row's list of timings from rows.jsonl (none where the table has not got them)."""
    value = row.get(column)
    return list(value) if isinstance(value, (list, tuple)) else []


def accuracy_checks(jobs: pd.DataFrame, wide: str, deep: str) -> list[Check]:
    """The wide net's accuracy against the deep one's, where both trained (``jobs``: the
    group's trained_jobs by arch)."""
    if wide not in jobs.index or deep not in jobs.index:
        return []
    a, b = jobs.loc[wide], jobs.loc[deep]
    estimate = difference(a["values"], b["values"], floor_of(a, b))
    return [Check(f"accuracy, {seeds_text(a)} - {seeds_text(b)}", estimate, -TIE_PTS / 100)]


CHECKS: tuple[Callable[[pd.DataFrame], Finding], ...] = (
    residual_beats_plain,
    dense_matches_residual,
    grouped_at_matched_flops,
    separable_cuts_flops,
    attention_beats_late_fusion,
    width_beats_depth,
)


def check_all(table: pd.DataFrame) -> list[Finding]:
    """Every claim's finding for a run's table, in the order of CHECKS."""
    return [check(table) for check in CHECKS]
