"""Retrieval for RAG variants: knowledge bases, chunking, BM25, embeddings (Chroma) and hybrid search.

A variant that declares a :class:`~workbench.core.retrieval_spec.Retrieval` gets its
``{{ context }}`` from here before each call (:func:`prepare`, then
:meth:`PreparedRetrieval.retrieve` per case); the engine keeps the chunks on the row
(``retrieved``) and gives them to scorers. Layer: imports only :mod:`workbench.core` and
:mod:`workbench.util`. The embedding and hybrid retrievers need the ``rag`` extra.
"""

from workbench.retrieval.bm25 import BM25Retriever
from workbench.retrieval.chunking import IndexedChunk, chunk_document, chunk_documents
from workbench.retrieval.hybrid import RRF_K, HybridRetriever, fuse
from workbench.retrieval.kb import Document, KnowledgeBase, kb_hash, load_kb
from workbench.retrieval.run import PreparedRetrieval, clear_cache, prepare, searcher
from workbench.retrieval.user import as_chunks

__all__ = [
    "RRF_K",
    "BM25Retriever",
    "Document",
    "HybridRetriever",
    "IndexedChunk",
    "KnowledgeBase",
    "PreparedRetrieval",
    "as_chunks",
    "chunk_document",
    "chunk_documents",
    "clear_cache",
    "fuse",
    "kb_hash",
    "load_kb",
    "prepare",
    "searcher",
]
