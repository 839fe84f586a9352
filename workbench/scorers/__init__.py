"""Scorers: small configured objects with one ``score`` method, and the context they read.

Built-in scorers cover text, JSON, classification and structured extraction
(per-field match, hallucination); :func:`scorer` turns a function into one.
MLflow GenAI scorers work both ways (:func:`from_mlflow_scorer`, :func:`to_mlflow_scorer`).
Tool calls are checked BFCL-style (:class:`ToolCallMatch`). RAG: retrieval metrics
(:class:`RecallAtK`, :class:`PrecisionAtK`, :class:`MRR`, :class:`NDCGAtK`), citations and refusals;
faithfulness and answer relevance, which may call a judge, are in :mod:`workbench.judge`.
Domain scorers (safety) belong here too, one module per family.
"""

from workbench.scorers.base import SCORER_TYPES, BaseScorer, Score, accepts_context, run_scorer, scorer_from_spec
from workbench.scorers.citations import CitationCorrectness
from workbench.scorers.classification import LabelMatch
from workbench.scorers.context import ModelCaller, ScoringContext
from workbench.scorers.extraction import FieldMatch
from workbench.scorers.function import FunctionScorer, scorer
from workbench.scorers.hallucination import Hallucination
from workbench.scorers.json import JsonSchemaValid, JsonValid
from workbench.scorers.mlflow_interop import MlflowScorer, from_mlflow_scorer, to_mlflow_scorer
from workbench.scorers.refusal import RefusalCorrectness
from workbench.scorers.retrieval_metrics import MRR, NDCGAtK, PrecisionAtK, RecallAtK
from workbench.scorers.safety import AttackResisted, CanaryKept, CleanUtility
from workbench.scorers.safety_pii import NoPiiLeak
from workbench.scorers.text import Contains, ExactMatch, RegexMatch
from workbench.scorers.tools import ToolCallMatch

__all__ = [
    "MRR",
    "SCORER_TYPES",
    "AttackResisted",
    "BaseScorer",
    "CanaryKept",
    "CitationCorrectness",
    "CleanUtility",
    "Contains",
    "ExactMatch",
    "FieldMatch",
    "FunctionScorer",
    "Hallucination",
    "JsonSchemaValid",
    "JsonValid",
    "LabelMatch",
    "MlflowScorer",
    "ModelCaller",
    "NDCGAtK",
    "NoPiiLeak",
    "PrecisionAtK",
    "RecallAtK",
    "RefusalCorrectness",
    "RegexMatch",
    "Score",
    "ScoringContext",
    "ToolCallMatch",
    "accepts_context",
    "from_mlflow_scorer",
    "run_scorer",
    "scorer",
    "scorer_from_spec",
    "to_mlflow_scorer",
]
