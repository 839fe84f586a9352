"""Read a judge model's verdict out of whatever text it wrote.

Judges are asked for one JSON object, but models wrap it in code fences, add
prose around it, answer ``Score: 4/5`` or just ``PASS``. :func:`parse_verdict`
tries, in order: a JSON object anywhere in the text (fenced or not, single
quotes tolerated), a ``score:``/``rating:``/``verdict:`` line, a pass/fail word,
and a leading number. Anything else is *unparseable*: NaN with a reason quoting
the raw text, never a silent 0.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from workbench.core.exceptions import ScorerError

#: JSON keys read as the score, in order of preference.
SCORE_KEYS = ("score", "verdict", "rating", "grade", "result", "label", "pass", "passed")
#: JSON keys read as the reason.
REASON_KEYS = ("reason", "reasoning", "explanation", "rationale", "justification", "why", "comment")
_PASS_WORDS = {"pass", "passed", "passes", "true", "yes", "y", "correct"}
_FAIL_WORDS = {"fail", "failed", "fails", "false", "no", "n", "incorrect"}
_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_LABELLED = re.compile(
    rf"\b(?:score|rating|grade|verdict|result)\b[\"']?(?:\s+(?:is|was|of))?\s*\**\s*[:=\-]?\s*[\"'*]*\s*"
    rf"(?P<value>{_NUMBER}(?:\s*(?:/|out of)\s*{_NUMBER})?|[A-Za-z]+)",
    re.IGNORECASE,
)
_STRONG = re.compile(r"\b(PASS(?:ED|ES)?|FAIL(?:ED|S)?)\b", re.IGNORECASE)
_LEADING = re.compile(rf"^\W*(?P<value>{_NUMBER}(?:\s*(?:/|out of)\s*{_NUMBER})?|[A-Za-z]+)\b", re.IGNORECASE)
_RANGE = re.compile(rf"^\s*(?P<low>{_NUMBER})\s*(?:-|\.\.|to)\s*(?P<high>{_NUMBER})\s*$")
#: Characters of raw judge text quoted in a reason.
QUOTE_CHARS = 300


@dataclass(frozen=True)
class Scale:
    """The scale a judge answers on, and how its answers map to 0..1.

    ``"pass_fail"`` takes PASS/FAIL, yes/no, true/false or a number in [0, 1];
    a range such as ``"1-5"`` or ``"0-10"`` takes a number in it, mapped
    linearly so the lowest grade is 0 and the highest 1.

    Example:
        >>> Scale.parse("1-5").normalise(4)
        0.75
        >>> Scale.parse("pass_fail").normalise("PASS")
        1.0
    """

    name: str
    low: float = 0.0
    high: float = 1.0

    @classmethod
    def parse(cls, text: str) -> Scale:
        """Read ``"pass_fail"`` or ``"<low>-<high>"``; raises :class:`ScorerError` otherwise."""
        if text.strip().lower() in ("pass_fail", "pass/fail", "binary"):
            return cls("pass_fail")
        found = _RANGE.match(text)
        if found and float(found["low"]) < float(found["high"]):
            return cls(text.strip(), float(found["low"]), float(found["high"]))
        raise ScorerError(f"judge scale {text!r} is not understood; use 'pass_fail' or a range such as '1-5'")

    @property
    def binary(self) -> bool:
        return self.name == "pass_fail"

    def describe(self) -> str:
        """How the prompt asks for the score."""
        if self.binary:
            return '"PASS" or "FAIL"'
        return f"a number from {self.low:g} (worst) to {self.high:g} (best)"

    def normalise(self, raw: Any) -> float | None:
        """The 0..1 value of ``raw``, or None when it is not on this scale."""
        if isinstance(raw, bool):
            return float(raw) if self.binary else None
        if isinstance(raw, str):
            raw = raw.strip().strip("\"'*.!").strip()
            word = raw.lower()
            if self.binary and word in _PASS_WORDS:
                return 1.0
            if self.binary and word in _FAIL_WORDS:
                return 0.0
            fraction = re.fullmatch(rf"({_NUMBER})\s*(?:/|out of)\s*({_NUMBER})", raw)
            if fraction:
                numerator, denominator = float(fraction[1]), float(fraction[2])
                if denominator == self.high or (self.binary and denominator > 0):
                    raw = numerator if denominator == self.high else numerator / denominator
                else:
                    return None
            else:
                try:
                    raw = float(raw)
                except ValueError:
                    return None
        if not isinstance(raw, (int, float)) or math.isnan(raw):
            return None
        if not self.low <= raw <= self.high:
            return None
        return (float(raw) - self.low) / (self.high - self.low)


@dataclass(frozen=True)
class Verdict:
    """A parsed verdict: the 0..1 value (NaN when unparseable), a reason, the raw text."""

    value: float
    reason: str
    raw: str

    @property
    def parsed(self) -> bool:
        return not math.isnan(self.value)


def quote(text: str, limit: int = QUOTE_CHARS) -> str:
    """``text`` as a short quoted snippet for a reason."""
    text = " ".join(str(text).split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def json_objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object (dict) found in ``text``, outermost first, in order.

    Fenced blocks are read like any other text; single-quoted Python-style
    dicts are accepted too.

    Example:
        >>> json_objects('Sure! ```json\\n{"score": 4, "reason": "ok"}\\n``` done')
        [{'score': 4, 'reason': 'ok'}]
    """
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    index, end = text.find("{"), -1
    while index != -1:
        if index > end:
            obj: Any = None
            try:
                obj, stop = decoder.raw_decode(text, index)
            except ValueError:
                closing = text.find("}", index)
                if closing != -1:
                    try:
                        obj, stop = ast.literal_eval(text[index : closing + 1]), closing + 1
                    except (ValueError, SyntaxError, MemoryError, RecursionError):
                        obj = None
            if isinstance(obj, dict):
                found.append(obj)
                end = stop - 1
        index = text.find("{", index + 1)
    return found


def pick(obj: dict[str, Any], keys: tuple[str, ...]) -> tuple[bool, Any]:
    """The value of the first of ``keys`` in ``obj`` (case-insensitive): ``(found, value)``."""
    lowered = {str(k).strip().lower(): v for k, v in obj.items()}
    for key in keys:
        if key in lowered:
            return True, lowered[key]
    return False, None


def candidates(text: str, keys: tuple[str, ...] = SCORE_KEYS) -> Iterator[tuple[Any, str | None, bool]]:
    """Possible verdicts in ``text``, most trustworthy first: ``(value, reason, final)``.

    ``final`` marks a JSON answer: when it names a score, that score decides,
    even if it is off the scale.

    Example:
        >>> next(candidates("Reasoning: fine.\\nScore: 4/5"))
        ('4/5', None, False)
    """
    for obj in json_objects(text):
        has_score, value = pick(obj, keys)
        if has_score:
            _, reason = pick(obj, REASON_KEYS)
            yield value, None if reason is None else str(reason), True
            return
    for labelled in _LABELLED.finditer(text):
        yield labelled["value"], None, False
    strong = {"PASS" if m.upper().startswith("PASS") else "FAIL" for m in _STRONG.findall(text)}
    if len(strong) == 1:  # naming both PASS and FAIL is ambiguous: no verdict from these words
        yield strong.pop(), None, False
    leading = _LEADING.match(text.strip())
    if leading:
        yield leading["value"], None, False


def parse_verdict(text: str | None, scale: Scale) -> Verdict:
    """Parse a judge's reply into a :class:`Verdict` on ``scale``.

    Example:
        >>> parse_verdict('```json\\n{"reason": "polite", "score": "PASS"}\\n```', Scale.parse("pass_fail"))
        Verdict(value=1.0, reason='polite', raw='```json\\n{"reason": "polite", "score": "PASS"}\\n```')
        >>> parse_verdict("I think it is 7", Scale.parse("1-5")).value
        nan
    """
    raw = "" if text is None else str(text)
    for value, reason, final in candidates(raw):
        normalised = scale.normalise(value)
        if normalised is not None:
            return Verdict(normalised, reason or " ".join(raw.split())[:QUOTE_CHARS], raw)
        if final:  # a JSON score decides, even off the scale
            why = f"judge score {value!r} is not on the {scale.name} scale ({scale.describe()})"
            return Verdict(math.nan, f"{why}; it wrote {quote(raw)}", raw)
    return Verdict(math.nan, f"unparseable judge verdict: {quote(raw)}", raw)
