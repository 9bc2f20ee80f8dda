"""Calibration: a fixed reference workload timed in every run.

An fp32 (or the run's dtype) matrix product and a 3x3 convolution at fixed
sizes give the FLOP/s this machine reaches right now on dense work. A model's
achieved FLOP/s divided by the matmul's is its hardware efficiency; dividing
timings by the calibration time makes runs from two machines, or from one
machine at two speeds, comparable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from benchmarks.measure.device import precision, use_math
from benchmarks.measure.latency import TimingConfig, time_calls

# (matmul n, conv batch, conv channels, conv size) per device type.
SIZES = {"cpu": (1024, 8, 64, 32), "cuda": (8192, 64, 256, 56)}
CALIBRATION_TIMING = TimingConfig(warmup=3, min_samples=10, max_samples=200, min_time_s=0.5)


@dataclass(frozen=True)
class Calibration:
    device: str
    dtype: str
    matmul_n: int
    matmul_median_s: float
    matmul_gflops_per_s: float
    conv_shape: str
    conv_median_s: float
    conv_gflops_per_s: float

    def as_dict(self) -> dict:
        return asdict(self)

    def efficiency(self, gflops_per_s: float) -> float:
        """A rate as a fraction of the calibration matmul's: hardware efficiency."""
        return gflops_per_s / self.matmul_gflops_per_s


def calibrate(
    device: torch.device, dtype: str = "fp32", config: TimingConfig = CALIBRATION_TIMING
) -> Calibration:
    """Time the reference matmul and conv on ``device`` in ``dtype``."""
    use_math(dtype)
    n, batch, channels, size = SIZES[device.type]
    generator = torch.Generator(device="cpu").manual_seed(0)
    a, b = (torch.randn(n, n, generator=generator).to(device) for _ in range(2))
    image = torch.randn(batch, channels, size, size, generator=generator).to(device)
    weight = torch.randn(channels, channels, 3, 3, generator=generator).to(device)

    def matmul() -> torch.Tensor:
        with torch.inference_mode(), precision(device, dtype):
            return a @ b

    def conv() -> torch.Tensor:
        with torch.inference_mode(), precision(device, dtype):
            return F.conv2d(image, weight, padding=1)

    matmul_time = time_calls(matmul, device, config).median
    conv_time = time_calls(conv, device, config).median
    matmul_flops = 2 * n**3
    conv_flops = 2 * batch * channels * channels * 9 * size * size
    return Calibration(
        device=device.type,
        dtype=dtype,
        matmul_n=n,
        matmul_median_s=matmul_time,
        matmul_gflops_per_s=matmul_flops / matmul_time / 1e9,
        conv_shape=f"{batch}x{channels}x{size}x{size}, 3x3, {channels} out",
        conv_median_s=conv_time,
        conv_gflops_per_s=conv_flops / conv_time / 1e9,
    )
