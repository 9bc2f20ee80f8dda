"""`archbench`: the command line. It and the commands it runs (``benchmarks.commands``,
``benchmarks.listing``) are the only modules that print.

Parsing imports nothing heavy (``--help`` and ``--version`` answer at once); the
command's module is imported once the command line is parsed.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from benchmarks import __version__, options
from benchmarks.errors import UserError

EXIT_INTERRUPTED = 130


def threshold(text: str) -> tuple[str | None, float]:
    """An argparse type: '10' (percent, every timing) or 'peak_mem_mb=25' (the metric is
    checked by compare's settings)."""
    metric, _, percent = text.rpartition("=")
    return metric or None, positive_float(percent) / 100


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
        epilog="Start with `archbench run` (the quick suite, on embedded data) and "
        "`archbench COMMAND --help`.",
    )
    parser.add_argument("--version", action="version", version=f"archbench {__version__}")
    add_verbosity(parser, default=False)
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=Parser
    )
    add_list(commands)
    add_inspect(commands)
    add_run(commands)
    for name, summary in (
        ("plot", "draw a run's comparison figures into RUN_DIR/figures/"),
        ("report", "write a run's figures, report.md and report.html"),
    ):
        command = commands.add_parser(
            name, help=summary, description=summary[0].upper() + summary[1:] + "."
        )
        command.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of archbench run")
    add_compare(commands)
    add_ab(commands)
    for command in commands.choices.values():  # -q and -v after the command too
        add_verbosity(command, default=argparse.SUPPRESS)
    return parser


def add_verbosity(parser: argparse.ArgumentParser, default: Any) -> None:
    """-v and -q; a command's own leave the top level's value when not given."""
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="log progress in detail"
    )
    verbosity.add_argument(
        "-q", "--quiet", action="store_true", default=default,
        help="no progress bars or log lines: warnings, errors and the results only",
    )  # fmt: skip


def examples(*lines: tuple[str, str]) -> dict[str, Any]:
    """A subcommand's epilog of examples, each a command and what it does."""
    text = "\n".join(f"  # {what}\n  {command}" for command, what in lines)
    return {"epilog": f"examples:\n{text}", "formatter_class": KeepLinesFormatter}


class KeepLinesFormatter(argparse.HelpFormatter):
    """Help whose descriptions are wrapped, and whose text of several lines (the
    examples) is kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return text if "\n" in text else super()._fill_text(text, width, indent)


def add_list(commands: Any) -> None:
    listing = commands.add_parser(
        "list",
        help="list the registered architectures",
        description="List the registered architectures: family, input, parameter count, paper.",
        **examples(
            ("archbench list resnet", "the zoo's nets whose name has 'resnet'"),
            ("archbench list --external 'timm:vit_*'", "timm's ViTs, at their native input"),
            ("archbench list --external resnet18 --params", "with parameter counts (builds each)"),
        ),
    )
    listing.add_argument(
        "pattern", nargs="?", help="shell-style wildcard (resnet*) or a substring (dw)"
    )
    listing.add_argument(
        "--external", action="store_true", help="include torchvision:NAME (and timm:NAME) models"
    )
    listing.add_argument(
        "--params", action="store_true",
        help="count the external models' parameters too (builds each one: slow for many)",
    )  # fmt: skip
    listing.add_argument(
        "--format", choices=("table", "markdown", "csv"), default="table",
        help="output format (default: table)",
    )  # fmt: skip


def add_inspect(commands: Any) -> None:
    inspect = commands.add_parser(
        "inspect",
        help="per-module parameters, MACs and output shapes of one architecture",
        description="Per-module table (params, MACs, output shape) of one architecture at batch 1.",
        **examples(
            ("archbench inspect resnet20", "its stages and blocks"),
            ("archbench inspect torchvision:resnet18 --depth 1", "top-level modules only"),
        ),
    )
    inspect.add_argument("name", help="a registered name, torchvision:NAME, or file.py:FACTORY")
    inspect.add_argument(
        "--depth", type=positive_int, default=2, help="module nesting levels to show (default: 2)"
    )
    inspect.add_argument(
        "--input-size", type=positive_int, help="square image side (default: the model's)"
    )


def add_run(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="measure a suite of architectures",
        description="Measure a suite: params, FLOPs/MACs, latency, throughput, training step "
        "time, peak memory and accuracy, one row per job, written as each finishes. Flags "
        "left out take the suite's value.",
        **examples(
            ("archbench run", "the quick suite: every family on embedded digits"),
            (
                "archbench run --arch resnet20 --arch plain20",
                "two nets, the quick suite's settings",
            ),
            (
                "archbench run --arch torchvision:resnet18 --measure flops,time",
                "a torchvision model at 3x224x224",
            ),
            ("archbench run --arch mynets.py:TinyNet", "your own model (a factory in a file)"),
            (
                "archbench run --suite depth --download",
                "depth series, CIFAR-10 (fetched once)",
            ),
            ("archbench run --suite my_suite.toml --resume --out runs/x", "finish a run"),
        ),
    )
    run.add_argument(
        "--suite", default="quick", metavar="NAME|FILE",
        help=f"a shipped suite ({', '.join(options.shipped_suites())}) or a TOML file "
        "(default: quick)",
    )  # fmt: skip
    run.add_argument(
        "--arch", nargs="+", action="extend", metavar="NAME",
        help="measure these nets instead of the suite's, each with the data set its kind gets "
        "there; a registered name, torchvision:NAME, timm:NAME, file.py:FACTORY or "
        "module:FACTORY (repeatable)",
    )  # fmt: skip
    run.add_argument(
        "--measure", type=lambda text: tuple(text.split(",")), metavar="M,M",
        help="what to measure, of flops,time,memory,accuracy (default: the suite's, all four); "
        "or instructions (counted under valgrind), in a run of its own, with flops at most",
    )  # fmt: skip
    run.add_argument(
        "--device", choices=("auto", "cpu", "cuda"),
        help="where to run (default: the suite's, auto: CUDA when there is one)",
    )  # fmt: skip
    run.add_argument(
        "--batch-sizes", type=positive_ints, metavar="B,B",
        help="time inference at these batch sizes, for every net, e.g. 1,64",
    )  # fmt: skip
    run.add_argument(
        "--train-batch-size", type=int, metavar="B",
        help="time training steps at this batch size, for every net; 0: no training step",
    )  # fmt: skip
    run.add_argument(
        "--dtype", choices=options.DTYPE_NAMES,
        help="numerics: fp32 (TF32 off), tf32 (CUDA), or bf16/fp16 autocast "
        "(default: the suite's, fp32)",
    )  # fmt: skip
    for flag, meaning in options.BACKEND_HELP.items():
        run.add_argument(
            f"--{flag.replace('_', '-')}", action=argparse.BooleanOptionalAction,
            help=f"{meaning} (default: the suite's, off)",
        )  # fmt: skip
    run.add_argument(
        "--threads", type=positive_int,
        help="torch's CPU threads (default: torch's choice; 1 when counting instructions)",
    )  # fmt: skip
    run.add_argument(
        "--input-size", type=positive_int, metavar="PIXELS",
        help="square image side of the jobs that do not train (default: each model's own)",
    )  # fmt: skip
    run.add_argument(
        "--dataset", metavar="NAME",
        help=f"train and test on this data set: {', '.join(options.IMAGE_SETS)}; "
        f"{options.QUESTION_SETS} (default: the suite's)",
    )  # fmt: skip
    run.add_argument(
        "--data-root", metavar="DIR",
        help=f"where data sets are looked for (default: {options.DEFAULT_DATA_ROOT}, "
        "or $ARCHBENCH_DATA)",
    )  # fmt: skip
    run.add_argument(
        "--download", action="store_true", help="download a missing CIFAR data set first"
    )
    run.add_argument(
        "--cache-dir", metavar="DIR",
        help=f"cache of decoded images (default: {options.DEFAULT_CACHE_DIR}, "
        "or $ARCHBENCH_CACHE)",
    )  # fmt: skip
    run.add_argument(
        "--seeds", type=seed_list, metavar="S,S",
        help="train once per seed, for every net, e.g. 0,1,2 (default: the suite's)",
    )  # fmt: skip
    run.add_argument(
        "--epochs", type=positive_int, help="training budget in epochs (default: the suite's)"
    )
    run.add_argument(
        "--time-budget", type=positive_float, metavar="SECONDS",
        help="also stop a training run after this long; the learning-rate schedule then "
        "follows the clock where it is ahead of the epochs, so accuracy depends on the "
        "machine's speed",
    )  # fmt: skip
    run.add_argument(
        "--train-subset", type=positive_int, metavar="N",
        help="train on the first N training samples only",
    )  # fmt: skip
    run.add_argument(
        "--timing-warmup", type=whole_number, metavar="N",
        help="untimed calls before timing (default: the suite's [timing]; 5 where it sets none)",
    )  # fmt: skip
    run.add_argument(
        "--timing-samples", type=positive_int, metavar="N",
        help="timed calls, at least (default: the suite's [timing]; 20 where it sets none)",
    )  # fmt: skip
    run.add_argument(
        "--min-time", type=positive_float, metavar="SECONDS",
        help="keep timing for at least this long, up to the suite's max_samples "
        "(default: the suite's [timing]; 1 where it sets none)",
    )  # fmt: skip
    run.add_argument(
        "--rounds", type=positive_int, metavar="N",
        help="time every job's call or training step in N rounds and pool the samples, for "
        "noisy machines (default: the suite's rounds; 1 where it sets none)",
    )  # fmt: skip
    run.add_argument("--out", metavar="DIR", help="run directory (default: runs/SUITE-TIMESTAMP)")
    run.add_argument(
        "--resume", action="store_true", help="finish the run in --out, skipping the jobs done"
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
        help="--executor ray: 'auto' (this machine's cluster) or ray://HOST:PORT "
        "(default: start one)",
    )  # fmt: skip
    run.add_argument(
        "--pack-training", type=positive_int, metavar="K",
        help="--executor ray: GPU jobs that do not time share a GPU K ways "
        "(default: the suite's, 1)",
    )  # fmt: skip
    run.add_argument(
        "--log-dir", metavar="DIR",
        help="when the run ends, also write its training curves and rows as TensorBoard "
        "event files here (needs the tensorboard extra)",
    )  # fmt: skip
    run.add_argument(
        "--no-plots", action="store_true", help="skip the figures and report at the end"
    )


def add_compare(commands: Any) -> None:
    comparing = commands.add_parser(
        "compare",
        help="compare a run with a baseline: exit 1 on a regression",
        description="Compare CURRENT with BASELINE (run directories, results files or "
        "pytest-benchmark JSON) metric by metric: exact counts must match, timings "
        "regress only when past the threshold and statistically significant, accuracy "
        "beyond a tolerance. Exit 0: no regression; 1: a regression or a changed count.",
        **examples(
            ("archbench compare results/baselines/quick-cpu runs/quick-X", "against a baseline"),
            ("archbench compare A B --threshold 25 --normalize", "a looser gate across machines"),
        ),
    )
    comparing.add_argument("baseline", metavar="BASELINE")
    comparing.add_argument("current", metavar="CURRENT")
    add_verdict_flags(comparing)
    comparing.add_argument(
        "--normalize", action="store_true",
        help="divide each run's times by its calibration workload's before comparing",
    )  # fmt: skip


def add_ab(commands: Any) -> None:
    rounds = options.MIN_ROUNDS_FOR_TEST
    timing_ab = commands.add_parser(
        "ab",
        help="time two commits side by side in alternating rounds, then compare them",
        description="Check out BASE and CURRENT into temporary git worktrees and time the "
        "suite's jobs at each, in fresh processes of this environment, in alternating "
        "rounds (A B, B A, ...); then compare B with A, testing on the rounds. Exit codes "
        "as compare's.",
        **examples(
            ("archbench ab main", "HEAD against main, the quick suite"),
            ("archbench ab v0.1 HEAD --arch resnet20 --rounds 6", "one net, more rounds"),
        ),
    )
    timing_ab.add_argument("base", metavar="BASE", help="a commit, branch or tag (A)")
    timing_ab.add_argument(
        "current", metavar="CURRENT", nargs="?", default="HEAD", help="B (default: HEAD)"
    )
    timing_ab.add_argument(
        "--suite", default="quick", metavar="NAME|FILE", help="the suite to time (default: quick)"
    )
    timing_ab.add_argument(
        "--arch", nargs="+", action="extend", metavar="NAME", help="these architectures only"
    )
    timing_ab.add_argument(
        "--rounds", type=positive_int, default=rounds, metavar="N",
        help=f"rounds a side (default: {rounds}, the fewest that can be significant)",
    )  # fmt: skip
    timing_ab.add_argument(
        "--threads", type=positive_int, default=1, help="torch's CPU threads (default: 1)"
    )
    timing_ab.add_argument(
        "--out", metavar="DIR", help="where the rounds and the two runs go (default: runs/ab-TIME)"
    )
    add_verdict_flags(timing_ab)
    timing_ab.set_defaults(normalize=False)


def add_verdict_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of compare's verdicts and output (compare, ab)."""
    parser.add_argument(
        "--threshold", type=threshold, action="append", metavar="[METRIC=]PCT",
        help=f"timing ratio past which a significant change counts, in percent (default: "
        f"{100 * options.DEFAULT_THRESHOLD:g}); repeat with METRIC (time_median_ms, "
        "peak_mem_mb or instructions) for one metric: peak_mem_mb=25, instructions=0.5 "
        f"(default: {100 * options.DEFAULT_INSTRUCTION_THRESHOLD:g})",
    )  # fmt: skip
    parser.add_argument(
        "--acc-tolerance", type=positive_float, default=options.DEFAULT_ACC_TOLERANCE_PTS,
        metavar="POINTS",
        help="accuracy drop, in points, that counts as a regression "
        f"(default: {options.DEFAULT_ACC_TOLERANCE_PTS:g})",
    )  # fmt: skip
    parser.add_argument(
        "--format", choices=("table", "markdown", "json"), default="table",
        help="output format (default: table)",
    )  # fmt: skip
    parser.add_argument("--all", action="store_true", help="show the ok comparisons too")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        return run_command(args)
    except KeyboardInterrupt:  # before a run's jobs started (they keep their rows)
        print("archbench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (archbench list | head): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:
        if not isinstance(error, user_errors()):
            raise
        print(f"archbench: error: {error}", file=sys.stderr)
        return 2


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command, importing its module only now: `list` reads the zoo's
    index (no torch), the others are in ``benchmarks.commands``."""
    if args.command == "list":
        from benchmarks.listing import cmd_list

        return cmd_list(args)
    from benchmarks import commands

    handler: Callable[[argparse.Namespace], int] = getattr(commands, f"cmd_{args.command}")
    return handler(args)


def user_errors() -> tuple[type[Exception], ...]:
    """The errors a user causes (one line, exit code 2); the registry's only when the
    registry was imported (it imports torch)."""
    registry = sys.modules.get("architectures._registry")
    return (UserError, *([registry.RegistryError] if registry else []))


if __name__ == "__main__":
    sys.exit(main())
