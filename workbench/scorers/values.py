"""Field values as extraction scorers compare them: normalised text, numbers, units, currencies.

Shared by :class:`~workbench.scorers.extraction.FieldMatch` (is the value right?) and
:class:`~workbench.scorers.hallucination.Hallucination` (does the source text support it?).

Example:
    >>> normalize("  Чёрный\u00a0ЦВЕТ ")
    'черный цвет'
    >>> sorted(number_candidates("5 000 ₽"))
    [5000.0]
    >>> sorted(numbers_in("размер 42-44, вес 1,5 кг"))[:4]
    [1.5, 42.0, 43.0, 44.0]
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

#: Strings a model writes for "not in the text"; read as null (absent) unless a scorer is told otherwise.
NULL_STRINGS: tuple[str, ...] = ("", "null", "none", "n/a", "unknown")

#: How each currency is written in listings besides its code (lowercase, after :func:`normalize`;
#: a code counts as a whole word, so "rubber" is not roubles).
CURRENCY_ALIASES: dict[str, tuple[str, ...]] = {
    "RUB": ("₽", "руб", "рубл", "rubl", "roubl", "р."),
    "USD": ("$", "доллар", "dollar", "бакс"),
    "EUR": ("€", "евро", "euro"),
    "KZT": ("₸", "тенге", "tenge"),
    "BYN": ("бел. руб", "белорусск"),
    "GBP": ("£", "фунт", "pound"),
    "CNY": ("¥", "юан", "yuan"),
}

# unit -> (dimension, factor to the dimension's base unit); keys are normalised spellings.
_UNITS: dict[str, tuple[str, float]] = {
    "g": ("mass", 1.0), "г": ("mass", 1.0), "гр": ("mass", 1.0), "kg": ("mass", 1000.0), "кг": ("mass", 1000.0),
    "mm": ("length", 1.0), "мм": ("length", 1.0), "cm": ("length", 10.0), "см": ("length", 10.0),
    "m": ("length", 1000.0), "м": ("length", 1000.0),
    "ml": ("volume", 1.0), "мл": ("volume", 1.0), "l": ("volume", 1000.0), "л": ("volume", 1000.0),
    "gb": ("memory", 1.0), "гб": ("memory", 1.0), "tb": ("memory", 1024.0), "тб": ("memory", 1024.0),
}  # fmt: skip
_MULTIPLIERS = {"k": 1e3, "к": 1e3, "тыс": 1e3, "млн": 1e6}  # "m" is metres (a unit), never a million

_SPACES = "\u00a0\u202f\u2009 "
_NUMBER = rf"\d{{1,3}}(?:[{_SPACES}]\d{{3}})+(?!\d)(?:[.,]\d+)?|\d+(?:[.,]\d+)*"
_TOKEN = re.compile(
    rf"(?<![\d.,])(?P<a>{_NUMBER})(?:\s*[-–—/]\s*(?P<b>{_NUMBER}))?"
    rf"(?:\s*(?P<unit>[a-zа-я.]+))?",
    re.IGNORECASE,
)


def normalize(value: Any) -> str:
    """Unicode NFKC, casefold, ``ё`` -> ``е``, whitespace collapsed and trimmed."""
    text = unicodedata.normalize("NFKC", str(plain(value))).casefold().replace("ё", "е")
    return " ".join(text.split())


def plain(value: Any) -> Any:
    """A JSON-like Python value: numpy arrays -> lists, numpy scalars -> Python, 42.0 -> 42."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()  # numpy arrays and scalars, as values come back from Arrow
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def is_null(value: Any, *, null_strings: Iterable[str] = NULL_STRINGS) -> bool:
    """Whether a value means "absent": None, NaN, an empty list, or one of ``null_strings``."""
    value = plain(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    if isinstance(value, list):
        return not value
    if isinstance(value, str):
        return normalize(value) in {normalize(s) for s in null_strings}
    return False


def is_number(value: Any) -> bool:
    """A JSON number (booleans are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _readings(token: str) -> set[float]:
    """What a written number may mean: ``"5 000"`` 5000; ``"1,5"`` 1.5; ``"1.500"`` 1500 or 1.5."""
    digits = re.sub(f"[{_SPACES}]", "", token)
    separators = re.findall(r"[.,]", digits)
    if not separators:
        return {float(digits)}
    if len(set(separators)) == 2:  # "1,234.50" / "1.234,50": the last one is the decimal point
        decimal = separators[-1]
        thousands = "," if decimal == "." else "."
        return {float(digits.replace(thousands, "").replace(decimal, "."))}
    sep = separators[0]
    whole, *rest = digits.split(sep)
    if len(rest) > 1:  # "1.000.000": grouping
        return {float(digits.replace(sep, ""))} if all(len(r) == 3 for r in rest) else set()
    readings = {float(f"{whole}.{rest[0]}")}
    if len(rest[0]) == 3 and len(whole) <= 3:  # "5,000" / "1.500": either grouping or a decimal
        readings.add(float(whole + rest[0]))
    return readings


def _unit(word: str | None) -> tuple[str | None, float | None, str | None]:
    """(dimension, factor, multiplier-word) of the word after a number."""
    if not word:
        return None, None, None
    word = normalize(word).rstrip(".")
    if word in _UNITS:
        return _UNITS[word][0], _UNITS[word][1], None
    if word in _MULTIPLIERS:
        return None, _MULTIPLIERS[word], word
    return None, None, None


def quantities(text: Any, *, split_groups: bool = True) -> list[tuple[float, str | None]]:
    """The numbers written in ``text``, each as ``(value, dimension)``.

    Every reading counts: the number as written (dimension None), scaled by a
    ``k``/``тыс`` multiplier, and converted to its dimension's base unit when a unit
    follows (``"1,5 кг"`` gives ``(1.5, None)`` and ``(1500.0, "mass")``). A range
    ``"42-44"`` gives both ends and, for whole numbers at most 20 apart, those between.
    With ``split_groups``, ``"13 128"`` also gives 13 and 128 (a model name then a capacity,
    or thirteen thousand: a source text is read leniently).
    """
    found: list[tuple[float, str | None]] = []
    for match in _TOKEN.finditer(str(text)):
        ends = [_readings(match.group("a"))]
        if match.group("b"):
            ends.append(_readings(match.group("b")))
        # "iPhone 13 128 гб" reads as 13128 by grouping; each part is a reading too.
        split = re.split(f"[{_SPACES}]+", match.group("a"))
        parts = set().union(*(_readings(p) for p in split if split_groups and len(split) > 1 and not p.startswith("0")))
        dimension, factor, multiplier = _unit(match.group("unit"))
        values = set().union(*ends, parts)
        if len(ends) == 2:
            for low in ends[0]:
                for high in ends[1]:
                    if low.is_integer() and high.is_integer() and 0 < high - low <= 20:
                        values.update(float(v) for v in range(int(low), int(high) + 1))
        for value in values:
            found.append((value, None))
            if multiplier:
                found.append((value * (factor or 1.0), None))
            elif dimension:
                found.append((value * (factor or 1.0), dimension))
    return found


def number_groups(text: Any) -> list[list[tuple[float, str | None]]]:
    """The :func:`quantities` of each number (or range) written in ``text``, one list per number."""
    return [quantities(match.group(0), split_groups=False) for match in _TOKEN.finditer(str(text))]


def without_numbers(text: Any) -> str:
    """``text`` with its numbers (and the unit or multiplier after each) taken out."""
    return " ".join(_TOKEN.sub(" ", str(text)).split())


def numbers_in(text: Any) -> set[float]:
    """Every plain reading of the numbers in ``text`` (see :func:`quantities`), without units."""
    return {value for value, dimension in quantities(text) if dimension is None}


def number_candidates(value: Any) -> set[float]:
    """What number a field value stands for: itself, or the readings of the one number in a string.

    ``"5 000 ₽"`` -> ``{5000.0}``; ``"5k"`` -> ``{5.0, 5000.0}``; a string with no number or
    with several different numbers (``"42-44"``) -> empty set.
    """
    value = plain(value)
    if is_number(value):
        return {float(value)}
    if not isinstance(value, str):
        return set()
    readings = quantities(value, split_groups=False)
    matches = list(_TOKEN.finditer(value))
    if len(matches) != 1 or matches[0].group("b"):
        return set()
    return {v for v, dimension in readings if dimension is None}


def close(a: float, b: float, *, abs_tol: float = 0.0, rel_tol: float = 0.0) -> bool:
    """``math.isclose`` with a floor of 1e-9 absolute, so 0.1 + 0.2 equals 0.3."""
    return math.isclose(a, b, abs_tol=max(abs_tol, 1e-9), rel_tol=rel_tol)


# A bare "р" after a number is roubles ("13300р"), though the letter alone is everywhere.
_AFTER_NUMBER = {"RUB": re.compile(r"\d\s?р(?![а-яa-z])"), "USD": re.compile(r"\d\s?(?:\$|бакс)")}


def currency_in(code: str, text: str) -> bool:
    """Whether normalised ``text`` writes currency ``code`` in any spelling of :data:`CURRENCY_ALIASES`."""
    if re.search(rf"(?<![a-z]){code.casefold()}(?![a-z])", text):
        return True
    if any(s in text for s in CURRENCY_ALIASES.get(code, ())):
        return True
    pattern = _AFTER_NUMBER.get(code)
    return bool(pattern and pattern.search(text))


def currency_code(value: Any, aliases: Mapping[str, Iterable[str]] = CURRENCY_ALIASES) -> str | None:
    """The ISO code a value names (``"₽"``, ``"руб."``, ``"rub"`` -> ``"RUB"``), or None."""
    text = normalize(value)
    for code, spellings in aliases.items():
        if text == code.casefold() or text in spellings or any(text.startswith(s) for s in spellings if len(s) > 2):
            return code
    return None
