"""MLflow 3's GenAI pages, seen in a real browser: the registered prompt with its versions, the
dataset on the run, a run's traces with its scores and a reviewer's 👎 as assessments, and a
workbench scorer's feedback on the traces of ``mlflow.genai.evaluate``.

Two runs of a small experiment (FakeLLM, no network) go into a fresh store, the template of the
variant changed in between; the MLflow UI (the command ``wb.ui_command`` prints) serves that store.
Servers, the Chromium page and the screenshots (reports/) come from ``browser_support``.

"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import mlflow
import mlflow.genai
import pytest
from browser_support import BROWSER, Server, free_port, screenshot, show_on_failure, start_mlflow_ui
from conftest import FakeLLM, sample_reviews
from mlflow.tracking import MlflowClient

import workbench as wb
from workbench.tracking import MlflowObserver
from workbench.tracking.human_feedback import HUMAN_FEEDBACK, find_trace

pytestmark = BROWSER

EXPERIMENT = "ui-genai"
PROMPT = f"{EXPERIMENT}.terse"  # the workbench registers each variant as <experiment>.<variant>


def _run(variant: wb.PromptVariant, dataset: wb.Dataset, tracking_uri: str) -> wb.ExperimentResult:
    experiment = wb.Experiment(
        name=EXPERIMENT,
        variants=[variant],
        dataset=dataset,
        models=["openai/gpt-4o-mini"],
        scorers=[wb.LabelMatch(labels=["positive", "negative"], expected="label")],
    )
    observer = MlflowObserver(tracking_uri=tracking_uri, charts=False)  # charts are test_browser's business
    result = experiment.run(
        log_to_mlflow=False, observers=[observer], progress=False, acompletion=FakeLLM(), cache=False
    )
    assert observer.parent_run_id is not None and result.run_id == observer.parent_run_id
    return result


@pytest.fixture(scope="module")
def genai_store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two runs into a fresh store: the variant as written, then with its template changed."""
    folder = tmp_path_factory.mktemp("genai-ui")
    tracking_uri = f"sqlite:///{folder / 'mlflow.db'}"
    path = folder / "reviews.csv"
    sample_reviews().frame.to_csv(path, index=False)
    dataset = wb.Dataset.load(path, expected=["label"])
    first = wb.PromptVariant(name="terse", prompt="Review: {{ review }}\nSentiment:", params={"temperature": 0})
    second = wb.PromptVariant(**{**first.to_dict(), "prompt": first.prompt + " (one word)"})
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OPENAI_API_KEY", "sk-test-THIS-IS-A-FAKE-KEY-0000")
        results = [_run(first, dataset, tracking_uri), _run(second, dataset, tracking_uri)]
    runs = [result.run_id for result in results]
    client = MlflowClient(tracking_uri)
    return {
        "tracking_uri": tracking_uri,
        "runs": runs,
        "results": results,
        "folder": folder,
        "experiment_id": client.get_run(runs[0]).info.experiment_id,
        "dataset": dataset,
    }


@pytest.fixture(scope="module")
def genai_ui(genai_store: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Server]]:
    """The MLflow UI on ``genai_store``, once per module."""
    port = free_port()
    log = tmp_path_factory.mktemp("genai-ui-server") / "mlflow-ui.log"
    server = start_mlflow_ui(genai_store["tracking_uri"], port, log)
    try:
        server.wait_until_up(f"http://127.0.0.1:{port}/health", timeout=90)
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.stop()


def close_assistant(page: Any) -> None:
    """Close MLflow 3's assistant side panel when it is open (it covers the right of the page).

    Call it once the page shows its content: the panel comes with it."""
    panel = page.get_by_role("button", name="Close")
    if panel.count():
        panel.first.click()


# -- traces and their assessments ------------------------------------------------------------------


def open_traces_of_run(page: Any, url: str, experiment_id: str, run_id: str) -> Any:
    """Open the Traces tab of a run and return the locator of its trace rows (one per trace).

    Use: ``rows = open_traces_of_run(page, url, eid, run_id)``, then
    ``rows.filter(has_text="<a request's text>").wait_for()`` and ``rows.count()``; open one with
    :func:`open_trace_assessments`.
    """
    page.goto(f"{url}/#/experiments/{experiment_id}/runs/{run_id}/traces")
    rows = page.locator("[role=row]").filter(has=page.locator("[role=cell], [role=gridcell]"))
    rows.first.wait_for()
    close_assistant(page)
    return rows


def open_trace_assessments(page: Any, url: str, experiment_id: str, trace_id: str) -> Any:
    """Open one trace (by its id, e.g. from ``mlflow.search_traces``) and return its assessments
    pane, which lists each feedback by name with its value (a human's with a person icon: source
    HUMAN, as a 👍/👎 from the review widget should be) and the expectations.

    Use: ``pane = open_trace_assessments(page, url, eid, trace_id)``, then
    ``pane.get_by_text("<feedback name>", exact=True).wait_for()`` and check ``pane.inner_text()``.
    """
    page.goto(f"{url}/#/experiments/{experiment_id}/traces?selectedEvaluationId={trace_id}")
    # The trace opens in a drawer; a first-visit tip may sit on top of it (the drawer is then
    # aria-hidden), so find the drawer by its component id and click through.
    drawer = page.locator("[data-component-id='mlflow.evaluations_review.modal']")
    button = drawer.locator("button", has_text="Assess").first
    button.wait_for()
    button.click(force=True)
    pane = page.get_by_test_id("assessments-pane")
    pane.wait_for()
    return pane


# -- the checks ------------------------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_the_registered_prompt_shows_both_versions_of_the_changed_template(genai_store, genai_ui, page):
    url, server = genai_ui
    with show_on_failure(server):
        page.goto(f"{url}/#/prompts")
        row = page.get_by_role("row").filter(has=page.get_by_role("link", name=PROMPT, exact=True))
        row.wait_for()
        close_assistant(page)
        assert "Version 2" in row.inner_text()  # latest version, in the list of prompts

        row.get_by_role("link", name=PROMPT, exact=True).click()
        page.get_by_text("Viewing version 2").wait_for()
        for version in ("Version 2", "Version 1"):
            page.get_by_text(version, exact=True).first.wait_for()
        assert page.get_by_text(re.compile(r"^Version \d+$")).count() == 2  # the changed template only: 2
        page.get_by_text("prompt: +1/-1 lines").first.wait_for()  # the commit message says what changed
        page.get_by_text("Sentiment: (one word)").first.wait_for()  # version 2's template
        screenshot(page, "mlflow_ui_prompt_versions.png")

        page.get_by_text("Version 1", exact=True).first.click()
        page.get_by_text("Viewing version 1").wait_for()
        shown = page.locator("body").inner_text()
        assert "Sentiment:" in shown and "(one word)" not in shown.split("Viewing version 1", 1)[1]


@pytest.mark.timeout(240)
def test_each_run_shows_its_dataset_and_the_prompt_version_it_used(genai_store, genai_ui, page):
    url, server = genai_ui
    dataset = genai_store["dataset"]
    experiment_id = genai_store["experiment_id"]
    with show_on_failure(server):
        for version, run_id in enumerate(genai_store["runs"], start=1):
            page.goto(f"{url}/#/experiments/{experiment_id}/runs/{run_id}")
            page.get_by_role("link", name=f"{PROMPT} (v{version})").wait_for()
            close_assistant(page)
            datasets = page.get_by_text(f"({dataset.content_hash[:12]})")
            datasets.first.wait_for()
            # the file's name without its suffix, and the content hash: the same data, the same digest
            assert datasets.first.inner_text() == f"reviews ({dataset.content_hash[:12]})"
        screenshot(page, "mlflow_ui_run_dataset.png")


@pytest.fixture(scope="module")
def evaluated(genai_store: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """``mlflow.genai.evaluate`` with a workbench scorer on two static rows, into the same store."""
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(genai_store["tracking_uri"])
    try:
        mlflow.set_experiment("workbench-scorer-in-mlflow")
        data = [
            {"inputs": {"review": "Great kettle."}, "outputs": "positive", "expectations": {"label": "positive"}},
            {"inputs": {"review": "Broke at once."}, "outputs": "positive", "expectations": {"label": "negative"}},
        ]
        result = mlflow.genai.evaluate(data=data, scorers=[wb.to_mlflow_scorer(wb.ExactMatch(expected="label"))])
        traces = mlflow.search_traces(run_id=result.run_id, return_type="list")
        by_review = {next(r for r in ("Great kettle.", "Broke at once.") if r in t.data.request): t for t in traces}
        yield {
            "run_id": result.run_id,
            "experiment_id": traces[0].info.experiment_id,
            "traces": {review: trace.info.trace_id for review, trace in by_review.items()},
        }
    finally:
        mlflow.set_tracking_uri(before)


@pytest.mark.timeout(240)
def test_a_workbench_scorer_feedback_from_mlflow_evaluate_shows_on_its_trace(evaluated, genai_ui, page):
    url, server = genai_ui
    experiment_id = evaluated["experiment_id"]
    with show_on_failure(server):
        rows = open_traces_of_run(page, url, experiment_id, evaluated["run_id"])
        rows.filter(has_text="Broke at once.").wait_for()
        assert rows.count() == 2
        for review, expected in (("Broke at once.", "0"), ("Great kettle.", "1")):
            pane = open_trace_assessments(page, url, experiment_id, evaluated["traces"][review])
            pane.get_by_text("exact_match", exact=True).wait_for()
            shown = pane.inner_text().split()
            assert shown[shown.index("exact_match") + 1] == expected  # the workbench score, as the value
        screenshot(page, "mlflow_ui_workbench_scorer_on_trace.png")


@pytest.mark.timeout(300)
def test_a_runs_traces_carry_its_scores_and_a_reviewers_thumbs_down(genai_store, genai_ui, page):
    url, server = genai_ui
    result = genai_store["results"][1]
    experiment_id = genai_store["experiment_id"]
    tracking_uri = genai_store["tracking_uri"]
    rv = wb.review(result, labels_path=genai_store["folder"] / "labels.jsonl")
    item = rv.current
    rv.label("down", comment="not what the customer meant")
    assert "to its trace" in rv.status  # the widget says the label reached MLflow
    trace_id = find_trace(
        result.run_id, case_id=item.case_id, variant=item.variant, model=item.model, tracking_uri=tracking_uri
    )
    assert trace_id is not None
    child = MlflowClient(tracking_uri).search_runs(
        [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'"
    )
    assert len(child) == 1  # one variant x one model: the traces are linked to its run
    cases = genai_store["dataset"].frame
    with show_on_failure(server):
        rows = open_traces_of_run(page, url, experiment_id, child[0].info.run_id)
        review_text = cases.loc[cases["id"] == item.case_id, "review"].iloc[0]
        rows.filter(has_text=review_text).first.wait_for()  # the request, as the model saw it
        assert rows.count() == len(cases)  # one trace per call
        screenshot(page, "mlflow_ui_run_traces.png")

        pane = open_trace_assessments(page, url, experiment_id, trace_id)
        pane.get_by_text(HUMAN_FEEDBACK, exact=True).wait_for()
        shown = pane.inner_text().split()
        assert shown[shown.index(HUMAN_FEEDBACK) + 1] == "False"  # the reviewer's 👎
        score = item.scores["label_match"]  # the scorer's score, an assessment of source CODE
        assert shown[shown.index("label_match") + 1] == f"{score:g}"
        screenshot(page, "mlflow_ui_trace_assessments.png")
