"""Charts of production traffic: the drift verdict grid, one metric's drift over time, feedback rates.

Example:
    >>> wb.plot_drift(report)  # doctest: +SKIP
    >>> wb.plot_drift_metric(report, "language")  # doctest: +SKIP
    >>> wb.plot_feedback(log)  # doctest: +SKIP
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from workbench.analysis.drift import PSI_BANDS, RELATIVE_BANDS, DriftReport
from workbench.core.exceptions import UsageError
from workbench.core.production_log import ProductionLog

__all__ = ["plot_drift", "plot_drift_metric", "plot_feedback"]

_LEVEL = {"too few": -1, "stable": 0, "moderate": 1, "significant": 2}
_COLOURS = {"too few": "#e5e7eb", "stable": "#d1fae5", "moderate": "#fcd34d", "significant": "#dc2626"}


def plot_drift(report: DriftReport) -> go.Figure:
    """A grid of verdicts: a row per task and metric, a column per window (grey: too few rows)."""
    table = report.table.assign(
        row=report.table["task"] + " · " + report.table["metric"],
        day=report.table["window_start"].dt.strftime("%Y-%m-%d"),
    )
    rows = list(dict.fromkeys(table["row"]))
    days = sorted(set(table["day"]))
    level = table.pivot_table(index="row", columns="day", values="verdict", aggfunc="first").reindex(
        index=rows, columns=days
    )
    z = level.apply(lambda col: col.map(lambda v: _LEVEL.get(v, -1) if isinstance(v, str) else None))
    text = table.pivot_table(index="row", columns="day", values="p_adjusted", aggfunc="first").reindex(
        index=rows, columns=days
    )
    hover = level.astype(str) + "<br>p_adj " + text.map(lambda p: "n/a" if pd.isna(p) else f"{p:.2g}")
    # A stepped colour scale: each verdict one flat band of z in [-1.5, 2.5].
    scale = [[edge, _COLOURS[v]] for i, v in enumerate(_LEVEL) for edge in (i / 4, (i + 1) / 4)]
    figure = go.Figure(
        go.Heatmap(
            z=z.to_numpy(dtype=float),
            x=days,
            y=rows,
            zmin=-1.5,
            zmax=2.5,
            colorscale=scale,
            customdata=hover.to_numpy(),
            hovertemplate="%{y}<br>%{x}: %{customdata}<extra></extra>",
            xgap=2,
            ygap=2,
            colorbar={"tickvals": [-1, 0, 1, 2], "ticktext": list(_LEVEL), "title": "verdict"},
        )
    )
    figure.update_layout(
        title=f"Drift per {report.window} window against {report.reference}",
        yaxis={"autorange": "reversed"},
        height=140 + 22 * len(rows),
        margin={"l": 200},
    )
    return figure


def plot_drift_metric(report: DriftReport, metric: str, *, task: str | None = None) -> go.Figure:
    """One metric's effect (PSI, or the relative change) per window, the moderate / significant bars dashed."""
    table = report.table[report.table["metric"] == metric]
    if task is not None:
        table = table[table["task"] == task]
    if table.empty:
        raise UsageError(f"drift report has no metric {metric!r}{f' for task {task!r}' if task else ''}")
    figure = go.Figure()
    for name, group in table.groupby("task", sort=True):
        figure.add_scatter(
            x=group["window_start"],
            y=group["effect"],
            mode="lines+markers",
            name=str(name),
            marker={"color": [_COLOURS.get(v, "#9ca3af") for v in group["verdict"]], "size": 10, "line": {"width": 1}},
            customdata=group[["reference", "current", "verdict"]].astype(str).to_numpy(),
            hovertemplate="%{x|%Y-%m-%d}: %{customdata[0]} -> %{customdata[1]} (%{customdata[2]})<extra></extra>",
        )
    psi_kind = (table["effect_kind"] == "psi").any()
    bands = PSI_BANDS if psi_kind else RELATIVE_BANDS
    for bar, label in zip(bands, ("moderate", "significant"), strict=True):
        figure.add_hline(y=bar, line_dash="dash", line_color="#6b7280", annotation_text=label)
        if not psi_kind:
            figure.add_hline(y=-bar, line_dash="dash", line_color="#6b7280")
    figure.update_layout(
        title=f"{metric}: {'PSI' if psi_kind else 'relative change'} against the reference, per window",
        yaxis_title="PSI" if psi_kind else "change",
        yaxis_tickformat=None if psi_kind else "+.0%",
    )
    return figure


def plot_feedback(log: ProductionLog, *, freq: str = "1D") -> go.Figure:
    """Per task and window: the share of interactions with a thumbs-down, any explicit and any implicit feedback."""
    frame = log.frame.assign(utc=log.frame["timestamp"].dt.tz_convert(None))
    rates = (
        frame.groupby(["task", pd.Grouper(key="utc", freq=freq)])[["thumb_down", "explicit", "implicit"]]
        .mean()
        .reset_index()
    )
    figure = go.Figure()
    dashes = {"thumb_down": "solid", "explicit": "dot", "implicit": "dash"}
    for (task, column), group in rates.melt(["task", "utc"]).groupby(["task", "variable"], sort=True):
        figure.add_scatter(
            x=group["utc"], y=group["value"], mode="lines", name=f"{task}: {column}", line={"dash": dashes[str(column)]}
        )
    figure.update_layout(title=f"Feedback per {freq}", yaxis_title="share of interactions", yaxis_tickformat=".0%")
    return figure
