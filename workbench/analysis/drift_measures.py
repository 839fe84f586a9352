"""The per-metric drift tests: each compares a reference frame with one window's frame.

A measure returns a :class:`Measured` (the two values shown, the effect size and its kind, the
test's name and p-value, the two sample sizes) or None when the metric does not apply. The
statistics are scipy.stats; PSI is the usual population stability index. :mod:`.drift` runs
them over windows and adjusts the p-values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd


def _stats() -> Any:
    """scipy.stats, imported on first use: it costs ~1 s and ~50 MB, too much for ``import workbench``."""
    from scipy import stats

    return stats


__all__ = ["COLUMNS", "MEASURES", "Measured", "psi"]

_EPS = 1e-4  # PSI's floor for an empty bin


def psi(reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray) -> float:
    """Population stability index of two distributions over the same bins (shares or counts).

    Example:
        >>> round(psi([50, 50], [50, 50]), 3), round(psi([80, 20], [50, 50]), 3)
        (0.0, 0.416)
    """
    r, c = np.asarray(reference, float), np.asarray(current, float)
    r, c = np.maximum(r / r.sum(), _EPS), np.maximum(c / c.sum(), _EPS)
    return float(np.sum((c - r) * np.log(c / r)))


@dataclass(frozen=True)
class Measured:
    """One metric measured in a reference and a window."""

    reference: float | str
    current: float | str
    effect: float
    effect_kind: Literal["psi", "relative"]
    test: str
    p_value: float
    n_reference: int
    n_current: int


def _categorical(column: str, name: str) -> Callable[[pd.DataFrame, pd.DataFrame], Measured | None]:
    def measure(ref: pd.DataFrame, cur: pd.DataFrame) -> Measured | None:
        r, c = ref[column].dropna(), cur[column].dropna()
        if r.empty or c.empty:
            return None
        levels = sorted(set(r) | set(c))
        counts = np.array([[int((r == v).sum()) for v in levels], [int((c == v).sum()) for v in levels]])
        p = _stats().chi2_contingency(counts, correction=False).pvalue if len(levels) > 1 else 1.0
        top = pd.Series(counts[1], index=levels).idxmax()  # shown as the current window's commonest level
        shares = (f"{top} {(r == top).mean():.0%}", f"{top} {(c == top).mean():.0%}")
        return Measured(*shares, psi(counts[0], counts[1]), "psi", "chi-square", float(p), len(r), len(c))

    measure.__name__ = name
    return measure


def _length(ref: pd.DataFrame, cur: pd.DataFrame) -> Measured | None:
    r, c = ref["input_chars"].to_numpy(float), cur["input_chars"].to_numpy(float)
    edges = np.unique(np.quantile(r, np.linspace(0, 1, 11)))
    edges[0], edges[-1] = -np.inf, np.inf
    effect = psi(np.histogram(r, edges)[0], np.histogram(c, edges)[0])
    p = _stats().ks_2samp(r, c).pvalue
    return Measured(
        float(np.median(r)), float(np.median(c)), effect, "psi", "Kolmogorov-Smirnov", float(p), len(r), len(c)
    )


def _rate(column: str, *, negate: bool = False) -> Callable[[pd.DataFrame, pd.DataFrame], Measured | None]:
    def measure(ref: pd.DataFrame, cur: pd.DataFrame) -> Measured | None:
        r, c = ref[column].dropna().astype(bool), cur[column].dropna().astype(bool)
        if negate:
            r, c = ~r, ~c
        if r.empty or c.empty:
            return None
        table = np.array([[r.sum(), (~r).sum()], [c.sum(), (~c).sum()]])
        if (table.sum(axis=0) == 0).any():  # neither period has one (or every row does): nothing changed
            p = 1.0
        elif (_stats().contingency.expected_freq(table) < 5).any():
            p = _stats().fisher_exact(table).pvalue
        else:
            p = _stats().chi2_contingency(table, correction=False).pvalue
        rr, cr = float(r.mean()), float(c.mean())
        test = "two proportions"
        return Measured(rr, cr, _relative(rr, cr), "relative", test, float(p), len(r), len(c))

    return measure


def _mean(column: str) -> Callable[[pd.DataFrame, pd.DataFrame], Measured | None]:
    def measure(ref: pd.DataFrame, cur: pd.DataFrame) -> Measured | None:
        r, c = ref[column].dropna().to_numpy(float), cur[column].dropna().to_numpy(float)
        if not len(r) or not len(c):
            return None
        p = 1.0 if np.ptp(np.concatenate([r, c])) == 0 else _stats().mannwhitneyu(r, c).pvalue
        rm, cm = float(r.mean()), float(c.mean())
        return Measured(rm, cm, _relative(rm, cm), "relative", "Mann-Whitney U", float(p), len(r), len(c))

    return measure


def _p95(ref: pd.DataFrame, cur: pd.DataFrame) -> Measured | None:
    r, c = ref["latency_s"].to_numpy(float), cur["latency_s"].to_numpy(float)
    bar = float(np.quantile(r, 0.95))
    above = int((c > bar).sum())
    p = _stats().binomtest(above, len(c), 0.05).pvalue  # the reference's share above its own p95 is 5%
    now = float(np.quantile(c, 0.95))
    return Measured(
        bar, now, _relative(bar, now), "relative", "binomial: share above the reference p95", float(p), len(r), len(c)
    )


def _relative(before: float, after: float) -> float:
    if before == 0:
        return 0.0 if after == 0 else float("inf")
    return (after - before) / abs(before)


MEASURES: dict[str, Callable[[pd.DataFrame, pd.DataFrame], Measured | None]] = {
    "input_length": _length,
    "language": _categorical("lang", "language"),
    "category": _categorical("category", "category"),
    "json_invalid": _rate("json_valid", negate=True),
    "refusal": _rate("refusal"),
    "null_rate": _mean("null_rate"),
    "judge": _mean("judge"),
    "cost_per_query": _mean("cost_usd"),
    "latency_p95": _p95,
    "thumbs_down": _rate("thumb_down"),
    "implicit": _rate("implicit"),
}


#: The log column each metric reads.
COLUMNS = {
    "input_length": "input_chars",
    "language": "lang",
    "category": "category",
    "json_invalid": "json_valid",
    "refusal": "refusal",
    "null_rate": "null_rate",
    "judge": "judge",
    "cost_per_query": "cost_usd",
    "latency_p95": "latency_s",
    "thumbs_down": "thumb_down",
    "implicit": "implicit",
}
