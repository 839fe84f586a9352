"""What a judge's own calls used, and the params they are made with.

Judge calls go through the run's :class:`~workbench.engine.calls.CallPath`
(the same cache, retries and limits as the task's calls); outside a run a
judge makes its own, uncached one (:func:`default_models`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workbench.core.outputs import Answer
from workbench.core.settings import RunSettings
from workbench.engine.calls import CallPath
from workbench.scorers.context import ModelCaller, ScoringContext

#: Judge defaults, below the judge's own ``params``: a judge should be repeatable and brief.
DEFAULT_PARAMS: Mapping[str, Any] = {"temperature": 0.0, "max_tokens": 256}


@dataclass
class Usage:
    """Tokens and cost summed over the judge calls behind one score."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0
    cached_calls: int = 0

    def add(self, answer: Answer) -> None:
        reply = answer.reply
        self.prompt_tokens += reply.prompt_tokens
        self.completion_tokens += reply.completion_tokens
        self.cost_usd += math.nan if reply.cost_usd is None else reply.cost_usd
        self.calls += 1
        self.cached_calls += answer.cached

    @property
    def all_cached(self) -> bool:
        return self.calls > 0 and self.cached_calls == self.calls


def judge_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The judge's call params: :data:`DEFAULT_PARAMS` overridden by its own."""
    return {**DEFAULT_PARAMS, **params}


def models_of(context: ScoringContext | None) -> ModelCaller:
    """The run's call path from a scoring context, or an uncached litellm one outside a run."""
    if context is not None and context.models is not None:
        return context.models
    return default_models()


def default_models() -> CallPath:
    """A call path with default settings, straight to litellm and without a cache."""
    return CallPath(RunSettings())
