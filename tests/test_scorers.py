import asyncio

import pytest
from sklearn.metrics import accuracy_score, f1_score

from workbench import (
    Contains,
    ExactMatch,
    JsonSchemaValid,
    JsonValid,
    LabelMatch,
    RegexMatch,
    ScorerError,
    scorer,
)
from workbench.scorers import run_scorer, scorer_from_spec


def score(s, output, expected=None):
    return asyncio.run(run_scorer(s, inputs={}, outputs=output, expectations=expected or {}))


def test_exact_match_normalisation_options():
    assert score(ExactMatch(), "  Positive ", {"label": "positive"}).value == 1.0
    assert score(ExactMatch(case_sensitive=True), "Positive", {"label": "positive"}).value == 0.0
    assert score(ExactMatch(), "positive.", {"label": "positive"}).value == 0.0
    assert score(ExactMatch(strip_punctuation=True), "positive.", {"label": "positive"}).value == 1.0


def test_exact_match_needs_to_know_which_expected_column():
    with pytest.raises(ScorerError, match="needs `expected=`"):
        ExactMatch().score(inputs={}, outputs="x", expectations={"a": 1, "b": 2})
    with pytest.raises(ScorerError, match="expected column 'label'"):
        ExactMatch(expected="label").score(inputs={}, outputs="x", expectations={"colour": "red"})


def test_contains_and_regex():
    assert score(Contains(value="red"), "It is RED").value == 1.0
    assert score(Contains(), "brand: acme", {"brand": "Acme"}).value == 1.0
    assert score(Contains(value="blue"), "red").value == 0.0
    result = score(RegexMatch(pattern=r"^\s*\d+ cm$"), "12 mm")
    assert result.value == 0.0 and "no match" in result.reason
    with pytest.raises(ScorerError, match="invalid"):
        RegexMatch(pattern="(")


def test_json_valid_and_schema():
    assert score(JsonValid(), '```json\n{"a": 1}\n```').value == 1.0
    assert score(JsonValid(allow_fences=False), '```json\n{"a": 1}\n```').value == 0.0
    schema = {"type": "object", "properties": {"size": {"type": "integer"}}, "required": ["size"]}
    assert score(JsonSchemaValid(schema=schema), '{"size": 42}').value == 1.0
    bad = score(JsonSchemaValid(schema=schema), '{"size": "L"}')
    assert bad.value == 0.0 and "size" in bad.reason
    with pytest.raises(ScorerError, match="schema itself is invalid"):
        JsonSchemaValid(schema={"type": "no-such-type"})


def test_label_match_first_label_wins_and_aggregates_match_sklearn():
    s = LabelMatch(labels=["positive", "negative"], expected="label")
    assert s.predict(" Negative. Not positive at all") == "negative"
    assert s.predict("5/5") == "<unparsed>"
    outputs = ["positive", "negative", "5/5", "Positive!", "negative"]
    truth = ["positive", "positive", "negative", "positive", "negative"]
    metrics = s.aggregate(outputs, [{"label": t} for t in truth])
    predicted = [s.predict(o) for o in outputs]
    assert metrics["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert metrics["macro_f1"] == pytest.approx(
        f1_score(truth, predicted, labels=["positive", "negative"], average="macro", zero_division=0)
    )
    matrix = s.confusion(outputs, [{"label": t} for t in truth])
    assert matrix.loc["negative", "<unparsed>"] == 1 and matrix.loc["positive", "positive"] == 2


def test_label_match_rejects_expected_value_outside_labels():
    with pytest.raises(ScorerError, match="'neutral' is not one of the labels"):
        LabelMatch(labels=["positive", "negative"]).score(inputs={}, outputs="x", expectations={"l": "neutral"})


def test_specs_round_trip_and_unknown_types_are_clear():
    for s in [ExactMatch(expected="label"), LabelMatch(labels=["a", "b"]), RegexMatch(pattern="x")]:
        assert scorer_from_spec(s.spec()) == s
    with pytest.raises(ScorerError, match=r"unknown scorer type 'exact'.*exact_match"):
        scorer_from_spec({"type": "exact"}, where="experiments/x.yaml key 'scorers[0]'")
    with pytest.raises(ScorerError, match=r"no option\(s\) \['lables'\]"):
        scorer_from_spec({"type": "label_match", "lables": ["a"]})


def test_function_scorer_decorator_sync_async_and_reasons():
    @scorer
    def short(outputs):
        return len(outputs.split()) <= 2

    @scorer(name="politeness")
    async def polite(inputs, outputs):
        return (1.0 if "please" in outputs else 0.0, f"for {inputs['q']}")

    assert short.name == "short" and score(short, "one two").value == 1.0
    assert score(short, "one two three").value == 0.0
    result = asyncio.run(run_scorer(polite, inputs={"q": "x"}, outputs="please", expectations={}))
    assert polite.name == "politeness" and result.value == 1.0 and result.reason == "for x"
    assert short.spec()["function"].endswith(":test_function_scorer_decorator_sync_async_and_reasons.<locals>.short")


def test_function_scorer_from_import_path(tmp_path, monkeypatch):
    (tmp_path / "my_scoring.py").write_text("def shouty(outputs):\n    return outputs.isupper()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    s = scorer_from_spec({"type": "function", "function": "my_scoring:shouty"})
    assert s.name == "shouty" and score(s, "YES").value == 1.0 and score(s, "no").value == 0.0
    with pytest.raises(ScorerError, match="cannot import"):
        scorer_from_spec({"type": "function", "function": "no_such_module:fn"})
    with pytest.raises(ScorerError, match="must take at least one of"):
        scorer_from_spec({"type": "function", "function": "os.path:isabs"})
