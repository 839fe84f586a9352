"""Hallucination in structured extraction: values in a JSON reply that the source text does not support.

The per-case score is *groundedness* (higher is better, like every score the paired
comparison reads): ``grounded = 1 - unsupported values / values checked``. The rate users
are judged by is its complement, reported per variant x model as ``grounded.hallucination_rate``
(= 1 - the mean of ``grounded``) and per field as ``grounded.<field>.hallucination_rate``.
"""

from __future__ import annotations

import collections
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.exceptions import ScorerError
from workbench.scorers.base import BaseScorer, Score
from workbench.scorers.json import parse_json_output
from workbench.scorers.values import (
    NULL_STRINGS,
    close,
    currency_code,
    currency_in,
    is_null,
    is_number,
    normalize,
    number_groups,
    plain,
    quantities,
    without_numbers,
)
from workbench.util.paths import resolve

_DIGIT = re.compile(r"\d")
_PUNCT = ".,;:!?()[]{}\"'«»“”„*#/|"


@dataclass(frozen=True)
class Hallucination(BaseScorer):
    """Share of a JSON reply's values that the source text supports (column ``grounded``).

    A value is *supported* when, after :func:`~workbench.scorers.values.normalize`
    (case, NFKC, ``ё``/``е``, whitespace), it

    - appears in the source as a whole word or phrase (``"Nike"`` in ``"кроссовки nike"``);
    - is a number the source writes, read unit-aware: ``"5 000 ₽"`` supports 5000,
      ``"42-44"`` supports 42, 43 and 44, ``"1,5 кг"`` supports 1.5 and ``"1500 g"``,
      ``"5k"`` supports 5000; a string with numbers needs each of them, and its words, if more
      than a unit or a size system (``"EU 42"``), close to a phrase of the source (``"Galaxy S23"``
      is not supported by ``"Galaxy S22"``);
    - is a currency code the source writes in any spelling (``RUB``: ₽, руб., рублей);
    - is found through ``aliases`` (``{"black": ["черн", "black"]}``: any phrase in the source);
    - or, for text of 4+ characters, is close to a phrase of the source with as many words:
      rapidfuzz ``fuzz.ratio`` >= ``threshold`` (typos: ``"Columbia"`` in ``"rain jacket colombia"``,
      ratio 87.5; ``"Nike"`` is not in ``"nika"``, ratio 75).

    Supported is not *right* (``"like Nike"`` supports the string Nike): pair it with
    :class:`~workbench.scorers.extraction.FieldMatch`. Fields that may be inferred rather
    than read (a category) go in ``exempt``. Null values claim nothing and are not checked;
    a reply with no values scores 1.0; a reply that is not a JSON object is not scored (NaN):
    ``json_valid`` counts those.

    Per variant x model: ``hallucination_rate`` (1 - mean grounded), ``cases_with_hallucination``
    (share of scored replies with an unsupported value), and per field ``<field>.hallucination_rate``
    and ``<field>.unsupported`` (count).

    Args:
        source: The input variable holding the source text; default the only input.
        fields: The fields to check; default every key of the reply.
        exempt: Fields that may be inferred, never checked.
        aliases: Value -> phrases that support it, or the path of a JSON file holding that mapping
            (relative: from the working directory or the project root, as dataset paths).
        threshold: Least rapidfuzz ``fuzz.ratio`` (0-100) between a value and a source phrase.
        null_strings: Strings that mean "absent".
        allow_fences: Unwrap a Markdown code fence around the JSON.

    Example:
        >>> s = Hallucination(source="text", exempt=["category"])
        >>> r = s.score(inputs={"text": "Кроссовки Nike, 42-44, 5 000 ₽"},
        ...             outputs='{"category": "shoes", "brand": "Nike", "size": 43, "price": 5000, '
        ...                     '"currency": "RUB", "colour": "red"}', expectations={})
        >>> r.value, r.reason
        (0.8, '1 of 5 values unsupported: colour "red"')
    """

    source: str | None = None
    fields: Sequence[str] | None = None
    exempt: Sequence[str] = ()
    aliases: Any = field(default_factory=dict)
    threshold: float = 80.0
    null_strings: Sequence[str] = NULL_STRINGS
    allow_fences: bool = True
    metric_name: str | None = None

    def __post_init__(self) -> None:
        aliases = self.aliases
        if isinstance(aliases, (str, Path)):
            try:
                aliases = json.loads(resolve(aliases).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ScorerError(f"hallucination: cannot read aliases file {str(self.aliases)!r}: {exc}") from exc
        if not isinstance(aliases, Mapping) or not all(isinstance(v, (list, tuple)) for v in aliases.values()):
            raise ScorerError(f"hallucination `aliases` maps a value to a list of phrases, got {aliases!r}")
        table = {normalize(k): tuple(normalize(p) for p in v) for k, v in aliases.items()}
        object.__setattr__(self, "_aliases", table)
        for name in ("exempt", "null_strings"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.fields is not None:
            object.__setattr__(self, "fields", tuple(self.fields))
        if not 0 <= self.threshold <= 100:
            raise ScorerError(f"hallucination `threshold` is a rapidfuzz score in 0-100, got {self.threshold!r}")

    @property
    def name(self) -> str:
        """``grounded`` unless ``metric_name`` says otherwise: the score is higher-is-better."""
        return self.metric_name or "grounded"

    def spec(self) -> dict[str, Any]:
        spec = super().spec()
        for key in ("exempt", "null_strings", "fields"):
            if spec.get(key) is not None:
                spec[key] = list(spec[key])
        return spec

    def _source(self, inputs: Mapping[str, Any]) -> str:
        if self.source is None:
            if len(inputs) != 1:
                raise ScorerError(
                    f"hallucination needs `source=` to say which of the inputs {sorted(inputs)} is the source text"
                )
            return str(next(iter(inputs.values())))
        if self.source not in inputs:
            raise ScorerError(
                f"hallucination reads source text from input {self.source!r}, but the inputs are {sorted(inputs)}"
            )
        return str(inputs[self.source])

    def values(self, output: str) -> list[tuple[str, Any]] | None:
        """The ``(field, value)`` pairs of a reply to check (None: not a JSON object)."""
        try:
            document = parse_json_output(str(output), allow_fences=self.allow_fences)
        except ValueError:
            return None
        if not isinstance(document, dict):
            return None
        names = self.fields if self.fields is not None else list(document)
        pairs = []
        for name in names:
            if name in self.exempt:
                continue
            for value in _leaves(document.get(name)):
                if not is_null(value, null_strings=self.null_strings) and not isinstance(value, bool):
                    pairs.append((name, value))
        return pairs

    def supported(self, value: Any, source: str) -> bool:
        """Whether ``source`` supports ``value`` (see the class docstring for how)."""
        value = plain(value)
        text = normalize(source)
        if is_number(value):
            return any(close(value, v) for v, dimension in quantities(text) if dimension is None)
        wanted = normalize(value)
        if re.search(rf"(?<!\w){re.escape(wanted)}(?!\w)", text):
            return True
        if any(phrase in text for phrase in self._aliases.get(wanted, ())):  # type: ignore[attr-defined]
            return True
        code = currency_code(wanted)
        if code is not None and currency_in(code, text):
            return True
        if _DIGIT.search(wanted):  # "Galaxy S23" is not "Galaxy S22", however close the strings
            words = without_numbers(wanted)  # the words must be there too, unless a mere "EU", "W L", "g"
            return _numbers_supported(wanted, text) and (len(words) <= 3 or self._close_phrase(words, text))
        return len(wanted) >= 4 and self._close_phrase(wanted, text)

    def _close_phrase(self, wanted: str, text: str) -> bool:
        """A phrase of ``text`` with as many words as ``wanted`` is within ``threshold`` of it (a typo)."""
        from rapidfuzz import fuzz, process  # imported on use

        words = wanted.count(" ") + 1
        tokens = [t.strip(_PUNCT) for t in text.split()]
        phrases = {" ".join(tokens[i : i + words]) for i in range(len(tokens) - words + 1)}
        return process.extractOne(wanted, phrases, scorer=fuzz.ratio, score_cutoff=self.threshold) is not None

    def audit(self, inputs: Mapping[str, Any], output: str) -> Audit | None:
        """Which values of one reply the source supports (None: the reply is not a JSON object)."""
        pairs = self.values(output)
        if pairs is None:
            return None
        source = self._source(inputs)
        return Audit(checked=pairs, unsupported=[(name, v) for name, v in pairs if not self.supported(v, source)])

    def score(self, *, inputs: Mapping[str, Any], outputs: str, expectations: Mapping[str, Any]) -> Score:
        audit = self.audit(inputs, outputs)
        if audit is None:
            return Score(float("nan"), "not a JSON object: nothing to check")
        if not audit.checked:
            return Score(1.0, "no values to check")
        bad = audit.unsupported
        listed = ", ".join(f"{name} {json.dumps(plain(value), ensure_ascii=False)}" for name, value in bad)
        reason = f"{len(bad)} of {len(audit.checked)} values unsupported" + (f": {listed}" if bad else "")
        return Score(1.0 - audit.rate, reason)

    def aggregate(
        self,
        outputs: Sequence[str],
        expectations: Sequence[Mapping[str, Any]],
        *,
        inputs: Sequence[Mapping[str, Any]] | None = None,
    ) -> dict[str, float]:
        if not outputs:
            return {}
        if inputs is None:
            raise ScorerError("hallucination.aggregate needs the cases' `inputs` (the source texts)")
        audits = [a for a in map(self.audit, inputs, outputs) if a is not None]
        metrics: dict[str, float] = {}
        if audits:
            metrics["hallucination_rate"] = sum(a.rate for a in audits) / len(audits)
            metrics["cases_with_hallucination"] = sum(bool(a.unsupported) for a in audits) / len(audits)
        checked = collections.Counter(name for a in audits for name, _ in a.checked)
        bad = collections.Counter(name for a in audits for name, _ in a.unsupported)
        for name in sorted(checked):
            metrics[f"{name}.hallucination_rate"] = bad[name] / checked[name]
            metrics[f"{name}.unsupported"] = float(bad[name])
        return metrics


@dataclass(frozen=True)
class Audit:
    """One reply's values checked against its source: ``(field, value)`` pairs.

    Attributes:
        checked: Every non-null value of a checked field.
        unsupported: Those the source does not support.
    """

    checked: list[tuple[str, Any]]
    unsupported: list[tuple[str, Any]]

    @property
    def rate(self) -> float:
        """Share of the checked values that are unsupported (0 when nothing was checked)."""
        return len(self.unsupported) / len(self.checked) if self.checked else 0.0


def _leaves(value: Any) -> Iterator[Any]:
    """The scalar values inside a field (list items, nested object values)."""
    value = plain(value)
    if isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    else:
        yield value


def _numbers_supported(value: str, text: str) -> bool:
    """Every number written in ``value`` (unit-aware) is one the source writes."""
    source = quantities(text)
    groups = number_groups(value)
    return bool(groups) and all(any(close(v, s) and d == sd for v, d in g for s, sd in source) for g in groups)
