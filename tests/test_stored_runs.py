"""Runs reopened from MLflow: ``wb.load_run``, ``wb.runs``, aliases, cross-run comparisons and
``workbench gate --baseline-run`` (only the candidate runs; the baseline costs no call).

The run reopened has errors, repeats, two models and an LLM judge (the run store's own test
run), so every column and both kinds of scorer come back. A real ``mlflow server`` process on
127.0.0.1 serves it too, with its artifacts proxied over HTTP.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from browser_support import Server, free_port
from conftest import ROOT, sample_reviews
from test_runstore import JUDGE, MODELS, fake_model

import workbench as wb
from workbench.cli import main
from workbench.testing.fake_openai import FakeOpenAIServer
from workbench.tracking import MlflowWriter


def judged_experiment(name: str = "stored") -> wb.Experiment:
    zero = wb.PromptVariant(name="zero_shot", prompt="Review: {{ review }}\nSentiment:")
    few = wb.PromptVariant(
        name="few_shot", prompt="Review: {{ review }}\nSentiment:", examples=[{"review": "Nice.", "output": "positive"}]
    )
    return wb.Experiment(
        name=name,
        variants=[zero, few],
        dataset=sample_reviews(),
        models=MODELS,
        scorers=[
            wb.LabelMatch(expected="label", labels=["positive", "negative"]),
            wb.LLMJudge(rubric="The answer is a sentiment label.", model=JUDGE),
        ],
        repeats=2,
        settings=wb.RunSettings(max_error_rate=0.5),
    )


@pytest.fixture
def stored(store_uri, tmp_path, fake_key) -> tuple[str, wb.ExperimentResult]:
    uri = store_uri
    result = judged_experiment().run(tracking_uri=uri, progress=False, acompletion=fake_model)
    return uri, result


def test_load_run_in_a_fresh_process_gives_the_run_back(stored, tmp_path):
    uri, result = stored
    out = tmp_path / "reopened"
    script = textwrap.dedent(
        f"""
        import json, workbench as wb
        run = wb.load_run({result.run_id!r}, tracking_uri={uri!r})
        run.cases.to_parquet({str(out / "cases.parquet")!r})
        run.summary.to_parquet({str(out / "summary.parquet")!r})
        cmp = run.compare("zero_shot", "few_shot", model={MODELS[1]!r}, n_resamples=500)
        json.dump({{
            "verdicts": cmp.verdicts, "hash": run.experiment.dataset.content_hash,
            "variants": {{v.name: v.version for v in run.experiment.variants}},
            "scorers": [type(s).__name__ for s in run.experiment.scorers], "models": run.experiment.models,
            "calls_made": run.calls_made, "n_cases": len(run.experiment.dataset),
        }}, open({str(out / "about.json")!r}, "w"))
        """
    )
    out.mkdir()
    env = {**os.environ, "WORKBENCH_RUNS": str(tmp_path / "other-runs")}  # nothing of the first process's
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=tmp_path, timeout=300)

    cases = pd.read_parquet(out / "cases.parquet")
    strings = {
        c: result.cases[c].dtype for c in result.cases.columns if isinstance(result.cases[c].dtype, pd.StringDtype)
    }
    pd.testing.assert_frame_equal(cases.astype(strings), result.cases)  # Parquet in between: string dtype restored
    assert result.cases["error"].notna().sum() == 4  # not vacuous: errors, repeats, both models, a judge
    pd.testing.assert_frame_equal(pd.read_parquet(out / "summary.parquet"), result.summary, check_dtype=False)
    about = json.loads((out / "about.json").read_text())
    same = result.compare("zero_shot", "few_shot", model=MODELS[1], n_resamples=500)
    assert about["verdicts"] == same.verdicts
    assert about["hash"] == result.experiment.dataset.content_hash
    assert about["variants"] == {v.name: v.version for v in result.experiment.variants}
    assert about["scorers"] == ["LabelMatch", "LLMJudge"] and about["models"] == MODELS
    assert about["calls_made"] == result.calls_made and about["n_cases"] == 6
    assert (tmp_path / "other-runs" / "mlflow" / result.run_id / "cases.parquet").exists()


def test_compare_results_pairs_a_stored_run_with_a_new_one_and_says_what_did_not_pair(stored, tmp_path):
    uri, result = stored
    old = wb.load_run(result.run_id, tracking_uri=uri)
    # Today's dataset: two cases dropped, one added, so the hashes differ.
    records = sample_reviews().frame.to_dict("records")[2:] + [{"id": "g", "review": "Bad lid.", "label": "negative"}]
    today = judged_experiment().with_overrides(models=[MODELS[0]], repeats=2)
    today.dataset = wb.Dataset.from_records(records, expected=["label"])
    new = today.with_overrides(variants=["few_shot"]).run(log_to_mlflow=False, progress=False, acompletion=fake_model)

    cmp = wb.compare_results(old, new, baseline_variant="zero_shot", model=MODELS[0], n_resamples=500)
    old_rows = result.cases[(result.cases["variant"] == "zero_shot") & (result.cases["model"] == MODELS[0])]
    same = wb.compare_results(old_rows, new.cases, model=MODELS[0], n_resamples=500)
    assert cmp.verdicts == same.verdicts and len(cmp.pairs) == len(same.pairs) == 4 * 2
    notes = " ".join(cmp.notes)
    assert "4 cases are in both runs and compared; 2 baseline case(s) are not in the candidate run" in notes
    assert "1 candidate case(s) are not in the baseline run" in notes
    assert (
        f"datasets differ (hash {result.experiment.dataset.content_hash} vs {new.experiment.dataset.content_hash})"
        in notes
    )
    with pytest.raises(
        wb.UsageError, match=r"ran variants \['zero_shot', 'few_shot'\]; say which with baseline_variant"
    ):
        wb.compare_results(old, new)


def test_runs_lists_filters_and_aliases_move(stored, fake_key):
    uri, first = stored
    second = (
        judged_experiment()
        .with_overrides(variants=["few_shot"])
        .run(tracking_uri=uri, progress=False, acompletion=fake_model)
    )
    table = wb.runs(tracking_uri=uri)
    assert list(table["run_id"]) == [second.run_id, first.run_id]  # newest first
    assert table.loc[1, "variants"] == {v.name: v.version for v in first.experiment.variants}
    assert list(wb.runs(tracking_uri=uri, variant="zero_shot")["run_id"]) == [first.run_id]
    assert wb.runs(tracking_uri=uri, experiment="no such experiment").empty
    assert len(wb.runs(tracking_uri=uri, since="1h")) == 2 and wb.runs(tracking_uri=uri, since=timedelta(0)).empty

    wb.set_alias(first.run_id, "production", variant="few_shot", tracking_uri=uri)
    assert wb.load_run("stored@production", tracking_uri=uri).run_id == first.run_id
    wb.set_alias(second.run_id, "production", tracking_uri=uri)  # the alias moves
    table = wb.runs(tracking_uri=uri).set_index("run_id")
    assert table.loc[second.run_id, "aliases"] == "production" and table.loc[first.run_id, "aliases"] == ""
    moved = wb.load_run("production", experiment="stored", tracking_uri=uri)
    assert moved.run_id == second.run_id and moved.picked_variant is None
    # A variant's own run (its child run id, as the UI shows it) opens the whole run, that variant picked.
    writer = MlflowWriter(uri)
    child = writer.client.search_runs(
        [writer.experiment_id("stored")], filter_string=f"tags.mlflow.parentRunId = '{first.run_id}'"
    )[0]
    picked = wb.load_run(child.info.run_id, tracking_uri=uri)
    assert picked.run_id == first.run_id and picked.picked_variant == child.data.params["variant"]


def test_bad_references_say_what_to_do(stored):
    uri, result = stored
    with pytest.raises(wb.UsageError, match=rf"no run '0{{32}}' in {re.escape(uri)}.*wb.runs\(\)"):
        wb.load_run("0" * 32, tracking_uri=uri)
    with pytest.raises(wb.UsageError, match=r"no run is aliased 'staging' in experiment 'stored'.*aliases there: none"):
        wb.load_run("stored@staging", tracking_uri=uri)
    with pytest.raises(wb.UsageError, match=r"'production' is not a run id; .*'<experiment>@production'"):
        wb.load_run("production", tracking_uri=uri)
    with pytest.raises(wb.UsageError, match=r"has no variant 'nope'"):
        wb.set_alias(result.run_id, "production", variant="nope", tracking_uri=uri)


# -- workbench gate --baseline-run ------------------------------------------------------------------


def _reply(body: dict) -> str:
    """The task model: right on every case, except the 'worse' variant, which says positive to everything."""
    text = body["messages"][-1]["content"]
    if "Be upbeat." in json.dumps(body["messages"]):
        return "positive"
    return "negative" if any(w in text.lower() for w in ("broke", "awful", "never", "bad")) else "positive"


@pytest.fixture
def gate_setup(store_uri, tmp_path, monkeypatch, fake_key):
    words = [("Broke", "negative"), ("Great", "positive"), ("Awful", "negative"), ("Lovely", "positive")] * 10
    reviews = [(f"r{i}", f"{word} item number {i}.", label) for i, (word, label) in enumerate(words)]
    data = tmp_path / "reviews.csv"
    pd.DataFrame(reviews, columns=["id", "review", "label"]).to_csv(data, index=False)
    server = FakeOpenAIServer(reply=_reply).start()
    spec = {
        "name": "gated",
        "dataset": {"path": str(data), "expected": ["label"]},
        "models": ["openai/fake"],
        "variants": [
            {
                "name": v,
                "prompt": "Review: {{ review }}\nSentiment:",
                "system": s,
                "params": {"api_base": server.base_url, "temperature": 0},
            }
            for v, s in (("live", "Label the review."), ("same", "Label the review, please."), ("worse", "Be upbeat."))
        ],  # fmt: skip
        "scorers": [{"type": "label_match", "expected": "label", "labels": ["positive", "negative"]}],
    }
    path = tmp_path / "gated.yaml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)
    try:
        yield path, server
    finally:
        server.stop()


def test_gate_against_a_stored_baseline_runs_only_the_candidate(gate_setup, capsys):
    path, server = gate_setup
    live = wb.load_experiment(path).with_overrides(variants=["live"]).run(progress=False)
    assert server.requests == 40
    assert main(["alias", live.run_id, "production", "--variant", "live"]) == 0
    assert f"production -> run {live.run_id} (variant live)" in capsys.readouterr().out

    server.reset_stats()
    assert main(["gate", str(path), "--baseline-run", "production", "--candidate", "worse", "--quiet"]) == 1
    out = capsys.readouterr().out
    assert server.requests == 40  # the candidate's 40 calls; none for the baseline
    assert f"baseline: MLflow run {live.run_id} (not re-run)" in out
    assert "Gate FAILED" in out and "significant regression" in out and "worse (candidate) vs live (baseline)" in out

    server.reset_stats()
    assert main(["gate", str(path), "--baseline-run", "production", "--candidate", "same", "--quiet"]) == 0
    assert server.requests == 40 and "Gate passed." in capsys.readouterr().out
    assert main(["runs", "--experiment", "gated"]) == 0
    listed = capsys.readouterr().out
    assert live.run_id in listed and "production" in listed and listed.count("gated") == 3


def test_gate_without_a_candidate_it_can_tell_stops_before_any_call(gate_setup, capsys):
    path, server = gate_setup
    live = wb.load_experiment(path).with_overrides(variants=["live"]).run(progress=False)
    server.reset_stats()
    assert main(["gate", str(path), "--baseline-run", live.run_id, "--quiet"]) == 2
    assert "say which variant of 'gated' is the candidate" in capsys.readouterr().err
    assert server.requests == 0


# -- a real mlflow server ----------------------------------------------------------------------------


@pytest.fixture
def mlflow_server(tmp_path, tracking_server, request):
    if tracking_server is not None:  # the server pass: the session's team server, logged in
        yield request.getfixturevalue("store_uri")
        return
    port = free_port()
    mlflow = Path(sys.executable).parent / "mlflow"
    argv = [str(mlflow), "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination", str(tmp_path / "server-artifacts"), "--serve-artifacts",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = Server("mlflow server", argv, env=env, cwd=tmp_path, log=tmp_path / "mlflow-server.log")
    try:
        server.wait_until_up(f"http://127.0.0.1:{port}/health", timeout=120)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.mark.mlflow
def test_load_run_from_a_real_mlflow_server(mlflow_server, tmp_path, monkeypatch, fake_key):
    result = judged_experiment("served").run(tracking_uri=mlflow_server, progress=False, acompletion=fake_model)
    monkeypatch.setenv("WORKBENCH_RUNS", str(tmp_path / "fresh-runs"))  # nothing local: all over HTTP
    reopened = wb.load_run(result.run_id, tracking_uri=mlflow_server)
    pd.testing.assert_frame_equal(reopened.cases, result.cases)
    assert reopened.tracking_uri == mlflow_server
    assert list(wb.runs(tracking_uri=mlflow_server, experiment="served")["run_id"]) == [result.run_id]
    wb.set_alias(result.run_id, "production", variant="zero_shot", tracking_uri=mlflow_server)
    assert wb.load_run("served@production", tracking_uri=mlflow_server).picked_variant == "zero_shot"
    assert not list(ROOT.glob("mlruns/artifacts/*/" + result.run_id))  # the server kept the artifacts
