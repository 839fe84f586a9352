"""Plotly figures for a :class:`~workbench.analysis.compare.Comparison`.

Each function returns a ``go.Figure`` and displays nothing: show it with ``fig.show()`` or
by leaving it last in a notebook cell. Pass/fail scorers are drawn in percent, continuous
scorers in their own units, on separate panels so that scales never mix.
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.analysis import stats
from workbench.analysis.compare import Comparison, ScorerComparison

__all__ = ["plot_diff", "plot_flips", "plot_means"]

_BASELINE, _CANDIDATE = "#8c8c8c", "#1f77b4"
_BETTER, _WORSE, _NONE = "#1a7f37", "#cf222e", "#57606a"


def _scale(row: ScorerComparison) -> float:
    return 100.0 if row.kind == "binary" else 1.0


def _scored(comparison: Comparison) -> list[ScorerComparison]:
    return [r for r in comparison.results if r.n_cases > 0]


def plot_means(comparison: Comparison) -> go.Figure:
    """Mean score of each variant per scorer, with bootstrap CIs over cases.

    Each variant's interval resamples cases (per-case means when repeated) at the
    comparison's confidence level and seed 0. These are per-variant intervals: overlapping
    bars do not mean "no difference"; :func:`plot_diff` shows the paired test.

    Example:
        >>> plot_means(cmp).show()  # doctest: +SKIP
    """
    rows = _scored(comparison)
    fig = make_subplots(rows=1, cols=max(1, len(rows)), subplot_titles=[r.scorer for r in rows])
    for col, row in enumerate(rows, start=1):
        per_case = comparison.case_scores(row.scorer)
        scale = _scale(row)
        for side, label, color in (
            ("baseline", comparison.baseline, _BASELINE),
            ("candidate", comparison.candidate, _CANDIDATE),
        ):
            ci = stats.bootstrap_mean_ci(per_case[side], confidence=comparison.confidence)
            fig.add_trace(
                go.Bar(
                    x=[label],
                    y=[ci.estimate * scale],
                    error_y=dict(
                        type="data",
                        symmetric=False,
                        array=[(ci.high - ci.estimate) * scale],
                        arrayminus=[(ci.estimate - ci.low) * scale],
                    ),
                    marker_color=color,
                    name=label,
                    legendgroup=side,
                    showlegend=col == 1,
                    hovertemplate=f"{label}<br>{row.scorer}: %{{y:.3g}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
        fig.update_yaxes(title_text="%" if row.kind == "binary" else "mean", row=1, col=col)
    conf = f"{comparison.confidence:.0%}"
    fig.update_layout(title=f"Mean score per variant ({conf} CI over cases)", barmode="group")
    return fig


def plot_diff(comparison: Comparison) -> go.Figure:
    """Paired difference (candidate minus baseline) with its CI, one row per scorer.

    Green: significantly better; red: significantly worse; grey: no detectable difference
    (by the comparison's adjusted p-values).

    Example:
        >>> plot_diff(cmp).show()  # doctest: +SKIP
    """
    rows = _scored(comparison)
    kinds = [k for k in ("binary", "continuous") if any(r.kind == k for r in rows)] or ["binary"]
    fig = make_subplots(rows=len(kinds), cols=1, vertical_spacing=0.15)
    for i, kind in enumerate(kinds, start=1):
        panel = [r for r in rows if r.kind == kind]
        colors = [{"better": _BETTER, "worse": _WORSE}.get(r.direction, _NONE) for r in panel]
        scale = 100.0 if kind == "binary" else 1.0
        fig.add_trace(
            go.Scatter(
                x=[r.diff * scale for r in panel],
                y=[r.scorer for r in panel],
                mode="markers",
                marker=dict(color=colors, size=11),
                error_x=dict(
                    type="data",
                    symmetric=False,
                    array=[(r.ci_high - r.diff) * scale for r in panel],
                    arrayminus=[(r.diff - r.ci_low) * scale for r in panel],
                ),
                customdata=[[r.p_adjusted, r.n_cases] for r in panel],
                hovertemplate="%{y}: %{x:+.3g}<br>p = %{customdata[0]:.2g}, n = %{customdata[1]}<extra></extra>",
                showlegend=False,
            ),
            row=i,
            col=1,
        )
        fig.add_vline(x=0, line_dash="dash", line_color="black", row=i, col=1)
        unit = "points (pass rate)" if kind == "binary" else "score units"
        fig.update_xaxes(title_text=f"{comparison.candidate} - {comparison.baseline}, {unit}", row=i, col=1)
    conf = f"{comparison.confidence:.0%}"
    fig.update_layout(title=f"Paired difference with {conf} CI", height=220 + 160 * len(kinds))
    return fig


def plot_flips(comparison: Comparison) -> go.Figure:
    """Cases that went pass->fail (regressions) and fail->pass (fixes), per pass/fail scorer.

    Example:
        >>> plot_flips(cmp).show()  # doctest: +SKIP
    """
    rows = [r for r in _scored(comparison) if r.kind == "binary"]
    names = [r.scorer for r in rows]
    fig = go.Figure()
    fig.add_bar(x=names, y=[r.n_regressed for r in rows], name="pass -> fail", marker_color=_WORSE)
    fig.add_bar(x=names, y=[r.n_fixed for r in rows], name="fail -> pass", marker_color=_BETTER)
    fig.update_layout(
        title=f"Flipped cases: {comparison.baseline} -> {comparison.candidate}",
        barmode="group",
        yaxis_title="cases",
    )
    return fig
