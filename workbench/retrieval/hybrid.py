"""Hybrid retrieval: BM25 and embeddings merged by reciprocal rank fusion (RRF).

Each retriever ranks its best ``depth`` chunks (``depth = max(4 * k, 20)``); a chunk's fused
score is the sum over the retrievers of ``1 / (RRF_K + rank)``, its ranks counted from 1
(a chunk one retriever did not return adds nothing). ``RRF_K = 60``, the constant of Cormack,
Clarke and Buettcher (SIGIR 2009), which keeps a single first place from outweighing broad
agreement. Ties go to the chunk that comes first in the knowledge base.

Example:
    >>> fuse([[(0, 9.1), (1, 3.0)], [(1, 0.8), (2, 0.7)]])
    [(1, 0.03252247488101534), (0, 0.01639344262295082), (2, 0.016129032258064516)]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from workbench.core.chunks import Chunk
from workbench.core.exceptions import RetrievalError
from workbench.retrieval.chunking import IndexedChunk

#: Reciprocal rank fusion's constant (Cormack et al. 2009).
RRF_K = 60


class Ranker(Protocol):
    """A retriever that ranks positions of its chunks."""

    chunks: list[IndexedChunk]

    def scores(self, query: str, depth: int) -> list[tuple[int, float]]: ...


def fuse(rankings: Sequence[Sequence[tuple[int, float]]], *, k_rrf: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of rankings of (position, score), best first: (position, fused score)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (position, _) in enumerate(ranking, start=1):
            fused[position] = fused.get(position, 0.0) + 1.0 / (k_rrf + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


class HybridRetriever:
    """BM25 and embedding retrievers over the same chunks, fused by :func:`fuse`."""

    kind = "hybrid"

    def __init__(self, bm25: Ranker, embedding: Ranker) -> None:
        if [c.id for c in bm25.chunks] != [c.id for c in embedding.chunks]:
            raise RetrievalError("hybrid retrieval needs both retrievers over the same chunks")
        self.chunks = bm25.chunks
        self.parts = (bm25, embedding)

    def scores(self, query: str, depth: int) -> list[tuple[int, float]]:
        pool = max(4 * depth, 20)
        return fuse([part.scores(query, pool) for part in self.parts])[:depth]

    def search(self, query: str, k: int) -> tuple[Chunk, ...]:
        """The ``k`` best chunks by fused rank, ranks 1..k, scores the RRF sums."""
        out = []
        for rank, (i, score) in enumerate(self.scores(query, k), start=1):
            c = self.chunks[i]
            out.append(Chunk(c.id, c.doc_id, c.text, rank, score, c.title))
        return tuple(out)
