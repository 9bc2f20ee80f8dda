"""ImageFolder trees (``train/<class>/*.jpg``, ``test/<class>/*.jpg``) and their .tar.gz.

Class indices follow the sorted class names, as in torchvision's ImageFolder.
Images are decoded with Pillow; any image whose size differs from the first
one's is resized to it (bilinear). Mode "L" data sets stay one-channel.
"""

from __future__ import annotations

import io
import logging
import tarfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image

from benchmarks.data import SPLITS, TEST, TRAIN, ImageDataset
from benchmarks.data.cache import cached
from benchmarks.errors import UserError

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".ppm"}


def is_tree(path: Path) -> bool:
    return all((path / split).is_dir() for split in SPLITS)


def find_tree(path: Path) -> Path | None:
    """``path`` if it holds train/ and test/, else its one subfolder that does."""
    if is_tree(path):
        return path
    children = [child for child in path.iterdir() if child.is_dir() and is_tree(child)]
    return children[0] if len(children) == 1 else None


def load(path: Path, *, name: str, cache_dir: Path, flip: bool = True) -> ImageDataset:
    """A data set from an ImageFolder tree (or a folder holding one) or a .tar.gz of it."""
    if path.is_file():
        if not tarfile.is_tarfile(path):
            raise UserError(f"{path} is neither a folder nor a tar archive")
        return cached(name, path, cache_dir, lambda: decode(name, _archive_files(path), flip))
    tree = find_tree(path)
    if tree is None:
        raise UserError(f"{path} has no train/<class>/ and test/<class>/ folders")
    return cached(name, tree, cache_dir, lambda: decode(name, _tree_files(tree), flip))


def _tree_files(root: Path) -> Iterator[tuple[str, str, bytes]]:
    for split in SPLITS:
        for path in sorted((root / split).glob("*/*")):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                yield split, path.parent.name, path.read_bytes()


def _archive_files(path: Path) -> Iterator[tuple[str, str, bytes]]:
    """(split, class, bytes) of every image in the archive, whatever folder holds the tree."""
    with tarfile.open(path) as archive:
        for member in archive:
            parts = PurePosixPath(member.name).parts
            if (
                not member.isfile()
                or PurePosixPath(member.name).suffix.lower() not in IMAGE_SUFFIXES
            ):
                continue
            file = archive.extractfile(member)
            if file is not None and len(parts) >= 3 and parts[-3] in SPLITS:
                yield parts[-3], parts[-2], file.read()


def decode(name: str, files: Iterator[tuple[str, str, bytes]], flip: bool) -> ImageDataset:
    """Decode (split, class, bytes) triples into a data set."""
    images: dict[str, list[np.ndarray]] = {split: [] for split in SPLITS}
    class_names: dict[str, list[str]] = {split: [] for split in SPLITS}
    size, mode = None, None
    for count, (split, label, data) in enumerate(files, 1):
        image: Image.Image = Image.open(io.BytesIO(data))
        if size is None:
            size, mode = image.size, "L" if image.mode == "L" else "RGB"
        image = image.convert(mode)
        if image.size != size:
            image = image.resize(size, Image.Resampling.BILINEAR)
        images[split].append(np.asarray(image))
        class_names[split].append(label)
        if count % 10_000 == 0:
            log.info("%s: %d images decoded", name, count)
    if not images[TRAIN] or not images[TEST]:
        raise UserError(f"{name}: found no images under train/<class>/ and test/<class>/")
    classes = tuple(sorted(set(class_names[TRAIN])))
    unknown = set(class_names[TEST]) - set(classes)
    if unknown:
        raise UserError(f"{name}: test classes {sorted(unknown)} do not appear in train/")
    index = {label: i for i, label in enumerate(classes)}

    def tensors(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        array = np.stack(images[split])
        array = array[:, None] if array.ndim == 3 else array.transpose(0, 3, 1, 2)
        labels = torch.tensor([index[label] for label in class_names[split]], dtype=torch.int64)
        return torch.from_numpy(np.ascontiguousarray(array)), labels

    (train_images, train_labels), (test_images, test_labels) = tensors(TRAIN), tensors(TEST)
    return ImageDataset(name, classes, train_images, train_labels, test_images, test_labels, flip)
