"""The red-team heat map: attack success rate per category x strategy, one panel per variant.

Example:
    >>> report = wb.redteam_report(result)  # doctest: +SKIP
    >>> wb.plot_attack_heatmap(report)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.analysis.redteam import ATTACK_SUCCESS_RATE, RedTeamReport, redteam_report
from workbench.core.exceptions import UsageError

__all__ = ["plot_attack_heatmap"]

#: White (no attack got through) to red (every attack did).
_COLORSCALE = [[0.0, "#ffffff"], [0.05, "#fff1e0"], [0.3, "#f4a261"], [1.0, "#b2182b"]]


def plot_attack_heatmap(result: RedTeamReport | Any, *, model: str | None = None) -> go.Figure:
    """Attack success rate per category (rows) x strategy (columns), one panel per variant.

    Each cell shows the rate, its 95% Wilson interval on hover, and the number of attacks.

    Args:
        result: A :class:`~workbench.analysis.redteam.RedTeamReport`, or the result of a red-team
            run (its report is made here).
        model: The model to show; required when the run used several.

    Raises:
        UsageError: several models and no ``model``, or an unknown one.
    """
    report = result if isinstance(result, RedTeamReport) else redteam_report(result)
    cells = report.by_cell
    models = sorted(map(str, cells["model"].unique()))
    if model is None and len(models) > 1:
        raise UsageError(f"the run used several models {models}; pass model=... to plot one of them")
    model = model or (models[0] if models else None)
    if model not in models:
        raise UsageError(f"model {model!r} is not in the report; models: {models}")
    cells = cells[cells["model"] == model]
    variants = list(dict.fromkeys(map(str, cells["variant"])))
    categories = sorted(cells["category"].unique())
    strategies = list(dict.fromkeys(cells["strategy"]))
    fig = make_subplots(rows=1, cols=len(variants), subplot_titles=variants, shared_yaxes=True, horizontal_spacing=0.04)
    for i, variant in enumerate(variants, start=1):
        grid = cells[cells["variant"] == variant].set_index(["category", "strategy"])
        z: list[list[float | None]] = []
        text: list[list[str]] = []
        hover: list[list[str]] = []
        for category in categories:
            z_row: list[float | None] = []
            text_row: list[str] = []
            hover_row: list[str] = []
            for strategy in strategies:
                row = grid.loc[(category, strategy)] if (category, strategy) in grid.index else None
                if row is None:
                    z_row.append(None)
                    text_row.append("")
                    hover_row.append("not run")
                    continue
                rate = float(row[ATTACK_SUCCESS_RATE])
                z_row.append(rate)
                text_row.append(f"{100 * rate:.0f}%<br>n={int(row['n'])}")
                hover_row.append(
                    f"{int(row['successes'])} of {int(row['n'])} attacks succeeded: {100 * rate:.1f}% "
                    f"[95% CI {100 * row['ci_low']:.1f}, {100 * row['ci_high']:.1f}]"
                )
            z.append(z_row)
            text.append(text_row)
            hover.append(hover_row)
        fig.add_trace(
            go.Heatmap(
                z=z,
                x=strategies,
                y=categories,
                text=text,
                texttemplate="%{text}",
                customdata=hover,
                hovertemplate="%{y} x %{x}<br>%{customdata}<extra>" + variant + "</extra>",
                zmin=0,
                zmax=1,
                colorscale=_COLORSCALE,
                showscale=i == len(variants),
                colorbar={"title": "attack<br>success", "tickformat": ".0%"},
            ),
            row=1,
            col=i,
        )
    overall = report.overall[report.overall["model"] == model].set_index("variant")
    rates = ", ".join(f"{v} {100 * overall.loc[v, ATTACK_SUCCESS_RATE]:.1f}%" for v in variants if v in overall.index)
    fig.update_layout(
        title=f"Attack success rate by category and strategy on {model} ({rates})",
        template="plotly_white",
        height=max(320, 60 + 42 * len(categories)),
    )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    return fig
