"""A cache of decoded data sets as uint8 arrays, keyed by source and checksum."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch

from benchmarks.data import ImageDataset

log = logging.getLogger(__name__)


def file_checksum(path: Path) -> str:
    """sha256 of a file's content."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_checksum(root: Path) -> str:
    """sha256 over a tree's file paths, sizes and modification times (not contents)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cached(
    name: str, source: Path, cache_dir: Path, decode: Callable[[], ImageDataset]
) -> ImageDataset:
    """The data set decoded from ``source``, from the cache when the source is unchanged."""
    checksum = file_checksum(source) if source.is_file() else tree_checksum(source)
    slug = "".join(c if c.isalnum() else "-" for c in name)[:40]
    path = cache_dir / f"{slug}-{checksum[:16]}.npz"

    def arrays() -> dict[str, np.ndarray]:
        log.info("%s: decoding %s (once; cached in %s)", name, source, cache_dir)
        dataset = decode()
        return {
            "classes": np.array(dataset.classes),
            "flip": np.array(dataset.flip),
            **{key: getattr(dataset, key).numpy() for key in IMAGE_ARRAYS},
        }

    stored = cached_arrays(path, arrays, IMAGE_ARRAYS, images_consistent)
    return ImageDataset(
        name=name,
        classes=tuple(str(c) for c in stored["classes"]),
        flip=bool(stored["flip"]),
        **{key: torch.from_numpy(stored[key]) for key in IMAGE_ARRAYS},
    )


IMAGE_ARRAYS = ("train_images", "train_labels", "test_images", "test_labels")


def images_consistent(arrays: dict[str, np.ndarray]) -> bool:
    """(N, C, H, W) images with one label each, in both splits, and the same sample shape."""
    splits = [(arrays[f"{s}_images"], arrays[f"{s}_labels"]) for s in ("train", "test")]
    shapes = {images.shape[1:] for images, _ in splits}
    return len(shapes) == 1 and all(
        images.ndim == 4 and labels.shape == images.shape[:1] for images, labels in splits
    )


def cached_arrays(
    path: Path,
    build: Callable[[], dict[str, np.ndarray]],
    expected: Iterable[str] = (),
    consistent: Callable[[dict[str, np.ndarray]], bool] = lambda arrays: True,
) -> dict[str, np.ndarray]:
    """The arrays stored at ``path`` (an .npz holding at least ``expected``, ``consistent``
    in their shapes), or ``build()``'s, stored there for next time. An entry that cannot be
    read (cut short, not an .npz, not what it should hold) is discarded and built again; a
    cache that cannot be written (a file, read-only, a full disk) is gone without, with a
    warning."""
    if path.exists():
        try:
            with np.load(path) as stored:
                arrays = {key: stored[key] for key in stored.files}
            missing = set(expected) - set(arrays)
            if not missing and consistent(arrays):
                log.info("decoded data from the cache %s", path)
                return arrays
            problem = f"lacks {sorted(missing)}" if missing else "arrays of the wrong shapes"
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
            problem = f"{type(error).__name__}: {error}"
        log.warning("discarded the cache entry %s (%s); building it again", path, problem)
        path.unlink(missing_ok=True)
    arrays = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as tmp:
            np.savez(tmp, **arrays)  # type: ignore[arg-type]  # (mypy: might be allow_pickle)
        os.replace(tmp.name, path)
    except OSError as error:
        log.warning("cannot cache in %s (%s): going on without the cache", path.parent, error)
    return arrays
