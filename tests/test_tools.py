"""ToolCallMatch: BFCL-style checks of tool calls, pinned to hand-computed cases, and one faked run."""

from __future__ import annotations

import asyncio
import json
import math

import litellm
import pytest
from conftest import FakeLLM

import workbench as wb
from workbench.core.outputs import ToolCall, tool_calls_from_json, tool_calls_to_json
from workbench.scorers import ScoringContext, ToolCallMatch, run_scorer, scorer_from_spec

WEATHER = {"name": "get_weather", "arguments": {"city": ["Paris", "Paris, France"], "unit": ["celsius", ""]}}
TIME = {"name": "get_time", "arguments": {"tz": ["Europe/Paris"]}}
SCORER = ToolCallMatch(expected="calls")


def judge(calls, expected, scorer=SCORER):
    """Score one case by hand through the same path the engine uses."""
    context = ScoringContext(inputs={}, output="", expectations={"calls": expected}, tool_calls=tuple(calls))
    return asyncio.run(run_scorer(scorer, context))


def call(name, **arguments):
    return ToolCall(name, arguments)


@pytest.mark.parametrize(
    ("calls", "expected", "value", "reason"),
    [
        ([call("get_weather", city="paris ")], [WEATHER], 1.0, "1 call(s) right"),  # case/space, optional unit left out
        (
            [call("get_weather", city="Paris, France", unit="Celsius")],
            [WEATHER],
            1.0,
            "1 call(s) right",
        ),  # accepted list
        ([call("get_forecast", city="Paris")], [WEATHER], 0.0, "called 'get_forecast', expected 'get_weather'"),
        ([call("get_weather", unit="celsius")], [WEATHER], 0.0, "get_weather: missing required argument 'city'"),
        ([call("get_weather", city="Paris", lang="fr")], [WEATHER], 0.0, "get_weather: unknown argument 'lang'"),
        ([call("get_weather", city="Lyon")], [WEATHER], 0.0, 'get_weather: city="Lyon" is not one of'),
        ([call("get_weather", city=["Paris"])], [WEATHER], 0.0, 'get_weather: city=["Paris"] has the wrong type'),
    ],
)
def test_single_call_cases(calls, expected, value, reason):
    score = judge(calls, expected)
    assert score.value == value
    assert score.reason.startswith(reason)


def test_42_is_not_the_string_42_and_numbers_have_a_tolerance():
    spec = [{"name": "set_price", "arguments": {"amount": [42], "discount": [0.1, ""]}}]
    assert judge([call("set_price", amount=42)], spec).value == 1.0
    assert judge([call("set_price", amount=42.0)], spec).value == 0.0  # a float where the schema has an int (BFCL)
    wrong = judge([call("set_price", amount="42")], spec)
    assert wrong.value == 0.0 and 'amount="42" has the wrong type' in wrong.reason
    as_string = [{"name": "set_price", "arguments": {"amount": ["42"]}}]
    assert judge([call("set_price", amount=42)], as_string).value == 0.0  # and the other way round
    assert judge([call("set_price", amount=42, discount=0.1000001)], spec).value == 0.0  # no tolerance by default
    tolerant = ToolCallMatch(expected="calls", abs_tol=0.001)
    assert judge([call("set_price", amount=42, discount=0.1000001)], spec, tolerant).value == 1.0
    assert judge([call("set_price", amount=42, discount=0.2)], spec, tolerant).value == 0.0
    assert judge([call("set_price", amount=True)], spec).value == 0.0  # a bool is not a number


def test_parallel_calls_match_in_any_order_and_all_must_be_there():
    both = [call("get_time", tz="Europe/Paris"), call("get_weather", city="Paris")]
    assert judge(both, [WEATHER, TIME]).value == 1.0
    assert judge(list(reversed(both)), [WEATHER, TIME]).value == 1.0
    missing = judge([call("get_weather", city="Paris")], [WEATHER, TIME])
    assert missing.value == 0.0 and missing.reason == "missing call 'get_time'"
    extra = judge([*both, call("get_weather", city="Paris")], [WEATHER, TIME])
    assert extra.value == 0.0 and extra.reason == "extra call 'get_weather'"
    # two calls of the same function: each expected call needs its own match
    two_cities = [WEATHER, {"name": "get_weather", "arguments": {"city": ["Rome"]}}]
    assert judge([call("get_weather", city="Rome"), call("get_weather", city="paris")], two_cities).value == 1.0
    assert judge([call("get_weather", city="Rome"), call("get_weather", city="Rome")], two_cities).value == 0.0


def test_no_call_expected_relevance_detection():
    assert judge([], []).value == 1.0
    assert judge([], []).reason == "no call, as expected"
    made = judge([call("get_weather", city="Paris")], [])
    assert made.value == 0.0 and made.reason == "no call expected, got get_weather"
    none = judge([], [WEATHER])
    assert none.value == 0.0 and none.reason == "no call made, expected ['get_weather']"


def test_arguments_that_are_not_json_fail_with_the_text():
    raw = ToolCall.from_message_part({"function": {"name": "get_weather", "arguments": '{"city": "Paris"'}})
    assert raw.arguments == '{"city": "Paris"'  # kept as text: it does not parse
    score = judge([raw], [WEATHER])
    assert score.value == 0.0 and score.reason.startswith("get_weather: arguments are not a JSON object")


def test_expected_calls_from_json_text_and_bad_specs_are_named():
    assert judge([call("get_time", tz="europe/paris")], json.dumps([TIME])).value == 1.0
    with pytest.raises(wb.ScorerError, match="needs a non-empty list of accepted values"):
        judge([], [{"name": "get_time", "arguments": {"tz": "Europe/Paris"}}])
    with pytest.raises(wb.ScorerError, match="are not a list"):
        judge([], {"name": "get_time"})
    with pytest.raises(wb.ScorerError, match="not JSON"):
        judge([], "[{")


def test_spec_round_trip_and_aggregate_by_hand():
    s = scorer_from_spec({"type": "tool_call_match", "expected": "calls", "abs_tol": 0.5})
    assert isinstance(s, ToolCallMatch) and scorer_from_spec(s.spec()).spec() == s.spec()
    expectations = [{"calls": [WEATHER]}] * 3 + [{"calls": []}] * 2
    calls = [
        [call("get_weather", city="Paris")],  # right
        [call("get_weather", city="Oslo")],  # right tool, wrong argument
        [call("get_time", tz="Europe/Paris")],  # wrong tool
        [],  # no call expected, none made
        [call("get_time", tz="UTC")],  # no call expected, one made
    ]
    metrics = SCORER.aggregate([""] * 5, expectations, tool_calls=calls)
    assert metrics == {
        "success_rate": 2 / 5,
        "wrong_tool_rate": 1 / 3,
        "argument_accuracy": 1 / 2,
        "no_call_accuracy": 1 / 2,
    }
    assert math.isnan(SCORER.aggregate([""], [{"calls": [WEATHER]}], tool_calls=[[]])["no_call_accuracy"])


def test_results_table_cell_round_trip():
    calls = (ToolCall("get_weather", {"city": "Paris"}, "c1"), ToolCall("get_time", {"tz": "UTC"}))
    assert tool_calls_from_json(tool_calls_to_json(calls)) == calls
    assert tool_calls_from_json(None) == () and tool_calls_from_json(float("nan")) == ()


# --- end to end: tools and tool_choice are plain params, passed through to litellm ---------------------

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
QUESTIONS = [
    ("a", "Weather in Paris?", [WEATHER]),
    ("b", "Weather in Rome?", [{"name": "get_weather", "arguments": {"city": ["Rome"]}}]),
    (
        "c",
        "Weather in Oslo, in celsius?",
        [{"name": "get_weather", "arguments": {"city": ["Oslo"], "unit": ["celsius"]}}],
    ),
    ("d", "Tell me a joke.", []),
]


def tool_reply(model, messages):
    """'careful' calls get_weather with the city (and the unit when asked); 'eager' always calls with Paris."""
    prompt = messages[-1]["content"]
    question = prompt.split(": ", 1)[1]
    if "joke" in question and prompt.startswith("Careful"):
        return "Why did the chicken cross the road?"
    city = question.split(" in ")[1].split(",")[0].rstrip("?") if prompt.startswith("Careful") else "Paris"
    arguments = {"city": city, **({"unit": "celsius"} if "celsius" in question else {})}
    part = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": json.dumps(arguments)}}
    return litellm.ModelResponse(
        model=model,
        choices=[litellm.Choices(index=0, finish_reason="tool_calls", message=litellm.Message(
            role="assistant", content=None, tool_calls=[part]))],
        usage=litellm.Usage(prompt_tokens=12, completion_tokens=5, total_tokens=17),
    )  # fmt: skip


def test_end_to_end_tools_params_summary_metrics_and_paired_comparison(fake_key):
    dataset = wb.Dataset.from_records(
        [{"id": i, "question": q, "calls": json.dumps(c)} for i, q, c in QUESTIONS], expected=["calls"]
    )
    params = {"tools": TOOLS, "tool_choice": "auto"}
    variants = [
        wb.PromptVariant(name="eager", prompt="Eager: {{ question }}", params=params),
        wb.PromptVariant(name="careful", prompt="Careful: {{ question }}", params=params),
    ]
    fake = FakeLLM(tool_reply)
    exp = wb.Experiment(name="tools", variants=variants, dataset=dataset, models=["openai/gpt-4o-mini"],
                        scorers=[ToolCallMatch(expected="calls")])  # fmt: skip
    result = exp.run(log_to_mlflow=False, progress=False, acompletion=fake)
    # tools and tool_choice reached the provider call unchanged
    assert len(fake.calls) == 8
    assert all(c["tools"] == TOOLS and c["tool_choice"] == "auto" for c in fake.calls)
    # the rows keep the tool calls
    cases = result.cases.set_index(["variant", "case_id"])
    assert tool_calls_from_json(cases.loc[("careful", "d"), "tool_calls"]) == ()
    assert tool_calls_from_json(cases.loc[("eager", "b"), "tool_calls"]) == (
        ToolCall("get_weather", {"city": "Paris"}, "c1"),
    )
    summary = result.summary.set_index("variant")
    # careful: all four right. eager: a right; b and c the wrong city; d a call where none is due
    assert summary.loc["careful", "tool_call_match"] == 1.0
    assert summary.loc["eager", "tool_call_match"] == 0.25
    assert summary.loc["eager", "tool_call_match.success_rate"] == 0.25
    assert summary.loc["eager", "tool_call_match.wrong_tool_rate"] == 0.0
    assert summary.loc["eager", "tool_call_match.argument_accuracy"] == pytest.approx(1 / 3)
    assert summary.loc["eager", "tool_call_match.no_call_accuracy"] == 0.0
    assert summary.loc["careful", "tool_call_match.no_call_accuracy"] == 1.0
    assert summary.loc["careful", "tool_call_match.argument_accuracy"] == 1.0
    reasons = cases["reason.tool_call_match"]
    assert reasons.loc[("eager", "c")] == "get_weather: city=\"Paris\" is not one of ['Oslo']"
    assert reasons.loc[("eager", "d")] == "no call expected, got get_weather"

    comparison = result.compare(baseline="eager", candidate="careful", n_resamples=500)
    row = comparison["tool_call_match"]
    assert row.n_cases == 4 and row.mean_baseline == 0.25 and row.mean_candidate == 1.0
    assert row.diff == pytest.approx(0.75)


YAML = """
name: tools_yaml
dataset: {path: q.jsonl, expected: [calls]}
variants:
  - name: careful
    prompt: "Careful: {{ question }}"
    params:
      tool_choice: auto
      tools: [{type: function, function: {name: get_weather, parameters: {type: object,
               properties: {city: {type: string}, unit: {type: string}}, required: [city]}}}]
models: [openai/gpt-4o-mini]
scorers:
  - type: tool_call_match
    expected: calls
    abs_tol: 0.01
"""


def test_the_readme_yaml_declares_tools_as_params_and_scores_tool_calls(tmp_path, fake_key):
    rows = [{"id": i, "question": q, "calls": c} for i, q, c in QUESTIONS]
    (tmp_path / "q.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "exp.yaml").write_text(YAML)
    exp = wb.load_experiment(tmp_path / "exp.yaml")
    assert exp.variants[0].params["tool_choice"] == "auto"
    assert exp.variants[0].params["tools"][0]["function"]["name"] == "get_weather"
    assert exp.scorers[0] == ToolCallMatch(expected="calls", abs_tol=0.01)
    fake = FakeLLM(tool_reply)
    result = exp.run(log_to_mlflow=False, progress=False, acompletion=fake)
    assert fake.calls[0]["tools"] == exp.variants[0].params["tools"]
    summary = result.summary.set_index("variant")
    assert summary.loc["careful", "tool_call_match.success_rate"] == 1.0
    assert summary.loc["careful", "tool_call_match.no_call_accuracy"] == 1.0
