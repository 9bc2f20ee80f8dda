"""The thread-levels check: batch-1 timings on several threads and on one, in alternating rounds."""

from __future__ import annotations

from benchmarks import thread_levels


def test_rounds_alternate_the_thread_counts_and_record_the_process_counters():
    row = thread_levels.measure("resnet20", threads=2, rounds=2, min_time_s=0.02)
    assert [(t["round"], t["threads"]) for t in row["timings"]] == [(1, 2), (1, 1), (2, 1), (2, 2)]
    for timing in row["timings"]:
        assert timing["median_ms"] > 0
        assert timing["voluntary_switches"] >= 0 and timing["minor_faults"] >= 0
    assert list(row["summary"]) == ["2 threads", "1 threads"]
    levels = row["summary"]["2 threads"]
    assert levels["fastest_ms"] <= levels["median_ms"] <= levels["slowest_ms"]


def test_a_round_that_ran_slow_sets_the_spread_of_its_thread_count():
    timings = [
        {"threads": 2, "median_ms": 5.0},
        {"threads": 2, "median_ms": 13.0},
        {"threads": 1, "median_ms": 6.0},
        {"threads": 1, "median_ms": 6.0},
    ]
    levels = thread_levels.summary(timings)
    assert levels["2 threads"]["slowest_over_fastest"] == 13.0 / 5.0
    assert levels["1 threads"]["slowest_over_fastest"] == 1.0
