"""`archbench`: the command line. The only module that prints."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import shlex
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd
import torch

import architectures
from benchmarks import __version__, compare, plots, report, results, runner, tasks
from benchmarks.catalog import architecture_table
from benchmarks.data import DEFAULT_CACHE_DIR, DEFAULT_DATA_ROOT
from benchmarks.errors import UserError
from benchmarks.measure import memory
from benchmarks.measure.device import DTYPES, Backend, resolve_device
from benchmarks.measure.flops import module_table
from benchmarks.measure.latency import TimingConfig
from benchmarks.schema import Mode
from benchmarks.suites import Suite, expand_entries, load_suite, shipped_suites

USER_ERRORS = (UserError, architectures.RegistryError)
BACKEND_FLAGS = {  # the backend settings, each a row column (help: its meaning there)
    item.name: item.metadata["meaning"] for item in dataclasses.fields(Backend)
}
log = logging.getLogger("archbench")
EXIT_INTERRUPTED = 130


def cmd_list(args: argparse.Namespace) -> int:
    table = architecture_table(args.pattern, external=args.external)
    if table.empty:
        raise UserError(
            f"no architecture matches {args.pattern!r}"
            + ("" if args.external else " (add --external for torchvision:/timm: models)")
        )
    if args.format == "markdown":
        print(table.to_markdown(index=False))
    elif args.format == "csv":
        print(table.to_csv(index=False), end="")
    else:
        table["params"] = table["params"].map("{:,}".format)
        print(table.to_markdown(index=False, tablefmt="simple"))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    arch = architectures.spec(args.name)
    check_fits_in_memory(args.name, args.input_size)
    model = architectures.create(args.name)
    inputs = arch.example_inputs(1, image_size=args.input_size)
    table = module_table(model, inputs, args.depth)
    shape = "x".join(map(str, inputs[0].shape[1:]))
    print(f"{args.name} ({arch.family}, {arch.paper}) at input {shape}, batch 1")
    table["params"] = table["params"].map("{:,}".format)
    table["macs"] = table["macs"].map("{:,}".format)
    print(
        table.to_markdown(
            index=False, tablefmt="simple", colalign=("left", "left", "right", "right", "left")
        )
    )
    return 0


def check_fits_in_memory(name: str, image_size: int | None) -> None:
    """Refuse an inspection whose activations would need more than half the memory this
    machine has free (``--input-size 4096`` grew to 22 GB and was killed)."""
    needed, free = memory.forward_bytes(name, image_size), memory.available_bytes()
    if free is not None and needed > free / 2:
        raise UserError(
            f"{name} at input size {image_size} needs about {needed / 2**30:.1f} GiB for its "
            f"activations, more than half of the {free / 2**30:.1f} GiB free here: "
            "choose a smaller --input-size"
        )


def build_suite(args: argparse.Namespace) -> Suite:
    """The suite to run: a shipped or user file, with the command line's overrides."""
    suite = load_suite(args.suite)
    budget = {
        "epochs": args.epochs,
        "time_budget_s": args.time_budget,
        "train_subset": args.train_subset,
    }
    budget = {key: value for key, value in budget.items() if value is not None}
    entries = suite.entries
    if args.arch:  # the suite's settings, not its nets: say so where the run announces it
        entries = tuple(suite.like_its_own(entry) for entry in expand_entries(args.arch))
        suite = suite.replace(
            description=f"{', '.join(args.arch)} with the {suite.name} suite's settings"
        )
    try:
        changes = {
            "entries": tuple(
                dataclasses.replace(
                    e,
                    training={**e.training, **budget},
                    seeds=None if args.seeds else e.seeds,  # --seeds: every net's
                    batch_sizes=None if args.batch_sizes else e.batch_sizes,  # likewise
                    train_batch_size=e.train_batch_size if args.train_batch_size is None else None,
                )
                for e in entries
            ),
            "device": args.device,
            "batch_sizes": args.batch_sizes,
            "train_batch_size": args.train_batch_size,
            "dtype": args.dtype,
            "input_size": args.input_size,
            "dataset": args.dataset,
            "seeds": args.seeds,
            "measure": args.measure,
            "training": dataclasses.replace(suite.training, **budget),
            "timing": timing_of(args, suite.timing),
            **{flag: getattr(args, flag) for flag in BACKEND_FLAGS},
        }
        return suite.replace(**{key: value for key, value in changes.items() if value is not None})
    except ValueError as error:  # an invalid training budget
        raise UserError(str(error)) from None


def timing_of(args: argparse.Namespace, timing: TimingConfig) -> TimingConfig:
    """The suite's timing settings with the command line's."""
    samples = args.timing_samples
    changes = {
        "warmup": args.timing_warmup,
        "min_samples": samples,
        "max_samples": max(samples, timing.max_samples) if samples else None,
        "min_time_s": args.min_time,
    }
    return dataclasses.replace(timing, **{k: v for k, v in changes.items() if v is not None})


def cmd_run(args: argparse.Namespace) -> int:
    if args.force and not args.resume:
        raise UserError("--force applies to --resume only")
    suite = build_suite(args)
    try:
        device = resolve_device(suite.device)
    except (RuntimeError, ValueError) as error:
        raise UserError(str(error)) from None
    threads = args.threads or (1 if counts_instructions(suite) else torch.get_num_threads())
    if threads > (os.cpu_count() or threads):
        log.warning(
            "--threads %d is more than this machine's %d CPUs: the timings will measure "
            "the threads waiting for each other", threads, os.cpu_count(),
        )  # fmt: skip
    torch.set_num_threads(threads)
    if args.out is not None and not args.out.strip():
        raise UserError("--out is empty: give a run directory, or leave it out")
    out = Path(args.out or f"runs/{suite.name}-{datetime.now():%Y%m%d-%H%M%S}")
    executor = make_executor(args, suite, device, threads)
    data_root, cache_dir = args.data_root, args.cache_dir
    if args.executor == "ray":  # workers elsewhere: paths as the driver sees them
        data_root = os.path.abspath(data_root or DEFAULT_DATA_ROOT)
        cache_dir = cache_dir and os.path.abspath(cache_dir)
    outcome = runner.run_suite(
        suite, out, device=device, threads=threads, data_root=data_root,
        download=args.download, cache_dir=cache_dir, resume=args.resume, force=args.force,
        executor=executor, rounds=args.rounds,
    )  # fmt: skip
    status = conclude(outcome, out, args)
    if args.no_plots or outcome.interrupted:
        return status
    return max(status, report_run(out, failure_is_fatal=False))


def counts_instructions(suite: Suite) -> bool:
    return "instructions" in suite.measure


def make_executor(
    args: argparse.Namespace, suite: Suite, device: torch.device, threads: int
) -> runner.Executor:
    """The executor ``--executor`` (or ``--isolate``) names, with its options; the one
    valgrind process of callgrind when the run counts instructions."""
    if counts_instructions(suite):
        elsewhere = args.isolate or args.executor != "inprocess" or args.rounds > 1
        if elsewhere or device.type != "cpu" or threads != 1:
            raise UserError(
                "instructions are counted on this machine's CPU with one thread, once, in one "
                "valgrind process: use --device cpu --threads 1, without --executor, "
                "--isolate or --rounds"
            )
        from benchmarks.callgrind_executor import CallgrindExecutor

        return CallgrindExecutor()
    if args.isolate and args.executor not in ("inprocess", "isolate"):
        raise UserError(f"--isolate and --executor {args.executor} contradict each other")
    kind = "isolate" if args.isolate else args.executor
    if kind != "ray" and (args.ray_address or args.pack_training):
        raise UserError("--ray-address and --pack-training apply to --executor ray only")
    if kind == "ray" and args.rounds > 1:
        raise UserError(
            "--rounds pools one job's samples across rounds, and under Ray a round may run "
            "on another node: run the rounds on one machine"
        )
    if kind == "isolate":
        return runner.SubprocessExecutor()
    if kind == "ray":
        from benchmarks.ray_executor import RayExecutor

        executor = RayExecutor(
            args.ray_address, pack_training=args.pack_training or suite.pack_training
        )
        executor.start()  # before anything is written: an unreachable cluster is one line
        return executor
    return runner.InProcessExecutor()


def report_run(path: str | Path, *, failure_is_fatal: bool = True) -> int:
    """Draw a run's figures and write its report; print what was written.

    After ``archbench run`` (not fatal) a failure here is one line and exit code 1:
    the results are already on disk."""
    run = load_run(path)
    try:
        drawn = plots.draw(run)
        written = report.write_report(run, drawn)
    except Exception as error:
        if failure_is_fatal:
            raise
        print(
            f"archbench: drawing the report failed ({error!r}); the results are kept in {path}",
            file=sys.stderr,
        )
        return 1
    print_drawn(drawn)
    for path in written:
        print(f"report: {path}")
    return 0


def print_drawn(drawn: plots.Drawn) -> None:
    print(f"figures: {len(drawn.written)} in {plots.FIGURES_DIR}/ ({', '.join(drawn.written)})")
    for name, why in drawn.skipped.items():
        print(f"  not drawn: {name}: {why}")


def load_run(path: str | Path) -> results.Run:
    """A run for the figures and report, saying on stderr what of it could not be read."""
    run = results.load_run(path)
    for problem in run.left_out:
        print(f"archbench: left out: {problem}", file=sys.stderr)
    return run


def cmd_plot(args: argparse.Namespace) -> int:
    print_drawn(plots.draw(load_run(args.run_dir)))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    return report_run(args.run_dir)


def cmd_compare(args: argparse.Namespace) -> int:
    settings = compare_settings(args)
    comparisons = compare.compare(
        compare.load_side(args.baseline), compare.load_side(args.current), settings
    )
    print(compare.render(comparisons, args.format, everything=args.all))
    return compare.exit_code(comparisons)


def cmd_ab(args: argparse.Namespace) -> int:
    from benchmarks import ab

    out = Path(args.out or f"runs/ab-{datetime.now():%Y%m%d-%H%M%S}")
    run_args = [*(["--arch", *args.arch] if args.arch else []), "--threads", str(args.threads)]
    side_a, side_b = ab.ab(
        (args.base, args.current), out, suite=args.suite, rounds=args.rounds, run_args=run_args
    )
    print(f"A = {args.base}: {side_a}\nB = {args.current}: {side_b}\n")
    comparisons = compare.compare(
        compare.load_side(side_a), compare.load_side(side_b), compare_settings(args)
    )
    print(compare.render(comparisons, args.format, everything=args.all))
    return compare.exit_code(comparisons)


def compare_settings(args: argparse.Namespace) -> compare.Settings:
    """compare's settings from the flags that compare and ab share."""
    settings = compare.Settings(acc_tolerance_pts=args.acc_tolerance, normalize=args.normalize)
    for metric, fraction in args.threshold or []:
        if metric is None:
            settings.default_threshold = fraction
        else:
            settings.thresholds[metric] = fraction
    return settings


def threshold(text: str) -> tuple[str | None, float]:
    """An argparse type: '10' (percent, every timing) or 'peak_mem_mb=25'."""
    metric, _, percent = text.rpartition("=")
    known = (*compare.TIMES, *compare.MEMORY, *compare.INSTRUCTIONS)
    if metric and metric not in known:
        raise argparse.ArgumentTypeError(f"{metric!r} has no threshold; choose from {known}")
    return metric or None, positive_float(percent) / 100


def conclude(outcome: runner.RunOutcome, out: Path, args: argparse.Namespace) -> int:
    """Print the summary and the files; the exit code: 130 interrupted, 1 failures, else 0."""
    print_summary(results.load(out))
    print()
    for label, name in (
        ("rows", results.ROWS_FILE),
        ("results", results.RESULTS_FILE),
        ("curves", results.CURVES_FILE),
        ("environment", results.ENV_FILE),
    ):
        if (out / name).exists():
            print(f"{label}: {out / name}")
    if outcome.interrupted:
        resume = [*sys.argv[1:], *([] if args.resume else ["--resume"])]
        resume += [] if args.out else ["--out", str(out)]
        print(f"\nInterrupted: {outcome.kept} rows are kept. Resume with:")
        print(f"  {shlex.join(['archbench', *resume])}")
        return EXIT_INTERRUPTED
    if outcome.failures:
        print(f"\n{len(outcome.failures)} of {len(outcome.rows)} jobs failed:")
        for row in outcome.failures:
            print(f"  {row.identity.label(('mode', 'batch_size'))}: {row.status}: {row.message}")
        return 1
    return 0


def print_summary(table: pd.DataFrame) -> None:
    """The run's rows, readable: one line per job, accuracy as mean ± std over seeds,
    and the metrics of the jobs' tasks beside their floors."""
    table = results.summarize(table)
    summary = pd.DataFrame(
        {
            "arch": results.labels(table),
            "mode": table["mode"],
            "batch": table["batch_size"],
            "params (M)": table["params"] / 1e6,
            "MMAC/sample": table["macs"] / 1e6,
            "median (ms)": table["time_median_ms"],
            "p90 (ms)": table["time_p90_ms"],
            "samples/s": table["throughput_per_s"],
            "hw eff (%)": table["hw_efficiency"] * 100,
            "peak (MiB)": table["peak_mem_mb"],
            "test acc (%)": results.accuracy_texts(table),
            "seeds": table["seeds"].where(table["mode"] == Mode.TRAIN, ""),
            "status": table["status"],
        }
    )
    formats = ["", "", "", ".3g", ",.1f", ".3g", ".3g", ",.0f", ".1f", ",.1f", "", "", ""]
    if "instructions" in table and table["instructions"].notna().any():  # run --measure instr..
        summary.insert(len(summary.columns) - 3, "M instr/call", table["instructions"] / 1e6)
        formats.insert(len(formats) - 3, ",.2f")
    for task in tasks.all_tasks():
        metrics = [m for m in task.metrics if m.column in table and table[m.column].notna().any()]
        if metrics:  # question answering: relational / non-relational (floors)
            header = " / ".join(m.name for m in metrics) + " (floors) %"
            summary.insert(len(summary.columns) - 2, header, metric_cells(table, metrics))
            formats.insert(len(formats) - 2, "")
    print()
    print(summary.to_markdown(index=False, tablefmt="simple", floatfmt=formats))


def metric_cells(table: pd.DataFrame, metrics: Sequence[tasks.Metric]) -> list[str]:
    """'74.2 / 63.3 (72.7 / 55.5)': the metrics of each row and, in brackets, their floors."""
    cells = []
    for _, row in table.iterrows():
        if pd.isna(row[metrics[0].column]):
            cells.append("")
            continue
        values = " / ".join(f"{100 * row[m.column]:.1f}" for m in metrics)
        floors = " / ".join(f"{100 * row[m.floor]:.1f}" for m in metrics)
        cells.append(f"{values} ({floors})")
    return cells


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    return value


def whole_number(text: str) -> int:
    """An argparse type: an integer of at least 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number (0 or more), not {text!r}")
    return value


def positive_ints(text: str) -> tuple[int, ...]:
    """An argparse type: '1,64' -> (1, 64)."""
    return tuple(positive_int(part) for part in text.split(","))


def positive_float(text: str) -> float:
    """An argparse type: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a positive number, not {text!r}")
    return value


def seed_list(text: str) -> tuple[int, ...]:
    """An argparse type: '0,1,2' -> (0, 1, 2)."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, not {text!r}"
        ) from None


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (exit code 2), and which takes no
    abbreviated flags (`--batch-size 3` would silently have been --batch-sizes)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{"allow_abbrev": False, **kwargs})

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="archbench",
        description="Compare neural-network architectures on one harness: "
        "parameters, FLOPs, latency, memory and accuracy.",
    )
    parser.add_argument("--version", action="version", version=f"archbench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress in detail")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=Parser
    )

    listing = commands.add_parser(
        "list",
        help="list the registered architectures",
        description="List the registered architectures with family, input and parameter count.",
    )
    listing.add_argument(
        "pattern", nargs="?", help="shell-style wildcard (resnet*) or a substring (dw)"
    )
    listing.add_argument(
        "--external", action="store_true", help="include torchvision:NAME (and timm:NAME) models"
    )
    listing.add_argument("--format", choices=("table", "markdown", "csv"), default="table")
    listing.set_defaults(handler=cmd_list)

    inspect = commands.add_parser(
        "inspect",
        help="per-module parameters, MACs and output shapes of one architecture",
        description="Per-module table (params, MACs, output shape) of one architecture at batch 1.",
    )
    inspect.add_argument("name", help="a registered name, or torchvision:NAME")
    inspect.add_argument(
        "--depth", type=positive_int, default=2, help="module nesting levels to show (2)"
    )
    inspect.add_argument(
        "--input-size", type=positive_int, help="square image side (default: the model's)"
    )
    inspect.set_defaults(handler=cmd_inspect)

    run = commands.add_parser(
        "run",
        help="measure a suite of architectures",
        description="Measure a suite: params, FLOPs/MACs, latency, throughput, training step "
        "time and peak memory, one row per job, written as they finish.",
    )
    run.add_argument(
        "--suite",
        default="quick",
        help=f"a shipped suite ({', '.join(shipped_suites())}) or a TOML file",
    )
    run.add_argument(
        "--arch",
        nargs="+",
        action="extend",
        metavar="NAME",
        help="architectures to run instead of the suite's (the flag may be repeated)",
    )
    run.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), help="default: the suite's (auto)"
    )
    run.add_argument(
        "--batch-sizes",
        type=positive_ints,
        metavar="B,B",
        help="inference batch sizes of every net, e.g. 1,64",
    )
    run.add_argument(
        "--train-batch-size",
        type=int,
        metavar="B",
        help="training-step batch size of every net; 0 for none",
    )
    run.add_argument(
        "--dtype", choices=tuple(DTYPES),
        help="fp32 (TF32 off), tf32 (CUDA), or bf16/fp16 autocast (default: the suite's)",
    )  # fmt: skip
    for flag, meaning in BACKEND_FLAGS.items():
        run.add_argument(
            f"--{flag.replace('_', '-')}", action=argparse.BooleanOptionalAction, help=meaning
        )
    run.add_argument(
        "--threads", type=positive_int, help="torch threads (default: torch's own choice)"
    )
    run.add_argument(
        "--input-size",
        type=positive_int,
        help="square image side of the jobs that do not train (default: each model's)",
    )
    run.add_argument(
        "--dataset",
        help=f"{'; '.join(task.datasets for task in tasks.all_tasks())} (default: the suite's)",
    )
    run.add_argument(
        "--data-root", help=f"where data sets are looked for (default: {DEFAULT_DATA_ROOT})"
    )
    run.add_argument("--download", action="store_true", help="download a missing CIFAR data set")
    run.add_argument("--cache-dir", help=f"cache of decoded images (default: {DEFAULT_CACHE_DIR})")
    run.add_argument("--seeds", type=seed_list, metavar="S,S", help="training seeds, e.g. 0,1,2")
    run.add_argument("--epochs", type=positive_int, help="training budget in epochs")
    run.add_argument(
        "--time-budget", type=positive_float, metavar="SECONDS", help="training time cap per run"
    )
    run.add_argument(
        "--train-subset", type=positive_int, metavar="N", help="train on N images only"
    )
    run.add_argument(
        "--timing-warmup", type=whole_number, metavar="N",
        help="untimed calls before timing (default: the suite's, 5)",
    )  # fmt: skip
    run.add_argument(
        "--timing-samples", type=positive_int, metavar="N",
        help="timed calls, at least (default: the suite's, 20)",
    )  # fmt: skip
    run.add_argument(
        "--min-time", type=positive_float, metavar="SECONDS",
        help="time calls for at least this long, up to the suite's max_samples (default: 1)",
    )  # fmt: skip
    run.add_argument("--out", help="run directory (default: runs/SUITE-TIMESTAMP)")
    run.add_argument(
        "--resume", action="store_true", help="finish the run in --out, skipping jobs done"
    )
    run.add_argument(
        "--force", action="store_true",
        help="with --resume: add this command's jobs to a run started with other ones",
    )  # fmt: skip
    run.add_argument(
        "--executor", choices=("inprocess", "isolate", "ray"), default="inprocess",
        help="where jobs run: this process (default), a fresh child process each, or Ray tasks",
    )  # fmt: skip
    run.add_argument("--isolate", action="store_true", help="the same as --executor isolate")
    run.add_argument(
        "--ray-address", metavar="ADDRESS",
        help="--executor ray: 'auto' (this machine's cluster) or ray://HOST:PORT (default: new)",
    )  # fmt: skip
    run.add_argument(
        "--pack-training", type=positive_int, metavar="K",
        help="--executor ray: GPU jobs that do not time share a GPU K ways (default: suite's, 1)",
    )  # fmt: skip
    run.add_argument(
        "--no-plots", action="store_true", help="skip the figures and report at the end"
    )
    run.add_argument(
        "--rounds", type=positive_int, default=1, metavar="N",
        help="time the timing-only jobs in N rounds and pool the samples (noisy machines)",
    )  # fmt: skip
    run.add_argument(
        "--measure",
        type=lambda text: tuple(text.split(",")),
        metavar="M,M",
        help="what to measure: flops,time,memory,accuracy (default: the suite's); "
        "instructions (counted under valgrind) in a run of its own, with flops at most",
    )
    run.set_defaults(handler=cmd_run)

    for name, handler, summary in (
        ("plot", cmd_plot, "draw a run's comparison figures into RUN_DIR/figures/"),
        ("report", cmd_report, "write a run's figures, report.md and report.html"),
    ):
        command = commands.add_parser(
            name, help=summary, description=summary[0].upper() + summary[1:] + "."
        )
        command.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of archbench run")
        command.set_defaults(handler=handler)

    comparing = commands.add_parser(
        "compare",
        help="compare a run with a baseline: exit 1 on a regression",
        description="Compare CURRENT with BASELINE (run directories, results files or "
        "pytest-benchmark JSON) metric by metric: exact counts must match, timings "
        "regress only when past the threshold and statistically significant, accuracy "
        "beyond a tolerance. Exit 0: no regression; 1: a regression or a changed count.",
    )
    comparing.add_argument("baseline", metavar="BASELINE")
    comparing.add_argument("current", metavar="CURRENT")
    add_verdict_flags(comparing)
    comparing.add_argument(
        "--normalize", action="store_true",
        help="divide each run's times by its calibration workload's before comparing",
    )  # fmt: skip
    comparing.set_defaults(handler=cmd_compare)

    timing_ab = commands.add_parser(
        "ab",
        help="time two commits side by side in alternating rounds, then compare them",
        description="Check out BASE and CURRENT into temporary git worktrees and time the "
        "suite's jobs at each, in fresh processes of this environment, in alternating "
        "rounds (A B, B A, ...); then compare B with A, testing on the rounds. Exit codes "
        "as compare's.",
    )
    timing_ab.add_argument("base", metavar="BASE", help="a commit, branch or tag (A)")
    timing_ab.add_argument(
        "current", metavar="CURRENT", nargs="?", default="HEAD", help="B (default: HEAD)"
    )
    timing_ab.add_argument("--suite", default="quick", help="the suite to time (quick)")
    timing_ab.add_argument(
        "--arch", nargs="+", action="extend", metavar="NAME", help="these architectures only"
    )
    timing_ab.add_argument(
        "--rounds", type=positive_int, default=compare.MIN_ROUNDS_FOR_TEST, metavar="N",
        help=f"rounds a side ({compare.MIN_ROUNDS_FOR_TEST}: the fewest that can be significant)",
    )  # fmt: skip
    timing_ab.add_argument("--threads", type=positive_int, default=1, help="torch threads (1)")
    timing_ab.add_argument("--out", help="where the rounds and the two runs go (runs/ab-TIME)")
    add_verdict_flags(timing_ab)
    timing_ab.set_defaults(handler=cmd_ab, normalize=False)
    return parser


def add_verdict_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of compare's verdicts and output (compare, ab)."""
    parser.add_argument(
        "--threshold", type=threshold, action="append", metavar="[METRIC=]PCT",
        help="timing ratio past which a significant change counts, in percent (10); "
        "repeat as peak_mem_mb=25 or instructions=0.5 (default 1) for one metric",
    )  # fmt: skip
    parser.add_argument(
        "--acc-tolerance", type=positive_float, default=compare.DEFAULT_ACC_TOLERANCE_PTS,
        metavar="POINTS", help="accuracy drop, in points, that counts as a regression (1.0)",
    )  # fmt: skip
    parser.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    parser.add_argument("--all", action="store_true", help="show the ok comparisons too")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return args.handler(args)
    except USER_ERRORS as error:
        print(f"archbench: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before a run's jobs started (they keep their rows)
        print("archbench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (archbench list | head): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
