"""The choices and defaults the command line offers, light to import.

`archbench --help` and `archbench list` answer without importing torch or
pandas (seconds on a busy machine): what the parser shows lives here, and the
library takes the same values from here. Tests check that each mirrors the
code that uses it (the dtypes, backend settings, data sets and task names).
"""

from __future__ import annotations

import os
from pathlib import Path

DTYPE_NAMES = ("fp32", "tf32", "bf16", "fp16")
BACKEND_HELP = {  # Backend's settings: what each flag does
    "channels_last": "run model and inputs in channels-last (NHWC) memory layout",
    "cudnn_benchmark": "let cuDNN autotune its convolution algorithms per shape (CUDA only)",
    "compile": "torch.compile the model; the first (compiling) call is timed apart, as compile_s",
    "cuda_graphs": "capture inference once in a CUDA graph and replay it (CUDA only)",
}

DEFAULT_DATA_ROOT = Path(os.environ.get("ARCHBENCH_DATA", "data"))
DEFAULT_CACHE_DIR = Path(os.environ.get("ARCHBENCH_CACHE", Path.home() / ".cache" / "archbench"))
IMAGE_SETS = ("mnist5k", "cifar10", "cifar100", "imagefolder:PATH")
QUESTION_SETS = "sort_of_clevr[_small][_bits][:N]"

SUITES_DIR = Path(__file__).parent / "suites"

# compare's verdicts
DEFAULT_THRESHOLD = 0.10  # a timing's ratio past which a significant change counts
DEFAULT_INSTRUCTION_THRESHOLD = 0.01
DEFAULT_ACC_TOLERANCE_PTS = 1.0
MIN_ROUNDS_FOR_TEST = 4  # 3 rounds a side cannot reach p < 0.05 (Mann-Whitney's least p: 0.1)


def shipped_suites() -> list[str]:
    """Names of the suites shipped with archbench."""
    return sorted(path.stem for path in SUITES_DIR.glob("*.toml"))
