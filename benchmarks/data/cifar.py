"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009) in any of the forms users have them.

Looked for under ``data_root``, in this order: torchvision's on-disk format
(the original python pickles, ``cifar-10-batches-py/``), an ImageFolder tree
(``data_root`` itself, ``data_root/cifar10``, ``data_root/cifar10-jpeg``), a
``.tar.gz`` of such a tree (``data_root`` itself or ``data_root/cifar10*.tar.gz``).
``download=True`` fetches torchvision's copy into ``data_root`` when none is found.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.data import ImageDataset, imagefolder
from benchmarks.errors import UserError

# name -> (pickle folder, train files, test file, label key, meta file, class-name key)
FOLDERS = {
    "cifar10": (
        "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)],
        "test_batch",
        b"labels",
        "batches.meta",
        b"label_names",
    ),
    "cifar100": (
        "cifar-100-python",
        ["train"],
        "test",
        b"fine_labels",
        "meta",
        b"fine_label_names",
    ),
}


def load(name: str, data_root: Path, *, download: bool, cache_dir: Path) -> ImageDataset:
    pickles = data_root / FOLDERS[name][0]
    if pickles.is_dir():
        return read_pickles(name, pickles)
    candidates = _image_folder_candidates(name, data_root)
    if candidates:
        return imagefolder.load(candidates[0], name=name, cache_dir=cache_dir)
    if download:
        _download(name, data_root)
        return read_pickles(name, pickles)
    raise UserError(
        f"{name} not found under {data_root} (looked for {FOLDERS[name][0]}/, an ImageFolder "
        f"tree train/ + test/, and {name}*.tar.gz); set --data-root, or add --download to fetch it"
    )


def _image_folder_candidates(name: str, root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    if not root.is_dir():
        return []
    folders = [root, root / name, root / f"{name}-jpeg"]
    trees = [folder for folder in folders if folder.is_dir() and imagefolder.is_tree(folder)]
    return trees + sorted(root.glob(f"{name}*.tar.gz"))


def read_pickles(name: str, folder: Path) -> ImageDataset:
    """The original CIFAR python batches (uint8 rows of 3x32x32, labels, class names)."""
    _, train_files, test_file, label_key, meta_file, names_key = FOLDERS[name]

    def batch(file: str) -> tuple[torch.Tensor, torch.Tensor]:
        with (folder / file).open("rb") as handle:
            entry = BatchUnpickler(handle, encoding="bytes").load()
        images = np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        return torch.from_numpy(images), torch.tensor(entry[label_key], dtype=torch.int64)

    try:
        train = [batch(file) for file in train_files]
        test_images, test_labels = batch(test_file)
        with (folder / meta_file).open("rb") as handle:
            meta = BatchUnpickler(handle, encoding="bytes").load()
            classes = tuple(c.decode() for c in meta[names_key])
    except (OSError, KeyError, TypeError, ValueError, EOFError, pickle.UnpicklingError) as error:
        raise UserError(
            f"{folder} is not a complete {name} in torchvision's format: {error}"
        ) from None
    return ImageDataset(
        name=name,
        classes=classes,
        train_images=torch.cat([images for images, _ in train]),
        train_labels=torch.cat([labels for _, labels in train]),
        test_images=test_images,
        test_labels=test_labels,
    )


class BatchUnpickler(pickle.Unpickler):
    """Reads a CIFAR batch, and nothing else a pickle can do: of all the callables a pickle
    may name, only numpy's array reconstruction is found, so a crafted batch under
    --data-root cannot run code (pickle.load would call whatever it names)."""

    ALLOWED = {
        (module, name)
        for package in ("numpy.core", "numpy._core")
        for module, name in (
            (f"{package}.multiarray", "_reconstruct"),
            (f"{package}.multiarray", "scalar"),
            (f"{package}.numeric", "_frombuffer"),
        )
    } | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}  # bytes, protocol 2

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} has no place in a CIFAR batch")
        return super().find_class(module, name)


def _download(name: str, root: Path) -> None:  # pragma: no cover - needs the network
    import torchvision.datasets

    dataset = {"cifar10": torchvision.datasets.CIFAR10, "cifar100": torchvision.datasets.CIFAR100}[
        name
    ]
    try:
        dataset(root=str(root), train=True, download=True)
    except Exception as error:
        raise UserError(f"downloading {name} into {root} failed: {error}") from None
