"""Training the fusion nets on Sort-of-CLEVR, and the no-fusion floors."""

from __future__ import annotations

import pytest
import torch

import architectures
from benchmarks.data import sort_of_clevr as soc
from benchmarks.schema import Status
from benchmarks.tasks import metric_columns
from benchmarks.tasks.vqa import VISUAL_QA, colour_blind_answers, floors, train
from benchmarks.train import TrainConfig

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data():
    return soc.generate(size=1200, test_size=200, seed=0)


def majority_baseline(data) -> float:
    """Test accuracy of answering each subtype with its most common training answer."""
    train, test = data.train, data.test
    hits = []
    for kind in range(2):
        for subtype in range(3):
            group = (train.questions[..., 1] == kind) & (train.questions[..., 2] == subtype)
            majority = torch.bincount(train.questions[..., 3][group]).argmax()
            test_group = (test.questions[..., 1] == kind) & (test.questions[..., 2] == subtype)
            hits.append(test.questions[..., 3][test_group] == majority)
    return torch.cat(hits).float().mean().item()


def test_colour_blind_answers_read_the_whole_image(data):
    answers = colour_blind_answers(data)
    circles = data.scenes[0, :, 2].sum().item()
    kind, subtype = data.questions[0, :, 1], data.questions[0, :, 2]
    shape = soc.ANSWERS.index("circle" if circles > 3 else "square")
    assert (answers[0][(kind == 0) & (subtype == 0)] == shape).all()
    assert (answers[0][(kind == 0) & (subtype > 0)] == -1).all()  # yes/no: none
    count = soc.ANSWERS.index(str(max(circles, 6 - circles)))
    assert (answers[0][(kind == 1) & (subtype == 2)] == count).all()


def test_floors_are_those_of_a_net_that_does_not_fuse(data):
    result = floors(data)
    assert set(result) >= {"floor_rel", "floor_nonrel", "floor_closest", "floor_count"}
    assert 0.4 < result["floor_horizontal"] < 0.6  # yes/no: about half
    assert result["floor_count"] > 0.6  # the count prior of the majority shape is strong
    assert result["floor_rel"] > majority_baseline(data)


def test_a_short_run_beats_the_majority_answer(data):
    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = architectures.create("fusion_concat", vocab_size=len(soc.VOCAB))
    config = TrainConfig(epochs=8, optimizer="adamw", lr=3e-3, weight_decay=1e-4, warmup=0.1)
    result = train(model, data, config, batch_size=16, device=CPU)
    assert result.status is Status.OK
    assert result.test_acc > majority_baseline(data) + 0.03, result
    columns = metric_columns(VISUAL_QA, result.final)
    assert set(columns) == {"test_acc_rel", "test_acc_nonrel", "floor_rel", "floor_nonrel"}
    assert {"acc_closest", "acc_count", "floor_closest"} <= set(result.final)


def test_a_curriculum_trains_its_first_epochs_on_non_relational_questions():
    data = soc.generate(size=264, test_size=200, seed=0)
    model = architectures.create("fusion_concat", vocab_size=len(soc.VOCAB))
    asked: list[tuple[int, bool]] = []  # (epoch, relational questions asked) per training step
    answer, epochs = model.answer, []

    relational_words = torch.tensor([soc.VOCAB.index(w) for w in ("closest", "furthest", "many")])

    def spy(features, tokens):
        if model.training:
            asked.append((len(epochs) + 1, bool(torch.isin(tokens, relational_words).any())))
        return answer(features, tokens)

    model.answer = spy
    config = TrainConfig(epochs=3, optimizer="adamw", lr=1e-3, curriculum_epochs=2)
    train(model, data, config, batch_size=8, device=CPU, on_epoch=epochs.append)
    by_epoch = {epoch: [rel for e, rel in asked if e == epoch] for epoch in (1, 2, 3)}
    assert by_epoch[1] and by_epoch[2] and by_epoch[3]
    assert not any(by_epoch[1]) and not any(by_epoch[2])
    assert all(by_epoch[3])


def test_a_curriculum_is_shorter_than_the_budget():
    with pytest.raises(ValueError, match="curriculum_epochs"):
        TrainConfig(epochs=2, curriculum_epochs=2)


def test_the_timed_step_asks_in_the_question_form_of_the_model():
    from benchmarks.tasks.vqa import question_batch

    assert question_batch(2).shape == (2, 20, soc.QUESTION_LENGTH)
    bits = question_batch(2, vocab_size=len(soc.BIT_WORDS))
    assert bits.shape == (2, 20, 3) and int(bits.max()) < len(soc.BIT_WORDS)
