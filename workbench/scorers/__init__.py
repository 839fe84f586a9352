"""Built-in scorers. Each is a small dataclass with one ``score`` method."""

from workbench.scorers.base import SCORER_TYPES, BaseScorer, Score, run_scorer, scorer_from_spec
from workbench.scorers.classification import LabelMatch
from workbench.scorers.function import FunctionScorer, scorer
from workbench.scorers.json import JsonSchemaValid, JsonValid
from workbench.scorers.text import Contains, ExactMatch, RegexMatch

__all__ = [
    "SCORER_TYPES",
    "BaseScorer",
    "Contains",
    "ExactMatch",
    "FunctionScorer",
    "JsonSchemaValid",
    "JsonValid",
    "LabelMatch",
    "RegexMatch",
    "Score",
    "run_scorer",
    "scorer",
    "scorer_from_spec",
]
