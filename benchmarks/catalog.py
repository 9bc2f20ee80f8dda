"""The catalogue of the zoo, for `archbench list` and the README.

``python -m benchmarks.catalog`` rewrites the zoo's index (benchmarks/zoo.json,
which `archbench list` reads) and the README's generated sections (the
architecture table from the registry, the results schema from
benchmarks.schema, the noise floors from benchmarks/noise_floors.json); a test
fails while a committed one is out of date.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

import architectures
from benchmarks import listing, noise, schema

log = logging.getLogger(__name__)

README = Path("README.md")  # run from the repository's root


def zoo_rows() -> list[dict[str, Any]]:
    """One row per architecture of the zoo (not plug-ins): name, family, input, params,
    paper."""
    names = architectures.list_architectures()
    own = [name for name in names if zoo_builder(architectures.spec(name).builder)]
    return [listing.registry_row(name) for name in own]


def zoo_builder(builder: Any) -> bool:
    return str(getattr(builder, "__module__", "")).startswith("architectures.")


def index_text() -> str:
    """The zoo's index as ``archbench list`` reads it."""
    return json.dumps(zoo_rows(), indent=1) + "\n"


def format_params(count: int) -> str:
    """A parameter count in millions to three significant figures: 0.270M, 11.0M."""
    return f"{count / 1e6:#.3g}M"


def readme_table() -> str:
    """The README's architecture table in Markdown, ordered by family then size."""
    table = pd.DataFrame(zoo_rows())
    table = table.assign(rank=table["family"].map(lambda f: architectures.Family(f).rank))
    table = table.sort_values(["rank", "params", "name"]).drop(columns="rank")
    table["params"] = [f"{count:,} ({format_params(count)})" for count in table["params"]]
    return table.drop(columns="input").to_markdown(index=False)


def generated_sections() -> dict[str, str]:
    """The README's generated sections by name."""
    return {
        "architectures": readme_table(),
        "results-schema": schema.schema_markdown(),
        "noise-floors": noise.floors_markdown(),
    }


def markers(name: str) -> tuple[str, str]:
    """The comment lines that enclose a generated README section."""
    return (
        f"<!-- generated: {name} (python -m benchmarks.catalog) -->",
        f"<!-- end generated: {name} -->",
    )


def _split(text: str, name: str) -> tuple[str, str, str]:
    """``text`` as (before the section, the section's content, after it)."""
    start, end = markers(name)
    head, found_start, rest = text.partition(start)
    content, found_end, tail = rest.partition(end)
    if not (found_start and found_end):
        raise ValueError(f"the README lacks the markers {start!r} ... {end!r}")
    return head, content, tail


def readme_section(text: str, name: str) -> str:
    """The current content of the generated section ``name`` in a README's ``text``."""
    return _split(text, name)[1].strip()


def update_index() -> bool:
    """Rewrite the zoo's index; True when something changed."""
    text, original = index_text(), listing.INDEX.read_text() if listing.INDEX.exists() else ""
    listing.INDEX.write_text(text)
    return text != original


def update_readme(path: Path = README) -> bool:
    """Rewrite every generated section of ``path``; True when something changed."""
    text = original = path.read_text()
    for name, content in generated_sections().items():
        head, _, tail = _split(text, name)
        start, end = markers(name)
        text = f"{head}{start}\n{content}\n{end}{tail}"
    path.write_text(text)
    return text != original


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for path, changed in ((listing.INDEX, update_index()), (README, update_readme())):
        log.info("%s %s", path, "updated" if changed else "already up to date")
