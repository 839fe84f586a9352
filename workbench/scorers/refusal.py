"""Refusal correctness: refuse (or defer to support) exactly when the knowledge base has no answer.

A case is *unanswerable* when its relevant ids are ``[]``, its ``kind`` is ``"unanswerable"``
(the issue-14 question format) or its ``expected_behaviour`` is ``"refuse"`` (a conversation
turn); every other case (``single``, ``multi``, ``clarify``; ``answer``, ``clarify``) must get
an answer or a clarifying question, not a refusal.

A reply *refuses* (:func:`is_refusal`) when, after :func:`~workbench.scorers.values.normalize`,

- it says the information is missing: one of :data:`NOT_COVERED` ("i don't have information",
  "not covered", "нет информации", "не могу ответить"...), or
- it defers to people (:data:`DEFERRAL`: "contact support", "обратитесь в поддержку"...) and
  is short (at most ``deferral_sentences`` sentences, default 2): a real answer may end with
  "if it still has not arrived, contact support" without being a refusal.

The lists are English and Russian, substrings, matched case-insensitively; pass ``markers`` to
replace :data:`NOT_COVERED` for another assistant's wording. It is a marker list, not a
classifier: a refusal in other words is missed (check a sample in the review widget).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.core.exceptions import ScorerError
from workbench.scorers.base import BaseScorer, Score
from workbench.scorers.retrieval_metrics import relevant_ids
from workbench.scorers.support import sentences
from workbench.scorers.values import normalize

#: Phrases that say the answer is not known or not covered (English, Russian; normalised, lowercase).
NOT_COVERED: tuple[str, ...] = (
    "i don't know", "i do not know", "i'm not sure", "i am not sure", "i don't have", "i do not have",
    "i'm afraid i", "i am afraid i", "i can't tell", "i cannot tell",
    "no information", "not have information", "has no information", "have no information",
    "not covered in", "not covered by the help", "isn't covered", "doesn't cover", "does not cover",
    "doesn't mention", "does not mention", "doesn't say", "does not say", "says nothing about",
    "doesn't specify", "does not specify", "doesn't describe", "does not describe", "doesn't explain",
    "does not explain", "doesn't give", "does not give", "gives no", "give no", "lists no", "not mentioned",
    "not specified", "not documented", "not listed in",
    "i couldn't find", "i could not find", "i can't find", "i cannot find", "unable to find", "unable to answer",
    "can't answer", "cannot answer", "can't help with", "cannot help with", "not able to answer",
    "no details", "not in the help", "outside the scope",
    "не знаю", "нет информации", "нет данных", "нет сведений", "не могу ответить", "не могу сказать",
    "не могу помочь", "не нашел", "не удалось найти", "не указано", "не описан", "не освещ", "не содерж",
    "не говорится", "не упоминается", "не предусмотрен", "вне моей компетенции",
)  # fmt: skip
#: Phrases that hand the question to people; a refusal only in a short reply.
DEFERRAL: tuple[str, ...] = (
    "contact support", "contact our support", "contact customer support", "contact the support",
    "contacting support", "reach out to support", "reach out to our support", "support team", "customer service",
    "seller support", "bazaar support",
    "обратитесь в поддержку", "обратитесь в службу поддержки", "служб поддержки", "службу поддержки",
    "службой поддержки", "напишите в поддержку", "свяжитесь с поддержкой",
)  # fmt: skip


def is_refusal(
    text: str,
    *,
    markers: Sequence[str] = NOT_COVERED,
    deferral: Sequence[str] = DEFERRAL,
    deferral_sentences: int = 2,
) -> bool:
    """Whether a reply refuses or defers to support (see the module docstring).

    Example:
        >>> is_refusal("Sorry, the help centre does not cover gift wrapping. Please contact support.")
        True
        >>> is_refusal("К сожалению, в справке нет информации об этом.")
        True
        >>> is_refusal("Returns are free within 14 days.")
        False
    """
    said = normalize(text).replace("’", "'")
    if any(normalize(m) in said for m in markers):
        return True
    return any(normalize(m) in said for m in deferral) and len(sentences(text)) <= deferral_sentences


def case_label(expectations: Mapping[str, Any], inputs: Mapping[str, Any], name: str) -> str | None:
    """A case's ``kind`` or ``expected_behaviour`` (an expected column or an input), lowercased."""
    value = expectations.get(name, inputs.get(name))
    return value.strip().lower() if isinstance(value, str) else None


def answerable(expectations: Mapping[str, Any], inputs: Mapping[str, Any], *, expected: str = "relevant_ids") -> bool:
    """Whether a case should get an answer rather than a refusal.

    False when its ``expected_behaviour`` is ``refuse`` (conversation turns), its ``kind`` is
    ``unanswerable``, or its relevant ids are ``[]``; an ``expected_behaviour`` of ``answer`` or
    ``clarify`` says True whatever the ids. Each may be an expected column or an input.

    Raises:
        ScorerError: the case has none of them.
    """
    behaviour = case_label(expectations, inputs, "expected_behaviour")
    if behaviour is not None:
        return behaviour != "refuse"
    kind = case_label(expectations, inputs, "kind")
    if expected not in expectations and kind is None:
        raise ScorerError(
            f"refusal_correctness needs expected column {expected!r} (relevant document ids; [] = unanswerable), "
            f"a `kind` or an `expected_behaviour` column; the expected columns are {sorted(expectations)}"
        )
    if kind == "unanswerable":
        return False
    return expected not in expectations or bool(relevant_ids(expectations, expected))


@dataclass(frozen=True)
class RefusalCorrectness(BaseScorer):
    """1 when the reply refuses exactly when it should, else 0 (column ``refusal_correctness``).

    Refuse on unanswerable cases (relevant ids ``[]`` or kind ``unanswerable``), answer the
    others; refusal is detected by markers (:func:`is_refusal`, English and Russian). Per
    variant x model: ``false_refusal_rate`` (refusals among answerable cases),
    ``missed_refusal_rate`` (answers among unanswerable cases), ``unanswerable_cases``.

    Args:
        expected: The expected column holding the relevant ids.
        markers: Phrases meaning "not covered" (default :data:`NOT_COVERED`).
        deferral_sentences: Longest reply (in sentences) in which "contact support" is a refusal.
        metric_name: Column and metric name.

    Example:
        >>> s = RefusalCorrectness()
        >>> s.score(inputs={}, outputs="I don't have information about that; please contact support.",
        ...         expectations={"relevant_ids": []}).value
        1.0
    """

    expected: str = "relevant_ids"
    markers: Sequence[str] = NOT_COVERED
    deferral_sentences: int = 2
    metric_name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "markers", tuple(self.markers))
        if not self.markers or not all(isinstance(m, str) and m.strip() for m in self.markers):
            raise ScorerError(f"refusal_correctness `markers` must be non-empty phrases, got {self.markers!r}")

    def spec(self) -> dict[str, Any]:
        spec = super().spec()
        if self.markers == NOT_COVERED:
            del spec["markers"]  # the default list, not repeated in every logged spec
        else:
            spec["markers"] = list(self.markers)
        return spec

    def check(self, expectations: Mapping[str, Any]) -> None:
        """Fail before any call when a case cannot say whether it is answerable."""
        if self.expected in expectations:  # without it, the kind may be an input: checked when scored
            relevant_ids(expectations, self.expected)

    def refuses(self, output: str) -> bool:
        return is_refusal(output, markers=self.markers, deferral_sentences=self.deferral_sentences)

    def score(self, *, inputs: Mapping[str, Any], outputs: str, expectations: Mapping[str, Any]) -> Score:
        should_answer = answerable(expectations, inputs, expected=self.expected)
        refused = self.refuses(outputs)
        if should_answer:
            return Score(float(not refused), "refused an answerable question" if refused else "answered")
        return Score(float(refused), "refused as it should" if refused else "answered an unanswerable question")

    def aggregate(
        self,
        outputs: Sequence[str],
        expectations: Sequence[Mapping[str, Any]],
        *,
        inputs: Sequence[Mapping[str, Any]] | None = None,
    ) -> dict[str, float]:
        if not outputs:
            return {}
        inputs = inputs or [{}] * len(outputs)
        should = [answerable(e, i, expected=self.expected) for e, i in zip(expectations, inputs, strict=True)]
        refused = [self.refuses(o) for o in outputs]
        answerable_refused = [r for s, r in zip(should, refused, strict=True) if s]
        unanswerable_refused = [r for s, r in zip(should, refused, strict=True) if not s]
        return {
            "false_refusal_rate": _share(answerable_refused),
            "missed_refusal_rate": _share([not r for r in unanswerable_refused]),
            "unanswerable_cases": float(len(unanswerable_refused)),
        }


def _share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else math.nan
