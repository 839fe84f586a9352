"""MLflow traces as production-log records: what ``mlflow.search_traces()`` returns, read as interactions.

A trace row gives its id, ``request_time`` (ms since the epoch), ``execution_duration`` (ms), the
``request`` (the inputs) and ``response`` (the output), ``trace_metadata`` (token usage) and ``tags``.
Which task, variant and model a trace belongs to are read from its tags (``workbench.task`` /
``workbench.variant`` / ``workbench.model``, else the trace's name and ``"unknown"``). Human
feedback assessments (a boolean or up/down value, and its rationale) become the explicit
feedback; a trace has no implicit feedback. Cost is not in a trace: it stays empty.

Example:
    >>> traces = mlflow.search_traces(locations=[experiment_id])  # doctest: +SKIP
    >>> log = wb.ProductionLog.load(traces)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pandas as pd

__all__ = ["is_traces_frame", "records_from_traces"]

TRACE_COLUMNS = frozenset({"trace_id", "request_time", "execution_duration", "request", "response"})
_TOKEN_USAGE = "mlflow.trace.tokenUsage"


def is_traces_frame(frame: pd.DataFrame) -> bool:
    """Whether ``frame`` is a ``mlflow.search_traces()`` result rather than production-log records."""
    return set(frame.columns) >= TRACE_COLUMNS


def _mapping(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _output(response: Any) -> str | None:
    if response is None or isinstance(response, str):
        return response
    return json.dumps(response, ensure_ascii=False, default=str)


def _feedback(assessments: Any) -> dict[str, Any] | None:
    """The last human feedback assessment: True / "up" / "yes" -> up, False / "down" / "no" -> down."""
    for item in reversed(list(assessments) if isinstance(assessments, list | tuple) else []):
        item = _mapping(item)
        source = _mapping(item.get("source")).get("source_type", "")
        value = _mapping(item.get("feedback")).get("value")
        if str(source).upper() != "HUMAN" or value is None:
            continue
        word = str(value).strip().lower()
        thumb = (
            "up"
            if word in ("true", "up", "yes", "1", "pass")
            else "down"
            if word in ("false", "down", "no", "0", "fail")
            else None
        )
        return {"thumb": thumb, "comment": item.get("rationale") or None, "problem": None}
    return None


def records_from_traces(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Production-log records (the JSONL format) from a ``mlflow.search_traces()`` frame."""
    records = []
    for row in frame.to_dict(orient="records"):
        tags, metadata = _mapping(row.get("tags")), _mapping(row.get("trace_metadata"))
        usage = _mapping(metadata.get(_TOKEN_USAGE))
        request = row.get("request")
        inputs = request if isinstance(request, dict) else {"input": "" if request is None else str(request)}
        started = datetime.fromtimestamp(int(row["request_time"]) / 1000, tz=UTC)
        records.append(
            {
                "id": str(row["trace_id"]),
                "timestamp": started.isoformat(),
                "task": tags.get("workbench.task") or tags.get("mlflow.traceName") or "trace",
                "variant": tags.get("workbench.variant") or "unknown",
                "model": tags.get("workbench.model") or "unknown",
                "inputs": inputs,
                "output": _output(row.get("response")),
                "latency_s": (row.get("execution_duration") or 0) / 1000,
                "tokens": {"input": int(usage["input_tokens"]), "output": int(usage["output_tokens"])}
                if {"input_tokens", "output_tokens"} <= set(usage)
                else None,
                "feedback": _feedback(row.get("assessments")),
            }
        )
    return records
