"""Review labels as MLflow feedback: a 👍/👎 is a HUMAN assessment on the call's trace, and reads back.

:func:`log_human_label` puts a label on the trace :func:`find_trace` finds (by the
:data:`~workbench.tracking.traces.CALL_TAG` every trace carries);
:func:`human_labels_from_mlflow` reads a run's labels back as the frame
:func:`workbench.judge_agreement` takes.

Example:
    >>> labels = human_labels_from_mlflow(result.run_id)  # doctest: +SKIP
    >>> wb.judge_agreement(result, labels, score="llm_judge")  # doctest: +SKIP
"""

from __future__ import annotations

import getpass

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import AssessmentSource, Feedback
from mlflow.tracing.client import TracingClient

from workbench.core.redaction import REDACTOR
from workbench.tracking.traces import CALL_TAG, call_key, parse_call_key, quoted

#: Traces read per request (a tracking server refuses pages much larger).
PAGE = 500
#: The name of a review label's assessment (a thumbs up is True, a thumbs down False).
HUMAN_FEEDBACK = "human_review"


# -- review labels --------------------------------------------------------------------------------
def find_trace(
    parent_run_id: str, *, case_id: str, variant: str, model: str, repeat: int = 0, tracking_uri: str | None = None
) -> str | None:
    """The id of the trace of one call of a run (None: the run wrote no traces)."""
    client = MlflowClient(tracking_uri)
    run = client.get_run(parent_run_id)
    key = call_key(parent_run_id, variant=variant, model=model, repeat=repeat, case_id=case_id)
    where = f"tags.`{CALL_TAG}` = '{quoted(key)}'"
    found = client.search_traces(locations=[run.info.experiment_id], filter_string=where, max_results=1)
    return found[0].info.trace_id if found else None


def log_human_label(
    trace_id: str, label: str, *, comment: str | None = None, user: str | None = None, tracking_uri: str | None = None
) -> None:
    """A review label (``"up"``/``"down"``) as a HUMAN assessment on the call's trace; the comment,
    redacted, is its rationale."""
    TracingClient(tracking_uri).log_assessment(
        trace_id,
        Feedback(
            name=HUMAN_FEEDBACK,
            value=label == "up",
            source=AssessmentSource(source_type="HUMAN", source_id=user or getpass.getuser()),
            rationale=REDACTOR.text(comment) if comment else None,
        ),
    )


def human_labels_from_mlflow(parent_run_id: str, *, tracking_uri: str | None = None) -> pd.DataFrame:
    """The review labels of a run, read back from its traces' HUMAN assessments.

    Returns one row per labelled call (the latest label wins): ``case_id``, ``variant``,
    ``variant_version``, ``model``, ``repeat``, ``label`` (``up``/``down``), ``comment``,
    ``user`` and ``ts``, ready for :func:`workbench.judge_agreement`.

    Example:
        >>> wb.judge_agreement(result, human_labels_from_mlflow(result.run_id))  # doctest: +SKIP
    """
    client = MlflowClient(tracking_uri)
    run = client.get_run(parent_run_id)
    traces = []
    token = None
    while True:  # a page at a time: a tracking server refuses large pages
        page = client.search_traces(
            locations=[run.info.experiment_id],
            filter_string=f"tags.`{CALL_TAG}` LIKE '{quoted(parent_run_id)}|%'",
            max_results=PAGE,
            include_spans=False,
            page_token=token,
        )
        traces.extend(page)
        token = page.token
        if not token:
            break
    rows = []
    for trace in traces:
        human = [
            a
            for a in trace.info.assessments
            if a.name == HUMAN_FEEDBACK and a.source.source_type == "HUMAN" and a.valid is not False
        ]
        if not human:
            continue
        latest = max(human, key=lambda a: a.last_update_time_ms or a.create_time_ms or 0)
        call = parse_call_key(trace.info.tags[CALL_TAG])
        rows.append(
            {
                **call,
                "label": "up" if latest.value else "down",
                "comment": latest.rationale or "",
                "user": latest.source.source_id,
                "ts": (latest.last_update_time_ms or 0) / 1000,
            }
        )
    columns = ["case_id", "variant", "model", "repeat", "label", "comment", "user", "ts"]
    return pd.DataFrame(rows, columns=columns)
