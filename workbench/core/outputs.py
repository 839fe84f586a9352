"""What a model call returns besides text: tool calls, the finish reason, the raw message.

A reply made only of tool calls has no text; it is recorded with its calls
(never as a silent empty answer scored 0), and scorers read them from the
:class:`~workbench.scorers.ScoringContext`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ToolCall:
    """One tool (function) call the model asked for.

    Attributes:
        name: The tool's name.
        arguments: The arguments, parsed from JSON when they parse (a dict,
            usually), else the raw string the model wrote.
        id: The provider's call id, when it gave one.

    Example:
        >>> ToolCall.from_message_part({"id": "c1", "function": {"name": "lookup", "arguments": '{"sku": 7}'}})
        ToolCall(name='lookup', arguments={'sku': 7}, id='c1')
    """

    name: str
    arguments: Any = None
    id: str | None = None

    @classmethod
    def from_message_part(cls, part: Any) -> ToolCall:
        """Read one entry of an OpenAI-style ``message.tool_calls`` (a dict or a litellm object)."""
        data = _plain(part)
        function = data.get("function") or {}
        raw = function.get("arguments")
        return cls(name=str(function.get("name") or ""), arguments=parse_arguments(raw), id=data.get("id"))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments, **({"id": self.id} if self.id else {})}


def parse_arguments(raw: Any) -> Any:
    """Tool-call arguments as data: JSON text is parsed, anything else is kept as it is."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def tool_calls_from(message: Any) -> tuple[ToolCall, ...]:
    """The tool calls of an assistant message (``tool_calls``, or the legacy ``function_call``)."""
    data = _plain(message)
    calls = [ToolCall.from_message_part(p) for p in data.get("tool_calls") or ()]
    legacy = data.get("function_call")
    if not calls and legacy:
        calls.append(ToolCall.from_message_part({"function": legacy}))
    return tuple(calls)


def tool_calls_to_json(calls: Sequence[ToolCall]) -> str | None:
    """The results table's ``tool_calls`` cell: JSON, or None when there are none."""
    if not calls:
        return None
    return json.dumps([c.to_dict() for c in calls], ensure_ascii=False, sort_keys=True, default=str)


def tool_calls_from_json(cell: Any) -> tuple[ToolCall, ...]:
    """The tool calls of a results-table ``tool_calls`` cell (the inverse of :func:`tool_calls_to_json`)."""
    if cell is None or (isinstance(cell, float) and cell != cell):
        return ()
    data = json.loads(cell) if isinstance(cell, str) else cell
    return tuple(ToolCall(str(d.get("name") or ""), d.get("arguments"), d.get("id")) for d in data or ())


def _plain(value: Any) -> dict[str, Any]:
    """A litellm/pydantic object or a mapping as a plain dict."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    dump = getattr(value, "model_dump", None) or getattr(value, "dict", None)
    if callable(dump):
        return dict(dump())
    return dict(getattr(value, "__dict__", {}))


@dataclass(frozen=True)
class ModelReply:
    """One completed model call: the text, tool calls and usage. What the response cache stores.

    Attributes:
        output: The reply's text ("" when the reply is only tool calls).
        prompt_tokens: Prompt tokens the provider counted.
        completion_tokens: Completion tokens the provider counted.
        cost_usd: Cost at litellm's list price (NaN: litellm has no price for the model).
        latency_s: Seconds the call took (the original call's, for a cache hit).
        tool_calls: The tool calls the model asked for.
        finish_reason: Why it stopped (``stop``, ``length``, ``tool_calls``...).
        message: The raw assistant message, as plain data.
        deployment: Which deployment of a router group answered (None for a plain model).
    """

    output: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0
    latency_s: float = 0.0
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    message: Mapping[str, Any] | None = None
    deployment: str | None = None

    def to_json(self) -> str:
        data = {
            "output": self.output,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
            "latency_s": self.latency_s,
        }
        if self.tool_calls:
            data["tool_calls"] = [c.to_dict() for c in self.tool_calls]
        if self.finish_reason is not None:
            data["finish_reason"] = self.finish_reason
        if self.message is not None:
            data["message"] = dict(self.message)
        if self.deployment is not None:
            data["deployment"] = self.deployment
        return json.dumps(data, ensure_ascii=False, default=str)

    @classmethod
    def from_json(cls, text: str) -> ModelReply:
        """Inverse of :meth:`to_json`; entries written before tool calls were kept still load."""
        data = json.loads(text)
        calls = tuple(ToolCall(**c) for c in data.pop("tool_calls", None) or ())
        return cls(**data, tool_calls=calls)


@dataclass(frozen=True)
class Answer:
    """A reply and how it was obtained: from the cache, or by a call after ``attempts`` tries."""

    reply: ModelReply
    cached: bool
    attempts: int = 0
