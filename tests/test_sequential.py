"""Group-sequential designs: boundaries, and the false-positive rate under repeated looks."""

import dataclasses

import numpy as np
import pytest
from scipy import stats as sps

from workbench.analysis.group_sequential import (
    BENEFIT,
    FUTILITY,
    HARM,
    SequentialDesign,
    _boundaries,
    obf_boundaries,
    obf_spending,
)

N_SIMULATIONS = 2_000
N_CASES = 400  # per simulated experiment: 5 looks at 80, 160, ... 400 complete cases


# --- boundaries -----------------------------------------------------------------------------


def test_one_look_is_the_fixed_sample_test():
    assert obf_boundaries([1.0], alpha=0.05)[0] == pytest.approx(1.959964, abs=1e-6)
    assert obf_boundaries([1.0], alpha=0.01)[0] == pytest.approx(2.575829, abs=1e-6)


def test_obrien_fleming_boundaries_decrease_and_match_published_values():
    five = obf_boundaries([0.2, 0.4, 0.6, 0.8, 1.0], alpha=0.05)
    # Lan-DeMets O'Brien-Fleming type, 5 equally spaced looks, two-sided 0.05 (gsDesign, ldbounds).
    assert five == pytest.approx([4.877, 3.357, 2.680, 2.290, 2.031], abs=2e-3)
    for fractions in ([0.2, 0.4, 0.6, 0.8, 1.0], [0.1, 0.15, 0.5, 1.0], np.arange(1, 11) / 10):
        assert np.all(np.diff(obf_boundaries(fractions)) < 0)


@pytest.mark.parametrize("fractions", [[0.2, 0.4, 0.6, 0.8, 1.0], [0.25, 0.3, 0.7, 1.0]])
def test_cumulative_alpha_spent_is_alpha_at_the_last_look(fractions):
    """Checked against the joint normal of the look statistics, integrated by scipy (not by our recursion)."""
    t = np.array(fractions)
    c = obf_boundaries(t, alpha=0.05)
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))  # corr(Z_i, Z_j) = sqrt(t_i / t_j)
    for k in range(1, len(t) + 1):
        joint = sps.multivariate_normal(mean=np.zeros(k), cov=cov[:k, :k])
        never_crossed = joint.cdf(c[:k], lower_limit=-c[:k], rng=np.random.default_rng(0))
        expected = 0.05 if k == len(t) else obf_spending(t[:k], 0.05)[-1]
        assert 1 - never_crossed == pytest.approx(expected, abs=1e-3 if k == len(t) else 2e-4)


def test_boundaries_are_deterministic():
    fractions = (0.15, 0.4, 0.55, 1.0)
    first = _boundaries.__wrapped__(fractions, 0.05)
    assert _boundaries.__wrapped__(fractions, 0.05) == first


# --- simulation -----------------------------------------------------------------------------


def _paired_binary(rng, p_baseline, p_candidate):
    """N_SIMULATIONS experiments of N_CASES cases each: candidate minus baseline, pass/fail outcomes."""
    baseline = rng.random((N_SIMULATIONS, N_CASES)) < p_baseline
    candidate = rng.random((N_SIMULATIONS, N_CASES)) < p_candidate
    return candidate.astype(float) - baseline.astype(float)


def test_aa_false_positive_rate_stays_at_alpha_under_repeated_looks():
    design = SequentialDesign.plan(N_CASES, alpha=0.05, looks=5, min_cases=None, min_detectable_diff=0.10)
    differences = _paired_binary(np.random.default_rng(2024), 0.7, 0.7)
    replay = design.replay(differences)
    # The same data, tested at 1.96 at every look: what the boundaries protect against.
    naive = dataclasses.replace(design, boundaries=(1.959964,) * design.looks, min_detectable_diff=None)
    naive_rate = naive.replay(differences).false_positive_rate
    print(
        f"\nA/A, {N_SIMULATIONS} experiments x {N_CASES} cases, looks at {design.schedule}: "
        f"false-positive rate {replay.false_positive_rate:.4f} (naive 1.96 at every look: {naive_rate:.4f}); "
        f"stopped for futility {replay.rate(FUTILITY):.1%}"
    )
    assert replay.false_positive_rate <= 0.05 + 0.01
    assert naive_rate > 0.05 + 0.01  # the simulation is sensitive enough to catch an inflated rate


def test_a_true_ten_point_difference_stops_before_the_full_sample_in_most_runs():
    design = SequentialDesign.plan(N_CASES, alpha=0.05, looks=5, min_cases=None, min_detectable_diff=0.10)
    replay = design.replay(_paired_binary(np.random.default_rng(7), 0.6, 0.7))
    print(
        f"\n+10 pts (60% -> 70%), {N_SIMULATIONS} experiments x {N_CASES} cases: "
        f"stopped early {replay.early_stop_rate:.1%}, found benefit {replay.rate(BENEFIT):.1%}, "
        f"harm {replay.rate(HARM):.1%}, futility {replay.rate(FUTILITY):.1%}, "
        f"calls saved {replay.saved_fraction:.1%} on average"
    )
    assert replay.early_stop_rate > 0.5
    assert replay.rate(BENEFIT) > 0.75
    assert replay.rate(HARM) == 0


def test_a_look_decides_harm_and_futility():
    design = SequentialDesign.plan(100, alpha=0.05, looks=4, min_cases=None, min_detectable_diff=0.2)
    worse = np.array([-1.0] * 15 + [0.0] * 10)
    assert design.assess(0, worse).decision == HARM
    flat = np.array([1.0, -1.0] * 2 + [0.0] * 71)  # 75 cases (the third look), mean 0, few flips
    assert design.assess(0, flat[:25]).decision == 0  # the first look's repeated CI is still too wide
    assessed = design.assess(2, flat)
    assert assessed.decision == FUTILITY and -0.2 < assessed.ci_low < assessed.ci_high < 0.2
    assert design.assess(3, np.resize(flat, 100)).decision == 0  # never futility at the last look
