"""A ship / don't-ship decision on a :class:`~workbench.analysis.compare.Comparison`, e.g. in CI.

The gate is deliberately one-sided: it fails on evidence of harm (a significant regression,
a missed threshold) or on missing evidence (a gated scorer with nothing scored), but "no
detectable difference" alone passes, because a candidate that is as good as the baseline
may ship.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from workbench.analysis.comparison import Comparison
from workbench.analysis.wording import _mean
from workbench.core import schema as col
from workbench.core.exceptions import UsageError

__all__ = ["COMPLEMENTS", "GateResult", "gate"]

#: Rates a gate may cap (``maxima``) that are one minus a scorer's mean: a failure rate of a
#: pass/fail scorer, e.g. ``attack_success_rate`` is ``1 - attack_resisted``.
COMPLEMENTS: dict[str, str] = {
    "attack_success_rate": "attack_resisted",
    "canary_leak_rate": "canary_kept",
    "hallucination_rate": "grounded",
}


@dataclass(frozen=True)
class GateResult:
    """Outcome of :func:`gate`: ``passed`` and, when it failed, one reason per failure.

    Attributes:
        passed: True when nothing failed.
        reasons: One plain-words reason per failure; empty when the gate passed.

    Example:
        >>> print(GateResult(passed=False, reasons=["label_match below 0.85"]))
        Gate FAILED:
        - label_match below 0.85
    """

    passed: bool
    reasons: list[str]

    def __str__(self) -> str:
        if self.passed:
            return "Gate passed."
        return "Gate FAILED:\n" + "\n".join(f"- {r}" for r in self.reasons)


def gate(
    comparison: Comparison,
    *,
    thresholds: Mapping[str, float] | None = None,
    maxima: Mapping[str, float] | None = None,
    gated_scorers: Sequence[str] | None = None,
) -> GateResult:
    """Decide whether the candidate may ship.

    Fails when the candidate is significantly worse (adjusted p) on a gated scorer, when a
    gated scorer has no scored pairs, when the candidate's mean misses a threshold, or when a
    capped rate is above its maximum. "No detectable difference" alone is not a failure.

    Args:
        comparison: A :class:`~workbench.analysis.compare.Comparison`.
        thresholds: Minimum candidate mean per scorer, e.g. ``{"label_match": 0.85}``.
        maxima: Maximum per scorer mean or per rate of :data:`COMPLEMENTS` (one minus a
            scorer's mean), e.g. ``{"attack_success_rate": 0.05}``.
        gated_scorers: Scorers whose significant regressions fail the gate; default all.

    Returns:
        A :class:`GateResult`; ``str()`` of it lists the reasons.

    Example:
        >>> result = gate(cmp, thresholds={"label_match": 0.85})  # doctest: +SKIP
        >>> assert result.passed, str(result)  # doctest: +SKIP
        >>> gate(redteam_cmp, maxima={"attack_success_rate": 0.05})  # doctest: +SKIP
    """
    thresholds, maxima = dict(thresholds or {}), dict(maxima or {})
    _require_known(comparison, [*thresholds, *(COMPLEMENTS.get(m, m) for m in maxima), *(gated_scorers or [])])
    gated = comparison.scorers if gated_scorers is None else map(col.scorer_name, gated_scorers)
    reasons = [
        *_regressions(comparison, gated),
        *_missed_thresholds(comparison, thresholds),
        *_exceeded_maxima(comparison, maxima),
    ]
    return GateResult(passed=not reasons, reasons=reasons)


def _require_known(comparison: Comparison, names: list[str]) -> None:
    # A misspelt scorer must not silently gate nothing.
    unknown = [s for s in names if col.scorer_name(s) not in comparison.scorers]
    if unknown:
        raise UsageError(
            f"gate names scorer(s) {unknown!r} not in the comparison; scorers: {comparison.scorers!r}"
            f" (rates a maximum may also name: {sorted(COMPLEMENTS)})"
        )


def _regressions(comparison: Comparison, gated: Iterable[str]) -> list[str]:
    """One reason per gated scorer that regressed significantly or could not be tested."""
    reasons = []
    for name in gated:
        row = comparison[name]
        if row.n_cases == 0:
            reasons.append(f"{name}: no scored pairs, so a regression cannot be ruled out")
        elif row.significant and row.direction == "worse":
            reasons.append(f"significant regression: {row.verdict}")
    return reasons


def _missed_thresholds(comparison: Comparison, thresholds: Mapping[str, float]) -> list[str]:
    """One reason per scorer whose candidate mean is below its threshold."""
    reasons = []
    for name, minimum in thresholds.items():
        row = comparison[name]
        if not row.mean_candidate >= minimum:  # NaN (nothing scored) fails too
            reasons.append(
                f"{comparison.candidate} {row.scorer} = {_mean(row.mean_candidate, row.kind)} "
                f"is below the threshold {_mean(minimum, row.kind)}"
            )
    return reasons


def _exceeded_maxima(comparison: Comparison, maxima: Mapping[str, float]) -> list[str]:
    """One reason per capped scorer mean or complement rate above its maximum (NaN: nothing scored, fails)."""
    reasons = []
    for name, maximum in maxima.items():
        scorer = COMPLEMENTS.get(name)
        row = comparison[scorer or name]
        value = 1.0 - row.mean_candidate if scorer else row.mean_candidate
        if not value <= maximum:
            shown = "nothing scored" if value != value else f"{100 * value:.1f}%" if scorer else _mean(value, row.kind)
            of = f" (1 - {scorer}, over {row.n_cases} scored cases)" if scorer else ""
            limit = f"{100 * maximum:.1f}%" if scorer else _mean(maximum, row.kind)
            reasons.append(f"{comparison.candidate} {name} = {shown}{of} is above the maximum {limit}")
    return reasons
