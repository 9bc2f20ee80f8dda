"""Suites as data: shipped files, user files, validation."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import architectures
from benchmarks import noise, runner
from benchmarks.errors import UserError
from benchmarks.suites import Entry, load_suite, parse_suite, shipped_suites


@pytest.mark.parametrize("name", shipped_suites())
def test_shipped_suites_are_valid(name):
    suite = load_suite(name)
    assert suite.entries and suite.batch_sizes


def test_quick_covers_every_family_and_all_covers_every_architecture():
    families = {architectures.spec(e.arch).family for e in load_suite("quick").entries}
    assert {"plain", "resnet", "densenet", "grouped", "separable"} <= families
    assert [e.arch for e in load_suite("all").entries] == architectures.list_architectures()


def test_user_suite_file_with_patterns_and_configs(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(
        'architectures = ["resnet2*", {arch = "resnet20_grouped", config = {groups = 8}}]\n'
        "batch_sizes = [1, 8]\ntrain_batch_size = 0\n[timing]\nmin_samples = 3\n"
    )
    suite = load_suite(str(path))
    assert suite.name == "mine" and suite.batch_sizes == (1, 8) and suite.train_batch_size == 0
    assert suite.timing.min_samples == 3
    assert Entry("resnet20_grouped", {"groups": 8}) in suite.entries
    assert Entry("resnet20_dw") in suite.entries


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('architectures = ["resnet20"', "not valid TOML"),
        ('architectures = ["resnet20"]\nbatchsizes = [1]', "unknown key \\['batchsizes'\\]"),
        ("batch_sizes = [1]", "no 'architectures'"),
        ('architectures = ["resnet20"]\nbatch_sizes = [0]', "batch sizes must be positive"),
        ('architectures = ["resnet20"]\ndtype = "fp64"', "dtype must be one of"),
        ('architectures = ["nosuch*"]', "no architecture matches"),
        ("architectures = [3]", "must be a name or"),
        ('architectures = ["resnet20"]\n[timing]\nwarmpu = 1', "warmpu"),
        ('architectures = ["resnet20"]\nrounds = 0', "rounds must be a whole number >= 1"),
        ('architectures = [{arch = "resnet20", rounds = 0}]', "rounds must be a whole number >= 1"),
    ],
)
def test_malformed_suites_are_one_clear_error(text, message):
    with pytest.raises(UserError, match=message):
        parse_suite("bad", text, source="bad.toml")


def test_unknown_names_and_config_keys_fail_before_any_work():
    with pytest.raises(UserError, match=r"bad.toml: unknown architecture 'resnet21'.*resnet20"):
        parse_suite("bad", 'architectures = ["resnet21"]', source="bad.toml")
    with pytest.raises(UserError, match="valid keys"):
        parse_suite(
            "bad", 'architectures = [{arch = "resnet20", config = {grups = 2}}]', source="x"
        )


def test_unknown_suite_names_the_shipped_ones():
    with pytest.raises(UserError, match="did you mean quick"):
        load_suite("quik")


def test_the_noise_suite_trains_with_the_quick_suites_recipes():
    """A floor applies to its recipe only: the noise suite must train as quick does."""
    quick, floors = load_suite("quick"), load_suite("noise")
    recipes = {
        (e.arch, quick.dataset_for(e), quick.train_batch_size_for(e)): quick.training_for(e)
        for e in quick.entries
    }
    for entry in floors.entries:
        key = (entry.arch, floors.dataset_for(entry), floors.train_batch_size_for(entry))
        assert floors.training_for(entry) == recipes[key], entry.arch
    assert len(floors.seeds) >= 5


def test_an_entry_may_train_with_seeds_of_its_own(tmp_path):
    path = tmp_path / "seeds.toml"
    path.write_text(
        'architectures = ["resnet20", {arch = "plain20", seeds = [0, 1, 2]}]\n'
        'dataset = "mnist5k"\nbatch_sizes = [1]\nseeds = [7]\n'
    )
    suite = load_suite(str(path))
    jobs = runner.expand_jobs(suite, torch.device("cpu"), threads=1)
    trained = sorted((job.identity.arch, job.identity.seed) for job in jobs if job.trains)
    assert trained == [("plain20", 0), ("plain20", 1), ("plain20", 2), ("resnet20", 7)]
    with pytest.raises(UserError, match="seeds must be distinct"):
        parse_suite("bad", 'architectures = [{arch = "resnet20", seeds = [1, 1]}]', source="x")


def test_an_entry_may_be_timed_in_rounds_of_its_own():
    text = 'architectures = ["plain20", {arch = "resnet20", rounds = 5}]\nrounds = 2'
    suite = parse_suite("mine", text, source="x")
    assert [suite.rounds_for(entry) for entry in suite.entries] == [2, 5]
    assert suite.most_rounds == 5
    jobs = runner.expand_jobs(suite, torch.device("cpu"), threads=1)
    assert {(job.identity.arch, job.rounds) for job in jobs} == {("plain20", 2), ("resnet20", 5)}


def test_the_claims_suite_trains_cifar_with_a_measured_noise_floors_recipe():
    """Its one-seed CIFAR-10 comparisons get their intervals from that floor."""
    suite = load_suite("claims")
    floored = {(floor.dataset, floor.recipe) for floor in noise.floors()}
    for entry in suite.entries:
        if suite.dataset_for(entry) != "cifar10":
            continue
        training = suite.training_for(entry)
        assert training.train_subset is not None
        held = round(training.train_subset * training.val_fraction)
        row = {
            **dataclasses.asdict(training),
            "batch_size": suite.train_batch_size_for(entry),
            "train_size": training.train_subset - held,
            "val_size": held,
        }
        assert ("cifar10", noise.recipe(row)) in floored, entry.arch
