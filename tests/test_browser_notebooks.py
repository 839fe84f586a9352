"""The canonical notebooks in a real browser: the quickstart run in JupyterLab as a user runs it,
and report charts drawn by Chromium from the one compressed copy of plotly.js a page carries.

The servers, the Chromium page and the screenshots come from ``browser_support``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import plotly.graph_objects as go
import pytest
from browser_support import BROWSER, screenshot, show_on_failure, wait_for_idle_kernel
from conftest import ROOT

from workbench.views.plotly_html import figure_html

pytestmark = BROWSER

#: The mimetypes JupyterLab renders an error (traceback) or a line on stderr as: a red box.
RED = ("application/vnd.jupyter.error", "application/vnd.jupyter.stderr")


def _project_copy(root: Path, *, limit: int) -> Path:
    """The project as a user has it: notebooks/, data/ and a pyproject.toml (the root marker)
    under ``root``; the quickstart's ``limit`` parameter set to ``limit`` to keep the run short."""
    (root / "notebooks").mkdir()
    shutil.copytree(ROOT / "data", root / "data", ignore=shutil.ignore_patterns("labels"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    notebook = nbformat.read(ROOT / "notebooks" / "quickstart.ipynb", as_version=4)
    parameters = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    assert "limit = " in parameters.source
    parameters.source = "\n".join(
        f"limit = {limit}" if line.startswith("limit = ") else line for line in parameters.source.splitlines()
    )
    path = root / "notebooks" / "quickstart.ipynb"
    nbformat.write(notebook, path)
    return path


@pytest.mark.local_model
@pytest.mark.timeout(300)
def test_quickstart_runs_in_jupyterlab_without_an_error(jupyterlab, page, tmp_path):
    """JupyterLab starts the kernel in notebooks/, where `data/sentiment.csv` used to be missing (issue 19)."""
    url, token, server = jupyterlab
    notebook = _project_copy(tmp_path / "lab", limit=4)
    n_code = sum(c.cell_type == "code" for c in nbformat.read(notebook, as_version=4).cells)

    with show_on_failure(server):
        page.goto(f"{url}/lab/tree/notebooks/quickstart.ipynb?token={token}")
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
        wait_for_idle_kernel(url, token, timeout=60)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        # Every code cell has run when each prompt shows its execution count: "[3]:", not "[*]:".
        page.wait_for_function(
            """n => {
                const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
                return prompts.length === n && prompts.every(p => /^\\[\\d+\\]:$/.test(p.textContent.trim()));
            }""",
            arg=n_code,
            timeout=240_000,
        )
        outputs = page.eval_on_selector_all(
            ".jp-OutputArea-output", "els => els.map(e => [e.dataset.mimeType || '', e.innerText.slice(0, 2000)])"
        )
        red = [text for mime, text in outputs if mime in RED]
        assert red == [], red
        assert any("two_shot" in text for _, text in outputs)  # the summary table
        assert any("(exact McNemar, n = 4)" in text for _, text in outputs)  # the verdict
        # Drawn by JupyterLab's plotly extension from plotly's mimetype (no text/html, no CDN).
        chart = page.locator(".jp-RenderedPlotly .main-svg").first
        chart.scroll_into_view_if_needed()
        chart.wait_for(timeout=30_000)
        shot = screenshot(page, "jupyterlab_quickstart.png")
    assert shot.stat().st_size > 10_000
    assert (tmp_path / "lab" / "mlruns" / "mlflow.db").exists()  # the project root resolved from notebooks/


def _figure(title: str) -> go.Figure:
    return go.Figure(go.Bar(x=["a", "b"], y=[1, 2]), layout={"title": title})


def test_report_charts_draw_from_the_one_compressed_plotlyjs_offline(page, tmp_path):
    """The first chart carries plotly.js compressed; later charts wait for it to unpack."""
    body = figure_html(_figure("first"), include_plotlyjs=True) + figure_html(_figure("second"), include_plotlyjs=False)
    (tmp_path / "report.html").write_text(f"<html><head><meta charset='utf-8'></head><body>{body}</body></html>")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto((tmp_path / "report.html").as_uri())
    page.locator(".js-plotly-plot .main-svg").nth(3).wait_for(timeout=30_000)  # two figures, two svgs each
    assert page.evaluate("() => Plotly.version").startswith(("3.", "4."))
    assert errors == []

    # A page whose output with plotly.js is gone (the cell re-run) says so instead of a blank space.
    lost = figure_html(_figure("lost"), include_plotlyjs=False)
    (tmp_path / "lost.html").write_text(f"<html><body>{lost}</body></html>")
    page.goto((tmp_path / "lost.html").as_uri())
    page.get_by_text("No plotly.js on this page to draw this chart").wait_for(timeout=10_000)
