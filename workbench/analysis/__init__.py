"""Honest statistics on results: paired comparisons, power and sample size, multiplicity,
pass@k, Pareto frontiers, per-field tables, retrieval scored without a model, the ship / don't-ship
gate, sequential tests that stop a run early, conversation-level pass rates, red-team rates (attack
success per category and strategy), and production: drift reports and feedback that becomes test cases."""

from workbench.analysis.compare import Comparison, ScorerComparison, compare, compare_many, compare_results
from workbench.analysis.conversations import ConversationReport, conversation_report
from workbench.analysis.drift import DriftReport, drift_report
from workbench.analysis.feedback import FeedbackCases, feedback_cases
from workbench.analysis.fields import field_report
from workbench.analysis.gate import GateResult, gate
from workbench.analysis.pareto import cheapest_meeting, pareto_frontier
from workbench.analysis.power import min_detectable_diff, sample_size
from workbench.analysis.redteam import RedTeamReport, redteam_report
from workbench.analysis.retrieval_eval import RetrievalReport, retrieval_report
from workbench.analysis.sequential import Sequential

__all__ = [
    "Comparison",
    "ConversationReport",
    "DriftReport",
    "FeedbackCases",
    "GateResult",
    "RedTeamReport",
    "RetrievalReport",
    "ScorerComparison",
    "Sequential",
    "cheapest_meeting",
    "compare",
    "compare_many",
    "compare_results",
    "conversation_report",
    "drift_report",
    "feedback_cases",
    "field_report",
    "gate",
    "min_detectable_diff",
    "pareto_frontier",
    "redteam_report",
    "retrieval_report",
    "sample_size",
]
