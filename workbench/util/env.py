"""Process-wide defaults that must be set before litellm or MLflow is imported.

litellm downloads its model price map at import time and, offline, retries for
seconds before falling back to the copy it ships; MLflow and other libraries
send usage telemetry. The workbench must work on a machine with no network, so
it sets these defaults *unless the user already chose otherwise*. MLflow also
logs INFO lines to stderr ("Creating initial MLflow database tables..."), which
a notebook shows in red like errors: its level defaults to WARNING here
(``MLFLOW_LOGGING_LEVEL=INFO`` brings them back).
"""

from __future__ import annotations

import logging
import os
import sys

#: Environment defaults applied by :func:`apply_offline_defaults`.
OFFLINE_DEFAULTS: dict[str, str] = {
    # Use the price map bundled with litellm instead of fetching it.
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    # litellm's own anonymous telemetry.
    "LITELLM_TELEMETRY": "False",
    # MLflow usage telemetry (MLflow >= 3.2) and the generic opt-out.
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    # MLflow's git lookups print a warning when git is missing; keep it quiet.
    "GIT_PYTHON_REFRESH": "quiet",
    # MLflow's INFO lines (creating or upgrading its database tables) are not news; warnings are.
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    # Reopening a run downloads its three files; a progress bar per file is noise in a notebook.
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


def apply_offline_defaults() -> None:
    """Set :data:`OFFLINE_DEFAULTS` for every variable the user has not set."""
    chose_mlflow_level = "MLFLOW_LOGGING_LEVEL" in os.environ
    for key, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if "mlflow" in sys.modules and not chose_mlflow_level:
        # MLflow read its level when it was imported, before the workbench was.
        logging.getLogger("mlflow").setLevel(OFFLINE_DEFAULTS["MLFLOW_LOGGING_LEVEL"])


def ui_environment() -> dict[str, str]:
    """Environment variables the MLflow UI process needs to start offline.

    With litellm installed, ``mlflow ui`` imports it; without a local price map
    that import hangs offline. The printed UI command prefixes these.
    """
    return {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
