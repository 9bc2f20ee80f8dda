"""Records the calibration workload's time with the machine info, so that
``archbench compare --normalize`` can compare pytest-benchmark files of two machines."""

from __future__ import annotations

from typing import Any

import torch

from benchmarks.measure.calibration import calibrate


def pytest_benchmark_update_machine_info(config: Any, machine_info: dict[str, Any]) -> None:
    machine_info["archbench_calibration_s"] = calibrate(torch.device("cpu")).matmul_median_s
    machine_info["torch_threads"] = torch.get_num_threads()
