"""A fake OpenAI-compatible chat server for tests and benchmarks.

It runs aiohttp on its own asyncio loop in a background thread, answers
``POST /v1/chat/completions`` with a reply derived from the request, and can
inject faults (429, 500, 503, hang, dropped connection) at a given rate. Every
decision is deterministic: the reply hashes the request, and whether attempt *n*
of a request faults hashes ``(seed, request key, n)``, so a retried request can
succeed and two runs with the same seed see the same faults.

The server never reads, logs or stores the ``Authorization`` header.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

from workbench.core.exceptions import UsageError

#: Fault kinds the server can inject.
FAULT_KINDS: tuple[str, ...] = ("429", "500", "503", "hang", "drop")

# Request fields that change the answer a real model would give, so they are
# part of the key that identifies "the same request" across retries.
_KEY_PARAMS = ("temperature", "top_p", "seed", "max_tokens", "max_completion_tokens", "n", "stop")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def expected_reply(model: str, messages: list[dict[str, Any]]) -> str:
    """The default reply the server gives to ``messages`` sent to ``model``.

    Args:
        model: The model name as the server receives it (``"fake"`` for litellm's ``"openai/fake"``).
        messages: The chat messages as sent.

    Example:
        >>> expected_reply("fake", [{"role": "user", "content": "hi"}])[:5]
        'echo:'
    """
    digest = hashlib.sha256((model + _canonical(messages)).encode()).hexdigest()
    return "echo:" + digest[:16]


def request_key(body: dict[str, Any]) -> str:
    """A short hash identifying a chat request: model, messages and sampling params."""
    keyed = {"model": body.get("model"), "messages": body.get("messages")}
    keyed.update({p: body[p] for p in _KEY_PARAMS if p in body})
    return hashlib.sha256(_canonical(keyed).encode()).hexdigest()[:16]


def _words(text: Any) -> int:
    return len(str(text).split()) if text else 0


def _completion(body: dict[str, Any], content: str | Mapping[str, Any]) -> dict[str, Any]:
    prompt_tokens = sum(_words(m.get("content")) for m in body["messages"])
    if isinstance(content, Mapping):  # a whole assistant message, e.g. with tool_calls
        message = {"role": "assistant", "content": None, **content}
        tool_calls = message.get("tool_calls") or []
        for i, tool_call in enumerate(tool_calls):  # as OpenAI sends them: an id, a type, arguments as text
            tool_call.setdefault("id", f"call_{request_key(body)[:8]}_{i}")
            tool_call.setdefault("type", "function")
            if not isinstance(tool_call["function"].get("arguments"), str):
                tool_call["function"]["arguments"] = json.dumps(tool_call["function"].get("arguments") or {})
        finish = "tool_calls" if tool_calls else "stop"
        completion_tokens = _words(message.get("content")) + sum(_words(_canonical(c)) for c in tool_calls)
    else:
        message, finish = {"role": "assistant", "content": content}, "stop"
        completion_tokens = _words(content)
    choice = {"index": 0, "message": message, "finish_reason": finish}
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
    return {
        "id": "chatcmpl-" + request_key(body),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [{**choice, "logprobs": None}],
        "usage": {**usage, "total_tokens": prompt_tokens + completion_tokens},
    }


def _error(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"error": {"message": message, "type": code, "param": None, "code": code}}
    return web.json_response(body, status=status, headers=headers)


@dataclass
class ServerStats:
    """Request counts, for the whole server or for one request key (see :func:`request_key`).

    ``client_disconnects`` counts requests whose client went away before the answer (a client
    timeout, typically during a hang); drops are the server's doing and count as faults only.
    """

    requests: int = 0
    successes: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    client_disconnects: int = 0


class FakeOpenAIServer:
    """An OpenAI-compatible server on 127.0.0.1 with an OS-chosen port.

    Statistics are updated on the server's loop under a lock, so they can be
    read from any thread; every accessor returns a snapshot.

    Args:
        latency_s: Seconds each successful answer waits (``asyncio.sleep``, never blocking).
        fault_rate: Probability in [0, 1] that an attempt gets a fault instead of an answer.
        faults: Fault kinds to draw from, a subset of :data:`FAULT_KINDS`.
        retry_after_s: Value of the ``Retry-After`` header on 429 answers.
        hang_s: How long a ``hang`` fault waits before answering 504; longer than the client timeout.
        seed: Seed for the fault decisions.
        reply: Optional ``reply(request_json)`` replacing :func:`expected_reply`: the reply's text, or
            the assistant message as a mapping (``{"tool_calls": [{"function": {"name": ...,
            "arguments": {...}}}]}``; ids, types and JSON-text arguments are filled in).

    Example:
        >>> import litellm
        >>> with FakeOpenAIServer(latency_s=0.1, fault_rate=0.2) as server:  # doctest: +SKIP
        ...     litellm.completion(model="openai/fake", api_base=server.base_url, api_key="sk-fake",
        ...                        messages=[{"role": "user", "content": "hi"}], num_retries=3)
        ...     server.stats
    """

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        fault_rate: float = 0.0,
        faults: Sequence[str] = FAULT_KINDS,
        retry_after_s: float = 0.05,
        hang_s: float = 30.0,
        seed: int = 0,
        reply: Callable[[dict[str, Any]], str | Mapping[str, Any]] | None = None,
    ) -> None:
        if not faults or any(f not in FAULT_KINDS for f in faults):
            raise UsageError(f"faults must be a non-empty subset of {FAULT_KINDS!r}, got {tuple(faults)!r}")
        if not 0.0 <= fault_rate <= 1.0:
            raise UsageError(f"fault_rate must be within [0, 1], got {fault_rate!r}")
        self.latency_s, self.fault_rate, self.faults = latency_s, fault_rate, tuple(faults)
        self.retry_after_s, self.hang_s, self.seed = retry_after_s, hang_s, seed
        self._reply = reply
        self._lock = threading.Lock()
        self._tallies: dict[str, ServerStats] = {}
        self._in_flight = 0
        self._peak_in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    @property
    def base_url(self) -> str:
        """The ``api_base`` to give litellm, e.g. ``http://127.0.0.1:41234/v1``."""
        if self.port is None:
            raise UsageError("FakeOpenAIServer is not started; use it as a context manager or call start()")
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAIServer:
        """Start serving in a background thread; returns once the port is bound."""
        if self._thread is not None:
            raise UsageError("FakeOpenAIServer is already started")
        self._loop = loop = asyncio.new_event_loop()
        started, errors = threading.Event(), []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._runner = loop.run_until_complete(self._serve())
            except Exception as exc:  # reported to the starting thread below
                errors.append(exc)
            started.set()
            if self._runner is not None:
                loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-openai-server", daemon=True)
        self._thread.start()
        if not started.wait(timeout=10) or self._runner is None:
            raise UsageError("FakeOpenAIServer did not start") from (errors[0] if errors else None)
        self.port = self._runner.addresses[0][1]
        return self

    async def _serve(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        # No access log: nothing about a request, let alone its headers, is written anywhere.
        # handler_cancellation: a client that gives up cancels its handler, so it never counts as a success.
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, backlog=1024).start()
        return runner

    def stop(self) -> None:
        """Stop the server, cancel hanging handlers and join the thread."""
        if self._loop is None or self._thread is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop = self._thread = self._runner = self.port = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def stats(self) -> ServerStats:
        """Totals since start or the last :meth:`reset_stats`, as a snapshot."""
        total = ServerStats()
        for key_stats in self.stats_by_key().values():
            total.requests += key_stats.requests
            total.successes += key_stats.successes
            total.client_disconnects += key_stats.client_disconnects
            for kind, count in key_stats.faults.items():
                total.faults[kind] = total.faults.get(kind, 0) + count
        return total

    @property
    def requests(self) -> int:
        """How many chat completion requests arrived."""
        return self.stats.requests

    def stats_by_key(self) -> dict[str, ServerStats]:
        """Counts per request key (see :func:`request_key`), as a snapshot."""
        with self._lock:
            return {k: replace(t, faults=dict(t.faults)) for k, t in self._tallies.items()}

    def successes_by_key(self) -> dict[str, int]:
        """How many 200 answers each request key got."""
        return {k: s.successes for k, s in self.stats_by_key().items()}

    @property
    def peak_in_flight(self) -> int:
        """The most chat requests the server was handling at once (since start or :meth:`reset_stats`).

        What a concurrency limit looks like from the provider's side, whichever processes sent them.
        """
        with self._lock:
            return self._peak_in_flight

    def reset_stats(self) -> None:
        """Forget all counts, including the attempt numbers that drive fault decisions."""
        with self._lock:
            self._tallies.clear()
            self._peak_in_flight = self._in_flight

    def _decide_fault(self, key: str, attempt: int) -> str | None:
        digest = hashlib.sha256(f"{self.seed}:{key}:{attempt}".encode()).digest()
        if int.from_bytes(digest[:8], "big") / 2**64 >= self.fault_rate:
            return None
        return self.faults[int.from_bytes(digest[8:12], "big") % len(self.faults)]

    async def _models(self, request: web.Request) -> web.Response:
        data = [{"id": "fake", "object": "model", "created": 0, "owned_by": "workbench"}]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
            body["model"], body["messages"] = str(body["model"]), list(body["messages"])
        except (ValueError, KeyError, TypeError):
            return _error(400, "body must be JSON with 'model' and 'messages'", "invalid_request_error")
        if body.get("stream"):
            return _error(400, "the fake server does not stream", "invalid_request_error")
        key = request_key(body)
        with self._lock:  # the fault is decided on arrival, before any work
            tally = self._tallies.setdefault(key, ServerStats())
            fault = self._decide_fault(key, tally.requests)
            tally.requests += 1
            if fault is not None:
                tally.faults[fault] = tally.faults.get(fault, 0) + 1
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
        try:
            return await self._answer(request, body, fault, tally)
        except asyncio.CancelledError:
            if fault != "drop":  # a drop is the server's doing, already counted as a fault
                with self._lock:
                    tally.client_disconnects += 1
            raise
        finally:
            with self._lock:
                self._in_flight -= 1

    async def _answer(
        self, request: web.Request, body: dict[str, Any], fault: str | None, tally: ServerStats
    ) -> web.StreamResponse:
        if fault == "429":
            seconds = self.retry_after_s
            headers = {"Retry-After": f"{seconds:g}", "retry-after-ms": f"{seconds * 1000:g}"}
            return _error(429, "rate limited (injected fault)", "rate_limit_exceeded", headers)
        if fault in ("500", "503"):
            return _error(int(fault), f"server error {fault} (injected fault)", "server_error")
        if fault == "hang":
            await asyncio.sleep(self.hang_s)
            return _error(504, "hung (injected fault)", "timeout")
        if fault == "drop":
            if request.transport is not None:
                request.transport.close()
            await asyncio.sleep(self.hang_s)  # the closed connection cancels this handler first
            raise asyncio.CancelledError
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        content = self._reply(body) if self._reply else expected_reply(body["model"], body["messages"])
        payload = _completion(body, content)
        with self._lock:
            tally.successes += 1
        return web.json_response(payload)
