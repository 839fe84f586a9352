"""The scorer protocol and its helpers.

A scorer is a small configured object (a dataclass) with one ``score``
method. It may be sync or async, and returns a value (bool, int or float) or a
:class:`Score` with a reason. Its fields serialise to a *spec*, logged to
MLflow and usable in experiment YAML files. The argument names ``inputs``,
``outputs`` and ``expectations`` match MLflow's GenAI scorers.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from workbench.core.exceptions import ScorerError
from workbench.core.outputs import tool_calls_to_json
from workbench.scorers.context import ScoringContext

#: Registry of scorer types by their spec ``type`` name.
SCORER_TYPES: dict[str, type[BaseScorer]] = {}


@dataclass(frozen=True)
class Score:
    """A score with an optional explanation.

    Scorers that call a model themselves (LLM judges) also report what those
    calls used, so it is counted apart from the task's own tokens and cost.

    Attributes:
        value: The score (NaN: could not be scored).
        reason: Why, in words.
        cost_usd: What the scorer's own model calls cost (NaN: litellm has no price).
        prompt_tokens: Prompt tokens of the scorer's own calls.
        completion_tokens: Completion tokens of the scorer's own calls.
        cached: True when every call the scorer needed came from the response cache.
        spread: Max minus min over repeated judgements of the same output (NaN with one).
    """

    value: float
    reason: str | None = None
    cost_usd: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached: bool | None = None
    spread: float | None = None


def accepts_context(scorer: Any) -> bool:
    """Whether ``scorer.score`` takes a ``context`` keyword (a :class:`~workbench.scorers.ScoringContext`)."""
    declared = getattr(scorer, "wants_context", None)  # a function scorer says whether its function does
    if declared is not None:
        return bool(declared)
    try:
        return "context" in inspect.signature(scorer.score).parameters
    except (TypeError, ValueError):  # builtins and odd callables have no signature
        return False


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass(frozen=True)
class BaseScorer:
    """Base class for the built-in scorers.

    Subclasses are dataclasses; their fields are the configuration. They
    register themselves under ``type_name`` so specs can name them.
    """

    type_name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("type_name"):
            cls.type_name = _snake(cls.__name__)
        if not cls.__name__.startswith("_"):  # a private class is a shared base, not a type of its own
            SCORER_TYPES[cls.type_name] = cls

    @property
    def name(self) -> str:
        """Column and metric name of this scorer's scores."""
        custom = getattr(self, "metric_name", None)
        return custom or self.type_name

    def spec(self) -> dict[str, Any]:
        """The configuration as plain data: ``{"type": ..., **fields}``."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {"type": self.type_name, **{k: v for k, v in fields.items() if v is not None}}

    def score(
        self, *, inputs: Mapping[str, Any], outputs: str, expectations: Mapping[str, Any]
    ) -> float | bool | Score:
        raise NotImplementedError

    def aggregate(self, outputs: Sequence[str], expectations: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        """Extra metrics over a whole variant x model group (e.g. macro-F1). None by default.

        An override may also take a keyword ``inputs`` (each case's template variables, in the
        same order) when its metrics need them, as a hallucination rate needs the source texts.
        """
        return {}

    def _expected(self, expectations: Mapping[str, Any]) -> Any:
        """The expected value this scorer compares against."""
        column = getattr(self, "expected", None)
        if column is None:
            if len(expectations) != 1:
                raise ScorerError(
                    f"scorer {self.name!r} needs `expected=` to say which of the expected "
                    f"columns {sorted(expectations)} to compare against"
                )
            return next(iter(expectations.values()))
        if column not in expectations:
            raise ScorerError(
                f"scorer {self.name!r} compares against expected column {column!r}, "
                f"but the dataset's expected columns are {sorted(expectations)}"
            )
        return expectations[column]

    def _expected_json(self, expectations: Mapping[str, Any], *, what: str, give: str) -> Any:
        """:meth:`_expected`, parsed when it is JSON text (a dataset cell holding an object or a list).

        Raises:
            ScorerError: text that is not JSON, naming ``what`` it should hold and what to ``give``.
        """
        value = self._expected(expectations)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise ScorerError(f"{self.type_name}: {what} not JSON: {exc}; give {give}") from exc
        return value


def normalize_score(raw: Any, scorer_name: str) -> Score:
    """Turn whatever a scorer returned into a :class:`Score`."""
    if isinstance(raw, Score):
        return dataclasses.replace(raw, value=float(raw.value))
    if isinstance(raw, tuple) and len(raw) == 2:
        value, reason = raw
        return Score(float(value), None if reason is None else str(reason))
    if isinstance(raw, (bool, int, float)):
        return Score(float(raw))
    raise ScorerError(
        f"scorer {scorer_name!r} returned {raw!r}; return a number, a bool, a (value, reason) pair or a Score"
    )


async def run_scorer(
    scorer: Any,
    context: ScoringContext | None = None,
    *,
    inputs: Mapping[str, Any] | None = None,
    outputs: str | None = None,
    expectations: Mapping[str, Any] | None = None,
    wants_context: bool | None = None,
) -> Score:
    """Call a sync or async scorer on one output and normalise its result.

    Pass the ``context`` (the engine does), or, to score one output by hand,
    just ``inputs``, ``outputs`` and ``expectations``. ``wants_context``: whether
    the scorer takes the context, when the caller knows already (the engine
    asks once per run, not once per output).

    The scorer gets ``inputs``, ``outputs`` and ``expectations``, plus the whole
    ``context`` when its ``score`` accepts it. A reply made only of tool calls
    has no text: a scorer that cannot see tool calls (no ``context``) does not
    score it (NaN, with the reason), rather than scoring an empty answer 0.
    """
    if context is None:
        context = ScoringContext(inputs=inputs or {}, output=outputs or "", expectations=expectations or {})
    if wants_context is None:
        wants_context = accepts_context(scorer)
    if not context.has_text and context.tool_calls and not wants_context:
        calls = tool_calls_to_json(context.tool_calls) or ""
        return Score(
            float("nan"),
            f"not scored: the reply is tool call(s) with no text ({calls[:200]}); score it with a scorer "
            "that takes `context` and reads context.tool_calls",
        )
    extra = {"context": context} if wants_context else {}
    raw = scorer.score(inputs=context.inputs, outputs=context.output, expectations=context.expectations, **extra)
    if inspect.isawaitable(raw):
        raw = await raw
    return normalize_score(raw, scorer.name)


def scorer_from_spec(spec: Mapping[str, Any], *, where: str = "scorer spec") -> BaseScorer:
    """Build a scorer from its spec, e.g. ``{"type": "exact_match", "expected": "label"}``.

    Raises:
        ScorerError: unknown type or bad fields, naming ``where`` and the valid choices.
    """
    spec = dict(spec)
    type_name = spec.pop("type", None)
    if type_name not in SCORER_TYPES:
        raise ScorerError(f"{where}: unknown scorer type {type_name!r}; choose one of {sorted(SCORER_TYPES)}")
    cls = SCORER_TYPES[type_name]
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(spec) - names)
    if unknown:
        raise ScorerError(f"{where}: scorer {type_name!r} has no option(s) {unknown}; its options are {sorted(names)}")
    try:
        return cls(**spec)
    except (TypeError, ValueError) as exc:
        raise ScorerError(f"{where}: cannot build scorer {type_name!r}: {exc}") from exc
