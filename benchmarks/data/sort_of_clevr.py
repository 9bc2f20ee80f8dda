"""Sort-of-CLEVR: Santoro et al. 2017, "A simple neural network module for
relational reasoning" (arXiv:1706.01427), supplement D, generated locally.

Each 75x75 image shows six objects on a white background, one of each colour
(red, green, blue, orange, gray, yellow), each a square or a circle of side
10, placed without overlap. Every image comes with 20 questions about one of
its colours: 10 non-relational and 10 relational, each of a random subtype.
The small variant (``SMALL``, a departure for CPU budgets) draws the same
scenes by the same rules on a 32x32 canvas with objects of side 4.

| kind | subtype | question (tokens) | answers |
|---|---|---|---|
| non-relational | 0 shape | what shape is the red object | square, circle |
| non-relational | 1 horizontal | is the red object on the left | yes, no |
| non-relational | 2 vertical | is the red object on the top | yes, no |
| relational | 0 closest | what shape is the object closest to the red object | square, circle |
| relational | 1 furthest | what shape is the object furthest from the red object | square, circle |
| relational | 2 count | how many objects have the shape of the red object | 1 ... 6 |

Answers share one vocabulary of 10: yes, no, square, circle, 1, 2, 3, 4, 5, 6.
"Left" and "top" mean the object's centre lies in the left (top) half.
Distances are between centres. Each question exists in three forms: the
paper's 11-bit vector (6 bits of colour, 2 of kind, 3 of subtype); word
tokens over the fixed vocabulary VOCAB, padded with 0 to QUESTION_LENGTH (the
``words`` question form the fusion nets read by default); and the 11 bits as
three tokens over BIT_WORDS, one per set bit (the ``bits`` form: the paper's
question, for nets that read tokens).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.data import TEST, TRAIN
from benchmarks.data.cache import cached_arrays

log = logging.getLogger(__name__)
COLOURS = ("red", "green", "blue", "orange", "gray", "yellow")
RGB = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 156, 0), (128, 128, 128), (255, 255, 0))
SHAPES = ("square", "circle")
ANSWERS = ("yes", "no", "square", "circle", "1", "2", "3", "4", "5", "6")
SUBTYPES = (("shape", "horizontal", "vertical"), ("closest", "furthest", "count"))
TEMPLATES = (
    (
        "what shape is the {} object",
        "is the {} object on the left",
        "is the {} object on the top",
    ),
    (
        "what shape is the object closest to the {} object",
        "what shape is the object furthest from the {} object",
        "how many objects have the shape of the {} object",
    ),
)
VOCAB = (
    "<pad>",
    *sorted({w for kind in TEMPLATES for t in kind for w in t.split() if w != "{}"}),
    *COLOURS,
)
BIT_WORDS = (
    "<pad>",
    *COLOURS,
    "non-relational",
    "relational",
    "subtype-1",
    "subtype-2",
    "subtype-3",
)
QUESTION_LENGTH = max(len(t.split()) for kind in TEMPLATES for t in kind)
QUESTIONS_PER_KIND = 10
NON_RELATIONAL = slice(0, QUESTIONS_PER_KIND)  # an image's questions: these first, then relational
DEFAULT_SIZE, TEST_SIZE, SEED = 10_000, 200, 0
VERSION = 1  # of the generator: part of the cache key


@dataclass(frozen=True)
class Canvas:
    """The image side and the objects' side in pixels (even), and the strides of the fusion
    nets' image encoder that turn the image into a grid of cells about an object wide."""

    image: int
    object: int
    strides: tuple[int, ...]


PAPER = Canvas(75, 10, (2, 2, 2, 2))  # 5x5 cells, as Santoro et al.
SMALL = Canvas(32, 4, (2, 2, 2, 1))  # 4x4 cells


@dataclass(frozen=True)
class SortOfClevr:
    """Images with their scenes and questions; split into train and test by ``test_size``.

    ``scenes`` (N, 6, 3): x and y of each colour's centre, and its shape index.
    ``questions`` (N, 20, 4): colour, kind, subtype and answer index of each question,
    the 10 non-relational ones first (``NON_RELATIONAL``).
    """

    name: str
    images: torch.Tensor  # uint8 (N, 3, side, side)
    scenes: torch.Tensor
    questions: torch.Tensor
    test_size: int
    canvas: Canvas = PAPER
    question_form: str = "words"  # or "bits" (see the module docstring)

    num_classes = len(ANSWERS)

    @property
    def shape(self) -> tuple[int, int, int]:
        channels, height, width = self.images.shape[1:]
        return channels, height, width

    def model_config(self) -> dict[str, Any]:
        """The builder keys this data set fixes."""
        return {
            "in_channels": 3,
            "num_classes": len(ANSWERS),
            "vocab_size": len(vocabulary(self.question_form)),
            "strides": self.canvas.strides,
        }

    @property
    def tokens(self) -> torch.Tensor:
        """Token ids of every question in its question form, (N, 20, length)."""
        return form_tokens(self.question_form)[
            self.questions[..., 0], self.questions[..., 1], self.questions[..., 2]
        ]

    @property
    def bits(self) -> torch.Tensor:
        """The paper's 11-bit encoding of every question, (N, 20, 11)."""
        colour = torch.nn.functional.one_hot(self.questions[..., 0], 6)
        kind = torch.nn.functional.one_hot(self.questions[..., 1], 2)
        subtype = torch.nn.functional.one_hot(self.questions[..., 2], 3)
        return torch.cat([colour, kind, subtype], dim=-1).to(torch.uint8)

    @property
    def train(self) -> SortOfClevr:
        """The training part: all but the last ``test_size`` images."""
        part = self.take(torch.arange(len(self.images) - self.test_size))
        return replace(part, name=f"{self.name}:{TRAIN}")

    @property
    def test(self) -> SortOfClevr:
        """The test part: the last ``test_size`` images (all of them its test part)."""
        part = self.take(torch.arange(len(self.images) - self.test_size, len(self.images)))
        return replace(part, name=f"{self.name}:{TEST}", test_size=self.test_size)

    def take(self, index: torch.Tensor) -> SortOfClevr:
        """The images at ``index`` with their scenes and questions (none held out as test)."""
        return replace(
            self,
            images=self.images[index],
            scenes=self.scenes[index],
            questions=self.questions[index],
            test_size=0,
        )


@functools.cache
def question_tokens() -> torch.Tensor:
    """Token ids of every (colour, kind, subtype), (6, 2, 3, QUESTION_LENGTH)."""
    index = {word: i for i, word in enumerate(VOCAB)}
    table = torch.zeros(len(COLOURS), 2, 3, QUESTION_LENGTH, dtype=torch.int64)
    for c, colour in enumerate(COLOURS):
        for k, templates in enumerate(TEMPLATES):
            for s, template in enumerate(templates):
                words = template.format(colour).split()
                table[c, k, s, : len(words)] = torch.tensor([index[w] for w in words])
    return table


@functools.cache
def bit_tokens() -> torch.Tensor:
    """The paper's 11-bit question as its three set bits, token ids over BIT_WORDS of every
    (colour, kind, subtype), (6, 2, 3, 3)."""
    colour = torch.arange(len(COLOURS))[:, None, None] + 1
    kind = torch.arange(2)[None, :, None] + 1 + len(COLOURS)
    subtype = torch.arange(3)[None, None, :] + 3 + len(COLOURS)
    return torch.stack(torch.broadcast_tensors(colour, kind, subtype), dim=-1)


QUESTION_FORMS = {"words": (VOCAB, question_tokens), "bits": (BIT_WORDS, bit_tokens)}


def vocabulary(form: str) -> tuple[str, ...]:
    """The tokens a question form is written in (0: padding)."""
    return QUESTION_FORMS[form][0]


def form_tokens(form: str) -> torch.Tensor:
    """Token ids of every (colour, kind, subtype) in a question form, (6, 2, 3, length)."""
    return QUESTION_FORMS[form][1]()


def answer(scene: np.ndarray, colour: int, kind: int, subtype: int, image_side: int) -> int:
    """The answer index of one question about a scene (x, y, shape per colour)."""
    x, y, shape = scene[colour]
    if kind == 0:
        if subtype == 0:
            return ANSWERS.index(SHAPES[shape])
        coordinate = x if subtype == 1 else y
        return ANSWERS.index("yes" if coordinate < image_side / 2 else "no")
    if subtype == 2:
        return ANSWERS.index(str(int((scene[:, 2] == shape).sum())))
    distances = ((scene[:, :2] - scene[colour, :2]) ** 2).sum(1).astype(float)
    distances[colour] = np.inf if subtype == 0 else -np.inf
    other = distances.argmin() if subtype == 0 else distances.argmax()
    return ANSWERS.index(SHAPES[scene[other, 2]])


def _place(rng: np.random.Generator, canvas: Canvas) -> np.ndarray:
    """Centres of six objects that do not overlap (squares of side ``canvas.object``)."""
    half = canvas.object // 2
    centres: list[np.ndarray] = []
    while len(centres) < len(COLOURS):
        centre = rng.integers(half, canvas.image - half, 2)
        if all(np.abs(centre - other).max() > canvas.object for other in centres):
            centres.append(centre)
    return np.stack(centres)


@functools.cache
def _circle_mask(side: int) -> np.ndarray:
    offsets = np.arange(side) - (side - 1) / 2
    return offsets[:, None] ** 2 + offsets[None, :] ** 2 <= (side / 2) ** 2


def _draw(scene: np.ndarray, canvas: Canvas) -> np.ndarray:
    image = np.full((canvas.image, canvas.image, 3), 255, dtype=np.uint8)
    half, side = canvas.object // 2, canvas.object
    for colour, (x, y, shape) in enumerate(scene):
        patch = image[y - half : y + half, x - half : x + half]
        mask = _circle_mask(side) if shape == 1 else np.ones((side, side), bool)
        patch[mask] = RGB[colour]
    return image.transpose(2, 0, 1)


def load(
    size: int = DEFAULT_SIZE,
    *,
    cache_dir: Path,
    canvas: Canvas = PAPER,
    name: str = "sort_of_clevr",
    question_form: str = "words",
) -> SortOfClevr:
    """The set of ``size`` images (the last TEST_SIZE held out), from the cache once generated."""
    drawn = "" if canvas == PAPER else f"-{canvas.image}px{canvas.object}"
    path = cache_dir / f"sort_of_clevr{drawn}-{size}-{TEST_SIZE}-seed{SEED}-v{VERSION}.npz"

    def arrays() -> dict[str, np.ndarray]:
        log.info("generating %s with %d images (once; cached in %s)", name, size, cache_dir)
        data = generate(size, TEST_SIZE, SEED, canvas)
        return {key: getattr(data, key).numpy() for key in ARRAYS}

    stored = cached_arrays(path, arrays, ARRAYS, consistent)
    return SortOfClevr(
        f"{name}:{size}",
        test_size=TEST_SIZE,
        canvas=canvas,
        question_form=question_form,
        **{key: torch.from_numpy(stored[key]) for key in ARRAYS},
    )


ARRAYS = ("images", "scenes", "questions")  # what a generated set is made of (and cached)


def consistent(arrays: dict[str, np.ndarray]) -> bool:
    """Images (N, 3, H, W), scenes (N, 6, 3) and questions (N, 20, 4) of one N."""
    images, scenes, questions = (arrays[key] for key in ARRAYS)
    return (
        images.ndim == 4
        and scenes.shape == (len(images), len(COLOURS), 3)
        and questions.shape == (len(images), 2 * QUESTIONS_PER_KIND, 4)
    )


def generate(
    size: int = DEFAULT_SIZE, test_size: int = TEST_SIZE, seed: int = SEED, canvas: Canvas = PAPER
) -> SortOfClevr:
    """``size`` images with 20 questions each on ``canvas``, deterministic in ``seed``."""
    if not 0 < test_size < size:
        raise ValueError(f"test_size must be between 0 and size ({size}), not {test_size}")
    rng = np.random.default_rng(seed)
    images = np.empty((size, 3, canvas.image, canvas.image), dtype=np.uint8)
    scenes = np.empty((size, len(COLOURS), 3), dtype=np.int64)
    questions = np.empty((size, 2 * QUESTIONS_PER_KIND, 4), dtype=np.int64)
    for n in range(size):
        scene = np.column_stack([_place(rng, canvas), rng.integers(0, 2, len(COLOURS))])
        scenes[n], images[n] = scene, _draw(scene, canvas)
        kinds = np.repeat([0, 1], QUESTIONS_PER_KIND)
        colours, subtypes = rng.integers(0, 6, len(kinds)), rng.integers(0, 3, len(kinds))
        for q, (colour, kind, subtype) in enumerate(zip(colours, kinds, subtypes, strict=True)):
            questions[n, q] = (
                colour,
                kind,
                subtype,
                answer(scene, colour, kind, subtype, canvas.image),
            )
    return SortOfClevr(
        name=f"sort_of_clevr[{size},seed={seed}]",
        images=torch.from_numpy(images),
        scenes=torch.from_numpy(scenes),
        questions=torch.from_numpy(questions),
        test_size=test_size,
        canvas=canvas,
    )
