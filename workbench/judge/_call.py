"""One judge call: through the response cache, with the runner's retries and limits."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench._secrets import is_secret
from workbench.cache import CachedResponse, cache_key
from workbench.retry import RetryPolicy, call_with_retries
from workbench.scorers.base import ScoringContext

#: Judge defaults, below the judge's own ``params``: a judge should be repeatable and brief.
DEFAULT_PARAMS: Mapping[str, Any] = {"temperature": 0.0, "max_tokens": 256}


@dataclass(frozen=True)
class Answer:
    """What one judge call returned, and whether the cache answered it."""

    response: CachedResponse
    cached: bool


@dataclass
class Usage:
    """Tokens and cost summed over the judge calls behind one score."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0
    cached_calls: int = 0

    def add(self, answer: Answer) -> None:
        response = answer.response
        self.prompt_tokens += response.prompt_tokens
        self.completion_tokens += response.completion_tokens
        self.cost_usd += math.nan if response.cost_usd is None else response.cost_usd
        self.calls += 1
        self.cached_calls += answer.cached

    @property
    def all_cached(self) -> bool:
        return self.calls > 0 and self.cached_calls == self.calls


def judge_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The judge's call params: :data:`DEFAULT_PARAMS` overridden by its own."""
    return {**DEFAULT_PARAMS, **params}


def redact_error(exc: BaseException, params: Mapping[str, Any]) -> str:
    """``Type: message`` of a failed call, with any credential in ``params`` masked."""
    text = f"{type(exc).__name__}: {exc}"
    for key, value in params.items():
        if is_secret(key) and isinstance(value, str) and len(value) >= 6:
            text = text.replace(value, "***")
    return text


async def ask(
    context: ScoringContext,
    *,
    model: str,
    messages: Sequence[Mapping[str, str]],
    params: Mapping[str, Any],
    repeat: int,
) -> Answer:
    """Ask ``model`` once; a cached answer costs no call, a new one is cached at once.

    The cache key is the task's scheme (model, messages, params, repeat index),
    so judging the same output again is free and sample ``k`` of a judge is
    always the same cached answer. Failed calls raise and are never cached.
    """
    key = cache_key(model, list(messages), params, repeat)
    if context.cache is not None and context.read_cache:
        hit = context.cache.get(key)
        if hit is not None:
            return Answer(hit, cached=True)
    from workbench.planning import cost_of

    started = time.perf_counter()

    async def attempt() -> Any:
        return await context.acompletion(
            model=model,
            messages=list(messages),
            timeout=context.timeout_s,
            num_retries=0,  # retried below, where rate limits are seen
            max_retries=0,
            **params,
        )

    raw, _ = await call_with_retries(attempt, limiter=context.limiter(model), policy=context.retry or RetryPolicy())
    usage = getattr(raw, "usage", None)
    response = CachedResponse(
        output=raw.choices[0].message.content or "",
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        cost_usd=cost_of(raw, model),
        latency_s=time.perf_counter() - started,
    )
    if context.cache is not None:
        context.cache.put(key, response)
    return Answer(response, cached=False)
