"""A run's folder remembers what MLflow did not take: ``mlflow_pending.json``.

When a finished run cannot be logged (the tracking server is down past MLflow's retries),
:class:`~workbench.tracking.tracker.MlflowObserver` writes this note next to the run's
``cases.parquet``: where it was going, the parent run it had opened, how it was started and
the experiment's manifest (variants, models, scorer specs: credentials masked). ``workbench
sync <folder>`` (:func:`workbench.tracking.sync.sync_run`) reads it back and uploads the run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from workbench.core.exceptions import UsageError
from workbench.core.redaction import REDACTOR

#: The note's file name, inside the run's folder; renamed to :data:`SYNCED_FILE` once uploaded.
PENDING_FILE = "mlflow_pending.json"
SYNCED_FILE = "mlflow_synced.json"


def without_login(uri: str) -> str:
    """``uri`` without a ``user:password@`` part (credentials come from the environment)."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def write_pending(
    folder: Path,
    *,
    tracking_uri: str,
    parent_run_id: str | None,
    source: str,
    manifest: dict[str, Any],
    error: str,
) -> Path:
    """Write the note (atomically: a half-written note never stands in for a whole one)."""
    note = {
        "tracking_uri": without_login(tracking_uri),
        "parent_run_id": parent_run_id,
        "source": source,
        "manifest": REDACTOR.data(manifest),
        "error": REDACTOR.text(error),
    }
    target = folder / PENDING_FILE
    partial = target.with_suffix(".partial")
    partial.write_text(json.dumps(note, indent=1, default=str), encoding="utf-8")
    os.replace(partial, target)
    return target


def read_pending(folder: Path) -> dict[str, Any]:
    """The note of a run's folder; a clear error when there is none."""
    path = folder / PENDING_FILE
    if not path.exists():
        done = folder / SYNCED_FILE
        if done.exists():
            run_id = json.loads(done.read_text(encoding="utf-8")).get("parent_run_id")
            raise UsageError(f"{folder} was uploaded already (MLflow run {run_id})")
        raise UsageError(
            f"{folder} has no {PENDING_FILE}: it is not a run folder whose upload to MLflow failed "
            "(run folders are under .cache/workbench/runs/ or $WORKBENCH_RUNS)"
        )
    return dict(json.loads(path.read_text(encoding="utf-8")))


def mark_synced(folder: Path, parent_run_id: str, tracking_uri: str) -> None:
    note = read_pending(folder)
    note.update(parent_run_id=parent_run_id, tracking_uri=without_login(tracking_uri))
    (folder / SYNCED_FILE).write_text(json.dumps(note, indent=1, default=str), encoding="utf-8")
    (folder / PENDING_FILE).unlink()
