"""Lexical support: does a retrieved passage back a sentence of the answer? An approximation.

This is word overlap, not entailment: it is what the offline faithfulness, answer-relevance and
citation scorers use when no judge model is given. A sentence (a *claim*) is supported by a
passage when

- at least ``threshold`` (default 0.6) of its content words appear in that one passage: words
  after :func:`~workbench.scorers.values.normalize` (case, NFKC, ``ё``), stop-words (English and
  Russian) removed, light stemming (a plural ``s`` dropped, words cut to 6 characters, so
  "delivered" meets "delivery"), and a rapidfuzz ``fuzz.ratio`` >= 85 for a typo;
- and every number it writes is one the passage writes (``14 days`` is not backed by ``30 days``;
  read as :func:`~workbench.scorers.values.numbers_in` does: ``5 000 ₽`` is 5000, and any reading
  of an ambiguous number will do: ``2,851`` is 2851 or 2.851). A number the answer computed
  (a total, a difference) is not written in the passage, so its claim is unsupported.

A sentence joining facts of two passages is supported when each of its clauses is (:func:`support`).

It misses paraphrase ("two weeks" for "14 days") and negation ("not refundable" is supported by
"refundable"), and cannot compare an answer in another script than the knowledge base (a Russian
answer from English articles: :func:`comparable`; the scorers leave those unscored, NaN). Use a
judge model for those.

Example:
    >>> passage = "Items can be returned within 14 days after delivery."
    >>> supports("You can return it within 14 days of delivery.", passage)
    True
    >>> supports("You can return it within 30 days of delivery.", passage)
    False
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from workbench.scorers.values import normalize, number_groups, numbers_in

#: Words that carry no claim (English and Russian), after :func:`normalize`.
STOP_WORDS = frozenset(
    """a an the and or but if then than so as at by for from in into of on onto to with without within
    about after before over under up down out off via per is are was were be been being am do does did
    doing have has had having can could may might must shall should will would it its it's this that these
    those there here what which who whom whose when where why how all any each every some such no nor not
    only own same too very just also i me my we our you your he him his she her they them their us
    yes please thanks thank hi hello sure okay ok one get got make made let lets happy glad
    long much many often need want like know tell way
    и в во на с со к ко по о об от до из за для у же ли бы не ни но а или что как это этот эта эти то
    так там тут где когда если чтобы вы вас вам ваш ваша ваши мы нас нам наш я мне меня он она они их его
    ее есть быть был была были будет можно нужно уже еще только при без над под про через после
    сколько какой какая какие каким почему зачем мой моя мое мои могу может""".split()  # noqa: SIM905  # a word list reads better as text
)

#: A citation marker as :func:`~workbench.core.chunks.format_context` shows ids: ``[returns-window]``.
CITATION = re.compile(r"\[([^\[\]\n]{1,200})\](?!\()")
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)
# A sentence ends at . ! ? or a line break; citation markers after the stop stay with it.
_SENTENCE = re.compile(r"(?:[^.!?\n]|\.(?=\d)|[.!?](?=\S))+[.!?]*(?:\s*\[[^\[\]\n]*\])*", re.UNICODE)
_CLAUSE = re.compile(r";\s*|,\s+(?:and|plus|but|while|whereas)\s+", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


def script(text: str) -> str:
    """``"cyrillic"`` when most letters of ``text`` are Cyrillic, else ``"latin"``."""
    letters = [c for c in text if c.isalpha()]
    cyrillic = sum("\u0400" <= c <= "\u04ff" for c in letters)
    return "cyrillic" if letters and cyrillic / len(letters) > 0.5 else "latin"


def comparable(answer: str, passages: Iterable[str]) -> bool:
    """Whether word overlap can compare ``answer`` with ``passages``: both in the same script.

    A Russian answer from an English help centre shares no words with it: scoring it 0 would
    call a faithful answer a hallucination, so the lexical scorers do not score it (NaN).
    """
    return script(answer) == script(" ".join(passages))


def stem(word: str) -> str:
    """The light normalisation: a plural ``s`` off Latin words, then the first 6 characters."""
    if word.isascii() and len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word[:6]


def without_citations(text: str) -> str:
    """``text`` with its citation markers taken out (``"Free [a]."`` -> ``"Free."``)."""
    return re.sub(r"\s+([.,;:!?])", r"\1", CITATION.sub("", text)).strip()


def content_words(text: str) -> set[str]:
    """Stemmed words of ``text`` that are not stop-words (numbers are read apart, by :func:`numbers_in`)."""
    words = _WORD.findall(normalize(CITATION.sub(" ", text)).replace("’", "'"))
    return {stem(w) for w in words if w not in STOP_WORDS and len(w) > 1}


def sentences(text: str) -> list[str]:
    """The sentences of an answer (bullets and lines count as sentences), citation markers kept."""
    out = []
    for line in text.splitlines():
        line = _BULLET.sub("", line).strip()
        out += [m.group(0).strip() for m in _SENTENCE.finditer(line) if m.group(0).strip()]
    return out


def _claims_something(text: str) -> bool:
    return len(content_words(text)) >= 2 or bool(numbers_in(CITATION.sub(" ", text)))


def claims(text: str) -> list[str]:
    """The sentences of an answer that claim something: at least two content words, or a number."""
    return [s for s in sentences(text) if _claims_something(s)]


def coverage(words: set[str], passage_words: set[str]) -> float:
    """Share of ``words`` found in ``passage_words`` (exactly, or a typo away: rapidfuzz ratio >= 85)."""
    if not words:
        return 1.0
    from rapidfuzz import fuzz, process  # imported on use

    found = 0
    for word in words:
        if word in passage_words or (
            len(word) >= 5 and process.extractOne(word, passage_words, scorer=fuzz.ratio, score_cutoff=85)
        ):
            found += 1
    return found / len(words)


@dataclass(frozen=True)
class Support:
    """How well the best passage backs one claim.

    Attributes:
        claim: The sentence checked (citation markers included).
        supported: Whether it passed: enough words and every number.
        coverage: Share of its content words in the best passage.
        passage: Index of the best passage (None when there was none, or each clause had its own).
        numbers_missing: Numbers of the claim that the best passage does not write.
    """

    claim: str
    supported: bool
    coverage: float
    passage: int | None
    numbers_missing: tuple[float, ...] = ()


def support(claim: str, passages: Iterable[str], *, threshold: float = 0.6) -> Support:
    """Check one claim against each passage; the best one decides (see the module docstring).

    A sentence that no single passage supports may join two facts from two passages ("returns
    are free within 14 days, and refunds take 5 days"): it is supported when each of its
    clauses (split at ``;`` and at ``, and`` / ``, plus`` / ``, but``) that claims something is.
    """
    passages = list(passages)
    best = _best(claim, passages, threshold)
    if best.supported:
        return best
    parts = [part for part in _CLAUSE.split(CITATION.sub(" ", claim)) if _claims_something(part)]
    if len(parts) < 2:
        return best
    checked = [_best(part, passages, threshold) for part in parts]
    if all(c.supported for c in checked):
        return Support(claim, True, min(c.coverage for c in checked), None)
    return best


def _best(claim: str, passages: list[str], threshold: float) -> Support:
    plain = CITATION.sub(" ", claim)
    words = content_words(plain)
    # one list of readings per number written ("2,851" is 2851 or 2.851): any reading will do
    groups = [[v for v, dimension in g if dimension is None] for g in number_groups(plain)]
    groups = [g for g in groups if g]
    best = Support(claim, False, 0.0, None, tuple(g[0] for g in groups))
    for index, passage in enumerate(passages):
        written = numbers_in(passage)
        missing = tuple(g[0] for g in groups if not written.intersection(g))
        share = coverage(words, content_words(passage))
        candidate = Support(claim, share >= threshold and not missing, share, index, missing)
        if (candidate.supported, -len(missing), share) > (best.supported, -len(best.numbers_missing), best.coverage):
            best = candidate
    return best


def supports(claim: str, passage: str, *, threshold: float = 0.6) -> bool:
    """Whether ``passage`` alone supports ``claim`` lexically."""
    return support(claim, [passage], threshold=threshold).supported
