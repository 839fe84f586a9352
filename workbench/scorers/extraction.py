"""Field-level scores for structured extraction: which fields of a JSON reply are right.

Counting follows the slot-filling / NER convention of CoNLL's ``conlleval`` (also
``seqeval`` and the ATIS/SNIPS slot-F1): per field and case, null means *absent*, and

================  ==============  ==================
expected          predicted       counts
================  ==============  ==================
value             same value      TP
value             null            FN
null              value           FP
value             other value     FP + FN
null              null            nothing (correct)
================  ==============  ==================

Precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2TP / (2TP + FP + FN)
(NaN when a field has no TP, FP or FN at all). Micro-F1 pools the counts of every
field; macro-F1 is the mean of the fields' F1 (fields with NaN F1 left out).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.core.exceptions import ScorerError
from workbench.scorers.base import BaseScorer, Score
from workbench.scorers.json import parse_json_output
from workbench.scorers.values import NULL_STRINGS, close, is_null, is_number, normalize, number_candidates, plain

#: The ways a field can be compared (``auto``: numeric for numbers, set for lists, exact for
#: booleans, normalised for text, decided by the expected value).
RULES = ("auto", "exact", "normalized", "numeric", "set", "fuzzy")


@dataclass(frozen=True)
class FieldRule:
    """How one field is compared.

    Attributes:
        kind: One of :data:`RULES`.
        threshold: ``fuzzy``: the least rapidfuzz ``fuzz.ratio`` (0-100) that counts as equal.
        abs_tol: ``numeric``: absolute tolerance.
        rel_tol: ``numeric``: relative tolerance (0.01 = 1%).
    """

    kind: str = "auto"
    threshold: float = 90.0
    abs_tol: float = 0.0
    rel_tol: float = 0.0

    @classmethod
    def parse(cls, spec: Any, *, where: str) -> FieldRule:
        """``"fuzzy"`` or ``{"type": "fuzzy", "threshold": 85}``."""
        if isinstance(spec, str):
            spec = {"type": spec}
        if not isinstance(spec, Mapping):
            raise ScorerError(f"{where}: a rule is a name or a mapping with `type`, got {spec!r}")
        options = dict(spec)
        kind = options.pop("type", "auto")
        if kind not in RULES:
            raise ScorerError(f"{where}: unknown rule {kind!r}; choose one of {list(RULES)}")
        unknown = sorted(set(options) - {"threshold", "abs_tol", "rel_tol"})
        if unknown:
            raise ScorerError(f"{where}: unknown rule option(s) {unknown}; options are threshold, abs_tol, rel_tol")
        try:
            return cls(kind, **{k: float(v) for k, v in options.items()})
        except (TypeError, ValueError) as exc:
            raise ScorerError(f"{where}: rule options must be numbers: {exc}") from exc

    def equal(self, predicted: Any, expected: Any) -> bool:
        """Whether two present (non-null) values count as the same."""
        predicted, expected = plain(predicted), plain(expected)
        kind = _auto_kind(expected) if self.kind == "auto" else self.kind
        if kind == "exact":  # JSON types matter: 42 is not "42", True is not 1, 42 is 42.0
            both_numbers = is_number(predicted) and is_number(expected)
            return (both_numbers or type(predicted) is type(expected)) and predicted == expected
        if kind == "numeric":
            pairs = itertools.product(number_candidates(predicted), number_candidates(expected))
            return any(close(p, w, abs_tol=self.abs_tol, rel_tol=self.rel_tol) for p, w in pairs)
        if kind == "set":
            return {normalize(v) for v in _as_list(predicted)} == {normalize(v) for v in _as_list(expected)}
        if kind == "fuzzy":
            from rapidfuzz import fuzz  # imported on use

            return bool(fuzz.ratio(normalize(predicted), normalize(expected)) >= self.threshold)
        return _normalized(predicted) == _normalized(expected)


def _auto_kind(expected: Any) -> str:
    """The rule ``auto`` stands for, by the expected value's JSON type."""
    if isinstance(expected, bool):
        return "exact"
    if is_number(expected):
        return "numeric"
    return "set" if isinstance(expected, list) else "normalized"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _normalized(value: Any) -> Any:
    return [normalize(v) for v in value] if isinstance(value, list) else normalize(value)


@dataclass
class FieldCounts:
    """TP / FP / FN of one field, and the precision, recall and F1 they give."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    @property
    def f1(self) -> float:
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else float("nan")


@dataclass(frozen=True)
class FieldOutcome:
    """One field of one case: the values, and what they count as (``TP``, ``FP``, ``FN``, ``FP+FN``, ``TN``)."""

    name: str
    predicted: Any
    expected: Any
    outcome: str

    @property
    def right(self) -> bool:
        return self.outcome in ("TP", "TN")


@dataclass(frozen=True)
class FieldMatch(BaseScorer):
    """Per-field accuracy of a JSON reply against an expected JSON object.

    The per-case score is the share of fields right (both null, or equal by the
    field's rule), so paired comparisons work on it. A reply that is not a JSON
    object (after unwrapping a ```json fence) scores 0: no field counts as right,
    every expected value is a FN and nothing is a FP. Keys of the reply outside
    ``fields`` are ignored (check them with ``json_schema_valid``).

    Per variant x model it reports, for each field, ``<field>.tp/.fp/.fn/.precision/
    .recall/.f1``, and ``micro_precision``, ``micro_recall``, ``micro_f1``, ``macro_f1``
    and ``unparsed`` (replies that were not a JSON object).

    Args:
        expected: The expected column holding the object (a dict or its JSON text).
        fields: The fields to score; default the expected object's keys.
        rules: Per-field rule: a name of :data:`RULES` or ``{"type": ..., options}``.
        default_rule: The rule of fields not in ``rules``.
        null_strings: Strings that mean "absent" (compared normalised).
        allow_fences: Unwrap a Markdown code fence around the JSON.

    Example:
        >>> s = FieldMatch(expected="fields", rules={"model": {"type": "fuzzy", "threshold": 80}})
        >>> s.score(inputs={}, outputs='{"brand": "nike", "model": "Air Max 90", "size": "42"}',
        ...         expectations={"fields": {"brand": "Nike", "model": "Air Max-90", "size": 42}}).value
        1.0
    """

    expected: str | None = None
    fields: Sequence[str] | None = None
    rules: Mapping[str, Any] = field(default_factory=dict)
    default_rule: str = "auto"
    null_strings: Sequence[str] = NULL_STRINGS
    allow_fences: bool = True
    metric_name: str | None = None

    def __post_init__(self) -> None:
        if self.fields is not None:
            names = [str(f) for f in self.fields]
            dotted = [f for f in names if "." in f]
            if dotted or not names:
                raise ScorerError(f"field_match `fields` must be non-empty names without dots, got {names!r}")
            object.__setattr__(self, "fields", tuple(names))
        object.__setattr__(self, "null_strings", tuple(self.null_strings))
        if not isinstance(self.rules, Mapping):
            raise ScorerError(f"field_match `rules` maps field -> rule, got {self.rules!r}")
        parsed = {str(k): FieldRule.parse(v, where=f"field_match rule for {k!r}") for k, v in self.rules.items()}
        object.__setattr__(self, "_rules", parsed)
        object.__setattr__(self, "_default", FieldRule.parse(self.default_rule, where="field_match default_rule"))

    def spec(self) -> dict[str, Any]:
        spec = super().spec()
        spec["rules"] = dict(self.rules)
        spec["null_strings"] = list(self.null_strings)
        if self.fields is not None:
            spec["fields"] = list(self.fields)
        return spec

    def truth(self, expectations: Mapping[str, Any]) -> dict[str, Any]:
        """The expected object of one case.

        Raises:
            ScorerError: it is neither an object nor JSON text of one.
        """
        value = self._expected_json(expectations, what="expected value is", give="an object")
        if not isinstance(value, Mapping):
            raise ScorerError(f"field_match: expected value {value!r} is not a JSON object of fields")
        return dict(value)

    def check(self, expectations: Mapping[str, Any]) -> None:
        """Fail before any call when an expected value is not an object."""
        self.truth(expectations)

    def parse(self, output: str) -> dict[str, Any] | None:
        """The reply as a JSON object, or None when it is not one."""
        try:
            document = parse_json_output(str(output), allow_fences=self.allow_fences)
        except ValueError:
            return None
        return document if isinstance(document, dict) else None

    def compare(self, output: str, expectations: Mapping[str, Any]) -> list[FieldOutcome] | None:
        """Each field's outcome for one reply (None: the reply is not a JSON object)."""
        truth = self.truth(expectations)
        predicted = self.parse(output)
        if predicted is None:
            return None
        outcomes = []
        for name in self.fields or list(truth):
            got, want = predicted.get(name), truth.get(name)
            got_null = is_null(got, null_strings=self.null_strings)
            want_null = is_null(want, null_strings=self.null_strings)
            if got_null and want_null:
                outcome = "TN"
            elif want_null:
                outcome = "FP"
            elif got_null:
                outcome = "FN"
            else:
                rule = self._rules.get(name, self._default)  # type: ignore[attr-defined]
                outcome = "TP" if rule.equal(got, want) else "FP+FN"
            outcomes.append(FieldOutcome(name, None if got_null else got, None if want_null else want, outcome))
        return outcomes

    def score(self, *, inputs: Mapping[str, Any], outputs: str, expectations: Mapping[str, Any]) -> Score:
        outcomes = self.compare(outputs, expectations)
        if outcomes is None:
            return Score(0.0, "not a JSON object: no field is right")
        if not outcomes:
            return Score(float("nan"), "no fields to score")
        right = sum(o.right for o in outcomes)
        wrong = [
            f"{o.name}: got {_show(o.predicted)}, expected {_show(o.expected)} ({o.outcome})"
            for o in outcomes
            if not o.right
        ]
        reason = f"{right}/{len(outcomes)} fields right" + ("; " + "; ".join(wrong) if wrong else "")
        return Score(right / len(outcomes), reason)

    def counts(self, outputs: Sequence[str], expectations: Sequence[Mapping[str, Any]]) -> dict[str, FieldCounts]:
        """TP / FP / FN per field over many replies (an unparsed reply: every expected value is a FN)."""
        table: dict[str, FieldCounts] = {name: FieldCounts() for name in self.fields or ()}
        for output, expected in zip(outputs, expectations, strict=True):
            outcomes = self.compare(output, expected)
            if outcomes is None:
                truth = self.truth(expected)
                outcomes = [
                    FieldOutcome(
                        name,
                        None,
                        truth.get(name),
                        "TN" if is_null(truth.get(name), null_strings=self.null_strings) else "FN",
                    )
                    for name in self.fields or list(truth)
                ]
            for o in outcomes:
                counts = table.setdefault(o.name, FieldCounts())
                counts.tp += o.outcome == "TP"
                counts.fp += o.outcome in ("FP", "FP+FN")
                counts.fn += o.outcome in ("FN", "FP+FN")
        return table

    def aggregate(self, outputs: Sequence[str], expectations: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        if not outputs:
            return {}
        table = self.counts(outputs, expectations)
        metrics: dict[str, float] = {}
        for name, c in table.items():
            metrics.update({f"{name}.tp": c.tp, f"{name}.fp": c.fp, f"{name}.fn": c.fn})
            metrics.update({f"{name}.precision": c.precision, f"{name}.recall": c.recall, f"{name}.f1": c.f1})
        pooled = FieldCounts(*(sum(getattr(c, k) for c in table.values()) for k in ("tp", "fp", "fn")))
        f1s = [c.f1 for c in table.values() if c.f1 == c.f1]
        metrics.update(micro_precision=pooled.precision, micro_recall=pooled.recall, micro_f1=pooled.f1)
        metrics["macro_f1"] = sum(f1s) / len(f1s) if f1s else float("nan")
        metrics["unparsed"] = float(sum(self.parse(o) is None for o in outputs))
        return metrics


def _show(value: Any) -> str:
    return "null" if value is None else json.dumps(plain(value), ensure_ascii=False)
