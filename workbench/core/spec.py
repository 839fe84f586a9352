"""What an experiment is: prompt variants x models x a dataset (x repeats), and how to score it.

:class:`ExperimentSpec` is the definition as data, checked when it is built.
The engine runs one, the tracker logs one; users build its runnable subclass
:class:`workbench.Experiment` (which adds ``run()``), in a notebook or from YAML.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.core.dataset import Dataset
from workbench.core.exceptions import ConfigError, UsageError
from workbench.core.routing import RouterGroup
from workbench.core.schema import SuccessRule
from workbench.core.settings import RunSettings
from workbench.core.variant import PromptVariant


@dataclass
class ExperimentSpec:
    """An A/B (or A/B/n) experiment definition.

    Args:
        name: MLflow experiment name and report title.
        variants: The prompt variants to compare (unique names).
        dataset: The cases to run them on.
        models: litellm model strings (``"local/gemma-3-270m"``,
            ``"openai/gpt-4o-mini"``, ``"ollama/llama3"``...), or
            :class:`~workbench.core.routing.RouterGroup` s (several deployments of one model,
            routed by litellm); a group is then known by its name, here and in the results.
        scorers: Scorers applied to every output.
        repeats: How many times each case is run per variant x model.
        settings: Concurrency, timeout, retries, transport, error tolerance.
        description: Free text for humans.
        source: The YAML file it was loaded from, if any (the playground saves back to it).
        success: When a case counts as a success (cost per successful case,
            "failures" filters): the first scorer >= 0.5 by default.
        routers: The router groups among ``models``, by name (filled from ``models``).
    """

    name: str
    variants: Sequence[PromptVariant]
    dataset: Dataset
    models: Sequence[str] = ("local/gemma-3-270m",)  # RouterGroup entries too: see __post_init__
    scorers: Sequence[Any] = ()
    repeats: int = 1
    settings: RunSettings = field(default_factory=RunSettings)
    description: str = ""
    source: str | None = None
    success: SuccessRule = field(default_factory=SuccessRule)
    routers: dict[str, RouterGroup] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.variants = list(self.variants)
        # A RouterGroup among the models is kept in `routers` and named in `models` (which the rest of
        # the package reads as strings); the annotation says str so that code keeps type-checking.
        given: Any = self.models
        models: list[Any] = [given] if isinstance(given, (str, RouterGroup)) else list(given)
        self.routers = dict(self.routers)
        for model in models:
            if isinstance(model, RouterGroup):
                known = self.routers.get(model.name)
                if known is not None and known != model:
                    raise ConfigError(f"experiment {self.name!r} has two router groups named {model.name!r}")
                self.routers[model.name] = model
        self.models = [m.name if isinstance(m, RouterGroup) else m for m in models]
        clash = sorted({m for m in self.models if m in self.routers and self.models.count(m) > 1})
        if clash:
            raise ConfigError(f"experiment {self.name!r}: {clash} name a router group and another model; rename one")
        self.scorers = list(self.scorers)
        for i, scorer in enumerate(self.scorers):
            if not callable(getattr(scorer, "score", None)):
                raise ConfigError(
                    f"experiment {self.name!r}: scorers[{i}] {scorer!r} has no `score` method; use a workbench "
                    "scorer, a function decorated with wb.scorer, or wrap an MLflow scorer with wb.from_mlflow_scorer"
                )
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
        if not isinstance(self.repeats, int) or self.repeats < 1:
            raise ConfigError(f"experiment {self.name!r}: repeats must be >= 1 (a whole number), got {self.repeats!r}")
        if self.success.scorer is not None and self.success.scorer not in scorer_names:
            raise ConfigError(
                f"experiment {self.name!r}: success rule names scorer {self.success.scorer!r}, "
                f"but the scorers are {scorer_names}"
            )

    def model_entries(self) -> list[str | dict[str, Any]]:
        """``models`` as an experiment file writes them: a string, or ``{name, router: {...}}`` for a
        router group (environment variable names, never keys)."""
        entries: list[str | dict[str, Any]] = []
        for model in self.models:
            group = self.routers.get(model)
            if group is None:
                entries.append(model)
            else:
                spec = group.to_spec()
                entries.append({"name": spec.pop("name"), "router": spec})
        return entries

    @property
    def scorer_names(self) -> list[str]:
        return [s.name for s in self.scorers]

    def with_overrides(
        self,
        *,
        models: Sequence[str] | None = None,
        limit: int | None = None,
        repeats: int | None = None,
        scorers: Sequence[Any] | None = None,
        variants: Sequence[str] | None = None,
    ) -> Any:
        """A copy with other models, fewer cases (the first ``limit``), other repeats, other
        scorers, or only the ``variants`` named (in the definition's order).

        ``None`` keeps the definition's value; ``limit`` and ``repeats`` must be whole numbers >= 1.

        Raises:
            UsageError: ``limit`` or ``repeats`` is 0, negative or not a whole number; a
                variant name that is not in the definition.
        """
        kept = list(self.variants)
        if variants is not None:
            names = [v.name for v in self.variants]
            unknown = [n for n in variants if n not in names]
            if unknown or not variants:
                raise UsageError(
                    f"experiment {self.name!r} has no variant(s) {unknown or '(none named)'}; its variants: {names}"
                )
            kept = [v for v in self.variants if v.name in variants]
        for label, value in (("limit", limit), ("repeats", repeats)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise UsageError(
                    f"{label} must be a whole number >= 1, got {value!r}; leave it out to use the "
                    f"experiment's own {'cases' if label == 'limit' else 'repeats'}"
                )
        return dataclasses.replace(
            self,
            dataset=self.dataset if limit is None else self.dataset.head(limit),
            variants=kept,
            models=list(models) if models else self.models,
            scorers=self.scorers if scorers is None else list(scorers),
            repeats=self.repeats if repeats is None else repeats,
        )

    @property
    def n_calls(self) -> int:
        """Model calls a full run makes."""
        return len(self.variants) * len(self.models) * len(self.dataset) * self.repeats
