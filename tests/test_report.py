"""report.md and report.html, and the plot/report commands as a user meets them."""

from __future__ import annotations

import re

from benchmarks import findings, plots, report, results
from benchmarks.cli import main

from helpers import TINY_SUITE, result_row, run_cli, seeded_net, write_run


def small_run(tmp_path, failed: bool = False):
    rows = (
        seeded_net("plain20", "plain", 0.91)
        + seeded_net("plain56", "plain", 0.88)
        + seeded_net("resnet56", "resnet", 0.93)
    )
    if failed:
        rows.append(result_row("densenet40_k12", "densenet", status="oom", message="out of memory"))
    return write_run(tmp_path / "run", rows)


def test_markdown_report_has_environment_findings_tables_figures(tmp_path):
    run = results.load_run(small_run(tmp_path))
    markdown_path, _ = report.write_report(run, plots.draw(run))
    markdown = markdown_path.read_text()
    for heading in ("## Environment", "## Findings", "## Results", "## Figures", "## Failures"):
        assert heading in markdown
    assert "Residual connections beat plain nets as depth grows: held in 1 of 1 group" in markdown
    assert "- mnist5k, cpu, fp32: **HELD**. plain20 91.0% (3 seeds)" in markdown
    assert markdown.count(": not measured.**") == len(findings.CHECKS) - 1
    assert "95% CI" in markdown  # the accuracy of a net trained with three seeds
    assert "median (ms)" in markdown and "test acc (%)" in markdown
    for link in re.findall(r"!\[[^]]*\]\(([^)]+)\)", markdown):
        assert (run.path / link).is_file(), link
    assert "None: every job finished." in markdown
    assert "Not drawn, for lack of data: " in markdown and "training_curves" in markdown


def test_html_report_is_self_contained(tmp_path):
    run = results.load_run(small_run(tmp_path))
    _, html_path = report.write_report(run, plots.draw(run))
    page = html_path.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("data:image/png;base64,") >= 3
    assert "<strong>1. Residual connections" in page
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", page)  # nothing to fetch


def test_html_report_reads_well_at_1400_px(tmp_path):
    """A table of contents, numbered figure captions, coloured verdicts, whole numbers
    without '.0', text columns left-aligned and no blank header."""
    run = results.load_run(small_run(tmp_path))
    _, html_path = report.write_report(run, plots.draw(run))
    page = html_path.read_text()
    assert '<nav>Contents: <a href="#environment">Environment</a>' in page
    assert '<h2 id="findings">Findings</h2>' in page
    assert re.search(r"<figcaption>Figure \d: Median latency per architecture", page)
    assert '<strong style="color: #1a7f37">HELD</strong>' in page
    assert "max-width: 1400px" in page
    assert '<th class="left">setting</th>' in page and "<th></th>" not in page
    assert '<td class="left">plain20</td>' in page
    inference = next(table for table in page.split("<table>") if "samples/s</th>" in table)
    header = re.findall(r"<th[^>]*>([^<]*)</th>", inference)
    rows = [re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in inference.split("<tr>")[2:]]
    for column in ("batch", "samples/s"):
        cells = [row[header.index(column)] for row in rows]
        assert cells and all(cell.isdigit() for cell in cells), (column, cells)  # not '384.0'


def test_markdown_figures_have_numbered_captions(tmp_path):
    run = results.load_run(small_run(tmp_path))
    markdown = report.to_markdown(report.build(run, plots.draw(run)), run.path)
    assert "Contents: [Environment](#environment) · [Findings](#findings)" in markdown
    assert re.search(r"\.png\)\n\n\*Figure \d: Median latency per architecture", markdown)


def test_failures_are_listed(tmp_path):
    run = results.load_run(small_run(tmp_path, failed=True))
    markdown = report.to_markdown(report.build(run, plots.draw(run)), run.path)
    failures = markdown.split("## Failures")[1]
    assert "densenet40_k12" in failures and "out of memory" in failures


def test_report_and_plot_commands(tmp_path, capsys):
    path = small_run(tmp_path)
    assert main(["plot", str(path)]) == 0
    assert "not drawn: training_curves" in capsys.readouterr().out
    assert main(["report", str(path)]) == 0
    assert (path / report.REPORT_MD).exists() and (path / report.REPORT_HTML).exists()
    assert run_cli(["report", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_run_ends_with_figures_and_report_unless_told_not_to(tmp_path, capsys):
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE)
    out = tmp_path / "run"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--threads", "1"]) == 0
    assert (out / report.REPORT_HTML).exists() and (
        out / plots.FIGURES_DIR / "latency.png"
    ).exists()
    assert "report: " in capsys.readouterr().out
    bare = tmp_path / "bare"
    argv = ["run", "--suite", str(suite), "--out", str(bare), "--threads", "1", "--no-plots"]
    assert main(argv) == 0
    assert (bare / results.RESULTS_FILE).exists() and not (bare / plots.FIGURES_DIR).exists()


def test_markdown_tables_leave_missing_cells_blank_and_texts_as_written():
    import pandas as pd

    frame = pd.DataFrame({"arch": ["a", "b"], "test acc (%)": ["94.10", "47.12"],
                          "relational (%)": [float("nan"), 45.8],
                          "message": ["", "out of memory"]})  # fmt: skip
    text = report.to_markdown([report.Table(frame)], root=None)  # type: ignore[arg-type]
    assert "nan" not in text
    assert "94.10" in text and "47.12" in text
    rule = text.splitlines()[1].split("|")[1:-1]  # names and texts left, numbers right
    assert [cell.startswith(":") and not cell.endswith(":") for cell in rule] == [
        True, False, False, True
    ]  # fmt: skip


def test_the_environment_table_names_the_cpus_instruction_set():
    env = {"cpu": "AMD EPYC", "cpu_count": 2, "torch_cpu_capability": "AVX2",
           "cpu_features": ["avx2", "fma"]}  # fmt: skip
    table = report.environment_table(env).set_index("setting")["value"]
    assert table["CPU instruction set (torch; extensions)"] == "AVX2; avx2 fma"
    older = report.environment_table({"cpu": "AMD EPYC"}).set_index("setting")["value"]
    assert older["CPU instruction set (torch; extensions)"] == "None"
