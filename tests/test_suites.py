"""Suites as data: shipped files, user files, validation."""

from __future__ import annotations

import pytest

import architectures
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
