"""The training loop: augmentation, schedule, determinism, budgets, divergence, learning."""

from __future__ import annotations

import pytest
import torch

import architectures
from benchmarks.data import load_images
from benchmarks.schema import Status
from benchmarks.tasks.classification import augment, train
from benchmarks.train import TrainConfig, lr_factor

from helpers import TinyNet

CPU = torch.device("cpu")


def test_augment_crops_and_flips_on_the_device_without_changing_shape():
    images = torch.arange(2 * 1 * 4 * 4, dtype=torch.uint8).reshape(2, 1, 4, 4)
    generator = torch.Generator().manual_seed(0)
    crops = [augment(images, generator, flip=True, padding=1) for _ in range(20)]
    assert all(crop.shape == images.shape and crop.dtype == torch.uint8 for crop in crops)
    distinct = {tuple(crop[0].flatten().tolist()) for crop in crops}
    assert len(distinct) > 3  # random offsets and flips
    for crop in crops:  # every crop is a shifted window of the zero-padded image, maybe mirrored
        padded = torch.nn.functional.pad(images[0, 0], (1, 1, 1, 1))
        windows = [padded[y : y + 4, x : x + 4] for y in range(3) for x in range(3)]
        assert any(
            torch.equal(crop[0, 0], w) or torch.equal(crop[0, 0], w.flip(1)) for w in windows
        )


def test_no_flip_when_the_data_set_forbids_it():
    images = torch.arange(16, dtype=torch.uint8).reshape(1, 1, 4, 4).repeat(64, 1, 1, 1)
    crops = augment(images, torch.Generator().manual_seed(0), flip=False, padding=0)
    assert torch.equal(crops, images)


@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
def test_schedule_warms_up_peaks_and_ends_at_zero(schedule):
    assert lr_factor(0.0, schedule, 0.2) == 0
    assert lr_factor(0.1, schedule, 0.2) == pytest.approx(0.5)
    assert lr_factor(0.2, schedule, 0.2) == 1
    assert lr_factor(1.0, schedule, 0.2) == pytest.approx(0)
    assert 0 < lr_factor(0.6, schedule, 0.2) < 1


def small_mnist():
    return load_images("mnist5k").subset(512)


def fit(seed: int = 0, **config):
    torch.manual_seed(seed)
    model = architectures.create("resnet20_dw", in_channels=1)
    config = TrainConfig(**{"epochs": 1, "lr": 0.05, **config})
    return train(model, small_mnist(), config, batch_size=64, device=CPU, seed=seed)


def test_a_fixed_seed_gives_the_same_accuracy_on_a_rerun():
    torch.set_num_threads(1)
    first, second = fit(seed=3), fit(seed=3)
    assert first.test_acc == second.test_acc and first.train_loss == second.train_loss


def test_time_budget_stops_training():
    result = fit(epochs=50, time_budget_s=1.0)
    assert result.status is Status.OK and result.epochs_done < 50
    assert result.train_time_s < 3.0


def test_divergence_is_a_status_not_an_exception():
    torch.manual_seed(0)
    model = TinyNet(in_channels=1)
    with torch.no_grad():
        model.fc.weight.fill_(float("nan"))
    result = train(model, small_mnist(), TrainConfig(epochs=3), batch_size=64, device=CPU)
    assert result.status is Status.DIVERGED and "epoch 1" in result.message
    assert result.epochs_done == 0


def test_curves_and_target_time_are_recorded():
    result = fit(epochs=2, target_accuracy=0.0)
    assert [point["epoch"] for point in result.curve] == [1, 2]
    assert set(result.curve[0]) == {"epoch", "train_loss", "train_acc", "test_acc", "train_time_s"}
    assert result.time_to_target_s == result.curve[0]["train_time_s"]
    assert result.best_test_acc == max(point["test_acc"] for point in result.curve)


def test_a_short_run_learns_the_digits():
    """Well above the 10% of chance: only a model that learns gets here."""
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = architectures.create("resnet20", in_channels=1)
    dataset = load_images("mnist5k").subset(2000)
    result = train(model, dataset, TrainConfig(epochs=2, lr=0.1), batch_size=64, device=CPU)
    assert result.test_acc > 0.8, result
