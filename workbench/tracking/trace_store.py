"""Storing traces: call records become MLflow spans and assessments, in a thread or a process of their own.

This is the part of tracing that costs: MLflow's ``log_spans`` on a SQL store is ORM work,
~5 ms of CPU per trace, and it holds the GIL the run's event loop needs. A run of a few
hundred calls writes here from a thread; a bigger one starts :class:`WriterProcess`, which
runs this file on its own (``python -c ... trace_store.py``) and writes on another core, so
the run's calls do not wait for it (see :mod:`workbench.tracking.traces` for the numbers).

So that the process starts in ~3 s instead of ~8 s (and ~200 MB instead of ~400 MB), this
module imports **only MLflow and the standard library**, never the workbench package: it is
loaded by path, not as ``workbench.tracking.trace_store``. Nothing unredacted reaches it:
:class:`~workbench.tracking.traces.TraceWriter` redacts each row and turns it into a plain
*call record* first::

    {"trace_id": "tr-...",
     "spans": [{"span": 1, "parent": None, "name": ..., "start_ns": ..., "end_ns": ...,
                "attributes": {...}, "error": None}, ...],
     "feedback": [{"name": ..., "value": 1.0, "judge": False, "rationale": ...,
                   "span": None, "metadata": {...}}, ...]}

The protocol with the process is pickles of plain Python values: on its stdin, lists of
records and then ``None`` (the end); on its stdout, one reply ``{"written": [trace ids],
"errors": [messages]}``. The process ignores Ctrl-C (a failed or interrupted run's traces
are still written) and ends when its stdin closes.
"""

from __future__ import annotations

import json
import os
import pickle
import queue
import signal
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
# Run by ``python -c``: the module by its path, so that importing it does not import the workbench.
_BOOT = "import runpy, sys; sys.path.pop(0); runpy.run_path(sys.argv.pop(1), run_name='__main__')"


def write(client: TracingClient, experiment_id: str, records: list[dict[str, Any]]) -> list[str]:
    """Store call records as traces (one ``log_spans`` call) and their scores as assessments.

    Returns:
        The ids of the traces written.
    """
    spans = [_span(record["trace_id"], **span) for record in records for span in record["spans"]]
    feedback = [_feedback(record["trace_id"], **item) for record in records for item in record["feedback"]]
    client.log_spans(experiment_id, spans)
    log_assessments(client, feedback)
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
        self._process = subprocess.Popen(
            [sys.executable, "-c", _BOOT, os.path.abspath(__file__), tracking_uri, experiment_id],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def send(self, records: list[dict[str, Any]]) -> None:
        """Queue records for writing (raises ``BrokenPipeError`` when the process has died)."""
        assert self._process.stdin is not None
        pickle.dump(records, self._process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        self._process.stdin.flush()

    def finish(self) -> dict[str, Any]:
        """Wait until everything sent is written; ``{"written": [trace ids], "errors": [...]}``."""
        assert self._process.stdin is not None and self._process.stdout is not None
        try:
            pickle.dump(None, self._process.stdin)
            self._process.stdin.close()
        except (BrokenPipeError, OSError):
            pass  # it died: what it says (or its exit code) follows
        try:
            reply: dict[str, Any] = pickle.load(self._process.stdout)
        except EOFError:
            code = self._process.wait()
            return {"written": [], "errors": [f"the trace writer process exited with code {code} (see its stderr)"]}
        # Reaped in the background: the process's interpreter takes ~1 s to shut down after replying.
        threading.Thread(target=self._process.wait, name="workbench-traces-reaper", daemon=True).start()
        return reply


def serve(uri: str, experiment_id: str, inbox: IO[bytes], outbox: IO[bytes]) -> None:
    """The process's loop: write what arrives, up to :data:`BATCH` traces at a time, then reply."""
    records: queue.Queue[list[dict[str, Any]] | None] = queue.Queue()

    def read() -> None:  # a thread, so that what arrives while writing is batched for the next write
        while True:
            try:
                item = pickle.load(inbox)
            except (EOFError, pickle.UnpicklingError):
                item = None  # the run's process is gone: write what came, then stop
            records.put(item)
            if item is None:
                return

    threading.Thread(target=read, name="workbench-traces-inbox", daemon=True).start()
    client = TracingClient(uri)
    written: list[str] = []
    errors: list[str] = []
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
            written += write(client, experiment_id, batch)
        except Exception as exc:  # traces are a view of the run: report, go on
            errors.append(f"{type(exc).__name__}: {exc}")
    pickle.dump({"written": written, "errors": errors}, outbox)
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


if __name__ == "__main__":
    # MLflow prices a span without a cost by importing litellm (3 s and 150 MB here); the run
    # priced each call with litellm already, so MLflow falls back to its bundled price table.
    sys.modules["litellm"] = None  # type: ignore[assignment]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the run's terminal: still write what was sent
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # anything printed goes to stderr, not into the replies
    serve(sys.argv[1], sys.argv[2], sys.stdin.buffer, replies)
