"""Exceptions raised by the workbench.

Every error the package raises on purpose derives from :class:`WorkbenchError`,
so a notebook can catch them all in one place::

    WorkbenchError
    ├── UsageError            a call was given a bad argument (also a ValueError)
    │   ├── UnknownNameError      no scorer / variant / case of that name (also a KeyError)
    │   └── OutOfRangeError       an index past the end (also an IndexError)
    ├── ConfigError           an experiment definition (YAML file or dict) is invalid
    ├── DatasetError          a dataset file is unreadable or does not fit the variants
    ├── TemplateError         a prompt template is malformed
    │   └── MissingVariablesError   a row lacks variables a template uses
    ├── ScorerError           a scorer is unknown or misconfigured
    ├── RetrievalError        a knowledge base cannot be read or searched, or a retriever misbehaves
    ├── ModelError            a model string or its params cannot be used (unknown provider, no key)
    ├── TrackingError         MLflow was used in a way that cannot work (e.g. logging before a run)
    └── RunError              a run ended without a usable result (partial result kept)
        ├── BudgetExceededError   it stopped at its ``budget_usd``
        ├── TooManyErrorsError    its calls failed more often than ``max_error_rate``
        └── TrackingUnreachableError  it finished, MLflow did not take it (``workbench sync``)

Messages name the bad value with ``!r``, where it came from (file, row, field)
and how to fix it.
"""

from __future__ import annotations

from collections.abc import Iterable


class WorkbenchError(Exception):
    """Base class for every error the workbench raises on purpose."""


class UsageError(WorkbenchError, ValueError):
    """A function was called with an argument it cannot use.

    It is also a :class:`ValueError`, so code written against older versions
    (``except ValueError``) keeps working.
    """


class UnknownNameError(UsageError, KeyError):
    """A scorer, variant or case of that name is not there (also a :class:`KeyError`)."""

    def __str__(self) -> str:  # KeyError would show the message as a repr, quotes and all
        return str(self.args[0]) if self.args else ""


class OutOfRangeError(UsageError, IndexError):
    """An index past the end of what there is (also an :class:`IndexError`)."""


class ConfigError(WorkbenchError):
    """An experiment definition (YAML file or dict) is invalid."""


class DatasetError(WorkbenchError):
    """A dataset cannot be read, or does not provide what the variants need."""


class TemplateError(WorkbenchError):
    """A prompt template cannot be parsed or rendered."""


class MissingVariablesError(TemplateError):
    """A row does not provide every variable a variant's template uses.

    Attributes:
        variant: Name of the variant being rendered.
        missing: Sorted names of the missing variables.
        row: Where the row came from (for example ``"data/x.csv row 17"``).
    """

    def __init__(self, variant: str, missing: Iterable[str], row: str | None = None) -> None:
        self.variant = variant
        self.missing = sorted(missing)
        self.row = row
        names = ", ".join(repr(m) for m in self.missing)
        where = f" for {row}" if row else ""
        super().__init__(
            f"variant {variant!r} needs variable(s) {names} that are missing{where}; "
            "add them to the row (dataset column) or remove them from the template"
        )


class ScorerError(WorkbenchError):
    """A scorer is unknown, misconfigured, or failed on an output."""


class RetrievalError(WorkbenchError):
    """A knowledge base cannot be read or indexed, the ``rag`` extra is missing, or a retriever returned junk."""


class ModelError(WorkbenchError):
    """A model string or its params cannot be used: unknown provider, missing credentials, bad params."""


class TrackingError(WorkbenchError):
    """MLflow logging was used out of order (e.g. a result logged before its run started)."""


class RunError(WorkbenchError):
    """A run ended without a result worth trusting; the partial result is kept.

    Attributes:
        result: The partial :class:`~workbench.experiment.ExperimentResult`.
            Every completed call is also in the response cache, so running
            again resumes where this run stopped.
    """

    def __init__(self, message: str, *, result: object = None) -> None:
        self.result = result
        super().__init__(message)


class BudgetExceededError(RunError):
    """A run stopped before its next call could push the spend past ``budget_usd``."""

    def __init__(self, message: str, *, result: object = None) -> None:
        super().__init__(
            f"run stopped by the {message}. The partial result is on this exception's `.result`; "
            "completed calls are cached, so raising the budget and running again resumes here",
            result=result,
        )


class TooManyErrorsError(RunError):
    """More calls failed than the run's ``max_error_rate`` allows (every call, by default)."""


class TrackingUnreachableError(RunError):
    """The run finished, but MLflow (a team server that is down, say) did not take its results.

    Every row is in the run's folder (``result.cases_path``), which also holds a note of what
    to upload; ``workbench sync <folder>`` logs it once the server is back.
    """
