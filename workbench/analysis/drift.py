"""Drift: is production traffic in a time window still like the reference period?

:func:`drift_report` compares each window (a day by default) of a
:class:`~workbench.core.production_log.ProductionLog` with a reference period (the log's first
7 days by default), per task, on three kinds of metric:

==========  ================  =====================================  ==========================
kind        metric            test (scipy.stats)                     effect size
==========  ================  =====================================  ==========================
input       ``input_length``  two-sample Kolmogorov-Smirnov          PSI over reference deciles
input       ``language``      chi-square on the counts               PSI over the languages
input       ``category``      chi-square on the counts               PSI over the categories
output      ``json_invalid``  two proportions (2x2 chi-square)       relative change of the rate
output      ``refusal``       two proportions                        relative change
output      ``null_rate``     Mann-Whitney U on per-row null shares  relative change of the mean
output      ``judge``         Mann-Whitney U                         relative change of the mean
output      ``cost_per_query``  Mann-Whitney U                       relative change of the mean
output      ``latency_p95``   binomial: share above the reference    relative change of the p95
                              p95 against 5%
feedback    ``thumbs_down``   two proportions                        relative change of the rate
feedback    ``implicit``      two proportions                        relative change of the rate
==========  ================  =====================================  ==========================

The p-values of every (window, task, metric) test in the report are adjusted together (Holm
by default, Benjamini-Hochberg with ``adjust="bh"``): a month of daily windows makes hundreds
of tests, and unadjusted some would cross 0.05 by chance. A verdict needs both a small
adjusted p-value and a large enough effect:

- **significant**: adjusted p < ``alpha`` and PSI >= 0.25 (distributions) or a relative
  change >= 25% (rates, means, p95);
- **moderate**: adjusted p < ``alpha`` and PSI >= 0.1 or a relative change >= 10%;
- **stable**: otherwise (a real but tiny shift, or no evidence of one);
- **too few**: the window (or the reference) has fewer than ``min_n`` rows with the metric.

PSI's 0.1 / 0.25 bands are the usual credit-scoring ones (Siddiqi, *Credit Risk Scorecards*,
2006). Evidently was considered and not used: its wheel is 11.7 MB, it pins plotly < 6
(the project has plotly 7), and it pulls a web server and telemetry; the tests it would run
are the scipy ones above.

Example:
    >>> log = wb.ProductionLog.load("data/production_log.jsonl")  # doctest: +SKIP
    >>> report = wb.drift_report(log, reference=("2026-10-05", "2026-10-12"), window="1D")  # doctest: +SKIP
    >>> report.flagged  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from workbench.analysis.drift_measures import COLUMNS, MEASURES, psi
from workbench.analysis.multiplicity import adjust_pvalues
from workbench.core.dataset import Dataset
from workbench.core.exceptions import UsageError
from workbench.core.production_log import ProductionLog, language_of

__all__ = ["DRIFT_METRICS", "PSI_BANDS", "RELATIVE_BANDS", "DriftReport", "drift_report", "psi"]

#: PSI at or above these is moderate / significant drift.
PSI_BANDS = (0.1, 0.25)
#: A relative change at or above these is moderate / significant drift.
RELATIVE_BANDS = (0.10, 0.25)
#: Every metric, its kind, in report order.
DRIFT_METRICS = {
    "input_length": "input",
    "language": "input",
    "category": "input",
    "json_invalid": "output",
    "refusal": "output",
    "null_rate": "output",
    "judge": "output",
    "cost_per_query": "output",
    "latency_p95": "output",
    "thumbs_down": "feedback",
    "implicit": "feedback",
}


@dataclass(frozen=True)
class DriftReport:
    """Per window, task and metric: reference and current values, effect, p-values and a verdict.

    Attributes:
        table: One row per (window, task, metric): ``window_start``, ``window_end``, ``task``,
            ``kind``, ``metric``, ``reference``, ``current``, ``effect``, ``effect_kind``
            (``psi`` or ``relative``), ``test``, ``p_value``, ``p_adjusted``, ``n_reference``,
            ``n_current``, ``verdict``.
        reference: The reference period, in words.
        window: The window length (a pandas frequency such as ``"1D"``).
        alpha: The level the adjusted p-values are held to.
        adjust: ``"holm"`` or ``"bh"``.
    """

    table: pd.DataFrame
    reference: str
    window: str
    alpha: float
    adjust: str
    notes: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> pd.DataFrame:
        """The rows whose verdict is moderate or significant."""
        return self.table[self.table["verdict"].isin(["moderate", "significant"])].reset_index(drop=True)

    def verdicts(self) -> pd.DataFrame:
        """Verdicts as a grid: a row per window, a column per (task, metric)."""
        return self.table.pivot_table(
            index="window_start", columns=["task", "metric"], values="verdict", aggfunc="first", sort=False
        )

    def drifted_windows(self, *, kinds: Sequence[str] = ("input", "output", "feedback")) -> list[pd.Timestamp]:
        """Starts of the windows with at least one flagged metric of these kinds."""
        flagged = self.flagged[self.flagged["kind"].isin(kinds)]
        return sorted(set(flagged["window_start"]))

    def summary(self) -> str:
        """One line per flagged metric, and how many tests the report made."""
        lines = [
            f"Drift against {self.reference}, {self.window} windows: {len(self.flagged)} of "
            f"{int(self.table['p_value'].notna().sum())} "
            f"tests flagged ({self.adjust.upper()}-adjusted p < {self.alpha}; significant: PSI >= {PSI_BANDS[1]} or "
            f"a change >= {RELATIVE_BANDS[1]:.0%}, moderate: PSI >= {PSI_BANDS[0]} or >= {RELATIVE_BANDS[0]:.0%})."
        ]
        for row in self.flagged.itertuples():
            effect = f"PSI {row.effect:.2f}" if row.effect_kind == "psi" else f"{row.effect:+.0%}"
            lines.append(
                f"  {row.window_start:%Y-%m-%d} {row.task} {row.metric}: {row.verdict} "
                f"({_show(row.reference)} -> {_show(row.current)}, {effect}, p_adj {row.p_adjusted:.2g})"
            )
        return "\n".join([*lines, *self.notes])

    def __repr__(self) -> str:
        return self.summary()


def _show(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _verdict(effect: float, kind: str, p_adjusted: float, alpha: float) -> str:
    if not np.isfinite(p_adjusted) or p_adjusted >= alpha:
        return "stable"
    moderate, significant = PSI_BANDS if kind == "psi" else RELATIVE_BANDS
    size = abs(effect)
    return "significant" if size >= significant else "moderate" if size >= moderate else "stable"


def _reference_frame(log: ProductionLog, reference: Any) -> tuple[pd.DataFrame, str, pd.Timestamp | None]:
    """The reference rows, their description, and where the judged windows start."""
    frame = log.frame
    if isinstance(reference, ProductionLog):
        return reference.frame, f"{reference.source} ({len(reference)} interactions)", None
    if isinstance(reference, Dataset | pd.DataFrame):
        return (*_golden_reference(reference.frame if isinstance(reference, Dataset) else reference), None)
    if reference is None:
        start = frame["timestamp"].min().normalize()
        reference = (start, start + pd.Timedelta(days=7))
    if not (isinstance(reference, tuple | list) and len(reference) == 2):
        raise UsageError(
            f"reference={reference!r}: give (start, end) dates, a ProductionLog, a golden set or None (the first week)"
        )
    start, end = (pd.Timestamp(t) for t in reference)
    start, end = (t.tz_localize("UTC") if t.tzinfo is None else t for t in (start, end))
    chosen = frame[(frame["timestamp"] >= start) & (frame["timestamp"] < end)]
    if chosen.empty:
        raise UsageError(f"reference {start:%Y-%m-%d} .. {end:%Y-%m-%d} holds no interactions of {log.source!r}")
    return chosen, f"{start:%Y-%m-%d} .. {end:%Y-%m-%d} ({len(chosen)} interactions)", end


def _golden_reference(golden: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """A golden set as a reference for the input metrics: its text, language and expected category."""
    text_column = next((c for c in ("text", "question", "input") if c in golden), None)
    if text_column is None:
        raise UsageError(
            f"a golden set as the reference needs a 'text', 'question' or 'input' column; it has {list(golden.columns)}"
        )
    texts = golden[text_column].fillna("").astype(str)
    expected = golden["expected"] if "expected" in golden else pd.Series([None] * len(golden), index=golden.index)
    reference = pd.DataFrame(
        {
            "input_text": texts,
            "input_chars": texts.str.len(),
            "lang": texts.map(language_of),
            "category": [e.get("category") if isinstance(e, dict) else None for e in expected],
        }
    )
    return reference, f"a golden set ({len(reference)} cases; input metrics only)"


def drift_report(
    log: ProductionLog,
    *,
    reference: tuple[Any, Any] | ProductionLog | Dataset | pd.DataFrame | None = None,
    window: str = "1D",
    metrics: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    alpha: float = 0.05,
    adjust: Literal["holm", "bh"] = "holm",
    min_n: int = 20,
) -> DriftReport:
    """Compare each time window of ``log`` with a reference, per task and metric (see the module docstring).

    Args:
        log: The production log.
        reference: ``(start, end)`` dates (end excluded), another log (a good period, say), a
            golden set (a :class:`~workbench.core.dataset.Dataset` or DataFrame with a ``text`` or
            ``question`` column: the input metrics only, against every task asked), or ``None``:
            the log's first 7 days. With dates, only windows after ``end`` are judged.
        window: A pandas frequency: ``"1D"``, ``"7D"``, ``"12h"``...
        metrics: Which of :data:`DRIFT_METRICS` (all by default; a metric a task lacks is skipped).
        tasks: Which tasks (all by default).
        alpha: The level for the adjusted p-values.
        adjust: ``"holm"`` (family-wise error rate) or ``"bh"`` (false discovery rate).
        min_n: Fewer rows than this in a window (or the reference) -> ``too few``, no test.

    Returns:
        A :class:`DriftReport`.
    """
    chosen = list(metrics or DRIFT_METRICS)
    unknown = sorted(set(chosen) - set(DRIFT_METRICS))
    if unknown:
        raise UsageError(f"unknown drift metric(s) {unknown}; choose from {list(DRIFT_METRICS)}")
    ref, described, after = _reference_frame(log, reference)
    frame = log.frame if after is None else log.frame[log.frame["timestamp"] >= after]
    if frame.empty:
        raise UsageError(f"no interactions after the reference {described}: nothing to judge")
    # Windows are counted from the reference's end (or the log's first day), in naive UTC:
    # pandas ignores `origin` for day frequencies on time-zone-aware stamps.
    naive = frame.assign(utc=frame["timestamp"].dt.tz_convert(None))
    origin = after.tz_convert(None) if after is not None else "start_day"
    rows: list[dict[str, Any] | None] = []
    for task in tasks or sorted(set(log.frame["task"])):
        ref_task = ref[ref["task"] == task] if "task" in ref else ref  # a golden set stands for every task
        cur_task = naive[naive["task"] == task]
        for start, cur in cur_task.groupby(pd.Grouper(key="utc", freq=window, origin=origin)):
            for metric in chosen:
                rows.append(_row(metric, task, pd.Timestamp(start).tz_localize("UTC"), window, ref_task, cur, min_n))
    table = pd.DataFrame([r for r in rows if r is not None])
    if table.empty:
        raise UsageError("no metric could be measured: check the tasks and metrics asked for")
    tested = table["p_value"].notna()
    table["p_adjusted"] = np.nan
    table.loc[tested, "p_adjusted"] = adjust_pvalues(table.loc[tested, "p_value"].to_numpy(), adjust)
    table["verdict"] = [
        "too few" if pd.isna(p) else _verdict(e, k, p, alpha)
        for e, k, p in zip(table["effect"], table["effect_kind"], table["p_adjusted"], strict=True)
    ]
    notes = [f"{int(tested.sum())} tests adjusted together ({adjust})."]
    return DriftReport(table=table, reference=described, window=window, alpha=alpha, adjust=adjust, notes=notes)


def _row(
    metric: str, task: str, start: pd.Timestamp, window: str, ref: pd.DataFrame, cur: pd.DataFrame, min_n: int
) -> dict[str, Any] | None:
    column = COLUMNS[metric]
    if column not in ref or ref[column].isna().all() or cur[column].isna().all():
        return None  # this task (or the reference) does not have the metric: support answers are not JSON
    base = {
        "window_start": start,
        "window_end": start + pd.tseries.frequencies.to_offset(window),
        "task": task,
        "kind": DRIFT_METRICS[metric],
        "metric": metric,
    }
    if len(cur) < min_n or len(ref) < min_n:
        return {**base, "n_reference": len(ref), "n_current": len(cur), "p_value": np.nan, "effect": np.nan}
    result = MEASURES[metric](ref, cur)
    if result is None:
        return None
    if min(result.n_reference, result.n_current) < min_n:
        return {
            **base,
            "n_reference": result.n_reference,
            "n_current": result.n_current,
            "p_value": np.nan,
            "effect": np.nan,
        }
    return {**base, **result.__dict__}
