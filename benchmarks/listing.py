"""`archbench list`, answered at once.

The zoo's names, families, inputs, parameter counts and papers are read from its
index, ``benchmarks/zoo.json`` (written from the registry by ``python -m
benchmarks.catalog``; a test fails while it is out of date), so listing the zoo
imports neither torch nor pandas. External models (``--external``) and installed
plug-ins need the registry; an external model's parameters are counted only with
``--params`` (each model is built, on the meta device where it can be).
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import importlib.metadata
import importlib.util
import json
import logging
import sys
from pathlib import Path
from typing import Any

from tabulate import tabulate

from benchmarks.errors import UserError

log = logging.getLogger(__name__)
INDEX = Path(__file__).with_name("zoo.json")
COLUMNS = ("name", "family", "input", "params", "paper")
PLUGIN_GROUP = "archbench.architectures"  # architectures.user's (a test checks they agree)


def cmd_list(args: argparse.Namespace) -> int:
    rows = architecture_rows(args.pattern, external=args.external, params=args.params)
    if not rows:
        timm_missing = importlib.util.find_spec("timm") is None
        if args.external and (args.pattern or "").startswith("timm:") and timm_missing:
            raise UserError("timm models need timm, which is not installed: pip install timm")
        raise UserError(
            f"no architecture matches {args.pattern!r}"
            + ("" if args.external else " (add --external for torchvision:/timm: models)")
        )
    if args.params and not args.external:
        log.info("--params counts external models' parameters; the zoo's are always there")
    if args.format == "csv":
        writer = csv.DictWriter(sys.stdout, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return 0
    if args.format == "table":
        rows = [{**row, "params": thousands(row["params"])} for row in rows]
    style = "pipe" if args.format == "markdown" else "simple"
    print(tabulate(rows, headers="keys", tablefmt=style, disable_numparse=True))
    return 0


def thousands(count: int | str) -> str:
    """11,689,512; a count not made ('') stays blank."""
    return f"{count:,}" if isinstance(count, int) else count


def architecture_rows(
    pattern: str | None = None, *, external: bool = False, params: bool = False
) -> list[dict[str, Any]]:
    """One row per matching architecture: the zoo's from its index, the others (external
    models, plug-ins) from the registry."""
    index = read_index()
    if not external and not plugins_installed():
        return [index[name] for name in matching(index, pattern)]
    import architectures  # torch, and torchvision/timm for their names

    names = architectures.list_architectures(pattern, external=external)
    external_model = [":" in name for name in names]  # a plug-in's parameters are counted
    return [
        index.get(name) or registry_row(name, count=params or not outside)
        for name, outside in zip(names, external_model, strict=True)
    ]


def read_index() -> dict[str, dict[str, Any]]:
    """The zoo's rows by name."""
    return {row["name"]: row for row in json.loads(INDEX.read_text())}


def matching(names: Any, pattern: str | None) -> list[str]:
    """``names`` matching a shell-style wildcard; a pattern without one matches as a
    substring (as the registry's ``list_architectures``)."""
    if pattern is not None and not any(char in pattern for char in "*?["):
        pattern = f"*{pattern}*"
    return sorted(name for name in names if pattern is None or fnmatch.fnmatchcase(name, pattern))


def plugins_installed() -> bool:
    return bool(importlib.metadata.entry_points(group=PLUGIN_GROUP))


def registry_row(name: str, *, count: bool = True) -> dict[str, Any]:
    """A row from the registry; its parameters counted (the model built) when ``count``."""
    import architectures

    arch = architectures.spec(name)
    return {
        "name": name,
        "family": str(arch.family),
        "input": f"{arch.input_kind} {'x'.join(map(str, arch.input_shape))}",
        "params": parameters_of(name) if count else "",
        "paper": arch.paper,
    }


def parameters_of(name: str) -> int:
    from benchmarks.measure.params import count_parameters_of  # pandas: only when counting

    return count_parameters_of(name).total
