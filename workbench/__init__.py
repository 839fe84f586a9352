"""Prompt Workbench: define prompt variants, run A/B experiments on any model
through litellm (or the embedded local model), score them, log to MLflow.

Example:
    >>> import workbench as wb
    >>> exp = wb.load_experiment("experiments/sentiment.yaml")  # doctest: +SKIP
    >>> result = exp.run()  # doctest: +SKIP
    >>> result.summary  # doctest: +SKIP
"""

from workbench._env import apply_offline_defaults

# Before anything imports litellm or MLflow: no price-map download, no telemetry.
apply_offline_defaults()

from workbench.charts import charts_for, plot_confusion, plot_cost_quality, plot_latency  # noqa: E402
from workbench.compare import Comparison, compare, compare_many, compare_results  # noqa: E402
from workbench.config import ExperimentConfig, experiment_from_dict, load_experiment  # noqa: E402
from workbench.dataset import Dataset  # noqa: E402
from workbench.exceptions import (  # noqa: E402
    BudgetExceededError,
    ConfigError,
    DatasetError,
    MissingVariablesError,
    ModelError,
    ScorerError,
    TemplateError,
    WorkbenchError,
)
from workbench.experiment import Experiment, RunSettings  # noqa: E402
from workbench.gate import GateResult, gate  # noqa: E402
from workbench.judge import (  # noqa: E402
    JudgeAgreement,
    LLMJudge,
    PairwiseJudge,
    PairwisePreference,
    judge_agreement,
    pairwise_preference,
)
from workbench.pareto import cheapest_meeting, pareto_frontier  # noqa: E402
from workbench.playground import Playground, playground  # noqa: E402
from workbench.plots import plot_scores  # noqa: E402
from workbench.plots_compare import plot_diff, plot_flips, plot_means  # noqa: E402
from workbench.power import min_detectable_diff, sample_size  # noqa: E402
from workbench.providers.local import DEFAULT_LOCAL_MODEL, register_local_provider  # noqa: E402
from workbench.report import Report, run_report  # noqa: E402
from workbench.result import ExperimentResult  # noqa: E402
from workbench.review import Review, review  # noqa: E402
from workbench.scorers import (  # noqa: E402
    Contains,
    ExactMatch,
    JsonSchemaValid,
    JsonValid,
    LabelMatch,
    RegexMatch,
    Score,
    scorer,
)
from workbench.side_by_side import SideBySide  # noqa: E402
from workbench.tracking import default_tracking_uri, ui_command  # noqa: E402
from workbench.variant import PromptVariant  # noqa: E402

register_local_provider()

__all__ = [
    "BudgetExceededError",
    "Comparison",
    "ConfigError",
    "Contains",
    "DEFAULT_LOCAL_MODEL",
    "Dataset",
    "DatasetError",
    "ExactMatch",
    "Experiment",
    "ExperimentConfig",
    "ExperimentResult",
    "GateResult",
    "JsonSchemaValid",
    "JsonValid",
    "JudgeAgreement",
    "LLMJudge",
    "LabelMatch",
    "MissingVariablesError",
    "ModelError",
    "PairwiseJudge",
    "PairwisePreference",
    "Playground",
    "PromptVariant",
    "RegexMatch",
    "Report",
    "Review",
    "RunSettings",
    "Score",
    "ScorerError",
    "SideBySide",
    "TemplateError",
    "WorkbenchError",
    "charts_for",
    "cheapest_meeting",
    "compare",
    "compare_many",
    "compare_results",
    "default_tracking_uri",
    "experiment_from_dict",
    "gate",
    "judge_agreement",
    "load_experiment",
    "min_detectable_diff",
    "pairwise_preference",
    "pareto_frontier",
    "playground",
    "plot_confusion",
    "plot_cost_quality",
    "plot_diff",
    "plot_flips",
    "plot_latency",
    "plot_means",
    "plot_scores",
    "register_local_provider",
    "review",
    "run_report",
    "sample_size",
    "scorer",
    "ui_command",
]
