"""MLflow: where runs go (:mod:`~workbench.tracking.store`), the run observer that logs them
(:mod:`~workbench.tracking.tracker`), papermill reports attached to them
(:mod:`~workbench.tracking.report`), and past runs listed, aliased and read back
(:mod:`~workbench.tracking.runs`), every call as a trace (:mod:`~workbench.tracking.traces`)."""

from workbench.tracking.drift import log_drift_report
from workbench.tracking.human_feedback import human_labels_from_mlflow
from workbench.tracking.report import Report, run_report
from workbench.tracking.runs import RunRef, list_runs, read_run, resolve_run, set_alias
from workbench.tracking.store import MlflowWriter, default_tracking_uri, ui_command
from workbench.tracking.tracker import MlflowObserver, MlflowTracker

__all__ = [
    "MlflowObserver",
    "MlflowTracker",
    "MlflowWriter",
    "Report",
    "RunRef",
    "default_tracking_uri",
    "human_labels_from_mlflow",
    "list_runs",
    "log_drift_report",
    "read_run",
    "resolve_run",
    "run_report",
    "set_alias",
    "ui_command",
]
