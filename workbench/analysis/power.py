"""Planning a comparison: how many cases to run, and what a given number of cases can detect.

Two kinds of score, two models:

- Pass/fail scores, one call per case, tested with exact McNemar: Connor (1987), Biometrics
  43:207-211. What drives the answer is the *discordance*, the share of cases on which
  exactly one variant passes: only those cases carry evidence (:func:`sample_size`,
  :func:`min_detectable_diff`).
- Continuous scores (or per-case means of repeated calls): a normal approximation for the
  mean paired difference, driven by the SD of the differences
  (:func:`paired_mean_sample_size`, :func:`paired_mean_min_detectable_diff`).

All tests are two-sided. Differences are candidate minus baseline, as in
:mod:`workbench.analysis.stats`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from workbench.core.exceptions import UsageError

__all__ = [
    "min_detectable_diff",
    "paired_mean_min_detectable_diff",
    "paired_mean_sample_size",
    "sample_size",
]


def _z(alpha: float, power: float) -> tuple[float, float]:
    """Normal quantiles ``(z_{1-alpha/2}, z_{power})`` of a two-sided test."""
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise UsageError(f"alpha and power must be in (0, 1), got {alpha!r} and {power!r}")
    # scipy.special, not scipy.stats: importing scipy.stats costs ~1 s and ~50 MB,
    # which every run's verdict would pay (ndtri is scipy.stats.norm.ppf's kernel).
    from scipy.special import ndtri

    return float(ndtri(1 - alpha / 2)), float(ndtri(power))


def _independent_discordance(p1: float, p2: float) -> float:
    """Discordance when the two variants pass independently of each other given the case."""
    return p1 * (1 - p2) + p2 * (1 - p1)


def _discordance_model(
    baseline_rate: float, discordance: float | None, null_discordance: float | None
) -> Callable[[float], float]:
    """Discordance as a function of the (signed) difference in pass rates.

    A fixed ``discordance`` does not depend on the difference; ``null_discordance`` adds the
    ``|d|`` net flips a real difference ``d`` needs; with neither, the variants are assumed
    to pass independently.
    """
    if discordance is not None and null_discordance is not None:
        raise UsageError("give discordance or null_discordance, not both")
    for name, value in (("discordance", discordance), ("null_discordance", null_discordance)):
        if value is not None and not 0 <= value <= 1:
            raise UsageError(f"{name} must be in [0, 1], got {value!r}")
    if discordance is not None:
        return lambda d: discordance
    if null_discordance is not None:
        return lambda d: null_discordance + abs(d)
    return lambda d: _independent_discordance(baseline_rate, baseline_rate + d)


def _mcnemar_n(diff: float, discordance: float, z_a: float, z_b: float) -> float:
    """Connor's (1987) sample size, unrounded.

    ``n = (z_{a/2} sqrt(pd) + z_b sqrt(pd - d^2))^2 / d^2``
    """
    return (z_a * math.sqrt(discordance) + z_b * math.sqrt(discordance - diff**2)) ** 2 / diff**2


def sample_size(
    baseline_rate: float,
    min_detectable_diff: float,
    *,
    power: float = 0.8,
    alpha: float = 0.05,
    discordance: float | None = None,
    null_discordance: float | None = None,
) -> int:
    """Paired cases needed for a two-sided exact-McNemar comparison of pass rates.

    Uses Connor (1987), Biometrics 43:207-211:
    ``n = (z_{1-alpha/2} sqrt(pd) + z_{power} sqrt(pd - d^2))^2 / d^2`` where ``d`` is the
    difference in pass rates and ``pd`` the proportion of discordant pairs (cases where
    exactly one variant passes).

    Args:
        baseline_rate: Expected pass rate of the baseline, in [0, 1].
        min_detectable_diff: Difference in pass rate to detect (candidate minus baseline,
            e.g. 0.05 for 5 points).
        power: Probability of detecting that difference.
        alpha: Two-sided significance level.
        discordance: Expected proportion of discordant pairs. When None, the two variants
            are assumed to pass independently given the case:
            ``pd = p1 (1 - p2) + p2 (1 - p1)``. Variants usually agree on most cases
            (positive correlation), so the real discordance is lower and fewer cases are
            needed: the default errs on the side of more cases.
        null_discordance: Instead of ``discordance``: the proportion of pairs that flip in
            both directions and cancel out, e.g. ``2 * min(b, c) / n`` from a pilot
            comparison. The discordance at difference ``d`` is then
            ``null_discordance + |d|`` (the same noise flips, plus ``|d|`` net flips).

    Returns:
        The number of paired cases, rounded up.

    Example:
        >>> sample_size(0.80, 0.10, discordance=0.20)
        155
    """
    d = abs(min_detectable_diff)
    if not 0 <= baseline_rate <= 1 or not 0 <= baseline_rate + min_detectable_diff <= 1:
        raise UsageError(f"baseline_rate {baseline_rate!r} + diff {min_detectable_diff!r} must stay in [0, 1]")
    if d == 0:
        raise UsageError("min_detectable_diff must be non-zero")
    pd_ = _discordance_model(baseline_rate, discordance, null_discordance)(min_detectable_diff)
    if not d <= pd_ <= 1:
        raise UsageError(
            f"discordance {pd_!r} must be in [|diff|, 1] = [{d!r}, 1]: a difference of pass "
            "rates can only come from discordant pairs"
        )
    z_a, z_b = _z(alpha, power)
    # The tolerance keeps a result that is an integer up to rounding from gaining a case.
    return math.ceil(_mcnemar_n(d, pd_, z_a, z_b) - 1e-9)


def _largest_diff(baseline_rate: float, discordance: float | None, null_discordance: float | None) -> float:
    """The largest improvement possible: the upper end of the search.

    The candidate's pass rate cannot pass 100%, and a difference can only come from
    discordant pairs, so the bound is the smaller of the room above the baseline and what
    the discordance model allows.
    """
    room = 1 - baseline_rate
    if discordance is not None:
        return min(room, discordance)
    if null_discordance is not None:
        return min(room, 1 - null_discordance)  # pd = null + d must stay <= 1
    return room  # independence: pd = p1 (1 - p2) + p2 (1 - p1) >= d for any p2 <= 1


def min_detectable_diff(
    n: int,
    baseline_rate: float,
    *,
    power: float = 0.8,
    alpha: float = 0.05,
    discordance: float | None = None,
    null_discordance: float | None = None,
) -> float:
    """Smallest pass-rate difference that ``n`` paired cases detect with the given power.

    The inverse of :func:`sample_size`, with the same formula and the same discordance
    options. The difference is an improvement over ``baseline_rate``, so it is at most
    ``1 - baseline_rate`` (a pass rate cannot exceed 100%). With both discordance options
    left as None, the discordance follows from independence.

    Args:
        n: Number of paired cases.
        baseline_rate: Expected pass rate of the baseline, in [0, 1].
        power: Probability of detecting the difference.
        alpha: Two-sided significance level.
        discordance: Expected proportion of discordant pairs (see :func:`sample_size`).
        null_discordance: Proportion of pairs that flip both ways and cancel out (see
            :func:`sample_size`).

    Returns:
        The difference as a proportion (0.09 = 9 points), in ``(0, 1 - baseline_rate]``;
        ``math.inf`` when no possible improvement reaches the power with ``n`` cases (for
        instance a 95% baseline leaves 5 points, and 100 cases with 30% discordant pairs
        cannot detect 5 points), including when there is no room at all (a 100%
        baseline, or no discordant pairs).

    Example:
        >>> round(min_detectable_diff(155, 0.80, discordance=0.20), 3)
        0.1
        >>> min_detectable_diff(100, 0.95, discordance=0.30)
        inf
    """
    if n < 1:
        raise UsageError(f"n must be >= 1, got {n!r}")
    if not 0 <= baseline_rate <= 1:
        raise UsageError(f"baseline_rate must be in [0, 1], got {baseline_rate!r}")
    z_a, z_b = _z(alpha, power)
    pd_of = _discordance_model(baseline_rate, discordance, null_discordance)
    upper = _largest_diff(baseline_rate, discordance, null_discordance)
    if upper <= 0:
        return math.inf  # nothing to improve, or no discordant pairs to carry a difference

    def gap(d: float) -> float:
        # Cases needed minus cases available: decreasing in d, so its root is the smallest
        # detectable difference. The max() keeps pd >= d, which the formula needs.
        return _mcnemar_n(d, max(pd_of(d), d), z_a, z_b) - n

    if gap(upper) > 0:
        return math.inf  # even the largest possible improvement needs more than n cases
    from scipy import optimize

    return float(optimize.brentq(gap, 1e-9, upper, xtol=1e-10))


def paired_mean_sample_size(
    sd_diff: float, min_detectable_diff: float, *, power: float = 0.8, alpha: float = 0.05
) -> int:
    """Paired cases needed to detect a mean difference (normal approximation).

    ``n = ((z_{1-alpha/2} + z_{power}) * sd_diff / diff)^2``, rounded up.

    Args:
        sd_diff: Standard deviation of the paired differences (per case), >= 0.
        min_detectable_diff: Mean difference to detect, in score units; non-zero.
        power: Probability of detecting that difference.
        alpha: Two-sided significance level.

    Returns:
        The number of paired cases, rounded up.

    Example:
        >>> paired_mean_sample_size(0.2, 0.05)
        126
    """
    if min_detectable_diff == 0 or sd_diff < 0:
        raise UsageError("min_detectable_diff must be non-zero and sd_diff >= 0")
    z_a, z_b = _z(alpha, power)
    return math.ceil(((z_a + z_b) * sd_diff / abs(min_detectable_diff)) ** 2 - 1e-9)


def paired_mean_min_detectable_diff(n: int, sd_diff: float, *, power: float = 0.8, alpha: float = 0.05) -> float:
    """Smallest mean difference ``n`` paired cases detect (normal approximation).

    ``diff = (z_{1-alpha/2} + z_{power}) * sd_diff / sqrt(n)``: the inverse of
    :func:`paired_mean_sample_size`.

    Args:
        n: Number of paired cases.
        sd_diff: Standard deviation of the paired differences (per case).
        power: Probability of detecting the difference.
        alpha: Two-sided significance level.

    Returns:
        The difference in score units.

    Example:
        >>> round(paired_mean_min_detectable_diff(126, 0.2), 4)
        0.0499
    """
    if n < 1:
        raise UsageError(f"n must be >= 1, got {n!r}")
    z_a, z_b = _z(alpha, power)
    return (z_a + z_b) * sd_diff / math.sqrt(n)
