"""One result row per call: its inputs, the model's reply, and every scorer's verdict.

:class:`RowMaker` is the part of the engine that turns a planned
:class:`~workbench.engine.planning.Call` into a row of the results table. It has no
file, observer or budget of its own, so the same code makes the rows of a
single-process run (:mod:`workbench.engine.runner`) and of a shard run on a Ray worker
(:mod:`workbench.engine.shard`): both give the same rows.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pyarrow as pa

from workbench.core import schema as col
from workbench.core.chunks import chunks_to_json
from workbench.core.outputs import ModelReply, tool_calls_to_json
from workbench.core.redaction import REDACTOR
from workbench.core.spec import ExperimentSpec
from workbench.engine.calls import CallPath
from workbench.engine.planning import Call, render_prompt
from workbench.engine.tool_loop import complete_call
from workbench.scorers.base import Score, accepts_context, run_scorer
from workbench.scorers.context import ScoringContext


class RowMaker:
    """Makes, scores and fills the rows of one experiment's calls.

    Args:
        experiment: The variants, scorers and dataset columns the rows follow.
        calls: The call path the task's calls and the judges' calls go through.
    """

    def __init__(self, experiment: ExperimentSpec, *, calls: CallPath) -> None:
        self.experiment = experiment
        self.calls = calls
        self.input_names = sorted(set().union(*(v.variables() for v in experiment.variants)))
        # Scorers that call models (LLM judges) or read tool calls get the whole context.
        self.contextual = {s.name for s in experiment.scorers if accepts_context(s)}
        self.judges = {s.name for s in experiment.scorers if getattr(s, "calls_models", False)}
        self.retrieves = any(v.retrieval is not None for v in experiment.variants)
        #: The run's router groups (a model that is a litellm Router group): called through them.
        self.routers = {m: experiment.routers[m] for m in experiment.models if m in experiment.routers}
        calls.use_routers(self.routers)
        self.routed = bool(self.routers)  # only then is there a deployment column

    def schema(self) -> pa.Schema:
        """Every column of the results table and its type."""
        experiment = self.experiment
        types = experiment.dataset.arrow_types()
        return col.table_schema(
            inputs={name: types[name] for name in self.input_names},
            expected={name: types[name] for name in experiment.dataset.expected},
            scorers=experiment.scorer_names,
            judges=self.judges,
            retrieved=self.retrieves,
            routed=self.routed,
        )

    def base_row(self, call: Call) -> dict[str, Any]:
        """The columns known before the call: order, ids, inputs, expected values, prompt."""
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
            row[col.DEPLOYMENT] = None  # filled by fill() from the reply
        return row

    async def called(self, call: Call) -> tuple[dict[str, Any], ModelReply | None]:
        """Make the call (or the steps of a tool case); a provider error is recorded in the row."""
        row = self.base_row(call)
        started = time.perf_counter()
        reply: ModelReply | None = None
        try:
            answer = await complete_call(self.calls, call)  # one call, or a multi-step tool case
            reply = answer.reply
            row.update({col.ERROR: None, col.ATTEMPTS: answer.attempts})
        except Exception as exc:  # every provider error is recorded, never raised mid-run
            row.update({col.ERROR: REDACTOR.text(f"{type(exc).__name__}: {exc}"), col.ATTEMPTS: None})
        fill(row, reply, cached=False, latency=time.perf_counter() - started)
        return row, reply

    def from_hit(self, call: Call, hit: ModelReply) -> dict[str, Any]:
        """The row of a call answered from the cache (not yet scored)."""
        row = self.base_row(call)
        row.update({col.ERROR: None, col.ATTEMPTS: 0})
        fill(row, hit, cached=True, latency=0.0)
        return row

    async def score(self, call: Call, row: dict[str, Any], reply: ModelReply | None) -> dict[str, Any]:
        """Run every scorer on the row's reply; a scorer's crash is its reason, never the run's end."""
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


def fill(row: dict[str, Any], reply: ModelReply | None, *, cached: bool, latency: float) -> None:
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
