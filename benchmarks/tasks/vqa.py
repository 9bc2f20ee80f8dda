"""Visual question answering: the fusion nets on Sort-of-CLEVR, batched by image, and
the answer floors.

Each step takes ``batch_size`` images, encodes each once (``encode_image``)
and answers all 20 of its questions from that encoding (``answer``), so a
step trains on 20 x ``batch_size`` questions for the price of ``batch_size``
image encodings. A curriculum (``curriculum_epochs``) trains the first epochs
on the 10 non-relational questions of each image only: finding the object a
question names is learnt there first, which on small budgets lets the nets
leave the answer-prior plateau that mixed questions hold them on. Images are
normalised but not augmented: crops and flips would change where the objects
are, and so the answers. The budget, schedule
and bookkeeping are those of ``train.fit``.

Floors: Sort-of-CLEVR has strong answer priors. For each question subtype the
floor is the better of two answers that need no fusion: the majority answer
of the training questions, and a colour-blind answer from the whole image
that ignores which object is asked about (the image's majority shape for
shape, closest and furthest; the number of objects of that shape for count;
yes/no questions have no colour-blind answer better than the majority). A net
at its floor has not learned to find the object named in the question.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from architectures import InputKind
from architectures.fusion import FusionNet
from benchmarks.data import DEFAULT_CACHE_DIR, sort_of_clevr
from benchmarks.data.sort_of_clevr import (
    ANSWERS,
    NON_RELATIONAL,
    QUESTION_FORMS,
    QUESTIONS_PER_KIND,
    SUBTYPES,
    VOCAB,
    SortOfClevr,
    form_tokens,
    vocabulary,
)
from benchmarks.errors import UserError
from benchmarks.measure.device import DEFAULT_BACKEND, Backend, compiled, precision, to_device
from benchmarks.options import QUESTION_SETS
from benchmarks.tasks import Forward, Metric, Task, register
from benchmarks.train import (
    Batch,
    Normalizer,
    Split,
    TrainConfig,
    TrainResult,
    fit,
    full_batches,
    holdout,
    shuffled_batches,
)

QUESTIONS_PER_IMAGE = 2 * QUESTIONS_PER_KIND
GROUPS = tuple((kind, subtype) for kind in range(2) for subtype in range(3))
KINDS = (("nonrel", "non-relational"), ("rel", "relational"))  # column suffix, name
BY_KIND = tuple(
    Metric(name, f"test_acc_{suffix}", f"floor_{suffix}", f"test accuracy on {name} questions")
    for suffix, name in reversed(KINDS)
)


def group_name(kind: int, subtype: int) -> str:
    return SUBTYPES[kind][subtype]


BY_SUBTYPE = tuple(
    Metric(name, f"acc_{name}", f"floor_{name}", f"test accuracy on {name} questions")
    for name in (group_name(kind, subtype) for kind, subtype in GROUPS)
)


def colour_blind_answers(data: SortOfClevr) -> torch.Tensor:
    """(N, 20) answers that ignore the colour asked about (see the module docstring)."""
    circles = data.scenes[:, :, 2].sum(1)
    majority_shape = (circles > 3).long()  # ties (3 and 3) answer square
    majority_count = torch.maximum(circles, 6 - circles)
    shape_answer = ANSWERS.index("square") + majority_shape
    count_answer = ANSWERS.index("1") + majority_count - 1
    kind, subtype = data.questions[..., 1], data.questions[..., 2]
    count_question = (kind == 1) & (subtype == 2)
    answers = torch.where(count_question, count_answer[:, None], shape_answer[:, None])
    return answers.masked_fill((kind == 0) & (subtype > 0), -1)  # yes/no: no colour-blind answer


def floors(data: SortOfClevr) -> dict[str, float]:
    """Per subtype and per kind, the test accuracy of the better no-fusion answer."""
    learn, test = data.train, data.test
    blind = colour_blind_answers(test)
    truth, kind, subtype = test.questions[..., 3], test.questions[..., 1], test.questions[..., 2]
    result, per_question = {}, torch.zeros(truth.shape)
    for k, s in GROUPS:
        mask = (kind == k) & (subtype == s)
        train_mask = (learn.questions[..., 1] == k) & (learn.questions[..., 2] == s)
        majority = torch.bincount(
            learn.questions[..., 3][train_mask], minlength=len(ANSWERS)
        ).argmax()
        accuracy = max(
            (truth[mask] == majority).float().mean(), (truth[mask] == blind[mask]).float().mean()
        )
        result[f"floor_{group_name(k, s)}"] = accuracy.item()
        per_question[mask] = accuracy.item()
    for k, (suffix, _) in enumerate(KINDS):
        result[f"floor_{suffix}"] = per_question[kind == k].mean().item()
    return result


def answer_hits(
    model: nn.Module,
    data: SortOfClevr,
    normalize: Normalizer,
    *,
    batch_size: int,
    device: torch.device,
    dtype: str = "fp32",
) -> torch.Tensor:
    """Which of every image's 20 questions the model answers right, (N, 20) floats."""
    model.eval()
    correct = []
    with torch.inference_mode(), precision(device, dtype):
        for start in range(0, len(data.images), batch_size):
            part = slice(start, start + batch_size)
            logits = answer_all(
                model, normalize(data.images[part].to(device)), data.tokens[part].to(device)
            )
            answers = data.questions[part, :, 3].flatten()
            correct.append((logits.argmax(1).cpu() == answers).view(-1, QUESTIONS_PER_IMAGE))
    return torch.cat(correct).float()


def by_question(hits: torch.Tensor, data: SortOfClevr) -> dict[str, float]:
    """Test accuracy from the ``hits`` on ``data``: overall, per kind (``test_acc_rel``...)
    and per subtype (``acc_closest``...)."""
    kind, subtype = data.questions[..., 1], data.questions[..., 2]
    metrics = {"test_acc": hits.mean().item()}
    for k, (suffix, _) in enumerate(KINDS):
        metrics[f"test_acc_{suffix}"] = hits[kind == k].mean().item()
    for k, s in GROUPS:
        metrics[f"acc_{group_name(k, s)}"] = hits[(kind == k) & (subtype == s)].mean().item()
    return metrics


def question_batch(
    images: int, device: torch.device | str = "cpu", vocab_size: int = len(VOCAB)
) -> torch.Tensor:
    """Token ids of 20 random Sort-of-CLEVR questions for each of ``images`` images,
    (images, 20, length): the shape and repetition of a real training batch, in the
    question form whose vocabulary has ``vocab_size`` tokens (a model's)."""
    forms = [form for form in QUESTION_FORMS if len(vocabulary(form)) == vocab_size]
    templates = form_tokens(forms[0] if forms else "words").flatten(0, 2)
    picks = torch.randint(len(templates), (images, QUESTIONS_PER_IMAGE))
    return templates[picks].to(device)


def answer_all(model: nn.Module, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Logits for every question of every image, (B * 20, answers), each image encoded once."""
    fusion = cast(FusionNet, model)
    return fusion.answer(fusion.encode_image(images), tokens)


def train(
    model: nn.Module,
    data: SortOfClevr,
    config: TrainConfig,
    *,
    batch_size: int,
    device: torch.device,
    dtype: str = "fp32",
    seed: int = 0,
    backend: Backend = DEFAULT_BACKEND,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train a fusion net under ``config``'s budget; ``batch_size`` counts images."""
    learn, test = data.train, data.test
    if config.train_subset:
        learn = learn.take(torch.arange(min(config.train_subset, len(learn.images))))
    kept, held = holdout(len(learn.images), config)
    learn, val = learn.take(kept), learn.take(held)
    model = to_device(model, device, backend)
    answer = compiled(answer_all, backend.compile)
    generator = torch.Generator(device=device).manual_seed(seed)
    images, tokens = learn.images.to(device), learn.tokens.to(device)
    answers = learn.questions[..., 3].to(device)
    normalize = Normalizer(images, backend.channels_last)
    floor_metrics = floors(data)

    def batch(index: torch.Tensor, questions: slice) -> Batch:
        logits = answer(model, normalize(images[index]), tokens[index, questions])
        return logits, answers[index, questions].flatten()

    epochs = itertools.count(1)

    def batches() -> Iterator[Callable[[], Batch]]:
        questions = NON_RELATIONAL if next(epochs) <= config.curriculum_epochs else slice(None)
        for index in shuffled_batches(len(images), batch_size, generator, device):
            yield functools.partial(batch, index, questions)

    images_per_batch = max(1, config.eval_batch_size // QUESTIONS_PER_IMAGE)

    def hits(part: SortOfClevr) -> torch.Tensor:
        return answer_hits(
            model, part, normalize, batch_size=images_per_batch, device=device, dtype=dtype
        )

    def evaluate_epoch() -> dict[str, float]:
        test_metrics = by_question(hits(test), test)
        return {"val_acc": hits(val).mean().item(), **test_metrics, **floor_metrics}

    return fit(
        model, config,
        batches=batches, steps_per_epoch=full_batches(len(images), batch_size),
        evaluate_epoch=evaluate_epoch, device=device, dtype=dtype, on_epoch=on_epoch,
        compiling=backend.compile, split=Split(len(kept), len(held), config.val_seed),
    )  # fmt: skip


VARIANTS = {  # name: the canvas and the question form
    "sort_of_clevr": (sort_of_clevr.PAPER, "words"),
    "sort_of_clevr_small": (sort_of_clevr.SMALL, "words"),
    "sort_of_clevr_bits": (sort_of_clevr.PAPER, "bits"),
    "sort_of_clevr_small_bits": (sort_of_clevr.SMALL, "bits"),
}


def provides(name: str) -> bool:
    return name.partition(":")[0] in VARIANTS


def load(name: str, *, root: Path | None, download: bool, cache_dir: Path | None) -> SortOfClevr:
    """``sort_of_clevr`` (10,000 75x75 images, questions in words), ``sort_of_clevr_small``
    (32x32), either with ``_bits`` (the paper's 11-bit questions, as three tokens) and
    any of them with ``:N`` images, generated once and cached."""
    base, _, size = name.partition(":")
    if size and not (size.isdigit() and int(size) > sort_of_clevr.TEST_SIZE):
        raise UserError(f"{name}: the size must be an integer above {sort_of_clevr.TEST_SIZE}")
    size_n = int(size or sort_of_clevr.DEFAULT_SIZE)
    canvas, form = VARIANTS[base]
    return sort_of_clevr.load(
        size_n,
        cache_dir=cache_dir or DEFAULT_CACHE_DIR,
        canvas=canvas,
        name=base,
        question_form=form,
    )


def training_batch(
    model: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    num_classes: int,
    device: torch.device,
    *,
    compile: bool,
) -> tuple[Forward, torch.Tensor]:
    """A step of training: each image encoded once, its 20 questions answered
    (B images, 20 x B questions)."""
    tokens = question_batch(len(inputs[0]), device, cast(FusionNet, model).vocab_size)
    targets = torch.randint(num_classes, (tokens.shape[0] * tokens.shape[1],), device=device)
    answer = compiled(answer_all, compile)
    return lambda: answer(model, inputs[0], tokens), targets


VISUAL_QA = register(
    Task(
        name="visual question answering",
        input_kind=InputKind.IMAGE_TOKENS,
        datasets=QUESTION_SETS,
        provides=provides,
        load=load,
        training_batch=training_batch,
        train=train,
        metrics=BY_KIND,
        breakdown=BY_SUBTYPE,
        figure="question_kinds",
    )
)
