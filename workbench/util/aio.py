"""Run a coroutine from sync code, even inside a running event loop (Jupyter).

Jupyter kernels already run an asyncio loop, so ``asyncio.run`` raises there
and ``loop.run_until_complete`` would dead-lock. When a loop is running we run
the coroutine on a fresh loop in a worker thread and wait for it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion and return its result.

    Example:
        >>> async def two():
        ...     return 2
        >>> run_sync(two())
        2
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="workbench") as pool:
        return pool.submit(asyncio.run, coro).result()
