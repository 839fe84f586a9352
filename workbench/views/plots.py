"""Plotly charts of an experiment result. Each function returns a figure.

Imported in a notebook kernel, this module installs :func:`~workbench.views.plotly_html.use_notebook_renderer`:
figures render in JupyterLab and in the kernel's static HTML reports, with plotly.js once per notebook.
"""

from __future__ import annotations

import sys

import numpy as np
import plotly.graph_objects as go

from workbench.analysis import stats
from workbench.core import schema as col
from workbench.core.result import RunResult
from workbench.views.plotly_html import use_notebook_renderer

if "ipykernel" in sys.modules:  # only inside a notebook kernel (papermill included)
    use_notebook_renderer()


def plot_scores(result: RunResult, scorer: str | None = None, *, confidence: float = 0.95) -> go.Figure:
    """Mean score per variant (one bar group per model) with 95% intervals over cases.

    Repeats of a case are averaged first, so a case counts once. Pass/fail scores
    (every case 0 or 1) get a Wilson score interval, which stays within [0, 1] and
    is not zero-width at 0% or 100%; other scores a percentile bootstrap over cases
    (as :func:`~workbench.views.comparison_plots.plot_means`). The hover text names
    the interval. These are per-variant intervals, a visual guide: use
    ``result.compare(...)`` for the paired test.

    Example:
        >>> wb.plot_scores(result)  # doctest: +SKIP
    """
    metric = scorer or result.scorer_names[0]
    column = col.score_column(metric)
    fig = go.Figure()
    per_case = _per_case_scores(result, column)
    proportion = all(bool(np.all((v >= 0) & (v <= 1))) for groups in per_case.values() for v in groups.values())
    for model, by_variant in per_case.items():
        names, means, intervals = [], [], []
        for variant, values in by_variant.items():
            names.append(variant)
            means.append(float(values.mean()) if len(values) else np.nan)
            intervals.append(_interval(values, confidence))
        low = [m - i.low if np.isfinite(i.low) else 0.0 for m, i in zip(means, intervals, strict=True)]
        high = [i.high - m if np.isfinite(i.high) else 0.0 for m, i in zip(means, intervals, strict=True)]
        value = "%{y:.1%}" if proportion else "%{y:.3g}"
        bound = ".1%" if proportion else ".3g"
        fig.add_bar(
            x=names,
            y=means,
            name=str(model),
            error_y={"type": "data", "symmetric": False, "array": high, "arrayminus": low},
            text=[(f"{m:.1%}" if proportion else f"{m:.3g}") if np.isfinite(m) else "" for m in means],
            textposition="outside",
            customdata=[[_describe(i, bound), i.n_units] for i in intervals],
            hovertemplate=f"%{{x}} on %{{fullData.name}}<br>{metric}: {value} over %{{customdata[1]}} cases"
            "<br>%{customdata[0]}<extra></extra>",
        )
    fig.update_layout(
        title=f"{result.name}: mean {metric} per variant ({confidence:.0%} intervals over cases)",
        yaxis={"title": metric, "range": [0, 1.1], "tickformat": ".0%"} if proportion else {"title": metric},
        barmode="group",
        template="plotly_white",
    )
    return fig


def _per_case_scores(result: RunResult, column: str) -> dict[str, dict[str, np.ndarray]]:
    """model -> variant -> each case's score (its repeats averaged), scored cases only.

    One variant x model is read at a time, and only the score (and, with repeats, the case
    id): at 100,000 cases x 2 variants, grouping every row by case id at once held 60 MB.
    """
    repeated = result.experiment.repeats > 1
    wanted = [col.CASE_ID, column] if repeated else [column]
    out: dict[str, dict[str, np.ndarray]] = {}
    for model in map(str, result.experiment.models):
        for variant in (v.name for v in result.experiment.variants):
            rows = result.read_cases(wanted, where={col.MODEL: model, col.VARIANT: variant})
            if rows.empty:
                continue
            scores = rows.groupby(col.CASE_ID)[column].mean() if repeated else rows[column]
            out.setdefault(model, {})[variant] = scores.dropna().to_numpy(dtype=float)
    return out


def _interval(per_case: np.ndarray, confidence: float) -> stats.ConfidenceInterval:
    """Wilson for pass/fail cases, else a percentile bootstrap of the mean over cases (NaN under 2 cases)."""
    n = len(per_case)
    if n and np.isin(per_case, (0.0, 1.0)).all():
        return stats.wilson_ci(int(per_case.sum()), n, confidence=confidence)
    if n < 2:
        return stats.ConfidenceInterval(np.nan, np.nan, np.nan, confidence, n, "percentile bootstrap")
    return stats.bootstrap_mean_ci(per_case, confidence=confidence)


def _describe(ci: stats.ConfidenceInterval, number: str) -> str:
    """The interval as the hover text says it, e.g. '95% Wilson score interval over cases: 52.9% to 97.8%'."""
    name = f"{ci.confidence:.0%} {ci.method}"
    if not (np.isfinite(ci.low) and np.isfinite(ci.high)):
        return f"{name}: needs 2+ cases"
    return f"{name} over cases: {ci.low:{number}} to {ci.high:{number}}"
