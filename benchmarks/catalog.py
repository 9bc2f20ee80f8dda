"""The catalogue of registered architectures, for `archbench list` and the README.

``python -m benchmarks.catalog`` rewrites the README's generated sections (the
architecture table from the registry, the results schema from
benchmarks.schema, the noise floors from benchmarks/noise_floors.json); a test
fails while a committed section is out of date.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

import architectures
from benchmarks import noise, schema
from benchmarks.measure.params import count_parameters_of

log = logging.getLogger(__name__)

README = Path("README.md")  # run from the repository's root


def architecture_table(pattern: str | None = None, *, external: bool = False) -> pd.DataFrame:
    """One row per matching architecture: name, family, input, params, paper."""
    rows = []
    for name in architectures.list_architectures(pattern, external=external):
        arch = architectures.spec(name)
        rows.append(
            {
                "name": name,
                "family": str(arch.family),
                "input": f"{arch.input_kind} {schema.shape_text(arch.input_shape)}",
                "params": count_parameters_of(name).total,
                "paper": arch.paper,
            }
        )
    return pd.DataFrame(rows, columns=["name", "family", "input", "params", "paper"])


def format_params(count: int) -> str:
    """A parameter count in millions to three significant figures: 0.270M, 11.0M."""
    return f"{count / 1e6:#.3g}M"


def readme_table() -> str:
    """The README's architecture table in Markdown, ordered by family then size."""
    table = architecture_table()
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
    changed = update_readme()
    log.info("%s %s", README, "updated" if changed else "already up to date")
