"""What the harness's own benchmark scripts share: common flags and the JSON report."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import torch

from benchmarks.measure.device import resolve_device
from benchmarks.results import environment, write_atomic

log = logging.getLogger(__name__)


def parser(doc: str) -> argparse.ArgumentParser:
    """A parser with --device, --threads and --out, described by ``doc``'s first paragraph."""
    result = argparse.ArgumentParser(description=doc.split("\n\n")[0], allow_abbrev=False)
    result.add_argument("--device", default="auto")
    result.add_argument("--threads", type=int, default=torch.get_num_threads())
    result.add_argument("--out", type=Path, help="write the results as JSON here")
    return result


def start(args: argparse.Namespace) -> torch.device:
    """Logging to the terminal, the thread count fixed, the device resolved."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    return resolve_device(args.device)


def write_report(args: argparse.Namespace, device: torch.device, payload: dict[str, Any]) -> None:
    """Write ``payload`` with the environment to --out, when given."""
    if args.out:
        report = {"environment": environment(device, args.threads), **payload}
        write_atomic(args.out, json.dumps(report, indent=2, default=str) + "\n")
        log.info("written to %s", args.out)
