"""Retrieval metrics: recall@k, precision@k, MRR and nDCG@k against the labelled article ids.

Each case names the documents that answer it in an expected column (``relevant_ids``, a list;
``[]`` = nothing in the knowledge base answers it). The retrieved chunks
(:attr:`~workbench.scorers.ScoringContext.retrieved`, whatever produced them: a built-in
retriever, the user's function or a dataset column) become a ranking of *documents* with
:func:`~workbench.core.chunks.doc_ids`: in rank order, each document once, so an article split
into three chunks is one hit, not three. ``k`` counts those documents. Relevance is binary.

With ``ranked`` the distinct retrieved document ids, ``R`` the relevant ones and ``hits@k`` the
relevant ids among the first ``k`` of ``ranked`` (the usual TREC / ``ranx`` definitions):

- recall@k = hits@k / \\|R\\|
- precision@k = hits@k / k (k, not the number retrieved: retrieving fewer is not rewarded)
- MRR = 1 / the rank of the first relevant document (0 when none; ``k`` optional cut-off)
- nDCG@k = DCG@k / IDCG@k, DCG@k = sum over relevant ranks i <= k of 1 / log2(i + 1),
  IDCG@k the same for the ideal ranking: min(\\|R\\|, k) relevant documents first.

Two kinds of case are not scored (NaN, with the reason), so they do not pull the means:

- **no relevant article** (``relevant_ids == []``): any ranking is as good as any other; such a
  question is scored by :class:`~workbench.scorers.refusal.RefusalCorrectness` instead. The
  per-group ``<name>.no_relevant_cases`` says how many there were.
- **no retrieval** (``retrieved is None``: the variant has no retriever, e.g. a no-RAG baseline
  in the same experiment).

Example:
    >>> from workbench.core.chunks import Chunk
    >>> from workbench.scorers.context import ScoringContext
    >>> chunks = (Chunk("fees#0", "fees", "...", 1), Chunk("returns#0", "returns", "...", 2))
    >>> ctx = ScoringContext(inputs={}, output="", expectations={"relevant_ids": ["returns"]}, retrieved=chunks)
    >>> MRR().score(inputs={}, outputs="", expectations=ctx.expectations, context=ctx).value
    0.5
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.core.chunks import doc_ids
from workbench.core.exceptions import ScorerError
from workbench.scorers.base import BaseScorer, Score
from workbench.scorers.context import ScoringContext

#: The reason a case with no relevant article is not scored by a retrieval metric.
NO_RELEVANT = "no relevant article labelled: scored by refusal instead"
NO_RETRIEVAL = (
    "no retrieval for this case (context.retrieved is None): give the variant a retriever, "
    "a retriever function or a `retrieved` dataset column"
)


def relevant_ids(expectations: Mapping[str, Any], column: str = "relevant_ids") -> list[str]:
    """The labelled relevant document ids of a case: a list, a JSON list or ``"a, b"`` text.

    Raises:
        ScorerError: the column is missing or holds something else, saying what to give.
    """
    if column not in expectations:
        raise ScorerError(
            f"retrieval scorers read the relevant document ids from expected column {column!r}, "
            f"but the expected columns are {sorted(expectations)}; mark it expected (or set `expected=`)"
        )
    value = expectations[column]
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise ScorerError(f"expected column {column!r} holds {value!r}, not a JSON list: {exc}") from exc
        else:
            value = [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
    if hasattr(value, "tolist"):  # a numpy array, as a results table gives a list column back
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ScorerError(
            f"expected column {column!r} holds {value!r}; give a list of document ids (JSON list, "
            '"a, b" text, or [] when nothing in the knowledge base answers the question)'
        )
    return list(dict.fromkeys(value))


def recall_at_k(ranked: Sequence[str], relevant: Sequence[str], k: int) -> float:
    """Share of the relevant ids among the first ``k`` ranked ids (NaN when none is relevant)."""
    if not relevant:
        return math.nan
    return len(set(ranked[:k]) & set(relevant)) / len(set(relevant))


def precision_at_k(ranked: Sequence[str], relevant: Sequence[str], k: int) -> float:
    """Relevant ids among the first ``k`` ranked ids, divided by ``k``."""
    return len(set(ranked[:k]) & set(relevant)) / k


def reciprocal_rank(ranked: Sequence[str], relevant: Sequence[str], k: int | None = None) -> float:
    """1 / the rank of the first relevant id among the first ``k`` (all when None); 0 when there is none."""
    wanted = set(relevant)
    for rank, doc in enumerate(ranked[:k], start=1):
        if doc in wanted:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[str], relevant: Sequence[str], k: int) -> float:
    """Binary-relevance nDCG@k with the log2 discount (NaN when none is relevant)."""
    wanted = set(relevant)
    if not wanted:
        return math.nan
    dcg = sum(1.0 / math.log2(rank + 1) for rank, doc in enumerate(ranked[:k], start=1) if doc in wanted)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(wanted), k) + 1))
    return dcg / ideal


@dataclass(frozen=True)
class _RetrievalMetric(BaseScorer):
    """Shared by the retrieval metrics: read the ranking and the labels, skip what cannot be scored."""

    k: int | None = 5
    expected: str = "relevant_ids"
    metric_name: str | None = None

    label = ""

    def __post_init__(self) -> None:
        if self.k is not None and (not isinstance(self.k, int) or isinstance(self.k, bool) or self.k < 1):
            raise ScorerError(f"{self.type_name} `k` must be a whole number >= 1, got {self.k!r}")

    @property
    def name(self) -> str:
        """``recall_at_5`` and the like (``@`` is not allowed in MLflow metric names)."""
        return self.metric_name or (self.label if self.k is None else f"{self.label}_at_{self.k}")

    def check(self, expectations: Mapping[str, Any]) -> None:
        """Fail before any call when a case's relevant ids are missing or malformed."""
        relevant_ids(expectations, self.expected)

    def compute(self, ranked: Sequence[str], relevant: Sequence[str]) -> float:
        raise NotImplementedError

    def score(  # type: ignore[override]
        self,
        *,
        inputs: Mapping[str, Any],
        outputs: str,
        expectations: Mapping[str, Any],
        context: ScoringContext | None = None,
    ) -> Score:
        relevant = relevant_ids(expectations, self.expected)
        if not relevant:
            return Score(math.nan, NO_RELEVANT)
        if context is None or context.retrieved is None:
            return Score(math.nan, NO_RETRIEVAL)
        ranked = doc_ids(context.retrieved)
        value = self.compute(ranked, relevant)
        top = ranked if self.k is None else ranked[: self.k]
        hits = [doc for doc in top if doc in set(relevant)]
        missed = [doc for doc in relevant if doc not in set(top)]
        shown = "retrieved" if self.k is None else f"top {self.k}"
        reason = f"{len(hits)} of {len(relevant)} relevant in {shown} {top}"
        return Score(value, reason + (f"; missed {missed}" if missed else ""))

    def aggregate(self, outputs: Sequence[str], expectations: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        """``no_relevant_cases``: how many cases had no relevant article (not scored, NaN)."""
        if not expectations:
            return {}
        empty = sum(not relevant_ids(e, self.expected) for e in expectations)
        return {"no_relevant_cases": float(empty)}


@dataclass(frozen=True)
class RecallAtK(_RetrievalMetric):
    """Share of the relevant documents among the first ``k`` retrieved ones (column ``recall_at_<k>``).

    Args:
        k: How many distinct retrieved documents count (None: all retrieved).
        expected: The expected column holding the relevant ids.
        metric_name: Column and metric name.

    Example:
        >>> RecallAtK(k=3).name
        'recall_at_3'
    """

    type_name = "recall_at_k"
    label = "recall"

    def compute(self, ranked: Sequence[str], relevant: Sequence[str]) -> float:
        return recall_at_k(ranked, relevant, self.k or len(ranked))


@dataclass(frozen=True)
class PrecisionAtK(_RetrievalMetric):
    """Relevant documents among the first ``k`` retrieved ones, divided by ``k`` (column ``precision_at_<k>``).

    Args:
        k: How many distinct retrieved documents count, also the divisor (None: all retrieved).
        expected: The expected column holding the relevant ids.
        metric_name: Column and metric name.

    Example:
        >>> PrecisionAtK(k=5).spec()
        {'type': 'precision_at_k', 'k': 5, 'expected': 'relevant_ids'}
    """

    type_name = "precision_at_k"
    label = "precision"

    def compute(self, ranked: Sequence[str], relevant: Sequence[str]) -> float:
        return precision_at_k(ranked, relevant, self.k or max(len(ranked), 1))


@dataclass(frozen=True)
class MRR(_RetrievalMetric):
    """Reciprocal rank of the first relevant document; its mean is MRR (column ``mrr``, or ``mrr_at_<k>``).

    Args:
        k: Only the first ``k`` distinct documents count (None: all retrieved, the default).
        expected: The expected column holding the relevant ids.
        metric_name: Column and metric name.

    Example:
        >>> MRR().name, MRR(k=10).name
        ('mrr', 'mrr_at_10')
    """

    type_name = "mrr"
    label = "mrr"
    k: int | None = None

    def compute(self, ranked: Sequence[str], relevant: Sequence[str]) -> float:
        return reciprocal_rank(ranked, relevant, self.k)


@dataclass(frozen=True)
class NDCGAtK(_RetrievalMetric):
    """Binary-relevance nDCG@k with the log2 discount (column ``ndcg_at_<k>``).

    Args:
        k: How many distinct retrieved documents count (None: all retrieved).
        expected: The expected column holding the relevant ids.
        metric_name: Column and metric name.

    Example:
        >>> NDCGAtK(k=5).name
        'ndcg_at_5'
    """

    type_name = "ndcg_at_k"
    label = "ndcg"

    def compute(self, ranked: Sequence[str], relevant: Sequence[str]) -> float:
        return ndcg_at_k(ranked, relevant, self.k or max(len(ranked), 1))
