"""Tiny architectures and settings shared by the tests (tests/ is on sys.path under pytest)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from benchmarks import results
from benchmarks.cli import main
from benchmarks.measure.device import Backend
from benchmarks.measure.latency import TimingConfig
from benchmarks.schema import SCHEMA_VERSION, Row

REPO = Path(__file__).resolve().parents[1]  # the checkout the tests run from
README = REPO / "README.md"
FAST_TIMING = TimingConfig(warmup=1, min_samples=3, max_samples=5, min_time_s=0.0)


class TinyNet(nn.Module):
    """A conv and a linear layer: fast to build, count and time."""

    def __init__(self, *, width: int = 4, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


class BrokenNet(TinyNet):
    """Raises in forward, as a model with a bug would."""

    def forward(self, x):
        raise RuntimeError("this model is broken on purpose")


class NaNNet(TinyNet):
    """Produces NaN outputs."""

    def forward(self, x):
        return super().forward(x) * torch.nan


def result_row(arch: str, family: str, **changes) -> dict:
    """One ok results row of the current schema, as written; ``changes`` override any
    column."""
    row = {
        "schema_version": SCHEMA_VERSION, "suite": "synthetic", "arch": arch,
        "family": family, "config": "{}", "dataset": "mnist5k", "device": "cpu",
        "dtype": "fp32", "mode": "infer", "batch_size": 1, "input_shape": "1x32x32", "seed": 0,
        "threads": 2, "status": "ok", "message": "", "params": 100_000, "macs": 10_000_000,
        "flops": 20_000_000, "time_median_ms": 2.0, "time_p90_ms": 2.5,
        "throughput_per_s": 500.0, "achieved_gflops_per_s": 10.0, "hw_efficiency": 0.1,
        "peak_mem_mb": 5.0, "epochs": 2, "time_budget_s": None, **Backend().columns(),
    }  # fmt: skip
    return {**row, **changes}


def measured_net(arch: str, family: str, accuracy: float | None, **changes) -> list[dict]:
    """Inference rows at batch 1 and 64 and, with an accuracy, a training row; ``changes``
    apply to every row."""
    rows = [
        result_row(arch, family, **changes),
        result_row(arch, family, **{"time_median_ms": 40.0, "throughput_per_s": 1600.0,
                                    **changes, "batch_size": 64}),
    ]  # fmt: skip
    if accuracy is not None:
        rows.append(
            result_row(arch, family, **{"time_median_ms": 100.0, **changes, "mode": "train",
                       "batch_size": 64, "test_acc": accuracy, "epochs_done": 2,
                       "train_time_s": 10.0})
        )  # fmt: skip
    return rows


SPREAD = (-0.002, 0.0, 0.002)  # three seeds, 0.2 points apart


def seeded_net(arch: str, family: str, accuracy: float | None, seeds=SPREAD, **changes):
    """measured_net's inference rows and, with an accuracy, a training row per seed
    around it (offsets ``seeds``)."""
    rows = measured_net(arch, family, None, **changes)
    if accuracy is not None:
        train = measured_net(arch, family, 0.0, **changes)[-1]
        rows += [
            {**train, "seed": seed, "test_acc": accuracy + offset}
            for seed, offset in enumerate(seeds)
        ]
    return rows


def write_run(path, rows: list[dict], curves: list[dict] = (), env: dict | None = None):
    """A run directory as `archbench run` leaves it: rows.jsonl (each row checked against
    the schema), results.csv, curves, env."""
    path.mkdir(parents=True, exist_ok=True)
    for row in rows:
        results.JsonLines(path / results.ROWS_FILE).append(Row.from_record(row).record())
    for curve in curves:
        results.JsonLines(path / results.CURVES_FILE).append(curve)
    results.write_results_csv(path)
    calibration = {"dtype": "fp32", "matmul_gflops_per_s": 100.0}
    environment = env or {
        "device_name": "test CPU",
        "calibration": calibration,
        "calibrations": {"fp32": calibration},
    }
    (path / results.ENV_FILE).write_text(json.dumps(environment))
    return path


# A one-architecture suite that measures in seconds.
TINY_SUITE = """
architectures = ["resnet20_dw"]
batch_sizes = [2]
train_batch_size = 4
[timing]
warmup = 1
min_samples = 3
max_samples = 5
min_time_s = 0
"""


def run_cli(argv: list[str]) -> int:
    """main(), with argparse's own exits turned into return codes."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return exit_.code


CLASSES = ("airplane", "automobile", "bird")


def write_image_tree(root, per_class: int = 2, size: int = 8, classes=CLASSES) -> None:
    """train/<class>/*.png and test/<class>/*.png, each image a flat colour of its class index."""
    for split in ("train", "test"):
        for index, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = np.full((size, size, 3), 40 * index + i, dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:04d}.png")


def write_fake_cifar10(root, per_batch: int = 4) -> None:
    """CIFAR-10's python format: five train batches, a test batch and batches.meta, pickled
    with protocol 2 as the originals were."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def batch(name: str, offset: int) -> None:
        labels = [(offset + i) % 10 for i in range(per_batch)]
        data = rng.integers(0, 256, (per_batch, 3 * 32 * 32), dtype=np.uint8)
        data[:, 0] = labels  # the first red pixel encodes the label, to check the pairing
        with (folder / name).open("wb") as file:
            pickle.dump({b"data": data, b"labels": labels}, file, protocol=2)

    for i in range(1, 6):
        batch(f"data_batch_{i}", i)
    batch("test_batch", 0)
    names = [
        name.encode()
        for name in [
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ]
    ]
    with (folder / "batches.meta").open("wb") as file:
        pickle.dump({b"label_names": names}, file, protocol=2)


# --- Ray workers (tests/test_ray.py): they import this module through PYTHONPATH ---


def register_toy_architectures() -> None:
    """Register tiny, broken and nan in this process: a Ray worker's setup hook."""
    import architectures
    from architectures import Family

    for name, builder in (("tiny", TinyNet), ("broken", BrokenNet), ("nan", NaNNet)):
        if name not in architectures.list_architectures():
            architectures.register(name, family=Family.OTHER, paper="none", input_shape=(3, 8, 8))(
                builder
            )


def dies_first_time(job, run_id: str, exclusive: bool = True):
    """A Ray task whose worker dies (as if killed) on its first attempt at each job."""
    import os
    import tempfile
    from pathlib import Path

    from benchmarks.ray_executor import run_job

    marker = Path(tempfile.gettempdir()) / f"archbench-test-{run_id}-{job.identity.batch_size}"
    if not marker.exists():
        marker.write_text("tried")
        os._exit(1)
    return run_job(job, run_id, exclusive)


def always_dies(job, run_id: str, exclusive: bool = True):
    """A Ray task whose worker dies on every attempt."""
    import os

    os._exit(1)
