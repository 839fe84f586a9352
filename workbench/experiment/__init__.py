"""Experiments you run: the runnable :class:`Experiment`, its :class:`ExperimentResult`, YAML files,
and past runs reopened from MLflow (:func:`load_run`), and :func:`redteam`, which builds a red-team
experiment from another."""

from workbench.core.settings import RetryPolicy, RunSettings, Transport
from workbench.engine.cache import CacheOption
from workbench.engine.cache_choice import resolve_cache
from workbench.experiment.baseline import AgainstBaseline, run_against_baseline
from workbench.experiment.config import ExperimentConfig, experiment_from_dict, load_experiment
from workbench.experiment.experiment import Experiment
from workbench.experiment.redteam import redteam
from workbench.experiment.result import ExperimentResult
from workbench.experiment.stored import load_run

__all__ = [
    "AgainstBaseline",
    "CacheOption",
    "Experiment",
    "ExperimentConfig",
    "ExperimentResult",
    "RetryPolicy",
    "RunSettings",
    "Transport",
    "experiment_from_dict",
    "load_experiment",
    "load_run",
    "redteam",
    "resolve_cache",
    "run_against_baseline",
]
