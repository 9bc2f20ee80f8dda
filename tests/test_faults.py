"""What a hostile user can do to a run: bad suites, broken files, concurrent runs, faults.

Each case ends in one clear line and exit code 2 (or a warning and a repair), never a
traceback, and a run never loses a row it finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import resource
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

import architectures
from architectures import Family
from benchmarks import results, run_dir, runner
from benchmarks.data import load_images, sort_of_clevr
from benchmarks.errors import UserError
from benchmarks.measure import memory
from benchmarks.schema import SAMPLES_COLUMN, Status
from benchmarks.suites import Entry, Suite, parse_suite

from helpers import (
    TINY_SUITE,
    TinyNet,
    result_row,
    run_cli,
    write_fake_cifar10,
    write_image_tree,
    write_run,
)

ONE_NET = 'architectures = ["resnet20"]\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (ONE_NET + 'channels_last = "false"', r'channels_last = "false": expected true or false'),
        (ONE_NET + 'compile = "no"', r'compile = "no": expected true or false'),
        (ONE_NET + "batch_sizes = [true]", r"batch_sizes = \[true\]: expected a list of integers"),
        (ONE_NET + "train_batch_size = 2.5", r"train_batch_size = 2.5: expected an integer"),
        (ONE_NET + 'seeds = ["a"]', r'seeds = \["a"\]: expected a list of integers'),
        (ONE_NET + 'measure = "flops"', r'measure = "flops": expected a list of strings'),
        (ONE_NET + "dtype = 16", r"dtype = 16: expected a string"),
        (ONE_NET + "timing = 3", r"timing = 3: expected a table"),
        (ONE_NET + "[training]\nepochs = 1.5", r"training.epochs = 1.5: expected an integer"),
        (ONE_NET + "[training]\nlr = true", r"training.lr = true: expected a number"),
        (ONE_NET + '[timing]\nwarmup = "5"', r'timing.warmup = "5": expected an integer'),
        ('architectures = "resnet20"', r'architectures = "resnet20": expected a list'),
        (
            'architectures = [{arch = "resnet20", compile = "yes"}]',
            r'resnet20: compile = "yes": expected true or false',
        ),
        (
            'architectures = [{arch = "resnet20", training = {epochs = "2"}}]',
            r'resnet20: training.epochs = "2": expected an integer',
        ),
        (
            'architectures = [{arch = "resnet20", config = {depth = "abc"}}]',
            r'resnet20: config depth = "abc": expected an integer \(its default is 20\)',
        ),
        (
            'architectures = [{arch = "resnet20", config = {depth = -4}}]',
            r"resnet20 with config depth = -4: depth must be 6n\+2",
        ),
        (
            'architectures = [{arch = "resnet20", config = {depth = 20.0}}]',
            r"resnet20: config depth = 20.0: expected an integer",
        ),
        (ONE_NET + 'device = "meta"', r"device must be one of auto, cpu, cuda, not 'meta'"),
        (ONE_NET + "measure = []", r"measure must list at least one"),
        (ONE_NET + "[training]\ntrain_subset = 0", r"train_subset must be at least 2"),
        (ONE_NET + "[training]\ntarget_accuracy = 5", r"target_accuracy is a fraction"),
        (ONE_NET + "[training]\ntarget_accuracy = -0.5", r"target_accuracy is a fraction"),
        (ONE_NET + "[training]\nlr = nan", r"lr must be a positive number, not nan"),
        (ONE_NET + "[training]\nweight_decay = -1", r"weight_decay must be 0 or more"),
        (ONE_NET + "[training]\nmomentum = 1.5", r"momentum must be in \[0, 1\)"),
        (ONE_NET + "[training]\neval_batch_size = 0", r"eval_batch_size must be positive"),
        (ONE_NET + "[timing]\nmin_time_s = -5", r"min_time_s must be 0 or more seconds"),
        (ONE_NET + "[timing]\nmin_time_s = nan", r"min_time_s must be 0 or more seconds"),
    ],
)
def test_a_suite_of_wrong_types_is_refused_naming_key_value_and_type(text, message):
    with pytest.raises(UserError, match=message):
        parse_suite("bad", text, source="bad.toml")


def test_a_float_key_takes_an_integer():
    suite = parse_suite("ok", ONE_NET + "[training]\nlr = 1\n[timing]\nmin_time_s = 0", source="x")
    assert suite.training.lr == 1 and suite.timing.min_time_s == 0


# --- a run directory: partial lines, full disks, one run at a time, resume --------------


@pytest.fixture
def tiny_suite(tmp_path) -> str:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_SUITE)  # two jobs: inference at batch 2, a training step at 4
    return str(path)


def run_tiny(suite: str, out: Path, *more: str) -> int:
    return run_cli(
        ["run", "--suite", suite, "--out", str(out), "--threads", "1", "--no-plots", *more]
    )


def job_keys(out: Path) -> list[tuple[str, ...]]:
    """The key of every row rows.jsonl holds (read strictly: every line must parse)."""
    lines = (out / results.ROWS_FILE).read_text().splitlines()
    return [results.keys(results.to_frame([json.loads(line)]))[0] for line in lines]


def test_resume_after_a_line_cut_short_keeps_every_row_once(tiny_suite, tmp_path, caplog):
    out = tmp_path / "run"
    assert run_tiny(tiny_suite, out) == 0
    rows = out / results.ROWS_FILE
    rows.write_bytes(rows.read_bytes()[:-200])  # a crash (or a full disk) mid-append
    assert run_tiny(tiny_suite, out, "--resume") == 0
    assert "moved to rows.jsonl.partial" in caplog.text
    assert (out / "rows.jsonl.partial").read_bytes().endswith(b"\n")
    keys = job_keys(out)
    assert len(keys) == len(set(keys)) == 2
    assert run_tiny(tiny_suite, out, "--resume") == 0  # nothing left to do, nothing refused
    assert job_keys(out) == keys
    assert len(results.load(out)) == 2 and run_cli(["compare", str(out), str(out)]) == 0


def test_a_curves_file_cut_short_is_repaired_the_same_way(tmp_path):
    curves = tmp_path / results.CURVES_FILE
    curves.write_text('{"epoch": 1}\n{"epo')
    run_dir.set_aside_partial_line(curves)
    assert curves.read_text() == '{"epoch": 1}\n'
    assert (tmp_path / "curves.jsonl.partial").read_text() == '{"epo\n'


class FullDisk:
    """A directory whose disk fills up on demand: a small tmpfs when this test may mount
    one (root), else a file-size limit (RLIMIT_FSIZE). Filling happens in the child
    process that runs archbench (a limit in pytest's own process would stop its output)."""

    def __init__(self, root: Path, kind: str) -> None:
        self.root, self.kind = root, kind

    def fill(self, growing: Path | None = None) -> None:
        """No more room: the tmpfs filled, or no file may grow past what ``growing``
        holds now (or past a byte). Called in the child."""
        if self.kind == "tmpfs":
            with (self.root / "filler").open("wb") as filler, contextlib.suppress(OSError):
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
        else:
            size = growing.stat().st_size + 10 if growing else 1
            resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))

    def free(self) -> None:
        (self.root / "filler").unlink(missing_ok=True)


def can_mount_tmpfs(path: Path) -> bool:
    if os.geteuid() != 0:
        return False
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path)])
    return mounted.returncode == 0


@pytest.fixture(params=["tmpfs", "fsize"])
def full_disk(request, tmp_path):
    root = tmp_path / "disk"
    root.mkdir()
    if request.param == "tmpfs" and not can_mount_tmpfs(root):
        pytest.skip("mounting a tmpfs needs root (the file-size limit case runs instead)")
    disk = FullDisk(root, request.param)
    yield disk
    disk.free()
    if request.param == "tmpfs":
        subprocess.run(["umount", str(root)], check=True)


def run_filling(disk: FullDisk, argv: list[str], after_rows: int) -> subprocess.CompletedProcess:
    """archbench ARGV in a child process whose disk fills once ``after_rows`` jobs are
    measured (0: before anything is written)."""
    code = (
        "import sys, test_faults\n"
        f"sys.exit(test_faults.filling_main({str(disk.root)!r}, {disk.kind!r}, {argv!r}, "
        f"{after_rows}))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), ""])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)


def filling_main(root: str, kind: str, argv: list[str], after_rows: int) -> int:
    """The child of run_filling."""
    disk, measure, measured = FullDisk(Path(root), kind), runner.execute, []
    out = Path(argv[argv.index("--out") + 1])

    def fill_first(job, calibration=None):
        if len(measured) == after_rows:
            disk.fill(out / results.ROWS_FILE)
        measured.append(job)
        return measure(job, calibration)

    runner.execute = fill_first
    if after_rows == 0:
        disk.fill()
    return run_cli(argv)


def test_a_full_disk_while_appending_loses_no_row(tiny_suite, full_disk):
    out = full_disk.root / "run"
    argv = ["run", "--suite", tiny_suite, "--out", str(out), "--threads", "1", "--no-plots"]
    child = run_filling(full_disk, argv, after_rows=1)  # the first row on disk, not the second
    assert child.returncode == 2, child.stderr
    error = child.stderr.strip().splitlines()[-1]
    assert "No space left" in error or "File too large" in error
    assert "--resume" in error  # the append failed, or (room left in a tmpfs page) results.csv
    assert "Traceback" not in child.stderr
    assert (out / results.ROWS_FILE).read_bytes().endswith(b"\n")  # whole lines only
    assert not list(out.glob("tmp*.tmp"))
    full_disk.free()
    assert run_tiny(tiny_suite, out, "--resume") == 0
    keys = job_keys(out)
    assert len(keys) == len(set(keys)) == 2


def test_a_full_disk_before_the_run_is_one_line(tiny_suite, full_disk):
    out = full_disk.root / "run"
    argv = ["run", "--suite", tiny_suite, "--out", str(out), "--no-plots"]
    child = run_filling(full_disk, argv, after_rows=0)
    assert child.returncode == 2 and "Traceback" not in child.stderr, child.stderr
    assert "cannot write" in child.stderr.strip().splitlines()[-1]  # the lock, or the plan


def test_a_second_run_in_the_same_directory_is_refused_naming_the_first(
    tiny_suite, tmp_path, capsys
):
    out = tmp_path / "run"
    with run_dir.claim(out, [], resume=False):  # a first run, between its claim and its rows
        assert run_tiny(tiny_suite, out) == 2
        (out / results.ROWS_FILE).write_text("")
        assert run_tiny(tiny_suite, out, "--resume") == 2
        for refused in capsys.readouterr().err.strip().splitlines():
            assert f"is in use by another run (pid {os.getpid()} on " in refused
    assert not (out / run_dir.LOCK_FILE).exists()  # released with its run
    (out / results.ROWS_FILE).unlink()
    assert run_tiny(tiny_suite, out) == 0 and len(job_keys(out)) == 2


def test_a_lock_file_left_by_a_dead_process_does_not_block(tiny_suite, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / run_dir.LOCK_FILE).write_text(json.dumps({"pid": 999999, "hostname": "gone"}))
    (out / "tmpk2j4.tmp").write_text("half a results.csv")  # a write a crash cut short
    assert run_tiny(tiny_suite, out) == 0
    assert not list(out.glob("tmp*.tmp")) and len(job_keys(out)) == 2


def test_resume_with_other_jobs_is_refused_unless_forced(tiny_suite, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_tiny(tiny_suite, out) == 0
    before = {name: (out / name).read_bytes() for name in ("env.json", "results.csv")}
    capsys.readouterr()
    assert run_tiny(tiny_suite, out, "--resume", "--batch-sizes", "3") == 2
    error = capsys.readouterr().err
    assert "was started with other jobs or settings" in error and "--force" in error
    assert run_tiny(tiny_suite, out, "--resume", "--epochs", "2", "--dataset", "mnist5k") == 2
    assert {name: (out / name).read_bytes() for name in before} == before  # nothing written
    assert run_tiny(tiny_suite, out, "--resume", "--batch-sizes", "3", "--force") == 0
    assert len(job_keys(out)) == 3
    assert run_tiny(tiny_suite, out, "--resume") == 0  # the first command still resumes it


def test_resume_of_another_schema_version_is_refused_before_writing(tiny_suite, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_tiny(tiny_suite, out) == 0
    rows = out / results.ROWS_FILE
    old = [{**json.loads(line), "schema_version": 1} for line in rows.read_text().splitlines()]
    rows.write_text("".join(json.dumps(row) + "\n" for row in old))
    before = {name: (out / name).read_bytes() for name in ("env.json", "results.csv")}
    capsys.readouterr()
    assert run_tiny(tiny_suite, out, "--resume") == 2
    assert "schema version ['1']" in capsys.readouterr().err
    assert {name: (out / name).read_bytes() for name in before} == before


def test_an_interrupt_before_the_first_row_is_one_line_and_leaves_no_directory(
    tiny_suite, tmp_path, monkeypatch, capsys
):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "calibrate", interrupted)
    out = tmp_path / "run"
    assert run_tiny(tiny_suite, out) == 130
    assert capsys.readouterr().err.strip() == "archbench: interrupted"
    assert not out.exists()


def test_a_suite_without_jobs_is_refused(tmp_path, capsys):
    suite = tmp_path / "none.toml"
    suite.write_text(
        'architectures = [{arch = "resnet20", batch_sizes = [], train_batch_size = 0}]'
    )
    assert run_cli(["run", "--suite", str(suite), "--out", str(tmp_path / "run")]) == 2
    assert "has no jobs" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# --- data and cache faults ------------------------------------------------------------


def test_a_damaged_archive_is_one_line(tmp_path, capsys):
    write_image_tree(tmp_path / "tree")
    archive = tmp_path / "data.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "tree", arcname="tree")
    archive.write_bytes(archive.read_bytes()[:-100])  # cut short (an interrupted copy)
    with pytest.raises(UserError, match=r"data\.tar\.gz is a damaged archive"):
        load_images(f"imagefolder:{archive}", cache_dir=tmp_path / "cache")
    argv = ["run", "--arch", "resnet20", "--dataset", f"imagefolder:{archive}"]
    assert run_cli([*argv, "--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "r")]) == 2
    assert "damaged archive" in capsys.readouterr().err


def test_files_that_are_not_images_are_skipped_and_counted(tmp_path, caplog):
    write_image_tree(tmp_path / "tree")
    (tmp_path / "tree" / "train" / "bird" / "notes.jpg").write_text("not an image")
    dataset = load_images(f"imagefolder:{tmp_path / 'tree'}", cache_dir=tmp_path / "cache")
    assert len(dataset.train_labels) == 6
    assert "skipped 1 files that are not images (first: " in caplog.text


def test_one_class_is_refused_and_an_empty_class_folder_is_named(tmp_path, caplog):
    write_image_tree(tmp_path / "one", classes=("cat",))
    with pytest.raises(UserError, match="one class"):
        load_images(f"imagefolder:{tmp_path / 'one'}", cache_dir=tmp_path / "cache")
    write_image_tree(tmp_path / "tree")
    (tmp_path / "tree" / "train" / "dog").mkdir()
    dataset = load_images(f"imagefolder:{tmp_path / 'tree'}", cache_dir=tmp_path / "cache")
    assert "dog" not in dataset.classes
    assert "class folders without images, not classes of it: ['train/dog']" in caplog.text


@pytest.mark.parametrize("damage", ["cut short", "garbage", "other arrays"])
def test_a_damaged_cache_entry_is_rebuilt(tmp_path, caplog, damage):
    write_image_tree(tmp_path / "tree")
    name, cache = f"imagefolder:{tmp_path / 'tree'}", tmp_path / "cache"
    first = load_images(name, cache_dir=cache)
    (entry,) = cache.glob("*.npz")
    if damage == "cut short":
        entry.write_bytes(entry.read_bytes()[:-50])
    elif damage == "garbage":
        entry.write_bytes(b"\x93NUMPY garbage" * 10)
    else:
        np.savez(entry, something=np.zeros(3))
    again = load_images(name, cache_dir=cache)
    assert torch.equal(again.train_images, first.train_images)
    assert "discarded the cache entry" in caplog.text
    assert load_images(name, cache_dir=cache).classes == first.classes  # stored whole again


@pytest.mark.parametrize("damage", ["garbage", "wrong shapes"])
def test_a_damaged_sort_of_clevr_cache_entry_is_rebuilt(tmp_path, caplog, damage):
    cache = tmp_path / "cache"
    first = sort_of_clevr.load(300, cache_dir=cache, canvas=sort_of_clevr.SMALL)
    (entry,) = cache.glob("*.npz")
    if damage == "garbage":
        entry.write_bytes(b"garbage")
    else:
        shapes = {"images": (3,), "scenes": (2,), "questions": (1, 1)}
        np.savez(entry, **{key: np.zeros(shape, np.uint8) for key, shape in shapes.items()})
    again = sort_of_clevr.load(300, cache_dir=cache, canvas=sort_of_clevr.SMALL)
    assert torch.equal(again.images, first.images) and "discarded" in caplog.text


@pytest.mark.parametrize("unusable", ["a file", "read-only"])
def test_an_unusable_cache_dir_is_gone_without(tmp_path, caplog, unusable):
    write_image_tree(tmp_path / "tree")
    cache = tmp_path / "cache"
    if unusable == "a file":
        cache.write_text("")
    else:
        cache.mkdir()
        cache.chmod(0o500)
        if os.access(cache, os.W_OK):
            pytest.skip("root writes to read-only folders")
    dataset = load_images(f"imagefolder:{tmp_path / 'tree'}", cache_dir=cache)
    assert len(dataset.classes) == 3 and "going on without the cache" in caplog.text


def test_a_crafted_cifar_batch_cannot_run_code(tmp_path):
    write_fake_cifar10(tmp_path)
    proof = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {proof}",))

    batch = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(pickle.dumps({b"data": Payload(), b"labels": [0]}, protocol=2))
    with pytest.raises(UserError, match=r"posix.system has no place in a CIFAR batch"):
        load_images("cifar10", data_root=tmp_path, cache_dir=tmp_path / "cache")
    assert not proof.exists()


# --- malformed result files -----------------------------------------------------------


@pytest.fixture
def good_run(tmp_path) -> Path:
    rows = [result_row("resnet20", "resnet"), result_row("plain20", "plain")]
    epoch = {"epoch": 1, "train_loss": 1.5, "test_acc": 0.5, "val_acc": 0.5}
    curve = {**result_row("resnet20", "resnet", mode="train"), **epoch}
    return write_run(tmp_path / "run", rows, curves=[curve])


def one_line_error(capsys) -> str:
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "Traceback" not in error, error
    return error


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("a row that is a list", r"rows\.jsonl: line 2 is not a row \(a JSON object\)"),
        ("text in a number column", r"results\.csv: column time_median_ms holds text \('fast'\)"),
    ],
)
def test_malformed_rows_are_one_line_for_compare_report_and_resume(
    good_run, tmp_path, capsys, damage, message
):
    if damage == "a row that is a list":
        rows = good_run / results.ROWS_FILE
        rows.write_text(rows.read_text().splitlines()[0] + "\n[1, 2]\n")
        target = good_run
    else:
        (good_run / results.ROWS_FILE).unlink()
        csv = good_run / results.RESULTS_FILE
        table = results.load(csv).astype({"time_median_ms": object})
        table.loc[0, "time_median_ms"] = "fast"
        table.to_csv(csv, index=False)
        target = csv
    for argv in (["compare", str(target), str(target)], ["report", str(good_run)]):
        assert run_cli(argv) == 2
        assert re.search(message, one_line_error(capsys))


def test_a_pytest_benchmark_entry_without_stats_is_one_line(tmp_path, capsys):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"benchmarks": [{"fullname": "test_x", "extra_info": {}}]}))
    assert run_cli(["compare", str(path), str(path)]) == 2
    assert "bench.json: benchmark test_x has no stats" in one_line_error(capsys)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ([1, 2], "env.json is not an environment record (a JSON object)"),
        ({"calibration": "fast"}, 'env.json: calibration is "fast", not a calibration record'),
        ({"calibrations": {"fp32": {"matmul_gflops_per_s": "x"}}}, "calibrations.fp32 is"),
    ],
)
def test_a_malformed_env_json_is_one_line_for_compare_and_left_out_of_the_report(
    good_run, capsys, env, message
):
    (good_run / results.ENV_FILE).write_text(json.dumps(env))
    assert run_cli(["compare", "--normalize", str(good_run), str(good_run)]) == 2
    assert message in one_line_error(capsys)
    assert run_cli(["report", str(good_run)]) == 0
    printed = capsys.readouterr()
    assert "archbench: left out: " in printed.err and message in printed.err
    assert message in (good_run / "report.md").read_text()


def test_a_damaged_curves_file_is_left_out_of_the_report(good_run, capsys):
    curves = good_run / results.CURVES_FILE
    whole = curves.read_text()
    curves.write_text(whole + '{"epo\n' + whole)  # a bad line in the middle
    assert run_cli(["report", str(good_run)]) == 0
    assert "curves.jsonl: line 2 is not valid JSON" in capsys.readouterr().err
    curves.write_text(whole + whole[:-20])  # only the last line cut short: just skipped
    assert run_cli(["report", str(good_run)]) == 0
    assert "left out" not in capsys.readouterr().err
    assert "training_curves" in (good_run / "report.md").read_text()
    curves.write_text('{"epoch": 1}\n')  # not archbench's
    assert run_cli(["report", str(good_run)]) == 0
    assert "lacks the columns" in capsys.readouterr().err


def test_report_md_escapes_what_rows_bring(tmp_path):
    rows = [
        result_row("resnet20", "resnet", status="failed", message="<img src=x onerror=alert(1)>")
    ]
    run = write_run(tmp_path / "run", rows)
    assert run_cli(["report", str(run)]) == 0
    markdown = (run / "report.md").read_text()
    assert "<img" not in markdown and "&lt;img" in markdown


# --- memory ---------------------------------------------------------------------------


def test_inspect_refuses_a_size_whose_activations_do_not_fit(capsys):
    assert run_cli(["inspect", "resnet20", "--input-size", "16384"]) == 2
    error = one_line_error(capsys)
    assert "resnet20 at input size 16384 needs about" in error and "--input-size" in error
    assert memory.forward_bytes("resnet20", 64) == 4 * memory.forward_bytes("resnet20")


class GreedyNet(TinyNet):
    """Asks the CPU allocator for a petabyte, as a model far too large would."""

    def forward(self, x):
        return super().forward(x) + torch.empty(2**50).sum()


def test_a_cpu_allocation_failure_is_an_oom_row(scratch_registry, tmp_path):
    architectures.register("greedy", family=Family.OTHER, paper="none", input_shape=(3, 8, 8))(
        GreedyNet
    )
    suite = Suite(name="t", entries=(Entry("greedy"),), batch_sizes=(2,), train_batch_size=0)
    (job,) = runner.expand_jobs(suite, torch.device("cpu"), threads=1)
    row = runner.execute(job).row
    assert row.status is Status.OOM and "can't allocate memory" in row.message


# --- smaller ones ---------------------------------------------------------------------


def test_a_loss_far_above_the_first_steps_is_divergence(tmp_path):
    suite = tmp_path / "wild.toml"
    suite.write_text(
        'architectures = ["resnet20_dw"]\ndataset = "mnist5k"\nbatch_sizes = [2]\n'
        'train_batch_size = 32\nmeasure = ["accuracy"]\n'
        "[training]\nepochs = 1\nlr = 100.0\ntrain_subset = 320\n"
    )  # its one epoch ends at a finite loss of about 3e20: at chance, not ok
    out = tmp_path / "run"
    assert run_cli(["run", "--suite", str(suite), "--out", str(out), "--no-plots"]) == 1
    trained = results.load(out).query("mode == 'train'").iloc[0]
    assert trained["status"] == "diverged", trained["message"]
    assert "times the first step's" in trained["message"]


def test_suite_paths_that_are_not_suite_files_are_one_line(tmp_path, capsys):
    assert run_cli(["run", "--suite", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "is a directory, not a suite file" in one_line_error(capsys)
    latin = tmp_path / "latin.toml"
    latin.write_bytes('description = "caf\xe9"\narchitectures = ["resnet20"]\n'.encode("latin-1"))
    assert run_cli(["run", "--suite", str(latin), "--out", str(tmp_path / "r")]) == 2
    assert "is not UTF-8 text" in one_line_error(capsys)


def test_flags_out_of_range_are_one_line(tiny_suite, tmp_path, capsys, caplog):
    out = str(tmp_path / "run")
    assert run_cli(["run", "--suite", tiny_suite, "--time-budget", "inf", "--out", out]) == 2
    assert "expected a positive number, not 'inf'" in one_line_error(capsys)
    threads = str(10 * (os.cpu_count() or 1))
    assert run_cli(["run", "--suite", tiny_suite, "--threads", threads, "--out", ""]) == 2
    assert "--out is empty" in one_line_error(capsys)
    assert f"--threads {threads} is more than this machine's" in caplog.text


@pytest.mark.parametrize(
    ("machine", "message"),
    [([1], "machine_info is not a table"), ({"archbench_calibration_s": "fast"}, "not seconds")],
)
def test_a_malformed_pytest_benchmark_machine_is_one_line(tmp_path, capsys, machine, message):
    path = tmp_path / "bench.json"
    bench = {"fullname": "t", "stats": {"median": 0.1, "iqr": 0.01}}
    path.write_text(json.dumps({"machine_info": machine, "benchmarks": [bench]}))
    assert run_cli(["compare", "--normalize", str(path), str(path)]) == 2
    assert message in one_line_error(capsys)


def test_a_job_that_failed_now_fails_the_comparison(tmp_path, capsys):
    base = write_run(tmp_path / "base", [result_row("resnet20", "resnet")])
    crashed = result_row("resnet20", "resnet", status="failed", message="RuntimeError: boom")
    for metric in ("params", "macs", "flops", "time_median_ms", "time_p90_ms", "peak_mem_mb"):
        crashed.pop(metric)
    current = write_run(tmp_path / "current", [crashed])
    assert run_cli(["compare", str(base), str(current)]) == 1
    printed = capsys.readouterr().out
    assert "not measured" in printed and "failed: RuntimeError: boom" in printed


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("cut", "ends in a line cut short"),
        ("status", "unknown status ['weird']"),
        ("samples", "time_samples_ms holds something other than lists of numbers"),
    ],
)
def test_more_malformed_rows_are_one_line(good_run, capsys, damage, message):
    rows = good_run / results.ROWS_FILE
    if damage == "cut":
        rows.unlink()
        csv = good_run / results.RESULTS_FILE
        csv.write_bytes(csv.read_bytes()[:-20])
        target = csv
    else:
        records = results.read_rows(rows)
        records[0] = (
            {**records[0], "status": "weird"}
            if damage == "status"
            else {**records[0], SAMPLES_COLUMN: ["a", "b"]}
        )
        rows.write_text("".join(json.dumps(r) + "\n" for r in records))
        target = good_run
    assert run_cli(["compare", str(target), str(target)]) == 2
    assert message in one_line_error(capsys)


def test_curves_with_text_where_numbers_belong_are_left_out(good_run, capsys):
    curves = good_run / results.CURVES_FILE
    (record,) = results.read_rows(curves)
    curves.write_text(json.dumps({**record, "epoch": "one"}) + "\n")
    assert run_cli(["report", str(good_run)]) == 0
    assert "column epoch holds text" in capsys.readouterr().err
