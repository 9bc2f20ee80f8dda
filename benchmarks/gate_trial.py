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

``--part counted`` tries the instruction gate of ``.ci/run`` instead, on commits
made for the trial (on no branch) from HEAD with one change to the CIFAR ResNet's
forward (resnet20, resnet20_grouped and resnet20_dw in the quick suite): 10 passes
of HEAD and 5 of each change, every pass compared with the committed baseline at
the gate's 1%. ``--part ab`` times HEAD against HEAD and against each change
with ``archbench ab`` (resnet20 only, alternating rounds), judged at 10% and 25%:

    python -m benchmarks.gate_trial --part counted --out results/gate-trial-counted-cpu.json
    python -m benchmarks.gate_trial --part ab --out results/gate-trial-ab-cpu.json
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
from benchmarks import ab, compare, runner, script
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
    suite = load_suite("quick").replace(measure=MEASURE, rounds=ROUNDS)
    runner.run_suite(suite, out, device=device, threads=threads)


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


FORWARD = "        return self.head(self.stages(self.stem(x)))\n"  # ResNet.forward's line
CHANGES = {  # each a commit: architectures/resnet.py's FORWARD line, changed
    "plus_2pct_instructions": "        self.stem(x)  # trial: the stem once more\n" + FORWARD,
    "plus_33pct_work": FORWARD.replace("self.stem(x)", "self.stages[0](self.stem(x))"),
    "time_only": '        __import__("time").sleep(0.002)  # trial: waits, counts nothing\n'
    + FORWARD,
}
BASELINE = Path("results/baselines/quick-cpu-instructions")
COUNTED_RUN = ["--measure", "instructions", "--batch-sizes", "1", "--train-batch-size", "0"]
SAME_COMMIT_PASSES, CHANGED_PASSES = 10, 5
AB_ROUNDS, AB_THRESHOLDS = 6, (0.10, 0.25)
AB_SUITE = """\
description = "gate trial: resnet20's timing jobs"
architectures = ["resnet20"]
batch_sizes = [1, 64]
train_batch_size = 32

[timing]
warmup = 3
min_samples = 10
min_time_s = 0.5
max_samples = 200
"""


def commit_with(change: str) -> str:
    """A commit of HEAD with ``CHANGES[change]`` (on no branch; git keeps it a while)."""
    with ab.worktree("HEAD") as tree:
        source = tree / "architectures" / "resnet.py"
        text = source.read_text()
        if FORWARD not in text:
            raise RuntimeError(f"ResNet.forward changed: update gate_trial.FORWARD ({source})")
        source.write_text(text.replace(FORWARD, CHANGES[change], 1))
        author = ["-c", "user.name=gate trial", "-c", "user.email=trial@localhost"]
        ab.git(*author, "commit", "-qam", f"gate trial: {change}", cwd=str(tree))
        return ab.git("rev-parse", "HEAD", cwd=str(tree))


def counted_pass(ref: str, out: Path) -> list[dict[str, Any]]:
    """The instruction gate of .ci/run at ``ref``: its verdicts against the baseline."""
    with ab.worktree(ref) as tree:
        ab.run_side(tree, ["run", *COUNTED_RUN, "--no-plots", "--out", str(out)])
    comparisons = compare.compare(compare.load_side(BASELINE), compare.load_side(out))
    return [
        {"job": c.job, "ratio": round(c.ratio or 0, 6), "verdict": str(c.verdict)}
        for c in comparisons
        if c.metric in compare.INSTRUCTIONS
    ]


def counted_trial(work: Path) -> dict[str, Any]:
    refs = {"same_commit": ab.git("rev-parse", "HEAD")}
    refs.update({change: commit_with(change) for change in CHANGES})
    report: dict[str, Any] = {"baseline": str(BASELINE), "threshold": "1%", "commits": refs}
    for name, ref in refs.items():
        passes = SAME_COMMIT_PASSES if name == "same_commit" else CHANGED_PASSES
        verdicts = []
        for number in range(passes):
            log.info("counted pass %s %d/%d", name, number + 1, passes)
            verdicts.append(counted_pass(ref, work / f"{name}-{number}"))
        report[name] = summarize_counted(verdicts)
    return report


def summarize_counted(passes: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """Per pass: the jobs flagged; over all: each job's ratios' range."""
    ratios: dict[str, list[float]] = {}
    for verdicts in passes:
        for v in verdicts:
            ratios.setdefault(v["job"], []).append(v["ratio"])
    return {
        "regressed_per_pass": [
            [v["job"] for v in verdicts if v["verdict"] == REGRESSED] for verdicts in passes
        ],
        "ratio_range_per_job": {job: [min(r), max(r)] for job, r in ratios.items()},
    }


def ab_trial(work: Path) -> dict[str, Any]:
    suite = work / "ab-suite.toml"
    suite.write_text(AB_SUITE)
    head = ab.git("rev-parse", "HEAD")
    timed = [name for name in CHANGES if name != "plus_2pct_instructions"]  # 1.4%: below timing's
    refs = {"same_commit": head, **{change: commit_with(change) for change in timed}}
    report: dict[str, Any] = {"rounds": AB_ROUNDS, "suite": AB_SUITE, "commits": refs}
    for name, ref in refs.items():
        runs = []
        for number in range(CHANGED_PASSES):
            log.info("A/B %s %d/%d", name, number + 1, CHANGED_PASSES)
            side_a, side_b = ab.ab(
                (head, ref),
                work / f"ab-{name}-{number}",
                suite=str(suite),
                rounds=AB_ROUNDS,
                run_args=["--threads", "1"],
            )
            runs.append({
                f"{threshold:.0%}": timing_verdicts(
                    side_a, side_b, compare.Settings(default_threshold=threshold)
                )
                for threshold in AB_THRESHOLDS
            })  # fmt: skip
        report[name] = runs
    return report


def main(argv: list[str] | None = None) -> int:
    parser = script.parser(__doc__)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--part", choices=("timing", "counted", "ab"), default="timing")
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
        if args.part == "counted":
            report = counted_trial(Path(work))
        elif args.part == "ab":
            report = ab_trial(Path(work))
        else:
            report = trial(args.pairs, Path(work), args.device, args.threads)
    log.info("%s", json.dumps(report, indent=2))
    script.write_report(args, device, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
