"""Tool calls from the embedded models: a grammar of the call, read back as the reply's tool_calls."""

from __future__ import annotations

import json

import pytest

import workbench as wb
from workbench.core.exceptions import ModelError
from workbench.core.outputs import tool_calls_from_json
from workbench.providers.local import _grammar
from workbench.providers.local_tools import as_text_turns, forced_call_schema, tool_calls_of, with_tools_message

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30},
                          "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                          "required": ["city", "unit"]}}}  # fmt: skip
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {
        "type": "object", "properties": {"tz": {"type": "string", "maxLength": 30}}, "required": ["tz"]}}}  # fmt: skip
FORCE_WEATHER = {"type": "function", "function": {"name": "get_weather"}}


def test_which_tool_choices_force_a_call_and_the_schema_of_the_call():
    assert forced_call_schema([WEATHER], None) is None
    assert forced_call_schema([WEATHER], "auto") is None
    assert forced_call_schema([WEATHER], "none") is None
    named = forced_call_schema([WEATHER, TIME], FORCE_WEATHER)
    assert named == {
        "type": "object",
        "properties": {"name": {"const": "get_weather"}, "arguments": WEATHER["function"]["parameters"]},
        "required": ["name", "arguments"],
    }
    anyone = forced_call_schema([WEATHER, TIME], "required")
    assert [s["properties"]["name"]["const"] for s in anyone["anyOf"]] == ["get_weather", "get_time"]
    with pytest.raises(ModelError, match=r"names no tool in `tools` \(\['get_time'\]\)"):
        forced_call_schema([TIME], FORCE_WEATHER)
    with pytest.raises(ModelError, match="'required' needs `tools`"):
        forced_call_schema([], "required")
    for schema in (named, anyone):  # llama.cpp can sample under both
        assert _grammar(schema) is not None


def test_the_reply_becomes_a_tool_call_and_the_tools_are_listed_for_the_model():
    calls = tool_calls_of('{"name": "get_time", "arguments": {"tz": "Europe/Paris"}}', call_id="c9")
    assert calls == [{"id": "c9", "type": "function",
                      "function": {"name": "get_time", "arguments": '{"tz": "Europe/Paris"}'}}]  # fmt: skip
    assert tool_calls_of('{"name": "get_time", "argum', call_id="c9") == []  # cut by max_tokens: text, no call
    messages = with_tools_message([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
                                  [WEATHER])  # fmt: skip
    assert messages[0]["content"].startswith("Be brief.\n\nYou can call these tools.")
    assert '"name": "get_weather"' in messages[0]["content"] and messages[1] == {"role": "user", "content": "hi"}
    assert with_tools_message([{"role": "user", "content": "hi"}], [WEATHER])[0]["role"] == "system"


@pytest.mark.local_model
def test_smollm2_writes_a_forced_call_through_the_grammar():
    """Two real calls on SmolLM2-135M-Instruct: a named function, and 'required' (any of two tools)."""
    greedy = {"temperature": 0, "max_tokens": 60}
    variants = [
        wb.PromptVariant(name="named", prompt="{{ question }}",
                         params={**greedy, "tools": [WEATHER], "tool_choice": FORCE_WEATHER}),
        wb.PromptVariant(name="required", prompt="{{ question }}",
                         params={**greedy, "tools": [WEATHER, TIME], "tool_choice": "required"}),
    ]  # fmt: skip
    calls = json.dumps([{"name": "get_weather", "arguments": {"city": ["Paris"], "unit": ["celsius"]}}])
    dataset = wb.Dataset.from_records(
        [{"id": "a", "question": "What is the weather in Paris, in celsius?", "calls": calls}], expected=["calls"]
    )
    exp = wb.Experiment(name="local_tools", variants=variants, dataset=dataset, models=["local/smollm2-135m-instruct"],
                        scorers=[wb.ToolCallMatch(expected="calls")])  # fmt: skip
    result = exp.run(log_to_mlflow=False, progress=False)
    rows = result.cases.set_index("variant")
    for name in ("named", "required"):
        row = rows.loc[name]
        (call,) = tool_calls_from_json(row["tool_calls"])  # exactly one call, read back from the grammar's JSON
        assert row["finish_reason"] == "tool_calls" and row["output"] == ""
        assert call.name in ({"get_weather"} if name == "named" else {"get_weather", "get_time"})
        schema = WEATHER if call.name == "get_weather" else TIME
        properties = schema["function"]["parameters"]["properties"]
        assert set(call.arguments) == set(properties)  # every required argument, no other
        if call.name == "get_weather":
            assert call.arguments["unit"] in ("celsius", "fahrenheit") and len(call.arguments["city"]) <= 30
    print(rows[["tool_calls", "score.tool_call_match", "latency_s"]].to_dict("records"))


def test_tool_turns_of_a_multi_step_case_become_text_a_template_renders():
    turns = as_text_turns([
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"temp_c": 21}'},
    ])  # fmt: skip
    assert turns == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": '{"name": "get_weather", "arguments": {"city": "Paris"}}'},
        {"role": "tool", "content": '{"temp_c": 21}'},
    ]


@pytest.mark.local_model
def test_smollm2_in_a_two_step_tool_loop():
    """One case, two real steps: the forced call, its result fed back as a tool turn, a second call."""
    variant = wb.PromptVariant(
        name="loop",
        prompt="{{ question }}",
        params={"temperature": 0, "max_tokens": 60, "tools": [WEATHER], "tool_choice": "required", "max_steps": 2},
    )
    dataset = wb.Dataset.from_records(
        [
            {
                "id": "a",
                "question": "What is the weather in Paris, in celsius?",
                "tool_results": json.dumps({"get_weather": {"temp_c": 21}}),
            }
        ]  # fmt: skip
    )
    exp = wb.Experiment(name="local_loop", variants=[variant], dataset=dataset, models=["local/smollm2-135m-instruct"])
    result = exp.run(log_to_mlflow=False, progress=False)
    row = result.cases.iloc[0]
    assert not isinstance(row["error"], str), row["error"]
    calls = tool_calls_from_json(row["tool_calls"])
    assert [c.name for c in calls] == ["get_weather", "get_weather"]  # forced twice: max_steps ends the loop
    assert result.calls_made == 2
    steps = json.loads(row["message"])["steps"]
    assert len(steps) == 2 and row["completion_tokens"] > 0
    print([c.arguments for c in calls])
