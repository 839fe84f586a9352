"""Experiments you run: the runnable :class:`Experiment`, its :class:`ExperimentResult`, YAML files,
and :func:`redteam`, which builds a red-team experiment from another."""

from workbench.core.settings import RetryPolicy, RunSettings, Transport
from workbench.engine.cache import CacheOption, resolve_cache
from workbench.experiment.config import ExperimentConfig, experiment_from_dict, load_experiment
from workbench.experiment.experiment import Experiment
from workbench.experiment.redteam import redteam
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
    "redteam",
    "resolve_cache",
]
