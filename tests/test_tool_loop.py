"""Multi-step tool cases against the fake OpenAI server: call, feed results back, call again."""

from __future__ import annotations

import json
import math

import litellm
import pytest

import workbench as wb
from workbench.core.exceptions import ConfigError, DatasetError
from workbench.core.outputs import ToolCall, tool_calls_from_json
from workbench.core.tool_results import ToolResults
from workbench.testing import FakeOpenAIServer

MODEL = "openai/gpt-4o-mini"  # priced by litellm: the summed cost is checkable
TOOLS = [
    {"type": "function", "function": {"name": "get_order", "parameters": {
        "type": "object", "properties": {"order_id": {"type": "integer"}}, "required": ["order_id"]}}},
    {"type": "function", "function": {"name": "refund", "parameters": {
        "type": "object", "properties": {"order_id": {"type": "integer"}, "amount": {"type": "number"}},
        "required": ["order_id", "amount"]}}},
]  # fmt: skip
EXPECTED = [
    {"name": "get_order", "arguments": {"order_id": [42]}},
    {"name": "refund", "arguments": {"order_id": [42], "amount": [19.99]}},
]


def agent(body):
    """A scripted support agent: look the order up, refund what it cost, then say so."""
    messages = body["messages"]
    last = messages[-1]
    if last["role"] == "user":
        return {"tool_calls": [{"function": {"name": "get_order", "arguments": {"order_id": 42}}}]}
    result = json.loads(last["content"])
    if "amount" in result:
        return {
            "tool_calls": [{"function": {"name": "refund", "arguments": {"order_id": 42, "amount": result["amount"]}}}]
        }
    return f"Refunded, reference {result['ref']}."


def words(body):
    """The fake server's prompt token count: words of every message's text."""
    return sum(len(str(m["content"]).split()) for m in body["messages"] if m.get("content"))


def run(server, rows, *, params=None, scorers=()):
    variant = wb.PromptVariant(
        name="support",
        prompt="{{ request }}",
        params={"api_base": server.base_url, "api_key": "sk-fake", "temperature": 0, "tools": TOOLS,
                "tool_choice": "auto", **(params or {})},
    )  # fmt: skip
    dataset = wb.Dataset.from_records(rows, expected=["calls"])
    exp = wb.Experiment(name="agent", variants=[variant], dataset=dataset, models=[MODEL], scorers=list(scorers))
    return exp, exp.run(log_to_mlflow=False, progress=False)


RESULTS = json.dumps({"get_order": {"amount": 19.99}, "refund": {"ref": "R-7"}})


def test_the_loop_feeds_results_back_keeps_every_call_and_sums_usage():
    bodies = []
    with FakeOpenAIServer(reply=lambda body: bodies.append(body) or agent(body)) as server:
        scorer = wb.ToolCallMatch(expected="calls", ordered=True)
        exp, result = run(server, [{"id": "a", "request": "Refund order 42", "tool_results": RESULTS,
                                    "calls": json.dumps(EXPECTED)}], scorers=[scorer])  # fmt: skip
        assert server.requests == 3
        again = exp.run(log_to_mlflow=False, progress=False)
        assert server.requests == 3 and again.cases["cached"].all()  # the whole loop is one cache hit
    row = result.cases.iloc[0]
    assert not isinstance(row["error"], str) and row["output"] == "Refunded, reference R-7."
    calls = tool_calls_from_json(row["tool_calls"])
    assert [(c.name, c.arguments) for c in calls] == [("get_order", {"order_id": 42}),
                                                      ("refund", {"order_id": 42, "amount": 19.99})]  # fmt: skip
    assert row["score.tool_call_match"] == 1.0
    # the last request carries the whole exchange: assistant turns with their calls, tool results by id
    final = bodies[-1]["messages"]
    assert [m["role"] for m in final] == ["user", "assistant", "tool", "assistant", "tool"]
    assert final[1]["tool_calls"][0]["function"] == {"name": "get_order", "arguments": '{"order_id": 42}'}
    assert final[2] == {"role": "tool", "tool_call_id": final[1]["tool_calls"][0]["id"], "content": '{"amount": 19.99}'}
    assert final[4]["content"] == '{"ref": "R-7"}' and final[4]["tool_call_id"] == final[3]["tool_calls"][0]["id"]
    assert all("max_steps" not in b for b in bodies)
    # tokens and cost summed over the three steps
    assert row["prompt_tokens"] == sum(words(b) for b in bodies)
    prompt_cost, completion_cost = litellm.cost_per_token(
        model=MODEL, prompt_tokens=int(row["prompt_tokens"]), completion_tokens=int(row["completion_tokens"])
    )
    assert row["completion_tokens"] > 0 and math.isclose(row["cost_usd"], prompt_cost + completion_cost, rel_tol=1e-9)
    assert json.loads(row["message"])["steps"][0]["tool_calls"][0]["function"]["name"] == "get_order"


def test_max_steps_a_missing_result_and_an_unordered_sequence():
    with FakeOpenAIServer(reply=agent) as server:
        ordered = wb.ToolCallMatch(expected="calls", ordered=True, metric_name="in_order")
        _, capped = run(server, [{"id": "a", "request": "Refund order 42", "tool_results": RESULTS,
                                  "calls": json.dumps(EXPECTED)}],
                        params={"max_steps": 2}, scorers=[ordered])  # fmt: skip
        assert server.requests == 2
        server.reset_stats()
        only_lookup = json.dumps([{"name": "get_order", "arguments": {"order_id": 42}, "result": {"amount": 5}}])
        _, stuck = run(server, [{"id": "b", "request": "Please refund order 42", "tool_results": only_lookup,
                                 "calls": json.dumps(EXPECTED)}], scorers=[ordered])  # fmt: skip
        assert server.requests == 2  # the refund call has no result in the case: the loop ends there
        server.reset_stats()
        run(server, [{"id": "c", "request": "Refund order 42", "tool_results": RESULTS, "calls": "[]"}])
        assert server.requests == 1  # its first two steps are the capped run's, from the cache: the third is new
    row = capped.cases.iloc[0]
    assert [c.name for c in tool_calls_from_json(row["tool_calls"])] == ["get_order", "refund"]
    assert row["output"] == "" and row["finish_reason"] == "tool_calls" and row["score.in_order"] == 1.0
    row = stuck.cases.iloc[0]
    assert row["score.in_order"] == 0.0 and "call 2: refund: amount=5 is not one of [19.99]" in row["reason.in_order"]
    # the sequence is checked in order; the set check does not mind the order
    swapped = (ToolCall("refund", {"order_id": 42, "amount": 19.99}), ToolCall("get_order", {"order_id": 42}))
    expected = [ordered.truth({"calls": EXPECTED})][0]
    assert not ordered.compare(swapped, expected).ok
    assert wb.ToolCallMatch(expected="calls").compare(swapped, expected).ok
    short = ordered.compare(swapped[1:], expected)
    assert not short.ok and short.problems == ("call 2: missing call 'refund'",)


def test_results_by_name_and_arguments_and_bad_cells_fail_before_any_call():
    results = ToolResults.parse(
        [{"name": "get_order", "arguments": {"order_id": 7}, "result": "seven"},
         {"name": "get_order", "result": {"any": True}}],
        where="row 1",
    )  # fmt: skip
    assert results.answer(ToolCall("get_order", {"order_id": 7})) == "seven"
    assert results.answer(ToolCall("get_order", {"order_id": 8})) == '{"any": true}'
    assert results.answer(ToolCall("refund", {})) is None
    with FakeOpenAIServer(reply=agent) as server:
        with pytest.raises(DatasetError, match=r"dataset <records> row 1: column 'tool_results' is not JSON"):
            run(server, [{"id": "a", "request": "x", "tool_results": "{oops", "calls": "[]"}])
        with pytest.raises(ConfigError, match=r"variant 'support': params.max_steps must be a whole number >= 1"):
            run(server, [{"id": "a", "request": "x", "tool_results": RESULTS, "calls": "[]"}], params={"max_steps": 0})
        assert server.requests == 0


def test_ordered_is_part_of_the_scorer_spec():
    scorer = wb.scorers.scorer_from_spec({"type": "tool_call_match", "expected": "calls", "ordered": True})
    assert scorer.ordered is True and scorer.spec()["ordered"] is True
    assert wb.scorers.scorer_from_spec(scorer.spec()) == scorer
