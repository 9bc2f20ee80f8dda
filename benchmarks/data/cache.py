"""A cache of decoded data sets as uint8 arrays, keyed by source and checksum."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
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
    if path.exists():
        log.info("%s: decoded images from the cache %s", name, path)
        return _read(path, name)
    log.info("%s: decoding %s (once; cached in %s)", name, source, cache_dir)
    dataset = decode()
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cache_dir, suffix=".npz", delete=False) as tmp:
        np.savez(
            tmp,
            classes=np.array(dataset.classes),
            flip=np.array(dataset.flip),
            train_images=dataset.train_images.numpy(),
            train_labels=dataset.train_labels.numpy(),
            test_images=dataset.test_images.numpy(),
            test_labels=dataset.test_labels.numpy(),
        )
    os.replace(tmp.name, path)
    return dataset


def _read(path: Path, name: str) -> ImageDataset:
    with np.load(path) as arrays:
        return ImageDataset(
            name=name,
            classes=tuple(str(c) for c in arrays["classes"]),
            flip=bool(arrays["flip"]),
            **{
                key: torch.from_numpy(arrays[key])
                for key in ("train_images", "train_labels", "test_images", "test_labels")
            },
        )
