"""Each claim judged on tables built to make it hold, fail, stay inconclusive and go
unmeasured; every group judged; the defects the verdicts issue found, each a test."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import architectures
from benchmarks import findings, noise, results
from benchmarks.measure import flops
from benchmarks.measure.params import count_parameters
from benchmarks.schema import ROUNDS_COLUMN, SAMPLES_COLUMN

from helpers import README, REPO, SPREAD, result_row, seeded_net

HELD, NOT_HELD, INCONCLUSIVE = findings.HELD, findings.NOT_HELD, findings.INCONCLUSIVE
net = seeded_net


def table(*nets: list[dict]) -> pd.DataFrame:
    return results.to_frame([row for rows in nets for row in rows], samples=True)


def verdict(finding: findings.Finding) -> findings.Verdict:
    """The verdict of a finding judged in one group."""
    if not finding.judgements:
        return findings.NOT_MEASURED
    (judgement,) = finding.judgements
    return judgement.verdict


def evidence(finding: findings.Finding) -> str:
    return " ".join(judgement.evidence for judgement in finding.judgements) or finding.missing


def depth_nets(plain20: float, plain56: float, resnet56: float, **changes) -> list[list[dict]]:
    return [
        net("plain20", "plain", plain20, **changes),
        net("plain56", "plain", plain56, **changes),
        net("resnet56", "resnet", resnet56, **changes),
    ]


@pytest.mark.parametrize(
    ("accuracies", "expected"),
    [
        ((0.91, 0.88, 0.93), HELD),
        ((0.91, 0.92, 0.93), NOT_HELD),  # the deep plain net did not degrade
        ((0.91, 0.88, 0.875), NOT_HELD),  # the residual net did not rescue it
        ((0.91, 0.905, 0.93), INCONCLUSIVE),  # 0.5 points: the interval spans the tie margin
    ],
)
def test_residual_beats_plain(accuracies, expected):
    finding = findings.residual_beats_plain(table(*depth_nets(*accuracies)))
    assert verdict(finding) == expected
    assert "plain20 91.0% (3 seeds)" in evidence(finding) and "Welch, 3 vs 3 seeds" in evidence(
        finding
    )
    assert finding.headline.startswith("held in 1 of 1" if expected is HELD else "held in 0")


def test_residual_claim_is_not_measured_without_two_depths():
    finding = findings.residual_beats_plain(table(net("plain20", "plain", 0.9)))
    assert verdict(finding) == findings.NOT_MEASURED and finding.headline == "not measured"
    assert "two depths" in finding.missing and finding.threshold


def test_one_seed_and_a_small_gap_is_inconclusive_and_says_what_would_decide():
    """Defect: one seed each and a 0.6-point gap used to give held. Without a noise floor
    there is no interval; with one, the gap must clear it."""
    one_seed = table(*depth_nets(0.916, 0.910, 0.930, seeds=(0.0,)))
    finding = findings.residual_beats_plain(one_seed)
    assert verdict(finding) == INCONCLUSIVE
    assert "no noise floor" in finding.judgements[0].evidence
    assert "two or more seeds a side" in finding.judgements[0].to_decide


def test_a_noise_floor_decides_one_seed_rows(monkeypatch):
    rows = table(*depth_nets(0.93, 0.88, 0.95, seeds=(0.0,)))
    trained = rows[rows["mode"] == "train"].iloc[0].to_dict()
    floor = noise.Floor("mnist5k", noise.recipe(trained), {"test_acc": 0.003}, "plain20",
                        (0.9,) * 5, "test", "none")  # fmt: skip
    monkeypatch.setattr(noise, "floors", lambda: (floor,))
    finding = findings.residual_beats_plain(rows)
    assert verdict(finding) == HELD and "noise floor 0.30 points, 1 vs 1 seeds" in evidence(finding)
    close = table(*depth_nets(0.916, 0.910, 0.95, seeds=(0.0,)))
    judgement = findings.residual_beats_plain(close).judgements[0]
    assert judgement.verdict == INCONCLUSIVE and "seeds a side at the observed spread" in (
        judgement.to_decide
    )


def test_rows_under_two_backend_settings_are_two_groups_and_no_crash():
    """Defect: findings crashed when a run trained the same nets eager and compiled."""
    rows = table(*depth_nets(0.91, 0.88, 0.93), *depth_nets(0.91, 0.88, 0.93, compile=True))
    finding = findings.residual_beats_plain(rows)
    assert [j.verdict for j in finding.judgements] == [HELD, HELD]
    assert [j.group for j in finding.judgements] == [
        "mnist5k, cpu, fp32",
        "mnist5k, cpu, fp32, compile",
    ]
    assert finding.headline == "held in 2 of 2 groups"
    for check in findings.CHECKS:
        check(rows)  # none raises


def test_every_data_set_is_judged_whatever_the_row_order():
    """Defect: only the first group was judged, so row order flipped the verdict."""
    cifar10 = depth_nets(0.91, 0.88, 0.93, dataset="cifar10")
    cifar100 = depth_nets(0.61, 0.66, 0.67, dataset="cifar100")
    forward = findings.residual_beats_plain(table(*cifar10, *cifar100))
    backward = findings.residual_beats_plain(table(*cifar100, *cifar10))
    assert sorted((j.group, j.verdict) for j in forward.judgements) == [
        ("cifar10, cpu, fp32", HELD), ("cifar100, cpu, fp32", NOT_HELD)
    ]  # fmt: skip
    assert sorted(forward.judgements, key=str) == sorted(backward.judgements, key=str)
    assert forward.headline == "held in 1 of 2 groups (not held in 1)"


def test_a_row_cut_short_by_a_time_cap_is_never_compared_with_one_that_was_not():
    rows = table(
        net("plain20", "plain", 0.91),
        net("plain56", "plain", 0.88, budget_cut=True),
        net("resnet56", "resnet", 0.93),
    )
    assert findings.residual_beats_plain(rows).judgements == ()
    all_cut = table(*depth_nets(0.91, 0.88, 0.93, budget_cut=True))
    (judgement,) = findings.residual_beats_plain(all_cut).judgements
    assert judgement.group.endswith("training cut short by a time cap")


@pytest.mark.parametrize(
    ("dense_acc", "dense_params", "expected"),
    [
        (0.925, 90_000, HELD),  # within a point of the smallest resnet, with fewer parameters
        (0.90, 90_000, NOT_HELD),  # 3 points short
        (0.95, 900_000, findings.NOT_MEASURED),  # more parameters than every resnet
    ],
)
def test_dense_matches_residual(dense_acc, dense_params, expected):
    rows = table(
        net("resnet20", "resnet", 0.93, params=270_000),
        net("densenet40_k12", "densenet", dense_acc, params=dense_params),
    )
    assert verdict(findings.dense_matches_residual(rows)) == expected


def test_dense_is_compared_with_the_residual_frontier_not_the_weakest_larger_resnet():
    """Defect: DenseNet 60.5% beat resnet110's 60.0% (held) while resnet20 and resnet56,
    with fewer parameters, reached 92% and 91%."""
    rows = table(
        net("resnet20", "resnet", 0.92, params=270_000),
        net("resnet56", "resnet", 0.91, params=850_000),
        net("resnet110", "resnet", 0.60, params=1_700_000),
        net("densenet40_k12", "densenet", 0.605, params=1_000_000),
    )
    finding = findings.dense_matches_residual(rows)
    assert verdict(finding) == NOT_HELD and "92.0%" in evidence(finding)


def test_the_frontier_interpolates_on_log_parameters():
    resnets = pd.DataFrame(
        {"name": ["a", "b"], "params": [100.0, 10_000.0], "acc": [0.80, 0.90],
         "values": [[0.80, 0.80], [0.90, 0.90]]}
    )  # fmt: skip
    frontier = findings.residual_frontier(resnets, 1_000.0)  # halfway in log parameters
    assert frontier is not None and frontier.values == pytest.approx([0.85, 0.85])
    assert findings.residual_frontier(resnets, 50.0).values == [0.80, 0.80]
    assert findings.residual_frontier(resnets, 20_000.0) is None


@pytest.mark.parametrize(
    ("grouped_acc", "grouped_flops", "expected"),
    [
        (0.92, 21_000_000, HELD),
        (0.90, 21_000_000, NOT_HELD),
        (0.95, 5_000_000, findings.NOT_MEASURED),  # a quarter of the FLOPs: not matched
    ],
)
def test_grouped_at_matched_flops(grouped_acc, grouped_flops, expected):
    rows = table(
        net("resnet20", "resnet", 0.92, flops=20_000_000),
        net("resnext_tiny", "grouped", grouped_acc, flops=grouped_flops),
    )
    finding = findings.grouped_at_matched_flops(rows)
    assert verdict(finding) == expected
    if expected == findings.NOT_MEASURED:
        assert "0.25x the FLOPs of resnet20" in finding.missing


def test_grouped_is_compared_with_the_most_accurate_matched_ungrouped_net():
    rows = table(
        net("plain20", "plain", 0.80, flops=19_000_000),
        net("resnet20", "resnet", 0.95, flops=22_000_000),
        net("resnext_tiny", "grouped", 0.92, flops=20_000_000),
    )
    finding = findings.grouped_at_matched_flops(rows)
    assert verdict(finding) == NOT_HELD and "vs resnet20 95.0%" in evidence(finding)


def measured_costs(name: str) -> dict:
    model = architectures.create(name, in_channels=1)
    macs = flops.count_macs(model, (torch.randn(1, 1, 32, 32),))
    return {"macs": macs, "flops": 2 * macs, "params": count_parameters(model).total}


@pytest.mark.parametrize(("twin_latency", "expected"), [(1.4, HELD), (0.4, NOT_HELD)])
def test_separable_twin_against_the_predicted_factor(twin_latency, expected):
    rows = table(
        net("resnet20", "resnet", 0.92, time_median_ms=2.0, **measured_costs("resnet20")),
        net(
            "resnet20_dw", "separable", 0.90, time_median_ms=twin_latency,
            **measured_costs("resnet20_dw"),
        ),
    )  # fmt: skip
    finding = findings.separable_cuts_flops(rows)
    assert verdict(finding) == expected
    assert "(predicted x0.151)" in evidence(finding)
    assert "accuracy 90.0% vs 92.0%: -2.0 points [" in evidence(finding)


def test_separable_cost_comes_from_training_on_another_data_set():
    """As in gpu_validate: latency timed on synthetic inputs, accuracy trained on CIFAR-10."""
    timed = [
        net(name, family, None, dataset="synthetic", **measured_costs(name))
        for name, family in (("resnet20", "resnet"), ("resnet20_dw", "separable"))
    ]
    trained = [
        [row for row in net(name, family, acc, dataset="cifar10") if row["mode"] == "train"]
        for name, family, acc in (("resnet20", "resnet", 0.91), ("resnet20_dw", "separable", 0.88))
    ]
    finding = findings.separable_cuts_flops(table(*timed, *trained))
    assert "accuracy on cifar10 88.0% vs 91.0%: -3.0 points" in evidence(finding)


def test_separable_twin_with_the_wrong_costs_is_not_held():
    rows = table(
        net("resnet20", "resnet", 0.92, **measured_costs("resnet20")),
        net("resnet20_dw", "separable", 0.92, time_median_ms=1.9, macs=20_000_000,
            params=135_000),
    )  # fmt: skip
    assert verdict(findings.separable_cuts_flops(rows)) == NOT_HELD


def test_a_flop_counter_wrong_on_separable_layers_fails_the_separable_check(monkeypatch):
    """Defect: the prediction came from the same counter as the measurement, so a counter
    10% wrong on the separable layers passed. The prediction now uses layer shapes only."""
    aten = torch.ops.aten

    def off_by_a_tenth(input_shape, weight_shape, *args, out_shape, **kwargs) -> int:
        counted = 2 * math.prod(out_shape) * math.prod(weight_shape[1:])
        separable = weight_shape[1] == 1 or weight_shape[2:] == (1, 1)  # depthwise, pointwise
        return int(1.1 * counted) if separable else counted

    wrong = {**flops.CORRECTED_FORMULAS, aten.convolution: off_by_a_tenth}
    monkeypatch.setattr(
        flops, "flop_counter", lambda: FlopCounterMode(display=False, custom_mapping=wrong)
    )
    rows = table(
        net("resnet20", "resnet", None, time_median_ms=2.0, **measured_costs("resnet20")),
        net("resnet20_dw", "separable", None, time_median_ms=1.4, **measured_costs("resnet20_dw")),
    )
    finding = findings.separable_cuts_flops(rows)
    assert verdict(finding) == NOT_HELD and "(predicted x0.151)" in evidence(finding)


def test_layer_costs_from_shapes_alone():
    """Hand-worked: a stride-2 3x3 conv, a depthwise 3x3, a pointwise 1x1, a linear layer."""
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),  # 8x16x16 out
        torch.nn.Conv2d(8, 8, 3, padding=1, groups=8),  # depthwise
        torch.nn.Conv2d(8, 4, 1),  # pointwise
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 16 * 16, 10),
    )
    costs = flops.layer_costs(model, (torch.randn(1, 3, 32, 32),))
    assert [cost.macs for cost in costs.values()] == [
        8 * 16 * 16 * 3 * 9, 8 * 16 * 16 * 9, 4 * 16 * 16 * 8, 10 * 1024
    ]  # fmt: skip
    assert [cost.weights for cost in costs.values()] == [8 * 3 * 9, 8 * 9, 4 * 8, 10 * 1024]


def fusion(arch: str, rel: float, nonrel: float, config: str = "{}") -> list[dict]:
    rows = net(arch, "fusion", (rel + nonrel) / 2, dataset="sort_of_clevr", config=config)
    for row, offset in zip(rows[2:], SPREAD, strict=True):
        row.update(test_acc_rel=rel + offset, test_acc_nonrel=nonrel + offset, floor_rel=0.70,
                   floor_nonrel=0.55)  # fmt: skip
    return rows


@pytest.mark.parametrize(
    ("xattn", "expected"),
    [
        ((0.92, 0.97), HELD),
        ((0.73, 0.97), NOT_HELD),  # no better than concat on relational questions
        ((0.80, 0.58), NOT_HELD),  # at the non-relational floor
    ],
)
def test_attention_beats_late_fusion_and_the_floors(xattn, expected):
    rows = table(fusion("fusion_concat", 0.72, 0.95), fusion("fusion_xattn", *xattn))
    finding = findings.attention_beats_late_fusion(rows)
    assert verdict(finding) == expected and "floor 70.0%" in evidence(finding)


def test_two_attention_nets_are_two_comparisons_in_one_group():
    rows = table(
        fusion("fusion_concat", 0.72, 0.95),
        fusion("fusion_xattn", 0.92, 0.97),
        fusion("fusion_san", 0.73, 0.97),
    )
    finding = findings.attention_beats_late_fusion(rows)
    assert finding.headline == "held in 1 of 2 comparisons (not held in 1)"


def test_an_attention_net_meets_its_twin_under_the_same_overrides():
    """A suite that gives every net the same config (finer cells) still compares them;
    a twin built otherwise is not this net's twin."""
    cells = '{"strides": [2, 2, 1, 1]}'
    rows = table(
        fusion("fusion_concat", 0.72, 0.95, config=cells),
        fusion("fusion_xattn", 0.92, 0.97, config=cells),
        fusion("fusion_concat", 0.90, 0.95),  # no overrides: another net
    )
    finding = findings.attention_beats_late_fusion(rows)
    assert verdict(finding) == HELD
    assert "fusion_xattn (strides=[2, 2, 1, 1]) vs fusion_concat (strides=[2, 2, 1, 1])" in (
        evidence(finding)
    )


def test_every_claim_is_unmeasured_in_an_empty_run():
    verdicts = [verdict(finding) for finding in findings.check_all(results.to_frame([]))]
    assert verdicts == [findings.NOT_MEASURED] * len(findings.CHECKS)


def test_old_rows_without_the_new_columns_are_judged():
    """Runs from before budget_cut and the validation split still get verdicts."""
    rows = [
        {key: value for key, value in row.items() if key != "budget_cut"}
        for nets in depth_nets(0.91, 0.88, 0.93)
        for row in nets
    ]
    assert "budget_cut" not in result_row("plain20", "plain")
    assert verdict(findings.residual_beats_plain(results.to_frame(rows))) == HELD


def calls(ms: float, spread: float = 0.02, count: int = 20) -> list[float]:
    """``count`` timed calls spread evenly over ``ms`` +/- ``spread``, median ``ms``."""
    return [ms * (1 + spread * (2 * i / (count - 1) - 1)) for i in range(count)]


def timed(ms: float, spread: float = 0.02) -> dict:
    return {"time_median_ms": ms, SAMPLES_COLUMN: calls(ms, spread)}


def width_nets(wide_ms: float, wide_acc: float | None = 0.92, spread=0.02, **deep):
    """wrn16_2 against resnet44 (its nearest in parameters) and resnet20 (too small),
    each timing as 20 calls within ``spread`` of its median."""
    return table(
        net("resnet20", "resnet", 0.90, params=269_722, **timed(5.0, spread)),
        net("resnet44", "resnet", 0.92, params=658_586, **timed(10.0, spread), **deep),
        net("wrn16_2", "wide", wide_acc, params=691_674, **timed(wide_ms, spread)),
    )


@pytest.mark.parametrize(
    ("wide_ms", "wide_acc", "spread", "expected"),
    [
        (6.0, 0.92, 0.02, HELD),  # 40% less time a step and an image, as accurate
        (13.0, 0.92, 0.02, NOT_HELD),  # slower
        (6.0, 0.90, 0.02, NOT_HELD),  # faster, but 2 points less accurate
        (9.7, 0.92, 0.02, INCONCLUSIVE),  # 3% faster: one round, +/-10% between processes
        (9.0, 0.92, 0.15, INCONCLUSIVE),  # 11% faster, the calls 15% apart
    ],
)
def test_width_beats_depth_at_matched_parameters(wide_ms, wide_acc, spread, expected):
    finding = findings.width_beats_depth(width_nets(wide_ms, wide_acc, spread))
    assert verdict(finding) == expected
    assert "wrn16_2" in evidence(finding) and "resnet44" in evidence(finding)
    assert "resnet20 " not in evidence(finding)  # 61% off in parameters: not a match
    assert "20 vs 20 calls" in evidence(finding)
    if expected is INCONCLUSIVE:
        assert "more rounds" in finding.judgements[0].to_decide


def in_rounds(rows: pd.DataFrame, medians: dict[str, list[float]], kept: int = 4) -> pd.DataFrame:
    """``rows`` timed in 4 rounds, each net's round medians from ``medians`` (``kept``:
    how many of them its rows kept)."""
    rounds = [medians.get(arch, [5.0] * 4)[:kept] for arch in rows["arch"]]
    return rows.assign(**{ROUNDS_COLUMN: rounds, "time_rounds": 4})


def test_a_speed_up_timed_in_rounds_is_judged_on_the_rounds():
    """Calls of one round each overlap (a burst of load in one job); four rounds, each
    pairing the two nets timed close together, decide: 5% faster, not 10%."""
    medians = {"wrn16_2": [9.5, 9.6, 9.4, 9.5], "resnet44": [10.0, 10.1, 9.9, 10.0]}
    finding = findings.width_beats_depth(in_rounds(width_nets(9.5, spread=0.3), medians))
    assert verdict(finding) == NOT_HELD
    assert "4 rounds, paired" in evidence(finding) and "+5.3% [" in evidence(finding)
    spread = {"wrn16_2": [9.0, 8.3, 9.1, 8.2], "resnet44": [10.0, 10.1, 9.9, 10.0]}
    wide = findings.width_beats_depth(in_rounds(width_nets(8.6, spread=0.3), spread))
    assert verdict(wide) == INCONCLUSIVE  # +15% with rounds 10% apart
    assert "about 8 rounds at the observed spread" in wide.judgements[0].to_decide
    three = in_rounds(width_nets(9.5, spread=0.3), medians, kept=3)  # a round failed
    assert "20 vs 20 calls, fewer than 4 rounds" in evidence(findings.width_beats_depth(three))


def test_of_a_nets_seeds_the_row_timed_in_rounds_is_compared():
    rows = in_rounds(width_nets(9.5), {"wrn16_2": [9.0] * 4, "resnet44": [10.0] * 4})
    rows.loc[(rows["mode"] == "train") & (rows["seed"] != 2), "time_rounds"] = 1
    finding = findings.width_beats_depth(rows)  # seed 2's step: 4 rounds; 0 and 1: one
    assert "4 rounds, paired" in finding.judgements[0].evidence.split("inference")[0]


def test_a_speed_up_without_raw_timings_takes_the_timing_noise():
    """results.csv alone (no rows.jsonl) has medians but no calls: +/-10% decides the
    clear cases only."""
    finding = findings.width_beats_depth(width_nets(6.0).drop(columns=[SAMPLES_COLUMN]))
    assert verdict(finding) == HELD and "medians only, fewer than 4 rounds" in evidence(finding)
    close = findings.width_beats_depth(width_nets(8.5).drop(columns=[SAMPLES_COLUMN]))
    assert verdict(close) == INCONCLUSIVE  # 18% faster: [+7, +29]


def test_width_efficiency_is_judged_on_a_run_that_only_times():
    rows = width_nets(6.0, wide_acc=None)
    rows = rows[rows["arch"] != "resnet44"]
    rows = pd.concat([rows, table(net("resnet44", "resnet", None, params=658_586,
                                      **timed(10.0)))])  # fmt: skip
    finding = findings.width_beats_depth(rows)
    assert verdict(finding) == HELD
    assert "accuracy not trained" in evidence(finding)


def test_width_is_not_measured_without_a_parameter_matched_pair():
    rows = table(
        net("resnet20", "resnet", 0.90, params=269_722),
        net("wrn16_4", "wide", 0.93, params=2_748_890),
    )
    finding = findings.width_beats_depth(rows)
    assert verdict(finding) == findings.NOT_MEASURED
    assert "closest: wrn16_4 at 10.19x the parameters of resnet20" in finding.missing


def test_the_readme_claims_table_gives_the_committed_claims_runs_verdicts():
    """The README's claims table is written by hand from results/claims-cpu: each row's
    verdict must be the one the findings give that run now."""
    run = results.load_run(REPO / "results" / "claims-cpu")
    judged = [str(verdict(finding)) for finding in findings.check_all(run.table)]
    verdict_cell = r"\**(not held|held|inconclusive|not measured)\**[ |]"
    rows = re.findall(r"^\| (\d)\. [^|]+\| " + verdict_cell, README.read_text(), re.M)
    assert [int(number) for number, _ in rows] == list(range(1, len(judged) + 1))
    assert [cell for _, cell in rows] == judged
