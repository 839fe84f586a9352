"""Plotly charts of an experiment result. Each function returns a figure."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.io._base_renderers import MimetypeRenderer

from workbench.core import schema as col
from workbench.core.result import RunResult


class _StaticHtmlRenderer(MimetypeRenderer):
    """Adds a self-contained ``text/html`` rendering next to plotly's own mimetype.

    JupyterLab uses the plotly mimetype; nbconvert's HTML export cannot, so
    without this the charts vanish from ``reports/*.html``. plotly.js is inlined
    once, in the first figure of the kernel (no CDN: reports work offline).
    """

    def __init__(self) -> None:
        self.included = False

    def to_mimebundle(self, fig_dict: Any) -> dict[str, str]:
        include = not self.included
        self.included = True
        html = pio.to_html(fig_dict, full_html=False, include_plotlyjs=include, validate=False)
        return {"text/html": html}


def use_notebook_renderer() -> None:
    """Render plotly figures for JupyterLab *and* for static HTML reports."""
    if "workbench" not in pio.renderers:
        pio.renderers["workbench"] = _StaticHtmlRenderer()
    pio.renderers.default = "plotly_mimetype+workbench"


if "ipykernel" in sys.modules:  # only inside a notebook kernel (papermill included)
    use_notebook_renderer()


def plot_scores(result: RunResult, scorer: str | None = None) -> go.Figure:
    """Mean score per variant (one bar group per model) with 95% error bars.

    The error bar is a normal-approximation interval over *cases* (repeats of a
    case are averaged first), a quick visual guide; use
    ``result.compare(...)`` for the paired test.
    """
    metric = scorer or result.scorer_names[0]
    column = col.score_column(metric)
    fig = go.Figure()
    # Only the columns the chart reads: grouping the whole frame would copy every output.
    cases = result.cases[["model", "variant", "case_id", column]]
    for model, by_model in cases.groupby("model", sort=False):
        names, means, errors = [], [], []
        for variant, group in by_model.groupby("variant", sort=False):
            per_case = group.groupby("case_id")[column].mean().dropna()
            n = len(per_case)
            names.append(variant)
            means.append(float(per_case.mean()) if n else np.nan)
            errors.append(float(1.96 * per_case.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0)
        fig.add_bar(
            x=names,
            y=means,
            name=str(model),
            error_y={"type": "data", "array": errors},
            text=[f"{m:.1%}" for m in means],
            textposition="outside",
        )
    fig.update_layout(
        title=f"{result.name}: mean {metric} per variant",
        yaxis={"title": metric, "range": [0, 1.1], "tickformat": ".0%"},
        barmode="group",
        template="plotly_white",
    )
    return fig
