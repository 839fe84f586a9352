"""Multi-step tool cases: call, feed the case's tool results back, call again.

:func:`complete_call` is how the engine makes a task call. A plain call goes straight
through the :class:`~workbench.engine.calls.CallPath`. When the variant declares ``tools``
and the case has ``tool_results`` (see :mod:`workbench.core.tool_results`), it loops: while
the reply asks for tools that all have a result in the case, the assistant turn and one
``tool`` message per call are appended and the model is called again, up to
``params.max_steps`` calls. Each step goes through the call path (its own cache entry,
retries, cost); the row gets one :class:`~workbench.core.outputs.ModelReply` made of them
(:func:`combine`): every tool call in order, the last step's text, tokens, cost and latency
summed. It is cached under the case's key too, so a re-run is one cache hit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from workbench.core.outputs import Answer, ModelReply, ToolCall
from workbench.core.tool_results import TOOL_RESULTS, ToolResults, max_steps, sent_params
from workbench.engine.cache import cache_key
from workbench.engine.calls import CallPath
from workbench.engine.planning import Call


def tool_results_of(call: Call) -> ToolResults | None:
    """The case's tool results when this call loops (the variant has tools), else None."""
    if not call.variant.params.get("tools"):
        return None
    case = call.case
    return ToolResults.parse(case.inputs.get(TOOL_RESULTS, case.expectations.get(TOOL_RESULTS)), where=case.where)


def planned_steps(call: Call) -> int:
    """The most model calls this planned call can make (what a budget reserves)."""
    return max_steps(call.variant.params) if tool_results_of(call) is not None else 1


async def complete_call(calls: CallPath, call: Call) -> Answer:
    """One case's answer: one call, or the tool loop when the case feeds tool results back."""
    params = sent_params(call.variant.params)
    results = tool_results_of(call)
    if results is None:
        return await calls.complete(
            model=call.model,
            messages=call.messages,
            params=params,
            repeat=call.repeat,
            key=call.key,
            lookup=False,  # the engine looked already
            task=True,
        )
    messages: list[dict[str, Any]] = list(call.messages)
    replies: list[ModelReply] = []
    attempts = 0
    for step in range(max_steps(call.variant.params)):
        key = cache_key(call.model, messages, {**params, "tool_step": step}, call.repeat)
        answer = await calls.complete(
            model=call.model, messages=messages, params=params, repeat=call.repeat, key=key, task=True
        )
        reply = answer.reply
        replies.append(reply)
        attempts += answer.attempts
        answers = [results.answer(c) for c in reply.tool_calls]
        if not reply.tool_calls or any(a is None for a in answers):
            break  # a final answer, or a call this case has no result for
        ids = [c.id or f"call_{step}_{i}" for i, c in enumerate(reply.tool_calls)]
        messages.append(_assistant_turn(reply, ids))
        messages += [{"role": "tool", "tool_call_id": i, "content": a} for i, a in zip(ids, answers, strict=True)]
    combined = combine(replies)
    if calls.cache is not None:
        calls.cache.put(call.key, combined)  # the whole loop: a re-run of this case is one hit
    return Answer(combined, cached=False, attempts=attempts)


def _assistant_turn(reply: ModelReply, ids: Sequence[str]) -> dict[str, Any]:
    """The assistant message that asked for the tools, as the next request repeats it."""
    return {
        "role": "assistant",
        "content": reply.output or None,
        "tool_calls": [
            {"id": i, "type": "function", "function": {"name": c.name, "arguments": _arguments_text(c)}}
            for i, c in zip(ids, reply.tool_calls, strict=True)
        ],
    }


def _arguments_text(call: ToolCall) -> str:
    args = call.arguments
    return args if isinstance(args, str) else json.dumps(args if args is not None else {}, ensure_ascii=False)


def combine(replies: Sequence[ModelReply]) -> ModelReply:
    """The steps of one case as one reply: every tool call in order, the last text, usage summed.

    The message keeps the last step's fields plus ``steps``, every step's message (or text).
    """
    last = replies[-1]
    if len(replies) == 1:
        return last
    costs = [r.cost_usd for r in replies]
    cost = None if any(c is None for c in costs) else math.fsum(c for c in costs if c is not None)
    steps = [dict(r.message) if r.message else {"role": "assistant", "content": r.output} for r in replies]
    return ModelReply(
        output=last.output,
        prompt_tokens=sum(r.prompt_tokens for r in replies),
        completion_tokens=sum(r.completion_tokens for r in replies),
        cost_usd=cost,
        latency_s=sum(r.latency_s for r in replies),
        tool_calls=tuple(c for r in replies for c in r.tool_calls),
        finish_reason=last.finish_reason,
        message={
            **(dict(last.message) if last.message else {"role": "assistant", "content": last.output}),
            "steps": steps,
        },  # fmt: skip
    )
