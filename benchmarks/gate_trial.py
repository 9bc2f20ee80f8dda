"""How trustworthy is ``archbench compare`` as a CI gate on this machine?

- False alarms: pairs of efficiency passes of the quick suite from the same
  commit, each compared with its partner: no timing may be ``regressed``.
- Detection: passes in which resnet20 does about a third more work (its first
  stage applied twice; stages have equal MACs at 32x32), each compared with
  an unchanged pass: resnet20's times must be ``regressed``.

Each pass runs in its own process, as the gate's ``archbench run --measure
flops,time,memory --rounds 2`` does; the comparisons use compare's defaults (10%,
Mann-Whitney p < 0.05), a 2x gate with and without ``--normalize``, and the
CI gate's settings (``--normalize``, 3x).

    python -m benchmarks.gate_trial --pairs 5 --out results/gate-trial-cpu.json
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

import architectures
from benchmarks import compare, runner, script
from benchmarks.suites import load_suite

log = logging.getLogger(__name__)
SLOWED = "resnet20"
ROUNDS = 2  # as in .ci/run
MEASURE = ("flops", "time", "memory")  # as in .ci/run: no training
REGRESSED = str(compare.Verdict.REGRESSED)
SETTINGS = {
    "default": compare.Settings(),
    "gate_2x": compare.Settings(default_threshold=1.0, normalize=True),
    "gate_2x_without_normalize": compare.Settings(default_threshold=1.0),
    "ci_gate_3x": compare.Settings(default_threshold=2.0, normalize=True),
}


def slowed_create(create: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """``architectures.create`` whose resnet20 applies its first stage twice."""

    def forward(self: Any, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stages[0](self.stem(x))))

    def wrapped(name: str, **config: Any) -> nn.Module:
        model = create(name, **config)
        if name == SLOWED:
            model.forward = types.MethodType(forward, model)
        return model

    return wrapped


def one_pass(out: Path, device: torch.device, threads: int) -> None:
    """The gate's efficiency pass of the quick suite into ``out``, in this process."""
    suite = load_suite("quick").replace(measure=MEASURE)
    runner.run_suite(suite, out, device=device, threads=threads, rounds=ROUNDS)


def efficiency_pass(out: Path, slow: bool, device: str, threads: int) -> Path:
    """One pass in a fresh process; returns its run directory."""
    command = [sys.executable, "-m", "benchmarks.gate_trial", "--one-pass", str(out)]
    command += ["--device", device, "--threads", str(threads), *(["--slow"] if slow else [])]
    subprocess.run(command, check=True, capture_output=True)
    return out


def timing_verdicts(base: Path, current: Path, settings: compare.Settings) -> list[dict[str, Any]]:
    comparisons = compare.compare(compare.load_side(base), compare.load_side(current), settings)
    return [
        {"job": c.job, "ratio": round(c.ratio or 0, 3), "verdict": str(c.verdict), "note": c.note}
        for c in comparisons
        if c.metric in compare.TIMES
    ]


def is_slowed(verdict: dict[str, Any]) -> bool:
    return str(verdict["job"]).startswith(f"{SLOWED} ")


def trial(pairs: int, work: Path, device: str, threads: int) -> dict[str, Any]:
    def one(name: str, slow: bool) -> Path:
        return efficiency_pass(work / name, slow, device, threads)

    passes = [one(f"same-{i}", slow=False) for i in range(2 * pairs)]
    slowed = [one(f"slow-{i}", slow=True) for i in range(pairs)]
    report: dict[str, Any] = {"pairs": pairs, "slowed_arch": SLOWED}
    for name, settings in SETTINGS.items():
        same = [timing_verdicts(passes[2 * i], passes[2 * i + 1], settings) for i in range(pairs)]
        detect = [timing_verdicts(passes[2 * i], slowed[i], settings) for i in range(pairs)]
        report[name] = {
            "false_alarms": [sum(v["verdict"] == REGRESSED for v in pair) for pair in same],
            "timings_compared_per_pair": len(same[0]),
            "slowed_detected": [[v for v in pair if is_slowed(v)] for pair in detect],
            "other_regressions_in_slowed_pairs": [
                [v for v in pair if v["verdict"] == REGRESSED and not is_slowed(v)]
                for pair in detect
            ],
        }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = script.parser(__doc__)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--one-pass", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--slow", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    device = script.start(args)
    if args.one_pass:
        if args.slow:
            architectures.create = slowed_create(architectures.create)
        one_pass(args.one_pass, device, args.threads)
        return 0
    with tempfile.TemporaryDirectory() as work:
        report = trial(args.pairs, Path(work), args.device, args.threads)
    log.info("%s", json.dumps(report, indent=2))
    script.write_report(args, device, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
