"""Uncertainty over seeds: intervals of means and of differences, and the seeds a
comparison would need.

With two or more seeds on each side, a difference of mean accuracies gets
Welch's 95% confidence interval (``scipy.stats.ttest_ind`` with unequal
variances), and a mean above a constant (a floor) the one-sample t interval.
With one seed on a side there is no spread to estimate: the interval then
comes from the noise floor measured for the data set and recipe
(``benchmarks/noise.py``), the normal interval of a difference of draws with
that standard deviation. Without either there is no interval.

A ratio of two timings (a speed-up) gets its interval from the rounds where
both were timed in the same rounds (``run --rounds``: the t interval of the
per-round log ratios, round i paired with round i), else from the calls (each
median's distribution-free interval by order statistics, the two joined at
their ends), widened by the caller to the noise between processes.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace

from scipy import stats

CONFIDENCE = 0.95
MOST_SEEDS = 100  # seeds_to_decide looks no further


@dataclass(frozen=True)
class Estimate:
    """A difference of means (or a mean above a constant) with its 95% interval; ``low``
    and ``high`` are None when no interval could be formed. ``spread`` is the per-seed
    standard deviation behind it, ``sides`` how many means the difference has (2, or 1
    for a mean against a constant)."""

    value: float
    low: float | None
    high: float | None
    how: str
    spread: float | None = None
    sides: int = 2

    def text(self, scale: float = 100, unit: str = " points") -> str:
        """'+3.0 points [+2.1, +3.9] (Welch, 3 vs 3 seeds)'."""
        interval = (
            f" [{scale * self.low:+.1f}, {scale * self.high:+.1f}]"
            if self.low is not None and self.high is not None
            else ""
        )
        return f"{scale * self.value:+.1f}{unit}{interval} ({self.how})"


def _seeds(count: int) -> str:
    return f"{count} seed{'s' if count != 1 else ''}"


def difference(a: Sequence[float], b: Sequence[float], noise: float | None) -> Estimate:
    """mean(a) - mean(b) with its interval: Welch's over seeds, or from the ``noise``
    floor (a per-seed standard deviation) when a side has one seed."""
    value = float(sum(a) / len(a) - sum(b) / len(b))
    counts = f"{len(a)} vs {len(b)} seeds"
    if min(len(a), len(b)) >= 2:
        test = stats.ttest_ind(a, b, equal_var=False)
        interval = test.confidence_interval(CONFIDENCE)
        spread = math.sqrt((_variance(a) + _variance(b)) / 2)
        if spread == 0:  # identical seeds: the interval is the point
            return Estimate(value, value, value, f"Welch, {counts}", 0.0)
        return Estimate(value, interval.low, interval.high, f"Welch, {counts}", spread)
    if noise is None:
        return Estimate(value, None, None, f"{counts}, no noise floor for this recipe")
    half = stats.norm.ppf(0.5 + CONFIDENCE / 2) * noise * math.sqrt(1 / len(a) + 1 / len(b))
    how = f"noise floor {100 * noise:.2f} points, {counts}"
    return Estimate(value, value - half, value + half, how, noise)


def above(a: Sequence[float], constant: float, noise: float | None) -> Estimate:
    """mean(a) - ``constant`` with its interval: the t interval over seeds, or from the
    ``noise`` floor with one seed."""
    value = float(sum(a) / len(a) - constant)
    if len(a) >= 2:
        spread = math.sqrt(_variance(a))
        if spread == 0:
            return Estimate(value, value, value, f"t, {_seeds(len(a))}", 0.0, sides=1)
        interval = stats.ttest_1samp(a, constant).confidence_interval(CONFIDENCE)
        how = f"t, {_seeds(len(a))}"
        return Estimate(value, interval.low - constant, interval.high - constant, how, spread, 1)
    if noise is None:
        return Estimate(value, None, None, "one seed, no noise floor for this recipe", sides=1)
    half = stats.norm.ppf(0.5 + CONFIDENCE / 2) * noise
    how = f"noise floor {100 * noise:.2f} points, one seed"
    return Estimate(value, value - half, value + half, how, noise, 1)


def _variance(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / (len(values) - 1)


def seeds_to_decide(estimate: Estimate, margin: float) -> int | None:
    """Seeds per side at which the interval, at the estimate's spread, would no longer
    span ``margin``: the observed gap to the margin cleared by the interval's half width
    (None when there is no spread, or more than MOST_SEEDS would be needed)."""
    return count_to_clear(estimate.spread, abs(estimate.value - margin), estimate.sides)


def rounds_to_decide(estimate: Estimate, margin: float) -> int | None:
    """Paired rounds at which a speed-up's interval (ratio_of_rounds: its spread is of
    the per-round log ratios) would no longer span 1 + ``margin``, at that spread."""
    gap = abs(math.log1p(estimate.value) - math.log1p(margin))
    return count_to_clear(estimate.spread, gap, sides=1)


def count_to_clear(spread: float | None, gap: float, sides: int) -> int | None:
    """The fewest draws a side (2 to MOST_SEEDS) whose 95% t interval at ``spread`` is
    narrower than ``gap``; None without a spread or a gap, or beyond MOST_SEEDS."""
    if spread is None or gap == 0:
        return None
    for count in range(2, MOST_SEEDS + 1):
        degrees = sides * (count - 1)
        error = spread * math.sqrt(sides / count)
        if stats.t.ppf(0.5 + CONFIDENCE / 2, degrees) * error < gap:
            return count
    return None


def ratio_of_rounds(numerator: Sequence[float], denominator: Sequence[float]) -> Estimate:
    """numerator / denominator - 1 over rounds paired in order (round i of each timed
    close together): the geometric mean of the per-round ratios and its 95% t interval
    on the log scale."""
    count = min(len(numerator), len(denominator))
    logs = [math.log(n / d) for n, d in zip(numerator[:count], denominator[:count], strict=True)]
    mean, spread, half = mean_interval(logs)
    how = f"{count} rounds, paired"
    if math.isnan(half):
        return Estimate(math.exp(mean) - 1, None, None, how, sides=1)
    low, high = math.exp(mean - half) - 1, math.exp(mean + half) - 1
    return Estimate(math.exp(mean) - 1, low, high, how, spread, sides=1)


def median_interval(
    values: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """The distribution-free interval of the median of ``values`` (order statistics: the
    k-th smallest and largest, k from the binomial); None when too few values."""
    ordered = sorted(values)
    k = int(stats.binom.ppf((1 - confidence) / 2, len(ordered), 0.5))  # P(X < k) < the tail
    if k < 1:
        return None
    return ordered[k - 1], ordered[len(ordered) - k]


def ratio_of_medians(numerator: Sequence[float], denominator: Sequence[float]) -> Estimate:
    """median(numerator) / median(denominator) - 1 from the calls: the interval joins the
    ends of the two medians' 97.5% intervals (at least 95% coverage, by Bonferroni)."""
    value = statistics.median(numerator) / statistics.median(denominator) - 1
    how = f"{len(numerator)} vs {len(denominator)} calls"
    each = 1 - (1 - CONFIDENCE) / 2
    top, bottom = median_interval(numerator, each), median_interval(denominator, each)
    if top is None or bottom is None:
        return Estimate(value, None, None, how)
    return Estimate(value, top[0] / bottom[1] - 1, top[1] / bottom[0] - 1, how)


def widened(estimate: Estimate, noise: float, why: str) -> Estimate:
    """A ratio's ``estimate`` (value = ratio - 1) with its interval widened to at least
    the ratio times and divided by 1 + ``noise``: the spread between timings that ran in
    different processes or minutes apart, which one process's calls do not show."""
    ratio = 1 + estimate.value
    low, high = ratio / (1 + noise) - 1, ratio * (1 + noise) - 1
    if estimate.low is not None and estimate.high is not None:
        low, high = min(low, estimate.low), max(high, estimate.high)
    return replace(estimate, low=low, high=high, how=f"{estimate.how}, {why}")


def mean_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, sample standard deviation, half width of the 95% t interval); NaN spread
    and width for one value."""
    mean = float(sum(values) / len(values))
    if len(values) < 2:
        return mean, math.nan, math.nan
    sd = math.sqrt(_variance(values))
    return (
        mean,
        sd,
        float(stats.t.ppf(0.5 + CONFIDENCE / 2, len(values) - 1) * sd / math.sqrt(len(values))),
    )
