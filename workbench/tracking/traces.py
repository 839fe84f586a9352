"""Every call of a run as an MLflow trace, its scores as assessments on it.

One trace per case x variant x model x repeat, in the run's experiment and linked to
the variant's child run, so the experiment's **Traces** tab lists the exchanges and a
stakeholder can open the one behind a bad score. A trace holds a root span (the case:
its inputs and output), a ``CHAT_MODEL`` span for the task call (tokens, cost, model,
latency, cache hit) and an ``LLM`` span per LLM-judge scorer (the judge's own tokens
and cost, its score and reason). Every scorer's score is an assessment (``Feedback``)
on the trace: source ``CODE`` for code scorers, ``LLM_JUDGE`` for judges, the scorer's
reason as the rationale, which is what MLflow's evaluation views read.

Everything in a trace went through the redaction chain first (:data:`REDACTOR`, one
batch of rows at a time, as the run's tables do): credentials and PII never reach it.

**Cost.** :class:`TraceWriter` receives each row as it completes and hands chunks of
:data:`CHUNK` rows to a background thread, which redacts them and turns them into call
records; :mod:`workbench.tracking.trace_store` stores those. MLflow's ``log_spans`` is
~5 ms of CPU per trace on a SQL store and holds the GIL, so a run of :data:`PROCESS_FROM`
calls or more writes from a **process of its own** (started with the run, ~3 s to import
MLflow, on the other core) and a smaller run from the thread. On the 2,000-call benchmark
(``benchmarks/bench_engine.py --traces``) the process brought the overhead from +14-29 %
(thread) to the figures in the README. What is left is flushed when the run finishes. The
engine does not time the judge's calls separately: a judge span sits at the end of the
task call, with no duration.

**Off switch.** ``RunSettings(traces=False)`` (YAML ``settings: {traces: false}``) or
``MlflowObserver(traces=False)``.

Review labels become HUMAN assessments on these traces: :mod:`workbench.tracking.human_feedback`.

Example:
    >>> result = exp.run(tracking_uri=uri)  # doctest: +SKIP  (traces on: the default)
    >>> where = f"tags.`{CALL_TAG}` LIKE '{result.run_id}|%'"  # doctest: +SKIP
    >>> MlflowClient(uri).search_traces(locations=[experiment_id], filter_string=where)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import queue
import threading
import time
import uuid
import warnings
from collections.abc import Mapping
from typing import Any

import pandas as pd
from mlflow import MlflowClient
from mlflow.tracing.client import TracingClient
from mlflow.tracing.constant import SpanAttributeKey, TraceTagKey
from mlflow.tracing.utils import encode_trace_id

from workbench.core import schema as col
from workbench.core.redaction import REDACTOR
from workbench.core.spec import ExperimentSpec
from workbench.tracking import trace_store

#: Rows handed to the background thread at a time (redacted as one frame).
CHUNK = 50
#: A run that will trace this many calls or more writes them from a process of its own.
PROCESS_FROM = 500
#: Calls traced per run at most: past this, a run's calls are not traced (and its note says so).
#: Writing a trace costs MLflow's SQL store ~5 ms of CPU (see the README's figures): 2,000 traces
#: keep the writer busy for ten seconds, 100,000 would for most of ten minutes.
MAX_TRACES = 2_000
#: MLflow links at most this many traces to a run per request.
LINK_BATCH = 100
#: The trace tag that says which call a trace is: ``<parent run id>|<variant>|<model>|<repeat>|<case id>``.
#: One tag (each tag costs the store a write per trace); search it in the Traces tab with
#: ``tags.`workbench.call` LIKE '<run id>|%'``. The trace's name is ``<variant> · <case id>``.
CALL_TAG = "workbench.call"
_ROOT, _CALL = 1, 2  # span ids of the root and task-call spans; judges follow


class TraceWriter:
    """Writes a run's rows as traces and their scores as assessments, in batches, off the run's thread.

    Args:
        tracking_uri: The store.
        experiment_id: The run's experiment.
        parent_run_id: The parent run (a tag on every trace: what review labels look traces up by).
        experiment: The run's definition (which scorers are judges).
        limit: Trace at most this many calls (the first ones to complete); :data:`MAX_TRACES` by default.
        planned: The calls the run will make; from :data:`PROCESS_FROM` traced calls on, a
            process of its own writes them (None: the thread does).
    """

    def __init__(
        self,
        tracking_uri: str,
        experiment_id: str,
        parent_run_id: str,
        experiment: ExperimentSpec,
        *,
        limit: int | None = None,
        planned: int | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.judges = sorted(s.name for s in experiment.scorers if getattr(s, "calls_models", False))
        self.scorers = [s.name for s in experiment.scorers]
        #: Trace ids by (variant, model), once flushed: what :meth:`link` links to each child run.
        self.trace_ids: dict[tuple[str, str], list[str]] = {}
        self.errors: list[str] = []
        self.written = 0
        self.limit = MAX_TRACES if limit is None else limit
        self.queued = 0
        #: Calls past ``limit``, not traced.
        self.skipped = 0
        self._calls: dict[str, tuple[str, str]] = {}  # trace id -> (variant, model)
        self._pending: list[dict[str, Any]] = []
        self._queue: queue.Queue[list[dict[str, Any]] | None] = queue.Queue()
        #: The writer process, for a run of :data:`PROCESS_FROM` traced calls or more.
        self.process: trace_store.WriterProcess | None = None
        if planned is not None and min(planned, self.limit) >= PROCESS_FROM:
            try:
                self.process = trace_store.WriterProcess(tracking_uri, experiment_id)
            except OSError as exc:  # no interpreter to start (an embedded Python): the thread writes
                warnings.warn(f"traces are written from a thread: {exc}", RuntimeWarning, stacklevel=2)
        self._thread = threading.Thread(target=self._work, name="workbench-traces", daemon=True)
        self._thread.start()

    # -- the run's thread -------------------------------------------------------------------
    def add(self, row: Mapping[str, Any]) -> None:
        """Queue one completed row (cheap: the row is copied with the time it ended)."""
        if self.queued >= self.limit:
            self.skipped += 1
            return
        self.queued += 1
        self._pending.append({**row, "_ended_ns": time.time_ns()})
        if len(self._pending) >= CHUNK:
            self._queue.put(self._pending)
            self._pending = []

    def flush(self) -> None:
        """Write what is still queued and wait until every trace is stored."""
        if self._thread.is_alive():
            if self._pending:
                self._queue.put(self._pending)
                self._pending = []
            self._queue.put(None)
            self._thread.join()
        if self.errors:
            message, self.errors = "; ".join(self.errors[:3]), []
            warnings.warn(f"some traces were not written to MLflow: {message}", RuntimeWarning, stacklevel=2)

    def link(self, run_id: str, variant: str, model: str) -> None:
        """Link the traces of one variant x model to its child run (after :meth:`flush`)."""
        ids = self.trace_ids.get((variant, model), [])
        client = MlflowClient(self.tracking_uri)
        for i in range(0, len(ids), LINK_BATCH):
            client.link_traces_to_run(ids[i : i + LINK_BATCH], run_id)

    # -- the background thread --------------------------------------------------------------
    def _work(self) -> None:
        client = None if self.process else TracingClient(self.tracking_uri)
        written: list[str] = []
        while (rows := self._queue.get()) is not None:
            try:
                records = self._records(rows)
                if self.process:
                    self.process.send(records)
                else:
                    written += trace_store.write(client, self.experiment_id, records, self.errors)  # type: ignore[arg-type]
            except Exception as exc:  # traces are a view of the run: never fail the run over them
                self.errors.append(f"{type(exc).__name__}: {exc}")
        if self.process:
            try:
                reply = self.process.finish()
                written, self.errors = reply["written"], self.errors + reply["errors"]
            except Exception as exc:
                self.errors.append(f"the trace writer process did not reply: {type(exc).__name__}: {exc}")
        for trace_id in written:
            self.trace_ids.setdefault(self._calls[trace_id], []).append(trace_id)
        self.written = len(written)

    def _records(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Redacted call records (see :mod:`~workbench.tracking.trace_store`) of a chunk of rows."""
        ended = [r.pop("_ended_ns") for r in rows]
        frame = REDACTOR.frame(pd.DataFrame(rows))  # the run tables' redaction path, a chunk at a time
        records = []
        for row, end_ns in zip(frame.to_dict("records"), ended, strict=True):
            trace_id = "tr-" + encode_trace_id(uuid.uuid4().int)
            self._calls[trace_id] = (str(row[col.VARIANT]), str(row[col.MODEL]))
            records.append({"trace_id": trace_id, "spans": self._spans(row, end_ns), "feedback": self._feedback(row)})
        return records

    def _spans(self, row: Mapping[str, Any], end_ns: int) -> list[dict[str, Any]]:
        latency = _number(row.get(col.LATENCY_S)) or 0.0
        start_ns = end_ns - int(latency * 1e9)
        inputs = {k.removeprefix(col.INPUT): _plain(v) for k, v in row.items() if k.startswith(col.INPUT)}
        output = _plain(row.get(col.OUTPUT))
        tool_calls = _json(row.get(col.TOOL_CALLS))
        outputs = {"output": output, "tool_calls": tool_calls} if tool_calls else output
        error = _plain(row.get(col.ERROR))
        case_id, variant, model = str(row[col.CASE_ID]), str(row[col.VARIANT]), str(row[col.MODEL])
        usage = _usage(row.get(col.PROMPT_TOKENS), row.get(col.COMPLETION_TOKENS))
        cost = _number(row.get(col.COST_USD))
        about = {
            "workbench.case_id": case_id,
            "workbench.variant": variant,
            "workbench.variant_version": _plain(row.get(col.VARIANT_VERSION)),
            "workbench.repeat": _plain(row.get(col.REPEAT)),
            "workbench.latency_s": latency,
            "workbench.cached": bool(row.get(col.CACHED)),
            "workbench.cost_usd": cost,
            "workbench.finish_reason": _plain(row.get(col.FINISH_REASON)),
        }
        repeat = int(_plain(row.get(col.REPEAT)) or 0)
        tags = {
            TraceTagKey.TRACE_NAME: f"{variant} · {case_id}",
            CALL_TAG: call_key(self.parent_run_id, variant=variant, model=model, repeat=repeat, case_id=case_id),
        }
        root = {
            SpanAttributeKey.SPAN_TYPE: "CHAIN",
            SpanAttributeKey.INPUTS: {"prompt": _plain(row.get(col.PROMPT)), "inputs": inputs},
            SpanAttributeKey.OUTPUTS: outputs,
            # the call's details live on the call span only: each attribute costs the writer a JSON round trip
            **{f"{SpanAttributeKey.TRACE_TAG_PREFIX}{k}": v for k, v in tags.items()},
        }
        call = {
            SpanAttributeKey.SPAN_TYPE: "CHAT_MODEL",
            SpanAttributeKey.INPUTS: {"prompt": _plain(row.get(col.PROMPT))},
            SpanAttributeKey.OUTPUTS: outputs,
            SpanAttributeKey.MODEL: model,
            **({SpanAttributeKey.CHAT_USAGE: usage} if usage else {}),
            **({SpanAttributeKey.LLM_COST: {"total_cost": cost}} if cost is not None else {}),
            **about,
        }
        spans = [
            _span(_ROOT, None, f"{variant} · {case_id}", start_ns, end_ns, root, error),
            _span(_CALL, _ROOT, model, start_ns, end_ns, call, error),
        ]
        for n, name in enumerate(self.judges, start=_CALL + 1):
            prefix = f"{col.JUDGE}{name}."
            judge_usage = _usage(row.get(prefix + "prompt_tokens"), row.get(prefix + "completion_tokens"))
            judge_cost = _number(row.get(prefix + "cost_usd"))
            attributes = {
                SpanAttributeKey.SPAN_TYPE: "LLM",
                SpanAttributeKey.INPUTS: {"output": output},
                SpanAttributeKey.OUTPUTS: {
                    "score": _number(row.get(col.SCORE + name)),
                    "reason": _plain(row.get(col.REASON + name)),
                },
                **({SpanAttributeKey.CHAT_USAGE: judge_usage} if judge_usage else {}),
                **({SpanAttributeKey.LLM_COST: {"total_cost": judge_cost}} if judge_cost is not None else {}),
                "workbench.cached": bool(row.get(prefix + "cached")),
            }
            spans.append(_span(n, _ROOT, f"judge {name}", end_ns, end_ns, attributes, None))
        return spans

    def _feedback(self, row: Mapping[str, Any]) -> list[dict[str, Any]]:
        found = []
        for name in self.scorers:
            value = _number(row.get(col.SCORE + name))
            if value is None:
                continue
            judge = name in self.judges
            reason = _plain(row.get(col.REASON + name))
            found.append(
                {
                    "name": name,
                    "value": value,
                    "judge": judge,
                    "rationale": str(reason) if reason else None,
                    "span": _CALL + 1 + self.judges.index(name) if judge else None,
                    "metadata": {"case_id": str(row[col.CASE_ID]), "variant": str(row[col.VARIANT])},
                }
            )
        return found


def call_key(parent_run_id: str, *, variant: str, model: str, repeat: int, case_id: str) -> str:
    """The :data:`CALL_TAG` value of one call (the case id last: it may hold any character)."""
    return f"{parent_run_id}|{variant}|{model}|{repeat}|{case_id}"


def parse_call_key(value: str) -> dict[str, Any]:
    """``case_id``, ``variant``, ``model`` and ``repeat`` of a :data:`CALL_TAG` value."""
    _, variant, model, repeat, case_id = value.split("|", 4)
    return {"case_id": case_id, "variant": variant, "model": model, "repeat": int(repeat)}


# -- helpers --------------------------------------------------------------------------------------
def _span(
    span: int, parent: int | None, name: str, start_ns: int, end_ns: int, attributes: dict[str, Any], error: Any
) -> dict[str, Any]:
    """One span of a call record (:func:`workbench.tracking.trace_store.write` makes it an MLflow span)."""
    return {
        "span": span,
        "parent": parent,
        "name": name,
        "start_ns": start_ns,
        "end_ns": end_ns,
        "attributes": attributes,
        "error": error,
    }


def _plain(value: Any) -> Any:
    """A cell as JSON takes it: NaN and NA become None, NumPy scalars Python ones."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            return value.item()
        except (ValueError, AttributeError):
            return value
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def _number(value: Any) -> float | None:
    value = _plain(value)
    if value is None or isinstance(value, bool):
        return None if value is None else float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _usage(prompt: Any, completion: Any) -> dict[str, int] | None:
    p, c = _number(prompt), _number(completion)
    if p is None and c is None:
        return None
    p, c = int(p or 0), int(c or 0)
    return {"input_tokens": p, "output_tokens": c, "total_tokens": p + c}


def _json(value: Any) -> Any:
    value = _plain(value)
    if not value:
        return None
    try:
        return json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return value


def quoted(value: str) -> str:
    """``value`` inside single quotes of an MLflow filter string."""
    return str(value).replace("'", "\\'")
