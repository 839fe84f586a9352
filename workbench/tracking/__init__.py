"""MLflow: where runs go (:mod:`~workbench.tracking.store`), the run observer that logs them
(:mod:`~workbench.tracking.tracker`), and papermill reports attached to them
(:mod:`~workbench.tracking.report`)."""

from workbench.tracking.report import Report, run_report
from workbench.tracking.store import MlflowWriter, default_tracking_uri, ui_command
from workbench.tracking.tracker import MlflowObserver, MlflowTracker

__all__ = [
    "MlflowObserver",
    "MlflowTracker",
    "MlflowWriter",
    "Report",
    "default_tracking_uri",
    "run_report",
    "ui_command",
]
