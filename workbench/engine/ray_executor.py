"""Run a run's calls on a Ray cluster: ``settings: {executor: ray}`` or ``exp.run(executor=RayExecutor())``.

How a run is split. The driver (the process that called ``run()``) validates and plans the
run as usual, cuts the plan into shards of whole cases (every variant, model and repeat
of a case in one shard), looks each call up in the response cache, and sends each shard
with its hits to one of ``workers`` Ray actors (a :class:`~workbench.engine.shard.ShardRunner`
each, a few shards in flight per actor). The actors make the calls that missed, score
every row with the same code as a single-process run, and send the rows back. The driver
writes them to the run store's Parquet file, writes the new replies to its cache, and
tells the observers (progress, MLflow: all logging stays in the driver). So the run
store, the MLflow runs and the cache are the same as a single-process run's.

Limits hold for the whole cluster. A remote model's ``max_concurrency`` is one
:class:`~workbench.engine.retry.AdaptiveLimiter` per model kept by one Ray actor
(:class:`ClusterSlots`); every worker takes a slot from it before each attempt of a call
and gives it back after, so the provider never sees more than ``max_concurrency`` calls
of the run at once, and a 429 seen by any worker halves the limit for all of them. This
costs two small actor calls per attempt (about a millisecond each on one machine): nothing
next to a remote model's latency. A **local** model's ``local_concurrency`` is per worker:
each worker loads its own copy of the model (once, at its first call) and a llama.cpp
context runs one call at a time, so a cluster of N workers runs N local calls at once.

The cache. Workers never open the response cache: the driver sends hits and writes the
replies that come back, so a local SQLite file keeps one writer and workers on other
machines need no access to it. A reply is cached when its shard returns (not the moment it
arrives, as in a single-process run): a run killed mid-way loses at most the shards in
flight. An LLM judge's calls are not sent as hits (they are not known before scoring), so
under Ray a re-run pays for its judge calls again.

The budget. ``budget_usd`` is checked per shard (the upper bound of a whole shard is reserved
before it is sent), so a run on Ray stops a little earlier than a single process would.

Workers. A :class:`RayExecutor` starts its worker processes at its first run and keeps them for
the next ones (a sweep pays the start once, and a loaded local model stays loaded); they stop
with :meth:`RayExecutor.close`, when the executor is garbage-collected, or at ``ray.shutdown()``.

Example:
    >>> import workbench as wb  # doctest: +SKIP
    >>> result = exp.run(executor=wb.RayExecutor(address="ray://head:10001", workers=8))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from workbench.core import schema as col
from workbench.core.exceptions import ConfigError
from workbench.core.outputs import ModelReply
from workbench.engine.planning import Call, plan
from workbench.engine.retry import AdaptiveLimiter
from workbench.engine.runner import Engine
from workbench.engine.shard import ShardResult, ShardRunner
from workbench.providers.models import is_local

#: Shards in flight per worker: one running, one queued, so a worker never waits for the driver.
_IN_FLIGHT_PER_WORKER = 2
#: The most calls in one shard (rows come back, and are cached, a shard at a time).
_MAX_SHARD_CALLS = 256

_INSTALL_HINT = 'pip install -e ".[scale]"'


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`ConfigError` saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(
            f"the Ray executor needs Ray, which is not installed: {_INSTALL_HINT} "
            f"(or pip install ray); without it, leave out `executor: ray` / `executor=` to run in this process"
        ) from exc
    return ray


class ClusterSlots:
    """One :class:`AdaptiveLimiter` per run and remote model for the whole cluster (run as a Ray actor).

    Its keys are ``<run>/<model>``: each run has its own limits, as in a single process.

    ``acquire`` waits for a slot, ``release`` gives it back; ``rate_limited`` and ``succeeded``
    drive the limit down and up exactly as in a single process. ``peak`` is the most slots of
    a model held at once (what a test or a benchmark checks).
    """

    def __init__(self) -> None:
        self.limiters: dict[str, AdaptiveLimiter] = {}
        self.peaks: dict[str, int] = {}

    def _limiter(self, model: str, max_limit: int) -> AdaptiveLimiter:
        if model not in self.limiters:
            self.limiters[model] = AdaptiveLimiter(max_limit)
            self.peaks[model] = 0
        return self.limiters[model]

    async def acquire(self, model: str, max_limit: int) -> None:
        limiter = self._limiter(model, max_limit)
        await limiter.__aenter__()
        self.peaks[model] = max(self.peaks[model], limiter.in_flight)

    async def release(self, model: str) -> None:
        await self.limiters[model].__aexit__()

    def rate_limited(self, model: str) -> None:
        self.limiters[model].on_rate_limited()

    def succeeded(self, model: str) -> None:
        self.limiters[model].on_success()

    def peak(self, model: str) -> int:
        return self.peaks.get(model, 0)

    def forget(self, run: str) -> None:
        """Drop the limiters of run ``run`` (keys ``<run>/<model>``)."""
        for key in [key for key in self.limiters if key.startswith(run + "/")]:
            self.limiters.pop(key)
            self.peaks.pop(key, None)


class ShardHost:
    """One worker process (a Ray actor): a :class:`ShardRunner` per run, and the things it loaded.

    The process outlives a run: a :class:`RayExecutor` used for several runs (a sweep in a
    notebook) keeps its workers, so the local model, once loaded, stays loaded.
    """

    def __init__(self) -> None:
        self.runs: dict[str, ShardRunner] = {}
        self._starting = asyncio.Lock()  # two shards of a new run arrive together: one runner for both

    async def run(self, run: str, setup: list[Any], calls: list[Call], hits: Mapping[str, ModelReply]) -> ShardResult:
        """One shard of run ``run``; ``setup`` holds the reference to ``(experiment, acompletion, limits)``."""
        async with self._starting:
            if run not in self.runs:
                experiment, acompletion, limits = await setup[0]  # fetched once per run and worker
                self.runs[run] = ShardRunner(experiment, acompletion=acompletion, make_limiter=limits)
        return await self.runs[run].run(calls, hits)

    async def finish(self, run: str) -> None:
        """Forget run ``run`` (its HTTP session closed)."""
        runner = self.runs.pop(run, None)
        if runner is not None:
            await runner.aclose()


class SharedLimiter(AdaptiveLimiter):
    """A worker's stand-in for a model's limiter held by the :class:`ClusterSlots` actor."""

    def __init__(self, slots: Any, model: str, max_limit: int) -> None:
        super().__init__(max_limit)
        self.slots = slots
        self.model = model

    async def __aenter__(self) -> SharedLimiter:
        await self.slots.acquire.remote(self.model, self.max_limit)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.slots.release.remote(self.model)

    def on_rate_limited(self) -> None:
        self.rate_limited += 1
        self.slots.rate_limited.remote(self.model)

    def on_success(self) -> None:
        self.slots.succeeded.remote(self.model)


@dataclass(frozen=True)
class ClusterLimits:
    """The limiter factory a worker's :class:`~workbench.engine.calls.CallPath` uses: shared for
    remote models, the worker's own for local ones (each worker has its own copy of the model)."""

    slots: Any
    run: str

    def __call__(self, model: str, max_limit: int) -> AdaptiveLimiter:
        if is_local(model):
            return AdaptiveLimiter(max_limit)
        return SharedLimiter(self.slots, f"{self.run}/{model}", max_limit)


@dataclass
class RayExecutor:
    """Shards a run's cases across a Ray cluster; the run store and MLflow runs are those of a local run.

    Args:
        address: The cluster (``"ray://head:10001"``, ``"auto"``, ``"local"``); ``None``:
            ``$RAY_ADDRESS``, else a new local cluster. Ignored when Ray is already initialised
            in this process (then that cluster is used).
        workers: Worker actors (one process each); default: the cluster's CPUs.
        shard_cases: Cases per shard; default: about four shards per worker, at most 256 calls each.
        runtime_env: Ray's ``runtime_env`` for a new connection (e.g. ``{"pip": [...]}`` when the
            cluster's nodes lack the workbench). Every worker must import the same ``workbench``.

    Example:
        >>> result = exp.run(executor=RayExecutor(workers=2))  # doctest: +SKIP
        >>> result.summary  # the same as exp.run()'s  # doctest: +SKIP
    """

    address: str | None = None
    workers: int | None = None
    shard_cases: int | None = None
    runtime_env: Mapping[str, Any] | None = None
    _hosts: list[Any] = field(default_factory=list, init=False, repr=False, compare=False)
    _slots: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("workers", "shard_cases"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"RayExecutor({name}=...) must be a whole number >= 1, got {value!r}")

    def connect(self) -> Any:
        """Ray, initialised (usage statistics off unless ``RAY_USAGE_STATS_ENABLED`` says otherwise)."""
        ray = import_ray()
        if not ray.is_initialized():
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # Ray would report usage over the network
            ray.init(
                address=self.address,
                include_dashboard=False,
                configure_logging=False,
                log_to_driver=False,
                runtime_env=dict(self.runtime_env) if self.runtime_env else None,
            )
        return ray

    def hosts(self, ray: Any, workers: int) -> list[Any]:
        """The worker actors, started on first use and kept for the next runs of this executor."""
        while len(self._hosts) < workers:
            actor = ray.remote(num_cpus=0, max_concurrency=4 * _IN_FLIGHT_PER_WORKER)(ShardHost)
            self._hosts.append(actor.remote())
        return self._hosts[:workers]

    def slots(self, ray: Any) -> Any:
        """The :class:`ClusterSlots` actor, started on first use and kept like the workers."""
        if self._slots is None:
            self._slots = ray.remote(num_cpus=0, max_concurrency=100_000)(ClusterSlots).remote()
        return self._slots

    def close(self) -> None:
        """Stop the worker processes now (they also stop when this executor is garbage-collected)."""
        if self._hosts or self._slots is not None:
            ray = import_ray()
            for actor in [*self._hosts, self._slots]:
                if actor is not None:
                    ray.kill(actor)
            self._hosts.clear()
            self._slots = None

    async def run(self, engine: Engine) -> None:
        """Make, score and emit every row of ``engine``'s plan on the cluster."""
        ray = self.connect()
        workers = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        hosts = self.hosts(ray, workers)
        experiment = engine.experiment
        slots = self.slots(ray)
        run = secrets.token_hex(8)
        # The dataset stays in the driver: cases travel with their calls.
        shipped = dataclasses.replace(experiment, dataset=experiment.dataset.head(1))
        setup = [ray.put((shipped, engine.calls.injected, ClusterLimits(slots, run)))]
        per_case = len(experiment.variants) * len(experiment.models) * experiment.repeats
        shard_calls = (self.shard_cases or 0) * per_case or min(
            _MAX_SHARD_CALLS, max(per_case, math.ceil(experiment.n_calls / (4 * workers)))
        )
        in_flight: dict[asyncio.Future[Any], tuple[int, float]] = {}
        free = [i for _ in range(_IN_FLIGHT_PER_WORKER) for i in range(workers)]

        async def collect_one() -> None:
            done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                worker, reserved = in_flight.pop(future)
                free.append(worker)
                engine.reserved_usd -= reserved
                self._take(engine, future.result())

        try:
            for shard in shards(plan(experiment), shard_calls):
                if engine.decided():
                    break
                reserved = engine.reserve(shard)
                if reserved is None:
                    break
                while not free:
                    await collect_one()
                worker = free.pop(0)
                ref = hosts[worker].run.remote(run, setup, shard, hits_of(engine, shard))
                in_flight[asyncio.wrap_future(ref.future())] = (worker, reserved)
            while in_flight:
                await collect_one()
        finally:
            for future in in_flight:
                future.cancel()
            await asyncio.gather(*(asyncio.wrap_future(host.finish.remote(run).future()) for host in hosts))
            slots.forget.remote(run)

    @staticmethod
    def _take(engine: Engine, result: ShardResult) -> None:
        """One shard's result into the driver: replies to the cache, spend to the counters, rows out."""
        calls = engine.calls
        if calls.cache is not None:
            for key, reply in result.replies.items():
                calls.cache.put(key, reply)
        calls.spent_usd += result.spent_usd
        calls.calls_made += result.calls_made
        for row in sorted(result.rows, key=lambda row: row[col.ORDER]):
            engine.emit(row)


def shards(calls: Iterator[Call], size: int) -> Iterator[list[Call]]:
    """The plan's calls in lists of about ``size`` (never splitting a case)."""
    batch: list[Call] = []
    for call in calls:
        if len(batch) >= size and call.case.id != batch[-1].case.id:
            yield batch
            batch = []
        batch.append(call)
    if batch:
        yield batch


def hits_of(engine: Engine, shard: list[Call]) -> Mapping[str, ModelReply]:
    """The cached replies of a shard's calls (what the worker need not call)."""
    return {call.key: hit for call in shard if (hit := engine.calls.cached(call.key)) is not None}
