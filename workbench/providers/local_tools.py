"""Tool calls from the embedded models: a grammar that can only write a call.

The embedded models know nothing of OpenAI's tools. When a variant gives them ``tools`` and a
``tool_choice`` that forces a call (a function by name, or ``"required"``: any of the tools),
:func:`forced_call_schema` builds the JSON schema of ``{"name": ..., "arguments": {...}}`` from
the tools' parameter schemas; the local provider turns it into a llama.cpp grammar (the same
path as ``response_format``), so the reply can only be such a call, and :func:`tool_calls_of`
reads it back as the OpenAI ``tool_calls`` of the reply. The tools are also listed in a system
message (:func:`tools_message`), so the model reads their names and descriptions. With
``tool_choice`` ``"auto"``, ``"none"`` or absent the model answers in text, as before.

Example:
    >>> tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    ...     "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    >>> forced_call_schema(tools, {"type": "function", "function": {"name": "get_weather"}})["properties"]["name"]
    {'const': 'get_weather'}
    >>> tool_calls_of('{"name": "get_weather", "arguments": {"city": "Paris"}}', call_id="c1")
    [{'id': 'c1', 'type': 'function', 'function': {'name': 'get_weather', 'arguments': '{"city": "Paris"}'}}]
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from workbench.core.exceptions import ModelError
from workbench.core.outputs import parse_arguments

#: Parameters of a tool that declares none: an empty object.
_NO_PARAMETERS = {"type": "object", "properties": {}}


def _functions(tools: Any) -> dict[str, Mapping[str, Any]]:
    """The tools' function specs by name (OpenAI's ``{"type": "function", "function": {...}}``)."""
    found: dict[str, Mapping[str, Any]] = {}
    for tool in tools or ():
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise ModelError(
                f"tools: each tool is {{type: function, function: {{name: ..., parameters: ...}}}}, got {tool!r}"
            )
        found[function["name"]] = function
    return found


def _call_schema(function: Mapping[str, Any]) -> dict[str, Any]:
    parameters = dict(function.get("parameters") or _NO_PARAMETERS)
    parameters.setdefault("type", "object")
    return {
        "type": "object",
        "properties": {"name": {"const": function["name"]}, "arguments": parameters},
        "required": ["name", "arguments"],
    }


def forced_call_schema(tools: Any, tool_choice: Any) -> dict[str, Any] | None:
    """The JSON schema of the call ``tool_choice`` forces, or None when the model may answer in text.

    Raises:
        ModelError: ``tool_choice`` names a function that is not among ``tools``, or forces a
            call without tools.
    """
    if tool_choice is None or tool_choice in ("auto", "none"):
        return None
    functions = _functions(tools)
    if tool_choice == "required":
        if not functions:
            raise ModelError("tool_choice 'required' needs `tools`; add the tools the model may call")
        schemas = [_call_schema(f) for f in functions.values()]
        return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    name = tool_choice.get("function", {}).get("name") if isinstance(tool_choice, Mapping) else None
    if name not in functions:
        raise ModelError(
            f"tool_choice {tool_choice!r} names no tool in `tools` ({sorted(functions)}); use one of their names, "
            "'required' (any tool) or 'auto'"
        )
    return _call_schema(functions[name])


def tools_message(tools: Any) -> str:
    """A system message listing the tools (name, description, parameters) and the shape of a call."""
    listed = [
        {"name": name, "description": f.get("description", ""), "parameters": f.get("parameters") or _NO_PARAMETERS}
        for name, f in _functions(tools).items()
    ]
    return (
        "You can call these tools. Answer with one JSON object "
        '{"name": <tool name>, "arguments": {<argument>: <value>}}, taking the values from the request.\n'
        + json.dumps(listed, ensure_ascii=False)
    )


def with_tools_message(messages: Sequence[Mapping[str, Any]], tools: Any) -> list[dict[str, Any]]:
    """``messages`` with the tools listed at the end of the system message (one is added if none)."""
    note = tools_message(tools)
    out = [dict(m) for m in messages]
    if out and out[0].get("role") == "system":
        out[0]["content"] = f"{out[0].get('content') or ''}\n\n{note}".strip()
    else:
        out.insert(0, {"role": "system", "content": note})
    return out


def as_text_turns(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Messages a chat template without tools can render: the turns of a multi-step case as text.

    An assistant turn that called tools reads as the JSON the call grammar writes; a ``tool``
    turn keeps its role and its result text; no content is ``None``.
    """
    out = []
    for message in messages:
        turn = {"role": message.get("role"), "content": message.get("content") or ""}
        calls = message.get("tool_calls") or ()
        if calls and not turn["content"]:
            written = []
            for call in calls:
                function = call.get("function") or {}
                arguments = parse_arguments(function.get("arguments"))
                written.append(json.dumps({"name": function.get("name"), "arguments": arguments}, ensure_ascii=False))
            turn["content"] = "\n".join(written)
        out.append(turn)
    return out


def tool_calls_of(text: str, *, call_id: str) -> list[dict[str, Any]]:
    """The OpenAI ``tool_calls`` of a reply written under the call grammar ([] when it did not close).

    A reply cut by ``max_tokens`` is not JSON: it stays text, with no call.
    """
    try:
        data = json.loads(text)
    except ValueError:
        return []
    if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
        return []
    arguments = json.dumps(data.get("arguments") or {}, ensure_ascii=False)
    return [{"id": call_id, "type": "function", "function": {"name": data["name"], "arguments": arguments}}]
