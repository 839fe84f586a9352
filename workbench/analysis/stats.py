"""Paired statistics for A/B comparisons of prompt variants (numpy/scipy only).

Everything here works on plain arrays, one value per *paired unit*: the same case scored
under the baseline (``a``) and the candidate (``b``). Differences are always ``b - a``, so a
positive number means the candidate scored higher.

Choices made here, so that results are honest and reproducible:

- Confidence intervals: percentile bootstrap of the mean difference, seeded. When cases were
  repeated, pass ``clusters`` (the case ids): repeats are averaged within a case and the case
  is the resampling unit, because repeats of one case are not independent evidence.
- Pass/fail scores, one call per case: exact McNemar test (binomial test on the discordant
  pairs). Anything else (continuous scores, or per-case means of repeated calls): a two-sided
  paired sign-flip permutation test of the mean difference, exact when the number of
  non-zero differences is small. It tests the mean, the quantity the CI is about (a
  Wilcoxon test would test a location shift of the median instead).
- The interval of one pass rate (a chart's error bar): Wilson score interval, which stays
  within [0, 1] and is not zero-width at 0% or 100% (the Wald ±1.96·SE interval is both).
- Effect sizes: Cohen's h for proportions, Cohen's dz (mean / SD of the differences) for
  continuous scores.

Adjusting p-values across scorers (Holm, Benjamini-Hochberg) lives in
:mod:`workbench.analysis.multiplicity`; planning how many cases to run (power, sample size) in
:mod:`workbench.analysis.power`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from workbench.core.exceptions import UsageError

__all__ = [
    "ConfidenceInterval",
    "bootstrap_mean_ci",
    "cohens_dz",
    "cohens_h",
    "mcnemar_exact",
    "paired_bootstrap_ci",
    "paired_permutation_test",
    "wilson_ci",
]

# Above this many distinct values the bootstrap gathers indices; below it, it draws
# multinomial counts per distinct value, which gives the same distribution far faster.
_MAX_DISTINCT_FOR_COUNTS = 64
# Elements per chunk of resampled indices (8 MB of int64): bounds memory whatever n and R
# are, and measured faster than bigger chunks (cache) or narrower int types (conversions).
_CHUNK_ELEMENTS = 1 << 20


@dataclass(frozen=True)
class ConfidenceInterval:
    """A bootstrap confidence interval for a mean (or a mean paired difference).

    Attributes:
        estimate: The observed mean over units (cases).
        low: Lower bound; NaN when there are fewer than two units.
        high: Upper bound; NaN when there are fewer than two units.
        confidence: Confidence level, e.g. 0.95.
        n_units: Number of resampled units (cases when clustered, else values).
        method: How the interval was computed, in words.
    """

    estimate: float
    low: float
    high: float
    confidence: float
    n_units: int
    method: str


# --- input checks --------------------------------------------------------------------------


def _as_float_array(values: ArrayLike, name: str) -> np.ndarray:
    """Flatten ``values`` to floats, refusing NaN (an unscored pair would bias every result)."""
    arr = np.asarray(values, dtype=float).ravel()
    if np.isnan(arr).any():
        raise UsageError(
            f"{name} contains {int(np.isnan(arr).sum())} NaN value(s); drop unscored pairs "
            "(errored calls) before computing statistics"
        )
    return arr


def _paired_arrays(a: ArrayLike, b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` as float arrays of the same length."""
    a_arr, b_arr = _as_float_array(a, "a"), _as_float_array(b, "b")
    if a_arr.shape != b_arr.shape:
        raise UsageError(f"a and b must have the same length, got {a_arr.size} and {b_arr.size}")
    return a_arr, b_arr


# --- bootstrap -----------------------------------------------------------------------------


def _cluster_means(x: np.ndarray, clusters: ArrayLike) -> np.ndarray:
    """Mean of ``x`` within each cluster label, one value per cluster (sorted by label)."""
    labels = np.asarray(clusters).ravel()
    if labels.size != x.size:
        raise UsageError(f"clusters has {labels.size} labels for {x.size} values; they must match")
    _, inverse = np.unique(labels, return_inverse=True)
    return np.bincount(inverse, weights=x) / np.bincount(inverse)


def _bootstrap_means(units: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_resamples`` resamples (with replacement) of ``units``."""
    values, inverse = np.unique(units, return_inverse=True)
    if values.size <= _MAX_DISTINCT_FOR_COUNTS:
        return _bootstrap_means_by_counts(values, np.bincount(inverse), n_resamples, rng)
    return _bootstrap_means_by_gathering(units, n_resamples, rng)


def _bootstrap_means_by_counts(
    values: np.ndarray, counts: np.ndarray, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Bootstrap means for data with few distinct ``values`` (each seen ``counts`` times).

    Resampling n units with replacement only matters through how many copies of each
    distinct value are drawn: a multinomial draw. Pass/fail data has <= 3 distinct
    differences, so this is one small matrix product instead of n x R gathered indices.
    """
    n = int(counts.sum())
    drawn = rng.multinomial(n, counts / n, size=n_resamples)
    return drawn @ values / n


def _bootstrap_means_by_gathering(units: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap means by drawing resampled indices, in chunks to bound memory."""
    n = units.size
    means = np.empty(n_resamples)
    chunk = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = units[idx].mean(axis=1)
    return means


def bootstrap_mean_ci(
    x: ArrayLike,
    *,
    clusters: ArrayLike | None = None,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> ConfidenceInterval:
    """Percentile bootstrap confidence interval of a mean.

    Args:
        x: Values (no NaN).
        clusters: Optional cluster label per value (e.g. case ids when cases were repeated).
            Values are averaged within each cluster and clusters are resampled; the estimate
            is then the mean of cluster means.
        confidence: Confidence level in (0, 1).
        n_resamples: Number of bootstrap resamples.
        seed: Seed of the numpy random generator.

    Returns:
        A :class:`ConfidenceInterval`.

    Example:
        >>> ci = bootstrap_mean_ci([1, 0, 1, 1, 0, 1, 1, 1], seed=1)
        >>> round(ci.estimate, 3), ci.low <= ci.estimate <= ci.high
        (0.75, True)
    """
    if not 0 < confidence < 1:
        raise UsageError(f"confidence must be in (0, 1), got {confidence!r}")
    if n_resamples < 1:
        raise UsageError(f"n_resamples must be >= 1, got {n_resamples!r}")
    values = _as_float_array(x, "x")
    units = values if clusters is None else _cluster_means(values, clusters)
    if units.size == 0:
        raise UsageError("cannot compute a confidence interval from zero values")
    method = "percentile bootstrap"
    if clusters is not None:
        method += " over clusters (cases)"
    estimate = float(units.mean())
    if units.size < 2:
        # One unit carries no information about variability: say so rather than a 0-width CI.
        return ConfidenceInterval(estimate, math.nan, math.nan, confidence, 1, method)
    means = _bootstrap_means(units, n_resamples, np.random.default_rng(seed))
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return ConfidenceInterval(estimate, float(low), float(high), confidence, units.size, method)


def paired_bootstrap_ci(
    a: ArrayLike,
    b: ArrayLike,
    *,
    clusters: ArrayLike | None = None,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> ConfidenceInterval:
    """Bootstrap confidence interval of ``mean(b - a)`` over paired units.

    Args:
        a: Baseline scores, one per paired call.
        b: Candidate scores, aligned with ``a``.
        clusters: Case id per pair when cases were repeated: differences are averaged within
            a case and cases, never individual calls, are resampled (cluster bootstrap).
        confidence: Confidence level in (0, 1).
        n_resamples: Number of bootstrap resamples.
        seed: Seed of the numpy random generator.

    Returns:
        A :class:`ConfidenceInterval` of the mean difference (candidate minus baseline).

    Example:
        >>> ci = paired_bootstrap_ci([0, 0, 1, 1, 0], [1, 0, 1, 1, 1], n_resamples=2000)
        >>> round(ci.estimate, 2)
        0.4
    """
    a_arr, b_arr = _paired_arrays(a, b)
    return bootstrap_mean_ci(
        b_arr - a_arr,
        clusters=clusters,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
    )


def wilson_ci(successes: int, n: int, *, confidence: float = 0.95) -> ConfidenceInterval:
    """Wilson score interval of a proportion (``successes`` of ``n`` independent cases).

    Unlike the normal-approximation (Wald) interval it stays within [0, 1] and keeps a
    non-zero width at 0% and 100%. Same bounds as ``scipy.stats.binomtest(k, n)
    .proportion_ci(method="wilson")``, without importing scipy.stats (~1 s).

    Example:
        >>> ci = wilson_ci(7, 8)
        >>> round(ci.low, 3), round(ci.high, 3)
        (0.529, 0.978)
        >>> round(wilson_ci(0, 8).high, 3)
        0.324
    """
    if not 0 < confidence < 1:
        raise UsageError(f"confidence must be in (0, 1), got {confidence!r}")
    if n < 1 or not 0 <= successes <= n:
        raise UsageError(f"need 0 <= successes <= n and n >= 1, got successes={successes!r}, n={n!r}")
    from scipy.special import ndtri

    z = float(ndtri((1 + confidence) / 2))
    p = successes / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low, high = max(0.0, center - half), min(1.0, center + half)
    return ConfidenceInterval(p, low, high, confidence, n, "Wilson score interval")


# --- tests ---------------------------------------------------------------------------------


def mcnemar_exact(b_only: int, c_only: int) -> float:
    """Two-sided exact McNemar p-value from the two discordant counts.

    Args:
        b_only: Pairs where only the first variant passed.
        c_only: Pairs where only the second variant passed.

    Returns:
        ``binomtest(min(b, c), b + c, 0.5)`` two-sided p-value; 1.0 with no discordant pairs.

    Example:
        >>> round(mcnemar_exact(10, 2), 4)
        0.0386
    """
    if b_only < 0 or c_only < 0:
        raise UsageError(f"discordant counts must be >= 0, got {b_only!r} and {c_only!r}")
    n = int(b_only) + int(c_only)
    if n == 0:
        return 1.0
    # Under H0 the discordant count is Binomial(n, 1/2), symmetric, so the two-sided
    # exact p-value (scipy.stats.binomtest's) is twice the smaller tail. bdtr is that
    # tail from scipy.special, which imports in a fraction of scipy.stats' ~1 s and ~50 MB.
    from scipy.special import bdtr

    return min(1.0, 2.0 * float(bdtr(min(int(b_only), int(c_only)), n, 0.5)))


def paired_permutation_test(a: ArrayLike, b: ArrayLike, *, n_resamples: int = 10_000, seed: int = 0) -> float:
    """Two-sided paired sign-flip permutation test of ``mean(b - a) == 0``.

    Under the null the sign of each difference is exchangeable. The test enumerates all
    sign patterns when there are at most ``log2(n_resamples)`` non-zero differences (exact),
    otherwise draws ``n_resamples`` random patterns and returns ``(1 + hits) / (1 + R)``.
    For +/-1 differences (pass/fail data) the exact version equals the exact McNemar test.

    Args:
        a: Baseline values (e.g. per-case mean scores).
        b: Candidate values, aligned with ``a``.
        n_resamples: Number of random sign patterns when not enumerating.
        seed: Seed of the numpy random generator.

    Returns:
        The p-value; 1.0 when all differences are zero.

    Example:
        >>> round(paired_permutation_test([0.2, 0.4, 0.1, 0.3], [0.5, 0.6, 0.4, 0.7]), 3)
        0.125
    """
    a_arr, b_arr = _paired_arrays(a, b)
    d = b_arr - a_arr
    d = d[d != 0]  # zero differences add nothing to either side of the statistic
    if d.size == 0:
        return 1.0
    observed = abs(d.sum())
    # Ties between permuted and observed sums must count as hits despite rounding.
    threshold = observed - 1e-9 * max(1.0, float(np.abs(d).sum()))
    if 2**d.size <= n_resamples:
        return _exact_sign_flip_pvalue(d, threshold)
    return _sampled_sign_flip_pvalue(d, threshold, n_resamples, seed)


def _exact_sign_flip_pvalue(d: np.ndarray, threshold: float) -> float:
    """Share of all ``2**m`` sign patterns whose ``|sum|`` reaches ``threshold``."""
    m = d.size
    # Row k holds the bits of k mapped to -1/+1: every sign pattern exactly once.
    signs = ((np.arange(2**m)[:, None] >> np.arange(m)) & 1) * 2 - 1
    return float(np.mean(np.abs(signs @ d) >= threshold))


def _sampled_sign_flip_pvalue(d: np.ndarray, threshold: float, n_resamples: int, seed: int) -> float:
    """Monte Carlo p-value ``(1 + hits) / (1 + R)`` over random sign patterns.

    The ``+1`` counts the observed pattern, so the p-value is never 0 (Phipson and Smyth).
    """
    m = d.size
    rng = np.random.default_rng(seed)
    total = float(d.sum())
    hits = 0
    chunk = max(1, 4 * _CHUNK_ELEMENTS // m)
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        # One random bit per difference, unpacked from random bytes (cheaper than one draw
        # per sign). With sign = 2 * bit - 1, sum(sign * d) = 2 * (bits @ d) - sum(d).
        raw = rng.integers(0, 256, size=(size, (m + 7) // 8), dtype=np.uint8)
        bits = np.unpackbits(raw, axis=1, count=m).astype(float)
        hits += int(np.count_nonzero(np.abs(2 * (bits @ d) - total) >= threshold))
    return (1 + hits) / (1 + n_resamples)


# --- effect sizes --------------------------------------------------------------------------


def cohens_h(p_baseline: float, p_candidate: float) -> float:
    """Cohen's h for two proportions: ``2 asin(sqrt(p2)) - 2 asin(sqrt(p1))``.

    About 0.2 is "small", 0.5 "medium", 0.8 "large" (Cohen, 1988).

    Args:
        p_baseline: Pass rate of the baseline, in [0, 1].
        p_candidate: Pass rate of the candidate, in [0, 1].

    Returns:
        The signed effect size; positive when the candidate passes more often.

    Example:
        >>> round(cohens_h(0.5, 0.7), 3)
        0.412
    """
    return 2 * math.asin(math.sqrt(p_candidate)) - 2 * math.asin(math.sqrt(p_baseline))


def cohens_dz(differences: ArrayLike) -> float:
    """Cohen's dz for paired data: mean difference / SD of the differences (ddof=1).

    Args:
        differences: Paired differences, candidate minus baseline (no NaN).

    Returns:
        The signed effect size; NaN with fewer than two differences or when they are all
        equal (no spread to scale by).

    Example:
        >>> round(cohens_dz([0.1, 0.3, 0.2, 0.4]), 3)
        1.936
    """
    d = _as_float_array(differences, "differences")
    if d.size < 2:
        return math.nan
    sd, mean = float(d.std(ddof=1)), float(d.mean())
    # Equal differences leave rounding noise in the SD: treat it as zero, not as a huge dz.
    return mean / sd if sd > 1e-12 * max(1.0, abs(mean)) else math.nan
