"""Benchmark retrieval: index build time and query latency (p50 / p95) per retriever.

Two corpora:

1. a knowledge-base folder (default ``data/kb`` when it exists, else the test fixture
   ``tests/data/kb_small``), chunked like a variant would (``--chunk-size``, ``--overlap``),
   searched with ``bm25``, ``embedding`` and ``hybrid`` (a fresh Chroma store: the build
   includes embedding every chunk; queries are ``data/support_qa.jsonl``'s questions when
   present, else the articles' titles);
2. a synthetic collection of ``--synthetic`` chunks (default 100,000; 60 words each, Zipf-drawn
   from a 20,000-word vocabulary). BM25 indexes all of them. Embedding them all with
   all-MiniLM-L6-v2 takes far too long on a small CPU, so the embedding rate is measured on
   ``--embed-sample`` chunks and the full build is projected from it; the Chroma collection
   is then filled with that many random unit vectors (the same shape as real embeddings) to
   time the insert and the query latency at full size (each query is embedded for real).

    .venv/bin/python benchmarks/bench_retrieval.py
    .venv/bin/python benchmarks/bench_retrieval.py --synthetic 20000 --queries 50

Needs the ``rag`` extra. Prints a table; ``--json`` also writes the figures to a file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.core.retrieval_spec import Retrieval  # noqa: E402
from workbench.retrieval import BM25Retriever, HybridRetriever, IndexedChunk, clear_cache, load_kb, prepare  # noqa: E402

SYNTHETIC_WORDS = 60
VOCABULARY = 20_000


def percentiles(seconds: Sequence[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds."""
    ms = np.asarray(seconds) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def timed_queries(search: Callable[[str], Any], queries: Sequence[str]) -> tuple[float, float]:
    search(queries[0])  # warm-up: first-call costs (model load, caches) are not query latency
    spent = []
    for query in queries:
        started = time.perf_counter()
        search(query)
        spent.append(time.perf_counter() - started)
    return percentiles(spent)


def kb_queries(kb_dir: Path, n: int) -> list[str]:
    qa = ROOT / "data" / "support_qa.jsonl"
    if qa.exists() and kb_dir.resolve() == (ROOT / "data" / "kb").resolve():
        questions = [json.loads(line)["question"] for line in qa.read_text().splitlines() if line.strip()]
    else:
        questions = [d.title or d.text[:80] for d in load_kb(kb_dir).documents]
    return (questions * (n // max(len(questions), 1) + 1))[:n]


def bench_kb(kb_dir: Path, args: argparse.Namespace, store: Path) -> list[dict[str, Any]]:
    rows = []
    queries = kb_queries(kb_dir, args.queries)
    n_docs = len(load_kb(kb_dir))
    started = time.perf_counter()
    from workbench.retrieval.embedding import MiniLMEmbedding

    MiniLMEmbedding()(["warm up"])  # torch import and model load: once per process, not part of a build
    print(f"embedding model load (torch import included): {time.perf_counter() - started:.1f} s", flush=True)
    for kind in ("bm25", "embedding", "hybrid"):
        spec = Retrieval(kb=str(kb_dir), retriever=kind, k=5, chunk_size=args.chunk_size, overlap=args.overlap)
        os.environ["WORKBENCH_CHROMA"] = str(store / kind)  # a fresh store: every build embeds every chunk
        clear_cache()
        started = time.perf_counter()
        retrieval = prepare(spec)
        build = time.perf_counter() - started
        p50, p95 = timed_queries(lambda q, r=retrieval: r.retrieve({"question": q}), queries)
        note = "bm25 + embedding builds" if kind == "hybrid" else ""
        if kind == "embedding":
            clear_cache()
            started = time.perf_counter()
            reopened = prepare(spec)
            spent, embedded = time.perf_counter() - started, reopened.searcher.embedder.texts
            note = f"reopened unchanged: {spent:.2f} s, {embedded} texts embedded"
        rows.append(
            row(f"KB {kb_dir.name} ({n_docs} docs)", len(retrieval.searcher.chunks), kind, build, p50, p95, note)
        )
        clear_cache()
    return rows


def synthetic_chunks(n: int, seed: int = 0) -> list[IndexedChunk]:
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(VOCABULARY)])
    ranks = np.arange(1, VOCABULARY + 1)
    p = 1 / ranks
    p /= p.sum()
    words = rng.choice(vocab, size=(n, SYNTHETIC_WORDS), p=p)
    return [IndexedChunk(f"doc{i // 4}#{i % 4}", f"doc{i // 4}", "", " ".join(w)) for i, w in enumerate(words)]


class VectorRanker:
    """A Chroma collection of pre-computed vectors, ranked like the embedding retriever."""

    def __init__(self, collection: Any, chunks: list[IndexedChunk]) -> None:
        self.collection, self.chunks = collection, chunks
        self.position = {c.id: i for i, c in enumerate(chunks)}

    def scores(self, query: str, depth: int) -> list[tuple[int, float]]:
        found = self.collection.query(query_texts=[query], n_results=depth, include=["distances"])
        return [(self.position[i], 1 - d) for i, d in zip(found["ids"][0], found["distances"][0], strict=True)]


def bench_synthetic(args: argparse.Namespace, store: Path) -> list[dict[str, Any]]:
    from workbench.retrieval.embedding import MiniLMEmbedding, client

    n = args.synthetic
    label = f"synthetic ({SYNTHETIC_WORDS} words/chunk)"
    chunks = synthetic_chunks(n)
    rng = np.random.default_rng(1)
    queries = [" ".join(rng.choice(chunks[int(i)].text.split(), size=6)) for i in rng.integers(0, n, args.queries)]
    rows = []

    print(f"  synthetic: {n} chunks generated", flush=True)
    started = time.perf_counter()
    bm25 = BM25Retriever(chunks)
    build = time.perf_counter() - started
    p50, p95 = timed_queries(lambda q: bm25.search(q, 5), queries)
    rows.append(row(label, n, "bm25", build, p50, p95, ""))

    embedder = MiniLMEmbedding()
    sample = [c.text for c in chunks[: args.embed_sample]]
    embedder(sample[:32])  # model load and warm-up
    started = time.perf_counter()
    for i in range(0, len(sample), 256):
        embedder(sample[i : i + 256])
    rate = len(sample) / (time.perf_counter() - started)
    projected = n / rate
    print(f"  embedding rate: {rate:.1f} chunks/s on {len(sample)} chunks", flush=True)

    chroma = client(store)
    collection = chroma.create_collection(
        "synthetic", embedding_function=embedder, configuration={"hnsw": {"space": "cosine"}}
    )
    vectors = rng.standard_normal((n, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    started = time.perf_counter()
    batch = min(chroma.get_max_batch_size(), 5000)
    for i in range(0, n, batch):
        collection.add(ids=[c.id for c in chunks[i : i + batch]], embeddings=vectors[i : i + batch])
    insert = time.perf_counter() - started
    print(f"  Chroma insert of {n} vectors: {insert:.1f} s", flush=True)
    ranker = VectorRanker(collection, chunks)
    p50, p95 = timed_queries(lambda q: ranker.scores(q, 5), queries)
    rows.append(
        row(label, n, "embedding", projected + insert, p50, p95,
            f"build projected: embed {args.embed_sample} chunks at {rate:.0f}/s -> {projected / 60:.1f} min "
            f"for {n}, + Chroma insert of {n} vectors {insert:.1f} s (measured)")
    )  # fmt: skip
    hybrid = HybridRetriever(bm25, ranker)  # type: ignore[arg-type]
    p50, p95 = timed_queries(lambda q: hybrid.search(q, 5), queries)
    rows.append(row(label, n, "hybrid", build + projected + insert, p50, p95, "bm25 + embedding builds"))
    return rows


def row(corpus: str, chunks: int, kind: str, build: float, p50: float, p95: float, note: str) -> dict[str, Any]:
    print(f"  {corpus} | {chunks} | {kind}: build {build:.2f} s, p50 {p50:.1f} ms, p95 {p95:.1f} ms", flush=True)
    return {"corpus": corpus, "chunks": chunks, "retriever": kind, "build_s": build, "p50_ms": p50, "p95_ms": p95,
            "note": note}  # fmt: skip


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| corpus | chunks | retriever | index build | query p50 | query p95 | note |",
        "|---|---:|---|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['corpus']} | {r['chunks']:,} | {r['retriever']} | {r['build_s']:.2f} s | "
            f"{r['p50_ms']:.1f} ms | {r['p95_ms']:.1f} ms | {r['note']} |"
        )
    return "\n".join(lines)


def main() -> None:
    default_kb = ROOT / "data" / "kb" if (ROOT / "data" / "kb").is_dir() else ROOT / "tests" / "data" / "kb_small"
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kb", type=Path, default=default_kb)
    parser.add_argument("--chunk-size", type=int, default=128)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--synthetic", type=int, default=100_000, help="chunks in the synthetic collection (0: skip)")
    parser.add_argument("--embed-sample", type=int, default=1000, help="chunks embedded to measure the rate")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args()
    import torch

    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        rows = bench_kb(args.kb, args, Path(tmp))
        if args.synthetic:
            rows += bench_synthetic(args, Path(tmp) / "synthetic")
    print(f"CPU threads used by torch: {torch.get_num_threads()}; os.cpu_count() = {os.cpu_count()}")
    print(f"load average after: {os.getloadavg()} (other processes share the CPU: latencies include waiting)")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
