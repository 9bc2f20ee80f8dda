"""What a hostile user can do to a run: bad suites, broken files, concurrent runs, faults.

Each case ends in one clear line and exit code 2 (or a warning and a repair), never a
traceback, and a run never loses a row it finished.
"""

from __future__ import annotations

import pytest

from benchmarks.errors import UserError
from benchmarks.suites import parse_suite

ONE_NET = 'architectures = ["resnet20"]\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (ONE_NET + 'channels_last = "false"', r'channels_last = "false": expected true or false'),
        (ONE_NET + 'compile = "no"', r'compile = "no": expected true or false'),
        (ONE_NET + "batch_sizes = [true]", r"batch_sizes = \[true\]: expected a list of integers"),
        (ONE_NET + "train_batch_size = 2.5", r"train_batch_size = 2.5: expected an integer"),
        (ONE_NET + 'seeds = ["a"]', r'seeds = \["a"\]: expected a list of integers'),
        (ONE_NET + 'measure = "flops"', r'measure = "flops": expected a list of strings'),
        (ONE_NET + "dtype = 16", r"dtype = 16: expected a string"),
        (ONE_NET + "timing = 3", r"timing = 3: expected a table"),
        (ONE_NET + "[training]\nepochs = 1.5", r"training.epochs = 1.5: expected an integer"),
        (ONE_NET + "[training]\nlr = true", r"training.lr = true: expected a number"),
        (ONE_NET + '[timing]\nwarmup = "5"', r'timing.warmup = "5": expected an integer'),
        ('architectures = "resnet20"', r'architectures = "resnet20": expected a list'),
        (
            'architectures = [{arch = "resnet20", compile = "yes"}]',
            r'resnet20: compile = "yes": expected true or false',
        ),
        (
            'architectures = [{arch = "resnet20", training = {epochs = "2"}}]',
            r'resnet20: training.epochs = "2": expected an integer',
        ),
        (
            'architectures = [{arch = "resnet20", config = {depth = "abc"}}]',
            r'resnet20: config depth = "abc": expected an integer \(its default is 20\)',
        ),
        (
            'architectures = [{arch = "resnet20", config = {depth = -4}}]',
            r"resnet20 with config depth = -4: depth must be 6n\+2",
        ),
        (
            'architectures = [{arch = "resnet20", config = {depth = 20.0}}]',
            r"resnet20: config depth = 20.0: expected an integer",
        ),
    ],
)
def test_a_suite_of_wrong_types_is_refused_naming_key_value_and_type(text, message):
    with pytest.raises(UserError, match=message):
        parse_suite("bad", text, source="bad.toml")


def test_a_float_key_takes_an_integer():
    suite = parse_suite("ok", ONE_NET + "[training]\nlr = 1\n[timing]\nmin_time_s = 0", source="x")
    assert suite.training.lr == 1 and suite.timing.min_time_s == 0
