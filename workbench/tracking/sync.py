"""Upload a finished run that MLflow did not take: ``workbench sync <run folder>``.

The run's folder holds every row (``cases.parquet``) and a note of what was not uploaded
(:mod:`workbench.tracking.pending`). The summary is computed again from the rows (the same
function the engine uses), and the run is logged the way :class:`MlflowObserver` logs any
run: into the parent run it had opened, when the server still has it, else into a new one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mlflow.exceptions import MlflowException

from workbench.core.result import RunResult
from workbench.core.runstore import CASES_FILE, CasesFile
from workbench.engine.summary import notes_for, summarize, summary_columns
from workbench.tracking.pending import mark_synced, read_pending
from workbench.tracking.run_spec import spec_from_manifest
from workbench.tracking.tracker import MlflowObserver


def sync_run(folder: str | Path, *, tracking_uri: str | None = None) -> RunResult:
    """Log the run in ``folder`` to MLflow; returns its result, ``run_id`` set.

    Args:
        folder: The run's folder (``.cache/workbench/runs/<run>``), as the failed run's error named it.
        tracking_uri: Where to log it; the store the run was going to by default.

    Example:
        >>> sync_run(".cache/workbench/runs/20261202T130302Z-sentiment-f6c8d8").run_id  # doctest: +SKIP
    """
    folder = Path(folder)
    note = read_pending(folder)
    cases = CasesFile(folder / CASES_FILE)
    spec = spec_from_manifest(note["manifest"], cases, str(folder))
    spec = dataclasses.replace(spec, description=f"uploaded by `workbench sync` from {folder.name}")
    summary = summarize(cases.batches(summary_columns(spec.scorers, cases.columns)), spec.scorers, success=spec.success)
    result = RunResult(spec.name, cases, summary, spec, notes=notes_for(summary))
    observer = MlflowObserver(tracking_uri=tracking_uri or note["tracking_uri"], source=note["source"])
    client = observer.writer.client
    parent = note.get("parent_run_id")
    try:
        run = client.get_run(parent) if parent else None
    except MlflowException:  # another server, or the run was deleted: a new parent run
        run = None
    children = (
        client.search_runs([run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent}'")
        if run is not None
        else []
    )
    if run is not None and not children:
        observer.attach(run.info.run_id, run.info.experiment_id)
    else:  # the server took part of it before it went: a whole new run, and the part is closed
        observer.start(spec)
        if run is not None:
            old = str(run.info.run_id)
            observer.writer.log(old, tags={"workbench.note": f"uploaded again as run {observer.parent_run_id}"})
            observer.writer.end_run(old, "FAILED")
    observer.log_result(result)
    observer.finish("FINISHED")
    result.run_id, result.tracking_uri = observer.parent_run_id, observer.tracking_uri
    mark_synced(folder, str(result.run_id), observer.tracking_uri)
    return result
