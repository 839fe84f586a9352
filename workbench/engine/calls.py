"""The one call path: every model call of a run, the task's and the judges', goes through here.

:class:`CallPath` looks the call up in the response cache, else makes it with
the run's retries inside the model's concurrency limiter, prices it with
litellm, writes it to the cache the moment it arrives (what lets a killed run
resume), and counts what was spent (what the budget checks).

Which function makes the call: an injected one (tests, benchmarks) for every
model; else, for a router group, its ``litellm.Router`` (which then owns the call's
retries: see :mod:`workbench.providers.router`); else, with
``transport="openai-compatible"``, the pooled HTTP transport for the task's remote
models; else ``litellm.acompletion``. Judges always go through litellm, so a judge
can be any provider.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import litellm

from workbench.core.outputs import Answer, ModelReply, tool_calls_from
from workbench.core.routing import RouterGroup
from workbench.core.settings import RetryPolicy, RunSettings
from workbench.engine.cache import ResponseCache, cache_key
from workbench.engine.retry import AdaptiveLimiter, call_with_retries
from workbench.providers.models import cost_of, is_local
from workbench.providers.openai_compatible import TRANSPORT, OpenAICompatibleTransport
from workbench.providers.router import build_router, close_router, deployment_of

#: Message fields beyond role and text that make a reply worth keeping whole.
_EXTRA_MESSAGE_FIELDS = (
    "tool_calls", "function_call", "refusal", "reasoning_content", "thinking_blocks", "annotations", "audio", "images"
)  # fmt: skip


def reply_from(raw: Any, *, model: str, latency_s: float, group: RouterGroup | None = None) -> ModelReply:
    """A litellm ``ModelResponse`` (or the transport's) as the :class:`ModelReply` the cache keeps.

    ``group``: the router group the reply came through; the reply names the deployment that answered.

    The raw message is kept (as plain data) only when it holds more than role and text: tool
    calls, a refusal, reasoning. A 100,000-row run then does not store every text twice, nor
    pay for dumping every message.
    """
    choice = raw.choices[0]
    message = choice.message
    usage = getattr(raw, "usage", None)
    fields = _fields_of(message)
    extra = any(fields.get(name) for name in _EXTRA_MESSAGE_FIELDS)
    data = _plain_message(message) if extra else None
    return ModelReply(
        output=fields.get("content") or "",
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        cost_usd=cost_of(raw, model),
        latency_s=latency_s,
        tool_calls=tool_calls_from(data) if data else (),
        finish_reason=getattr(choice, "finish_reason", None),
        message=data,
        deployment=deployment_of(raw, group) if group is not None else None,
    )


def _fields_of(message: Any) -> Mapping[str, Any]:
    """A message's fields as a mapping, read without pydantic's slow attribute fallback."""
    if isinstance(message, Mapping):
        return message
    fields = dict(getattr(message, "__dict__", {}))
    fields.update(getattr(message, "__pydantic_extra__", None) or {})
    return fields


def _plain_message(message: Any) -> dict[str, Any]:
    dump = getattr(message, "model_dump", None)
    data = dump() if callable(dump) else dict(message)
    return {k: v for k, v in data.items() if v not in (None, "", [], {})}


def _router_retries(raw: Any) -> int:
    """Retries a litellm ``Router`` made before this answer (its ``x-litellm-attempted-retries`` header)."""
    headers = (getattr(raw, "_hidden_params", None) or {}).get("additional_headers") or {}
    try:
        return max(0, int(headers.get("x-litellm-attempted-retries") or 0))
    except (TypeError, ValueError):
        return 0


class CallPath:
    """Cache, retries, per-model concurrency and cost for every call of one run.

    Args:
        settings: The run's timeout, retries, concurrency limits and transport.
        acompletion: An async completion function that serves every model (tests
            inject fakes here); ``None`` for the real ones.
        cache: The response cache, or None for none.
        read_cache: Read hits from it (``False``: call again and overwrite).
        make_limiter: ``make_limiter(model, max_limit)`` builds a model's concurrency limiter
            (default: an :class:`~workbench.engine.retry.AdaptiveLimiter` of this process; a Ray
            worker passes one shared by the whole cluster).

    Example:
        >>> calls = CallPath(RunSettings())  # doctest: +SKIP
        >>> answer = await calls.complete(model="openai/gpt-4o-mini", messages=msgs, params={})  # doctest: +SKIP
        >>> answer.reply.output, answer.cached  # doctest: +SKIP
    """

    def __init__(
        self,
        settings: RunSettings,
        *,
        acompletion: Callable[..., Any] | None = None,
        cache: ResponseCache | None = None,
        read_cache: bool = True,
        make_limiter: Callable[[str, int], AdaptiveLimiter] | None = None,
    ) -> None:
        self.settings = settings
        self.make_limiter = make_limiter or (lambda model, max_limit: AdaptiveLimiter(max_limit))
        self.injected = acompletion
        self.cache = cache
        self.read_cache = read_cache
        self.transport = OpenAICompatibleTransport() if settings.transport == TRANSPORT else None
        self.limiters: dict[str, AdaptiveLimiter] = {}
        #: Router groups by name (see :meth:`use_routers`), and their routers once built.
        self.groups: dict[str, RouterGroup] = {}
        self._routers: dict[str, Any] = {}
        self._functions: dict[tuple[str, bool], Callable[..., Any]] = {}
        #: USD of the calls made (not cache hits); NaN-priced calls count 0.
        self.spent_usd = 0.0
        #: Task calls made (not cache hits, not judge calls): the result's ``calls_made``.
        self.calls_made = 0

    def use_routers(self, groups: Mapping[str, RouterGroup]) -> None:
        """Call the models named by ``groups`` through their litellm ``Router`` (built at the first call)."""
        self.groups.update(groups)

    def limiter(self, model: str) -> AdaptiveLimiter:
        """The concurrency limiter of ``model``, shared by the task's and the judges' calls."""
        if model not in self.limiters:
            settings = self.settings
            local = model not in self.groups and is_local(model)
            self.limiters[model] = self.make_limiter(
                model, settings.local_concurrency if local else settings.max_concurrency
            )
        return self.limiters[model]

    def _routed(self, model: str) -> bool:
        """Whether ``model``'s calls go through a router (a group, and no injected function)."""
        return self.injected is None and model in self.groups

    def _function(self, model: str, *, task: bool) -> Callable[..., Any]:
        """The completion function of ``model``'s calls (decided once per model and role)."""
        chosen = self._functions.get((model, task))
        if chosen is None:
            if self.injected is not None:
                chosen = self.injected
            elif model in self.groups:
                router = self._routers.get(model)
                if router is None:  # one router per group: its cooldowns and rpm counters are shared
                    router = build_router(self.groups[model], num_retries=self.settings.retry.max_attempts - 1)
                    self._routers[model] = router
                chosen = router.acompletion
            elif task and self.transport is not None and not is_local(model):
                chosen = self.transport
            else:
                chosen = litellm.acompletion
            self._functions[(model, task)] = chosen
        return chosen

    def cached(self, key: str) -> ModelReply | None:
        """The cached reply for ``key``, when reading the cache is on."""
        if self.cache is None or not self.read_cache:
            return None
        return self.cache.get(key)

    async def complete(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        repeat: int = 0,
        key: str | None = None,
        lookup: bool = True,
        task: bool = False,
    ) -> Answer:
        """One call: a cache hit costs nothing; a new reply is cached at once. Raises when retries run out.

        Args:
            model: litellm model string.
            messages: The chat messages.
            params: Model params (``temperature``, ``api_base``...).
            repeat: The repeat index (part of the cache key: repeats stay distinct).
            key: The cache key when the caller computed it already.
            lookup: Look in the cache first (the engine looked already).
            task: A task call (may use the openai-compatible transport); judges pass False.
        """
        key = key or cache_key(model, list(messages), params, repeat)
        if lookup:
            hit = self.cached(key)
            if hit is not None:
                return Answer(hit, cached=True)
        function = self._function(model, task=task)
        # litellm 1.106 routes any call with `tools` through its MCP gateway check, which imports the
        # optional `mcp` package (absent: "No module named 'mcp'"); the workbench sends plain function tools.
        routed = self._routed(model)
        uses_litellm = function is litellm.acompletion or routed
        extra: dict[str, Any] = {"_skip_mcp_handler": True} if uses_litellm and params.get("tools") else {}
        # Retried here, where rate limits are seen; a router group's router retries across its
        # deployments instead, and the engine makes one attempt (no max_attempts x num_retries).
        policy = RetryPolicy(max_attempts=1) if routed else self.settings.retry
        retries = {"max_retries": 0} if routed else {"num_retries": 0, "max_retries": 0}
        started = time.perf_counter()

        async def attempt() -> Any:
            return await function(
                model=model, messages=list(messages), timeout=self.settings.timeout_s, **retries, **params, **extra
            )

        try:
            raw, attempts = await call_with_retries(attempt, limiter=self.limiter(model), policy=policy)
        finally:
            self.calls_made += task
        group = self.groups[model] if routed else None
        if routed:  # the router's own tries, as litellm reports them
            attempts = 1 + _router_retries(raw)
        reply = reply_from(raw, model=model, latency_s=time.perf_counter() - started, group=group)
        if reply.cost_usd is not None and reply.cost_usd == reply.cost_usd:  # not NaN
            self.spent_usd += reply.cost_usd
        if self.cache is not None:
            self.cache.put(key, reply)  # written now: a killed run resumes from here
        return Answer(reply, cached=False, attempts=attempts)

    async def aclose(self) -> None:
        """Close the pooled HTTP session of the openai-compatible transport, and the routers, if any."""
        if self.transport is not None:
            await self.transport.aclose()
        for router in self._routers.values():
            close_router(router)
        self._routers.clear()
        self._functions = {key: f for key, f in self._functions.items() if key[0] not in self.groups}
