"""Every canonical notebook runs under papermill (small n), as `workbench report` runs it."""

import json
from pathlib import Path

import pytest
from conftest import ROOT
from mlflow.tracking import MlflowClient

from workbench.tracking.report import run_report

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: Keep CI fast: a few cases each. A notebook missing here still runs, with its defaults.
SMALL = {
    "ab_test.ipynb": {"limit": 12},
    "quickstart.ipynb": {"limit": 12},
    "review.ipynb": {"limit": 12},
    # 8 categories x 1 attack x 2 strategies + 1 clean case = 17 cases, x 2 variants
    "redteam.ipynb": {"per_category": 1, "strategies": ["none", "base64"]},
    # 6 listings x 3 variants on SmolLM2 (the constrained one up to 200 tokens a call)
    "extraction.ipynb": {"limit": 6},
    # 3 questions x 2 retrieval variants on SmolLM2 (prompts of 600-1,000 tokens); retrieval alone on 12
    "rag.ipynb": {"limit": 3, "retrieval_limit": 12},
    # the whole sample log (4,000 interactions), then 4 new cases x 2 variants on SmolLM2
    "monitoring.ipynb": {"run_cases": 4},
    # 40 reviews split 16 / 12 / 12 on Gemma; two turns (few-shot, then SmolLM2 rewriting the instruction)
    "optimize.ipynb": {"limit": 40, "steps": 2, "max_calls": 200, "state_path": None},
}
#: What each notebook's outputs must say: its paired verdict (the red team's is on the attacks, 16 of them).
VERDICTS = {
    "redteam.ipynb": ("on attack_resisted", "(Holm-adjusted; exact McNemar, n = 16)"),
    # extraction: the share of fields right per listing, a paired permutation test
    "extraction.ipynb": ("on field_match", "paired permutation, n = 6)"),
    "rag.ipynb": ("on recall_at_5", "paired permutation, n = 3)"),
    # monitoring: the candidate prompt on the cases production feedback made
    "monitoring.ipynb": ("on field_match", "paired permutation, n = 4)"),
    # optimize: the winner against the start on the 12 test cases
    "optimize.ipynb": ("on label_match", "(exact McNemar, n = 12)"),
}


def outputs_text(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    chunks = []
    for cell in cells:
        for output in cell.get("outputs", []):
            chunks.append("".join(output.get("text", "")))
            chunks.append("".join(output.get("data", {}).get("text/plain", "")))
    return "\n".join(chunks)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_canonical_notebook_is_committed_without_outputs(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert any("parameters" in c["metadata"].get("tags", []) for c in code), "needs a `parameters` cell"


@pytest.mark.local_model
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes_with_papermill(store_uri, notebook, tmp_path, monkeypatch):
    uri = store_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # the kernel inherits it
    report = run_report(notebook, parameters=SMALL.get(notebook.name, {}), output_dir=tmp_path / "reports")
    assert report.error is None
    assert report.notebook.exists() and report.html.stat().st_size > 10_000
    html = report.html.read_text()
    assert "Plotly.newPlot" in html  # charts survive the static HTML export
    # plotly.js once per page and per notebook (it was in every chart: 28 MB for six charts).
    executed = report.notebook.read_text()
    assert html.count("DecompressionStream") == 1 and report.html.stat().st_size < 3_000_000
    assert executed.count("DecompressionStream") == 1 and report.notebook.stat().st_size < 3_000_000
    # The page is for readers: outputs and markdown; the executed notebook keeps the code.
    assert "import workbench as wb" in executed and "import workbench as wb" not in html
    if notebook.name == "redteam.ipynb":  # the heat map and the per-category rates are on the page
        assert "Attack success rate by category and strategy" in html and "prompt_extraction" in html
    if notebook.name == "extraction.ipynb":  # per-field F1, hallucination per field, schema validity, the gate
        assert "Field F1 per variant" in html and "hallucination_rate" in html and "json_schema_valid" in html
        assert "Gate, constrained vs few_shot:" in html
    if notebook.name == "rag.ipynb":  # retrieval alone with its intervals, the answers, the gate
        assert "Recall@k per retriever" in html and "hybrid k=5, 256-word chunks" in html
        assert "citation_correctness" in html and "Gate, hybrid_k5 vs bm25_k3:" in html
    if notebook.name == "monitoring.ipynb":  # the planted drift is found (its first day), cases are proposed
        assert "Windows with drift: 2026-10-26" in html and "Drift per 1D window against 2026-10-05" in html
        assert "with the user&#39;s correction as the expected value" in html or "correction as the expected" in html
    if notebook.name == "ab_test.ipynb":  # the report opens with the verdict, developer notes last
        verdict, chart, notes = (html.index(s) for s in ("exact McNemar, n = 12", "plotly-graph-div", "Running this"))
        assert verdict < chart < notes
    text = outputs_text(report.notebook)
    scorer, test = VERDICTS.get(notebook.name, ("on label_match", "(exact McNemar, n = 12)"))
    assert scorer in text and test in text  # the paired verdict
    client = MlflowClient(uri)
    assert report.run_ids, "the notebook's MLflow run was found"
    for run_id in report.run_ids:
        artifacts = {a.path for a in client.list_artifacts(run_id, "report")}
        assert artifacts == {f"report/{notebook.name}", f"report/{notebook.stem}.html"}
        assert client.get_run(run_id).info.status == "FINISHED"


@pytest.mark.local_model
def test_gate_parameter_fails_the_papermill_run(store_uri, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)
    report = run_report(
        ROOT / "notebooks" / "ab_test.ipynb",
        parameters={"limit": 12, "gate": True, "thresholds": {"label_match": 0.99}},
        output_dir=tmp_path / "reports",
    )
    assert report.error is not None and "Gate FAILED" in report.error
    assert report.html.exists()  # the failed report is still readable


@pytest.mark.local_model
def test_ab_test_notebook_compares_with_a_stored_baseline_run(store_uri, tmp_path, monkeypatch):
    """`-p baseline_run sentiment@production`: only the candidate runs; the baseline is read from MLflow."""
    import workbench as wb

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)
    experiment = wb.load_experiment(ROOT / "experiments" / "sentiment.yaml").with_overrides(limit=12)
    live = experiment.with_overrides(variants=["zero_shot"]).run(progress=False)
    wb.set_alias(live.run_id, "production", variant="zero_shot")
    report = run_report(
        ROOT / "notebooks" / "ab_test.ipynb",
        parameters={"limit": 12, "baseline_run": "sentiment@production", "gate": True},
        output_dir=tmp_path / "reports",
    )
    assert report.error is None, report.error
    html, text = report.html.read_text(), outputs_text(report.notebook)
    assert "<b>few_shot</b> (candidate) vs <b>zero_shot</b> (baseline)" in html and "exact McNemar, n = 12" in html
    assert "Gate passed." in text
    assert "This run: 1 variant(s) x 1 model(s) x 12 cases x 1 repeat(s) = 12 calls." in text
    candidate_runs = [r for r in wb.runs()["run_id"] if r != live.run_id]
    assert len(candidate_runs) == 1 and set(wb.load_run(candidate_runs[0]).cases["variant"]) == {"few_shot"}


def _judge_reply(body):
    """A judge that passes a response equal to the expected label (case-insensitive)."""
    import re

    text = body["messages"][-1]["content"]
    expected = re.search(r"Expected:\nlabel: (\w+)", text).group(1)
    response = re.search(r'Response to judge:\n"""\n(.*?)\n"""', text, re.S).group(1)
    verdict = "PASS" if response.strip().lower() == expected else "FAIL"
    return json.dumps({"reason": f"expected {expected}", "score": verdict})


@pytest.mark.local_model
def test_review_notebook_runs_its_judge_section(store_uri, tmp_path, monkeypatch):
    from workbench.testing import FakeOpenAIServer

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-judge-FAKE-KEY-123")  # the key stays in the environment
    with FakeOpenAIServer(reply=_judge_reply) as server:
        report = run_report(
            ROOT / "notebooks" / "review.ipynb",
            parameters={
                "limit": 8,
                "judge_model": "openai/fake-judge",
                "judge_params": {"api_base": server.base_url},
                "labels_path": str(tmp_path / "labels.jsonl"),
            },
            output_dir=tmp_path / "reports",
        )
        assert report.error is None
        assert server.requests == 16  # 8 cases x 2 variants, one judge call each
    text = outputs_text(report.notebook)
    # This judge mirrors label_match exactly: perfect agreement with the golden set.
    assert "Judge vs the golden set's answers" in text
    assert "they agree on 16 (100%)" in text and "Cohen's kappa 1.00" in text
    assert "sk-judge-FAKE-KEY-123" not in report.notebook.read_text()
    assert "sk-judge-FAKE-KEY-123" not in report.html.read_text()


def test_the_kernel_runs_in_the_notebooks_own_folder_as_jupyterlab_starts_it(tmp_path):
    """papermill used to run every notebook from the project root, where paths that fail in JupyterLab
    (whose kernel starts in the notebook's folder) still worked: the tests could not see it (issue 19)."""
    import nbformat

    folder = tmp_path / "somewhere" / "notebooks"
    folder.mkdir(parents=True)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("limit = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import os\nprint('cwd=' + os.getcwd())"),
    ]
    nbformat.write(notebook, folder / "where.ipynb")
    report = run_report(folder / "where.ipynb", output_dir=tmp_path / "reports", attach=False)
    assert report.error is None
    assert f"cwd={folder}" in outputs_text(report.notebook)


# -- quiet output: no red boxes that are not errors --------------------------------------------

QUIET_CELL = """\
import logging

import workbench as wb

experiment = wb.Experiment(
    name="quiet",
    variants=[wb.PromptVariant(name="plain", prompt="Review: {{ review }}\\nSentiment:", params={"max_tokens": 2})],
    dataset=wb.Dataset.from_records([{"id": "a", "review": "Great kettle.", "label": "positive"}], expected=["label"]),
    models=["local/gemma-3-270m"],
    scorers=[wb.LabelMatch(labels=["positive", "negative"], expected="label")],
)
result = experiment.run(tracking_uri=TRACKING_URI, cache=False, progress=False)  # a new store, the model loads
print("ran", len(result.cases))
"""


def _stderr(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "".join("".join(o.get("text", "")) for c in cells for o in c.get("outputs", []) if o.get("name") == "stderr")


@pytest.mark.local_store("checks that a new SQLite store's 'Creating initial MLflow database tables' lines stay hidden")
@pytest.mark.local_model
def test_library_info_lines_do_not_show_in_a_notebook_but_warnings_and_errors_do(tmp_path):
    """MLflow's "Creating initial MLflow database tables..." and llama.cpp's KV-cache lines showed in red
    above the first result (issue 19)."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("limit = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(f"TRACKING_URI = {'sqlite:///' + str(tmp_path / 'new' / 'mlflow.db')!r}"),
        nbformat.v4.new_code_cell(QUIET_CELL),
        nbformat.v4.new_code_cell(
            'logging.getLogger("mlflow.tracking").warning("a real MLflow warning")\n'
            'logging.getLogger("workbench.llama_cpp").error("a real llama.cpp error")'
        ),
    ]
    (tmp_path / "new").mkdir()
    nbformat.write(notebook, tmp_path / "quiet.ipynb")
    report = run_report(tmp_path / "quiet.ipynb", output_dir=tmp_path / "reports", attach=False)
    assert report.error is None
    assert "ran 1" in outputs_text(report.notebook)
    stderr = _stderr(report.notebook)
    for noise in ("Creating initial MLflow database tables", "Updating database tables", "llama_kv_cache", "INFO"):
        assert noise not in stderr, stderr
    assert "a real MLflow warning" in stderr and "a real llama.cpp error" in stderr


def test_llama_cpp_log_lines_become_records_at_their_own_level():
    import logging

    from workbench.providers.local import LlamaCppLog

    records: list[logging.LogRecord] = []
    logger = logging.getLogger("test.llama_cpp")
    logger.propagate = False
    logger.addHandler(type("Keep", (logging.Handler,), {"emit": lambda self, r: records.append(r)})())
    logger.setLevel(logging.DEBUG)
    sink = LlamaCppLog(logger)
    sink(2, b"print_info: n_ctx = 4096\n")  # INFO in today's ggml numbering
    sink(3, b"llama_kv_cache_iswa: using full-size SWA cache\n")  # WARN
    sink(4, b"llama_model_load: error loading model: ")  # ERROR, in two pieces
    sink(5, b"bad magic\n")
    assert [(r.levelname, r.getMessage()) for r in records] == [
        ("INFO", "print_info: n_ctx = 4096"),
        ("WARNING", "llama_kv_cache_iswa: using full-size SWA cache"),
        ("ERROR", "llama_model_load: error loading model: bad magic"),
    ]
