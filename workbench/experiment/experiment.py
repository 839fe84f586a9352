"""Experiments you can run: variants x models x a dataset (x repeats), scored and logged.

:class:`Experiment` is the object a notebook builds (or loads from YAML with
:func:`workbench.load_experiment`) and runs. Running it calls every model
through litellm (or, with ``RunSettings(transport="openai-compatible")``, straight
to a self-hosted OpenAI-compatible server), scores each output and returns an
:class:`~workbench.experiment.result.ExperimentResult`; by default it is logged
to MLflow and a progress bar shows while it runs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.analysis.sequential import Sequential
from workbench.core.spec import ExperimentSpec
from workbench.engine.cache import CacheOption
from workbench.engine.cache_choice import resolve_cache
from workbench.engine.calls import CallPath
from workbench.engine.estimate import Estimate, estimate
from workbench.engine.observers import ProgressObserver, Redacted, RunObserver
from workbench.engine.ray_executor import RayExecutor
from workbench.engine.runner import Executor, execute
from workbench.experiment.result import ExperimentResult
from workbench.scorers.mlflow_interop import as_workbench_scorer
from workbench.tracking.tracker import MlflowObserver
from workbench.util.aio import run_sync


@dataclass
class Experiment(ExperimentSpec):
    """An A/B (or A/B/n) experiment you can run.

    Its fields are :class:`~workbench.core.spec.ExperimentSpec`'s: ``name``,
    ``variants``, ``dataset``, ``models``, ``scorers``, ``repeats``, ``settings``
    (concurrency, timeout, retries, transport, ``max_error_rate``), ``description``,
    ``source`` (the YAML file it came from) and ``success`` (a
    :class:`~workbench.core.schema.SuccessRule`).

    Example:
        >>> exp = Experiment(  # doctest: +SKIP
        ...     name="sentiment",
        ...     variants=[zero_shot, few_shot],
        ...     dataset=Dataset.load("data/sentiment.csv", expected=["label"]),
        ...     models=["local/gemma-3-270m"],
        ...     scorers=[LabelMatch(labels=["positive", "negative"])],
        ... )
        >>> result = exp.run()  # doctest: +SKIP
        >>> result.summary  # doctest: +SKIP

    An MLflow GenAI scorer in ``scorers`` (``@mlflow.genai.scorer`` or a built-in one)
    is wrapped by :func:`workbench.from_mlflow_scorer` as it comes in.
    """

    def __post_init__(self) -> None:
        self.scorers = [as_workbench_scorer(s) for s in self.scorers]
        super().__post_init__()

    def estimate(self, *, cache: CacheOption = True) -> Estimate:
        """Calls, tokens and expected cost of :meth:`run`, minus what the cache holds. Calls nothing."""
        store, read = resolve_cache(cache)
        return estimate(self, cache=store if read else None)

    async def run_async(
        self,
        *,
        log_to_mlflow: bool = True,
        tracking_uri: str | None = None,
        progress: bool = True,
        cache: CacheOption = True,
        budget_usd: float | None = None,
        acompletion: Callable[..., Any] | None = None,
        observers: Sequence[RunObserver] = (),
        stop_early: Sequential | None = None,
        source: str | None = None,
        executor: Executor | None = None,
    ) -> ExperimentResult:
        """Run the experiment; the async core behind :meth:`run`.

        Args:
            log_to_mlflow: Log a parent run and one child run per variant x model.
            tracking_uri: MLflow tracking URI; defaults to ``MLFLOW_TRACKING_URI``
                or the project's ``mlruns/`` store.
            progress: Show a progress bar (tqdm.auto: a widget in Jupyter).
            cache: ``True`` reads and writes the project's response cache (a
                re-run of unchanged calls is free, and a killed run resumes);
                ``"refresh"`` calls again and overwrites; ``False`` neither reads
                nor writes; or pass a :class:`~workbench.engine.cache.ResponseCache`.
            budget_usd: Stop before the next call could bring this run's spend
                past this many dollars; raises
                :class:`~workbench.core.exceptions.BudgetExceededError` carrying the
                partial result.
            acompletion: The async completion function; ``litellm.acompletion``
                by default. Tests inject fakes here.
            observers: More :class:`~workbench.engine.observers.RunObserver` objects
                to tell of the run's start, every row (redacted, as everything that
                may leave the process) and its end.
            stop_early: A :class:`~workbench.analysis.sequential.Sequential` rule: look at
                the paired difference of two variants while the run goes on and start no
                new call once it is decided (benefit, harm or futility); what was decided
                is ``result.early_stop`` and the first of ``result.notes``.
            source: How the run was started, for MLflow: ``"notebook"``,
                ``"playground"``, ``"report"``, ``"cli"``, ``"script"`` (or a word of
                your own). The parent run is named ``<experiment> · <source>`` and
                tagged ``workbench.source``. By default it is detected: ``"report"``
                inside ``workbench report``, ``"notebook"`` in a Jupyter kernel, else
                ``"script"``.
            executor: Where the calls are made: ``None`` follows ``settings.executor``
                (``"local"``: this process; ``"ray"``: a :class:`~workbench.engine.ray_executor.RayExecutor`
                on ``$RAY_ADDRESS`` or a local cluster); or pass ``RayExecutor(address=..., workers=...)``.
                The run store, MLflow runs and cache come out the same either way.

        Raises:
            BudgetExceededError: the budget stopped the run (partial result on ``.result``).
            TooManyErrorsError: more calls failed than ``settings.max_error_rate`` allows
                (every call, by default); the MLflow run ends FAILED.
        """
        store, read = resolve_cache(cache)
        calls = CallPath(self.settings, acompletion=acompletion, cache=store, read_cache=read)
        chosen: list[RunObserver] = [ProgressObserver()] if progress else []
        if log_to_mlflow:
            chosen.append(MlflowObserver(tracking_uri=tracking_uri, source=source))
        chosen.extend(Redacted(observer) for observer in observers)  # rows leave through them: redacted
        result = await execute(
            self,
            calls=calls,
            observers=chosen,
            budget_usd=budget_usd,
            result_class=ExperimentResult,
            stop_early=stop_early,
            executor=executor if executor is not None else _executor_of(self),
        )
        return result  # type: ignore[return-value]  # built by result_class

    def run(
        self,
        *,
        log_to_mlflow: bool = True,
        tracking_uri: str | None = None,
        progress: bool = True,
        cache: CacheOption = True,
        budget_usd: float | None = None,
        acompletion: Callable[..., Any] | None = None,
        observers: Sequence[RunObserver] = (),
        stop_early: Sequential | None = None,
        source: str | None = None,
        executor: Executor | None = None,
    ) -> ExperimentResult:
        """Run the experiment and wait for the result. Works inside Jupyter's running event loop.

        See :meth:`run_async` for the arguments.
        """
        return run_sync(
            self.run_async(
                log_to_mlflow=log_to_mlflow,
                tracking_uri=tracking_uri,
                progress=progress,
                cache=cache,
                budget_usd=budget_usd,
                acompletion=acompletion,
                observers=observers,
                stop_early=stop_early,
                source=source,
                executor=executor,
            )
        )


def _executor_of(experiment: Experiment) -> Executor | None:
    """The executor ``settings.executor`` names (None: this process)."""
    return _default_ray() if experiment.settings.executor == "ray" else None


@functools.cache
def _default_ray() -> RayExecutor:
    """The process's one default Ray executor: runs with ``executor: ray`` share its worker processes."""
    return RayExecutor()
