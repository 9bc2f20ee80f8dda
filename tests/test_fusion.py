"""The fusion nets: they read both the image and the question."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import architectures
from architectures.fusion import attend

FUSION = architectures.list_architectures("fusion_*")


def test_the_fusion_nets_are_registered_for_image_and_tokens():
    assert FUSION == ["fusion_concat", "fusion_film", "fusion_rn", "fusion_san", "fusion_xattn"]
    for name in FUSION:
        assert architectures.spec(name).input_kind is architectures.InputKind.IMAGE_TOKENS


@pytest.mark.parametrize("name", FUSION)
def test_output_depends_on_the_image_and_on_the_question(name):
    torch.manual_seed(0)
    model = architectures.create(name).eval()
    image, tokens = architectures.spec(name).example_inputs(4)
    other_image = torch.randn_like(image)
    other_tokens = torch.randint(1, 32, tokens.shape)
    with torch.no_grad():
        base = model(image, tokens)
        assert not torch.allclose(base, model(other_image, tokens), atol=1e-5)
        assert not torch.allclose(base, model(image, other_tokens), atol=1e-5)


@pytest.mark.parametrize("name", FUSION)
def test_one_image_encoding_answers_many_questions(name):
    """answer(encode_image(x), 3 questions each) == forward(x repeated, q): batching by image."""
    torch.manual_seed(0)
    model = architectures.create(name).eval()
    image, _ = architectures.spec(name).example_inputs(2)
    tokens = torch.randint(1, 32, (6, 10))
    tokens[::2, 6:] = 0  # questions of different lengths
    with torch.no_grad():
        together = model.answer(model.encode_image(image), tokens.view(2, 3, 10))
        separately = model(image.repeat_interleave(3, dim=0), tokens)
    torch.testing.assert_close(together, separately, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    ("name", "projections"), [("fusion_xattn", ["cells"]), ("fusion_san", ["keys", "values"])]
)
def test_an_images_cells_are_projected_once_for_all_its_questions(name, projections):
    """The attention nets project each image's cells once, not once per question: a
    training batch asks 20 questions of each image."""
    model = architectures.create(name).eval()
    rows = []
    for projection in projections:
        getattr(model, projection).register_forward_hook(
            lambda module, inputs, output: rows.append(inputs[0].shape[0])
        )
    image, _ = architectures.spec(name).example_inputs(2)
    with torch.no_grad():
        model.answer(model.encode_image(image), torch.randint(1, 32, (2, 5, 10)))
    assert rows == [2] * len(projections)  # one row of cells an image


def test_padding_does_not_change_the_answer():
    torch.manual_seed(0)
    model = architectures.create("fusion_xattn").eval()
    image = torch.randn(1, 3, 75, 75)
    short = torch.tensor([[5, 6, 7, 0, 0, 0]])
    with torch.no_grad():
        torch.testing.assert_close(model(image, short), model(image, short[:, :3]))


STEP_GRADIENTS = """
import hashlib, sys, torch
import architectures
from architectures.fusion import attend
from benchmarks.tasks.vqa import answer_all, question_batch
torch.set_num_threads(2)
torch.manual_seed(0)
model = architectures.create("fusion_xattn", vocab_size=24).train()
tokens, images = question_batch(8), torch.randn(8, 3, 75, 75)
logits = answer_all(model, images, tokens)
torch.nn.functional.cross_entropy(logits, torch.randint(10, (160,))).backward()
grads = torch.cat([p.grad.flatten() for p in model.parameters()])
print(hashlib.sha256(grads.numpy().tobytes()).hexdigest())
"""


def test_a_training_step_gives_the_same_gradients_in_every_process():
    """Repeated questions are encoded once and their gradients summed in a fixed order:
    the same seed trains to the same accuracy, bit for bit, in any run (parallel
    accumulation of indexing's backward once made fusion_xattn differ run to run)."""
    digests = {
        subprocess.run(
            [sys.executable, "-c", STEP_GRADIENTS], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(3)
    }
    assert len(digests) == 1


def test_a_later_hop_passes_over_the_cells_earlier_hops_took():
    """fusion_san's second hop looks past the object the first one found."""
    keys = torch.eye(4)[None] * 10  # cell i matches the query e_i
    query = torch.ones(1, 4)  # every cell scores alike
    _, fresh = attend(query, keys, keys, torch.zeros(1, 4))
    _, later = attend(query, keys, keys, torch.tensor([[0.0, 1.0, 0.0, 0.0]]))
    torch.testing.assert_close(fresh, torch.full((1, 4), 0.25))
    torch.testing.assert_close(later, torch.tensor([[1 / 3, 0, 1 / 3, 1 / 3]]), atol=1e-3, rtol=0)


def test_the_sink_lets_the_attended_mass_count_the_matches():
    """With a sink beside the cells, the weight the cells get grows with how many match
    the query (softmax over the cells alone would give them all of it, whatever the count)."""
    model = architectures.create("fusion_san", vocab_size=12).eval()
    assert model.sink.shape == (2, model.question_dim)
    query = torch.ones(1, 3)
    masses = []
    for matching in range(1, 5):
        cells = torch.cat([torch.zeros(matching, 3), -10 * torch.ones(4 - matching, 3)])
        keys = torch.cat([torch.zeros(1, 3), cells])[None]  # the sink first, scoring as a match
        _, weights = attend(query, keys, keys, torch.zeros(1, 5))
        masses.append(weights[0, 1:].sum().item())
    torch.testing.assert_close(torch.tensor(masses), torch.tensor([1 / 2, 2 / 3, 3 / 4, 4 / 5]))
