"""Tests for workbench.analysis.stats: each pins a number against an independent reference."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from workbench.analysis import stats
from workbench.analysis.multiplicity import adjust_pvalues
from workbench.analysis.stats import (
    bootstrap_mean_ci,
    cohens_dz,
    cohens_h,
    mcnemar_exact,
    paired_bootstrap_ci,
    paired_permutation_test,
)

# --- McNemar -------------------------------------------------------------------------------


def test_mcnemar_exact_matches_hand_binomial() -> None:
    # b=10, c=2: P(X <= 2 | Bin(12, 1/2)) = (1 + 12 + 66) / 4096; two-sided doubles it.
    expected = 2 * (1 + 12 + 66) / 4096
    assert mcnemar_exact(10, 2) == pytest.approx(expected, rel=1e-12)
    assert mcnemar_exact(10, 2) == pytest.approx(0.0386, abs=1e-4)
    assert mcnemar_exact(2, 10) == mcnemar_exact(10, 2)
    assert mcnemar_exact(10, 2) == pytest.approx(sps.binomtest(2, n=12, p=0.5).pvalue)


@pytest.mark.parametrize("n", [1, 2, 7, 40, 301, 5000])
def test_mcnemar_exact_equals_scipy_binomtest_over_a_grid(n: int) -> None:
    for b in sorted({0, 1, n // 3, n // 2, n - 1, n}):
        expected = sps.binomtest(min(b, n - b), n=n, p=0.5).pvalue
        assert mcnemar_exact(b, n - b) == pytest.approx(expected, rel=1e-9, abs=1e-300), (b, n)


def test_a_binary_verdict_does_not_import_scipy_stats() -> None:
    """scipy.stats costs ~1 s and ~50 MB to import; a pass/fail verdict must not pay it."""
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_compare import cases_frame\n"
        "from workbench.analysis.compare import compare\n"
        "a = [1.0] * 30 + [0.0] * 30\n"
        "b = [1.0] * 50 + [0.0] * 10\n"
        "cmp = compare(cases_frame({'a': a, 'b': b}), 'a', 'b', n_resamples=200)\n"
        "assert cmp.results[0].p_value < 0.01, cmp.results[0]\n"
        "print('scipy.stats' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_mcnemar_edge_cases() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(3, 3) == 1.0
    # All 6 discordant pairs one way: 2 * (1/2)^6
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


# --- permutation test ----------------------------------------------------------------------


def test_exact_permutation_equals_mcnemar_on_pass_fail() -> None:
    # 9 fixes, 3 regressions, 8 ties: sign flips of +/-1 are exactly the binomial test.
    a = np.array([0] * 9 + [1] * 3 + [1] * 5 + [0] * 3)
    b = np.array([1] * 9 + [0] * 3 + [1] * 5 + [0] * 3)
    assert paired_permutation_test(a, b) == pytest.approx(mcnemar_exact(3, 9), rel=1e-12)


def test_permutation_exact_small_case() -> None:
    # 4 positive differences: only the all-plus and all-minus patterns reach |sum|: 2/16.
    assert paired_permutation_test([0, 0, 0, 0], [0.3, 0.2, 0.3, 0.4]) == pytest.approx(2 / 16)
    assert paired_permutation_test([1, 2, 3], [1, 2, 3]) == 1.0


def test_permutation_test_level_and_power() -> None:
    rng = np.random.default_rng(42)
    null_p = []
    for _ in range(200):
        a = rng.normal(size=40)
        null_p.append(paired_permutation_test(a, a + rng.normal(size=40), n_resamples=999))
    rejection = np.mean(np.array(null_p) < 0.05)
    assert 0.01 <= rejection <= 0.10  # nominal 5%: binomial sd over 200 runs is ~1.5%
    a = rng.normal(size=60)
    assert paired_permutation_test(a, a + 0.8 + rng.normal(size=60), n_resamples=999) < 0.01


# --- bootstrap -----------------------------------------------------------------------------


def test_bootstrap_ci_coverage_continuous() -> None:
    true_diff, covered = 0.3, 0
    for sim in range(200):
        rng = np.random.default_rng(sim)
        a = rng.normal(0.5, 1.0, size=60)
        b = a + true_diff + rng.normal(0, 1.0, size=60)
        ci = paired_bootstrap_ci(a, b, n_resamples=2000, seed=sim)
        covered += ci.low <= true_diff <= ci.high
    assert 0.90 <= covered / 200 <= 0.99


def test_bootstrap_ci_coverage_pass_fail() -> None:
    # Correlated pass/fail pairs; P(a=1) = 0.6, P(b=1) = 0.7, so the true diff is 0.1.
    joint = {(1, 1): 0.5, (1, 0): 0.1, (0, 1): 0.2, (0, 0): 0.2}
    cells, probs = list(joint), list(joint.values())
    covered = 0
    for sim in range(200):
        rng = np.random.default_rng(1000 + sim)
        picks = np.array(cells)[rng.choice(4, size=150, p=probs)]
        ci = paired_bootstrap_ci(picks[:, 0], picks[:, 1], n_resamples=2000, seed=sim)
        covered += ci.low <= 0.1 <= ci.high
    assert 0.90 <= covered / 200 <= 0.99


def test_count_and_gather_bootstrap_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    a, b = rng.integers(0, 2, 400), rng.integers(0, 2, 400)
    fast = paired_bootstrap_ci(a, b, n_resamples=20_000)
    monkeypatch.setattr(stats, "_MAX_DISTINCT_FOR_COUNTS", 0)  # force index gathering
    slow = paired_bootstrap_ci(a, b, n_resamples=20_000)
    assert fast.estimate == slow.estimate
    assert fast.low == pytest.approx(slow.low, abs=0.006)
    assert fast.high == pytest.approx(slow.high, abs=0.006)


def _repeated(
    rng: np.random.Generator, n_cases: int, repeats: int, effect: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Case-level effects make repeats of one case correlated: the honest unit is the case.
    case_effect = np.repeat(rng.normal(effect, 1.0, size=n_cases), repeats)
    diffs = case_effect + rng.normal(0, 0.3, size=n_cases * repeats)
    clusters = np.repeat([f"case-{i}" for i in range(n_cases)], repeats)
    return np.zeros_like(diffs), diffs, clusters


def test_cluster_ci_wider_than_naive_with_correlated_repeats() -> None:
    a, b, clusters = _repeated(np.random.default_rng(3), 40, 5, effect=0.2)
    naive = paired_bootstrap_ci(a, b, n_resamples=4000)
    clustered = paired_bootstrap_ci(a, b, clusters=clusters, n_resamples=4000)
    assert clustered.n_units == 40 and naive.n_units == 200
    assert clustered.estimate == pytest.approx(b.mean())  # equal repeats: same estimate
    assert (clustered.high - clustered.low) > 1.6 * (naive.high - naive.low)


def test_cluster_ci_keeps_coverage_where_naive_loses_it() -> None:
    naive_hits = cluster_hits = 0
    for sim in range(100):
        a, b, clusters = _repeated(np.random.default_rng(500 + sim), 30, 5, effect=0.2)
        naive = paired_bootstrap_ci(a, b, n_resamples=1000, seed=sim)
        clustered = paired_bootstrap_ci(a, b, clusters=clusters, n_resamples=1000, seed=sim)
        naive_hits += naive.low <= 0.2 <= naive.high
        cluster_hits += clustered.low <= 0.2 <= clustered.high
    assert naive_hits < 80  # treating calls as independent: badly too narrow
    assert cluster_hits >= 85


def test_cluster_means_are_the_units() -> None:
    # Unequal repeats: the estimate is the mean of case means, not of calls.
    ci = bootstrap_mean_ci([1.0, 1.0, 1.0, 0.0], clusters=["x", "x", "x", "y"], n_resamples=500)
    assert ci.estimate == pytest.approx(0.5)
    assert ci.n_units == 2


def test_bootstrap_input_checks_and_determinism() -> None:
    assert paired_bootstrap_ci([0.1, 0.5, 0.2], [0.4, 0.5, 0.9], seed=3) == paired_bootstrap_ci(
        [0.1, 0.5, 0.2], [0.4, 0.5, 0.9], seed=3
    )
    one = paired_bootstrap_ci([0.0], [1.0])
    assert one.estimate == 1.0 and math.isnan(one.low) and math.isnan(one.high)
    with pytest.raises(ValueError, match="NaN"):
        paired_bootstrap_ci([0.0, np.nan], [1.0, 1.0])
    with pytest.raises(ValueError, match="same length"):
        paired_bootstrap_ci([0.0, 1.0], [1.0])
    with pytest.raises(ValueError, match="clusters"):
        paired_bootstrap_ci([0.0, 1.0], [1.0, 1.0], clusters=["a"])
    with pytest.raises(ValueError, match="zero values"):
        bootstrap_mean_ci([])


# --- multiple comparisons ------------------------------------------------------------------


def test_holm_known_values() -> None:
    # Sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max 0.06.
    adjusted = adjust_pvalues([0.01, 0.04, 0.03, 0.005], "holm")
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])


def test_holm_is_capped_and_keeps_nan() -> None:
    adjusted = adjust_pvalues([0.5, np.nan, 0.3], "holm")
    np.testing.assert_allclose(adjusted[[0, 2]], [0.6, 0.6])
    assert np.isnan(adjusted[1])
    np.testing.assert_allclose(adjust_pvalues([0.9, 0.8], "holm"), [1.0, 1.0])


def test_bh_matches_hand_values_and_scipy() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # Sorted i/m scaling: 0.005*4/1, 0.01*4/2, 0.03*4/3, 0.04*4/4, then a running minimum
    # from the largest: [0.02, 0.02, 0.04, 0.04].
    np.testing.assert_allclose(adjust_pvalues(p, "bh"), [0.02, 0.04, 0.04, 0.02])
    rng = np.random.default_rng(0)
    many = rng.uniform(size=30) ** 3
    np.testing.assert_allclose(adjust_pvalues(many, "bh"), sps.false_discovery_control(many))


def test_adjust_rejects_bad_input() -> None:
    np.testing.assert_allclose(adjust_pvalues([0.2, 0.01], "none"), [0.2, 0.01])
    with pytest.raises(ValueError, match="unknown adjustment"):
        adjust_pvalues([0.1], "bonferroni")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        adjust_pvalues([1.5])


# --- effect sizes --------------------------------------------------------------------------


def test_effect_sizes() -> None:
    # 2 asin(sqrt(0.7)) - 2 asin(sqrt(0.5)) = 2 * 0.9911566 - 2 * 0.7853982 = 0.4115168
    assert cohens_h(0.5, 0.7) == pytest.approx(0.4115168, abs=2e-7)
    assert cohens_h(0.7, 0.5) == pytest.approx(-cohens_h(0.5, 0.7))
    d = [0.1, 0.3, 0.2, 0.4]  # mean 0.25, sd 0.129099
    assert cohens_dz(d) == pytest.approx(0.25 / 0.1290994, rel=1e-6)
    assert math.isnan(cohens_dz([0.2, 0.2, 0.2]))
