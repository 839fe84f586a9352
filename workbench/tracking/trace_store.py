"""Storing traces: call records become MLflow spans and assessments, in a thread or a process of their own.

This is the part of tracing that costs: MLflow's ``log_spans`` on a SQL store is ORM work,
2-5 ms of CPU per trace, and it holds the GIL the run's event loop needs. A run of a few
hundred calls writes here from a thread; a bigger one starts :class:`WriterProcess`, which
runs this file on its own (``python -c ... trace_store.py``) and writes on another core, so
the run's calls do not wait for it (see :mod:`workbench.tracking.traces` for the numbers).

So that the process starts in 2-3 s instead of ~8 s (and takes ~230 MB, not ~400 MB), this
module imports **only MLflow and the standard library**, never the workbench package: it is
loaded by path, not as ``workbench.tracking.trace_store``. Nothing unredacted reaches it:
:class:`~workbench.tracking.traces.TraceWriter` redacts each row and turns it into a plain
*call record* first::

    {"trace_id": "tr-...",
     "spans": [{"span": 1, "parent": None, "name": ..., "start_ns": ..., "end_ns": ...,
                "attributes": {...}, "error": None}, ...],
     "feedback": [{"name": ..., "value": 1.0, "judge": False, "rationale": ...,
                   "span": None, "metadata": {...}}, ...]}

The protocol with the process is JSON, one message per line (JSON, not pickle: whatever a
dataset cell holds arrives as plain values, ``str()`` of anything else, and a line is written
whole or not at all): on its stdin, first ``{"uri": ..., "experiment_id": ...}`` (not on its
command line, where ``ps`` shows it: a URI can hold a password), then lists of records, then
``null`` (the end); on its stdout, one reply ``{"written": [trace ids], "errors": [messages]}``.
The process runs in a session of its own and ignores Ctrl-C (an interrupted run's traces are
still written); anything it prints goes to stderr; it ends when its stdin closes.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Mapping
from typing import IO, Any

from mlflow.entities import AssessmentSource, Feedback, Span
from mlflow.store.tracking.dbmodels.models import SqlAssessments, SqlTraceInfo
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.store.tracking.utils.sql_trace_rollups import rollups_enabled
from mlflow.tracing.client import TracingClient
from mlflow.tracing.constant import SpanAttributeKey
from mlflow.tracing.utils import encode_span_id

#: Traces written per ``log_spans`` call at most.
BATCH = 200
# Run by ``python -c``: Ctrl-C ignored and stdout kept for the reply before anything is imported
# (what is printed goes to stderr), the current folder off the path, then this file by its path,
# so that importing it does not import the workbench. The reply's file descriptor is the last argument.
_BOOT = (
    "import os, runpy, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "sys.argv.append(str(os.dup(1))); os.dup2(2, 1); "
    "sys.path[:1] = [] if sys.path[:1] == [''] else sys.path[:1]; "
    "runpy.run_path(sys.argv.pop(1), run_name='__main__')"
)


def write(client: TracingClient, experiment_id: str, records: list[dict[str, Any]], errors: list[str]) -> list[str]:
    """Store call records as traces (one ``log_spans`` call) and their scores as assessments.

    Returns:
        The ids of the traces written (raises when ``log_spans`` fails). When only the scores
        could not be stored, the traces still count and ``errors`` gets the reason.
    """
    spans = [_span(record["trace_id"], **span) for record in records for span in record["spans"]]
    client.log_spans(experiment_id, spans)
    try:
        log_assessments(client, [_feedback(r["trace_id"], **item) for r in records for item in r["feedback"]])
    except Exception as exc:  # the traces are there; their scores are not
        errors.append(f"scores not stored: {type(exc).__name__}: {exc}")
    return [record["trace_id"] for record in records]


def log_assessments(client: TracingClient, feedback: list[Feedback]) -> None:
    """Assessments on traces already stored: in one transaction on a SQL store, else one request each.

    MLflow has no batch call for assessments and its SQL store commits each one on its own
    (a disk sync per score: 20 ms and more on a busy machine, seconds per thousand calls).
    The SQL store's own table model is used to add a batch at once, the way its
    ``start_trace`` adds a trace's assessments; any other store gets ``log_assessment``.
    """
    if not feedback:
        return
    store = client.store
    if not isinstance(store, SqlAlchemyStore) or rollups_enabled():
        for item in feedback:
            client.log_assessment(str(item.trace_id), item)
        return
    ids = sorted({str(item.trace_id) for item in feedback})
    with store.ManagedSessionMaker(read_only=False) as session:
        # Only the two columns an assessment repeats: loading whole traces drags their tags in too.
        found = session.query(SqlTraceInfo.request_id, SqlTraceInfo.experiment_id, SqlTraceInfo.timestamp_ms)
        traces = {
            request_id: (experiment, stamp)
            for request_id, experiment, stamp in found.filter(SqlTraceInfo.request_id.in_(ids))
        }
        rows = []
        for item in feedback:
            if str(item.trace_id) not in traces:
                raise LookupError(f"trace {item.trace_id} was not stored, so its scores cannot be")
            row = SqlAssessments.from_mlflow_entity(item)
            row.experiment_id, row.trace_timestamp_ms = traces[str(item.trace_id)]
            rows.append(row)
        session.add_all(rows)


class WriterProcess:
    """The run's side of the trace writer process: send it records, then collect what it wrote.

    Args:
        tracking_uri: The store the process writes to (credentials come from the environment,
            as for the run itself: ``MLFLOW_TRACKING_USERNAME`` / ``_PASSWORD``).
        experiment_id: The run's experiment.

    :meth:`send` blocks while the process is busy (its pipe is full): call it from a
    background thread, never from the run's event loop.
    """

    def __init__(self, tracking_uri: str, experiment_id: str) -> None:
        if not sys.executable:
            raise OSError("this Python cannot start another (sys.executable is empty)")
        self._process = subprocess.Popen(
            [sys.executable, "-c", _BOOT, os.path.abspath(__file__)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C in the run's terminal (or a kernel interrupt) does not reach it
        )
        self._send({"uri": tracking_uri, "experiment_id": experiment_id})

    def send(self, records: list[dict[str, Any]]) -> None:
        """Queue records for writing (raises ``BrokenPipeError`` when the process has died)."""
        self._send(records)

    def _send(self, message: Any) -> None:
        assert self._process.stdin is not None
        line = json.dumps(message, default=str, ensure_ascii=False) + "\n"  # whole, before any byte is sent
        self._process.stdin.write(line.encode())
        self._process.stdin.flush()

    def finish(self) -> dict[str, Any]:
        """Wait until everything sent is written; ``{"written": [trace ids], "errors": [...]}``."""
        assert self._process.stdin is not None and self._process.stdout is not None
        try:
            self._send(None)
            self._process.stdin.close()
        except OSError:
            pass  # it died: what it says (or its exit code) follows
        line = self._process.stdout.readline()
        if not line:
            code = self._process.wait()
            return {"written": [], "errors": [f"the trace writer process exited with code {code} (see its stderr)"]}
        # Reaped in the background: the process's interpreter takes ~1 s to shut down after replying.
        threading.Thread(target=self._process.wait, name="workbench-traces-reaper", daemon=True).start()
        reply: dict[str, Any] = json.loads(line)
        return reply


def serve(inbox: IO[bytes], outbox: IO[bytes]) -> None:
    """The process's loop: write what arrives, up to :data:`BATCH` traces at a time, then reply."""
    where = json.loads(inbox.readline())
    records: queue.Queue[list[dict[str, Any]] | None] = queue.Queue()
    errors: list[str] = []

    def read() -> None:  # a thread, so that what arrives while writing is batched for the next write
        for line in inbox:
            try:
                item = json.loads(line)
            except ValueError as exc:
                errors.append(f"a message could not be read: {exc}")
                continue
            if item is None:
                break
            records.put(item)
        records.put(None)  # the end, or the run's process is gone: write what came, then stop

    threading.Thread(target=read, name="workbench-traces-inbox", daemon=True).start()
    client = TracingClient(where["uri"])
    written: list[str] = []
    done = False
    while not done:
        batch = records.get()
        if batch is None:
            break
        while len(batch) < BATCH:
            try:
                more = records.get_nowait()
            except queue.Empty:
                break
            if more is None:
                done = True
                break
            batch += more
        try:
            written += write(client, where["experiment_id"], batch, errors)
        except Exception as exc:  # traces are a view of the run: report, go on
            errors.append(f"{type(exc).__name__}: {exc}")
    outbox.write((json.dumps({"written": written, "errors": errors}) + "\n").encode())
    outbox.flush()


# -- helpers --------------------------------------------------------------------------------------
def _span(
    trace_id: str,
    *,
    span: int,
    parent: int | None,
    name: str,
    start_ns: int,
    end_ns: int,
    attributes: Mapping[str, Any],
    error: Any,
) -> Span:
    encoded = {SpanAttributeKey.REQUEST_ID: json.dumps(trace_id)}
    encoded.update({k: json.dumps(v, default=str, ensure_ascii=False) for k, v in attributes.items()})
    status = (
        {"code": "STATUS_CODE_ERROR", "message": str(error)} if error else {"code": "STATUS_CODE_OK", "message": ""}
    )
    return Span.from_dict(
        {
            "trace_id": trace_id,
            "span_id": encode_span_id(span),
            "parent_span_id": encode_span_id(parent) if parent is not None else "",
            "name": name,
            "start_time_unix_nano": start_ns,
            "end_time_unix_nano": end_ns,
            "status": status,
            "attributes": encoded,
            "events": [],
        }
    )


def _feedback(
    trace_id: str,
    *,
    name: str,
    value: float,
    judge: bool,
    rationale: str | None,
    span: int | None,
    metadata: dict[str, str],
) -> Feedback:
    return Feedback(
        trace_id=trace_id,
        name=name,
        value=value,
        source=AssessmentSource(source_type="LLM_JUDGE" if judge else "CODE", source_id=name),
        rationale=rationale,
        span_id=encode_span_id(span) if span is not None else None,
        metadata=metadata,
    )


if __name__ == "__main__":  # started by WriterProcess (see _BOOT)
    # MLflow prices a span without a cost by importing litellm (3 s and 150 MB here); the run
    # priced each call with litellm already, so MLflow falls back to its bundled price table.
    sys.modules["litellm"] = None  # type: ignore[assignment]
    serve(sys.stdin.buffer, os.fdopen(int(sys.argv[-1]), "wb"))
