"""What a run produced, as data: every case, a summary per variant x model, and where it was logged.

:class:`RunResult` is what the engine returns and the tracker logs. Users get
its subclass :class:`workbench.ExperimentResult`, which adds comparisons,
side-by-side views and verdicts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.core.runstore import CasesFile, Where
from workbench.core.spec import ExperimentSpec


@dataclass(frozen=True)
class EarlyStop:
    """What sequential monitoring (``run(stop_early=...)``) decided, as data for notes and MLflow.

    Built by :class:`workbench.analysis.sequential.SequentialMonitor`; the method and its
    references are in that module.

    Attributes:
        stopped: The run stopped before its last look (calls were not started).
        decision: ``"benefit"``, ``"harm"``, ``"futility"``, or None (nothing decided).
        look: The look that decided, or the last look taken (1-based; 0: none taken).
        looks: Looks planned.
        n_cases: Complete cases at that look.
        n_scored: Of them, cases scored on both sides (the statistic's n).
        n_planned_cases: Cases in the dataset.
        metric: The scorer decided on.
        baseline: The baseline variant.
        candidate: The candidate variant.
        model: The model decided on.
        diff: Mean paired difference at that look, candidate minus baseline.
        z: The look's statistic on the normal scale.
        boundary: The look's two-sided z boundary.
        ci_low: Low end of the look's repeated confidence interval.
        ci_high: High end.
        alpha: Overall two-sided false-positive rate.
        alpha_spent: Alpha spent up to that look.
        min_detectable_diff: Futility margin (None: no futility stop).
        calls_planned: Calls a full run makes.
        calls_run: Calls this run ran (cache hits included).
        calls_saved: ``calls_planned - calls_run``.
        method: The method, in words.
        note: The sentence the result's notes show.
    """

    stopped: bool
    decision: str | None
    look: int
    looks: int
    n_cases: int
    n_scored: int
    n_planned_cases: int
    metric: str
    baseline: str
    candidate: str
    model: str
    diff: float
    z: float
    boundary: float
    ci_low: float
    ci_high: float
    alpha: float
    alpha_spent: float
    min_detectable_diff: float | None
    calls_planned: int
    calls_run: int
    calls_saved: int
    method: str
    note: str

    def to_dict(self) -> dict[str, Any]:
        """The fields as a flat dict (for MLflow tags and metrics)."""
        return asdict(self)


@dataclass
class RunResult:
    """Everything one run produced.

    The rows live in the run's Parquet file (:mod:`workbench.core.runstore`):
    :attr:`cases` reads all of them on first use and keeps them; :meth:`read_cases`
    reads only the columns and rows asked for.

    Attributes:
        name: The experiment's name.
        cases_file: The run's ``cases.parquet``: one row per case x variant x model x repeat
            (see :mod:`workbench.core.schema`).
        summary: One row per variant x model (see :func:`workbench.engine.summary.summarize`).
        experiment: The definition that was run.
        run_id: MLflow parent run id, when logged.
        tracking_uri: Where that run lives.
        notes: Caveats worth reading (unknown prices, errors...).
        calls_made: Model calls this run actually made (cache hits excluded).
        timings: Wall-clock seconds of the run's phases (``calls_s``, ``mlflow_s``).
        early_stop: What ``run(stop_early=...)`` decided; None without it.
        picked_variant: For a run reopened by an alias or a variant's own run id
            (:func:`workbench.load_run`), that variant: the side ``compare_results`` takes.
    """

    name: str
    cases_file: CasesFile
    summary: pd.DataFrame
    experiment: ExperimentSpec
    run_id: str | None = None
    tracking_uri: str | None = None
    notes: list[str] = field(default_factory=list)
    calls_made: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    early_stop: EarlyStop | None = None
    picked_variant: str | None = None

    @property
    def cases(self) -> pd.DataFrame:
        """Every row, in plan order: read from the run's file on first use, then kept.

        At 100,000 cases and more, prefer :meth:`read_cases` with the columns you need.
        """
        return self.cases_file.frame()

    @property
    def cases_path(self) -> Path:
        """The run's ``cases.parquet``."""
        return self.cases_file.path

    @property
    def n_rows(self) -> int:
        """Rows of the results table (calls run), without reading them."""
        return self.cases_file.num_rows

    def read_cases(self, columns: Sequence[str] | None = None, where: Where = None) -> pd.DataFrame:
        """Only the columns and rows asked for, in plan order, read from the run's file.

        Args:
            columns: Column names (default: all).
            where: Which rows: a dict, ``{"variant": "few_shot"}`` (equal to a value),
                ``{"model": ["a", "b"]}`` (any of these), ``{"error": None}`` (missing), keys
                and-ed; or a pyarrow compute expression, e.g.
                ``pc.field("score.label_match") < 0.5`` (``import pyarrow.compute as pc``).

        Example:
            >>> result.read_cases(["case_id", "output"], where={"variant": "few_shot", "error": None})  # doctest: +SKIP
        """
        return self.cases_file.read(columns, where)

    def iter_cases(
        self, columns: Sequence[str] | None = None, where: Where = None, *, batch_rows: int = 50_000
    ) -> Iterator[pd.DataFrame]:
        """:meth:`read_cases` in frames of about ``batch_rows`` rows, holding one at a time."""
        return self.cases_file.batches(columns, where, batch_rows=batch_rows)

    @property
    def scorer_names(self) -> list[str]:
        return self.experiment.scorer_names
