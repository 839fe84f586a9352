"""Experiment definitions in YAML, validated with pydantic.

A file under ``experiments/`` describes the dataset, the variants, the
models and the scorers; :func:`load_experiment` turns it into an
:class:`~workbench.experiment.experiment.Experiment`. Unknown keys are errors (a typo
like ``promt:`` must not be silently ignored), and every error names the file
and the key. Relative dataset paths are relative to the YAML file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError

from workbench.core.dataset import Dataset
from workbench.core.exceptions import ConfigError, TemplateError, UsageError
from workbench.core.redaction import REDACTOR, is_secret
from workbench.core.retrieval_spec import DEFAULT_EMBEDDING_MODEL
from workbench.core.routing import Deployment, RouterGroup, RoutingStrategy
from workbench.core.schema import SuccessRule
from workbench.core.settings import Executor, RetryPolicy, RunSettings, Transport
from workbench.core.variant import PromptVariant
from workbench.experiment.experiment import Experiment
from workbench.experiment.redteam import redteam
from workbench.providers.local import DEFAULT_LOCAL_MODEL
from workbench.scorers.base import scorer_from_spec
from workbench.util.paths import resolve


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetConfig(_Strict):
    path: str
    id_column: str = "id"
    expected: list[str] = Field(default_factory=list)
    limit: int | None = Field(default=None, ge=1)


class RetrievalConfig(_Strict):
    """A variant's ``retrieval:`` block (see :class:`~workbench.core.retrieval_spec.Retrieval`)."""

    kb: str | None = None
    retriever: str = "bm25"
    k: int = Field(default=5, ge=1)
    chunk_size: int = Field(default=128, ge=1)
    overlap: int = Field(default=32, ge=0)
    query: str = "{{ question }}"
    column: str | None = None
    embedding_model: str = DEFAULT_EMBEDDING_MODEL


class VariantConfig(_Strict):
    name: str
    prompt: str
    system: str | None = None
    examples: list[dict[str, Any]] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)
    description: str = ""
    history: str | None = None
    retrieval: RetrievalConfig | None = None
    images: list[str] = Field(default_factory=list)


class SettingsConfig(_Strict):
    max_concurrency: int = Field(default=16, ge=1)
    local_concurrency: int = Field(default=1, ge=1)
    timeout_s: float = Field(default=120.0, gt=0)
    max_attempts: int = Field(default=6, ge=1)
    transport: Transport = "litellm"
    max_error_rate: float = Field(default=1.0, ge=0, le=1)
    traces: bool = True
    executor: Executor = "local"


class SuccessConfig(_Strict):
    scorer: str | None = None
    threshold: float = 0.5


class RedteamConfig(_Strict):
    """A red-team experiment (``redteam:``): the attacks, strategies and clean cases (paths relative to the file)."""

    suite: str = "../data/redteam"
    clean: str | None = "../data/marketplace_support.jsonl"
    strategies: list[str] = Field(default_factory=lambda: ["none"], min_length=1)
    seed: int | str = 0
    categories: list[str] | None = None
    per_category: int | None = Field(default=None, ge=1)


class RouterConfig(_Strict):
    """A routed model's ``router:`` block (see :class:`~workbench.core.routing.RouterGroup`)."""

    deployments: list[Deployment] = Field(min_length=1)
    routing_strategy: RoutingStrategy | None = None
    num_retries: int | None = Field(default=None, ge=0)
    cooldown_s: float | None = Field(default=None, ge=0)


class RoutedModelConfig(_Strict):
    """A model entry that is a router group: ``{name: support-gpt, router: {deployments: [...]}}``."""

    name: str = Field(min_length=1)
    router: RouterConfig


#: A ``models:`` entry: a litellm model string, or a routed model (told apart by type, so an
#: error in a routed model is reported once, under its own keys).
ModelEntry = Annotated[
    Annotated[str, Tag("string")] | Annotated[RoutedModelConfig, Tag("routed")],
    Discriminator(lambda v: "string" if isinstance(v, str) else "routed"),
]


class ExperimentConfig(_Strict):
    """Schema of an experiment YAML file: ``dataset`` or ``redteam`` (which builds the cases)."""

    name: str
    description: str = ""
    dataset: DatasetConfig | None = None
    redteam: RedteamConfig | None = None
    variants: list[VariantConfig] = Field(min_length=1)
    models: list[ModelEntry] = Field(default_factory=lambda: list[ModelEntry]([DEFAULT_LOCAL_MODEL]), min_length=1)
    scorers: list[dict[str, Any]] = Field(default_factory=list)
    repeats: int = Field(default=1, ge=1)
    settings: SettingsConfig = Field(default_factory=SettingsConfig)
    success: SuccessConfig = Field(default_factory=SuccessConfig)


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part in ("string", "routed"):  # the tag of a models: entry, not a key of the file
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = [f"{source} is not a valid experiment definition:"]
    for error in exc.errors():
        key = _key_path(error["loc"])
        if error["type"] == "extra_forbidden":
            lines.append(f"  key {key!r}: unknown key; check its spelling (see ExperimentConfig)")
        elif error["type"] == "missing":
            lines.append(f"  key {key!r}: required but missing")
        elif any(is_secret(part) for part in error["loc"]):  # e.g. api_key_env holding a key: not shown
            lines.append(f"  key {key!r}: {error['msg'].removeprefix('Value error, ')}")
        else:
            lines.append(f"  key {key!r}: {error['msg']} (got {REDACTOR.data(error.get('input'), pii=False)!r})")
    return "\n".join(lines)


_NO_DATASET = "\n  key 'dataset': required but missing (or 'redteam:', for a red-team experiment)"


def experiment_from_dict(data: Any, *, source: str = "<dict>", base_dir: str | Path | None = None) -> Experiment:
    """Build an :class:`Experiment` from parsed YAML/JSON data.

    Raises:
        ConfigError: invalid structure, naming ``source`` and the key.
        DatasetError, ScorerError, TemplateError: bad dataset, scorer or template.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must hold a mapping (name:, dataset:, variants: ...), got {type(data).__name__}")
    no_cases = "dataset" not in data and "redteam" not in data
    try:
        config = ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc) + (_NO_DATASET if no_cases else "")) from None
    if no_cases:
        raise ConfigError(f"{source} is not a valid experiment definition:{_NO_DATASET}")
    if config.dataset is not None and config.redteam is not None:
        raise ConfigError(
            f"{source}: has both 'dataset' and 'redteam'; a red-team experiment builds its own cases, drop 'dataset'"
        )
    base = Path(base_dir) if base_dir else Path.cwd()
    if config.dataset is not None:
        dataset = _dataset(config.dataset, base)
    else:  # a stand-in: redteam() below replaces it with the attacks and clean cases
        dataset = Dataset.from_records([{"id": "_", "message": "-", "context": "-"}])
    variants = []
    for i, variant in enumerate(config.variants):
        try:
            variants.append(PromptVariant(**variant.model_dump(exclude_unset=True)))
        except (TemplateError, ConfigError) as exc:
            raise ConfigError(f"{source} key 'variants[{i}]': {exc}") from exc
    scorers = [scorer_from_spec(spec, where=f"{source} key 'scorers[{i}]'") for i, spec in enumerate(config.scorers)]
    routed = [_model(entry, i, source) for i, entry in enumerate(config.models) if not isinstance(entry, str)]
    models = [entry if isinstance(entry, str) else entry.name for entry in config.models]
    experiment = Experiment(
        name=config.name,
        description=config.description,
        variants=variants,
        dataset=dataset,
        models=models,
        routers={group.name: group for group in routed},
        scorers=scorers,
        repeats=config.repeats,
        settings=RunSettings(
            max_concurrency=config.settings.max_concurrency,
            local_concurrency=config.settings.local_concurrency,
            timeout_s=config.settings.timeout_s,
            retry=RetryPolicy(max_attempts=config.settings.max_attempts),
            transport=config.settings.transport,
            max_error_rate=config.settings.max_error_rate,
            traces=config.settings.traces,
            executor=config.settings.executor,
        ),
        success=SuccessRule(scorer=config.success.scorer, threshold=config.success.threshold),
    )
    if config.redteam is None:
        return experiment
    return _redteam(experiment, config.redteam, base, source)


def _model(entry: RoutedModelConfig, index: int, source: str) -> RouterGroup:
    """A routed ``models:`` entry as a router group (checked as a whole: duplicates, limits)."""
    try:
        return RouterGroup(name=entry.name, **entry.router.model_dump(exclude_unset=True))
    except ConfigError as exc:
        raise ConfigError(f"{source} key 'models[{index}]': {exc}") from None


def _dataset(config: DatasetConfig, base: Path) -> Dataset:
    data_path = Path(config.path)
    if not data_path.is_absolute():
        data_path = base / data_path
    dataset = Dataset.load(data_path, id_column=config.id_column, expected=config.expected)
    return dataset.head(config.limit) if config.limit else dataset


def _redteam(experiment: Experiment, config: RedteamConfig, base: Path, source: str) -> Experiment:
    """The red-team experiment of a file with ``redteam:``; its own scorers come after the safety scorers."""

    def path(value: str) -> Path:
        return Path(value) if Path(value).is_absolute() else base / value

    try:
        built = redteam(
            experiment,
            suite=path(config.suite),
            clean=path(config.clean) if config.clean else None,
            strategies=config.strategies,
            seed=config.seed,
            categories=config.categories,
            per_category=config.per_category,
            name=experiment.name,
        )
    except (ConfigError, UsageError) as exc:
        raise ConfigError(f"{source} key 'redteam': {exc}") from exc
    return built.with_overrides(scorers=[*built.scorers, *experiment.scorers])


def load_experiment(path: str | Path) -> Experiment:
    """Load an experiment YAML file (relative paths also resolve from the project root).

    Example:
        >>> exp = load_experiment("experiments/sentiment.yaml")  # doctest: +SKIP
        >>> result = exp.run()  # doctest: +SKIP
    """
    file = resolve(path)
    if not file.exists():
        raise ConfigError(f"experiment file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file} is not valid YAML: {exc}") from exc
    experiment = experiment_from_dict(data, source=str(path), base_dir=file.parent)
    experiment.source = str(file.resolve())
    return experiment
