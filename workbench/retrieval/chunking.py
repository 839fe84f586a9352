"""Splitting documents into chunks: windows of words with an overlap.

Sizes are in **words** (runs of non-space characters), not model tokens: a word count means
the same thing to BM25, to the embedding model and to a reader, and does not depend on a
tokenizer. A window of ``size`` words starts every ``size - overlap`` words; the last window
ends at the document's last word (a document of at most ``size`` words is one chunk). A chunk's
text is the original text from its first word to its last, so Markdown lines and bullets stay.

all-MiniLM-L6-v2 reads at most 256 word pieces, about 180 English words: the default 128-word
chunks fit whole; in longer chunks the embedding sees only the beginning (BM25 sees all of it).

Example:
    >>> doc = Document("d", "", "one two three four five six seven")
    >>> [c.text for c in chunk_document(doc, size=4, overlap=1)]
    ['one two three four', 'four five six seven']
    >>> [c.id for c in chunk_document(doc, size=4, overlap=1)]
    ['d#0', 'd#1']
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from workbench.core.exceptions import UsageError
from workbench.retrieval.kb import Document

_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class IndexedChunk:
    """A chunk as an index holds it: ids, the text the prompt gets, and the text that is indexed.

    ``indexed`` is the document's title followed by the chunk's text, so a chunk from the middle
    of an article still matches the article's subject.
    """

    id: str
    doc_id: str
    title: str
    text: str

    @property
    def indexed(self) -> str:
        return f"{self.title}\n{self.text}" if self.title else self.text


def windows(n_words: int, *, size: int, overlap: int) -> list[tuple[int, int]]:
    """Word ranges ``[start, end)`` of the chunks of a text of ``n_words`` words."""
    if size < 1 or not 0 <= overlap < size:
        raise UsageError(f"chunking needs size >= 1 and 0 <= overlap < size, got size={size!r}, overlap={overlap!r}")
    step = size - overlap
    out: list[tuple[int, int]] = []
    start = 0
    while True:
        end = min(start + size, n_words)
        out.append((start, end))
        if end >= n_words:
            return out
        start += step


def chunk_document(document: Document, *, size: int, overlap: int) -> list[IndexedChunk]:
    """The chunks of one document, ids ``"<doc_id>#<n>"`` from 0 (an empty body gives none)."""
    spans = [m.span() for m in _WORD.finditer(document.text)]
    if not spans:
        return []
    return [
        IndexedChunk(
            f"{document.id}#{n}",
            document.id,
            document.title,
            document.text[spans[start][0] : spans[end - 1][1]],
        )
        for n, (start, end) in enumerate(windows(len(spans), size=size, overlap=overlap))
    ]


def chunk_documents(documents: Iterable[Document], *, size: int, overlap: int) -> list[IndexedChunk]:
    """Every document's chunks, in document order."""
    return [chunk for doc in documents for chunk in chunk_document(doc, size=size, overlap=overlap)]
