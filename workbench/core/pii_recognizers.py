"""Presidio recognizers for our users' data: Russian phones, passports and INNs, order ids.

Imported only when the PII analyzer is first built (Presidio is slow to import).
Each recognizer is a regular expression, optionally checked by a validator
(the INN's check digits), and rewrites the named group ``pii`` when its regex
has one (``серия 4506 номер 123456``: the digits, not the words), else the match.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from presidio_analyzer import LocalRecognizer, RecognizerResult
from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer

_SEP = r"[\s\-]?"

#: Russian phone numbers: +7 / 8 / 7, then a 3-digit code (mobile 9xx or a city code), then 7 digits
#: grouped 3-2-2 (or 3-4): +7 (912) 345-67-89, 8 912 345 67 89, 8-912-345-67-89, +79123456789.
RU_PHONE = (
    rf"(?<![\w+])(?:\+7|8|7)[\s\-]?(?:\(\d{{3}}\)|\d{{3}}){_SEP}\d{{3}}{_SEP}\d{{2}}{_SEP}\d{{2}}(?![\w])",
    rf"(?<![\w+])(?:\+7|8)[\s\-]?(?:\(\d{{3}}\)|\d{{3}}){_SEP}\d{{3}}{_SEP}\d{{4}}(?![\w])",
)
#: Russian internal passport: series (2+2 digits) and number (6 digits). With a keyword
#: (паспорт, серия, номер, passport) the digits are taken in any spacing; without one only
#: as "45 06 123456" (the way it is printed), so ten bare digits are not taken for a passport.
RU_PASSPORT = (
    r"(?i)(?:паспорт\w*|серия|серии|passport)[^\d\n]{0,25}"
    r"(?P<pii>\d{2}\s?\d{2}(?:[^\d\n]{0,20}?)\d{6})(?!\d)",
    r"(?<![\d\w])\d{2} \d{2} (?:№ ?)?\d{6}(?![\d\w])",
)
#: Mir payment cards (2200-2204), which Presidio's card pattern does not cover; Luhn-checked.
MIR_CARD = (r"(?<![\d\w])220[0-4][ -]?\d{4}[ -]?\d{4}[ -]?\d{4}(?![\d\w])",)
#: INN, the taxpayer number: 10 digits (an organisation) or 12 (a person), with check digits.
RU_INN = (r"(?<![\d\w.,-])(?:\d{12}|\d{10})(?![\d\w]|[.,]\d)",)


def inn_is_valid(text: str) -> bool:
    """Whether ``text`` (10 or 12 digits) has the INN's check digits.

    Example:
        >>> inn_is_valid("7707083893"), inn_is_valid("7707083894")
        (True, False)
    """
    digits = [int(c) for c in re.sub(r"\D", "", text)]

    def check(weights: Sequence[int], values: Sequence[int]) -> int:
        return sum(w * d for w, d in zip(weights, values, strict=False)) % 11 % 10

    if len(digits) == 10:
        return check((2, 4, 10, 3, 5, 9, 4, 6, 8), digits) == digits[9]
    if len(digits) == 12:
        first = check((7, 2, 4, 10, 3, 5, 9, 4, 6, 8), digits) == digits[10]
        return first and check((3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8), digits) == digits[11]
    return False


def luhn_is_valid(text: str) -> bool:
    """Whether the digits of ``text`` pass the Luhn check (payment cards).

    Example:
        >>> luhn_is_valid("2200 1234 5678 9019"), luhn_is_valid("2200 1234 5678 9010")
        (True, False)
    """
    digits = [int(c) for c in re.sub(r"\D", "", text)][::-1]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(digits))
    return len(digits) >= 12 and total % 10 == 0


class RegexRecognizer(LocalRecognizer):  # type: ignore[misc]
    """A Presidio recognizer from regular expressions, each with its score.

    Args:
        entity: The entity type it reports (``ORDER_ID``...).
        patterns: ``(regex, score)`` pairs; a named group ``pii`` is the span reported.
        validate: Called with each span's text; False drops it.
        name: The recognizer's name in Presidio's registry.
    """

    def __init__(
        self,
        entity: str,
        patterns: Sequence[tuple[str, float]],
        *,
        validate: Callable[[str], bool] | None = None,
        name: str | None = None,
    ) -> None:
        self.entity = entity
        self.compiled = [(re.compile(regex), score) for regex, score in patterns]
        self.validate = validate
        self.recognizer_name = name or f"workbench_{entity.lower()}"
        super().__init__(supported_entities=[entity], name=self.recognizer_name)

    def load(self) -> None:
        """Nothing to load: the patterns are compiled already."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        results = []
        for regex, score in self.compiled:
            for match in regex.finditer(text):
                start, end = match.span("pii") if "pii" in regex.groupindex else match.span()
                if end <= start or (self.validate is not None and not self.validate(text[start:end])):
                    continue
                metadata: dict[str, Any] = {
                    RecognizerResult.RECOGNIZER_NAME_KEY: self.recognizer_name,
                    RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                }
                results.append(RecognizerResult(self.entity, start, end, score, recognition_metadata=metadata))
        return results


class NoContext(ContextAwareEnhancer):  # type: ignore[misc]
    """Leaves scores as the recognizers gave them.

    Presidio's default enhancer raises a score when a context word ("phone", "card") is near,
    comparing lemmas; a blank spaCy pipeline has none, so it could never fire, and it cost
    about a third of the analysis time. The recognizers here score without context.
    """

    def __init__(self) -> None:
        super().__init__(
            context_similarity_factor=0, min_score_with_context_similarity=0, context_prefix_count=0,
            context_suffix_count=0,
        )  # fmt: skip

    def enhance_using_context(self, text: str, raw_results: list[Any], *args: Any, **kwargs: Any) -> list[Any]:
        return raw_results


def inside_a_number(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` is part of a longer token: the decimals of ``0.8912345678``,
    or digits glued to letters (a hash). Numbers in chart data and tables are not PII."""
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    if before.isalnum() or (after.isalnum() and not text[end - 1 : end].isalpha()):
        return True
    return before in ".," and start > 1 and text[start - 2].isdigit()


def workbench_recognizers(extra: Sequence[tuple[str, str, float]] = ()) -> list[RegexRecognizer]:
    """The project's recognizers, plus one per entity of ``extra`` ``(entity, regex, score)`` patterns."""
    from workbench.core.pii_config import DEFAULT_ORDER_PATTERNS

    by_entity: dict[str, list[tuple[str, float]]] = {"ORDER_ID": [(p, 0.85) for p in DEFAULT_ORDER_PATTERNS]}
    for entity, regex, score in extra:
        by_entity.setdefault(entity, []).append((regex, score))
    recognizers = [
        RegexRecognizer("PHONE_NUMBER", [(p, 0.75) for p in RU_PHONE], name="workbench_ru_phone"),
        RegexRecognizer("RU_PASSPORT", [(RU_PASSPORT[0], 0.85), (RU_PASSPORT[1], 0.6)]),
        RegexRecognizer("RU_INN", [(RU_INN[0], 0.7)], validate=inn_is_valid),
        RegexRecognizer("CREDIT_CARD", [(MIR_CARD[0], 0.9)], validate=luhn_is_valid, name="workbench_mir_card"),
    ]
    recognizers += [RegexRecognizer(entity, patterns) for entity, patterns in by_entity.items()]
    return recognizers
