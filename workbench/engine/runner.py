"""The execution engine: run every planned call concurrently, score it, stream rows, tell observers.

What happens when an experiment runs:

1. :func:`~workbench.engine.planning.validate` checks everything before any
   call (and before any observer hears of the run);
2. observers get ``run_started``; the plan is walked case by case: a cached
   call is answered at once, others go through the :class:`~workbench.engine.calls.CallPath`
   (retries, per-model limits, the budget); each finished row is scored, streamed
   to the run's Parquet file (:class:`~workbench.engine.spool.CaseSpool`) and handed
   to observers (``case_done``) and to the :class:`StopRule`'s monitor, if any:
   once it has decided, no new call starts and the calls in flight finish;
3. the file is closed and the summary is read from it (only the columns it needs);
   a run stopped by its budget, or whose calls failed more than ``max_error_rate``
   allows, fails with its partial result; observers get ``run_finished`` or ``run_failed``.

The engine imports no tracking, progress or redaction code: those are observers.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import pyarrow.compute as pc

from workbench.core import schema as col
from workbench.core.chunks import chunks_to_json
from workbench.core.exceptions import BudgetExceededError, RunError, TooManyErrorsError
from workbench.core.outputs import ModelReply, tool_calls_to_json
from workbench.core.redaction import REDACTOR
from workbench.core.result import EarlyStop, RunResult
from workbench.core.runstore import CASES_FILE, CasesFile, new_run_dir
from workbench.core.spec import ExperimentSpec
from workbench.engine.calls import CallPath
from workbench.engine.estimate import call_cost_upper_bound, check_prices_known, priced_as
from workbench.engine.observers import Observers, RunObserver, RunStart
from workbench.engine.planning import Call, plan, render_prompt, validate
from workbench.engine.spool import CaseSpool
from workbench.engine.summary import notes_for, summarize, summary_columns
from workbench.engine.tool_loop import complete_call, planned_steps
from workbench.scorers.base import Score, accepts_context, run_scorer
from workbench.scorers.context import ScoringContext
from workbench.util.memory import release_unused


class StopMonitor(Protocol):
    """Watches one run's finished rows and decides when the rest of the plan need not run."""

    @property
    def decided(self) -> bool:
        """True once no new call should start."""
        ...

    def row_done(self, row: Mapping[str, Any]) -> None:
        """One finished, scored row (not redacted: it stays in the process)."""
        ...

    def outcome(self, *, calls_planned: int, calls_run: int) -> EarlyStop:
        """What was decided, once the run is over."""
        ...


class StopRule(Protocol):
    """Stops a run early (e.g. :class:`workbench.analysis.sequential.Sequential`): makes a run's monitor."""

    def monitor(self, experiment: ExperimentSpec) -> StopMonitor:
        """A fresh monitor for one run; raises before any call when the rule cannot apply."""
        ...


class Engine:
    """Runs the calls of one experiment and collects one row per call."""

    def __init__(
        self,
        experiment: ExperimentSpec,
        *,
        calls: CallPath,
        observer: RunObserver,
        budget_usd: float | None = None,
        monitor: StopMonitor | None = None,
    ) -> None:
        self.experiment = experiment
        self.monitor = monitor
        self.calls = calls
        self.observer = observer
        self.budget_usd = budget_usd
        routers = {m: experiment.routers[m] for m in experiment.models if m in experiment.routers}
        calls.use_routers(routers)
        self.routed = bool(routers)  # only then is there a deployment column
        for model in experiment.models:
            calls.limiter(model)  # the task's models first: the window below is sized from them
        self.input_names = sorted(set().union(*(v.variables() for v in experiment.variants)))
        # Scorers that call models (LLM judges) or read tool calls get the whole context.
        self.contextual = {s.name for s in experiment.scorers if accepts_context(s)}
        self.judges = {s.name for s in experiment.scorers if getattr(s, "calls_models", False)}
        types = experiment.dataset.arrow_types()
        self.retrieves = any(v.retrieval is not None for v in experiment.variants)
        schema = col.table_schema(
            inputs={name: types[name] for name in self.input_names},
            expected={name: types[name] for name in experiment.dataset.expected},
            scorers=experiment.scorer_names,
            judges=self.judges,
            retrieved=self.retrieves,
            routed=self.routed,
        )
        about = {
            "experiment": experiment.name,
            "variants": {v.name: v.version for v in experiment.variants},
            "models": list(experiment.models),
            **({"routers": {n: g.to_spec() for n, g in routers.items()}} if routers else {}),
            "scorers": experiment.scorer_names,
            "repeats": experiment.repeats,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self.spool = CaseSpool(new_run_dir(experiment.name) / CASES_FILE, schema, about=about)
        self.reserved_usd = 0.0
        self.stopped: str | None = None

    # -- rows -----------------------------------------------------------------
    def _base_row(self, call: Call) -> dict[str, Any]:
        row: dict[str, Any] = {
            col.ORDER: call.index,
            col.CASE_ID: call.case.id,
            col.VARIANT: call.variant.name,
            col.VARIANT_VERSION: call.variant.version,
            col.MODEL: call.model,
            col.REPEAT: call.repeat,
        }
        for name in self.input_names:
            row[col.input_column(name)] = call.case.inputs.get(name)
        for name, value in call.case.expectations.items():
            row[col.expected_column(name)] = value
        row[col.PROMPT] = render_prompt(call.messages, few_shot=len(call.variant.examples))
        if self.retrieves:
            row[col.RETRIEVED] = chunks_to_json(call.retrieved)
        if self.routed:
            row[col.DEPLOYMENT] = None  # filled by _fill from the reply
        return row

    def _context(self, call: Call, reply: ModelReply) -> ScoringContext:
        return ScoringContext(
            inputs=call.case.inputs,
            output=reply.output,
            expectations=call.case.expectations,
            metadata={
                col.CASE_ID: call.case.id,
                col.VARIANT: call.variant.name,
                col.VARIANT_VERSION: call.variant.version,
                col.MODEL: call.model,
                col.REPEAT: call.repeat,
            },
            tool_calls=reply.tool_calls,
            retrieved=call.retrieved,
            finish_reason=reply.finish_reason,
            message=reply.message,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            latency_s=reply.latency_s,
            models=self.calls,
        )

    async def _finish_row(self, call: Call, row: dict[str, Any], reply: ModelReply | None) -> None:
        error = row.get(col.ERROR)
        context = self._context(call, reply) if reply is not None and error is None else None
        for scorer in self.experiment.scorers:
            value, reason = math.nan, "not scored: the call failed" if error else None
            score: Score | None = None
            if context is not None:
                try:
                    score = await run_scorer(scorer, context, wants_context=scorer.name in self.contextual)
                    value, reason = score.value, score.reason
                except Exception as exc:  # a scorer crash on one output must not lose the run
                    reason = REDACTOR.text(f"scorer error: {type(exc).__name__}: {exc}")
            row[col.score_column(scorer.name)] = value
            row[col.reason_column(scorer.name)] = reason
            if scorer.name in self.judges:
                _judge_usage(row, scorer.name, score)
        self.spool.append(row)
        if self.monitor is not None:
            self.monitor.row_done(row)
        self.observer.case_done(row)

    # -- calls ----------------------------------------------------------------
    async def _run_call(self, call: Call, reserved: float) -> None:
        row = self._base_row(call)
        started = time.perf_counter()
        reply: ModelReply | None = None
        try:
            answer = await complete_call(self.calls, call)  # one call, or a multi-step tool case
            reply = answer.reply
            row.update({col.ERROR: None, col.ATTEMPTS: answer.attempts})
        except Exception as exc:  # every provider error is recorded, never raised mid-run
            row.update({col.ERROR: REDACTOR.text(f"{type(exc).__name__}: {exc}"), col.ATTEMPTS: None})
        finally:
            self.reserved_usd -= reserved
        _fill(row, reply, cached=False, latency=time.perf_counter() - started)
        await self._finish_row(call, row, reply)

    async def _finish_hit(self, call: Call, hit: ModelReply) -> None:
        row = self._base_row(call)
        row.update({col.ERROR: None, col.ATTEMPTS: 0})
        _fill(row, hit, cached=True, latency=0.0)
        await self._finish_row(call, row, hit)

    def _over_budget(self, call: Call) -> float | None:
        """The call's reserved upper-bound cost, or None when it could pass the budget (run stops)."""
        if self.budget_usd is None:
            return 0.0
        priced = priced_as(self.experiment, call.model)
        reserved = call_cost_upper_bound(call.model, call.messages, call.variant.params, priced=priced)
        reserved *= planned_steps(call)
        spent = self.calls.spent_usd
        if spent + self.reserved_usd + reserved > self.budget_usd:
            self.stopped = (
                f"budget: the next call could bring the spend past budget_usd={self.budget_usd:g} "
                f"(spent ${spent:.4f}, ${self.reserved_usd:.4f} in flight)"
            )
            return None
        self.reserved_usd += reserved
        return reserved

    async def run(self) -> None:
        """Walk the plan: hits are answered at once, misses run concurrently within a bounded window."""
        window = asyncio.Semaphore(2 * sum(limiter.max_limit for limiter in self.calls.limiters.values()))
        pending: set[asyncio.Task[None]] = set()

        def done(task: asyncio.Task[None]) -> None:
            pending.discard(task)
            window.release()

        def start(coro: Any) -> None:
            task = asyncio.ensure_future(coro)
            pending.add(task)
            task.add_done_callback(done)

        try:
            for call in plan(self.experiment):
                if self._decided():
                    break
                hit = self.calls.cached(call.key)
                if hit is not None and not self.judges:
                    await self._finish_hit(call, hit)
                    continue
                if hit is not None:  # an LLM judge still has calls to make: score it concurrently
                    await window.acquire()
                    if self._decided():  # decided while this call waited for the window
                        window.release()
                        break
                    start(self._finish_hit(call, hit))
                    continue
                reserved = self._over_budget(call)
                if reserved is None:
                    break
                await window.acquire()
                if self._decided():
                    window.release()
                    self.reserved_usd -= reserved
                    break
                start(self._run_call(call, reserved))
            if pending:
                await asyncio.gather(*list(pending))
        except BaseException:
            for task in pending:
                task.cancel()
            raise

    def _decided(self) -> bool:
        return self.monitor is not None and self.monitor.decided


def _fill(row: dict[str, Any], reply: ModelReply | None, *, cached: bool, latency: float) -> None:
    """The reply's columns of a row (empty ones for a failed call)."""
    row[col.OUTPUT] = reply.output if reply else None
    row[col.TOOL_CALLS] = tool_calls_to_json(reply.tool_calls) if reply else None
    row[col.FINISH_REASON] = reply.finish_reason if reply else None
    row[col.MESSAGE] = _message_json(reply)
    if col.DEPLOYMENT in row:  # a run with a router group
        row[col.DEPLOYMENT] = reply.deployment if reply else None
    row.setdefault(col.ERROR, None)
    cost = reply.cost_usd if reply and reply.cost_usd is not None else math.nan
    row.update(
        {
            col.PROMPT_TOKENS: reply.prompt_tokens if reply else 0,
            col.COMPLETION_TOKENS: reply.completion_tokens if reply else 0,
            col.COST_USD: cost if reply else 0.0,
            col.LATENCY_S: reply.latency_s if (reply and cached) else latency,
            col.CACHED: cached,
        }
    )


def _message_json(reply: ModelReply | None) -> str | None:
    if reply is None or reply.message is None:
        return None
    return json.dumps(reply.message, ensure_ascii=False, sort_keys=True, default=str)


def _judge_usage(row: dict[str, Any], name: str, score: Score | None) -> None:
    """A judge's own tokens and cost, in its ``judge.<name>.*`` columns, never in the task's."""
    cost = math.nan if score is None or score.cost_usd is None else float(score.cost_usd)
    row[col.judge_column(name, "prompt_tokens")] = (score.prompt_tokens or 0) if score else 0
    row[col.judge_column(name, "completion_tokens")] = (score.completion_tokens or 0) if score else 0
    row[col.judge_column(name, "cost_usd")] = cost if score else 0.0
    row[col.judge_column(name, "cached")] = bool(score.cached) if score else False
    row[col.judge_column(name, "spread")] = math.nan if score is None or score.spread is None else float(score.spread)


async def execute(
    experiment: ExperimentSpec,
    *,
    calls: CallPath,
    observers: list[RunObserver],
    budget_usd: float | None = None,
    result_class: Callable[..., RunResult] = RunResult,
    stop_early: StopRule | None = None,
) -> RunResult:
    """Validate, run, score and summarise one experiment, telling ``observers`` as it goes.

    Args:
        experiment: What to run.
        calls: The run's call path (cache, retries, limits, cost).
        observers: Told of the run's start, every row, and its end.
        budget_usd: Stop before a call could bring the spend past this.
        result_class: The result type to build (:class:`RunResult` or a subclass).
        stop_early: Stop starting calls once its monitor has decided (sequential
            testing); what it decided is ``result.early_stop``.

    Raises:
        BudgetExceededError: the budget stopped the run (partial result on ``.result``).
        TooManyErrorsError: more calls failed than ``settings.max_error_rate`` allows.
    """
    validate(experiment)  # raises before any call, and before any observer opens a run
    if budget_usd is not None:
        check_prices_known(experiment)
    monitor = stop_early.monitor(experiment) if stop_early is not None else None  # raises before any call
    for variant in experiment.variants:
        REDACTOR.learn(variant.params)
    observer = Observers(observers)
    engine = Engine(experiment, calls=calls, observer=observer, budget_usd=budget_usd, monitor=monitor)
    observer.run_started(RunStart(experiment, experiment.n_calls, engine.spool.path))
    result: RunResult | None = None
    # Everything alive now (litellm, pandas, MLflow, the user's objects: about 600,000
    # objects) outlives the run. Freezing it keeps the cyclic GC from walking it: one
    # full collection of it stalls every call in flight for about 0.5 s. unfreeze()
    # hands it all back to the collector at the end, so nothing is kept for good.
    gc.freeze()
    try:
        started = time.perf_counter()
        try:
            await engine.run()
        except BaseException:
            engine.spool.abort()
            raise
        finally:
            await calls.aclose()
        cases = CasesFile(engine.spool.close())
        summary = summarize(
            cases.batches(summary_columns(experiment.scorers, cases.columns)),  # a frame at a time
            experiment.scorers,
            success=experiment.success,
        )
        release_unused()
        early = monitor.outcome(calls_planned=experiment.n_calls, calls_run=cases.num_rows) if monitor else None
        result = result_class(
            experiment.name,
            cases,
            summary,
            experiment,
            notes=notes_for(summary, early_stop=early),
            calls_made=calls.calls_made,
            early_stop=early,
        )
        result.timings["calls_s"] = time.perf_counter() - started
        failure = _failure(engine, result)
        if failure is not None:
            raise failure
        observer.run_finished(result)
        return result
    except BaseException as exc:  # MLflow runs end FAILED, never RUNNING; the error goes on
        observer.run_failed(exc, result)
        raise
    finally:
        gc.unfreeze()


def _failure(engine: Engine, result: RunResult) -> RunError | None:
    """Why a completed walk of the plan still fails the run: the budget, or too many errors."""
    if engine.stopped:
        result.notes.append(f"stopped early by the {engine.stopped}; completed calls are cached")
        return BudgetExceededError(engine.stopped, result=result)
    errors, calls = int(result.summary["errors"].sum()), result.n_rows
    settings = engine.experiment.settings
    if settings.too_many_errors(errors, calls):
        first = next(result.iter_cases([col.ERROR], where=pc.field(col.ERROR).is_valid()))[col.ERROR].iloc[0]
        return TooManyErrorsError(
            f"{errors} of {calls} calls failed (error rate {errors / calls:.0%}, max_error_rate "
            f"{settings.max_error_rate:g}); the first error: {first}. The run is marked FAILED; "
            "the partial result is on this exception's `.result`",
            result=result,
        )
    return None
