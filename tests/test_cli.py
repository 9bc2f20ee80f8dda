"""`archbench` as a user meets it: list, --version, --help, bad input, and the README's table."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest
import torch

import architectures
from architectures import user
from benchmarks import catalog, commands, listing, options, results, runner
from benchmarks.cli import build_parser, main
from benchmarks.commands import build_suite
from benchmarks.measure.device import DTYPES, Backend

from helpers import README, TINY_SUITE, result_row, run_cli, write_run


def test_list_prints_every_architecture_with_family_input_and_params(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for row in catalog.zoo_rows():
        assert row["name"] in out
    assert "269,722" in out  # resnet20
    assert "image 3x32x32" in out and "separable" in out


def test_list_with_a_wildcard_shows_only_matches(capsys):
    assert main(["list", "resnext*", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "name,family,input,params,paper"
    assert [line.split(",")[0] for line in lines[1:]] == architectures.list_architectures(
        "resnext*"
    )


def test_list_without_match_is_one_line_and_exit_2(capsys):
    assert main(["list", "nosuchnet*"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no architecture matches 'nosuchnet*'" in err


@pytest.mark.parametrize(
    "argv", [["--version"], ["--help"], ["run", "--help"], ["list"], ["list", "res*"]]
)
def test_fast_commands_import_neither_torch_nor_pandas(argv):
    """--help, --version and list answer at once: torch alone takes seconds to import."""
    script = (
        "import sys\nfrom benchmarks.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print(sorted({'torch', 'pandas', 'architectures'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


def test_the_zoo_index_list_reads_is_up_to_date():
    """`archbench list` reads benchmarks/zoo.json: python -m benchmarks.catalog rewrites it."""
    assert listing.INDEX.read_text() == catalog.index_text()


def test_options_mirror_the_code_that_uses_them():
    assert tuple(DTYPES) == options.DTYPE_NAMES
    assert tuple(options.BACKEND_HELP) == Backend.names()
    assert listing.PLUGIN_GROUP == user.PLUGIN_GROUP


@pytest.mark.parametrize("pattern", [None, "resnet", "resnet*", "*_dw", "plain[25]*", "nothing"])
def test_list_matches_names_as_the_registry_does(pattern):
    zoo = [row["name"] for row in catalog.zoo_rows()]
    expected = [name for name in architectures.list_architectures(pattern) if name in zoo]
    assert listing.matching(zoo, pattern) == expected


def test_list_external_shows_native_inputs_without_building(capsys, monkeypatch):
    monkeypatch.setattr("benchmarks.measure.params.count_parameters_of", pytest.fail, raising=True)
    assert main(["list", "--external", "torchvision:inception_v3", "--format", "csv"]) == 0
    assert "torchvision:inception_v3,other,image 3x299x299,," in capsys.readouterr().out


def test_list_external_params_on_demand(capsys):
    assert main(["list", "--external", "torchvision:resnet18", "--params"]) == 0
    assert "11,689,512" in capsys.readouterr().out


def test_console_script_version_and_help():
    version = subprocess.run(
        [sys.executable, "-m", "benchmarks.cli", "--version"], capture_output=True, text=True
    )
    assert version.returncode == 0 and version.stdout.startswith("archbench ")
    help_text = subprocess.run(
        [sys.executable, "-m", "benchmarks.cli", "--help"], capture_output=True, text=True
    )
    assert help_text.returncode == 0 and "list" in help_text.stdout


def test_unknown_command_exits_2():
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("section", catalog.generated_sections())
def test_readme_generated_sections_are_current(section):
    readme = README.read_text()
    expected = catalog.generated_sections()[section].strip()
    assert catalog.readme_section(readme, section) == expected, (
        f"README's {section} section is stale: run `python -m benchmarks.catalog`"
    )


def test_run_writes_rows_results_and_environment(tmp_path, capsys, caplog):
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE)
    out = tmp_path / "run"
    assert (
        main(["run", "--suite", str(suite), "--out", str(out), "--threads", "1", "--no-plots"]) == 0
    )
    table = results.load(out / results.RESULTS_FILE)
    assert list(table["mode"]) == ["infer", "train"] and set(table["status"]) == {"ok"}
    assert (table["threads"] == 1).all() and (table["hw_efficiency"] > 0).all()
    env = json.loads((out / results.ENV_FILE).read_text())
    assert env["calibration"]["matmul_gflops_per_s"] > 0 and env["threads"] == 1
    assert "resnet20_dw" in capsys.readouterr().out and "efficiency only" in caplog.text
    assert not (out / results.CURVES_FILE).exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--arch", "resnet21"], "unknown architecture 'resnet21'; did you mean"),
        (["--suite", "quik"], "unknown suite 'quik'; did you mean quick"),
        (["--suite", "missing.toml"], "suite file missing.toml does not exist"),
        (["--batch-sizes", "0,1"], "expected a positive integer, not '0'"),
        (["--batch-sizes", "one"], "expected a positive integer, not 'one'"),
        (["--dtype", "fp64"], "invalid choice: 'fp64'"),
        (["--train-batch-size", "1"], "train_batch_size must be 0"),
        (["--device", "cuda"], "no CUDA device"),
        (["--dataset", "cifar10", "--data-root", "nowhere"], "cifar10 not found under nowhere"),
        (["--input-size", "0"], "expected a positive integer, not '0'"),
        (["--seeds", "a,b"], "expected comma-separated integers"),
        (["--epochs", "0"], "expected a positive integer, not '0'"),
        (["--time-budget", "-1"], "expected a positive number, not '-1'"),
        (["--measure", "flops,foo"], "unknown measurement ['foo']"),
    ],
)
def test_bad_run_input_is_one_line_exit_2_and_writes_nothing(argv, message, tmp_path, capsys):
    if "cuda" in argv and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "run"
    code = run_cli(["run", "--out", str(out), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_default_suite_trains_on_the_embedded_digits(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["run", "--arch", "resnet20_dw", "--batch-sizes", "2", "--epochs", "2"]
    argv += ["--time-budget", "600"]  # two epochs, however busy the machine
    argv += ["--train-subset", "2000", "--threads", "2", "--out", str(out), "--no-plots"]
    assert main(argv) == 0
    table = results.load(out)
    trained = table[table["mode"] == "train"].iloc[0]
    assert trained["dataset"] == "mnist5k" and trained["input_shape"] == "1x32x32"
    assert trained["test_acc"] > 0.3  # chance is 0.1
    assert trained["train_size"] + trained["val_size"] == 2000  # a tenth held out
    assert len((out / results.CURVES_FILE).read_text().splitlines()) == 2
    assert "test acc (%)" in capsys.readouterr().out


def test_malformed_suite_file_and_unwritable_out(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('architectures = ["resnet20"')
    assert run_cli(["run", "--suite", str(bad), "--out", str(tmp_path / "a")]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert run_cli(["run", "--arch", "resnet20", "--out", str(blocker / "run")]) == 2
    assert "cannot write to" in capsys.readouterr().err


def test_existing_run_without_resume_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / results.ROWS_FILE).write_text("")
    assert run_cli(["run", "--arch", "resnet20", "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_inspect_prints_a_per_module_table(capsys):
    assert main(["inspect", "resnet20", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "stages" in out and "40,551,040" in out and "1x64x8x8" in out
    assert run_cli(["inspect", "resnet21"]) == 2


def test_batch_size_flags_apply_to_every_net():
    """The quick suite's fusion nets train at their own batch size (8); the flags, like
    --seeds, override the entries' own values."""
    parser = build_parser()
    args = parser.parse_args(["run", "--batch-sizes", "2", "--train-batch-size", "0"])
    suite = build_suite(args)
    assert {suite.train_batch_size_for(entry) for entry in suite.entries} == {0}
    assert {suite.batch_sizes_for(entry) for entry in suite.entries} == {(2,)}


def test_repeated_arch_flags_add_up():
    args = build_parser().parse_args(["run", "--arch", "resnet20", "--arch", "plain20"])
    assert [entry.arch for entry in build_suite(args).entries] == ["resnet20", "plain20"]


def test_abbreviated_flags_are_refused(capsys):
    assert run_cli(["run", "--batch-size", "3"]) == 2
    assert "unrecognized arguments: --batch-size" in capsys.readouterr().err


def test_timing_flags_set_the_suites_timing():
    args = build_parser().parse_args(
        ["run", "--timing-warmup", "0", "--timing-samples", "300", "--min-time", "0.25"]
    )
    timing = build_suite(args).timing
    assert (timing.warmup, timing.min_samples, timing.min_time_s) == (0, 300, 0.25)
    assert timing.max_samples >= 300


def test_rounds_come_from_the_suite_unless_the_flag_says(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('architectures = ["resnet20"]\nrounds = 4\n')
    parser = build_parser()
    assert build_suite(parser.parse_args(["run", "--suite", str(path)])).rounds == 4
    assert (
        build_suite(parser.parse_args(["run", "--suite", str(path), "--rounds", "2"])).rounds == 2
    )
    assert build_suite(parser.parse_args(["run"])).rounds == 1


def test_the_rounds_flag_sets_every_nets_rounds(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('architectures = [{arch = "resnet20", rounds = 4}, "plain20"]\n')
    suite = build_suite(build_parser().parse_args(["run", "--suite", str(path), "--rounds", "2"]))
    assert [suite.rounds_for(entry) for entry in suite.entries] == [2, 2]


def test_rounds_a_suite_sets_are_named_where_they_are_refused(tmp_path, capsys):
    path = tmp_path / "mine.toml"
    path.write_text('architectures = ["plain20", {arch = "resnet20", rounds = 4}]\n')
    assert run_cli(["run", "--suite", str(path), "--executor", "ray"]) == 2
    assert "suite mine times in up to 4 rounds: add --rounds 1" in capsys.readouterr().err


def test_a_suite_whose_nets_arch_replaced_says_so():
    args = build_parser().parse_args(["run", "--arch", "resnet20"])
    assert build_suite(args).description == "resnet20 with the quick suite's settings"


def test_accuracy_alone_writes_no_inference_rows():
    args = build_parser().parse_args(["run", "--arch", "resnet20", "--measure", "accuracy"])
    jobs = runner.expand_jobs(build_suite(args), torch.device("cpu"), threads=1)
    assert [job.identity.mode.value for job in jobs] == ["train"]


def test_a_model_of_another_library_is_timed_at_its_own_input(tmp_path):
    """In the default suite (mnist5k), torchvision's resnet18 is measured at 3x224x224
    with its 1,000-class head: 1.814 GMACs, as torchvision documents."""
    out = tmp_path / "run"
    argv = ["run", "--arch", "torchvision:resnet18", "--measure", "flops", "--batch-sizes", "1",
            "--train-batch-size", "0", "--no-plots", "--out", str(out)]  # fmt: skip
    assert run_cli(argv) == 0
    (row,) = results.load(out).to_dict("records")
    assert (row["dataset"], row["input_shape"]) == ("synthetic", "3x224x224")
    assert round(row["macs"] / 1e9, 3) == 1.814 and row["params"] == 11_689_512


def test_input_size_applies_to_the_jobs_that_do_not_train():
    args = build_parser().parse_args(["run", "--arch", "resnet20", "--input-size", "64"])
    jobs = runner.expand_jobs(build_suite(args), torch.device("cpu"), threads=1)
    shapes = {(job.identity.mode.value, job.trains): job.identity.input_shape for job in jobs}
    assert shapes == {("infer", False): (3, 64, 64), ("train", True): (1, 32, 32)}


def test_a_named_net_gets_the_data_set_its_kind_gets_in_the_suite():
    args = build_parser().parse_args(["run", "--arch", "fusion_concat", "resnet20"])
    datasets = {
        entry.arch: build_suite(args).dataset_for(entry) for entry in build_suite(args).entries
    }
    assert datasets == {"fusion_concat": "sort_of_clevr:1200", "resnet20": "mnist5k"}


def test_the_summary_leaves_what_was_not_measured_blank(tmp_path, capsys):
    """A FLOPs-only pass printed 'nan' in every timing column."""
    row = result_row("resnet20", "resnet")
    for column in ("time_median_ms", "time_p90_ms", "throughput_per_s", "peak_mem_mb"):
        row[column] = None
    step = result_row("plain20", "plain", mode="train", batch_size=64, test_acc=None)
    commands.print_summary(results.load(write_run(tmp_path / "run", [row, step])))
    out = capsys.readouterr().out
    timed_step = next(line for line in out.splitlines() if line.startswith("plain20"))
    assert timed_step.split()[-2:] != ["1", "ok"]  # no seeds: it trained to no accuracy
    assert "resnet20" in out and "nan" not in out
    assert "input" in out and "1x32x32" in out  # the input each row ran (mnist5k's)


@pytest.mark.parametrize(
    ("argv", "quiet", "verbose"),
    [(["run"], False, False), (["-q", "run"], True, False), (["run", "-q"], True, False),
     (["list", "-v"], False, True)],
)  # fmt: skip
def test_quiet_and_verbose_before_or_after_the_command(argv, quiet, verbose):
    args = build_parser().parse_args(argv)
    assert (args.quiet, args.verbose) == (quiet, verbose)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--resume"], "--resume finishes the run in --out: name it (--out DIR)"),
        (["--log-dir", "FILE"], "--log-dir {tmp}/afile: cannot write there"),
        (["--threshold", "x=1"], None),
    ],
)
def test_run_refuses_before_measuring(tmp_path, capsys, argv, message):
    """One line and exit 2, before a job runs (--log-dir at a file ran every job, then
    ended in a traceback)."""
    (tmp_path / "afile").write_text("")
    argv = [str(tmp_path / "afile") if arg == "FILE" else arg for arg in argv]
    if message is None:  # compare's flag: the metric names in words
        code = run_cli(["compare", str(tmp_path), str(tmp_path), *argv])
        message = "choose from time_median_ms, peak_mem_mb, instructions"
    else:
        out = [] if "--resume" in argv else ["--out", str(tmp_path / "run")]
        code = run_cli(["run", "--arch", "resnet20", *out, *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert message.format(tmp=tmp_path) in err
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(importlib.util.find_spec("timm") is not None, reason="timm is installed")
def test_listing_timm_models_without_timm_says_how_to_install_it(capsys):
    assert main(["list", "--external", "timm:vit_*"]) == 2
    assert "timm models need timm, which is not installed: pip install timm" in (
        capsys.readouterr().err
    )
