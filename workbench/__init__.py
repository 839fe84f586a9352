"""Prompt Workbench: define prompt variants, run A/B experiments on any model
through litellm (or the embedded local model), score them, log to MLflow.

The package is layered, each layer importing only from those below it
(checked by import-linter, see ``pyproject.toml``)::

    cli                 the ``workbench`` command
    notebook            playground and review widgets
    experiment          Experiment (run it), ExperimentResult, YAML files
    tracking            MLflow: the run observer, the one writer, reports
    views               charts, comparison plots, side by side
    analysis            paired statistics, power, multiplicity, gate
    judge               LLM judges, pairwise preference, judge-human agreement
    engine              planning, the call path, cache, retries, runner, observers
    scorers | providers scorers and their context | litellm, local model, HTTP transport
    core                variant, dataset, spec, results schema, labels, errors, redaction, HTML
    util                async, offline defaults, paths

Example:
    >>> import workbench as wb
    >>> exp = wb.load_experiment("experiments/sentiment.yaml")  # doctest: +SKIP
    >>> result = exp.run()  # doctest: +SKIP
    >>> result.summary  # doctest: +SKIP
"""

from workbench.util.env import apply_offline_defaults

# Before anything imports litellm or MLflow: no price-map download, no telemetry.
apply_offline_defaults()

from workbench.analysis import (  # noqa: E402
    Comparison,
    ConversationReport,
    DriftReport,
    FeedbackCases,
    GateResult,
    RedTeamReport,
    RetrievalReport,
    Sequential,
    cheapest_meeting,
    compare,
    compare_many,
    compare_results,
    conversation_report,
    drift_report,
    feedback_cases,
    field_report,
    gate,
    min_detectable_diff,
    pareto_frontier,
    redteam_report,
    retrieval_report,
    sample_size,
)
from workbench.attacks.strategies import STRATEGIES  # noqa: E402
from workbench.core.dataset import Dataset  # noqa: E402
from workbench.core.exceptions import (  # noqa: E402
    BudgetExceededError,
    ConfigError,
    DatasetError,
    MissingVariablesError,
    ModelError,
    RetrievalError,
    RunError,
    ScorerError,
    TemplateError,
    TooManyErrorsError,
    UsageError,
    WorkbenchError,
)
from workbench.core.outputs import ToolCall  # noqa: E402
from workbench.core.production_log import ProductionLog  # noqa: E402
from workbench.core.redaction import REDACTOR, Redactor  # noqa: E402
from workbench.core.retrieval_spec import Retrieval  # noqa: E402
from workbench.core.routing import RouterGroup  # noqa: E402
from workbench.core.schema import SuccessRule  # noqa: E402
from workbench.core.settings import RetryPolicy, RunSettings  # noqa: E402
from workbench.core.variant import PromptVariant  # noqa: E402
from workbench.engine import ResponseCache, RunObserver  # noqa: E402
from workbench.engine.ray_executor import RayExecutor  # noqa: E402
from workbench.experiment import (  # noqa: E402
    AgainstBaseline,
    Experiment,
    ExperimentConfig,
    ExperimentResult,
    experiment_from_dict,
    load_experiment,
    load_run,
    redteam,
    run_against_baseline,
)
from workbench.judge import (  # noqa: E402
    AnswerRelevance,
    Faithfulness,
    JudgeAgreement,
    LLMJudge,
    PairwiseJudge,
    PairwisePreference,
    judge_agreement,
    pairwise_preference,
)
from workbench.notebook import Playground, Review, playground, review  # noqa: E402
from workbench.optimize import (  # noqa: E402
    Edit,
    FewShot,
    ModelProposer,
    OptimizeResult,
    ParamSweep,
    Reflect,
    ScriptedProposer,
    optimize,
    split_dataset,
)
from workbench.providers.local import DEFAULT_LOCAL_MODEL, register_local_provider  # noqa: E402
from workbench.scorers import (  # noqa: E402
    MRR,
    AttackResisted,
    BaseScorer,
    CanaryKept,
    CitationCorrectness,
    CleanUtility,
    Contains,
    ExactMatch,
    FieldMatch,
    Hallucination,
    JsonSchemaValid,
    JsonValid,
    LabelMatch,
    NDCGAtK,
    NoPiiLeak,
    PrecisionAtK,
    RecallAtK,
    RefusalCorrectness,
    RegexMatch,
    Score,
    ScoringContext,
    ToolCallMatch,
    from_mlflow_scorer,
    scorer,
    to_mlflow_scorer,
)
from workbench.tracking import (  # noqa: E402
    Report,
    default_tracking_uri,
    human_labels_from_mlflow,
    log_drift_report,
    run_report,
    set_alias,
    ui_command,
)
from workbench.tracking import list_runs as runs  # noqa: E402
from workbench.views import (  # noqa: E402
    SideBySide,
    charts_for,
    plot_attack_heatmap,
    plot_confusion,
    plot_cost_quality,
    plot_diff,
    plot_drift,
    plot_drift_metric,
    plot_feedback,
    plot_flips,
    plot_latency,
    plot_means,
    plot_scores,
)

register_local_provider()

__all__ = [
    "AgainstBaseline",
    "AnswerRelevance",
    "AttackResisted",
    "BaseScorer",
    "BudgetExceededError",
    "CanaryKept",
    "CitationCorrectness",
    "CleanUtility",
    "Comparison",
    "ConfigError",
    "Contains",
    "ConversationReport",
    "DEFAULT_LOCAL_MODEL",
    "Dataset",
    "DatasetError",
    "DriftReport",
    "Edit",
    "ExactMatch",
    "Experiment",
    "ExperimentConfig",
    "ExperimentResult",
    "Faithfulness",
    "FeedbackCases",
    "FewShot",
    "FieldMatch",
    "GateResult",
    "Hallucination",
    "JsonSchemaValid",
    "JsonValid",
    "JudgeAgreement",
    "LLMJudge",
    "LabelMatch",
    "MRR",
    "MissingVariablesError",
    "ModelError",
    "ModelProposer",
    "NDCGAtK",
    "NoPiiLeak",
    "OptimizeResult",
    "PairwiseJudge",
    "PairwisePreference",
    "ParamSweep",
    "Playground",
    "PrecisionAtK",
    "ProductionLog",
    "PromptVariant",
    "REDACTOR",
    "RayExecutor",
    "RecallAtK",
    "RedTeamReport",
    "Redactor",
    "Reflect",
    "RefusalCorrectness",
    "RegexMatch",
    "Report",
    "ResponseCache",
    "Retrieval",
    "RetrievalError",
    "RetrievalReport",
    "RetryPolicy",
    "Review",
    "RouterGroup",
    "RunError",
    "RunObserver",
    "RunSettings",
    "STRATEGIES",
    "Score",
    "ScorerError",
    "ScoringContext",
    "ScriptedProposer",
    "Sequential",
    "SideBySide",
    "SuccessRule",
    "TemplateError",
    "TooManyErrorsError",
    "ToolCall",
    "ToolCallMatch",
    "UsageError",
    "WorkbenchError",
    "charts_for",
    "cheapest_meeting",
    "compare",
    "compare_many",
    "compare_results",
    "conversation_report",
    "default_tracking_uri",
    "drift_report",
    "experiment_from_dict",
    "feedback_cases",
    "field_report",
    "from_mlflow_scorer",
    "gate",
    "human_labels_from_mlflow",
    "judge_agreement",
    "load_experiment",
    "load_run",
    "log_drift_report",
    "min_detectable_diff",
    "optimize",
    "pairwise_preference",
    "pareto_frontier",
    "playground",
    "plot_attack_heatmap",
    "plot_confusion",
    "plot_cost_quality",
    "plot_diff",
    "plot_drift",
    "plot_drift_metric",
    "plot_feedback",
    "plot_flips",
    "plot_latency",
    "plot_means",
    "plot_scores",
    "redteam",
    "redteam_report",
    "register_local_provider",
    "retrieval_report",
    "review",
    "run_against_baseline",
    "run_report",
    "runs",
    "sample_size",
    "scorer",
    "set_alias",
    "split_dataset",
    "to_mlflow_scorer",
    "ui_command",
]
