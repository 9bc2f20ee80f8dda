"""ImageFolder trees (``train/<class>/*.jpg``, ``test/<class>/*.jpg``) and their .tar.gz.

Class indices follow the sorted class names, as in torchvision's ImageFolder.
Images are decoded with Pillow; any image whose size differs from the first
one's is resized to it (bilinear). Mode "L" data sets stay one-channel.
"""

from __future__ import annotations

import io
import logging
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

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
    empty = [f"{p.parent.name}/{p.name}" for p in sorted(tree.glob("*/*")) if is_empty_class(p)]
    if empty:
        log.warning("%s: class folders without images, not classes of it: %s", name, empty)
    return cached(name, tree, cache_dir, lambda: decode(name, _tree_files(tree), flip))


def is_empty_class(folder: Path) -> bool:
    return folder.is_dir() and not any(
        path.suffix.lower() in IMAGE_SUFFIXES for path in folder.iterdir()
    )


def _tree_files(root: Path) -> Iterator[tuple[str, str, str, bytes]]:
    for split in SPLITS:
        for path in sorted((root / split).glob("*/*")):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                yield split, path.parent.name, str(path), path.read_bytes()


def _archive_files(path: Path) -> Iterator[tuple[str, str, str, bytes]]:
    """(split, class, name, bytes) of every image in the archive, whatever folder holds
    the tree; a damaged archive (cut short, not gzip) is a UserError."""
    try:
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
                    yield parts[-3], parts[-2], member.name, file.read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise UserError(f"{path} is a damaged archive ({type(error).__name__}: {error})") from None


def decode(name: str, files: Iterator[tuple[str, str, str, bytes]], flip: bool) -> ImageDataset:
    """Decode (split, class, file name, bytes) into a data set; files that are not images
    Pillow reads are skipped, counted in one warning."""
    images: dict[str, list[np.ndarray]] = {split: [] for split in SPLITS}
    class_names: dict[str, list[str]] = {split: [] for split in SPLITS}
    size, mode = None, None
    unreadable: list[str] = []
    for count, (split, label, file_name, data) in enumerate(files, 1):
        try:
            image: Image.Image = Image.open(io.BytesIO(data))
            image.load()
        except (UnidentifiedImageError, OSError):
            unreadable.append(file_name)
            continue
        if size is None:
            size, mode = image.size, "L" if image.mode == "L" else "RGB"
        image = image.convert(mode)
        if image.size != size:
            image = image.resize(size, Image.Resampling.BILINEAR)
        images[split].append(np.asarray(image))
        class_names[split].append(label)
        if count % 10_000 == 0:
            log.info("%s: %d images decoded", name, count)
    if unreadable:
        log.warning(
            "%s: skipped %d files that are not images (first: %s)", name, len(unreadable),
            unreadable[0],
        )  # fmt: skip
    if not images[TRAIN] or not images[TEST]:
        raise UserError(f"{name}: found no images under train/<class>/ and test/<class>/")
    classes = tuple(sorted(set(class_names[TRAIN])))
    if len(classes) < 2:
        raise UserError(f"{name}: train/ holds one class ({classes[0]}); classifying needs two")
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
