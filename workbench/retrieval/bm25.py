"""BM25 over a chunked knowledge base, with the ``bm25s`` package.

Tokenizing is kept simple and documented: bm25s' default tokenizer (lowercased words of two or
more letters or digits), its English stop words removed, and Harman's "S" stemmer (plural
endings only: ``returns`` -> ``return``, ``policies`` -> ``policy``), which needs no extra
package and never merges words of different meaning the way a full Porter stemmer can.
Scores are BM25 (bm25s' Lucene variant, k1=1.5, b=0.75); higher is better. A chunk that shares
no word with the query scores 0 and is not returned, so a query can get fewer than ``k`` chunks
(and a hybrid ranking is not padded with arbitrary BM25 ties).

Example:
    >>> s_stem(["returns", "policies", "boxes", "glass", "status"])
    ['return', 'policy', 'boxe', 'glass', 'status']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from workbench.core.chunks import Chunk
from workbench.retrieval.chunking import IndexedChunk


def _s_stem(word: str) -> str:
    """Harman's S stemmer (1991): three rules for English plural endings."""
    if word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    if word.endswith("s") and not word.endswith(("us", "ss")):
        return word[:-1]
    return word


def s_stem(words: Sequence[str]) -> list[str]:
    """Stem a list of lowercased words (the callable bm25s' tokenizer takes)."""
    return [_s_stem(w) for w in words]


def tokenize(texts: Sequence[str]) -> Any:
    """Texts -> lists of tokens, the same way for documents and queries."""
    import bm25s

    return bm25s.tokenize(list(texts), stopwords="en", stemmer=s_stem, return_ids=False, show_progress=False)


class BM25Retriever:
    """A BM25 index of chunks, built in memory when made (fast: ~1 s per 10,000 chunks).

    Example:
        >>> r = BM25Retriever([IndexedChunk("a#0", "a", "Returns", "Free returns within 14 days."),
        ...                    IndexedChunk("b#0", "b", "Fees", "Sellers pay a 5% fee.")])
        >>> [c.doc_id for c in r.search("how do I return an item", k=1)]
        ['a']
    """

    kind = "bm25"

    def __init__(self, chunks: Sequence[IndexedChunk]) -> None:
        import bm25s

        self.chunks = list(chunks)
        self._index = bm25s.BM25()
        self._index.index(tokenize([c.indexed for c in self.chunks]), show_progress=False)

    def scores(self, query: str, depth: int) -> list[tuple[int, float]]:
        """The best ``depth`` chunks as (position in :attr:`chunks`, score), best first."""
        depth = min(depth, len(self.chunks))
        if depth == 0:
            return []
        found, scores = self._index.retrieve(tokenize([query]), k=depth, show_progress=False, n_threads=1)
        pairs = zip(np.asarray(found)[0], np.asarray(scores)[0], strict=True)
        return [(int(i), float(s)) for i, s in pairs if s > 0]  # no shared word: not retrieved

    def search(self, query: str, k: int) -> tuple[Chunk, ...]:
        """The ``k`` best chunks for ``query`` (fewer when fewer share a word with it), ranks from 1."""
        return tuple(
            _chunk(self.chunks[i], rank, score) for rank, (i, score) in enumerate(self.scores(query, k), start=1)
        )


def _chunk(chunk: IndexedChunk, rank: int, score: float | None) -> Chunk:
    return Chunk(chunk.id, chunk.doc_id, chunk.text, rank, score, chunk.title)
