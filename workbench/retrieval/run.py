"""Running a variant's :class:`~workbench.core.retrieval_spec.Retrieval` for each case.

:func:`prepare` turns a spec into a :class:`PreparedRetrieval`: for a knowledge base it loads
the folder, chunks it and builds (or reopens) the index; the index is kept for the rest of the
process, keyed by the retriever, the folder's content hash, the chunking and the embedding
model, so a knowledge base is indexed once per run (and once per notebook session), and an
edited article is picked up by the next run. Retrieval is local and synchronous.

Example:
    >>> spec = Retrieval(kb="tests/data/kb_small", retriever="bm25", k=2)  # doctest: +SKIP
    >>> prepare(spec).retrieve({"question": "How do I reset my password?"})[0].doc_id  # doctest: +SKIP
    'account-password-reset'
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

import jinja2

from workbench.core.chunks import Chunk
from workbench.core.exceptions import RetrievalError
from workbench.core.retrieval_spec import Retrieval
from workbench.retrieval.bm25 import BM25Retriever
from workbench.retrieval.chunking import IndexedChunk, chunk_documents
from workbench.retrieval.kb import KnowledgeBase, load_kb
from workbench.retrieval.store import store_dir
from workbench.retrieval.user import as_chunks


class Searcher(Protocol):
    """A built-in retriever over a chunked knowledge base."""

    kind: str
    chunks: list[IndexedChunk]

    def scores(self, query: str, depth: int) -> list[tuple[int, float]]: ...

    def search(self, query: str, k: int) -> tuple[Chunk, ...]: ...


#: Built retrievers of this process, by (kind, folder, content hash, chunk size, overlap, (model, store)).
_SEARCHERS: dict[tuple[Any, ...], Searcher] = {}
#: Seconds each built retriever took to build (for benchmarks and notes), same keys.
BUILD_SECONDS: dict[tuple[Any, ...], float] = {}


def clear_cache() -> None:
    """Forget the retrievers built in this process (the Chroma collections on disk stay)."""
    _SEARCHERS.clear()
    BUILD_SECONDS.clear()


def searcher(kind: str, kb: KnowledgeBase, *, chunk_size: int, overlap: int, model: str) -> Searcher:
    """The built-in retriever ``kind`` over ``kb``, built once per process."""
    dense = None if kind == "bm25" else (model, str(store_dir()))
    key = (kind, str(kb.path), kb.content_hash, chunk_size, overlap, dense)
    if key in _SEARCHERS:
        return _SEARCHERS[key]
    started = time.perf_counter()
    built: Searcher
    if kind == "hybrid":
        from workbench.retrieval.hybrid import HybridRetriever

        parts = [searcher(k, kb, chunk_size=chunk_size, overlap=overlap, model=model) for k in ("bm25", "embedding")]
        built = HybridRetriever(*parts)
    else:
        chunks = chunk_documents(kb.documents, size=chunk_size, overlap=overlap)
        if kind == "bm25":
            built = BM25Retriever(chunks)
        else:
            from workbench.retrieval.embedding import EmbeddingRetriever  # needs the `rag` extra

            built = EmbeddingRetriever(
                chunks, kb_hash=kb.content_hash, kb_path=kb.path, chunk_size=chunk_size, overlap=overlap, model=model
            )
    _SEARCHERS[key] = built
    BUILD_SECONDS[key] = time.perf_counter() - started
    return built


class PreparedRetrieval:
    """One spec, ready to run on cases: its index built, its source checked."""

    def __init__(self, spec: Retrieval, searcher: Searcher | None = None) -> None:
        self.spec = spec
        self.searcher = searcher

    def query(self, row: Mapping[str, Any], *, where: str | None = None) -> str:
        """The case's search query (the spec's ``query`` template rendered on the row)."""
        try:
            return self.spec.render_query(row)
        except jinja2.TemplateError as exc:
            raise RetrievalError(
                f"retrieval query {self.spec.query!r} failed to render for {where or 'a row'}: {exc}"
            ) from exc

    def retrieve(self, row: Mapping[str, Any], *, where: str | None = None) -> tuple[Chunk, ...]:
        """The chunks for one case, ranks 1..n (n <= k)."""
        spec = self.spec
        if spec.column is not None:
            return as_chunks(row.get(spec.column), k=spec.k, where=f"{where or 'row'} column {spec.column!r}")
        query = self.query(row, where=where)
        if self.searcher is not None:
            return self.searcher.search(query, spec.k)
        fn = spec.retriever
        if not callable(fn):  # a knowledge-base spec that was not prepared with its searcher
            raise RetrievalError(f"retrieval from {spec.kb!r} was not prepared; use prepare(spec)")
        try:
            items = fn(query, spec.k)
        except Exception as exc:
            raise RetrievalError(
                f"retriever {getattr(fn, '__qualname__', fn)!r} failed for {where or 'a row'} "
                f"(query {query!r}): {type(exc).__name__}: {exc}"
            ) from exc
        return as_chunks(items, k=spec.k, where=f"retriever {getattr(fn, '__qualname__', fn)!r} for {where or 'a row'}")


def prepare(spec: Retrieval) -> PreparedRetrieval:
    """Get a spec ready to run: for a knowledge base, load, chunk and index it (once per process).

    Raises:
        RetrievalError: the folder is missing or malformed, or the ``rag`` extra is missing.
    """
    if spec.source != "kb":
        return PreparedRetrieval(spec)
    kb = load_kb(str(spec.kb))
    kind = str(spec.retriever)
    return PreparedRetrieval(
        spec, searcher(kind, kb, chunk_size=spec.chunk_size, overlap=spec.overlap, model=spec.embedding_model)
    )
