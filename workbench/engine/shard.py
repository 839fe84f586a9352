"""A shard of a run's calls, made and scored away from the driver (on a Ray worker).

The driver (:class:`~workbench.engine.ray_executor.RayExecutor`) plans the run, looks
each call up in its response cache and sends a shard of calls with their hits; a
:class:`ShardRunner` (one per run in each worker process) makes the calls that missed, scores
every row with the same :class:`~workbench.engine.rows.RowMaker` a single-process run
uses, and returns a :class:`ShardResult`: the rows, the new replies for the driver to
cache, and what was spent. A worker never opens the response cache itself, so a
local SQLite cache has one writer (the driver) however many workers run, and a
worker on another machine needs no access to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.core.outputs import ModelReply
from workbench.core.redaction import REDACTOR
from workbench.core.spec import ExperimentSpec
from workbench.engine.cache import ResponseCache
from workbench.engine.calls import CallPath
from workbench.engine.planning import Call
from workbench.engine.retry import AdaptiveLimiter
from workbench.engine.rows import RowMaker


class ShardCache(ResponseCache):
    """The cache a worker sees: the hits the driver sent, and the replies it made since the last hand-back.

    Nothing is written to disk; :meth:`take_new` hands the new replies to the driver, which
    writes them to the run's real cache.
    """

    def __init__(self) -> None:  # no SQLite file: the parent's init is not used
        self.path = "<shard>"
        self.hits: dict[str, ModelReply] = {}
        self.new: dict[str, ModelReply] = {}

    def get(self, key: str) -> ModelReply | None:
        return self.new.get(key) or self.hits.get(key)

    def contains(self, keys: Sequence[str]) -> set[str]:
        return {key for key in keys if key in self.new or key in self.hits}

    def put(self, key: str, value: ModelReply) -> None:
        self.new[key] = value

    def take_new(self) -> dict[str, ModelReply]:
        """The replies made since the last call (to write to the driver's cache)."""
        new, self.new = self.new, {}
        return new

    def __len__(self) -> int:
        return len(self.hits) + len(self.new)

    def clear(self) -> int:
        n = len(self)
        self.hits, self.new = {}, {}
        return n

    def close(self) -> None:
        self.clear()


@dataclass
class ShardResult:
    """What a worker hands back for one shard.

    Attributes:
        rows: The shard's scored rows (in any order; each has its plan ``_order``).
        replies: New replies by cache key, for the driver's response cache.
        spent_usd: USD spent by this worker since its previous result.
        calls_made: Task calls made by this worker since its previous result.
    """

    rows: list[dict[str, Any]]
    replies: dict[str, ModelReply] = field(default_factory=dict)
    spent_usd: float = 0.0
    calls_made: int = 0


class ShardRunner:
    """Makes and scores shards of one run's calls; one per run in each worker process.

    Heavy things (the embedded local model, an embedding model, the PII analyzer) are
    loaded by the first call that needs them and kept by the process, so each worker loads
    them once, not once per case or per shard.

    Args:
        experiment: The run's definition (its dataset is not needed: cases come with the calls).
        acompletion: The injected completion function, if any (tests).
        make_limiter: Builds each model's concurrency limiter (see :class:`~workbench.engine.calls.CallPath`).
    """

    def __init__(
        self,
        experiment: ExperimentSpec,
        *,
        acompletion: Callable[..., Any] | None = None,
        make_limiter: Callable[[str, int], AdaptiveLimiter] | None = None,
    ) -> None:
        for variant in experiment.variants:  # what the driver's redactor learned, this process learns too
            REDACTOR.learn(variant.params)
        self.cache = ShardCache()
        self.calls = CallPath(experiment.settings, acompletion=acompletion, cache=self.cache, make_limiter=make_limiter)
        self.rows = RowMaker(experiment, calls=self.calls)
        self._spent_reported = 0.0
        self._calls_reported = 0

    async def run(self, calls: Sequence[Call], hits: Mapping[str, ModelReply]) -> ShardResult:
        """Make (or take from ``hits``) and score every call of the shard; all run at once, within the limiters."""
        self.cache.hits.update(hits)
        try:
            rows = await asyncio.gather(*(self._row(call) for call in calls))
        finally:
            for key in hits:
                self.cache.hits.pop(key, None)
        spent, made = self.calls.spent_usd, self.calls.calls_made
        result = ShardResult(
            list(rows),
            self.cache.take_new(),
            spent_usd=spent - self._spent_reported,
            calls_made=made - self._calls_reported,
        )
        self._spent_reported, self._calls_reported = spent, made
        return result

    async def _row(self, call: Call) -> dict[str, Any]:
        hit = self.calls.cached(call.key)
        if hit is not None:
            return await self.rows.score(call, self.rows.from_hit(call, hit), hit)
        row, reply = await self.rows.called(call)
        return await self.rows.score(call, row, reply)

    async def aclose(self) -> None:
        """Close the pooled HTTP session, if any."""
        await self.calls.aclose()
