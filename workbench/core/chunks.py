"""Retrieved context as data: what a RAG prompt was built with, kept on the row and given to scorers.

A :class:`Chunk` is one passage a retriever returned for a case: the chunk's own id, the id of
the document (help article) it came from, its text, its rank (1 = best) and the retriever's
score. Built-in retrievers (:mod:`workbench.retrieval`), a user's Python retriever and a
dataset column of pre-computed contexts all end up as the same tuple of chunks, so every
scorer (recall@k, faithfulness, citations) reads one shape whatever produced it.

The template sees the chunks as ``{{ context }}`` (:func:`format_context`: each chunk under its
document id in brackets, which is what a model cites); the row keeps them as JSON in the
``retrieved`` column (:func:`chunks_to_json`), and scorers get them as
:attr:`~workbench.scorers.ScoringContext.retrieved`.

Example:
    >>> chunks = (Chunk("returns-policy#0", "returns-policy", "Returns are free within 14 days.", 1, 0.82),)
    >>> print(format_context(chunks))
    [returns-policy] Returns are free within 14 days.
    >>> chunks_from_json(chunks_to_json(chunks)) == chunks
    True
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Chunk:
    """One retrieved passage.

    Attributes:
        id: The chunk's id, unique in its collection (``"<doc_id>#<n>"`` for built-in chunking).
        doc_id: The document it came from: what relevance labels and citations name.
        text: The passage as the prompt got it.
        rank: 1-based position in the retriever's ranking.
        score: The retriever's score (higher is better), or None when it gave none.
        title: The document's title, when known.
    """

    id: str
    doc_id: str
    text: str
    rank: int
    score: float | None = None
    title: str = ""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "doc_id": self.doc_id, "rank": self.rank, "score": self.score}
        if self.title:
            data["title"] = self.title
        data["text"] = self.text
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Chunk:
        score = data.get("score")
        return cls(
            id=str(data["id"]),
            doc_id=str(data.get("doc_id", data["id"])),
            text=str(data.get("text", "")),
            rank=int(data["rank"]),
            score=None if score is None else float(score),
            title=str(data.get("title", "")),
        )


def chunks_to_json(chunks: Iterable[Chunk] | None) -> str | None:
    """The ``retrieved`` cell of a row: a JSON list of chunks, or None when there was no retrieval."""
    if chunks is None:
        return None
    return json.dumps([c.to_dict() for c in chunks], ensure_ascii=False)


def chunks_from_json(cell: str | None) -> tuple[Chunk, ...] | None:
    """Inverse of :func:`chunks_to_json` (None and NaN cells give None)."""
    if cell is None or (isinstance(cell, float) and cell != cell):
        return None
    return tuple(Chunk.from_dict(d) for d in json.loads(cell))


def format_context(chunks: Iterable[Chunk]) -> str:
    """What ``{{ context }}`` renders to: one passage per paragraph, each under its ``[doc_id]``."""
    return "\n\n".join(f"[{c.doc_id}] {c.text}" for c in chunks)


def doc_ids(chunks: Iterable[Chunk]) -> list[str]:
    """Document ids in rank order, each once (a document split into several chunks counts once)."""
    seen: dict[str, None] = {}
    for chunk in sorted(chunks, key=lambda c: c.rank):
        seen.setdefault(chunk.doc_id, None)
    return list(seen)
