"""Every call of a run as an MLflow trace, scores as assessments, review labels as HUMAN feedback.

The task model and the judge are the local fake OpenAI server; the store is a fresh SQLite one.
"""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient

import workbench as wb
from workbench.notebook.review import review
from workbench.testing.fake_openai import FakeOpenAIServer
from workbench.tracking.traces import parse_call_key

PLANTED_KEY = "sk-" + "Q7x" * 9  # shaped like an OpenAI key, never seen by the process before
PLANTED_EMAIL = "jane.doe.4471@example.org"
RECORDS = [
    {"id": "a", "review": "Great kettle, boils fast.", "label": "positive"},
    {
        "id": "b",
        "review": f"Broke after two days. Mail me at {PLANTED_EMAIL}, my key is {PLANTED_KEY}",
        "label": "negative",
    },
    {"id": "c", "review": "Lovely soft towels.", "label": "negative"},  # the task model gets this one wrong
]


def _reply(body: dict) -> str:
    text = body["messages"][-1]["content"]
    if "Response to judge" in text:  # the judge passes a sentiment word, with a reason
        passed = "positive" in text.split("Response to judge")[-1] or "negative" in text.split("Response to judge")[-1]
        return json.dumps({"reason": "names a label", "score": "PASS" if passed else "FAIL"})
    return "negative" if "broke" in text.lower() else "positive"


@pytest.fixture(params=["thread", "process"])
def writer(request, monkeypatch):
    """Which writer stores the traces: the run's thread, or (forced for 3 calls) the writer process."""
    from workbench.tracking import trace_store, traces

    started: list[trace_store.WriterProcess] = []

    class Counted(trace_store.WriterProcess):
        def __init__(self, *args: str) -> None:
            super().__init__(*args)
            started.append(self)

    monkeypatch.setattr(trace_store, "WriterProcess", Counted)
    if request.param == "process":
        monkeypatch.setattr(traces, "PROCESS_FROM", 1)
    yield request.param
    assert len(started) == (request.param == "process")


@pytest.fixture
def server():
    with FakeOpenAIServer(reply=_reply) as running:
        yield running


def _experiment(server: FakeOpenAIServer, *, traces: bool = True) -> wb.Experiment:
    params = {"api_base": server.base_url, "api_key": "sk-fake-0000000000000000", "temperature": 0}
    return wb.Experiment(
        name=f"traced-{traces}",
        variants=[wb.PromptVariant(name="plain", prompt="Review: {{ review }}\nSentiment:", params=params)],
        dataset=wb.Dataset.from_records(RECORDS, expected=["label"]),
        models=["openai/fake"],
        scorers=[
            wb.LabelMatch(expected="label", labels=["positive", "negative"]),
            wb.LLMJudge(rubric="The answer is a sentiment label.", model="openai/judge", params=params),
        ],
        settings=wb.RunSettings(traces=traces),
    )


def _case(trace) -> str:
    return parse_call_key(trace.info.tags["workbench.call"])["case_id"]


def _traces(uri: str, result: wb.ExperimentResult) -> list:
    client = MlflowClient(uri)
    experiment = client.get_run(result.run_id).info.experiment_id
    return client.search_traces(locations=[experiment], max_results=100)


def test_a_run_writes_one_redacted_trace_per_call_linked_to_its_variant_run(server, store_uri, writer):
    uri = store_uri
    result = _experiment(server).run(tracking_uri=uri, progress=False)
    client = MlflowClient(uri)
    traces = _traces(uri, result)
    assert len(traces) == 3  # one per case x variant x model
    assert {_case(t) for t in traces} == {"a", "b", "c"}
    child = client.search_runs(
        [client.get_run(result.run_id).info.experiment_id], filter_string="tags.`workbench.kind` = 'variant'"
    )[0]
    linked = client.search_traces(locations=[child.info.experiment_id], run_id=child.info.run_id, max_results=100)
    assert len(linked) == 3  # the variant's run lists its traces

    stored = json.dumps([t.to_dict() for t in traces], ensure_ascii=False)
    assert "Broke after two days" in stored  # the inputs are there...
    assert PLANTED_KEY not in stored and PLANTED_EMAIL not in stored  # ...redacted

    by_case = {_case(t): t for t in traces}
    rows = result.cases.set_index("case_id")
    trace = client.get_trace(by_case["a"].info.trace_id)
    call = next(s for s in trace.data.spans if s.span_type == "CHAT_MODEL")
    judge = next(s for s in trace.data.spans if s.name == "judge llm_judge")
    assert call.get_attribute("mlflow.chat.tokenUsage") == {
        "input_tokens": int(rows.loc["a", "prompt_tokens"]),
        "output_tokens": int(rows.loc["a", "completion_tokens"]),
        "total_tokens": int(rows.loc["a", "prompt_tokens"] + rows.loc["a", "completion_tokens"]),
    }
    assert call.get_attribute("workbench.latency_s") == pytest.approx(rows.loc["a", "latency_s"])
    assert call.get_attribute("workbench.cached") is False
    assert call.get_attribute("mlflow.llm.model") == "openai/fake"
    assert call.outputs == "positive"
    assert judge.outputs == {"score": 1.0, "reason": "names a label"}
    assert judge.parent_id == trace.data.spans[0].span_id
    assert trace.info.request_preview and "Great kettle" in trace.info.request_preview
    # the trace's tokens add the judge's to the call's
    judge_tokens = rows.loc["a", "judge.llm_judge.prompt_tokens"] + rows.loc["a", "judge.llm_judge.completion_tokens"]
    assert trace.info.token_usage["total_tokens"] == call.get_attribute("mlflow.chat.tokenUsage")["total_tokens"] + int(
        judge_tokens
    )


def test_scores_are_assessments_with_their_source_and_reason(server, store_uri, writer):
    uri = store_uri
    result = _experiment(server).run(tracking_uri=uri, progress=False)
    rows = result.cases.set_index("case_id")
    for trace in _traces(uri, result):
        case = _case(trace)
        found = {a.name: a for a in trace.info.assessments}
        assert found["label_match"].value == rows.loc[case, "score.label_match"]
        assert found["label_match"].source.source_type == "CODE"
        assert found["llm_judge"].value == rows.loc[case, "score.llm_judge"]
        assert found["llm_judge"].source.source_type == "LLM_JUDGE"
        assert found["llm_judge"].rationale == "names a label"
    assert rows.loc["c", "score.label_match"] == 0.0  # a failing score is there too, not only passes


def test_traces_switched_off_write_none(server, store_uri, tmp_path):
    uri = store_uri
    result = _experiment(server, traces=False).run(tracking_uri=uri, progress=False)
    assert result.n_rows == 3
    assert _traces(uri, result) == []


def test_yaml_settings_switch_traces_off(tmp_path):
    path = tmp_path / "x.yaml"
    data = tmp_path / "d.csv"
    data.write_text("id,review\na,good\n")
    path.write_text(
        f"name: x\ndataset: {{path: {data}}}\nmodels: [openai/fake]\n"
        "variants: [{name: v, prompt: 'R: {{ review }}'}]\nsettings: {traces: false}\n"
    )
    assert wb.load_experiment(path).settings.traces is False


def test_a_review_label_reaches_the_trace_and_comes_back_for_judge_agreement(server, store_uri, tmp_path, monkeypatch):
    from workbench.tracking import human_feedback

    monkeypatch.setattr(human_feedback, "PAGE", 2)  # 3 traces: the labels are read over two pages
    uri = store_uri
    result = _experiment(server).run(tracking_uri=uri, progress=False)
    rv = review(result, labels_path=tmp_path / "labels.jsonl")
    rv.label("up", comment=f"fine, ask {PLANTED_EMAIL}")  # a
    rv.label("down")  # b
    rv.label("down")  # c
    rv.go(2)
    rv.label("up")  # c again: the latest click wins
    assert "to its trace" in rv.status

    labels = wb.human_labels_from_mlflow(result.run_id, tracking_uri=uri)
    assert dict(zip(labels["case_id"], labels["label"], strict=True)) == {"a": "up", "b": "down", "c": "up"}
    assert PLANTED_EMAIL not in " ".join(labels["comment"])
    trace = next(t for t in _traces(uri, result) if _case(t) == "b")
    human = [a for a in trace.info.assessments if a.source.source_type == "HUMAN"]
    assert [a.value for a in human] == [False]

    agreement = wb.judge_agreement(result, labels, score="llm_judge")
    local = wb.judge_agreement(result, rv, score="llm_judge")
    assert agreement.n == 3
    assert agreement.agreement == pytest.approx(local.agreement)
    assert agreement.agreement == pytest.approx(2 / 3)  # the judge passes b, the human does not


def test_past_the_limit_calls_are_counted_not_traced(server, store_uri, tmp_path, monkeypatch):
    from workbench.tracking import traces

    monkeypatch.setattr(traces, "MAX_TRACES", 2)
    uri = store_uri
    result = _experiment(server).run(tracking_uri=uri, progress=False)
    assert len(_traces(uri, result)) == 2
    assert "traces: the first 2 calls were traced, 1 more were not" in result.notes
