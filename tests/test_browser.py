"""End to end in a real browser: the MLflow UI on a logged experiment, and the review widget in JupyterLab.

The servers, the Chromium page and the screenshots come from ``browser_support``.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from browser_support import BROWSER, screenshot, show_on_failure, wait_for_idle_kernel
from mlflow.tracking import MlflowClient

pytestmark = BROWSER


@pytest.mark.local_model
@pytest.mark.timeout(240)
def test_mlflow_ui_shows_the_experiment_its_variant_runs_and_their_metrics(demo_store, mlflow_ui, page):
    tracking_uri, result = demo_store
    url, server = mlflow_ui
    client = MlflowClient(tracking_uri)
    experiment_id = client.get_experiment_by_name("sentiment").experiment_id
    children = {
        run.info.run_name: run
        for run in client.search_runs([experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'")
    }
    versions = {v.name: v.version[:7] for v in result.experiment.variants}
    expected_names = {f"{name}@{version} · local/gemma-3-270m" for name, version in versions.items()}
    assert set(children) == expected_names

    with show_on_failure(server):
        page.goto(f"{url}/#/experiments/{experiment_id}/runs")
        parent = page.locator(f"a[href$='/runs/{result.run_id}']")
        parent.wait_for(timeout=60_000)  # the SPA loads its bundle, then the runs
        assert parent.inner_text() == "sentiment · script"  # the fixture runs it from a script
        assert page.get_by_test_id("experiment-link").inner_text() == "sentiment"

        # The variant x model runs are children of the experiment run: expand it.
        page.locator("[role=gridcell]", has=parent).get_by_role("button").click()
        for name in expected_names:
            page.get_by_role("link", name=name, exact=True).wait_for()

        # Show the label_match column, hide three empty ones, for the screenshot.
        assistant = page.get_by_role("button", name="Close")  # MLflow 3's assistant side panel
        if assistant.count() == 1:
            assistant.click()
        page.get_by_role("button", name="Columns").click()
        menu = page.locator("[data-radix-popper-content-wrapper]")
        for column in ("label_match", "Dataset", "Source", "Models"):
            page.get_by_placeholder("Search columns").fill(column)
            menu.locator("span").filter(has_text=re.compile(f"^{re.escape(column)}$")).first.click()
        page.keyboard.press("Escape")
        page.locator(".ag-header-cell[col-id='metrics.`label_match`']").wait_for()
        shot = screenshot(page, "mlflow_ui.png")

        # A variant run's page lists its summary metrics with their values.
        name = f"few_shot@{versions['few_shot']} · local/gemma-3-270m"
        page.get_by_role("link", name=name, exact=True).click()
        page.get_by_role("heading", name=name).wait_for()
        run = children[name]
        for metric in ("label_match", "label_match.macro_f1", "error_rate", "latency_p95_s"):
            row = page.get_by_role("row").filter(has=page.get_by_role("link", name=metric, exact=True))
            shown = float(row.get_by_role("cell").nth(1).inner_text())
            assert shown == pytest.approx(run.data.metrics[metric], rel=1e-3), metric
        summary = result.summary.set_index("variant").loc["few_shot"]
        assert run.data.metrics["label_match"] == pytest.approx(summary["label_match"])
        screenshot(page, "mlflow_ui_run.png")
    assert shot.stat().st_size > 10_000


@pytest.mark.local_model
@pytest.mark.timeout(240)
def test_mlflow_parent_run_page_shows_the_verdict_and_the_charts(demo_store, mlflow_ui, page):
    tracking_uri, result = demo_store
    url, server = mlflow_ui
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("sentiment")
    run_url = f"{url}/#/experiments/{experiment.experiment_id}/runs/{result.run_id}"

    with show_on_failure(server):
        # The experiment's overview (where the UI lands) says where the verdict is, on its first line.
        page.goto(f"{url}/#/experiments/{experiment.experiment_id}")
        hint = page.get_by_text("Verdict: open Evaluation runs (left), then a run sentiment · …; its description")
        hint.wait_for(timeout=60_000)
        own = page.get_by_text(result.experiment.description.split(".")[0]).first  # the YAML's, below it
        hint_box, own_box = hint.bounding_box(), own.bounding_box()
        assert hint_box is not None and own_box is not None and hint_box["y"] < own_box["y"]

        # The parent run's page: its description starts with the verdict, readable as it
        # loads: no click into a tag, no "Show more".
        page.goto(run_url)
        note = page.get_by_test_id("note-editor-preview-content")
        note.wait_for(timeout=60_000)
        assistant = page.get_by_role("button", name="Close")  # MLflow 3's assistant side panel
        if assistant.count() == 1:
            assistant.click()
        note.scroll_into_view_if_needed()
        verdict = result.verdict()
        assert note.inner_text().startswith(f"Verdict: {verdict}")
        line = note.get_by_text(verdict)
        assert line.is_visible()
        box, shown = line.bounding_box(), note.bounding_box()
        assert box is not None and shown is not None and box["y"] + box["height"] <= shown["y"] + shown["height"]
        screenshot(page, "mlflow_parent_run.png")
        # The comparison below it is a real table, with the p-value column.
        more = page.get_by_text("Show more")
        if more.count():
            more.first.click()
        headers = note.locator("table").first.locator("th").all_inner_texts()
        assert headers[:4] == ["scorer", "n", "zero_shot", "few_shot"] and "p" in headers

        # charts.html draws its charts inside the UI's sandboxed iframe with no network.
        page.goto(f"{run_url}/artifacts/charts.html")
        charts = page.frame_locator("iframe.mlflow-html-iframe")
        charts.locator("#latency .plot-container").wait_for(timeout=60_000)
        assert charts.locator(".plot-container").count() == 8
        assert charts.locator("#wb-status").count() == 0  # the "drawing the charts" line is gone


# -- JupyterLab and the review widget ----------------------------------------------------------------

FAKE_MODEL_CELL = '''\
import litellm


async def fake_completion(*, model, messages, **kwargs):
    """Every answer is "positive": litellm builds the response, no network."""
    return await litellm.acompletion(model=model, messages=messages, mock_response="positive")


experiment = wb.Experiment(
    name="review-e2e",
    variants=[wb.PromptVariant(name="plain", prompt="Review: {{ review }}\\nSentiment:")],
    dataset=wb.Dataset.from_records(
        [
            {"id": "kettle", "review": "Great kettle, boils fast.", "label": "positive"},
            {"id": "charger", "review": "Broke after two days.", "label": "negative"},
        ],
        expected=["label"],
    ),
    models=["openai/gpt-4o-mini"],
    scorers=[wb.LabelMatch(labels=["positive", "negative"], expected="label")],
)
result = experiment.run(acompletion=fake_completion, log_to_mlflow=False, cache=False, progress=False)
'''


def _review_notebook(path: Path, labels: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    notebook.cells = [
        nbformat.v4.new_code_cell("import sys\n\nimport workbench as wb\n\nprint(sys.executable)"),
        nbformat.v4.new_code_cell(FAKE_MODEL_CELL),
        nbformat.v4.new_code_cell(f"wb.review(result, labels_path={str(labels)!r})"),
    ]
    nbformat.write(notebook, path)


def _labels(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.timeout(240)
def test_thumbs_up_in_jupyterlab_writes_the_label(jupyterlab, page, tmp_path):
    url, token, server = jupyterlab
    labels = tmp_path / "labels" / "review-e2e.jsonl"
    _review_notebook(tmp_path / "lab" / "review.ipynb", labels)

    with show_on_failure(server):
        page.goto(f"{url}/lab/tree/review.ipynb?token={token}")
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
        wait_for_idle_kernel(url, token, timeout=60)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()

        # The kernel is this venv's python, and the widget renders in the cell's output.
        page.locator(".jp-OutputArea-output", has_text=sys.executable).wait_for(timeout=60_000)
        up = page.locator(".wb-review-up")
        up.wait_for(timeout=60_000)
        for name in ("down", "prev", "next", "comment"):
            assert page.locator(f".wb-review-{name}").count() == 1, name
        assert _labels(labels) == []
        up.click()

        deadline = time.monotonic() + 30
        while not _labels(labels) and time.monotonic() < deadline:
            time.sleep(0.2)
        records = _labels(labels)
        assert len(records) == 1, records
        assert records[0]["case_id"] == "kettle"  # the first case
        assert records[0]["label"] == "up"
        assert records[0]["variant"] == "plain"
        page.locator(".wb-review", has_text="saved").wait_for()  # the widget says so, and moved on
        page.locator(".wb-review", has_text="charger").wait_for()
        screenshot(page, "jupyterlab_review.png")
