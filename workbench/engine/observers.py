"""Run observers: how the engine tells the world what happens, without importing it.

The engine emits four events: a run started, a case is done (one result row),
the run finished, the run failed. MLflow tracking
(:class:`workbench.tracking.MlflowObserver`), the progress bar
(:class:`ProgressObserver`) and redaction (:class:`Redacted`, which hands an
observer its rows redacted) are observers; anything else that must follow a run
(a live dashboard, a trace exporter, a stream to a database) is one more.

An observer that raises in ``run_finished`` fails the run: the other
observers then get ``run_failed`` (so MLflow runs end FAILED, never RUNNING).

Example:
    >>> class Printer(RunObserver):
    ...     def case_done(self, row):
    ...         print(row["case_id"], row["output"])
    >>> exp.run(observers=[Printer()])  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from workbench.core.redaction import REDACTOR
from workbench.core.result import RunResult
from workbench.core.spec import ExperimentSpec


@dataclass(frozen=True)
class RunStart:
    """What is known when a run starts: the definition, how many calls it plans, and the
    Parquet file its rows stream to (see :mod:`workbench.core.runstore`)."""

    experiment: ExperimentSpec
    n_calls: int
    cases_path: Path | None = None


class RunObserver:
    """Base class of run observers; every event is a no-op unless overridden."""

    def run_started(self, start: RunStart) -> None:
        """Before the first call (after the definition was validated)."""

    def case_done(self, row: Mapping[str, Any]) -> None:
        """One result row is complete: called, scored (or failed). Keep it cheap."""

    def run_finished(self, result: RunResult) -> None:
        """The run completed; ``result`` holds every row and the summary."""

    def run_failed(self, error: BaseException, result: RunResult | None) -> None:
        """The run stopped on ``error``; ``result`` is the partial result when one was built."""


class ProgressObserver(RunObserver):
    """A tqdm progress bar (a widget in Jupyter) over the planned calls."""

    def __init__(self) -> None:
        self.bar: Any = None

    def run_started(self, start: RunStart) -> None:
        self.bar = tqdm(total=start.n_calls, desc=start.experiment.name, unit="call")

    def case_done(self, row: Mapping[str, Any]) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def run_finished(self, result: RunResult) -> None:
        self._close()

    def run_failed(self, error: BaseException, result: RunResult | None) -> None:
        self._close()


class Redacted(RunObserver):
    """Another observer, handed every row through the redaction chain first.

    Rows hold what the model saw and said; an observer that sends them out of the
    process (a database, a dashboard, a trace exporter) must get them redacted
    like everything else that leaves. :meth:`workbench.Experiment.run` wraps the
    observers it is given in this. (The MLflow observer redacts at its writer.)
    """

    def __init__(self, observer: RunObserver) -> None:
        self.observer = observer

    def run_started(self, start: RunStart) -> None:
        self.observer.run_started(start)

    def case_done(self, row: Mapping[str, Any]) -> None:
        self.observer.case_done(REDACTOR.data(dict(row)))

    def run_finished(self, result: RunResult) -> None:
        self.observer.run_finished(result)

    def run_failed(self, error: BaseException, result: RunResult | None) -> None:
        self.observer.run_failed(error, result)


class Observers(RunObserver):
    """Several observers as one, called in order."""

    def __init__(self, observers: Sequence[RunObserver]) -> None:
        self.observers = list(observers)

    def run_started(self, start: RunStart) -> None:
        for observer in self.observers:
            observer.run_started(start)

    def case_done(self, row: Mapping[str, Any]) -> None:
        for observer in self.observers:
            observer.case_done(row)

    def run_finished(self, result: RunResult) -> None:
        for observer in self.observers:
            observer.run_finished(result)

    def run_failed(self, error: BaseException, result: RunResult | None) -> None:
        """Every observer hears of the failure, even when one of them fails to handle it
        (that is warned about: the run's own error is the one the caller gets)."""
        for observer in self.observers:
            try:
                observer.run_failed(error, result)
            except Exception as exc:
                warnings.warn(
                    f"{type(observer).__name__} failed while closing a failed run: {exc!r}",
                    RuntimeWarning,
                    stacklevel=2,
                )
