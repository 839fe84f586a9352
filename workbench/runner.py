"""The async engine behind :meth:`Experiment.run`.

Order of work, so that mistakes cost nothing:

1. validate the dataset against the variants, the models (provider known,
   credentials present), the scorers against the expected values, and the
   budget against litellm's prices;
2. open the MLflow parent run;
3. walk the calls lazily (case by case, so memory stays flat): a cache hit is
   scored at once; a miss becomes a task, at most a window of them in flight,
   each bounded per model by an adaptive limiter and retried on transient
   errors. Every response is written to the cache as it arrives, which is
   what lets a killed run resume;
4. summarise, log, and close the run as FINISHED, or FAILED on any error.
"""

from __future__ import annotations

import asyncio
import gc
import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import litellm
from tqdm.auto import tqdm

from workbench._secrets import is_secret
from workbench.cache import CachedResponse, ResponseCache
from workbench.exceptions import BudgetExceededError
from workbench.planning import Call, cost_of, is_local, plan, render_prompt, validate
from workbench.providers.openai_compatible import TRANSPORT, OpenAICompatibleTransport
from workbench.result import ExperimentResult
from workbench.retry import AdaptiveLimiter, call_with_retries
from workbench.scorers.base import Score, ScoringContext, accepts_context, run_scorer
from workbench.spool import CaseSpool

if TYPE_CHECKING:
    from workbench.experiment import Experiment


def _redact_text(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


class Engine:
    """Runs the calls of one experiment and collects one row per call."""

    def __init__(
        self,
        experiment: Experiment,
        *,
        acompletion: Callable[..., Any] | None,
        cache: ResponseCache | None,
        read_cache: bool,
        budget_usd: float | None,
        progress: bool,
    ) -> None:
        self.experiment = experiment
        self.transport = OpenAICompatibleTransport() if experiment.settings.transport == TRANSPORT else None
        # An injected completion function (tests, benchmarks) serves every model.
        self.completions: dict[str, Callable[..., Any]] = {
            model: acompletion or (self.transport if self.transport and not is_local(model) else litellm.acompletion)
            for model in experiment.models
        }
        self.cache = cache
        self.read_cache = read_cache
        self.budget_usd = budget_usd
        self.progress = progress
        settings = experiment.settings
        self.limiters = {
            model: AdaptiveLimiter(settings.local_concurrency if is_local(model) else settings.max_concurrency)
            for model in experiment.models
        }
        self.input_names = sorted(set().union(*(v.variables() for v in experiment.variants)))
        self.secrets = sorted(
            {str(v) for variant in experiment.variants for k, v in variant.params.items() if is_secret(k) and v}
        )
        self.spool = CaseSpool()
        # Scorers that call models (LLM judges) share the run's completion function, cache,
        # retries and per-model limiters; their usage goes to judge.<name>.* columns.
        self.scoring = ScoringContext.from_settings(
            settings,
            acompletion=acompletion or litellm.acompletion,
            cache=cache,
            read_cache=read_cache,
            limiters=self.limiters,
        )
        self.judges = {s.name for s in experiment.scorers if accepts_context(s)}
        self.spent_usd = 0.0
        self.reserved_usd = 0.0
        self.calls_made = 0
        self.stopped: str | None = None

    # -- rows -----------------------------------------------------------------
    def _base_row(self, call: Call) -> dict[str, Any]:
        row: dict[str, Any] = {
            "_order": call.index,
            "case_id": call.case.id,
            "variant": call.variant.name,
            "variant_version": call.variant.version,
            "model": call.model,
            "repeat": call.repeat,
        }
        for name in self.input_names:
            row[f"input.{name}"] = call.case.inputs.get(name)
        for name, value in call.case.expectations.items():
            row[f"expected.{name}"] = value
        row["prompt"] = render_prompt(call.variant, call.messages)
        return row

    async def _finish_row(self, call: Call, row: dict[str, Any], response: CachedResponse | None) -> None:
        error = row.get("error")
        for scorer in self.experiment.scorers:
            value, reason = math.nan, "not scored: the call failed" if error else None
            score: Score | None = None
            if error is None and response is not None:
                try:
                    score = await run_scorer(
                        scorer,
                        inputs=call.case.inputs,
                        outputs=response.output,
                        expectations=call.case.expectations,
                        context=self.scoring if scorer.name in self.judges else None,  # judges: asked once
                    )
                    value, reason = score.value, score.reason
                except Exception as exc:  # a scorer crash on one output must not lose the run
                    reason = f"scorer error: {type(exc).__name__}: {exc}"
            row[f"score.{scorer.name}"] = value
            row[f"reason.{scorer.name}"] = reason
            if scorer.name in self.judges:
                self._judge_usage(row, scorer.name, score)
        self.spool.append(row)

    def _judge_usage(self, row: dict[str, Any], name: str, score: Score | None) -> None:
        """A judge's own tokens and cost, in its ``judge.<name>.*`` columns, never in the task's.

        Judge spend counts toward ``budget_usd`` (it is this run's spend) once it is made.
        """
        cost = math.nan if score is None or score.cost_usd is None else float(score.cost_usd)
        prefix = f"judge.{name}."
        row[prefix + "prompt_tokens"] = (score.prompt_tokens or 0) if score else 0
        row[prefix + "completion_tokens"] = (score.completion_tokens or 0) if score else 0
        row[prefix + "cost_usd"] = cost if score else 0.0
        row[prefix + "cached"] = bool(score.cached) if score else False
        row[prefix + "spread"] = math.nan if score is None or score.spread is None else float(score.spread)
        if score is not None and not score.cached and not math.isnan(cost):
            self.spent_usd += cost

    # -- calls ----------------------------------------------------------------
    def _price(self, call: Call) -> float:
        """Upper-bound cost of one call, for the budget check."""
        from workbench.estimate import call_cost_upper_bound

        return call_cost_upper_bound(call.model, call.messages, call.variant.params)

    async def _run_call(self, call: Call, reserved: float) -> None:
        settings = self.experiment.settings
        row = self._base_row(call)
        started = time.perf_counter()

        acompletion = self.completions[call.model]

        async def attempt() -> Any:
            return await acompletion(
                model=call.model,
                messages=call.messages,
                timeout=settings.timeout_s,
                num_retries=0,  # the runner retries itself, so it sees rate limits
                max_retries=0,
                **call.variant.params,
            )

        response: CachedResponse | None = None
        try:
            raw, attempts = await call_with_retries(attempt, limiter=self.limiters[call.model], policy=settings.retry)
            usage = getattr(raw, "usage", None)
            response = CachedResponse(
                output=raw.choices[0].message.content or "",
                prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
                cost_usd=cost_of(raw, call.model),
                latency_s=time.perf_counter() - started,
            )
            if self.cache is not None:
                self.cache.put(call.key, response)  # written now: a killed run resumes from here
            row.update(error=None, attempts=attempts)
        except Exception as exc:  # every provider error is recorded, never raised mid-run
            row.update(error=_redact_text(f"{type(exc).__name__}: {exc}", self.secrets), attempts=None)
        finally:
            self.reserved_usd -= reserved
        self.calls_made += 1
        if response is not None and not math.isnan(response.cost_usd or 0.0):
            self.spent_usd += response.cost_usd or 0.0
        self._fill(row, response, cached=False, latency=time.perf_counter() - started)
        await self._finish_row(call, row, response)

    @staticmethod
    def _fill(row: dict[str, Any], response: CachedResponse | None, *, cached: bool, latency: float) -> None:
        row["output"] = response.output if response else None
        row.setdefault("error", None)
        cost = response.cost_usd if response and response.cost_usd is not None else math.nan
        row.update(
            prompt_tokens=response.prompt_tokens if response else 0,
            completion_tokens=response.completion_tokens if response else 0,
            cost_usd=cost if response else 0.0,
            latency_s=response.latency_s if (response and cached) else latency,
            cached=cached,
        )

    async def _finish_hit(self, call: Call, hit: CachedResponse) -> None:
        row = self._base_row(call)
        row.update(error=None, attempts=0)
        self._fill(row, hit, cached=True, latency=0.0)
        await self._finish_row(call, row, hit)

    async def run(self) -> None:
        calls = plan(self.experiment)
        total = self.experiment.n_calls
        window = asyncio.Semaphore(2 * sum(limiter.max_limit for limiter in self.limiters.values()))
        pending: set[asyncio.Task[None]] = set()

        def done(task: asyncio.Task[None]) -> None:
            pending.discard(task)
            window.release()
            bar.update(1)

        with tqdm(total=total, desc=self.experiment.name, unit="call", disable=not self.progress) as bar:
            try:
                for call in calls:
                    hit = self.cache.get(call.key) if (self.cache is not None and self.read_cache) else None
                    if hit is not None and not self.judges:
                        await self._finish_hit(call, hit)
                        bar.update(1)
                        continue
                    if hit is not None:  # an LLM judge still has calls to make: score it concurrently
                        await window.acquire()
                        task = asyncio.ensure_future(self._finish_hit(call, hit))
                        pending.add(task)
                        task.add_done_callback(done)
                        continue
                    reserved = 0.0
                    if self.budget_usd is not None:
                        reserved = self._price(call)
                        if self.spent_usd + self.reserved_usd + reserved > self.budget_usd:
                            self.stopped = (
                                f"budget: the next call could bring the spend past budget_usd="
                                f"{self.budget_usd:g} (spent ${self.spent_usd:.4f}, "
                                f"${self.reserved_usd:.4f} in flight)"
                            )
                            break
                        self.reserved_usd += reserved
                    await window.acquire()
                    task = asyncio.ensure_future(self._run_call(call, reserved))
                    pending.add(task)
                    task.add_done_callback(done)
                if pending:
                    await asyncio.gather(*list(pending))
            except BaseException:
                for task in pending:
                    task.cancel()
                raise
            finally:
                if self.transport is not None:
                    await self.transport.aclose()


def _try_compare(result: ExperimentResult, model: str) -> Any:
    try:
        return result.compare(model=model)
    except ValueError:  # e.g. nothing paired: the verdict falls back to a ranking
        return None


async def execute(
    experiment: Experiment,
    *,
    log_to_mlflow: bool,
    tracking_uri: str | None,
    progress: bool,
    acompletion: Callable[..., Any] | None,
    cache: ResponseCache | None,
    read_cache: bool,
    budget_usd: float | None,
) -> ExperimentResult:
    """Validate, run, score, summarise and log one experiment."""
    validate(experiment)  # raises before any call or MLflow run
    if budget_usd is not None:
        from workbench.estimate import check_prices_known

        check_prices_known(experiment)
    engine = Engine(
        experiment,
        acompletion=acompletion,
        cache=cache,
        read_cache=read_cache,
        budget_usd=budget_usd,
        progress=progress,
    )
    tracker = None
    if log_to_mlflow:
        from workbench.tracking import MlflowTracker

        tracker = MlflowTracker(tracking_uri=tracking_uri)
        tracker.start(experiment)
    # Everything alive now (litellm, pandas, MLflow, the user's objects: about 600,000
    # objects) outlives the run. Freezing it keeps the cyclic GC from walking it: one
    # full collection of it stalls every call in flight for about 0.5 s. unfreeze()
    # hands it all back to the collector at the end, so nothing is kept for good.
    gc.freeze()
    try:
        started = time.perf_counter()
        await engine.run()
        cases = engine.spool.to_frame()
        result = ExperimentResult.from_cases(cases, experiment=experiment)
        result.timings["calls_s"] = time.perf_counter() - started
        result.calls_made = engine.calls_made
        if engine.stopped:
            result.notes.append(f"stopped early by the {engine.stopped}; completed calls are cached")
        if tracker is not None:
            logged = time.perf_counter()
            compared = bool(len(experiment.variants) > 1 and experiment.scorers and not engine.stopped)
            first = _try_compare(result, experiment.models[0]) if compared else None
            verdict = result.verdict(comparison=first)  # the same comparison: computed once
            done = 0
            if first is not None:
                # Logged and let go before the per-case tables: at 100k cases it holds tens of MB.
                tracker.log_comparison(first)
                first, done = None, 1
            tracker.log_result(result, verdict=verdict)
            if compared:
                for model in experiment.models[done:]:  # one that cannot be made fails here, runs logged
                    tracker.log_comparison(result.compare(model=model))
            result.run_id, result.tracking_uri = tracker.parent_run_id, tracker.tracking_uri
            result.timings["mlflow_s"] = time.perf_counter() - logged
        if engine.stopped:
            raise BudgetExceededError(engine.stopped, result=result)
        if tracker is not None:
            tracker.finish("FINISHED")
        return result
    except BaseException:
        if tracker is not None:
            tracker.finish("FAILED")
        raise
    finally:
        gc.unfreeze()
