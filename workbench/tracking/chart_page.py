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

:func:`log_chart_page` builds a run's page (its charts, then its comparisons' plots) and
logs it as the parent run's ``charts.html``; a chart that fails is left out with a warning.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from workbench.core.html import render
from workbench.core.redaction import REDACTOR
from workbench.core.result import RunResult
from workbench.tracking.store import MlflowWriter
from workbench.views.charts import chart_builders
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


def log_chart_page(
    writer: MlflowWriter,
    run_id: str,
    result: RunResult,
    comparisons: Sequence[ChartSection] = (),
    failed: Sequence[str] = (),
) -> dict[str, str]:
    """Log every chart of ``result``, then the ``comparisons``' plots, to run ``run_id`` as one
    page, ``charts.html`` (``failed``: the comparison plots that could not be built).

    Charts are a view of numbers logged elsewhere, so no chart error may fail the run: a
    failing chart is left out, with a warning. Returns the tags that say so
    (``workbench.charts_error``), or none.
    """
    failures: list[str] = []
    sections: list[ChartSection] = []
    try:
        builders = chart_builders(result)
    except Exception as exc:  # a chart is never worth failing the run
        builders, failures = {}, [f"charts: {exc!r}"]
    for name, build in builders.items():
        try:
            sections.append(ChartSection(name, build()))
        except Exception as exc:  # one broken chart must not cost the others
            failures.append(f"{name}: {exc!r}")
    sections += comparisons
    failures += failed
    if sections:
        try:
            page = chart_page(f"{result.name}: charts", sections)
            writer.text(run_id, page, "charts.html", redacted=True)
        except Exception as exc:  # e.g. the artifact store refused the file
            failures.append(f"charts.html: {exc!r}")
    if not failures:
        return {}
    message = "; ".join(failures)
    warnings.warn(f"some charts were not logged to MLflow: {message}", RuntimeWarning, stacklevel=4)
    return {"workbench.charts_error": message}
