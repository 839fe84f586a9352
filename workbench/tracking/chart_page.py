"""One HTML page of plotly charts that opens offline, in the MLflow UI and from a download, in under 2 MB.

plotly.js is 4.8 MB of JavaScript; inlined as it is, every page (and every run)
carried it. The page carries the compressed copy reports use instead
(:func:`workbench.views.plotly_html.plotlyjs_script`, 1.84 MB), unpacked by the browser,
then draws each figure from its JSON. No network is needed, so the page also works
inside the MLflow UI's sandboxed iframe and on a machine without internet. A browser
that cannot unpack it shows a line saying so instead of the charts.

MLflow's own ``log_figure`` writes plotly figures that load plotly.js from a CDN: a
small file, but blank offline. The figures' data (names, labels, numbers) pass the
redaction chain; the library does not need to (it is code, not data).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from workbench.core.html import render
from workbench.core.redaction import REDACTOR
from workbench.views.plotly_html import plotlyjs_script


@dataclass(frozen=True)
class ChartSection:
    """One figure of a chart page: its anchor (``id``), an optional heading above it, the figure."""

    name: str
    figure: Any
    heading: str | None = None


def chart_page(title: str, sections: Sequence[ChartSection]) -> str:
    """A self-contained HTML page of plotly figures (see the module docstring).

    Example:
        >>> page = chart_page("sentiment: charts", [ChartSection("scores", fig)])  # doctest: +SKIP
    """
    rendered = [(section.name, section.heading, Markup(_figure_json(section.figure))) for section in sections]
    return render("charts_page.html.j2", title=title, plotlyjs=plotlyjs_script(), sections=rendered)


def _figure_json(figure: Any) -> str:
    """The figure as JSON with every string redacted (numbers stay numbers: a mask must never land
    inside chart data); ``<`` escaped so no string in it can close the script element."""
    return json.dumps(REDACTOR.data(json.loads(figure.to_json()))).replace("<", "\\u003c")
