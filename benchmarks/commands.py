"""The commands of `archbench` but `list` (listing.py), run once the command line is
parsed (cli.py parses it without importing torch, so that --help and --version answer
at once); with cli.py and listing.py, the only modules that print."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd
import torch

import architectures
from benchmarks import compare, plots, progress, report, results, runner, tasks, tracking
from benchmarks.cli import EXIT_INTERRUPTED
from benchmarks.data import DEFAULT_DATA_ROOT
from benchmarks.errors import UserError
from benchmarks.measure import memory
from benchmarks.measure.device import Backend, resolve_device
from benchmarks.measure.flops import module_table
from benchmarks.measure.latency import TimingConfig
from benchmarks.suites import Suite, expand_entries, load_suite

log = logging.getLogger("archbench")


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
                    rounds=None if args.rounds else e.rounds,  # likewise
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
            "rounds": args.rounds,
            "training": dataclasses.replace(suite.training, **budget),
            "timing": timing_of(args, suite.timing),
            **{flag: getattr(args, flag) for flag in Backend.names()},
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
    if args.resume and not args.out:
        raise UserError("--resume finishes the run in --out: name it (--out DIR)")
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
    if args.log_dir:
        tracking.prepare(args.log_dir)  # before anything is measured
    executor = make_executor(args, suite, device, threads)
    data_root, cache_dir = args.data_root, args.cache_dir
    if args.executor == "ray":  # workers elsewhere: paths as the driver sees them
        data_root = os.path.abspath(data_root or DEFAULT_DATA_ROOT)
        cache_dir = cache_dir and os.path.abspath(cache_dir)
    with progress.reporting(reporter(args)):
        outcome = runner.run_suite(
            suite, out, device=device, threads=threads, data_root=data_root,
            download=args.download, cache_dir=cache_dir, resume=args.resume, force=args.force,
            executor=executor,
        )  # fmt: skip
    if args.log_dir and (out / results.RESULTS_FILE).exists():
        tracking.export(results.load_run(out), args.log_dir)
        print(f"TensorBoard: {args.log_dir} (tensorboard --logdir {args.log_dir})")
    status = conclude(outcome, out, args)
    if args.no_plots or outcome.interrupted:
        return status
    return max(status, report_run(out, failure_is_fatal=False, quiet=args.quiet))


def reporter(args: argparse.Namespace) -> progress.Progress:
    """Bars on a terminal; log lines otherwise (none with --quiet)."""
    terminal = sys.stderr.isatty() and shutil.get_terminal_size((0, 0)).columns > 0
    return progress.Bars() if terminal and not args.quiet else progress.Progress()


def counts_instructions(suite: Suite) -> bool:
    return "instructions" in suite.measure


def rounds_hint(args: argparse.Namespace, suite: Suite) -> str:
    """Where rounds came from when the suite, not the command line, set them."""
    if args.rounds is None and suite.most_rounds > 1:
        return f" (suite {suite.name} times in up to {suite.most_rounds} rounds: add --rounds 1)"
    return ""


def make_executor(
    args: argparse.Namespace, suite: Suite, device: torch.device, threads: int
) -> runner.Executor:
    """The executor ``--executor`` (or ``--isolate``) names, with its options; the one
    valgrind process of callgrind when the run counts instructions."""
    if counts_instructions(suite):
        elsewhere = args.isolate or args.executor != "inprocess" or suite.most_rounds > 1
        if elsewhere or device.type != "cpu" or threads != 1:
            raise UserError(
                "instructions are counted on this machine's CPU with one thread, once, in one "
                "valgrind process: use --device cpu --threads 1, without --executor, "
                f"--isolate or --rounds{rounds_hint(args, suite)}"
            )
        from benchmarks.callgrind_executor import CallgrindExecutor

        return CallgrindExecutor()
    if args.isolate and args.executor not in ("inprocess", "isolate"):
        raise UserError(f"--isolate and --executor {args.executor} contradict each other")
    kind = "isolate" if args.isolate else args.executor
    if kind != "ray" and (args.ray_address or args.pack_training):
        raise UserError("--ray-address and --pack-training apply to --executor ray only")
    if kind == "ray" and suite.most_rounds > 1:
        raise UserError(
            "--rounds pools one job's samples across rounds, and under Ray a round may run "
            f"on another node: run the rounds on one machine{rounds_hint(args, suite)}"
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


def report_run(path: str | Path, *, failure_is_fatal: bool = True, quiet: bool = False) -> int:
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
    print_drawn(drawn, quiet=quiet)
    for path in written:
        print(f"report: {path}")
    return 0


def print_drawn(drawn: plots.Drawn, *, quiet: bool = False) -> None:
    """The figures written, and (but with --quiet) those the run had no data for."""
    print(f"figures: {len(drawn.written)} in {plots.FIGURES_DIR}/ ({', '.join(drawn.written)})")
    for name, why in {} if quiet else drawn.skipped.items():
        print(f"  not drawn: {name}: {why}")


def load_run(path: str | Path) -> results.Run:
    """A run for the figures and report, saying on stderr what of it could not be read."""
    run = results.load_run(path)
    for problem in run.left_out:
        print(f"archbench: left out: {problem}", file=sys.stderr)
    return run


def cmd_plot(args: argparse.Namespace) -> int:
    print_drawn(plots.draw(load_run(args.run_dir)), quiet=args.quiet)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    return report_run(args.run_dir)


def cmd_compare(args: argparse.Namespace) -> int:
    settings = compare_settings(args)
    baseline, current = compare.load_side(args.baseline), compare.load_side(args.current)
    comparisons = compare.compare(baseline, current, settings)
    note = compare.instruction_set_note(baseline, current)
    if note:
        print(f"archbench: note: {note}", file=sys.stderr)
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
    known = (*compare.TIMES, *compare.MEMORY, *compare.INSTRUCTIONS)
    for metric, fraction in args.threshold or []:
        if metric is None:
            settings.default_threshold = fraction
        elif metric in known:
            settings.thresholds[metric] = fraction
        else:
            choices = ", ".join(known)
            raise UserError(f"--threshold: {metric!r} has no threshold; choose from {choices}")
    return settings


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
        kept = "1 row is" if outcome.kept == 1 else f"{outcome.kept} rows are"
        print(f"\nInterrupted: {kept} kept. Resume with:")
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
            "input": table["input_shape"],  # a net named with --arch takes the suite's data
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
            "seeds": table["seeds"].where(table["test_acc"].notna(), ""),  # of an accuracy
            "status": table["status"],
        }
    )
    formats = ["", "", "", "", ".3g", ",.1f", ".3g", ".3g", ",.0f", ".1f", ",.1f", "", "", ""]
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
    blanks = summary.astype(object).where(summary.notna(), None)  # not measured: blank, not nan
    print(blanks.to_markdown(index=False, tablefmt="simple", floatfmt=formats))


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
