"""The report of a run: ``report.md`` and a self-contained ``report.html``.

Both render one list of blocks: the environment, one table per suite and
mode (units in the headers), the figures, the failures, and the findings (see
findings.py): each claim's verdict with its evidence and threshold.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmarks import tasks
from benchmarks.findings import check_all
from benchmarks.measure.device import DTYPES
from benchmarks.plots import Drawn
from benchmarks.results import (
    Run,
    accuracy_texts,
    calibration_peaks,
    labelled,
    summarize,
    was_cut,
    write_atomic,
)
from benchmarks.schema import Mode, Status

REPORT_MD, REPORT_HTML = "report.md", "report.html"


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame


@dataclass(frozen=True)
class Image:
    path: Path
    name: str
    caption: str  # what it shows, numbered in the report: 'Figure 3: ...'


@dataclass(frozen=True)
class Contents:
    """Links to the report's sections (its level-2 headings)."""


Block = Heading | Text | Table | Image | Contents
VERDICT_COLOURS = {"HELD": "#1a7f37", "NOT HELD": "#cf222e", "INCONCLUSIVE": "#9a6700"}


def environment_table(env: dict) -> pd.DataFrame:
    peaks = calibration_peaks(env, set(DTYPES))
    built = (
        f" (built for CUDA {env.get('cuda')}, cuDNN {env.get('cudnn')})" if env.get("cuda") else ""
    )
    items = {
        "device": env.get("device_name"),
        "torch": f"{env.get('torch')}{built}",
        "python": env.get("python"),
        "CPU (count)": f"{env.get('cpu')} ({env.get('cpu_count')})",
        "CPU instruction set (torch; extensions)": (
            f"{env.get('torch_cpu_capability')}; {' '.join(env['cpu_features'])}"
            if "cpu_features" in env
            else None
        ),
        "torch threads": env.get("threads"),
        "calibration matmul (GFLOP/s)": (
            ", ".join(f"{dtype} {peak:.0f}" for dtype, peak in peaks.items()) or None
        ),
        "git commit": env.get("git_commit"),
        "archbench": env.get("archbench"),
        "sessions": len(env.get("sessions", [])),
    }
    return pd.DataFrame({"setting": list(items), "value": [str(v) for v in items.values()]})


def inference_table(rows: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "arch": rows["label"],
            "family": rows["family"],
            "batch": whole(rows["batch_size"]),
            "params (M)": (rows["params"] / 1e6).round(3),
            "MMAC/sample": (rows["macs"] / 1e6).round(1),
            "median (ms)": rows["time_median_ms"].round(3),
            "p90 (ms)": rows["time_p90_ms"].round(3),
            "samples/s": whole(rows["throughput_per_s"]),
            "GFLOP/s": rows["achieved_gflops_per_s"].round(1),
            "hw eff (%)": (100 * rows["hw_efficiency"]).round(1),
            "peak mem (MiB)": rows["peak_mem_mb"].round(1),
        }
    )


def whole(column: pd.Series) -> pd.Series:
    """A column rounded to whole numbers, printed as such (384, not 384.0)."""
    return column.round(0).astype("Int64")


def training_table(rows: pd.DataFrame) -> pd.DataFrame:
    summary = labelled(summarize(rows))
    table = pd.DataFrame(
        {
            "arch": summary["label"],
            "data set": summary["dataset"],
            "batch": whole(summary["batch_size"]),
            "step (ms)": summary["time_median_ms"].round(1),
            "epochs": epochs_texts(summary),
            "train time (s)": whole(summary["train_time_s"]),
            "test acc (%)": accuracy_texts(summary),
            "seeds": summary["seeds"],
        }
    )
    if summary["train_samples_per_s"].notna().any():
        table.insert(5, "train samples/s", whole(summary["train_samples_per_s"]))
    if summary["target_acc"].notna().any():
        table["target (%)"] = 100 * summary["target_acc"]
        table["time to target on validation (s)"] = summary["time_to_target_s"].round(1)
    for task in tasks.all_tasks():
        for metric in task.metrics:
            if metric.column in summary and summary[metric.column].notna().any():
                table[f"{metric.name} (%)"] = (100 * summary[metric.column]).round(1)
                table[f"{metric.name} floor (%)"] = (100 * summary[metric.floor]).round(1)
    return table


def epochs_texts(summary: pd.DataFrame) -> list[str]:
    """'2 of 2', or '1 of 2, cut by the time cap'."""
    texts = []
    for row in summary.to_dict("records"):
        done, planned = row.get("epochs_done"), row.get("epochs")
        if pd.isna(done) or pd.isna(planned):
            texts.append("")
            continue
        cut = ", cut by the time cap" if was_cut(row) else ""
        texts.append(f"{done:.0f} of {planned:.0f}{cut}")
    return texts


def suite_tables(run: Run) -> list[Block]:
    blocks: list[Block] = []
    for suite, part in labelled(run.ok).groupby("suite", sort=False):
        blocks.append(Heading(f"Suite {suite}", 3))
        inference = part[part["mode"] == Mode.INFER].sort_values(["batch_size"], kind="stable")
        if len(inference):
            blocks += [
                Text("Inference (forward pass, synthetic inputs):"),
                Table(inference_table(inference)),
            ]
        training = part[part["mode"] == Mode.TRAIN]
        if len(training):
            blocks += [
                Text(
                    "Training: step time of forward + backward + optimizer step, test "
                    "accuracy after the budget (mean ± sd over seeds, and its 95% confidence "
                    "interval):"
                ),
                Table(training_table(training)),
            ]
    return blocks


def findings_blocks(run: Run) -> list[Block]:
    """Each claim: its headline over the groups, each group's verdict with the evidence
    (and, when inconclusive, what would decide it), and the threshold."""
    blocks: list[Block] = []
    for number, finding in enumerate(check_all(run.table), 1):
        blocks.append(Text(f"**{number}. {finding.claim}: {finding.headline}.**"))
        for judgement in finding.judgements:
            decide = f" To decide: {judgement.to_decide}." if judgement.to_decide else ""
            blocks.append(
                Text(
                    f"- {judgement.group}: **{str(judgement.verdict).upper()}**. "
                    f"{judgement.evidence}.{decide}"
                )
            )
        if not finding.judgements:
            blocks.append(Text(f"- Not measured: {finding.missing}."))
        blocks.append(Text(f"Threshold: {finding.threshold}."))
    return blocks


def build(run: Run, drawn: Drawn) -> list[Block]:
    """The report's blocks, in order."""
    suites = ", ".join(dict.fromkeys(run.table["suite"].dropna()))
    blocks: list[Block] = [
        Heading(f"archbench report: {suites}", 1),
        Text(f"Run directory `{run.path}`: {len(run.table)} rows."),
        *(Text(f"Left out (could not be read): {problem}") for problem in run.left_out),
        Contents(),
        Heading("Environment"),
        Table(environment_table(run.env)),
        Heading("Findings"),
        *findings_blocks(run),
        Heading("Results"),
        *suite_tables(run),
        Heading("Figures"),
    ]
    for number, (name, path) in enumerate(drawn.written.items(), 1):
        caption = drawn.captions.get(name, name.replace("_", " "))
        blocks.append(Image(path, name, f"Figure {number}: {caption}"))
    if drawn.skipped:
        skipped = "; ".join(f"{name} ({why})" for name, why in drawn.skipped.items())
        blocks.append(Text(f"Not drawn, for lack of data: {skipped}."))
    failed = labelled(run.table[run.table["status"] != Status.OK])
    blocks.append(Heading("Failures"))
    if failed.empty:
        blocks.append(Text("None: every job finished."))
    else:
        columns = {
            "label": "arch",
            "mode": "mode",
            "batch_size": "batch",
            "status": "status",
            "message": "message",
        }
        blocks.append(Table(failed[list(columns)].rename(columns=columns)))
    return blocks


def to_markdown(blocks: list[Block], root: Path) -> str:
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {escape_markdown(block.text)}")
        elif isinstance(block, Text):
            parts.append(escape_markdown(block.text))
        elif isinstance(block, Table):
            parts.append(markdown_table(block.frame))
        elif isinstance(block, Contents):
            links = [f"[{h.text}](#{slug(h.text)})" for h in sections(blocks)]
            parts.append("Contents: " + " · ".join(links))
        else:
            path = block.path.relative_to(root).as_posix()
            parts.append(f"![{block.name}]({path})\n\n*{escape_markdown(block.caption)}*")
    return "\n\n".join(parts) + "\n"


def sections(blocks: list[Block]) -> list[Heading]:
    return [block for block in blocks if isinstance(block, Heading) and block.level == 2]


def slug(text: str) -> str:
    """A heading's anchor, as GitHub makes it: 'Findings' -> 'findings'."""
    return re.sub(r"[^a-z0-9 -]", "", text.lower()).replace(" ", "-")


def escape_markdown(text: str) -> str:
    """Text from rows (a config, a message) as Markdown shows it, never as HTML a viewer
    would run: <, > and & escaped; in a table cell, | too."""
    return html.escape(text, quote=False)


def markdown_table(frame: pd.DataFrame) -> str:
    """``frame`` as a Markdown table: texts as written (numbers as tabulate sets them),
    missing cells blank; aligned as ``alignments`` says."""
    numeric = [pd.api.types.is_numeric_dtype(dtype) for dtype in frame.dtypes]
    texts = [i for i, is_number in enumerate(numeric) if not is_number]
    escaped = frame.map(
        lambda cell: escape_markdown(cell).replace("|", "\\|") if isinstance(cell, str) else cell
    )
    cells = escaped.astype(object).where(frame.notna(), None)
    return cells.to_markdown(index=False, disable_numparse=texts, colalign=alignments(frame))


def alignments(frame: pd.DataFrame) -> list[str]:
    """Each column's alignment: columns of numbers, or of texts that start with one
    ('94.10 ± 0.35', '2 of 2'), right; names and other texts left."""
    numeric = pd.api.types.is_numeric_dtype
    return [
        "right" if numeric(frame[name]) or starts_with_numbers(frame[name]) else "left"
        for name in frame.columns
    ]


def starts_with_numbers(column: pd.Series) -> bool:
    """Whether every filled cell of a text column starts with a number."""
    filled = column.dropna().astype(str)
    filled = filled[filled != ""]
    return bool(len(filled)) and bool(filled.str.match(r"[+-]?\d").all())


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1400px; margin: 2em auto; padding: 0 1em;
       color: #222; }
table { border-collapse: collapse; font-size: 0.85em; }
.table { overflow-x: auto; margin: 0.5em 0 1.5em; }
ul { margin: 0.3em 0; }
th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #ddd; white-space: nowrap; }
.left { text-align: left; } .right { text-align: right; }
figure { margin: 0.5em 0 2em; }
img { max-width: 100%; }
figcaption { font-size: 0.9em; color: #555; margin-top: 0.3em; }
nav a { margin-right: 1em; }
"""


def to_html(blocks: list[Block]) -> str:
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            level = block.level
            parts.append(f'<h{level} id="{slug(block.text)}">{html.escape(block.text)}</h{level}>')
        elif isinstance(block, Text) and block.text.startswith("- "):  # a list item
            parts.append(f"<ul><li>{coloured_verdicts(inline_html(block.text[2:]))}</li></ul>")
        elif isinstance(block, Text):
            parts.append(f"<p>{coloured_verdicts(inline_html(block.text))}</p>")
        elif isinstance(block, Table):  # scrolls sideways when wider than the page
            parts.append(f'<div class="table">{html_table(block.frame)}</div>')
        elif isinstance(block, Contents):
            links = (
                f'<a href="#{slug(h.text)}">{html.escape(h.text)}</a>' for h in sections(blocks)
            )
            parts.append(f"<nav>Contents: {''.join(links)}</nav>")
        else:
            data = base64.b64encode(block.path.read_bytes()).decode()
            parts.append(
                f'<figure id="{block.name}"><img alt="{html.escape(block.name)}" '
                f'src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(block.caption)}</figcaption></figure>"
            )
    body = "\n".join(parts)
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>archbench report</title>"
        f"<style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def html_table(frame: pd.DataFrame) -> str:
    """``frame`` as an HTML table: cells as written (whole numbers without '.0'), missing
    ones blank, aligned as ``alignments`` says."""
    aligned = alignments(frame)
    head = "".join(
        f'<th class="{a}">{html.escape(str(c))}</th>'
        for c, a in zip(frame.columns, aligned, strict=True)
    )
    rows = []
    for record in frame.itertuples(index=False):
        cells = ("" if pd.isna(value) else html.escape(str(value)) for value in record)
        rows.append(
            "".join(f'<td class="{a}">{c}</td>' for c, a in zip(cells, aligned, strict=True))
        )
    body = "".join(f"<tr>{row}</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def coloured_verdicts(text: str) -> str:
    """A verdict in bold, coloured: held green, not held red, inconclusive amber."""
    for verdict, colour in VERDICT_COLOURS.items():
        text = text.replace(
            f"<strong>{verdict}</strong>", f'<strong style="color: {colour}">{verdict}</strong>'
        )
    return text


def inline_html(text: str) -> str:
    """The report's inline Markdown (**bold**, `code`) as HTML."""
    escaped = html.escape(text)
    for marker, tag in (("**", "strong"), ("`", "code")):
        pieces = escaped.split(marker)
        escaped = "".join(
            piece if index % 2 == 0 else f"<{tag}>{piece}</{tag}>"
            for index, piece in enumerate(pieces)
        )
    return escaped


def write_report(run: Run, drawn: Drawn) -> tuple[Path, Path]:
    """Write report.md and report.html into the run directory; returns their paths."""
    blocks = build(run, drawn)
    markdown, page = run.path / REPORT_MD, run.path / REPORT_HTML
    write_atomic(markdown, to_markdown(blocks, run.path))
    write_atomic(page, to_html(blocks))
    return markdown, page
