"""Batch-1 latency on several threads and on one, alternating in rounds in one process.

On a machine whose CPUs can interfere with each other (a virtual machine on a shared
host), a batch-1 call on several threads can run at one of two levels from round to round
(README, "Batch-1 latency on this machine"). Each round times the call on ``--threads``
threads and on one, the order reversed every other round, and records each timing's
median with the voluntary context switches and minor page faults of the whole process
meanwhile: a slow level that comes with switches is a worker thread sleeping, one with
faults is the allocator, one with neither is the CPUs themselves.

    python -m benchmarks.thread_levels --threads 2 --out results/thread-levels-cpu.json
"""

from __future__ import annotations

import logging
import resource
import statistics
from collections.abc import Callable

import torch

import architectures
from benchmarks import script
from benchmarks.measure.latency import TimingConfig, inference_call, time_calls

log = logging.getLogger(__name__)
ARCHITECTURES = ("resnet44", "wrn16_2")
CPU = torch.device("cpu")


def timed(call: Callable[[], object], threads: int, config: TimingConfig) -> dict:
    """One timing of ``call`` on ``threads`` threads: its median, and the process's
    voluntary context switches and minor page faults while it ran."""
    torch.set_num_threads(threads)
    before = resource.getrusage(resource.RUSAGE_SELF)
    median = time_calls(call, CPU, config).median
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "threads": threads,
        "median_ms": median * 1e3,
        "voluntary_switches": after.ru_nvcsw - before.ru_nvcsw,
        "minor_faults": after.ru_minflt - before.ru_minflt,
    }


def measure(name: str, threads: int, rounds: int, min_time_s: float) -> dict:
    """``name`` at batch 1 on ``threads`` threads and on one, in alternating rounds."""
    torch.manual_seed(0)
    call = inference_call(
        architectures.create(name), architectures.spec(name).example_inputs(1), CPU, "fp32"
    )
    config = TimingConfig(warmup=3, min_samples=10, max_samples=10_000, min_time_s=min_time_s)
    order = (threads, 1)
    timings = []
    for number in range(rounds):
        for count in order if number % 2 == 0 else order[::-1]:
            timings.append({"round": number + 1, **timed(call, count, config)})
    torch.set_num_threads(threads)
    return {"arch": name, "rounds": rounds, "timings": timings, "summary": summary(timings)}


def summary(timings: list[dict]) -> dict[str, dict[str, float]]:
    """Per thread count: the median, fastest and slowest of the rounds' medians."""
    result = {}
    for count in sorted({t["threads"] for t in timings}, reverse=True):
        medians = [t["median_ms"] for t in timings if t["threads"] == count]
        result[f"{count} threads"] = {
            "median_ms": statistics.median(medians),
            "fastest_ms": min(medians),
            "slowest_ms": max(medians),
            "slowest_over_fastest": max(medians) / min(medians),
        }
    return result


def main() -> None:
    parser = script.parser(__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds per timing")
    args = parser.parse_args()
    if script.start(args).type != "cpu":
        parser.error("thread levels are a CPU measurement: use --device cpu")
    rows = []
    for name in ARCHITECTURES:
        row = measure(name, args.threads, args.rounds, args.min_time)
        for label, levels in row["summary"].items():
            log.info(
                "%-9s %s: median %6.2f ms, rounds %6.2f to %6.2f ms",
                name,
                label,
                levels["median_ms"],
                levels["fastest_ms"],
                levels["slowest_ms"],
            )
        rows.append(row)
    script.write_report(args, CPU, {"rows": rows})


if __name__ == "__main__":
    main()
