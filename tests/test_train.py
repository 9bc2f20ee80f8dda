"""The training loop: augmentation, schedule, determinism, budgets, divergence, learning."""

from __future__ import annotations

import pytest
import torch

import architectures
from benchmarks.data import load_images
from benchmarks.errors import UserError
from benchmarks.schema import Status
from benchmarks.tasks.classification import augment, train
from benchmarks.train import Split, TrainConfig, holdout, lr_factor
from benchmarks.train import fit as train_loop

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


def test_a_time_budget_stops_training_and_says_it_cut_it_short():
    result = fit(epochs=50, time_budget_s=1.0)
    assert result.status is Status.OK and result.epochs_done < 50 and result.budget_cut
    assert result.train_time_s < 3.0
    assert not fit(epochs=1).budget_cut  # the epochs ran out first


def test_a_classifier_refuses_a_question_curriculum():
    with pytest.raises(UserError, match="curriculum_epochs"):
        fit(epochs=2, curriculum_epochs=1)


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
    assert set(result.curve[0]) == {
        "epoch", "train_loss", "train_acc", "val_acc", "test_acc", "train_time_s"
    }  # fmt: skip
    assert result.time_to_target_s == result.curve[0]["train_time_s"]
    assert result.best_val_acc == max(point["val_acc"] for point in result.curve)
    assert result.split == Split(train=461, val=51, seed=0)  # a tenth of 512 held out


def test_validation_decides_and_the_test_set_is_only_reported():
    """Test accuracy peaks in epoch 2, validation accuracy in epoch 3: the best epoch and
    the time to target come from validation, the test accuracy is the last epoch's."""
    scripted = iter(
        [{"val_acc": 0.5, "test_acc": 0.6}, {"val_acc": 0.6, "test_acc": 0.9},
         {"val_acc": 0.7, "test_acc": 0.7}]
    )  # fmt: skip
    model = TinyNet(in_channels=1)
    images, labels = torch.randn(8, 1, 8, 8), torch.randint(10, (8,))

    def batches():
        yield lambda: (model(images), labels)

    result = train_loop(
        model, TrainConfig(epochs=3, target_accuracy=0.65), batches=batches,
        steps_per_epoch=1, evaluate_epoch=lambda: next(scripted), device=CPU,
    )  # fmt: skip
    assert (result.best_epoch, result.best_val_acc) == (3, 0.7)
    assert result.test_acc == 0.7 and result.val_acc == 0.7
    assert result.time_to_target_s == result.curve[2]["train_time_s"]  # validation, epoch 3
    assert not hasattr(result, "best_test_acc")


def test_the_holdout_is_fixed_by_its_seed_and_disjoint():
    config = TrainConfig(val_fraction=0.25, val_seed=1)
    kept, held = holdout(40, config)
    assert len(held) == 10 and len(kept) == 30 and not set(kept.tolist()) & set(held.tolist())
    assert torch.equal(held, holdout(40, config)[1])
    assert not torch.equal(held, holdout(40, TrainConfig(val_fraction=0.25, val_seed=2))[1])


def test_a_short_run_learns_the_digits():
    """Well above the 10% of chance: only a model that learns gets here."""
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = architectures.create("resnet20", in_channels=1)
    dataset = load_images("mnist5k").subset(2000)
    result = train(model, dataset, TrainConfig(epochs=2, lr=0.1), batch_size=64, device=CPU)
    assert result.test_acc > 0.8, result
