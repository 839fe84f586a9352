"""How a comparison reads: verdict sentences and number formats.

The sentences a person reads about a :class:`~workbench.analysis.comparison.Comparison`
are written here (the comparison's own notes, text and HTML use these formats), so
that the wording stays consistent between the verdicts, the notebook table and the CLI.
Pass/fail scorers (``kind == "binary"``) are shown in percent and percentage points;
continuous scorers in their own units with three significant digits. Missing numbers (NaN)
read "n/a"; an infinite smallest detectable difference is put in words, never as "inf".
"""

from __future__ import annotations

import math

from workbench.analysis.outcome import ScorerComparison

# Power of the "smallest difference this test would detect" sentences (and the numbers
# behind them, which compare computes with this same value).
_POWER = 0.8
ADJUST_NAMES = {"holm": "Holm", "bh": "Benjamini-Hochberg"}
#: How a direction reads in tables.
RESULT_WORDS = {"better": "better", "worse": "worse", "none": "no detectable difference"}


# --- one scorer ----------------------------------------------------------------------------


def _verdict(r: ScorerComparison, blabel: str, clabel: str, alpha: float, note: str) -> str:
    """One plain-words sentence (or two) saying what the comparison of one scorer found.

    Args:
        r: The scorer's comparison, already adjusted and decided.
        blabel: Label of the baseline.
        clabel: Label of the candidate.
        alpha: Significance level; ``1 - alpha`` is the CI level.
        note: Prefix for the test name, e.g. ``"Holm-adjusted; "``, or ``""``.

    Example:
        >>> _verdict(row, "zero_shot", "few_shot", 0.05, "")  # doctest: +SKIP
        'few_shot beats zero_shot on label_match by +18.0 pts [95% CI +10.7, +25.3], ...'
    """
    if r.n_cases == 0:
        return f"No scored pairs on {r.scorer}: all {r.n_dropped} pairs errored or could not be scored."
    said = _evidence(r, alpha, note)
    if r.direction == "better":
        text = f"{clabel} beats {blabel} on {r.scorer} by {said}"
    elif r.direction == "worse":
        text = f"{clabel} is worse than {blabel} on {r.scorer} by {said}"
    else:
        text = f"No detectable difference on {r.scorer}: {said}." + _power_sentence(r)
    if r.n_dropped:
        if not text.endswith("."):
            text += "."
        text += f" {r.n_dropped} pair(s) without a score were dropped."
    return text


def _evidence(r: ScorerComparison, alpha: float, note: str) -> str:
    """The difference, its CI, the p-value and how it was computed."""
    ci = f"[{1 - alpha:.0%} CI {_num(r.ci_low, r.kind)}, {_num(r.ci_high, r.kind)}]"
    n = f"n = {r.n_cases}"
    if r.n_repeats > 1:
        n += f" cases x {r.n_repeats} repeats"
    return f"{_diff(r.diff, r.kind)} {ci}, {_fmt_p(r.p_adjusted)} ({note}{r.test}, {n})"


def _power_sentence(r: ScorerComparison) -> str:
    """After "no detectable difference": what this n could have detected, and what it takes.

    Without it, a reader takes "no detectable difference" for "no difference". An infinite
    ``min_detectable_diff`` means that no possible improvement is detectable at this n (a
    baseline near 100% leaves little room); NaN means there was nothing to plan with.
    """
    mdd = r.min_detectable_diff
    if math.isnan(mdd):
        return ""
    if math.isinf(mdd):
        text = (
            f" With n = {r.n_cases} there is no improvement over the baseline's "
            f"{_mean(r.mean_baseline, r.kind)} that this test could detect {_POWER:.0%} of the time"
        )
    else:
        text = (
            f" With n = {r.n_cases} the smallest difference this test would detect {_POWER:.0%} of "
            f"the time is ~{_size(mdd, r.kind)}"
        )
    if r.n_needed and r.n_needed > r.n_cases:
        needed = int(float(f"{r.n_needed:.2g}"))  # "about", so two significant digits
        text += f"; about {needed:,} cases would be needed to detect {_size(r.diff, r.kind)}"
    return text + "."


# --- numbers -------------------------------------------------------------------------------


def _num(x: float, kind: str) -> str:
    """A signed difference: ``+12.3`` (points) for pass/fail, ``+0.0412`` otherwise."""
    if math.isnan(x):
        return "n/a"
    if kind == "binary":
        return f"{x * 100:+.1f}"
    return f"{x:+.3g}"


def _diff(x: float, kind: str) -> str:
    """A signed difference with its unit: ``+12.3 pts`` for pass/fail."""
    return _num(x, kind) + (" pts" if kind == "binary" else "")


def _size(x: float, kind: str) -> str:
    """An unsigned size of a difference: ``12 pts`` (one decimal below 10 points)."""
    if kind != "binary":
        return f"{abs(x):.3g}"
    # 0.095 rather than 0.1: anything that would print as "9.5" or more gets no decimal.
    return f"{abs(x) * 100:.0f} pts" if abs(x) >= 0.095 else f"{abs(x) * 100:.1f} pts"


def _mean(x: float, kind: str) -> str:
    """A mean score: ``84.0%`` for pass/fail, ``0.412`` otherwise."""
    if math.isnan(x):
        return "n/a"
    if kind == "binary":
        return f"{x:.1%}"
    return f"{x:.3g}"


def _fmt_p(p: float, *, bare: bool = False) -> str:
    """A p-value as ``p = 0.034`` or ``p < 0.001``; ``bare`` drops the ``p =`` for tables."""
    if math.isnan(p):
        text = "n/a"
    elif p < 0.001:
        text = "< 0.001"
    else:
        text = f"= {p:.2g}"
    return text.removeprefix("= ") if bare else f"p {text}"
