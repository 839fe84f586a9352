"""What a paired comparison found for one scorer, and how it was asked to test.

:class:`ScorerComparison` is built by :mod:`workbench.analysis.pairing`, worded by
:mod:`workbench.analysis.wording` and gathered in a
:class:`~workbench.analysis.comparison.Comparison`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Adjust = Literal["holm", "bh", "none"]
Direction = Literal["better", "worse", "none"]


@dataclass(frozen=True)
class ScorerComparison:
    """The comparison of one scorer: estimate, interval, test and verdict.

    Means are over cases (per-case means when repeated); ``diff`` is candidate minus
    baseline; the CI is not adjusted for multiplicity, ``p_adjusted`` is. ``n_fixed`` /
    ``n_regressed`` count fail->pass / pass->fail cases (pass/fail scorers; with repeats a
    case passes when more than half of its repeats pass, so exactly half is a fail). The
    effect size is Cohen's h for pass/fail scorers and Cohen's dz otherwise.
    ``min_detectable_diff`` is the difference this test detects with 80% power at this n (for
    pass/fail scorers, an improvement over the baseline's pass rate): ``inf`` when no
    possible improvement is large enough, NaN when there is nothing to plan with (no scored
    pairs, or all per-case differences equal). ``n_needed`` is the cases needed to detect
    the observed ``diff`` with 80% power. Both use the observed discordance or SD.

    Example:
        >>> row = cmp["label_match"]  # doctest: +SKIP
        >>> row.diff, (row.ci_low, row.ci_high), row.p_adjusted, row.direction  # doctest: +SKIP
    """

    scorer: str
    kind: Literal["binary", "continuous"]
    n_cases: int
    n_repeats: int
    n_dropped: int
    mean_baseline: float
    mean_candidate: float
    diff: float
    ci_low: float
    ci_high: float
    test: str
    p_value: float
    p_adjusted: float
    effect_size: float
    effect_size_name: str
    n_fixed: int
    n_regressed: int
    min_detectable_diff: float
    n_needed: int | None
    significant: bool
    direction: Direction
    verdict: str


# --- checking and selecting the rows -------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    """How to test, as given to :func:`~workbench.analysis.compare.compare` or ``compare_results``."""

    confidence: float
    adjust: Adjust
    n_resamples: int
    seed: int

    @property
    def alpha(self) -> float:
        return 1 - self.confidence
