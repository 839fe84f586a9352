"""Where the project lives: its root, the folder runs write their cases to, and the MLflow store."""

from __future__ import annotations

import os
from pathlib import Path

_MARKERS = ("pyproject.toml", ".git", "mlruns")


def project_root(start: str | Path | None = None) -> Path:
    """The nearest ancestor of ``start`` (default: the working directory) that
    holds ``pyproject.toml``, ``.git`` or ``mlruns/``; ``start`` itself if none.

    Notebooks run from ``notebooks/``, so this finds the project from there too.
    """
    here = Path(start or os.getcwd()).resolve()
    for candidate in (here, *here.parents):
        if any((candidate / marker).exists() for marker in _MARKERS):
            return candidate
    return here


def resolve(path: str | Path) -> Path:
    """``path`` as given if it exists, else relative to the project root.

    So ``"experiments/sentiment.yaml"`` works from the project and from ``notebooks/``.
    """
    given = Path(path)
    if given.is_absolute() or given.exists():
        return given
    return project_root() / given


def runs_dir() -> Path:
    """Where runs keep their cases: ``$WORKBENCH_RUNS`` if set, else ``.cache/workbench/runs`` in the project.

    Git-ignored, like the response cache next to it.
    """
    override = os.environ.get("WORKBENCH_RUNS")
    if override:
        return Path(override)
    return project_root() / ".cache" / "workbench" / "runs"


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the project's ``mlruns/mlflow.db`` (created if missing)."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    store = project_root() / "mlruns"
    store.mkdir(exist_ok=True)
    return f"sqlite:///{store / 'mlflow.db'}"
