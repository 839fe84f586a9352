"""Reopen a past run from MLflow as an :class:`~workbench.ExperimentResult`.

The reading is :mod:`workbench.tracking.runs`; this adds the notebook methods
(``compare``, ``side_by_side``, ``verdict``...) to what it rebuilds.
"""

from __future__ import annotations

from workbench.experiment.result import ExperimentResult
from workbench.tracking.runs import read_run


def load_run(run: str, *, experiment: str | None = None, tracking_uri: str | None = None) -> ExperimentResult:
    """A past run, as the result it returned: cases (read lazily), summary, variants, dataset hash.

    Args:
        run: A parent run id (the MLflow UI's "Run ID"), ``runs:/<id>``, a variant's child
            run id (the result then picks that variant), or an alias: ``"production"``
            with ``experiment``, or ``"<experiment>@production"`` (see :func:`workbench.set_alias`).
        experiment: The experiment an alias belongs to.
        tracking_uri: The store; ``MLFLOW_TRACKING_URI`` or the project's ``mlruns/`` by default.
            A remote ``mlflow server`` works the same.

    The run's files are downloaded once into ``<runs>/mlflow/<run id>/``. Its scorers are
    rebuilt from their specs; one that cannot be (a Python function) keeps its recorded
    scores and cannot score anew. The dataset is the cases' recorded inputs, with the hash
    the run was made on.

    Example:
        >>> old = wb.load_run("sentiment@production")  # doctest: +SKIP
        >>> wb.compare_results(old, result, candidate_variant="few_shot")  # doctest: +SKIP
    """
    result, _ = read_run(run, experiment=experiment, tracking_uri=tracking_uri)
    return ExperimentResult.of(result)
