"""The one object a scorer can ask for: everything known about one output.

A scorer's ``score`` may take ``inputs``, ``outputs`` and ``expectations``
(MLflow's GenAI scorer names), and any scorer that also accepts ``context``
gets a :class:`ScoringContext`: the same values plus the case's metadata, the
tool calls, the retrieved context (RAG), tokens and latency, and ``models``,
the run's own call path, which LLM judges use so their calls are cached,
retried and rate-limited like the task's. It plays the part of pydantic_evals'
``EvaluatorContext``.

Example:
    >>> from workbench.core.outputs import ToolCall
    >>> ctx = ScoringContext(inputs={"q": "colour?"}, output="", expectations={"tool": "lookup"},
    ...                      tool_calls=(ToolCall("lookup", {"sku": 7}),))
    >>> [c.name for c in ctx.tool_calls], ctx.has_text
    (['lookup'], False)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from workbench.core.chunks import Chunk
from workbench.core.outputs import Answer, ToolCall


class ModelCaller(Protocol):
    """The run's call path (cache, retries, per-model limits, cost) as a scorer sees it."""

    async def complete(
        self, *, model: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any], repeat: int = 0
    ) -> Answer:
        """One call through the cache; raises the provider's error when retries run out."""
        ...


@dataclass(frozen=True)
class ScoringContext:
    """Everything known about one output, handed to scorers that accept ``context``.

    Attributes:
        inputs: The template variables of the case.
        output: The reply's text ("" when the reply is only tool calls).
        expectations: The case's expected values.
        metadata: ``case_id``, ``variant``, ``variant_version``, ``model``, ``repeat``.
        tool_calls: The tool calls in the reply.
        retrieved: The retrieved chunks the prompt was built with (:class:`~workbench.core.chunks.Chunk`,
            rank order), or None when the variant has no retrieval.
        finish_reason: Why the model stopped.
        message: The raw assistant message.
        prompt_tokens: Prompt tokens of the call.
        completion_tokens: Completion tokens of the call.
        latency_s: Seconds the call took.
        models: The run's call path, for scorers that call a model (None outside a run).
    """

    inputs: Mapping[str, Any]
    output: str
    expectations: Mapping[str, Any]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    tool_calls: tuple[ToolCall, ...] = ()
    retrieved: tuple[Chunk, ...] | None = None
    finish_reason: str | None = None
    message: Mapping[str, Any] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float | None = None
    models: ModelCaller | None = field(default=None, repr=False, compare=False)

    @property
    def has_text(self) -> bool:
        return bool(self.output)
