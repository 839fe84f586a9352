"""Where runs are kept, and the one way to write to it: :class:`MlflowWriter`.

The default store is ``sqlite:///<project>/mlruns/mlflow.db`` with artifacts in
``<project>/mlruns/artifacts``; ``MLFLOW_TRACKING_URI`` overrides it. Every
param, metric, tag, table and artifact the workbench writes to MLflow goes
through :class:`MlflowWriter`, which passes it through the redaction chain
(:data:`workbench.core.redaction.REDACTOR`) first: credentials at any depth,
and whatever later links (PII) mask, never reach the store.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import shlex
import socket
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_LOGGED_ARTIFACTS

from workbench.core.exceptions import TrackingError
from workbench.core.redaction import MACHINE_FIELDS, REDACTOR
from workbench.core.runstore import CasesFile, Where
from workbench.util.env import ui_environment
from workbench.util.paths import default_tracking_uri, project_root

#: MLflow's limit on a param value's length.
PARAM_MAX = 6000
#: Characters kept of a tag's value (MLflow allows 8000; run descriptions are tags too).
TAG_MAX = 5000
#: MLflow's tag for a run's or an experiment's description (rendered as Markdown in the UI).
NOTE_TAG = "mlflow.note.content"
#: Where a parent run keeps its whole results table (redacted), read back by :func:`workbench.load_run`.
CASES_ARTIFACT = "run/cases.parquet"
#: MLflow accepts at most this many params (and 1000 metrics) per batch.
_BATCH = 100
#: Tags that say which process owns a RUNNING parent run, and when it was last seen alive.
PID_TAG, HOST_TAG, HEARTBEAT_TAG = "workbench.pid", "workbench.host", "workbench.heartbeat"
#: A RUNNING run started on another host whose heartbeat is older than this is taken for dead.
STALE_AFTER_S = 15 * 60


def ui_command(tracking_uri: str | None = None, *, port: int = 5000) -> str:
    """The shell command that opens the MLflow UI on this store, bound to 127.0.0.1.

    It sets ``LITELLM_LOCAL_MODEL_COST_MAP=True``: with litellm installed,
    ``mlflow ui`` otherwise hangs offline while importing it.
    """
    uri = tracking_uri or default_tracking_uri()
    env = " ".join(f"{k}={v}" for k, v in ui_environment().items())
    server = f"ui --backend-store-uri {shlex.quote(uri)} --host 127.0.0.1 --port {port}"
    return f"{env} {_mlflow_executable()} {server}"


def _mlflow_executable() -> str:
    """``mlflow`` of this environment; relative (``.venv/bin/mlflow``) when inside the project."""
    exe = Path(sys.executable).parent / "mlflow"
    if not exe.exists():
        return "mlflow"
    try:
        return str(exe.relative_to(project_root()))
    except ValueError:
        return str(exe)


class MlflowWriter:
    """The workbench's one MLflow client: every write is redacted, batched and size-checked.

    Args:
        tracking_uri: The store; :func:`default_tracking_uri` by default.

    Example:
        >>> writer = MlflowWriter("sqlite:///mlruns/mlflow.db")  # doctest: +SKIP
        >>> writer.params(run_id, {"param.extra_headers": {"Authorization": "Bearer ..."}})  # logged as ***
    """

    def __init__(self, tracking_uri: str | None = None) -> None:
        self.tracking_uri = tracking_uri or default_tracking_uri()
        self._client: MlflowClient | None = None

    @property
    def client(self) -> MlflowClient:
        """The MLflow client, made on first use: a run refused before it starts never creates a store."""
        if self._client is None:
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    # -- experiments and runs -----------------------------------------------------------
    def experiment_id(self, name: str, *, description: str = "") -> str:
        """The id of experiment ``name``, created (artifacts beside a SQLite store) when missing.

        ``description`` becomes the experiment's description when it is created, or when its
        description is empty; one written since (in the UI, say) is kept.
        """
        existing = self.client.get_experiment_by_name(name)
        if existing is not None:
            if description and not existing.tags.get(NOTE_TAG, "").strip():
                self.client.set_experiment_tag(
                    existing.experiment_id, NOTE_TAG, self._tags({NOTE_TAG: description})[NOTE_TAG]
                )
            return str(existing.experiment_id)
        artifact_location = None
        if self.tracking_uri.startswith("sqlite:///"):
            db = Path(self.tracking_uri.removeprefix("sqlite:///"))
            artifact_location = (db.parent / "artifacts").resolve().as_uri()
        tags = self._tags({NOTE_TAG: description}) if description else None
        try:
            return str(self.client.create_experiment(name, artifact_location=artifact_location, tags=tags))
        except MlflowException as exc:  # another process made it since we looked (8 CI jobs at once)
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return self._made_meanwhile(name)

    def _made_meanwhile(self, name: str) -> str:
        """The id of an experiment another process has just created. A server with basic auth
        grants its creator (the same user, maybe) MANAGE only after the create request ends:
        until then reading it is denied (403), so that is retried for a few seconds."""
        for attempt in range(20):
            try:
                made = self.client.get_experiment_by_name(name)
            except MlflowException as exc:
                if exc.error_code != "PERMISSION_DENIED" or attempt == 19:
                    raise
                time.sleep(0.5)
                continue
            if made is not None:
                return str(made.experiment_id)
            time.sleep(0.5)
        raise TrackingError(f"experiment {name!r} was reported created by another process but cannot be found")

    def create_run(self, experiment_id: str, name: str, tags: Mapping[str, str]) -> str:
        run = self.client.create_run(experiment_id, run_name=REDACTOR.text(name), tags=self._tags(tags))
        return str(run.info.run_id)

    def end_run(self, run_id: str, status: str) -> None:
        self.client.set_terminated(run_id, status)

    def status(self, run_id: str) -> str:
        return str(self.client.get_run(run_id).info.status)

    # -- values ---------------------------------------------------------------------------
    def log(
        self,
        run_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Params (any JSON-able value, redacted, truncated to MLflow's limit), metrics and tags, batched."""
        param_list = [_param(k, REDACTOR.data(v, pii=k not in MACHINE_FIELDS)) for k, v in (params or {}).items()]
        now = int(time.time() * 1000)
        metric_list = [Metric(k, float(v), now, 0) for k, v in (metrics or {}).items() if _finite(v)]
        tag_list = [RunTag(k, v) for k, v in self._tags(tags or {}).items()]
        for i in range(0, max(len(param_list), len(metric_list), len(tag_list), 1), _BATCH):
            self.client.log_batch(
                run_id,
                params=param_list[i : i + _BATCH],
                metrics=metric_list[i : i + _BATCH],
                tags=tag_list[i : i + _BATCH],
            )

    @staticmethod
    def _tags(tags: Mapping[str, str]) -> dict[str, str]:
        return {k: REDACTOR.field(k, str(v))[:TAG_MAX] for k, v in tags.items()}

    # -- artifacts ------------------------------------------------------------------------
    def text(self, run_id: str, text: str, path: str, *, redacted: bool = False) -> None:
        """A text artifact. ``redacted=True``: the caller passed every variable part through the
        chain already (a chart page: its figures are, the plotly.js library it carries is not data)."""
        self.client.log_text(run_id, text if redacted else REDACTOR.text(text), path)

    def json(self, run_id: str, data: Any, path: str) -> None:
        self.client.log_dict(run_id, REDACTOR.data(data), path)

    def table(self, run_id: str, frame: pd.DataFrame, path: str) -> None:
        """A table the MLflow UI shows (JSON), or Parquet for a ``.parquet`` path."""
        frame = REDACTOR.frame(frame.reset_index(drop=True))
        if path.endswith(".parquet"):
            with tempfile.TemporaryDirectory() as tmp:
                file = Path(tmp) / Path(path).name
                frame.to_parquet(file, index=False)
                parent = str(Path(path).parent)
                self.client.log_artifact(run_id, str(file), None if parent == "." else parent)
            return
        self.client.log_table(run_id, data=frame, artifact_file=path)

    def cases(
        self,
        run_id: str,
        cases: CasesFile,
        path: str,
        *,
        columns: Sequence[str] | None = None,
        where: Where = None,
    ) -> None:
        """A run's results table (all of it, or the ``columns`` and rows ``where`` says) as a
        Parquet artifact, every text cell redacted on the way.

        Copied a batch at a time (:meth:`CasesFile.copy_to`), so a million-row run is
        never in memory at once; :func:`workbench.load_run` reads the whole one back.
        """
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / Path(path).name
            file = cases.copy_to(target, columns=columns, where=where, transform=REDACTOR.frame)
            parent = str(Path(path).parent)
            self.client.log_artifact(run_id, str(file), None if parent == "." else parent)

    def replace_table(self, run_id: str, frame: pd.DataFrame, path: str) -> None:
        """Overwrite a JSON table (``log_table`` would append to it) and register it as a table for the UI."""
        frame = REDACTOR.frame(frame.reset_index(drop=True))
        self.client.log_text(run_id, frame.to_json(orient="split", index=False, date_format="iso"), path)
        logged = json.loads(self.client.get_run(run_id).data.tags.get(MLFLOW_LOGGED_ARTIFACTS, "[]"))
        entry = {"path": path, "type": "table"}
        if entry not in logged:
            self.client.set_tag(run_id, MLFLOW_LOGGED_ARTIFACTS, json.dumps([*logged, entry]))

    def file(self, run_id: str, path: str | Path, directory: str | None = None) -> None:
        """A file as it is; text files (``.ipynb``, ``.html``, ``.json``...) are redacted on the way."""
        source = Path(path)
        try:
            text = source.read_text(encoding="utf-8")
        except (UnicodeDecodeError, ValueError):  # binary: nothing the text links could read
            self.client.log_artifact(run_id, str(source), directory)
            return
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / source.name
            copy.write_text(REDACTOR.text(text), encoding="utf-8")
            self.client.log_artifact(run_id, str(copy), directory)

    # -- orphans --------------------------------------------------------------------------
    def close_orphans(self) -> list[str]:
        """Mark as KILLED every workbench parent run (and its children) left RUNNING by a dead process.

        A run started on this host is dead when its process is gone; one from
        another host when its heartbeat is older than :data:`STALE_AFTER_S`.
        Runs of every experiment in the store are checked.
        """
        ids = [e.experiment_id for e in self.client.search_experiments()]
        if not ids:
            return []
        closed = []
        runs = self.client.search_runs(
            ids, filter_string="attributes.status = 'RUNNING' and tags.`workbench.kind` = 'experiment'"
        )
        for run in runs:
            if not _is_orphan(run.data.tags, run.info.start_time):
                continue
            children = self.client.search_runs(
                [run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'"
            )
            for child in children:
                if child.info.status == "RUNNING":
                    self.client.set_terminated(child.info.run_id, "KILLED")
            self.client.set_tag(run.info.run_id, "workbench.note", "closed as KILLED: its process was gone")
            self.client.set_terminated(run.info.run_id, "KILLED")
            closed.append(str(run.info.run_id))
        return closed


def owner_tags() -> dict[str, str]:
    """The tags that let a later process tell whether this one is still alive."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname(), HEARTBEAT_TAG: str(int(time.time()))}


def _is_orphan(tags: Mapping[str, str], start_time_ms: int | None) -> bool:
    pid = tags.get(PID_TAG, "")
    if tags.get(HOST_TAG) == socket.gethostname():
        return pid.isdigit() and not _pid_alive(int(pid))
    beat = tags.get(HEARTBEAT_TAG, "")
    last = int(beat) if beat.isdigit() else (start_time_ms or 0) // 1000
    return time.time() - last > STALE_AFTER_S


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _param(key: str, value: Any) -> Param:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    if len(text) > PARAM_MAX:
        text = text[: PARAM_MAX - 20] + "...[truncated]"
    return Param(key, text)


def _finite(value: Any) -> bool:
    try:
        return not math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def metric_items(row: Iterable[tuple[str, Any]]) -> dict[str, float]:
    """The numeric (not boolean, not NaN) values of a summary row, as metrics."""
    skip = {"variant", "model", "variant_version"}
    out = {}
    for key, value in row:
        if key in skip or not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
            continue
        if _finite(value):
            out[str(key)] = float(value)
    return out
