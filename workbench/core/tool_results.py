"""Multi-step tool cases: the tool results a case feeds back, and how many steps a variant allows.

A case of a simple agent holds, in its ``tool_results`` column, what each tool returns. The
engine then loops (``workbench.engine.tool_loop``): it calls the model; when the reply asks for
tools that all have a result here, it appends the assistant turn and one ``tool`` message per
call and calls again, up to the variant's ``params.max_steps`` (default 5; the workbench's own
param, never sent to the provider). The cell (a mapping, a list, or their JSON text) is either

- ``{"get_weather": {"temp_c": 21}}``: tool name -> result, whatever the arguments; or
- ``[{"name": "get_weather", "arguments": {"city": "Paris"}, "result": {"temp_c": 21}}, ...]``:
  the first entry whose name matches and whose ``arguments`` (if any) all equal the call's
  (strings compared without case and outer spaces) answers.

A result that is not a string is sent as JSON text. A call with no result ends the loop (the
row keeps every call made so far).

Example:
    >>> from workbench.core.outputs import ToolCall
    >>> results = ToolResults.parse('{"get_weather": {"temp_c": 21}}', where="row 1")
    >>> results.answer(ToolCall("get_weather", {"city": "Paris"}))
    '{"temp_c": 21}'
    >>> results.answer(ToolCall("get_time", {})) is None
    True
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.core.exceptions import ConfigError, DatasetError
from workbench.core.outputs import ToolCall

#: The dataset column holding a case's tool results.
TOOL_RESULTS = "tool_results"
#: The variant param bounding the model calls of a multi-step case (not sent to the provider).
MAX_STEPS = "max_steps"
DEFAULT_MAX_STEPS = 5


@dataclass(frozen=True)
class ToolResult:
    """What one tool returns: for any call of ``name``, or only for these ``arguments``."""

    name: str
    result: Any
    arguments: Mapping[str, Any] | None = None

    def matches(self, call: ToolCall) -> bool:
        if call.name != self.name:
            return False
        if self.arguments is None:
            return True
        given = call.arguments if isinstance(call.arguments, Mapping) else {}
        return all(k in given and _same(given[k], v) for k, v in self.arguments.items())


@dataclass(frozen=True)
class ToolResults:
    """A case's tool results, in the order they are looked up."""

    entries: tuple[ToolResult, ...]

    @classmethod
    def parse(cls, cell: Any, *, where: str) -> ToolResults | None:
        """The results of one ``tool_results`` cell; None when the cell is empty.

        Raises:
            DatasetError: the cell is neither form, naming ``where`` and the fix.
        """
        value = _plain(cell)
        if value is None or value == "" or (isinstance(value, float) and value != value):
            return None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise DatasetError(f"{where}: column {TOOL_RESULTS!r} is not JSON ({exc}); {_FORMS}") from exc
        if isinstance(value, Mapping):
            entries = [ToolResult(str(k), v) for k, v in value.items() if v is not None]  # Arrow structs: None = absent
        elif isinstance(value, list) and all(isinstance(e, Mapping) and isinstance(e.get("name"), str) for e in value):
            bad = [e for e in value if set(e) - {"name", "arguments", "result"} or "result" not in e]
            if bad:
                raise DatasetError(f"{where}: column {TOOL_RESULTS!r} has the entry {bad[0]!r}; {_FORMS}")
            entries = [ToolResult(e["name"], e["result"], _arguments(e.get("arguments"))) for e in value]
        else:
            raise DatasetError(f"{where}: column {TOOL_RESULTS!r} holds {value!r}; {_FORMS}")
        return cls(tuple(entries))

    def answer(self, call: ToolCall) -> str | None:
        """The text sent back for ``call`` (JSON for data), or None when this case has no result for it."""
        for entry in self.entries:
            if entry.matches(call):
                result = entry.result
                return result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)
        return None


_FORMS = (
    'write {"tool_name": result, ...} or [{"name": ..., "arguments": {...}, "result": ...}, ...] '
    "(JSON text in a CSV or JSONL cell)"
)


def max_steps(params: Mapping[str, Any], *, where: str = "variant") -> int:
    """The variant's ``max_steps`` (default 5).

    Raises:
        ConfigError: it is not a whole number >= 1.
    """
    value = params.get(MAX_STEPS, DEFAULT_MAX_STEPS)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"{where}: params.{MAX_STEPS} must be a whole number >= 1 (model calls per case), got {value!r}"
        )
    return value


def sent_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The params a provider receives: the workbench's own ``max_steps`` left out."""
    return {k: v for k, v in params.items() if k != MAX_STEPS}


def check_tool_cases(variants: Sequence[Any], cases: Iterable[Any], columns: Sequence[str]) -> None:
    """Before any call: every variant's ``max_steps`` and every case's ``tool_results`` cell can be read."""
    for variant in variants:
        max_steps(variant.params, where=f"variant {variant.name!r}")
    if TOOL_RESULTS not in columns:
        return
    for case in cases:
        ToolResults.parse(case.inputs.get(TOOL_RESULTS, case.expectations.get(TOOL_RESULTS)), where=case.where)


def _arguments(value: Any) -> Mapping[str, Any] | None:
    if not isinstance(value, Mapping):
        return None
    return {k: v for k, v in value.items() if v is not None}  # Arrow structs: None = absent


def _same(given: Any, wanted: Any) -> bool:
    if isinstance(given, str) and isinstance(wanted, str):
        return given.strip().casefold() == wanted.strip().casefold()
    return bool(given == wanted)


def _plain(value: Any) -> Any:
    """Plain data: the numpy arrays a JSONL column of objects comes back from Arrow as, unwrapped."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value
