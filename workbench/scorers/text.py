"""Text scorers: exact match, contains, regex."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workbench.core.exceptions import ScorerError
from workbench.scorers.base import BaseScorer, Score

_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_text(text: Any, *, case_sensitive: bool = False, strip_punctuation: bool = False) -> str:
    """Trim, collapse whitespace, optionally lowercase and drop punctuation."""
    out = " ".join(str(text).split())
    if not case_sensitive:
        out = out.lower()
    if strip_punctuation:
        out = out.translate(_PUNCT).strip()
    return out


@dataclass(frozen=True)
class ExactMatch(BaseScorer):
    """1.0 when the output equals the expected value after normalisation.

    Example:
        >>> ExactMatch(strip_punctuation=True).score(
        ...     inputs={}, outputs=" Positive.", expectations={"label": "positive"})
        1.0
    """

    expected: str | None = None
    case_sensitive: bool = False
    strip_punctuation: bool = False
    metric_name: str | None = None

    def score(self, *, inputs: Mapping[str, Any], outputs: str, expectations: Mapping[str, Any]) -> float:
        want = normalize_text(
            self._expected(expectations),
            case_sensitive=self.case_sensitive,
            strip_punctuation=self.strip_punctuation,
        )
        got = normalize_text(outputs, case_sensitive=self.case_sensitive, strip_punctuation=self.strip_punctuation)
        return float(got == want)


@dataclass(frozen=True)
class Contains(BaseScorer):
    """1.0 when the output contains ``value`` (or the expected value if ``value`` is None)."""

    value: str | None = None
    expected: str | None = None
    case_sensitive: bool = False
    metric_name: str | None = None

    def score(self, *, inputs: Mapping[str, Any], outputs: str, expectations: Mapping[str, Any]) -> float:
        needle = self.value if self.value is not None else self._expected(expectations)
        hay, needle = str(outputs), str(needle)
        if not self.case_sensitive:
            hay, needle = hay.lower(), needle.lower()
        return float(needle in hay)


@dataclass(frozen=True)
class RegexMatch(BaseScorer):
    """1.0 when ``pattern`` is found in the output (``re.search``); a miss says which pattern.

    Example:
        >>> RegexMatch(pattern=r"^\\s*(positive|negative)\\b").score(
        ...     inputs={}, outputs=" negative!", expectations={}).value
        1.0
    """

    pattern: str = ""
    ignore_case: bool = True
    metric_name: str | None = None

    def __post_init__(self) -> None:
        if not self.pattern:
            raise ScorerError("regex_match needs a non-empty `pattern`")
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise ScorerError(f"regex_match pattern {self.pattern!r} is invalid: {exc}") from exc

    def score(self, *, inputs: Mapping[str, Any], outputs: str, expectations: Mapping[str, Any]) -> Score:
        flags = re.IGNORECASE if self.ignore_case else 0
        found = re.search(self.pattern, str(outputs), flags)
        return Score(float(found is not None), None if found else f"no match for {self.pattern!r}")
