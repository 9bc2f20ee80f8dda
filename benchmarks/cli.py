"""`archbench`: the command line. The only module that prints."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import architectures
from benchmarks import __version__
from benchmarks.catalog import architecture_table

USER_ERRORS = (architectures.RegistryError,)


def cmd_list(args: argparse.Namespace) -> int:
    table = architecture_table(args.pattern, external=args.external)
    if table.empty:
        raise architectures.RegistryError(
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archbench",
        description="Compare neural-network architectures on one harness: "
        "parameters, FLOPs, latency, memory and accuracy.",
    )
    parser.add_argument("--version", action="version", version=f"archbench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress in detail")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.handler(args)
    except USER_ERRORS as error:
        print(f"archbench: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
