"""Training-loop overhead: the harness's ``train`` against a bare hand-written loop.

Both train the same architecture on the same device-resident uint8 images with
the same batch size and optimizer, alternating over several rounds in one
process. The bare loop only slices, normalises and steps; the harness adds
its augmentation (random crop, flip), learning-rate schedule and running
loss/accuracy. Throughput is training images per second, evaluation excluded.
The ratio harness / bare should be at least 0.95.

    python -m benchmarks.loop_overhead --out results/loop-overhead-cpu.json
"""

from __future__ import annotations

import logging
import statistics
import time

import torch
import torch.nn.functional as F

import architectures
from benchmarks import script
from benchmarks.data import ImageDataset
from benchmarks.measure.device import synchronize
from benchmarks.tasks.classification import train
from benchmarks.train import TrainConfig

log = logging.getLogger(__name__)


def synthetic_cifar(train_size: int) -> ImageDataset:
    """Random CIFAR-shaped images (3x32x32, 10 classes); speed does not depend on content."""
    generator = torch.Generator().manual_seed(0)

    def images(count: int) -> torch.Tensor:
        return torch.randint(0, 256, (count, 3, 32, 32), generator=generator, dtype=torch.uint8)

    def labels(count: int) -> torch.Tensor:
        return torch.randint(0, 10, (count,), generator=generator)

    return ImageDataset(
        "synthetic",
        tuple(map(str, range(10))),
        images(train_size),
        labels(train_size),
        images(100),
        labels(100),
    )


def bare_loop(
    model: torch.nn.Module, dataset: ImageDataset, batch_size: int, device: torch.device
) -> float:
    """One epoch of the plainest loop on the same tensors; images per second."""
    images, labels = dataset.train_images.to(device), dataset.train_labels.to(device)
    pixels = images.float().div(255).transpose(0, 1).flatten(1)
    mean, std = pixels.mean(1)[None, :, None, None], pixels.std(1)[None, :, None, None]
    optimizer = torch.optim.SGD(
        model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    model.train()
    synchronize(device)
    start = time.perf_counter()
    for index in torch.randperm(len(labels), device=device).split(batch_size):
        inputs = (images[index].float() / 255 - mean) / std
        loss = F.cross_entropy(model(inputs), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    synchronize(device)
    return len(labels) / (time.perf_counter() - start)


def harness_loop(
    model: torch.nn.Module, dataset: ImageDataset, batch_size: int, device: torch.device
) -> float:
    """One epoch of the harness's training loop; images per second of training."""
    result = train(
        model, dataset, TrainConfig(epochs=1, lr=0.01), batch_size=batch_size, device=device
    )
    return result.train_samples_per_s or 0.0


def main() -> None:
    parser = script.parser(__doc__)
    parser.add_argument("--arch", default="resnet20")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--train-size", type=int, default=2560)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    device = script.start(args)
    dataset = synthetic_cifar(args.train_size)
    model = architectures.create(args.arch).to(device)
    bare_loop(model, dataset, args.batch_size, device)  # warm-up: kernels, allocator
    rounds = []
    for number in range(1, args.rounds + 1):
        bare = bare_loop(model, dataset, args.batch_size, device)
        harness = harness_loop(model, dataset, args.batch_size, device)
        rounds.append(
            {"bare_images_per_s": bare, "harness_images_per_s": harness, "ratio": harness / bare}
        )
        log.info(
            "round %d: bare %.1f img/s, harness %.1f img/s, ratio %.3f",
            number,
            bare,
            harness,
            harness / bare,
        )
    summary = {
        "arch": args.arch,
        "batch_size": args.batch_size,
        "train_size": args.train_size,
        "ratio_median": statistics.median(r["ratio"] for r in rounds),
        "bare_images_per_s_median": statistics.median(r["bare_images_per_s"] for r in rounds),
        "harness_images_per_s_median": statistics.median(r["harness_images_per_s"] for r in rounds),
    }
    log.info("median ratio harness / bare: %.3f", summary["ratio_median"])
    script.write_report(args, device, {"summary": summary, "rounds": rounds})


if __name__ == "__main__":
    main()
