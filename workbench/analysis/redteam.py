"""Red-team figures: attack success rate per category and strategy, utility, and the paired comparison.

Every rate comes with a Wilson score interval. Calls that failed (an error, no output) are
left out of every rate, as of every score mean. The paired comparison of two variants (two
system prompts) on the same attacks is the workbench's usual one: exact McNemar on
``attack_resisted`` (an attack resisted by one prompt and not the other is a discordant
pair), with ``canary_kept`` and ``clean_utility`` alongside.

``echoes`` counts the successes whose answer copies the attack's text (see
:data:`~workbench.scorers.safety.ECHO_NOTE`): obeyed or merely repeated, a reader can tell.

With ``repeats`` > 1 each call counts once in the rates (the comparison still averages
repeats within a case first).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from workbench.analysis.compare import compare
from workbench.analysis.comparison import Comparison
from workbench.analysis.stats import wilson_ci
from workbench.core import schema as col
from workbench.core.exceptions import UsageError
from workbench.scorers.safety import ECHO_NOTE

__all__ = ["ATTACK_SUCCESS_RATE", "RedTeamReport", "redteam_report"]

#: The rate the gate's ``--max attack_success_rate=...`` reads: one minus ``attack_resisted``.
ATTACK_SUCCESS_RATE = "attack_success_rate"
_RESISTED, _KEPT, _UTILITY = "attack_resisted", "canary_kept", "clean_utility"
_NEEDED = (col.VARIANT, col.MODEL, col.expected_column("kind"), col.score_column(_RESISTED))


@dataclass(frozen=True)
class RedTeamReport:
    """The figures of a red-team run, as DataFrames (one row per variant x model x group).

    Attributes:
        overall: Per variant x model: attacks, successes (``echoes`` of them repeat the attack),
            ``attack_success_rate`` and its CI,
            ``canary_leak_rate`` over every case, ``utility`` on the clean cases and its CI.
        by_category: Per variant x model x category: n, successes, rate, CI.
        by_strategy: Per variant x model x strategy.
        by_cell: Per variant x model x category x strategy (the heat map's cells).
        comparisons: Per model, the paired comparison of ``candidate`` vs ``baseline``
            (empty with one variant).
        confidence: Level of the intervals.
    """

    overall: pd.DataFrame
    by_category: pd.DataFrame
    by_strategy: pd.DataFrame
    by_cell: pd.DataFrame
    comparisons: dict[str, Comparison] = field(default_factory=dict)
    confidence: float = 0.95

    def table(self, by: str = "category", *, model: str | None = None) -> pd.DataFrame:
        """Rates side by side, one column per variant (``"12.5% [4.1, 30.1]"``), for reading.

        Args:
            by: ``"category"`` or ``"strategy"``.
            model: Only this model (default: every model, as a column level).
        """
        frame = {"category": self.by_category, "strategy": self.by_strategy}.get(by)
        if frame is None:
            raise UsageError(f"by must be 'category' or 'strategy', got {by!r}")
        if model is not None:
            frame = frame[frame[col.MODEL] == model]
        shown = frame.assign(rate=[_fmt(r) for r in frame.itertuples()])
        table = shown.pivot_table(index=by, columns=[col.MODEL, col.VARIANT], values="rate", aggfunc="first")
        order = list(dict.fromkeys(frame[col.VARIANT]))  # the run's order: baseline first
        return table[sorted(table.columns, key=lambda c: (c[0], order.index(c[1])))]

    def rates_table(self) -> pd.DataFrame:
        """The per-category and per-strategy rows in one table, ``by`` saying which (what MLflow gets)."""
        return pd.concat(
            [
                self.by_category.assign(by="category").rename(columns={"category": "group"}),
                self.by_strategy.assign(by="strategy").rename(columns={"strategy": "group"}),
            ],
            ignore_index=True,
        )

    def metrics(self, *, per_model: bool = False) -> dict[str, float]:
        """The rates as flat metrics: ``redteam.<variant>[.<model>].attack_success_rate[.<category>]``,
        ``.canary_leak_rate`` and ``.utility`` (NaN ones, nothing scored, left out).

        Example:
            >>> report.metrics()["redteam.guarded.attack_success_rate"]  # doctest: +SKIP
            0.018
        """
        metrics: dict[str, float] = {}

        def prefix(row: Any) -> str:
            model = re.sub(r"[^A-Za-z0-9_.-]", "_", str(row.model)) + "." if per_model else ""
            return f"redteam.{row.variant}.{model}"

        for row in self.overall.itertuples():
            metrics[prefix(row) + ATTACK_SUCCESS_RATE] = float(row.attack_success_rate)
            metrics[prefix(row) + "canary_leak_rate"] = float(row.canary_leak_rate)
            metrics[prefix(row) + "utility"] = float(row.utility)
        for row in self.by_category.itertuples():
            metrics[f"{prefix(row)}{ATTACK_SUCCESS_RATE}.{row.category}"] = float(row.attack_success_rate)
        return {k: v for k, v in metrics.items() if v == v}


def _fmt(row: Any) -> str:
    return f"{100 * row.attack_success_rate:.1f}% [{100 * row.ci_low:.1f}, {100 * row.ci_high:.1f}] (n={row.n})"


def _rate_rows(frame: pd.DataFrame, keys: list[str], confidence: float) -> pd.DataFrame:
    """Attack success rate (1 - attack_resisted) and its Wilson interval per group of ``keys``."""
    resisted, reason = col.score_column(_RESISTED), col.reason_column(_RESISTED)
    rows = []
    for key, group in frame.groupby(keys, sort=True, dropna=False):
        scored = group[resisted].dropna()
        n = len(scored)
        if n == 0:
            continue
        successes = int((scored < 0.5).sum())
        won = group.loc[group[resisted] < 0.5]
        echoes = int(won[reason].astype(str).str.contains(ECHO_NOTE, regex=False).sum()) if reason in won else 0
        ci = wilson_ci(successes, n, confidence=confidence)
        values = key if isinstance(key, tuple) else (key,)
        rows.append(
            {
                **dict(zip(keys, values, strict=True)),
                "n": n,
                "successes": successes,
                ATTACK_SUCCESS_RATE: successes / n,
                "ci_low": ci.low,
                "ci_high": ci.high,
                "echoes": echoes,
            }
        )
    return pd.DataFrame(rows, columns=[*keys, "n", "successes", ATTACK_SUCCESS_RATE, "ci_low", "ci_high", "echoes"])


def _scores(group: pd.DataFrame, scorer: str) -> pd.Series:
    """The scores a scorer gave (NaN left out); none when the run did not have that scorer."""
    column = col.score_column(scorer)
    return group[column].dropna() if column in group else pd.Series([], dtype=float)


def _overall(cases: pd.DataFrame, attacks: pd.DataFrame, confidence: float) -> pd.DataFrame:
    rates = _rate_rows(attacks, [col.VARIANT, col.MODEL], confidence)
    rows = []
    for (variant, model), group in cases.groupby([col.VARIANT, col.MODEL], sort=True):
        row: dict[str, Any] = {col.VARIANT: variant, col.MODEL: model, "errors": int(group[col.ERROR].notna().sum())}
        kept = _scores(group, _KEPT)
        row["canary_leak_rate"] = float((kept < 0.5).mean()) if len(kept) else float("nan")
        useful = _scores(group, _UTILITY)
        row["clean_cases"] = len(useful)
        row["utility"] = float(useful.mean()) if len(useful) else float("nan")
        if len(useful):
            ci = wilson_ci(int((useful >= 0.5).sum()), len(useful), confidence=confidence)
            row["utility_ci_low"], row["utility_ci_high"] = ci.low, ci.high
        else:
            row["utility_ci_low"] = row["utility_ci_high"] = float("nan")
        rows.append(row)
    extra = pd.DataFrame(rows)
    rates = rates.rename(columns={"n": "attacks", "ci_low": "asr_ci_low", "ci_high": "asr_ci_high"})
    return rates.merge(extra, on=[col.VARIANT, col.MODEL], how="outer")


def redteam_report(
    result: Any,
    *,
    baseline: str | None = None,
    candidate: str | None = None,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> RedTeamReport:
    """The figures of a red-team run: a result of :func:`workbench.redteam`'s experiment, or its cases.

    Args:
        result: The run's result, or its cases DataFrame.
        baseline: The comparison's baseline variant (default: the first in the run).
        candidate: Its candidate (default: the second).
        confidence: Level of the Wilson intervals and the comparison's CIs.
        n_resamples: Bootstrap resamples of the comparison.
        seed: The comparison's random seed.

    Raises:
        UsageError: the cases do not come from a red-team run (no ``attack_resisted`` scores).

    Example:
        >>> report = wb.redteam_report(result)  # doctest: +SKIP
        >>> report.by_category  # doctest: +SKIP
        >>> report.comparisons["local/gemma-3-270m"]  # doctest: +SKIP
    """
    cases = result if isinstance(result, pd.DataFrame) else result.cases
    missing = [c for c in _NEEDED if c not in cases.columns]
    if missing:
        raise UsageError(
            f"these cases have no column(s) {missing}: redteam_report reads a run of an experiment built "
            "by wb.redteam(...), scored by attack_resisted"
        )
    attacks = cases[cases[col.expected_column("kind")] == "attack"].rename(
        columns={col.expected_column("category"): "category", col.expected_column("strategy"): "strategy"}
    )
    base_keys = [col.VARIANT, col.MODEL]
    order = list(dict.fromkeys(map(str, cases[col.VARIANT])))
    return RedTeamReport(
        overall=_in_run_order(_overall(cases, attacks, confidence), order),
        by_category=_in_run_order(_rate_rows(attacks, [*base_keys, "category"], confidence), order),
        by_strategy=_in_run_order(_rate_rows(attacks, [*base_keys, "strategy"], confidence), order),
        by_cell=_in_run_order(_rate_rows(attacks, [*base_keys, "category", "strategy"], confidence), order),
        comparisons=_comparisons(cases, baseline, candidate, confidence, n_resamples, seed),
        confidence=confidence,
    )


def _in_run_order(frame: pd.DataFrame, variants: list[str]) -> pd.DataFrame:
    """Variants in the order the run had them (the baseline first), the other keys as sorted."""
    rank = frame[col.VARIANT].map({v: i for i, v in enumerate(variants)})
    return frame.assign(_rank=rank).sort_values("_rank", kind="stable").drop(columns="_rank").reset_index(drop=True)


def _comparisons(
    cases: pd.DataFrame, baseline: str | None, candidate: str | None, confidence: float, n_resamples: int, seed: int
) -> dict[str, Comparison]:
    variants: Sequence[str] = list(dict.fromkeys(map(str, cases[col.VARIANT])))
    if len(variants) < 2 and baseline is None and candidate is None:
        return {}
    baseline = baseline or variants[0]
    candidate = candidate or next((v for v in variants if v != baseline), baseline)
    scorers = [s for s in (_RESISTED, _KEPT, _UTILITY) if col.score_column(s) in cases.columns]
    out = {}
    for model in dict.fromkeys(map(str, cases[col.MODEL])):
        out[model] = compare(
            cases,
            baseline,
            candidate,
            model=model,
            scorers=scorers,
            confidence=confidence,
            n_resamples=n_resamples,
            seed=seed,
        )
    return out
