"""A run's curves and rows as TensorBoard event files (``archbench run --log-dir DIR``).

Written from the run directory when the run ends (after Ctrl-C too: what finished
is there), one TensorBoard run per job, named by the job's label: its training
curve by epoch under ``curve/`` (loss, accuracies, the task's metrics, training
time) and its row's numbers under ``row/`` at step 0 (params, MACs, latency,
throughput, memory, accuracy). Needs the tensorboard package (the ``tensorboard``
extra).
"""

from __future__ import annotations

import importlib.util
import logging
import math
import re
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks import results
from benchmarks.compare import LABEL_DETAILS
from benchmarks.errors import UserError
from benchmarks.schema import Mode, key_fields, numeric_columns

SEEDED = (*LABEL_DETAILS, "seed")  # a job's label (its seed when it trains): its folder

log = logging.getLogger(__name__)


def prepare(log_dir: str | Path) -> None:
    """Make ``log_dir``, or a UserError (no tensorboard package, a folder that cannot be
    made or written): said before a run measures anything."""
    if importlib.util.find_spec("tensorboard") is None:
        raise UserError(
            "--log-dir writes TensorBoard event files and needs the tensorboard package: "
            "pip install 'archbench[tensorboard]'"
        )
    try:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=log_dir):
            pass
    except OSError as error:
        raise UserError(f"--log-dir {log_dir}: cannot write there ({error.strerror})") from None


def export(run: results.Run, log_dir: str | Path) -> int:
    """Write every job of ``run`` under ``log_dir``; the number of jobs written."""
    prepare(log_dir)
    from torch.utils.tensorboard import SummaryWriter

    curves = curves_by_key(run.curves)
    rows = zip(results.identities(run.table), run.table.to_dict("records"), strict=True)
    for identity, row in rows:
        with SummaryWriter(
            Path(log_dir)
            / folder(identity.label(SEEDED if identity.mode == Mode.TRAIN else LABEL_DETAILS))
        ) as writer:
            for name, value in numbers(row, numeric_columns()).items():
                writer.add_scalar(f"row/{name}", value, 0)
            for epoch in curves.get(identity.key(), pd.DataFrame()).to_dict("records"):
                for name, value in numbers(epoch, curve_columns(run.curves)).items():
                    writer.add_scalar(f"curve/{name}", value, int(epoch["epoch"]))
    log.debug("TensorBoard: %d jobs in %s", len(run.table), log_dir)
    return len(run.table)


def curves_by_key(curves: pd.DataFrame) -> dict[tuple[str, ...], pd.DataFrame]:
    if curves.empty:
        return {}
    rows: dict[tuple[str, ...], list[int]] = {}
    for position, identity in enumerate(results.identities(curves)):
        rows.setdefault(identity.key(), []).append(position)
    return {key: curves.iloc[positions] for key, positions in rows.items()}


def curve_columns(curves: pd.DataFrame) -> list[str]:
    """The curve's measured columns: not the identity, not the epoch."""
    return [c for c in curves.columns if c not in {*key_fields(), "suite", "family", "epoch"}]


def numbers(record: dict[str, Any], names: Any) -> dict[str, float]:
    """The finite numbers among ``names`` of a record."""
    values = {name: record.get(name) for name in names}
    return {
        name: float(value)
        for name, value in values.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    }


def folder(label: str) -> str:
    """A label as a folder's name: 'resnet20 infer b=1 [cpu]' -> 'resnet20_infer_b=1_cpu'."""
    return re.sub(r"[^A-Za-z0-9=.+-]+", "_", label).strip("_")
