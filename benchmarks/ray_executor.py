"""Run a suite's jobs as Ray tasks, on this machine or a cluster (``--executor ray``).

The driver (the ``archbench run`` process) submits every job as a task and
writes each row as it arrives, exactly as the local executors' rows are
written. A job that times owns what it measures: a whole GPU, or on a CPU node
as many CPUs as its threads, so two timing jobs never share a device or cores;
jobs that only train (or only count) may share one when asked
(``pack_training``). A node times the calibration workload once per device and
dtype, before its first job of the run, and every row records the node it ran
on and that calibration. A task whose worker or node dies is retried
(``max_retries``), then recorded as failed with the reason.
"""

from __future__ import annotations

import fcntl
import json
import logging
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from benchmarks.errors import UserError
from benchmarks.measure.calibration import Calibration, calibrate
from benchmarks.results import write_atomic
from benchmarks.runner import Calibrations, Job, Measured, execute, failed, first_line
from benchmarks.schema import Status

log = logging.getLogger(__name__)


def import_ray() -> ModuleType:
    """The ray module, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError(
            '--executor ray needs Ray: pip install "archbench[ray]" (or pip install ray)'
        ) from None
    return ray


@dataclass(frozen=True)
class Resources:
    """What one job asks Ray for; ``exclusive``: it holds its device or cores alone."""

    num_cpus: float
    num_gpus: float
    exclusive: bool = True

    def options(self) -> dict[str, float]:
        return {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}


def resources_for(job: Job, pack_training: int = 1) -> Resources:
    """A job on a GPU: the whole GPU and one CPU to drive it, or, if it does not time and
    ``pack_training`` > 1, a 1/pack_training share of both. A job on a CPU node: as many
    CPUs as its threads (CPU jobs are not packed: a packed job's threads would run on
    cores a timing job holds, since Ray does not pin threads to cores)."""
    if job.identity.device == "cuda":
        share = 1.0 if "time" in job.measure else 1.0 / pack_training
        return Resources(num_cpus=share, num_gpus=share, exclusive=share == 1.0)
    return Resources(num_cpus=float(job.identity.threads), num_gpus=0.0)


def node_calibration(job: Job, run_id: str, node_id: str, *, may_time: bool) -> Calibration | None:
    """This node's calibration in the job's device and dtype for run ``run_id``: timed
    (under a file lock) by the node's first job that holds its device alone
    (``may_time``), read by the others; None for a job sharing a device before then."""
    identity = job.identity
    folder = Path(tempfile.gettempdir()) / "archbench-calibrations"
    folder.mkdir(exist_ok=True)
    path = folder / f"{run_id}-{node_id}-{identity.device}-{identity.dtype}.json"
    with path.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return Calibration(**json.loads(path.read_text()))
        if not may_time:
            return None
        log.info("calibrating node %s (%s, %s)", node_id[:12], identity.device, identity.dtype)
        torch.set_num_threads(identity.threads)
        calibration = calibrate(torch.device(identity.device), identity.dtype)
        write_atomic(path, json.dumps(calibration.as_dict()))
        return calibration


def run_job(job: Job, run_id: str, exclusive: bool = True) -> Measured:
    """A Ray task: calibrate the node if it has not, measure the job, name the node."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    calibration = node_calibration(job, run_id, node_id, may_time=exclusive)
    measured = execute(job, calibration)
    row = measured.row.but(node=replace(measured.row.node, node_id=node_id))
    if not row.ok:
        row = row.but(message=f"on {row.node.hostname}: {row.message}")
    return replace(measured, row=row)


class RayExecutor:
    """Runs every job as a Ray task; yields each job's measurement as it finishes.

    ``address`` as ``ray.init`` takes it: None is Ray's default (the cluster
    ``RAY_ADDRESS`` names, else a new instance on this machine), "auto" the cluster
    this machine belongs to, "ray://host:port" a remote one through Ray Client."""

    def __init__(
        self,
        address: str | None = None,
        *,
        pack_training: int = 1,
        max_retries: int = 1,
        init_options: dict[str, Any] | None = None,
        task: Callable[[Job, str, bool], Measured] = run_job,
    ) -> None:
        import_ray()  # without Ray: one line, before anything is written
        if pack_training < 1:
            raise UserError(f"--pack-training must be at least 1, not {pack_training}")
        self.address = address
        self.pack_training = pack_training
        self.max_retries = max_retries
        self.init_options = init_options or {}
        self.task = task  # what a worker runs (tests give one that kills its worker)
        self.run_id = uuid.uuid4().hex[:12]

    def start(self) -> ModuleType:
        ray = import_ray()
        if not ray.is_initialized():
            quiet = {} if is_client(self.address) else {"include_dashboard": False}
            try:
                ray.init(address=self.address, **quiet, **self.init_options)
            except (ConnectionError, RuntimeError, ValueError) as error:
                where = self.address or "this machine"
                raise UserError(f"cannot start or reach Ray at {where}: {error}") from None
        nodes = [node for node in ray.nodes() if node.get("Alive")]
        log.info("Ray: %d node(s), %s", len(nodes), ray.cluster_resources())
        return ray

    def run(self, jobs: Sequence[Job], calibrations: Calibrations) -> Iterator[Measured]:
        ray = self.start()
        task = ray.remote(self.task)
        needs = [resources_for(job, self.pack_training) for job in jobs]
        check_fits(ray, needs)
        pending = {}
        for job, need in zip(jobs, needs, strict=True):
            options = {**need.options(), "max_retries": self.max_retries}
            ref = task.options(**options).remote(job, self.run_id, need.exclusive)
            pending[ref] = (job, need)
        try:
            while pending:
                (ready,), _ = ray.wait(list(pending), num_returns=1)
                job, need = pending.pop(ready)
                try:
                    measured = ray.get(ready)
                except ray.exceptions.RayError as error:
                    measured = failed(job, *self.reason(ray, error))
                node = replace(
                    measured.row.node, ray_num_cpus=need.num_cpus, ray_num_gpus=need.num_gpus
                )
                yield replace(measured, row=measured.row.but(node=node))
        finally:
            for ref in pending:  # Ctrl-C, or the driver stops listening
                ray.cancel(ref, force=True)

    def reason(self, ray: ModuleType, error: Exception) -> tuple[Status, str]:
        """A task's failure outside the job (which records its own): status and message."""
        text = first_line(error)
        if isinstance(error, ray.exceptions.OutOfMemoryError):
            return Status.OOM, f"Ray killed its worker for memory: {text}"
        if isinstance(error, ray.exceptions.RayTaskError):  # the task code raised
            return Status.FAILED, f"{type(error.cause).__name__}: {first_line(error.cause)}"
        tries = self.max_retries + 1
        return Status.FAILED, f"its Ray worker or node died (tried {tries} times): {text}"


def is_client(address: str | None) -> bool:
    """A Ray Client address (ray://), which takes fewer init options."""
    return bool(address and address.startswith("ray://"))


def check_fits(ray: ModuleType, needs: Sequence[Resources]) -> None:
    """Refuse jobs no node of the cluster can hold (Ray would wait for them forever)."""
    nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
    most_cpus = max((node.get("CPU", 0.0) for node in nodes), default=0.0)
    most_gpus = max((node.get("GPU", 0.0) for node in nodes), default=0.0)
    for need in needs:
        if need.num_gpus > most_gpus:
            raise UserError("a job needs a GPU, and no node of the Ray cluster has one")
        if need.num_cpus > most_cpus:
            raise UserError(
                f"a job needs {need.num_cpus:g} CPUs (its threads), and the largest node of "
                f"the Ray cluster has {most_cpus:g}: lower --threads"
            )
