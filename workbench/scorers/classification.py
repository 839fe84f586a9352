"""Classification: map free text to one of a fixed set of labels and score it."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from workbench.core.exceptions import ScorerError
from workbench.scorers.base import BaseScorer, Score

#: Prediction recorded when no label can be found in the output.
UNPARSED = "<unparsed>"


@dataclass(frozen=True)
class LabelMatch(BaseScorer):
    """Classification accuracy: 1.0 when the predicted label equals the expected one.

    The prediction is the label mentioned *first* in the output (whole words,
    case-insensitive), so ``" Negative. The buyer..."`` predicts ``negative``.
    Outputs naming no label predict ``"<unparsed>"`` and score 0.

    Per variant x model it also reports accuracy and macro-F1 (scikit-learn);
    :meth:`confusion` gives the confusion matrix.

    Example:
        >>> s = LabelMatch(labels=["positive", "negative"], expected="label")
        >>> s.score(inputs={}, outputs=" Negative.", expectations={"label": "negative"}).value
        1.0
    """

    labels: Sequence[str] = field(default_factory=tuple)
    expected: str | None = None
    metric_name: str | None = None

    def __post_init__(self) -> None:
        labels = tuple(str(x) for x in self.labels)
        if len(labels) < 2:
            raise ScorerError(f"label_match needs at least two `labels`, got {list(labels)!r}")
        object.__setattr__(self, "labels", labels)
        pattern = r"\b(" + "|".join(re.escape(x) for x in labels) + r")\b"
        object.__setattr__(self, "_pattern", re.compile(pattern, re.IGNORECASE))

    def spec(self) -> dict[str, Any]:
        spec = super().spec()
        spec["labels"] = list(self.labels)
        return spec

    def predict(self, output: str) -> str:
        """The label the output names first, or ``"<unparsed>"``."""
        found = self._pattern.search(str(output))  # type: ignore[attr-defined]
        if not found:
            return UNPARSED
        lowered = found.group(1).lower()
        return next(label for label in self.labels if label.lower() == lowered)

    def _truth(self, expectations: Mapping[str, Any]) -> str:
        truth = str(self._expected(expectations))
        matches = [label for label in self.labels if label.lower() == truth.lower()]
        if not matches:
            raise ScorerError(f"label_match: expected value {truth!r} is not one of the labels {list(self.labels)!r}")
        return matches[0]

    def check(self, expectations: Mapping[str, Any]) -> None:
        """Fail before any call when an expected value is not one of the labels."""
        self._truth(expectations)

    def score(self, *, inputs: Mapping[str, Any], outputs: str, expectations: Mapping[str, Any]) -> Score:
        predicted, truth = self.predict(outputs), self._truth(expectations)
        return Score(float(predicted == truth), f"predicted {predicted!r}, expected {truth!r}")

    def aggregate(self, outputs: Sequence[str], expectations: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        if not outputs:
            return {}
        import sklearn.metrics as _sk  # imported on use: it is slow to import

        y_true = [self._truth(e) for e in expectations]
        y_pred = [self.predict(o) for o in outputs]
        return {
            "accuracy": float(_sk.accuracy_score(y_true, y_pred)),
            "macro_f1": float(_sk.f1_score(y_true, y_pred, labels=list(self.labels), average="macro", zero_division=0)),
        }

    def confusion(self, outputs: Sequence[str], expectations: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        """Confusion matrix: rows are expected labels, columns predicted (plus ``<unparsed>``)."""
        import sklearn.metrics as _sk

        y_true = [self._truth(e) for e in expectations]
        y_pred = [self.predict(o) for o in outputs]
        columns = [*self.labels, UNPARSED]
        matrix = _sk.confusion_matrix(y_true, y_pred, labels=columns)
        frame = pd.DataFrame(matrix, index=columns, columns=columns)
        frame.index.name, frame.columns.name = "expected", "predicted"
        return frame.drop(index=UNPARSED)
