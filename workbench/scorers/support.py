"""Lexical support: does a retrieved passage back a sentence of the answer? An approximation.

This is word overlap, not entailment: it is what the offline faithfulness, answer-relevance and
citation scorers use when no judge model is given. A sentence (a *claim*) is supported by a
passage when

- at least ``threshold`` (default 0.6) of its content words appear in that one passage: words
  after :func:`~workbench.scorers.values.normalize` (case, NFKC, ``ё``), stop-words (English and
  Russian) removed, light stemming (a plural ``s`` dropped, words cut to 6 characters, so
  "delivered" meets "delivery"), and a rapidfuzz ``fuzz.ratio`` >= 85 for a typo;
- and every number it writes is one the passage writes (``14 days`` is not backed by ``30 days``;
  read unit-aware by :func:`~workbench.scorers.values.numbers_in`: ``5 000 ₽`` is 5000).

It misses paraphrase ("two weeks" for "14 days"), answers in another language than the knowledge
base, and negation ("not refundable" is supported by "refundable"). Use a judge model for those.

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

from workbench.scorers.values import normalize, numbers_in

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
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


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


def claims(text: str) -> list[str]:
    """The sentences of an answer that claim something: at least two content words, or a number."""
    return [s for s in sentences(text) if len(content_words(s)) >= 2 or numbers_in(CITATION.sub(" ", s))]


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
        passage: Index of the best passage (None when there was none).
        numbers_missing: Numbers of the claim that the best passage does not write.
    """

    claim: str
    supported: bool
    coverage: float
    passage: int | None
    numbers_missing: tuple[float, ...] = ()


def support(claim: str, passages: Iterable[str], *, threshold: float = 0.6) -> Support:
    """Check one claim against each passage; the best one decides (see the module docstring)."""
    plain = CITATION.sub(" ", claim)
    words, numbers = content_words(plain), numbers_in(plain)
    best = Support(claim, False, 0.0, None, tuple(sorted(numbers)))
    for index, passage in enumerate(passages):
        missing = tuple(sorted(numbers - numbers_in(passage)))
        share = coverage(words, content_words(passage))
        candidate = Support(claim, share >= threshold and not missing, share, index, missing)
        if (candidate.supported, -len(missing), share) > (best.supported, -len(best.numbers_missing), best.coverage):
            best = candidate
    return best


def supports(claim: str, passage: str, *, threshold: float = 0.6) -> bool:
    """Whether ``passage`` alone supports ``claim`` lexically."""
    return support(claim, [passage], threshold=threshold).supported
