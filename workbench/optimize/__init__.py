"""Honest prompt optimisation: search for a better prompt within a budget, and prove it on cases
the search never saw (:func:`optimize`)."""

from workbench.optimize.candidates import Candidate, Proposal
from workbench.optimize.evaluate import Cost, EngineEvaluator, Evaluation, Evaluator, Question
from workbench.optimize.result import OptimizeResult
from workbench.optimize.search import optimize
from workbench.optimize.splits import Splits, split_dataset
from workbench.optimize.strategies import Edit, FewShot, ModelProposer, ParamSweep, Reflect, ScriptedProposer, Strategy

__all__ = [
    "Candidate",
    "Cost",
    "Edit",
    "EngineEvaluator",
    "Evaluation",
    "Evaluator",
    "FewShot",
    "ModelProposer",
    "OptimizeResult",
    "ParamSweep",
    "Proposal",
    "Question",
    "Reflect",
    "ScriptedProposer",
    "Splits",
    "Strategy",
    "optimize",
    "split_dataset",
]
