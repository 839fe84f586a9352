"""Tests for workbench.analysis.power: sample sizes pinned by hand and checked against the exact test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from workbench.analysis.power import (
    min_detectable_diff,
    paired_mean_min_detectable_diff,
    paired_mean_sample_size,
    sample_size,
)

# --- pass rates (McNemar) ------------------------------------------------------------------


def test_sample_size_textbook_formula() -> None:
    # Connor (1987), Biometrics 43:207-211: n = (z_{a/2} sqrt(pd) + z_b sqrt(pd - d^2))^2 / d^2.
    # d = 0.10, pd = 0.20, alpha = 0.05 (z = 1.959964), power 0.8 (z = 0.841621), by hand:
    #   1.959964 * sqrt(0.20) = 0.876523;  0.841621 * sqrt(0.19) = 0.366853
    #   (0.876523 + 0.366853)^2 / 0.01 = 1.545984 / 0.01 = 154.6  ->  155 cases.
    assert sample_size(0.8, 0.10, discordance=0.20) == 155
    assert sample_size(0.8, -0.10, discordance=0.20) == 155  # direction does not matter
    # Same hand recipe with power 0.9 (z = 1.281552): (0.876523 + 0.558618)^2 / 0.01 = 205.96.
    assert sample_size(0.8, 0.10, discordance=0.20, power=0.9) == 206


def _exact_mcnemar_power(n: int, p10: float, p01: float, alpha: float = 0.05) -> float:
    # Power of the exact test: D discordant ~ Bin(n, pd); fixes | D ~ Bin(D, p01 / pd).
    pd_, power = p10 + p01, 0.0
    for d in range(1, n + 1):
        x = np.arange(d + 1)
        pvals = np.minimum(1.0, 2 * sps.binom.cdf(np.minimum(x, d - x), d, 0.5))
        power += sps.binom.pmf(d, n, pd_) * sps.binom.pmf(x, d, p01 / pd_)[pvals < alpha].sum()
    return power


def test_sample_size_gives_the_promised_power_for_the_exact_test() -> None:
    n = sample_size(0.8, 0.10, discordance=0.20)
    # The exact test is conservative, so its power lands a little under the nominal 0.8.
    assert 0.74 <= _exact_mcnemar_power(n, p10=0.05, p01=0.15) <= 0.84
    assert _exact_mcnemar_power(n // 2, p10=0.05, p01=0.15) < 0.6


def test_sample_size_default_discordance_assumes_independence() -> None:
    # p1 = 0.7, p2 = 0.8: pd = 0.7 * 0.2 + 0.8 * 0.3 = 0.38
    assert sample_size(0.7, 0.1) == sample_size(0.7, 0.1, discordance=0.38)
    assert sample_size(0.7, 0.1, null_discordance=0.1) == sample_size(0.7, 0.1, discordance=0.2)
    with pytest.raises(ValueError, match="discordance"):
        sample_size(0.7, 0.1, discordance=0.05)  # fewer discordant pairs than the difference
    with pytest.raises(ValueError):
        sample_size(0.95, 0.1)  # 105% pass rate
    with pytest.raises(ValueError):
        sample_size(0.7, 0.1, discordance=0.2, null_discordance=0.1)


@pytest.mark.parametrize("kwargs", [{}, {"discordance": 0.25}, {"null_discordance": 0.08}])
def test_min_detectable_diff_inverts_sample_size(kwargs: dict) -> None:
    for n in (50, 150, 600):
        mdd = min_detectable_diff(n, 0.7, **kwargs)
        assert 0 < mdd < 0.3
        assert sample_size(0.7, mdd, **kwargs) in (n, n + 1)
    assert min_detectable_diff(600, 0.7, **kwargs) < min_detectable_diff(150, 0.7, **kwargs)


def test_min_detectable_diff_not_reachable() -> None:
    assert min_detectable_diff(3, 0.7, discordance=0.05) == math.inf
    assert min_detectable_diff(100, 1.0) == math.inf  # nothing left to improve
    assert min_detectable_diff(100, 0.7, discordance=0.0) == math.inf  # no discordant pairs


def test_min_detectable_diff_stays_below_100_percent() -> None:
    # A 95% baseline leaves 5 points. The old search went up to the discordance (0.30) and
    # answered 0.15, a 110% pass rate. 5 points with pd = 0.30 need
    # (1.959964 sqrt(0.30) + 0.841621 sqrt(0.2975))^2 / 0.0025 = 939.6 cases, not 100.
    assert sample_size(0.95, 0.05, discordance=0.30) == 940
    assert min_detectable_diff(100, 0.95, discordance=0.30) == math.inf
    assert min_detectable_diff(939, 0.95, discordance=0.30) == math.inf
    assert min_detectable_diff(940, 0.95, discordance=0.30) == pytest.approx(0.05, abs=1e-4)
    assert min_detectable_diff(100, 0.95, null_discordance=0.30) == math.inf


@pytest.mark.parametrize("kwargs", [{}, {"discordance": 0.3}, {"discordance": 0.02}, {"null_discordance": 0.1}])
@pytest.mark.parametrize("baseline", [0.5, 0.8, 0.9, 0.95, 0.99])
def test_min_detectable_diff_is_a_possible_improvement(baseline: float, kwargs: dict) -> None:
    for n in (20, 100, 1000, 10_000):
        mdd = min_detectable_diff(n, baseline, **kwargs)
        if mdd == math.inf:
            continue
        assert 0 < mdd <= 1 - baseline + 1e-12
        assert sample_size(baseline, min(mdd, 1 - baseline), **kwargs) in (n, n + 1)


# --- mean differences (normal approximation) -----------------------------------------------


def test_paired_mean_power() -> None:
    # ((1.959964 + 0.841621) * 0.2 / 0.05)^2 = 125.6 -> 126
    assert paired_mean_sample_size(0.2, 0.05) == 126
    assert paired_mean_min_detectable_diff(126, 0.2) == pytest.approx(2.801585 * 0.2 / math.sqrt(126), rel=1e-5)
