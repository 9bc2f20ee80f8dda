"""The Sort-of-CLEVR generator, checked against an independent reading of each scene."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchmarks.data import sort_of_clevr as soc


@pytest.fixture(scope="module", params=[soc.PAPER, soc.SMALL], ids=["75px", "32px"])
def data(request):
    return soc.generate(size=60, test_size=10, seed=1, canvas=request.param)


def test_shapes_and_split(data):
    side = data.canvas.image
    assert data.images.shape == (60, 3, side, side) and data.images.dtype == torch.uint8
    assert data.shape == (3, side, side) and data.model_config()["strides"] == data.canvas.strides
    assert data.questions.shape == (60, 20, 4)
    assert data.tokens.shape == (60, 20, soc.QUESTION_LENGTH)
    assert data.bits.shape == (60, 20, 11) and (data.bits.sum(-1) == 3).all()
    train, test = data.train, data.test
    assert len(train.images) == 50 and len(test.images) == 10
    assert torch.equal(test.images, data.images[50:])


def test_deterministic_in_the_seed():
    a, b = soc.generate(20, 5, seed=7), soc.generate(20, 5, seed=7)
    assert torch.equal(a.images, b.images) and torch.equal(a.questions, b.questions)
    assert not torch.equal(a.images, soc.generate(20, 5, seed=8).images)


def test_six_objects_of_distinct_colours_without_overlap(data):
    side = data.canvas.object
    for image, scene in zip(data.images, data.scenes, strict=True):
        pixels = image.permute(1, 2, 0).reshape(-1, 3)
        for colour, rgb in enumerate(soc.RGB):
            count = (pixels == torch.tensor(rgb, dtype=torch.uint8)).all(1).sum().item()
            square = scene[colour, 2] == 0
            # a square of side*side pixels, or a disc inside it
            assert count == side**2 if square else 0.6 * side**2 < count < side**2
        centres = scene[:, :2].numpy()
        gaps = np.abs(centres[:, None] - centres[None]).max(-1) + np.eye(6, dtype=int) * 99
        assert gaps.min() > side  # bounding squares never touch


def independent_answer(scene: np.ndarray, colour: int, kind: int, subtype: int, half: float) -> str:
    """Each answer again, in words, straight from the scene description."""
    x, y, shape = (int(v) for v in scene[colour])
    shapes = ("square", "circle")
    if (kind, subtype) == (0, 0):
        return shapes[shape]
    if (kind, subtype) == (0, 1):
        return "yes" if x < half else "no"
    if (kind, subtype) == (0, 2):
        return "yes" if y < half else "no"
    if (kind, subtype) == (1, 2):
        return str(sum(int(other[2]) == shape for other in scene))
    others = [i for i in range(6) if i != colour]
    distance = {i: math.dist(scene[i][:2], (x, y)) for i in others}
    pick = min(others, key=distance.get) if subtype == 0 else max(others, key=distance.get)
    return shapes[int(scene[pick][2])]


def test_every_answer_recomputed_independently(data):
    for scene, questions in zip(data.scenes.numpy(), data.questions.numpy(), strict=True):
        assert sorted(questions[:, 1]) == [0] * 10 + [1] * 10
        for colour, kind, subtype, answer in questions:
            half = data.canvas.image / 2
            assert soc.ANSWERS[answer] == independent_answer(scene, colour, kind, subtype, half)


def test_questions_as_words_and_bits(data):
    words = [soc.VOCAB[t] for t in data.tokens[0, 0] if t]
    colour, kind, subtype, _ = data.questions[0, 0].tolist()
    assert " ".join(words) == soc.TEMPLATES[kind][subtype].format(soc.COLOURS[colour])
    assert data.bits[0, 0].tolist() == (
        [int(i == colour) for i in range(6)]
        + [int(i == kind) for i in range(2)]
        + [int(i == subtype) for i in range(3)]
    )
    assert (
        len(soc.ANSWERS) == 10 and len(soc.VOCAB) <= 32
    )  # fits the fusion nets' default vocabulary


def test_the_bits_form_is_the_papers_vector_as_three_tokens(data):
    bits = dataclasses.replace(data, question_form="bits")
    assert bits.tokens.shape == (*data.questions.shape[:2], 3)
    set_bits = F.one_hot(bits.tokens, len(soc.BIT_WORDS))[..., 1:].sum(-2)
    assert torch.equal(set_bits, data.bits.long())
    assert bits.model_config()["vocab_size"] == len(soc.BIT_WORDS) == 12
    assert data.model_config()["vocab_size"] == len(soc.VOCAB)


def test_default_set_is_generated_quickly():
    import time

    start = time.perf_counter()
    soc.generate(size=1000)
    assert time.perf_counter() - start < 3  # the default 10,000 in about 4 s here
