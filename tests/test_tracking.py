import json
import sys
from pathlib import Path

import pytest
from conftest import FakeLLM
from mlflow.tracking import MlflowClient

import workbench as wb


def _experiment(name, variants, reviews, label_match, **params):
    if params:
        variants = [wb.PromptVariant(**{**v.to_dict(), "params": {**v.params, **params}}) for v in variants]
    return wb.Experiment(
        name=name, variants=variants, dataset=reviews, models=["openai/gpt-4o-mini"], scorers=[label_match]
    )


def test_parent_and_child_runs_with_params_metrics_and_tables(
    fake_key, fake_llm, tracking_uri, variants, reviews, label_match
):
    result = _experiment("tracked", variants, reviews, label_match).run(
        tracking_uri=tracking_uri, progress=False, acompletion=fake_llm
    )
    client = MlflowClient(tracking_uri)
    parent = client.get_run(result.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["dataset_hash"] == reviews.content_hash
    assert parent.data.tags["workbench.verdict"] == result.verdict()
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'"
    )
    assert sorted(c.data.params["variant"] for c in children) == ["few_shot", "zero_shot"]
    for child in children:
        assert child.info.status == "FINISHED"
        row = result.summary.set_index("variant").loc[child.data.params["variant"]]
        assert child.data.params["variant_version"] == row["variant_version"]
        assert child.data.params["model"] == "openai/gpt-4o-mini"
        assert json.loads(child.data.params["scorers"]) == [label_match.spec()]
        assert child.data.metrics["label_match"] == pytest.approx(row["label_match"])
        assert child.data.metrics["latency_p95_s"] == pytest.approx(row["latency_p95_s"])
        table = Path(client.download_artifacts(child.info.run_id, "cases.json"))
        data = json.loads(table.read_text())
        assert len(data["data"]) == 6 and "score.label_match" in data["columns"]
        template = json.loads(Path(client.download_artifacts(child.info.run_id, "prompt_template.json")).read_text())
        assert template["prompt"] == "Review: {{ review }}\nSentiment:"
    comparison = result.compare("zero_shot", "few_shot")
    prefix = "cmp.few_shot_vs_zero_shot.label_match"
    assert parent.data.metrics[f"{prefix}.p_value"] == pytest.approx(comparison["label_match"].p_value)
    assert parent.data.metrics[f"{prefix}.ci_low"] == pytest.approx(comparison["label_match"].ci_low)
    assert parent.data.tags[f"workbench.{prefix}.verdict"] == comparison["label_match"].verdict
    charts = Path(client.download_artifacts(result.run_id, "charts.html")).read_text()
    for plot in ("means", "diff", "flips"):  # the comparison's plots share the run's one chart page
        assert f'<section id="{prefix.removesuffix(".label_match")}.{plot}">' in charts, plot
    manifest = json.loads(Path(client.download_artifacts(result.run_id, "manifest.json")).read_text())
    assert manifest["dataset"]["hash"] == reviews.content_hash
    assert set(manifest["variants"]) == {"zero_shot", "few_shot"}
    assert "litellm" in manifest["packages"] and "mlflow" in manifest["packages"]


def test_a_run_that_fails_ends_failed(fake_key, tracking_uri, variants, reviews, label_match):
    class Boom(wb.LabelMatch):
        def aggregate(self, outputs, expectations):
            raise RuntimeError("aggregate exploded")

    scorer = Boom(labels=["positive", "negative"], expected="label")
    exp = wb.Experiment(
        name="fails", variants=variants, dataset=reviews, models=["openai/gpt-4o-mini"], scorers=[scorer]
    )
    with pytest.raises(RuntimeError, match="aggregate exploded"):
        exp.run(tracking_uri=tracking_uri, progress=False, acompletion=FakeLLM())
    client = MlflowClient(tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("fails").experiment_id])
    assert runs and {r.info.status for r in runs} == {"FAILED"}


@pytest.mark.local_store("scans every file of the SQLite store (database included) for the key")
def test_api_keys_never_reach_mlflow(tmp_path, fake_key, fake_llm, variants, reviews, label_match):
    store = tmp_path / "mlruns"
    store.mkdir()
    exp = _experiment("secrets", variants, reviews, label_match, api_key=fake_key)
    exp.run(tracking_uri=f"sqlite:///{store / 'mlflow.db'}", progress=False, acompletion=fake_llm)
    assert fake_llm.calls[0]["api_key"] == fake_key  # the key was really used...
    leaks = [p for p in store.rglob("*") if p.is_file() and fake_key.encode() in p.read_bytes()]
    assert leaks == []  # ...and is nowhere in the store, database included
    assert any(p.name == "cases.json" for p in store.rglob("*"))  # the scan saw the artifacts


def test_default_store_is_project_mlruns_and_env_overrides(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert wb.default_tracking_uri() == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert wb.default_tracking_uri() == "http://127.0.0.1:5000"


def test_ui_command_works_offline_and_binds_loopback():
    command = wb.ui_command("sqlite:////p/mlruns/mlflow.db")
    assert command.startswith("LITELLM_LOCAL_MODEL_COST_MAP=True ")
    assert "mlflow ui --backend-store-uri sqlite:////p/mlruns/mlflow.db" in command
    assert "--host 127.0.0.1" in command


def _artifacts(client, run_id, path):
    return sorted(a.path for a in client.list_artifacts(run_id, path))


def test_charts_are_logged_to_the_parent_run_as_self_contained_html(
    fake_key, fake_llm, tracking_uri, variants, reviews, label_match
):
    result = _experiment("charted", variants, reviews, label_match).run(
        tracking_uri=tracking_uri, progress=False, acompletion=fake_llm
    )
    client = MlflowClient(tracking_uri)
    assert client.get_run(result.run_id).info.status == "FINISHED"
    assert "workbench.charts_error" not in client.get_run(result.run_id).data.tags
    assert "charts.html" in _artifacts(client, result.run_id, "")
    html = Path(client.download_artifacts(result.run_id, "charts.html")).read_text()
    sections = ["scores_label_match", "cost_quality", "latency", "confusion_label_match_zero_shot"]
    for section in sections:
        assert f'<section id="{section}">' in html, section
    # scores, cost-quality, latency, a heatmap per variant, and the comparison's means, diff and flips
    assert html.count('class="wb-figure"') == 8
    assert html.count("new DecompressionStream(") == 1 and 'src="http' not in html  # carried once: works offline
    assert "Pareto frontier" in html
    # Charts belong to the parent run only.
    for child in client.search_runs(
        [client.get_run(result.run_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'",
    ):
        assert "charts.html" not in _artifacts(client, child.info.run_id, "")


def test_a_failing_chart_warns_and_the_run_still_finishes(
    monkeypatch, fake_key, fake_llm, tracking_uri, variants, reviews, label_match
):
    import workbench.views.charts

    def broken(result):
        raise RuntimeError("latency chart exploded")

    monkeypatch.setattr(workbench.views.charts, "plot_latency", broken)
    with pytest.warns(RuntimeWarning, match="latency: RuntimeError"):
        result = _experiment("chart_fails", variants, reviews, label_match).run(
            tracking_uri=tracking_uri, progress=False, acompletion=fake_llm
        )
    client = MlflowClient(tracking_uri)
    parent = client.get_run(result.run_id)
    assert parent.info.status == "FINISHED"
    assert "latency chart exploded" in parent.data.tags["workbench.charts_error"]
    html = Path(client.download_artifacts(result.run_id, "charts.html")).read_text()
    assert '<section id="latency">' not in html and '<section id="cost_quality">' in html


def test_charts_can_be_turned_off(fake_key, fake_llm, tracking_uri, variants, reviews, label_match):
    from workbench.tracking.tracker import MlflowTracker

    experiment = _experiment("no_charts", variants, reviews, label_match)
    result = experiment.run(log_to_mlflow=False, progress=False, acompletion=fake_llm)
    tracker = MlflowTracker(tracking_uri=tracking_uri, charts=False)
    tracker.start(experiment)
    tracker.log_result(result)
    tracker.finish("FINISHED")
    client = MlflowClient(tracking_uri)
    assert "charts.html" not in _artifacts(client, tracker.parent_run_id, "")
    assert "summary.csv" in _artifacts(client, tracker.parent_run_id, "")


# -- the stakeholder view: names, sources, descriptions, the per-case table, chart size ---------------


def _children(client, parent_id):
    experiment_id = client.get_run(parent_id).info.experiment_id
    runs = client.search_runs([experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'")
    return {run.data.params["variant"]: run for run in runs}


def test_run_names_carry_the_source_and_each_variants_version(
    fake_key, fake_llm, tracking_uri, variants, reviews, label_match
):
    result = _experiment("named", variants, reviews, label_match).run(
        tracking_uri=tracking_uri, progress=False, acompletion=fake_llm, source="playground"
    )
    client = MlflowClient(tracking_uri)
    parent = client.get_run(result.run_id)
    assert parent.info.run_name == "named · playground"
    assert parent.data.tags["workbench.source"] == "playground"
    children = _children(client, result.run_id)
    for variant in variants:
        child = children[variant.name]
        assert child.info.run_name == f"{variant.name}@{variant.version[:7]} · openai/gpt-4o-mini"
        assert child.data.tags["workbench.source"] == "playground"


def test_two_versions_of_a_variant_get_different_run_names(
    fake_key, fake_llm, tracking_uri, variants, reviews, label_match
):
    names = set()
    for temperature in (0, 0.5):
        edited = [wb.PromptVariant(**{**variants[0].to_dict(), "params": {"temperature": temperature}})]
        result = _experiment("versions", edited, reviews, label_match).run(
            tracking_uri=tracking_uri, progress=False, acompletion=fake_llm
        )
        names |= {run.info.run_name for run in _children(MlflowClient(tracking_uri), result.run_id).values()}
    assert len(names) == 2 and all(name.startswith("zero_shot@") for name in names)


def test_the_source_is_detected_report_then_notebook_then_script(monkeypatch):
    import types

    from workbench.tracking.presentation import REPORT_ENV, detect_source

    monkeypatch.delenv(REPORT_ENV, raising=False)
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert detect_source() == "script"
    shell = types.SimpleNamespace(kernel=object())  # what get_ipython() returns inside a Jupyter kernel
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    assert detect_source() == "notebook"
    monkeypatch.setenv(REPORT_ENV, "a-report-id")  # set by `workbench report` for its kernel
    assert detect_source() == "report"
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: types.SimpleNamespace()))
    monkeypatch.delenv(REPORT_ENV)
    assert detect_source() == "script"  # a terminal IPython shell has no kernel


def test_cli_runs_are_named_and_tagged_cli(store_uri, monkeypatch, tmp_path, fake_key, fake_llm, capsys):
    from workbench.cli import main

    run = wb.Experiment.run
    monkeypatch.setattr(wb.Experiment, "run", lambda self, **options: run(self, acompletion=fake_llm, **options))
    tracking_uri = store_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    args = ["experiments/sentiment.yaml", "--model", "openai/gpt-4o-mini", "--limit", "2", "--quiet"]
    assert main(["run", *args]) == 0
    client = MlflowClient(tracking_uri)
    (parent,) = client.search_runs(
        [client.get_experiment_by_name("sentiment").experiment_id], filter_string="tags.`workbench.kind` = 'experiment'"
    )
    assert parent.info.run_name == "sentiment · cli" and parent.data.tags["workbench.source"] == "cli"


def test_the_parent_description_starts_with_the_verdict_and_the_comparison_table(
    fake_key, fake_llm, tracking_uri, variants, reviews, label_match
):
    experiment = _experiment("described", variants, reviews, label_match)
    experiment.description = "Does one example help?"
    result = experiment.run(tracking_uri=tracking_uri, progress=False, acompletion=fake_llm, source="notebook")
    client = MlflowClient(tracking_uri)
    note = client.get_run(result.run_id).data.tags["mlflow.note.content"]
    assert note.startswith(f"**Verdict:** {result.verdict()}\n")
    table = note.splitlines()[
        note.splitlines().index("| scorer | n | zero_shot | few_shot | diff | 95% CI | p | effect size | result |") :
    ]
    assert table[1] == "|" + " --- |" * 9
    row = result.compare("zero_shot", "few_shot")["label_match"]
    assert table[2].startswith(f"| label_match | 6 | {row.mean_baseline:.1%} | {row.mean_candidate:.1%} | ")
    assert f"| zero_shot@{variants[0].version[:7]} | openai/gpt-4o-mini | 6 |" in note  # the variants table
    assert "Started from **notebook**" in note
    assert note.endswith("---\n\nDoes one example help?")  # the experiment's own description last


def test_child_descriptions_are_the_variants_descriptions(
    fake_key, fake_llm, tracking_uri, variants, reviews, label_match
):
    described = [wb.PromptVariant(**{**v.to_dict(), "description": f"The {v.name} prompt."}) for v in variants]
    result = _experiment("child_notes", described, reviews, label_match).run(
        tracking_uri=tracking_uri, progress=False, acompletion=fake_llm
    )
    children = _children(MlflowClient(tracking_uri), result.run_id)
    for variant in described:
        note = children[variant.name].data.tags["mlflow.note.content"]
        assert note.startswith(
            f"The {variant.name} prompt.\n\n`{variant.name}@{variant.version[:7]}` on `openai/gpt-4o-mini`"
        )
        assert f"**Verdict:** {result.verdict()}" in note
        assert children[variant.name].data.tags["workbench.verdict"] == result.verdict()


def test_the_experiment_description_is_set_when_missing_and_never_overwritten(
    store_uri, fake_key, fake_llm, tmp_path, variants, reviews, label_match
):
    tracking_uri = store_uri
    client = MlflowClient(tracking_uri)
    client.create_experiment("exp_note")  # made elsewhere, without a description
    experiment = _experiment("exp_note", variants, reviews, label_match)
    experiment.description = "Is one example enough?"
    experiment.run(tracking_uri=tracking_uri, progress=False, acompletion=fake_llm)
    note = client.get_experiment_by_name("exp_note").tags["mlflow.note.content"]
    assert note.startswith("**Verdict:** open **Evaluation runs** (left), then a run `exp_note · …`")
    assert note.endswith("\n\nIs one example enough?")
    client.set_experiment_tag(client.get_experiment_by_name("exp_note").experiment_id, "mlflow.note.content", "mine")
    experiment.run(tracking_uri=tracking_uri, progress=False, acompletion=fake_llm)
    assert client.get_experiment_by_name("exp_note").tags["mlflow.note.content"] == "mine"


def test_the_description_of_a_failed_run_says_so_first(fake_key, tracking_uri, variants, reviews, label_match):
    llm = FakeLLM(fail=lambda messages: True)
    with pytest.raises(wb.WorkbenchError):
        _experiment("failed_note", variants, reviews, label_match).run(
            tracking_uri=tracking_uri, progress=False, acompletion=llm, cache=False
        )
    client = MlflowClient(tracking_uri)
    (run,) = client.search_runs(
        [client.get_experiment_by_name("failed_note").experiment_id],
        filter_string="tags.`workbench.kind` = 'experiment'",
    )
    assert run.info.status == "FAILED"
    assert run.data.tags["mlflow.note.content"].startswith("**The run failed:** ")


def test_the_per_case_table_is_an_mlflow_table_that_reads_left_to_right(
    fake_key, fake_llm, tracking_uri, variants, reviews, label_match
):
    result = _experiment("case_table", variants, reviews, label_match).run(
        tracking_uri=tracking_uri, progress=False, acompletion=fake_llm
    )
    client = MlflowClient(tracking_uri)
    for child in _children(client, result.run_id).values():
        # The MLflow UI shows an artifact listed in this tag as a table ("View as table").
        assert {"path": "cases.json", "type": "table"} in json.loads(child.data.tags["mlflow.loggedArtifacts"])
        table = json.loads(Path(client.download_artifacts(child.info.run_id, "cases.json")).read_text())
        first = ["case_id", "input.review", "expected.label", "output", "score.label_match", "reason.label_match"]
        assert table["columns"][: len(first)] == first
        assert {"variant", "model", "prompt", "latency_s"} <= set(table["columns"])  # the rest is still there
        assert len(table["data"]) == 6


@pytest.mark.local_store(
    "reads back the order metrics were logged in, which only a SQLite store keeps: PostgreSQL "
    "returns a run's metrics in heap order (MLflow sorts nothing; CI saw zero_shot.n first)"
)
def test_the_primary_metric_is_logged_first(fake_key, fake_llm, tracking_uri, variants, reviews, label_match):
    # MLflow's compare view plots the runs' first shared metric by default (it was ``n``).
    result = _experiment("metric_order", variants, reviews, label_match).run(
        tracking_uri=tracking_uri, progress=False, acompletion=fake_llm
    )
    client = MlflowClient(tracking_uri)
    for child in _children(client, result.run_id).values():
        assert next(iter(child.data.metrics)) == "label_match"
    assert list(client.get_run(result.run_id).data.metrics)[:2] == ["zero_shot.label_match", "few_shot.label_match"]


def test_a_demo_sized_runs_charts_take_under_2_mb(fake_key, fake_llm, tracking_uri):
    experiment = wb.load_experiment("experiments/sentiment.yaml").with_overrides(models=["openai/gpt-4o-mini"])
    result = experiment.run(tracking_uri=tracking_uri, progress=False, acompletion=fake_llm, cache=False)
    client = MlflowClient(tracking_uri)
    html = [a for a in _all_artifacts(client, result.run_id) if a.path.endswith(".html")]
    assert [a.path for a in html] == ["charts.html"]  # one page per run (was charts.html + plots.html, 9.7 MB)
    assert html[0].file_size < 2_000_000


def _all_artifacts(client, run_id, path=""):
    for artifact in client.list_artifacts(run_id, path):
        if artifact.is_dir:
            yield from _all_artifacts(client, run_id, artifact.path)
        else:
            yield artifact


def test_an_early_stop_is_tagged_measured_and_described_on_the_parent(fake_key, tracking_uri, variants, label_match):
    def few_shot_is_right(model, messages):
        from conftest import sentiment_of

        return sentiment_of(messages) if len(messages) > 1 else "positive"

    words = ["Great kettle", "Broke after a day"]
    dataset = wb.Dataset.from_records(
        [
            {"id": f"r{i}", "review": f"{words[i % 2]} #{i}", "label": ["positive", "negative"][i % 2]}
            for i in range(100)
        ],
        expected=["label"],
    )
    result = _experiment("stopped", variants, dataset, label_match).run(
        tracking_uri=tracking_uri, progress=False, acompletion=FakeLLM(few_shot_is_right),
        stop_early=wb.Sequential(looks=5),
    )  # fmt: skip
    stop = result.early_stop
    assert stop is not None and stop.stopped
    parent = MlflowClient(tracking_uri).get_run(result.run_id)
    assert parent.data.tags["workbench.early_stop.decision"] == "benefit"
    assert parent.data.tags["workbench.early_stop.stopped"] == "true"
    assert parent.data.metrics["early_stop.calls_saved"] == stop.calls_saved > 0
    assert parent.data.metrics["early_stop.look"] == stop.look
    description = parent.data.tags["mlflow.note.content"]
    assert f"**Sequential monitoring:** {stop.note}" in description
    assert description.index("**Verdict:**") < description.index("**Sequential monitoring:**")
