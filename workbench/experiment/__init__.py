"""Experiments you run: the runnable :class:`Experiment`, its :class:`ExperimentResult`, and YAML files."""

from workbench.core.settings import RetryPolicy, RunSettings, Transport
from workbench.engine.cache import CacheOption, resolve_cache
from workbench.experiment.config import ExperimentConfig, experiment_from_dict, load_experiment
from workbench.experiment.experiment import Experiment
from workbench.experiment.result import ExperimentResult

__all__ = [
    "CacheOption",
    "Experiment",
    "ExperimentConfig",
    "ExperimentResult",
    "RetryPolicy",
    "RunSettings",
    "Transport",
    "experiment_from_dict",
    "load_experiment",
    "resolve_cache",
]
