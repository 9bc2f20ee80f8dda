"""Each claim's check on tables built to make it hold, fail, and go unmeasured."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

import architectures
from benchmarks import findings, results
from benchmarks.measure.flops import count_macs
from benchmarks.measure.params import count_parameters

from helpers import measured_net


def table(*nets: list[dict]) -> pd.DataFrame:
    return results.to_frame([row for net in nets for row in net])


def depth_nets(plain20: float, plain56: float, resnet56: float) -> pd.DataFrame:
    return table(
        measured_net("plain20", "plain", plain20),
        measured_net("plain56", "plain", plain56),
        measured_net("resnet56", "resnet", resnet56),
    )


@pytest.mark.parametrize(
    ("accuracies", "verdict"),
    [
        ((0.91, 0.88, 0.93), findings.HELD),
        ((0.91, 0.92, 0.93), findings.NOT_HELD),  # the deep plain net did not degrade
        ((0.91, 0.88, 0.881), findings.NOT_HELD),  # the residual net did not rescue it
    ],
)
def test_residual_beats_plain(accuracies, verdict):
    finding = findings.residual_beats_plain(depth_nets(*accuracies))
    assert finding.verdict == verdict
    assert "plain20 91.0%" in finding.evidence and "resnet56" in finding.evidence


def test_residual_claim_is_not_measured_without_two_depths():
    finding = findings.residual_beats_plain(table(measured_net("plain20", "plain", 0.9)))
    assert finding.verdict == findings.NOT_MEASURED and finding.threshold


@pytest.mark.parametrize(
    ("dense_acc", "dense_params", "verdict"),
    [
        (0.925, 90_000, findings.HELD),  # within a point, fewer parameters
        (0.90, 90_000, findings.NOT_HELD),  # 2 points short
        (0.95, 300_000, findings.NOT_MEASURED),  # more parameters than every resnet
    ],
)
def test_dense_matches_residual(dense_acc, dense_params, verdict):
    rows = table(
        measured_net("resnet20", "resnet", 0.93, params=270_000),
        measured_net("densenet40_k12", "densenet", dense_acc, params=dense_params),
    )
    assert findings.dense_matches_residual(rows).verdict == verdict


@pytest.mark.parametrize(
    ("grouped_acc", "grouped_flops", "verdict"),
    [
        (0.92, 21_000_000, findings.HELD),
        (0.90, 21_000_000, findings.NOT_HELD),
        (0.95, 5_000_000, findings.NOT_MEASURED),  # a quarter of the FLOPs: not matched
    ],
)
def test_grouped_at_matched_flops(grouped_acc, grouped_flops, verdict):
    rows = table(
        measured_net("resnet20", "resnet", 0.92, flops=20_000_000),
        measured_net("resnext_tiny", "grouped", grouped_acc, flops=grouped_flops),
    )
    finding = findings.grouped_at_matched_flops(rows)
    assert finding.verdict == verdict
    if verdict == findings.NOT_MEASURED:
        assert "0.25x the FLOPs of resnet20" in finding.evidence


def measured_costs(name: str) -> dict:
    model = architectures.create(name, in_channels=1)
    macs = count_macs(model, (torch.randn(1, 1, 32, 32),))
    return {"macs": macs, "flops": 2 * macs, "params": count_parameters(model).total}


@pytest.mark.parametrize(
    ("twin_latency", "verdict"), [(1.4, findings.HELD), (0.4, findings.NOT_HELD)]
)
def test_separable_twin_against_the_predicted_factor(twin_latency, verdict):
    rows = table(
        measured_net("resnet20", "resnet", 0.92, time_median_ms=2.0, **measured_costs("resnet20")),
        measured_net(
            "resnet20_dw", "separable", 0.90, time_median_ms=twin_latency,
            **measured_costs("resnet20_dw"),
        ),
    )  # fmt: skip
    finding = findings.separable_cuts_flops(rows)
    assert finding.verdict == verdict
    assert "(predicted x0.151)" in finding.evidence and "-2.0 points" in finding.evidence


def test_separable_cost_comes_from_training_on_another_data_set():
    """As in gpu_validate: latency timed on synthetic inputs, accuracy trained on CIFAR-10."""
    timed = [
        measured_net(name, family, None, dataset="synthetic", **measured_costs(name))
        for name, family in (("resnet20", "resnet"), ("resnet20_dw", "separable"))
    ]
    trained = [
        [
            row
            for row in measured_net(name, family, acc, dataset="cifar10")
            if row["mode"] == "train"
        ]
        for name, family, acc in (("resnet20", "resnet", 0.91), ("resnet20_dw", "separable", 0.88))
    ]
    finding = findings.separable_cuts_flops(table(*timed, *trained))
    assert "accuracy 88.0% vs 91.0% (-3.0 points, on cifar10)" in finding.evidence


def test_separable_twin_with_the_wrong_costs_is_not_held():
    rows = table(
        measured_net("resnet20", "resnet", 0.92, **measured_costs("resnet20")),
        measured_net("resnet20_dw", "separable", 0.92, time_median_ms=1.9, macs=20_000_000,
                     params=135_000),
    )  # fmt: skip
    assert findings.separable_cuts_flops(rows).verdict == findings.NOT_HELD


def fusion(arch: str, rel: float, nonrel: float) -> list[dict]:
    rows = measured_net(arch, "fusion", (rel + nonrel) / 2, dataset="sort_of_clevr")
    rows[-1].update(test_acc_rel=rel, test_acc_nonrel=nonrel, floor_rel=0.70, floor_nonrel=0.55)
    return rows


@pytest.mark.parametrize(
    ("xattn", "verdict"),
    [
        ((0.92, 0.97), findings.HELD),
        ((0.73, 0.97), findings.NOT_HELD),  # no better than concat on relational questions
        ((0.80, 0.58), findings.NOT_HELD),  # at the non-relational floor
    ],
)
def test_attention_beats_late_fusion_and_the_floors(xattn, verdict):
    rows = table(fusion("fusion_concat", 0.72, 0.95), fusion("fusion_xattn", *xattn))
    finding = findings.attention_beats_late_fusion(rows)
    assert finding.verdict == verdict and "floor 70.0%" in finding.evidence


def test_every_claim_is_unmeasured_in_an_empty_run():
    verdicts = [finding.verdict for finding in findings.check_all(results.to_frame([]))]
    assert verdicts == [findings.NOT_MEASURED] * len(findings.CHECKS)
