"""Latency fidelity: the harness's timings next to torch.utils.benchmark's.

For each architecture and batch size, the same inference call is timed by the
harness (per-call samples, median) and by ``Timer.blocked_autorange`` (blocks
of calls, median of block means), alternating over several rounds in one
process so that both see the same machine state, and the same allocator
settings (freed memory kept, ``memory.freed_memory_kept``). The ratio harness / Timer
should sit within 0.95-1.05.

    python -m benchmarks.fidelity --out results/fidelity-cpu.json   # 15 rounds of 0.4 s
"""

from __future__ import annotations

import logging
import statistics

import torch
from torch.utils.benchmark import Timer

import architectures
from benchmarks import script
from benchmarks.measure.latency import TimingConfig, inference_call, time_calls
from benchmarks.measure.memory import freed_memory_kept

log = logging.getLogger(__name__)
ARCHITECTURES = ("resnet20", "mobilenet_v2", "densenet40_k12")
BATCH_SIZES = (1, 16)


def compare(
    name: str, batch_size: int, device: torch.device, rounds: int, min_time_s: float, threads: int
) -> dict:
    """Median ratio of the harness's median to Timer's, over alternating rounds."""
    torch.manual_seed(0)
    model = architectures.create(name).to(device)
    inputs = architectures.spec(name).example_inputs(batch_size, device=device)
    call = inference_call(model, inputs, device, "fp32")
    config = TimingConfig(warmup=3, min_samples=10, max_samples=10_000, min_time_s=min_time_s)
    timer = Timer(stmt="call()", globals={"call": call}, num_threads=threads)
    harness, reference = [], []
    for _ in range(rounds):
        harness.append(time_calls(call, device, config).median)
        with freed_memory_kept():  # as the harness times: the loops, not the allocators
            reference.append(timer.blocked_autorange(min_run_time=min_time_s).median)
    ratios = [h / r for h, r in zip(harness, reference, strict=True)]
    return {
        "arch": name,
        "batch_size": batch_size,
        "harness_median_ms": statistics.median(harness) * 1e3,
        "timer_median_ms": statistics.median(reference) * 1e3,
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "rounds": rounds,
    }


def main() -> None:
    parser = script.parser(__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--min-time", type=float, default=0.4, help="seconds per measurement")
    args = parser.parse_args()
    device = script.start(args)
    rows = []
    for name in ARCHITECTURES:
        for batch_size in BATCH_SIZES:
            row = compare(name, batch_size, device, args.rounds, args.min_time, args.threads)
            log.info(
                "%-15s b=%-3d harness %8.3f ms  Timer %8.3f ms  ratio %.3f (%.3f-%.3f)",
                name,
                batch_size,
                row["harness_median_ms"],
                row["timer_median_ms"],
                row["ratio_median"],
                row["ratio_min"],
                row["ratio_max"],
            )
            rows.append(row)
    script.write_report(args, device, {"rows": rows})


if __name__ == "__main__":
    main()
