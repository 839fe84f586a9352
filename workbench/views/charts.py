"""Plotly charts of an experiment result: cost vs quality, latency, confusion matrices.

Every function returns a ``go.Figure`` and displays nothing; leave it last in a
notebook cell or call ``fig.show()``. Importing :mod:`workbench.views.plots` (done here)
installs the renderer that keeps figures in nbconvert's HTML reports.
:func:`charts_for` gathers every chart that applies to a result; the MLflow tracker
logs them as self-contained HTML artifacts of the parent run.

Example:
    >>> import workbench as wb
    >>> figures = wb.charts_for(result)  # doctest: +SKIP
    >>> figures["cost_quality"]  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from workbench.analysis.pareto import cheapest_meeting, pareto_frontier
from workbench.core import schema as col
from workbench.core.exceptions import UsageError
from workbench.core.result import RunResult
from workbench.engine.summary import expectations
from workbench.views.plots import plot_scores
from workbench.views.redteam import plot_attack_heatmap

__all__ = ["charts_for", "confusion_matrix", "plot_confusion", "plot_cost_quality", "plot_latency"]

#: The summary column of each cost measure, and its fallback when cost is unknown or zero.
_TOKEN_FALLBACK = {"cost_per_success": "tokens_per_success", "cost_usd": "tokens_total"}
_AXIS_TITLES = {
    "cost_per_success": "cost per successful case (USD)",
    "cost_usd": "total cost (USD)",
    "tokens_per_success": "tokens per successful case",
    "tokens_total": "total tokens",
}
_FRONTIER, _CHOSEN, _BAR = "#1a7f37", "#d4a72c", "#57606a"


def _cost_axis(summary: pd.DataFrame, cost: str) -> tuple[str, str]:
    """The summary column to plot on x and its axis title, falling back to tokens."""
    if cost not in _TOKEN_FALLBACK:
        raise UsageError(f"cost must be one of {sorted(_TOKEN_FALLBACK)}, got {cost!r}")
    fallback = _TOKEN_FALLBACK[cost]
    unpriced = sorted(summary.loc[summary["cost_usd"].isna(), "model"].astype(str).unique())
    if unpriced:
        # Dollars for some models and nothing for others cannot share an axis: tokens for all.
        why = f"no price for {', '.join(map(repr, unpriced))}"
    elif (summary["cost_usd"] == 0).all():
        why = "every call was free"
    else:
        return cost, _AXIS_TITLES[cost]
    return fallback, f"{_AXIS_TITLES[fallback]} ({why}: tokens instead of USD)"


def _labels(group: pd.DataFrame) -> list[str]:
    """Variant names as point labels; points at the same spot share one label instead of overprinting."""
    labels: list[str] = []
    first: dict[tuple[float, float], int] = {}
    for variant, x, y in zip(group["variant"], group["cost"], group["score"], strict=True):
        if (x, y) in first:
            labels[first[(x, y)]] += f" / {variant}"
            labels.append("")
        else:
            first[(x, y)] = len(labels)
            labels.append(str(variant))
    return labels


def _is_fraction(values: pd.Series) -> bool:
    known = values.dropna()
    return bool(len(known)) and bool(((known >= 0) & (known <= 1)).all())


def plot_cost_quality(
    result: RunResult,
    scorer: str | None = None,
    *,
    quality_bar: float | None = None,
    cost: str = "cost_per_success",
) -> go.Figure:
    """Cost against mean score, one point per variant x model, with the Pareto frontier.

    The frontier (points nothing beats on both cost and score) is drawn as a
    step line. With ``quality_bar``, the cheapest point reaching it is starred
    and named. When a model has no price (NaN cost) or every call was free (the
    embedded local model), x falls back to tokens (per success, or in total for
    ``cost="cost_usd"``) and the axis title says why. Points that cannot be
    placed (no scored or no successful case) are listed under the chart.

    Args:
        result: The experiment result.
        scorer: Score on y; the first scorer by default.
        quality_bar: Minimum mean score to highlight the cheapest point reaching it.
        cost: ``"cost_per_success"`` (default) or ``"cost_usd"`` (the whole run).

    Example:
        >>> plot_cost_quality(result, quality_bar=0.8)  # doctest: +SKIP
    """
    metric = scorer or result.scorer_names[0]
    summary = result.summary
    x_column, x_title = _cost_axis(summary, cost)
    points = pd.DataFrame(
        {
            "variant": summary["variant"].astype(str),
            "model": summary["model"].astype(str),
            "score": summary[metric].astype(float),
            "cost": summary[x_column].astype(float),
        }
    )
    dollars = x_column.startswith("cost")
    fmt = (lambda v: f"${v:.4g}") if dollars else (lambda v: f"{v:,.0f} tokens")
    fig = go.Figure()
    for model, group in points.groupby("model", sort=False):
        fig.add_scatter(
            x=group["cost"],
            y=group["score"],
            mode="markers+text",
            name=str(model),
            text=_labels(group),
            customdata=group["variant"],
            textposition="top center",
            cliponaxis=False,
            marker={"size": 11},
            hovertemplate=f"%{{customdata}} @ {model}<br>{metric}: %{{y:.3g}}<br>x: %{{x:.4g}}<extra></extra>",
        )
    frontier = pareto_frontier(points, "cost", "score")
    fig.add_scatter(
        x=frontier["cost"],
        y=frontier["score"],
        mode="lines+markers",
        name="Pareto frontier",
        line={"shape": "hv", "dash": "dash", "color": _FRONTIER},
        marker={"size": 17, "symbol": "circle-open", "color": _FRONTIER, "line": {"width": 2}},
        hoverinfo="skip",
    )
    if quality_bar is not None:
        fig.add_hline(y=quality_bar, line_dash="dot", line_color=_BAR)
        chosen = cheapest_meeting(points, quality_bar)
        bar_text = f"{quality_bar:.0%}" if _is_fraction(points["score"]) else f"{quality_bar:g}"
        if chosen is None:
            fig.add_annotation(
                text=f"no variant x model reaches the bar of {bar_text}",
                xref="paper",
                yref="y",
                x=0.5,
                y=quality_bar,
                showarrow=False,
                yshift=10,
            )
        else:
            label = f"{chosen['variant']} @ {chosen['model']}"
            left = chosen["cost"] <= points["cost"].max() / 2
            fig.add_scatter(
                x=[chosen["cost"]],
                y=[chosen["score"]],
                mode="markers",
                name=f"cheapest >= {bar_text}",
                marker={"size": 22, "symbol": "star", "color": _CHOSEN, "line": {"width": 1, "color": "black"}},
                hovertemplate=f"{label}<extra></extra>",
            )
            fig.add_annotation(
                x=chosen["cost"],
                y=chosen["score"],
                text=f"cheapest >= {bar_text}: {label} ({fmt(chosen['cost'])})",
                showarrow=True,
                arrowhead=2,
                # Point the label into the plot so it is never cut at the edge.
                **({"ax": 40, "xanchor": "left"} if left else {"ax": -40, "xanchor": "right"}),
                ay=40,
            )
    missing = points[points["score"].isna() | points["cost"].isna()]
    if len(missing):
        names = ", ".join(f"{r.variant} @ {r.model}" for r in missing.itertuples())
        fig.add_annotation(
            text=f"not shown (no scored or no successful case): {names}",
            xref="paper",
            yref="paper",
            x=0,
            y=-0.22,
            showarrow=False,
            align="left",
        )
    top = float(points["cost"].max()) if points["cost"].notna().any() else 0.0
    y_axis: dict[str, Any] = {"title": f"mean {metric}"}
    if _is_fraction(points["score"]):
        y_axis.update(tickformat=".0%", range=[-0.05, 1.1])
    fig.update_layout(
        title=f"{result.name}: cost vs {metric} per variant x model",
        xaxis={"title": x_title, "range": [0, 1.15 * top] if top > 0 else None, "rangemode": "tozero"},
        yaxis=y_axis,
        template="plotly_white",
    )
    return fig


#: Above this many calls of a variant, the latency chart draws min/quartiles/max boxes without points.
MAX_POINTS = 5_000


def plot_latency(result: RunResult) -> go.Figure:
    """Latency per call: one box (with every call as a point) per model x variant, p50 and p95 marked.

    Above ``MAX_POINTS`` calls of a variant its boxes are precomputed (whiskers
    at min and max) and the points are left out, so the chart stays small.

    The x axis groups variants under their model; colours are variants. The p50
    and p95 marks are the summary's ``latency_p50_s`` / ``latency_p95_s``.
    Cache hits keep the latency of the call that filled the cache.

    Example:
        >>> plot_latency(result)  # doctest: +SKIP
    """
    summary = result.summary
    fig = go.Figure()
    models = [str(m) for m in result.experiment.models]
    for variant in (v.name for v in result.experiment.variants):
        calls = int(summary.loc[summary["variant"] == variant, "n"].sum()) if "n" in summary else 0
        if calls > MAX_POINTS:
            # Above this many calls a point per call makes a page of megabytes: precomputed boxes,
            # one variant x model read at a time.
            shown, quartiles = [], []
            for model in models:
                rows = result.read_cases([col.LATENCY_S], where={col.VARIANT: variant, col.MODEL: model})
                latency = rows[col.LATENCY_S].dropna().to_numpy(float)
                if latency.size:
                    shown.append(model)
                    quartiles.append(np.quantile(latency, [0.0, 0.25, 0.5, 0.75, 1.0]))
            if not shown:
                continue
            q = np.array(quartiles)
            fig.add_box(
                x=[shown, [variant] * len(shown)],
                q1=q[:, 1].tolist(),
                median=q[:, 2].tolist(),
                q3=q[:, 3].tolist(),
                lowerfence=q[:, 0].tolist(),
                upperfence=q[:, 4].tolist(),
                name=variant,
                line={"width": 1},
            )
            continue
        group = result.read_cases([col.MODEL, col.LATENCY_S], where={col.VARIANT: variant})
        if group.empty:
            continue
        fig.add_box(
            x=[group["model"].astype(str).tolist(), [variant] * len(group)],
            y=group["latency_s"],
            name=variant,
            boxpoints="all",
            jitter=0.4,
            pointpos=0,
            marker={"size": 4, "opacity": 0.5},
            line={"width": 1},
        )
    marks = [summary["model"].astype(str).tolist(), summary["variant"].astype(str).tolist()]
    for label, column, color in (("p50", "latency_p50_s", "black"), ("p95", "latency_p95_s", "#cf222e")):
        values = summary[column].astype(float)
        fig.add_scatter(
            x=marks,
            y=values,
            mode="markers+text",
            name=label,
            marker={"symbol": "line-ew-open", "size": 34, "color": color, "line": {"width": 3, "color": color}},
            text=[f"{label} {v:.2f}s" for v in values],
            textposition="middle right",
            textfont={"color": color, "size": 10},
        )
    fig.update_layout(
        title=f"{result.name}: latency per call (p50 / p95 marked)",
        yaxis={"title": "seconds", "rangemode": "tozero"},
        template="plotly_white",
    )
    return fig


def confusion_matrix(
    result: RunResult, *, variant: str, model: str | None = None, scorer: str | None = None
) -> pd.DataFrame:
    """Confusion matrix of a classification scorer for one variant (and model); failed calls left out."""
    name = scorer or result.scorer_names[0]
    target = next((s for s in result.experiment.scorers if s.name == name), None)
    if target is None or not callable(getattr(target, "confusion", None)):
        raise UsageError(
            f"scorer {name!r} is not a classification scorer (no confusion matrix); "
            f"pass scorer= one of {_classification_scorers(result)!r}"
        )
    where = {col.VARIANT: variant, col.ERROR: None, **({col.MODEL: model} if model is not None else {})}
    group = result.read_cases([col.OUTPUT, *col.columns(result.cases_file.columns, col.EXPECTED)], where=where)
    return target.confusion(list(group[col.OUTPUT]), expectations(group))  # type: ignore[no-any-return]


def _classification_scorers(result: RunResult) -> list[str]:
    return [s.name for s in result.experiment.scorers if callable(getattr(s, "confusion", None))]


def plot_confusion(
    result: RunResult, *, variant: str, model: str | None = None, scorer: str | None = None
) -> go.Figure:
    """Heatmap of :func:`confusion_matrix`, each cell annotated with its count.

    Rows are expected labels, columns predicted ones (plus ``<unparsed>``);
    failed calls are left out. Without ``model`` every model's cases are pooled.

    Raises:
        ValueError: When ``scorer`` has no confusion matrix or ``variant`` is unknown.

    Example:
        >>> plot_confusion(result, variant="few_shot")  # doctest: +SKIP
    """
    classifiers = _classification_scorers(result)
    name = scorer or result.scorer_names[0]
    if name not in classifiers:
        raise UsageError(
            f"scorer {name!r} is not a classification scorer (no confusion matrix); pass scorer= one of {classifiers!r}"
        )
    variants = list(result.summary["variant"].astype(str).unique())
    if variant not in variants:
        raise UsageError(f"no variant {variant!r} in this result; it has {variants!r}")
    matrix = confusion_matrix(result, variant=variant, model=model, scorer=name)
    counts = matrix.to_numpy()
    total = int(counts.sum())
    correct = sum(int(matrix.at[label, label]) for label in matrix.index if label in matrix.columns)
    fig = go.Figure(
        go.Heatmap(
            z=counts,
            x=[str(c) for c in matrix.columns],
            y=[str(i) for i in matrix.index],
            text=counts,
            texttemplate="%{text}",
            colorscale="Blues",
            hovertemplate="expected %{y}<br>predicted %{x}<br>%{z} cases<extra></extra>",
        )
    )
    accuracy = f"{correct / total:.1%} correct of {total}" if total else "no case"
    fig.update_layout(
        title=f"{variant} @ {model or 'all models'}: {name} confusion matrix ({accuracy})",
        xaxis={"title": "predicted", "type": "category"},
        yaxis={"title": "expected", "autorange": "reversed", "type": "category"},
        template="plotly_white",
    )
    return fig


def _key(*parts: str) -> str:
    """A chart name that is also a safe file name."""
    return "_".join(re.sub(r"[^A-Za-z0-9_.-]+", "-", p).strip("-") for p in parts)


def chart_builders(result: RunResult, *, quality_bar: float | None = None) -> dict[str, Callable[[], go.Figure]]:
    """Every applicable chart as a name -> zero-argument builder (see :func:`charts_for`).

    Builders let a caller (the MLflow tracker) survive one chart failing.
    """
    builders: dict[str, Callable[[], go.Figure]] = {}
    # A scorer's mean in the summary is NaN exactly when it scored nothing.
    scored = [n for n in result.scorer_names if n in result.summary and result.summary[n].notna().any()]
    for name in scored:
        builders[_key("scores", name)] = lambda name=name: plot_scores(result, name)  # type: ignore[misc]
    if scored:
        builders["cost_quality"] = lambda: plot_cost_quality(result, scored[0], quality_bar=quality_bar)
    builders["latency"] = lambda: plot_latency(result)
    pairs = result.summary[["variant", "model"]].astype(str).drop_duplicates()
    several_models = pairs["model"].nunique() > 1
    for name in _classification_scorers(result):
        if name not in scored:
            continue
        for pair in pairs.itertuples():
            model = pair.model if several_models else None
            key = _key("confusion", name, pair.variant, *([pair.model] if several_models else []))
            builders[key] = lambda n=name, v=pair.variant, m=model: plot_confusion(  # type: ignore[misc]
                result, variant=v, model=m, scorer=n
            )
    if "attack_resisted" in scored:  # a red-team run (wb.redteam): the category x strategy heat map per model
        for model in sorted(pairs["model"].unique()):
            key = _key("redteam_heatmap", *([model] if several_models else []))
            builders[key] = lambda m=model: plot_attack_heatmap(result, model=m)  # type: ignore[misc]
    return builders


def charts_for(result: RunResult, *, quality_bar: float | None = None) -> dict[str, go.Figure]:
    """Every chart that applies to ``result``, by name.

    ``scores_<scorer>`` (mean per variant with error bars) for each scorer with
    scores, ``cost_quality`` (first such scorer), ``latency``, and for each
    classification scorer (one with a ``confusion`` method) ``confusion_<scorer>_<variant>``
    (with ``_<model>`` appended when there are several models), and for a red-team run
    ``redteam_heatmap`` (attack success per category x strategy). Names are safe file names.

    Example:
        >>> for name, fig in charts_for(result, quality_bar=0.8).items():  # doctest: +SKIP
        ...     fig.write_html(f"{name}.html")
    """
    return {name: build() for name, build in chart_builders(result, quality_bar=quality_bar).items()}
