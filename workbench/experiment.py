"""Experiments: prompt variants x models x a dataset (x repeats).

:class:`Experiment` is the object a notebook builds (or loads from YAML with
:func:`workbench.load_experiment`) and runs. Running it calls every model
through litellm (or, with ``RunSettings(transport="openai-compatible")``, straight
to a self-hosted OpenAI-compatible server), scores each output and returns an
:class:`~workbench.result.ExperimentResult`; by default everything is logged
to MLflow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from workbench._async import run_sync
from workbench.cache import ResponseCache
from workbench.dataset import Dataset
from workbench.estimate import Estimate, estimate
from workbench.exceptions import ConfigError
from workbench.result import ExperimentResult
from workbench.retry import RetryPolicy
from workbench.variant import PromptVariant

#: What ``run(cache=...)`` accepts: True (the project's cache), False (none),
#: "refresh" (call again and overwrite), or a ResponseCache.
CacheOption = bool | str | ResponseCache
#: How remote models are called: through litellm, or straight to an OpenAI-compatible server.
Transport = Literal["litellm", "openai-compatible"]
TRANSPORTS: tuple[str, ...] = get_args(Transport)


def resolve_cache(option: CacheOption) -> tuple[ResponseCache | None, bool]:
    """The cache to use and whether to read from it."""
    if option is True:
        return ResponseCache(), True
    if option is False or option is None:
        return None, False
    if option == "refresh":
        return ResponseCache(), False
    if isinstance(option, ResponseCache):
        return option, True
    raise ConfigError(f"cache must be True, False, 'refresh' or a ResponseCache, got {option!r}")


@dataclass(frozen=True)
class RunSettings:
    """How calls are made.

    Args:
        max_concurrency: Calls in flight at once per remote model.
        local_concurrency: Calls in flight at once per local model (a
            llama.cpp context runs one call at a time).
        timeout_s: Per-call timeout, in seconds.
        retry: Retries on rate limits, server errors, timeouts and dropped connections.
        transport: ``"litellm"`` (any provider) or ``"openai-compatible"``: remote
            models go straight to their ``api_base`` over pooled HTTP, for
            self-hosted OpenAI-compatible servers (vLLM, llama.cpp server) fast
            enough that litellm's ~6 ms of CPU per call would be the bottleneck.
            LLM judges still go through litellm. See
            :mod:`workbench.providers.openai_compatible`.
    """

    max_concurrency: int = 16
    local_concurrency: int = 1
    timeout_s: float = 120.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    transport: str = "litellm"

    def __post_init__(self) -> None:
        if self.max_concurrency < 1 or self.local_concurrency < 1:
            raise ConfigError("concurrency settings must be at least 1")
        if self.transport not in TRANSPORTS:
            raise ConfigError(f"transport must be one of {TRANSPORTS}, got {self.transport!r}")


@dataclass
class Experiment:
    """An A/B (or A/B/n) experiment definition.

    Args:
        name: MLflow experiment name and report title.
        variants: The prompt variants to compare (unique names).
        dataset: The cases to run them on.
        models: litellm model strings (``"local/gemma-3-270m"``,
            ``"openai/gpt-4o-mini"``, ``"ollama/llama3"``...).
        scorers: Scorers applied to every output.
        repeats: How many times each case is run per variant x model.
        settings: Concurrency, timeout and retries.
        description: Free text for humans.
        source: The YAML file it was loaded from, if any (the playground saves back to it).

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
    """

    name: str
    variants: Sequence[PromptVariant]
    dataset: Dataset
    models: Sequence[str] = ("local/gemma-3-270m",)
    scorers: Sequence[Any] = ()
    repeats: int = 1
    settings: RunSettings = field(default_factory=RunSettings)
    description: str = ""
    source: str | None = None

    def __post_init__(self) -> None:
        self.variants = list(self.variants)
        self.models = [self.models] if isinstance(self.models, str) else list(self.models)
        self.scorers = list(self.scorers)
        if not self.variants:
            raise ConfigError(f"experiment {self.name!r} has no variants")
        if not self.models:
            raise ConfigError(f"experiment {self.name!r} has no models")
        names = [v.name for v in self.variants]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"experiment {self.name!r} has duplicate variant names {dupes}")
        scorer_names = [s.name for s in self.scorers]
        dupes = sorted({n for n in scorer_names if scorer_names.count(n) > 1})
        if dupes:
            raise ConfigError(f"experiment {self.name!r} has two scorers named {dupes}; give one a `metric_name`")
        if self.repeats < 1:
            raise ConfigError(f"experiment {self.name!r}: repeats must be >= 1, got {self.repeats!r}")

    def with_overrides(
        self,
        *,
        models: Sequence[str] | None = None,
        limit: int | None = None,
        repeats: int | None = None,
        scorers: Sequence[Any] | None = None,
    ) -> Experiment:
        """A copy with other models, fewer cases (the first ``limit``), other repeats or other scorers."""
        return Experiment(
            name=self.name,
            variants=self.variants,
            dataset=self.dataset.head(limit) if limit else self.dataset,
            models=list(models) if models else self.models,
            scorers=self.scorers if scorers is None else scorers,
            repeats=repeats or self.repeats,
            settings=self.settings,
            description=self.description,
            source=self.source,
        )

    @property
    def n_calls(self) -> int:
        """Model calls a full run makes."""
        return len(self.variants) * len(self.models) * len(self.dataset) * self.repeats

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
                nor writes; or pass a :class:`~workbench.cache.ResponseCache`.
            budget_usd: Stop before the next call could bring this run's spend
                past this many dollars; raises
                :class:`~workbench.exceptions.BudgetExceededError` carrying the
                partial result.
            acompletion: The async completion function; ``litellm.acompletion``
                by default. Tests inject fakes here.
        """
        from workbench.runner import execute

        store, read = resolve_cache(cache)
        return await execute(
            self,
            log_to_mlflow=log_to_mlflow,
            tracking_uri=tracking_uri,
            progress=progress,
            acompletion=acompletion,
            cache=store,
            read_cache=read,
            budget_usd=budget_usd,
        )

    def run(
        self,
        *,
        log_to_mlflow: bool = True,
        tracking_uri: str | None = None,
        progress: bool = True,
        cache: CacheOption = True,
        budget_usd: float | None = None,
        acompletion: Callable[..., Any] | None = None,
    ) -> ExperimentResult:
        """Run the experiment and wait for the result. Works inside Jupyter.

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
            )
        )
