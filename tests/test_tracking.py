import json
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
    plots = Path(client.download_artifacts(result.run_id, "cmp.few_shot_vs_zero_shot/plots.html")).read_text()
    assert plots.count("Plotly.newPlot") == 3
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
    assert html.count("Plotly.newPlot") == 5  # scores, cost-quality, latency, a heatmap per variant
    assert html.count("plotly.js v") == 1 and 'src="http' not in html  # inlined once: works offline
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
