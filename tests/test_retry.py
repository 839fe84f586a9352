"""The adaptive concurrency limiter: bounds, order, AIMD and cancellation."""

import asyncio

import pytest

from workbench.engine.retry import AdaptiveLimiter


async def _hold(limiter: AdaptiveLimiter, seconds: float, log: list, name: int, peak: list) -> None:
    async with limiter:
        log.append(name)
        peak.append(limiter.in_flight)
        await asyncio.sleep(seconds)


def test_at_most_limit_in_flight_and_slots_go_in_arrival_order():
    async def main() -> tuple[list, list, AdaptiveLimiter]:
        limiter, log, peak = AdaptiveLimiter(3), [], []
        await asyncio.gather(*(_hold(limiter, 0.01, log, i, peak) for i in range(12)))
        return log, peak, limiter

    log, peak, limiter = asyncio.run(main())
    assert log == list(range(12))  # first come, first served
    assert max(peak) == 3 and limiter.in_flight == 0


def test_rate_limits_halve_the_limit_and_successes_bring_it_back():
    async def main() -> list[int]:
        limiter, log, peak = AdaptiveLimiter(8), [], []
        limiter.on_rate_limited()
        limiter.on_rate_limited()  # same burst (within a second): counted once
        assert limiter.limit == 4 and limiter.rate_limited == 2
        await asyncio.gather(*(_hold(limiter, 0.01, log, i, peak) for i in range(16)))
        assert max(peak) == 4
        for _ in range(4):
            limiter.on_success()
        assert limiter.limit == 5  # one slot back after `limit` successes
        return peak

    asyncio.run(main())


def test_a_larger_limit_lets_waiters_in_at_once():
    async def main() -> int:
        limiter, log, peak = AdaptiveLimiter(4), [], []
        limiter.limit = 1
        tasks = [asyncio.ensure_future(_hold(limiter, 0.05, log, i, peak)) for i in range(4)]
        await asyncio.sleep(0.01)
        assert limiter.in_flight == 1
        limiter.limit = 3
        limiter._successes = 2
        limiter.on_success()  # the limit grows to 4 and the waiters get the new slots now
        await asyncio.sleep(0)
        running = limiter.in_flight
        await asyncio.gather(*tasks)
        return running

    assert asyncio.run(main()) == 4


def test_a_cancelled_waiter_leaks_no_slot():
    async def main() -> AdaptiveLimiter:
        limiter, log, peak = AdaptiveLimiter(1), [], []
        first = asyncio.ensure_future(_hold(limiter, 0.05, log, 0, peak))
        await asyncio.sleep(0)
        waiting = asyncio.ensure_future(_hold(limiter, 0.05, log, 1, peak))
        later = asyncio.ensure_future(_hold(limiter, 0.01, log, 2, peak))
        await asyncio.sleep(0.01)
        waiting.cancel()
        await asyncio.wait_for(asyncio.gather(first, later), 5)
        assert log == [0, 2] and waiting.cancelled()
        return limiter

    limiter = asyncio.run(main())
    assert limiter.in_flight == 0 and not limiter._waiters


def test_a_cancelled_waiter_dropped_by_a_release_before_it_resumes_still_ends_cancelled():
    async def main() -> tuple[list, AdaptiveLimiter]:
        limiter, log, peak = AdaptiveLimiter(1), [], []
        await limiter.__aenter__()  # the test holds the only slot
        waiting = asyncio.ensure_future(_hold(limiter, 0.01, log, 1, peak))
        later = asyncio.ensure_future(_hold(limiter, 0.01, log, 2, peak))
        await asyncio.sleep(0)  # both are queued
        waiting.cancel()  # cancelled, but it has not resumed yet...
        await limiter.__aexit__()  # ...when the release skips its future and serves `later`
        await asyncio.wait_for(later, 5)
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return log, limiter

    log, limiter = asyncio.run(main())
    assert log == [2] and limiter.in_flight == 0 and not limiter._waiters


def test_a_waiter_cancelled_after_being_granted_a_slot_gives_it_back():
    async def main() -> tuple[list, AdaptiveLimiter]:
        limiter, log, peak = AdaptiveLimiter(1), [], []
        await limiter.__aenter__()  # the test holds the only slot
        granted = asyncio.ensure_future(_hold(limiter, 0.01, log, 1, peak))
        later = asyncio.ensure_future(_hold(limiter, 0.01, log, 2, peak))
        await asyncio.sleep(0)  # both are queued
        await limiter.__aexit__()  # the slot goes to `granted`...
        granted.cancel()  # ...which is cancelled before it runs
        await asyncio.wait_for(later, 5)
        assert granted.cancelled()
        return log, limiter

    log, limiter = asyncio.run(main())
    assert log == [2] and limiter.in_flight == 0
