"""Citation correctness: every ``[doc_id]`` an answer cites exists, was retrieved, and backs its sentence.

Citations are read as :func:`~workbench.core.chunks.format_context` shows the passages:
``[returns-window]``; also ``[a, b]`` / ``[a; b]`` / ``[a][b]``, a chunk id ``[returns-window#2]``
(its document counts), a label inside (``[source: returns-window]``, ``[doc: ...]``, ``[id: ...]``)
and full-width brackets ``【returns-window】``. A citation belongs to the sentence it is in, or that
it follows (``Returns are free. [returns-window]``).

A citation is correct when its id

1. **exists**: is an article of the knowledge base (``kb``: a list of ids or a folder of
   ``<id>.md`` files); without ``kb``, when it is among the retrieved documents;
2. **was retrieved** for this case (in :attr:`~workbench.scorers.ScoringContext.retrieved`);
3. **supports the sentence**: the sentence is supported lexically
   (:mod:`~workbench.scorers.support`, an approximation: word overlap and exact numbers, not
   entailment) by the text of the sentence's cited documents together (a sentence may combine two
   articles), and this document gives at least one of the sentence's words or numbers. A sentence
   in another script than the articles (a Russian answer) cannot be checked for support: its
   citation is left out of the score unless it already fails 1 or 2 (NaN when none is left).

The score is the share of correct citations. An answer with **no citation** scores 0 when an
answer was expected (a grounded assistant cites), and is not scored (NaN) when nothing was to be
cited: a refusal (:func:`~workbench.scorers.refusal.is_refusal`), an unanswerable case, a
``clarify`` case, or a case without retrieval.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.chunks import Chunk, doc_ids
from workbench.core.exceptions import ScorerError
from workbench.scorers.base import BaseScorer, Score
from workbench.scorers.context import ScoringContext
from workbench.scorers.refusal import answerable, case_label, is_refusal
from workbench.scorers.support import CITATION, comparable, content_words, sentences, support
from workbench.scorers.values import numbers_in
from workbench.util.paths import resolve

#: The problem of a citation whose support could not be read (answer and article in different scripts).
UNCHECKED = "support not checked"
_LABEL = re.compile(r"^(?:source|sources|doc|docs|doc_id|id|ref|article|источник)\s*:\s*", re.IGNORECASE)
_ID = re.compile(r"^[\w][\w.\-/:]*$", re.UNICODE)


def cited_ids(sentence: str) -> list[str]:
    """The document ids cited in a sentence, in order, each once.

    Example:
        >>> cited_ids("Fees are 5% [seller-fees#1] and paid weekly [source: payouts, seller-fees].")
        ['seller-fees', 'payouts']
    """
    found: dict[str, None] = {}
    for inside in CITATION.findall(sentence.replace("【", "[").replace("】", "]")):
        for part in re.split(r"[,;]\s*|\s+", _LABEL.sub("", inside.strip())):
            part = _LABEL.sub("", part).split("#")[0].strip()
            if part and _ID.match(part):
                found.setdefault(part, None)
    return list(found)


def citations(answer: str) -> list[tuple[str, str]]:
    """``(sentence, doc_id)`` for every citation of an answer."""
    text = answer.replace("【", "[").replace("】", "]")
    return [(sentence, doc) for sentence in sentences(text) for doc in cited_ids(sentence)]


@dataclass(frozen=True)
class CitationCorrectness(BaseScorer):
    """Share of an answer's citations that exist, were retrieved and support their sentence.

    See the module docstring for the rules; the reason names each wrong citation and why.
    Per variant x model: ``answers_without_citations`` (share of the answers that should cite)
    and ``citations_per_answer``.

    Args:
        kb: The knowledge base's article ids, or a folder of ``<id>.md`` files (relative: from the
            working directory or the project root); None: ids are checked against the retrieved ones.
        threshold: Least share of a sentence's content words its cited documents must contain.
        expected: The expected column holding the relevant ids (to know when an answer was expected).
        metric_name: Column and metric name.

    Example:
        >>> from workbench.core.chunks import Chunk
        >>> ctx = ScoringContext(inputs={}, output="", expectations={"relevant_ids": ["returns-window"]},
        ...     retrieved=(Chunk("returns-window#0", "returns-window", "Returns are free within 14 days.", 1),))
        >>> r = CitationCorrectness().score(inputs={}, outputs="Returns are free for 30 days [returns-window].",
        ...                                 expectations=ctx.expectations, context=ctx)
        >>> print(r.value, r.reason)
        0.0 0 of 1 citations correct; [returns-window] does not support "Returns are free for 30 days [returns-window]."
    """

    kb: Any = None
    threshold: float = 0.6
    expected: str = "relevant_ids"
    metric_name: str | None = None

    def __post_init__(self) -> None:
        kb = self.kb
        if isinstance(kb, (str, Path)):
            folder = resolve(kb)
            if not folder.is_dir():
                raise ScorerError(f"citation_correctness `kb` {str(kb)!r} is not a folder of <id>.md articles")
            ids: frozenset[str] | None = frozenset(p.stem for p in folder.glob("*.md"))
            object.__setattr__(self, "kb", str(kb))
        elif kb is None:
            ids = None
        elif isinstance(kb, (list, tuple, set, frozenset)) and all(isinstance(i, str) for i in kb):
            ids = frozenset(kb)
            object.__setattr__(self, "kb", sorted(kb))
        else:
            raise ScorerError(f"citation_correctness `kb` is a list of article ids or a folder, got {kb!r}")
        object.__setattr__(self, "_kb_ids", ids)
        if not 0 < self.threshold <= 1:
            raise ScorerError(f"citation_correctness `threshold` is a share in (0, 1], got {self.threshold!r}")

    def _expects_citations(self, output: str, expectations: Mapping[str, Any], inputs: Mapping[str, Any]) -> bool:
        clarify = "clarify" in (
            case_label(expectations, inputs, "kind"),
            case_label(expectations, inputs, "expected_behaviour"),
        )
        if is_refusal(output) or clarify:
            return False
        try:
            return answerable(expectations, inputs, expected=self.expected)
        except ScorerError:  # no labels: every reply is taken to be an answer
            return True

    def verdicts(self, answer: str, retrieved: Sequence[Chunk]) -> list[tuple[str, str, str | None]]:
        """``(sentence, doc_id, problem)`` per citation; problem None when it is correct.

        A sentence in another script than its documents (a Russian answer, English articles) is
        checked for existence and retrieval only: its problem is :data:`UNCHECKED` (left out of the score).
        """
        retrieved_ids = set(doc_ids(retrieved))
        known = self._kb_ids if self._kb_ids is not None else retrieved_ids  # type: ignore[attr-defined]
        texts = {doc: " ".join(c.text for c in retrieved if c.doc_id == doc) for doc in retrieved_ids}
        out: list[tuple[str, str, str | None]] = []
        for sentence, doc in citations(answer):
            if doc not in known:
                where = "the knowledge base" if self._kb_ids is not None else "the retrieved context"  # type: ignore[attr-defined]
                out.append((sentence, doc, f"is not in {where}"))
                continue
            if doc not in retrieved_ids:
                out.append((sentence, doc, "was not retrieved"))
                continue
            together = " ".join(texts[d] for d in cited_ids(sentence) if d in texts)
            if not comparable(sentence, [together]):
                out.append((sentence, doc, UNCHECKED))
                continue
            plain = CITATION.sub(" ", sentence)
            own = texts[doc]
            gives = bool(content_words(plain) & content_words(own) or numbers_in(plain) & numbers_in(own))
            backed = support(sentence, [together], threshold=self.threshold).supported
            out.append((sentence, doc, None if backed and gives else f'does not support "{sentence}"'))
        return out

    def score(  # type: ignore[override]
        self,
        *,
        inputs: Mapping[str, Any],
        outputs: str,
        expectations: Mapping[str, Any],
        context: ScoringContext | None = None,
    ) -> Score:
        if context is None or context.retrieved is None:
            return Score(math.nan, "no retrieval for this case (context.retrieved is None): no citations to check")
        verdicts = self.verdicts(outputs, context.retrieved)
        if not verdicts:
            if self._expects_citations(outputs, expectations, inputs):
                return Score(0.0, "no citations though an answer was expected")
            return Score(math.nan, "nothing to cite: a refusal, an unanswerable or a clarify case")
        wrong = [f"[{doc}] {problem}" for _, doc, problem in verdicts if problem and problem != UNCHECKED]
        unchecked = sum(problem == UNCHECKED for _, _, problem in verdicts)
        checked = len(verdicts) - unchecked
        note = f"{unchecked} left out: support not checkable (answer and article in different scripts)"
        if not checked:
            return Score(math.nan, note)
        correct = checked - len(wrong)
        reason = f"{correct} of {checked} citations correct" + ("; " + "; ".join(wrong) if wrong else "")
        return Score(correct / checked, reason + (f"; {note}" if unchecked else ""))

    def aggregate(
        self,
        outputs: Sequence[str],
        expectations: Sequence[Mapping[str, Any]],
        *,
        inputs: Sequence[Mapping[str, Any]] | None = None,
    ) -> dict[str, float]:
        inputs = inputs or [{}] * len(outputs)
        cases = zip(outputs, expectations, inputs, strict=True)
        counts = [len(citations(o)) for o, e, i in cases if self._expects_citations(o, e, i)]
        if not counts:
            return {}
        return {
            "answers_without_citations": sum(c == 0 for c in counts) / len(counts),
            "citations_per_answer": sum(counts) / len(counts),
        }
