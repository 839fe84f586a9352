"""MLflow GenAI scorers in workbench runs, and workbench scorers in ``mlflow.genai.evaluate``."""

import json
import math

import litellm
import mlflow
import mlflow.genai
import pytest
from conftest import FakeLLM
from mlflow.entities import Feedback
from mlflow.genai.judges import make_judge
from mlflow.genai.scorers import RegexMatch

import workbench as wb
from workbench.core import schema as col
from workbench.core.exceptions import ConfigError, ScorerError
from workbench.scorers import scorer_from_spec
from workbench.testing.fake_openai import FakeOpenAIServer

# One MLflow scorer per return kind MLflow allows: bool, number, str, Feedback, list of Feedback.


@mlflow.genai.scorer
def says_negative(outputs) -> bool:
    return outputs.strip() == "negative"


@mlflow.genai.scorer
def length_of_answer(outputs) -> int:
    return len(outputs)


@mlflow.genai.scorer
def agrees(outputs, expectations) -> str:
    return "yes" if outputs.strip() == expectations["label"] else "no"


@mlflow.genai.scorer
def judged(inputs, outputs, expectations) -> Feedback:
    right = outputs.strip() == expectations["label"]
    return Feedback(value=right, rationale=f"review {inputs['review'][:12]!r}: said {outputs!r}")


@mlflow.genai.scorer
def two_views(outputs, expectations) -> list[Feedback]:
    return [
        Feedback(name="right_label", value=outputs == expectations["label"], rationale="label check"),
        Feedback(name="one_word", value=len(outputs.split()) == 1, rationale="word count"),
    ]


@mlflow.genai.scorer
def graded(outputs) -> str:
    return "good" if outputs == "positive" else "bad"


def _run(reviews, variants, scorers):
    experiment = wb.Experiment(
        name="mlflow-scorers", variants=variants[:1], dataset=reviews, models=["openai/gpt-4o-mini"], scorers=scorers
    )
    return experiment.run(log_to_mlflow=False, progress=False, acompletion=FakeLLM())


def test_each_return_kind_of_an_mlflow_scorer_becomes_a_workbench_score(fake_key, reviews, variants):
    scorers = [
        says_negative,
        length_of_answer,
        agrees,
        judged,
        wb.from_mlflow_scorer(two_views, feedback="right_label"),
        wb.from_mlflow_scorer(graded, labels={"good": 1.0, "bad": 0.25}),
        RegexMatch(pattern=r"^neg"),  # a built-in scorer object: deterministic, no model
    ]
    cases = _run(reviews, variants, scorers).cases.set_index("case_id")
    # FakeLLM answers from keywords: "Not bad at all" (case e, labelled positive) comes out negative.
    negative = {"b", "c", "e", "f"}
    for case in "abcdef":
        row = cases.loc[case]
        reply = row[col.OUTPUT]
        right = float(case != "e")
        assert reply == ("negative" if case in negative else "positive")
        assert row[col.score_column("says_negative")] == float(case in negative)
        assert row[col.score_column("length_of_answer")] == len(reply)
        assert row[col.score_column("agrees")] == right
        assert row[col.score_column("judged")] == right
        assert (
            row[col.reason_column("judged")].startswith("review ") and repr(reply) in row[col.reason_column("judged")]
        )
        assert row[col.score_column("right_label")] == right
        assert row[col.reason_column("right_label")] == "label check"
        assert row[col.score_column("graded")] == (0.25 if case in negative else 1.0)
        assert row[col.score_column("regex_match")] == float(case in negative)
        assert "pattern" in row[col.reason_column("regex_match")]


def test_a_wrong_answer_scores_zero_through_the_adapter(fake_key, reviews, variants):
    always_positive = FakeLLM(reply=lambda model, messages: "positive")
    experiment = wb.Experiment(
        name="mlflow-scorers", variants=variants[:1], dataset=reviews, models=["openai/gpt-4o-mini"], scorers=[judged]
    )
    cases = experiment.run(log_to_mlflow=False, progress=False, acompletion=always_positive).cases
    by_case = dict(zip(cases["case_id"], cases[col.score_column("judged")], strict=True))
    assert by_case == {"a": 1.0, "b": 0.0, "c": 0.0, "d": 1.0, "e": 1.0, "f": 0.0}


def test_an_mlflow_llm_judge_in_a_run_through_the_fake_openai_server(fake_key, reviews, variants):
    asked = []

    def verdict(body):  # the judge's model: "yes" when the reply it is shown says positive
        asked.append(body)
        shown = body["messages"][-1]["content"]
        return json.dumps({"result": "yes" if "positive" in shown else "no", "rationale": "read the reply"})

    with FakeOpenAIServer(reply=verdict) as server:
        judge = make_judge(
            name="upbeat",
            instructions="Is the reply {{ outputs }} upbeat? Answer yes or no.",
            model="openai:/gpt-4o-mini",
            base_url=f"{server.base_url}/chat/completions",
        )
        cases = _run(reviews, variants, [judge]).cases.set_index("case_id")

    assert len(asked) == 6 and all(body["model"] == "gpt-4o-mini" for body in asked)
    assert list(cases[col.score_column("upbeat")]) == [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]  # e is "negative" (see above)
    assert set(cases[col.reason_column("upbeat")]) == {"read the reply"}
    prompt = cases[col.judge_column("upbeat", "prompt_tokens")]
    completion = cases[col.judge_column("upbeat", "completion_tokens")]
    assert (prompt > 0).all() and (completion > 0).all()
    cost = cases[col.judge_column("upbeat", "cost_usd")]
    for p, c, usd in zip(prompt, completion, cost, strict=True):
        assert usd == pytest.approx(
            sum(litellm.cost_per_token(model="openai/gpt-4o-mini", prompt_tokens=int(p), completion_tokens=int(c)))
        )


def test_the_adapter_is_logged_as_a_spec_that_builds_it_again(reviews, variants):
    experiment = wb.Experiment(
        name="spec", variants=variants, dataset=reviews, scorers=[says_negative, RegexMatch(pattern="^neg")]
    )
    specs = [s.spec() for s in experiment.scorers]
    assert specs[0] == {"type": "mlflow_scorer", "scorer": "test_mlflow_scorers:says_negative"}
    assert specs[1] == {
        "type": "mlflow_scorer",
        "scorer": "mlflow.genai.scorers.builtin_scorers:RegexMatch",
        "config": {"pattern": "^neg"},
    }
    rebuilt = scorer_from_spec(specs[1])
    assert rebuilt.mlflow_scorer.pattern == "^neg"
    assert scorer_from_spec(specs[0]).mlflow_scorer is says_negative

    judge = make_judge(name="upbeat", instructions="Is {{ outputs }} upbeat?", model="openai:/gpt-4o-mini")
    spec = wb.from_mlflow_scorer(judge).spec()
    assert spec["config"] == {
        "name": "upbeat",
        "instructions": "Is {{ outputs }} upbeat?",
        "model": "openai:/gpt-4o-mini",
    }
    again = scorer_from_spec(spec).mlflow_scorer
    assert (again.name, again.instructions, again.model) == (
        "upbeat",
        "Is {{ outputs }} upbeat?",
        "openai:/gpt-4o-mini",
    )


def _only_reasons(cases, name):
    assert cases[col.score_column(name)].isna().all()  # a scorer error is not a zero (the run goes on)
    return set(cases[col.reason_column(name)])


def test_a_list_of_feedback_without_a_choice_says_which_names_to_pick(fake_key, reviews, variants):
    (reason,) = _only_reasons(_run(reviews, variants, [two_views]).cases, "two_views")
    assert "2 feedbacks ['right_label', 'one_word']" in reason
    assert "wb.from_mlflow_scorer(scorer, feedback=<name>)" in reason


def test_a_label_without_a_number_names_the_fix(fake_key, reviews, variants):
    reasons = _only_reasons(_run(reviews, variants, [graded]).cases, "graded")
    assert any("returned the label 'good'" in r and "labels={'good': 1.0" in r for r in reasons)
    assert any("returned the label 'bad'" in r for r in reasons)


def test_a_parameter_a_run_cannot_give_is_named_with_the_fix(reviews, variants):
    @mlflow.genai.scorer
    def uses_response(response) -> bool:
        return bool(response)

    with pytest.raises(ScorerError, match=r"parameter 'response'.*rename it to one of \['inputs', 'outputs'"):
        wb.Experiment(name="x", variants=variants, dataset=reviews, scorers=[uses_response])


def test_a_session_level_scorer_is_refused_with_the_reason():
    @mlflow.genai.scorer
    def whole_chat(session) -> bool:
        return bool(session)

    with pytest.raises(ScorerError, match="session-level"):
        wb.from_mlflow_scorer(whole_chat)


def test_an_object_that_is_no_scorer_is_refused_before_any_call(reviews, variants):
    with pytest.raises(ConfigError, match=r"scorers\[0\].*no `score` method.*from_mlflow_scorer"):
        wb.Experiment(name="x", variants=variants, dataset=reviews, scorers=[object()])


# The other way: workbench scorers in mlflow.genai.evaluate, on a static dataset (no predict_fn, no model).


@pytest.fixture
def own_store(tmp_path, monkeypatch):
    """A tmp store as MLflow's global tracking URI for this test only (evaluate logs to the active one)."""
    before = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("workbench-scorers-in-mlflow")
    yield uri
    mlflow.set_tracking_uri(before)


def test_a_workbench_scorer_in_mlflow_genai_evaluate(own_store):

    @wb.scorer
    def one_word(outputs):
        n = len(outputs.split())
        return n == 1, f"{n} word(s)"

    data = [
        {"inputs": {"review": "Great kettle."}, "outputs": "positive", "expectations": {"label": "positive"}},
        {"inputs": {"review": "Broke at once."}, "outputs": "positive", "expectations": {"label": "negative"}},
        {"inputs": {"review": "Awful."}, "outputs": "it is negative", "expectations": {"label": "negative"}},
        {"inputs": {"review": "Lovely."}, "outputs": "positive", "expectations": {"label": "positive"}},
    ]
    scorers = [wb.to_mlflow_scorer(wb.ExactMatch(expected="label")), wb.to_mlflow_scorer(one_word)]
    result = mlflow.genai.evaluate(data=data, scorers=scorers)

    assert result.metrics["exact_match/mean"] == pytest.approx(0.5)
    assert result.metrics["one_word/mean"] == pytest.approx(0.75)
    traces = mlflow.search_traces(run_id=result.run_id, return_type="list")
    assert len(traces) == 4
    seen = {}
    for trace in traces:
        by_name = {a.name: a for a in trace.info.assessments if isinstance(a, Feedback)}
        review = next(row["inputs"]["review"] for row in data if row["inputs"]["review"] in trace.data.request)
        seen[review] = (by_name["exact_match"].value, by_name["one_word"].value, by_name["one_word"].rationale)
    assert seen == {
        "Great kettle.": (1.0, 1.0, "1 word(s)"),
        "Broke at once.": (0.0, 1.0, "1 word(s)"),
        "Awful.": (0.0, 0.0, "3 word(s)"),
        "Lovely.": (1.0, 1.0, "1 word(s)"),
    }


def test_an_unscorable_row_is_an_error_feedback_not_a_zero():
    wrapped = wb.to_mlflow_scorer(wb.JsonSchemaValid(schema={"type": "object"}))
    good = wrapped(inputs={}, outputs='{"a": 1}', expectations={})
    assert good.value == 1.0
    nan = wb.scorer(lambda outputs: math.nan)
    feedback = wb.to_mlflow_scorer(nan, name="nan_scorer")(inputs={}, outputs="x", expectations={})
    assert feedback.value is None and feedback.error is not None


def test_to_mlflow_scorer_refuses_what_is_not_a_workbench_scorer():
    with pytest.raises(ScorerError, match="already an MLflow scorer"):
        wb.to_mlflow_scorer(says_negative)
    with pytest.raises(ScorerError, match="no `score` method"):
        wb.to_mlflow_scorer(object())


def test_yaml_names_an_mlflow_scorer_by_import_path(fake_key, tmp_path, variants):
    data = tmp_path / "reviews.csv"
    data.write_text("id,review,label\na,Broke after two days.,negative\nb,Great kettle.,positive\n")
    exp = wb.experiment_from_dict(
        {
            "name": "yaml-mlflow",
            "dataset": {"path": str(data), "expected": ["label"]},
            "variants": [{"name": "v", "prompt": "Review: {{ review }}"}],
            "models": ["openai/gpt-4o-mini"],
            "scorers": [
                {"type": "mlflow_scorer", "scorer": "test_mlflow_scorers:judged"},
                {"type": "mlflow_scorer", "scorer": "mlflow.genai.scorers:RegexMatch", "config": {"pattern": "^neg"}},
            ],
        }
    )
    cases = exp.run(log_to_mlflow=False, progress=False, acompletion=FakeLLM()).cases.set_index("case_id")
    assert list(cases[col.score_column("judged")]) == [1.0, 1.0]
    assert list(cases[col.score_column("regex_match")]) == [1.0, 0.0]


def test_a_bad_yaml_config_names_the_scorer_and_the_problem():
    with pytest.raises(ScorerError, match=r"cannot build 'mlflow.genai.scorers:RegexMatch' from config"):
        scorer_from_spec({"type": "mlflow_scorer", "scorer": "mlflow.genai.scorers:RegexMatch", "config": {}})
    with pytest.raises(ScorerError, match=r"'json:dumps' is not an MLflow GenAI scorer"):
        scorer_from_spec({"type": "mlflow_scorer", "scorer": "json:dumps"})


def test_a_workbench_llm_judge_in_mlflow_calls_through_the_call_path_it_is_given(fake_key, tmp_path):
    from workbench.engine.cache import ResponseCache
    from workbench.engine.calls import CallPath

    verdicts = FakeLLM(reply=lambda model, messages: '{"reason": "says it plainly", "score": 1}')
    calls = CallPath(wb.RunSettings(), acompletion=verdicts, cache=ResponseCache(tmp_path / "judge.sqlite"))
    judge = wb.LLMJudge(rubric="The reply names the sentiment.", model="openai/gpt-4o-mini")
    wrapped = wb.to_mlflow_scorer(judge, models=calls)
    first = wrapped(inputs={"review": "Great."}, outputs="positive", expectations={})
    again = wrapped(inputs={"review": "Great."}, outputs="positive", expectations={})
    assert (first.value, first.rationale) == (1.0, "says it plainly") == (again.value, again.rationale)
    assert len(verdicts.calls) == 1  # the second verdict came from the call path's cache
