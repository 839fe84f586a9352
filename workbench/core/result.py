"""What a run produced, as data: every case, a summary per variant x model, and where it was logged.

:class:`RunResult` is what the engine returns and the tracker logs. Users get
its subclass :class:`workbench.ExperimentResult`, which adds comparisons,
side-by-side views and verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from workbench.core.spec import ExperimentSpec


@dataclass
class RunResult:
    """Everything one run produced.

    Attributes:
        name: The experiment's name.
        cases: One row per case x variant x model x repeat (see :mod:`workbench.core.schema`).
        summary: One row per variant x model (see :func:`workbench.engine.summary.summarize`).
        experiment: The definition that was run.
        run_id: MLflow parent run id, when logged.
        tracking_uri: Where that run lives.
        notes: Caveats worth reading (unknown prices, errors...).
        calls_made: Model calls this run actually made (cache hits excluded).
        timings: Wall-clock seconds of the run's phases (``calls_s``, ``mlflow_s``).
    """

    name: str
    cases: pd.DataFrame
    summary: pd.DataFrame
    experiment: ExperimentSpec
    run_id: str | None = None
    tracking_uri: str | None = None
    notes: list[str] = field(default_factory=list)
    calls_made: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def scorer_names(self) -> list[str]:
        return self.experiment.scorer_names
