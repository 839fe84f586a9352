"""Retries and adaptive concurrency for provider calls.

litellm and the OpenAI SDK can retry internally, but then the runner never
sees a 429 and cannot slow down. So the runner calls litellm with retries off
and retries itself with tenacity:

- 429: wait at least the provider's ``Retry-After``, and halve the model's
  concurrency (then recover by one slot per window of successes: AIMD);
- 5xx, 408/409, timeouts and dropped connections: exponential backoff with
  full jitter;
- anything else (400, 401, 404...) is not retried: it will not get better.
"""

from __future__ import annotations

import asyncio
import collections
import email.utils
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import litellm
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from workbench.core.settings import RetryPolicy

T = TypeVar("T")

_RETRYABLE_STATUS = {408, 409, 429}


def status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return int(status) if isinstance(status, int) else None


def is_retryable(exc: BaseException) -> bool:
    """Transient: rate limits, server errors, timeouts, dropped connections."""
    if isinstance(exc, (litellm.Timeout, litellm.APIConnectionError, asyncio.TimeoutError, ConnectionError)):
        return True
    status = status_of(exc)
    return status is not None and (status in _RETRYABLE_STATUS or status >= 500)


def retry_after_s(exc: BaseException) -> float | None:
    """Seconds the provider asked us to wait (``Retry-After``), if it said."""
    for headers in (
        getattr(getattr(exc, "response", None), "headers", None),
        getattr(exc, "litellm_response_headers", None),
        getattr(exc, "headers", None),
    ):
        if not headers:
            continue
        value = headers.get("retry-after") or headers.get("Retry-After")
        if value is None:
            continue
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value)
            return max(0.0, parsed.timestamp() - time.time()) if parsed else None
    return None


class AdaptiveLimiter:
    """A concurrency limit that halves on rate limits and creeps back up.

    Example:
        >>> limiter = AdaptiveLimiter(16)
        >>> limiter.on_rate_limited(); limiter.limit
        8
    """

    def __init__(self, max_limit: int) -> None:
        self.max_limit = max_limit
        self.limit = max_limit
        self.in_flight = 0
        self.rate_limited = 0
        self._successes = 0
        self._last_cut = 0.0
        # Waiters in arrival order; a freed slot is handed to exactly one of them
        # (a Condition's notify_all would wake every waiter for every slot).
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def __aenter__(self) -> AdaptiveLimiter:
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return self
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # _wake() counted the slot as ours before resolving it
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # granted, then cancelled: give it back
                self.in_flight -= 1
                self._wake()
            elif waiter in self._waiters:  # _wake() may already have dropped it
                self._waiters.remove(waiter)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    def on_rate_limited(self) -> None:
        """Halve the limit, at most once per second: the 429s of one burst count once."""
        self.rate_limited += 1
        now = time.monotonic()
        if now - self._last_cut >= 1.0:
            self.limit = max(1, self.limit // 2)
            self._last_cut = now
            self._successes = 0

    def on_success(self) -> None:
        """Add one slot back after ``limit`` successes in a row (additive increase)."""
        if self.limit >= self.max_limit:
            return
        self._successes += 1
        if self._successes >= self.limit:
            self.limit += 1
            self._successes = 0
            self._wake()


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    jitter = wait_random_exponential(multiplier=policy.initial_wait_s, max=policy.max_wait_s)

    def wait(state: RetryCallState) -> float:
        backoff = jitter(state)
        exc = state.outcome.exception() if state.outcome else None
        asked = retry_after_s(exc) if exc is not None else None
        return max(backoff, asked) if asked is not None else backoff

    return wait


async def call_with_retries(
    call: Callable[[], Awaitable[T]], *, limiter: AdaptiveLimiter, policy: RetryPolicy
) -> tuple[T, int]:
    """Run ``call`` inside ``limiter`` with retries; returns its result and the attempts used.

    The limiter slot is released while waiting to retry, so other calls go on.
    Raises the last exception when retries are exhausted or it is not retryable.
    """

    def on_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None and status_of(exc) == 429:
            limiter.on_rate_limited()

    attempts = 0
    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.max_attempts),
        wait=_wait(policy),
        retry=retry_if_exception(is_retryable),
        before_sleep=on_retry,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            attempts += 1
            async with limiter:
                result: Any = await call()
    limiter.on_success()
    return result, attempts
