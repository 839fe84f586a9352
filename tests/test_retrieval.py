"""Retrieval for RAG variants: KB loading, chunking, bm25 / embedding / hybrid, the Chroma
collection's life cycle, user pipelines, and a variant that retrieves, end to end.

The embedding tests run the real all-MiniLM-L6-v2 (from the `rag` extra) on the six-article
fixture KB in tests/data/kb_small; the Chroma store is a temporary folder per test."""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import workbench as wb
from workbench.core.chunks import Chunk, chunks_from_json, format_context
from workbench.engine.planning import plan
from workbench.retrieval import (
    BM25Retriever,
    Document,
    as_chunks,
    chunk_document,
    clear_cache,
    fuse,
    kb_hash,
    load_kb,
    prepare,
)
from workbench.retrieval.chunking import windows
from workbench.scorers.base import BaseScorer
from workbench.testing import FakeOpenAIServer
from workbench.testing.fake_openai import expected_reply

KB = Path(__file__).parent / "data" / "kb_small"
QUESTIONS = {  # question -> the article that answers it (paraphrased: few shared words)
    "How many days do I have to send an item back?": "returns-window",
    "What percentage does Bazaar take from my sales?": "seller-fees-commission",
    "I can't remember my password, what do I do?": "account-password-reset",
    "When does the money for my sales reach my bank?": "payouts-schedule",
}


@pytest.fixture(autouse=True)
def chroma_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list[Any]) -> Any:
    """A fresh Chroma store and retriever cache per test; and no connection was even tried."""
    monkeypatch.setenv("WORKBENCH_CHROMA", str(tmp_path / "chroma"))
    clear_cache()
    yield tmp_path / "chroma"
    clear_cache()
    assert no_network == [], f"something tried the network: {no_network}"


def copy_kb(tmp_path: Path) -> Path:
    return Path(shutil.copytree(KB, tmp_path / "kb"))


# -- knowledge base and chunking ------------------------------------------------------------------
def test_kb_loads_front_matter_and_its_hash_follows_the_content(tmp_path):
    kb = load_kb(KB)
    assert len(kb) == 6 and [d.id for d in kb.documents] == sorted(d.id for d in kb.documents)
    doc = {d.id: d for d in kb.documents}["returns-window"]
    assert doc.title == "How long do I have to return an item?"
    assert doc.metadata == {"section": "returns", "audience": "buyers"}
    assert doc.text.startswith("You can return most items within 14 days") and "---" not in doc.text
    copy = copy_kb(tmp_path)
    assert kb_hash(copy) == kb.content_hash
    (copy / "returns-window.md").write_text((copy / "returns-window.md").read_text().replace("14 days", "30 days"))
    assert kb_hash(copy) != kb.content_hash


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("no front matter here", "has no YAML front matter"),
        ("---\ntitle: T\n---\nbody", "has no 'id'; add 'id: bad'"),
        ("---\nid: other\n---\nbody", "id 'other' differs from the file name"),
        ("---\nid: bad\nbody without an end", "not closed"),
    ],
)
def test_a_malformed_article_is_named_with_the_fix(tmp_path, text, problem):
    (tmp_path / "bad.md").write_text(text)
    with pytest.raises(wb.RetrievalError, match=problem) as caught:
        load_kb(tmp_path)
    assert "bad.md" in str(caught.value)


def test_a_missing_kb_folder_is_a_clear_error(tmp_path):
    with pytest.raises(wb.RetrievalError, match="does not exist"):
        load_kb(tmp_path / "nowhere")


def test_windows_overlap_and_end_on_the_last_word():
    assert windows(10, size=4, overlap=1) == [(0, 4), (3, 7), (6, 10)]
    assert windows(11, size=4, overlap=1) == [(0, 4), (3, 7), (6, 10), (9, 11)]
    assert windows(4, size=4, overlap=2) == [(0, 4)]  # fits in one chunk: no tail chunk of overlap only
    assert windows(3, size=128, overlap=32) == [(0, 3)]
    assert windows(6, size=3, overlap=0) == [(0, 3), (3, 6)]
    with pytest.raises(wb.UsageError):
        windows(5, size=3, overlap=3)


def test_chunks_keep_the_original_text_and_are_numbered_per_document():
    doc = Document("d", "Title", "one two\n- three four\n\nfive  six seven")
    chunks = chunk_document(doc, size=4, overlap=2)
    assert [c.id for c in chunks] == ["d#0", "d#1", "d#2"]
    assert [c.text for c in chunks] == ["one two\n- three", "- three four\n\nfive", "four\n\nfive  six seven"]
    assert chunks[0].indexed == "Title\none two\n- three"
    assert chunk_document(Document("e", "", "  \n "), size=4, overlap=1) == []


# -- the built-in retrievers ----------------------------------------------------------------------
def test_bm25_ranks_the_obvious_article_first():
    retrieval = prepare(wb.Retrieval(kb=str(KB), retriever="bm25", k=3))
    for question, article in {
        "How long is the return window?": "returns-window",
        "seller commission on electronics": "seller-fees-commission",
        "tracking number for my parcel": "delivery-tracking",
        "minimum payout amount": "payouts-schedule",
    }.items():
        chunks = retrieval.retrieve({"question": question})
        assert chunks[0].doc_id == article, (question, chunks)
        assert [c.rank for c in chunks] == list(range(1, len(chunks) + 1)) and len(chunks) <= 3
        assert [c.score for c in chunks] == sorted((c.score for c in chunks), reverse=True)
        assert chunks[0].title and chunks[0].id.startswith(article + "#")


def test_bm25_stems_plurals_and_ignores_stop_words():
    r = BM25Retriever(chunk_document(Document("a", "", "Refund policies for parcels."), size=10, overlap=0))
    assert r.scores("the policy of the parcel", 1)[0][1] > 0
    assert r.scores("the of and", 1) == []  # only stop words: nothing shares a word, nothing returned


@pytest.mark.parametrize("kind", ["embedding", "hybrid"])
def test_embedding_and_hybrid_find_paraphrased_questions(kind):
    retrieval = prepare(wb.Retrieval(kb=str(KB), retriever=kind, k=4, chunk_size=40, overlap=10))
    for question, article in QUESTIONS.items():
        chunks = retrieval.retrieve({"question": question})
        assert chunks[0].doc_id == article, (kind, question, [c.id for c in chunks])
        assert [c.rank for c in chunks] == [1, 2, 3, 4]
        scores = [c.score for c in chunks]
        assert scores == sorted(scores, reverse=True)
    if kind == "embedding":
        assert -1.0 <= scores[-1] <= scores[0] <= 1.0  # cosine similarities


def test_reciprocal_rank_fusion_rewards_agreement():
    # chunk 5 is second in both rankings; 1 and 9 are first in one only
    fused = fuse([[(1, 9.0), (5, 8.0)], [(9, 0.9), (5, 0.8)]])
    assert fused[0] == (5, pytest.approx(2 / 62))
    assert [p for p, _ in fused] == [5, 1, 9]  # 1 and 9 tie; the earlier KB position first


# -- the Chroma collection's life cycle -----------------------------------------------------------
def embedding_retrieval(kb: Path, **spec: Any) -> Any:
    return prepare(wb.Retrieval(kb=str(kb), retriever="embedding", **{"chunk_size": 40, "overlap": 10, **spec}))


def test_the_collection_is_built_once_reused_and_rebuilt_when_the_kb_or_chunking_changes(tmp_path):
    kb = copy_kb(tmp_path)
    first = embedding_retrieval(kb).searcher
    n_chunks = len(first.chunks)
    assert first.built and first.embedder.texts == n_chunks and first.collection.count() == n_chunks
    assert embedding_retrieval(kb).searcher is first  # same process: the same retriever, nothing embedded
    assert first.embedder.texts == n_chunks

    clear_cache()  # as a new process would: the collection on disk is opened, not rebuilt
    reopened = embedding_retrieval(kb).searcher
    assert reopened is not first and reopened.name == first.name
    assert not reopened.built and reopened.embedder.texts == 0
    query = {"question": "How many days do I have to send an item back?"}
    assert embedding_retrieval(kb).retrieve(query) == first.search(query["question"], 5)
    assert reopened.embedder.texts == 1  # only the query

    other_chunking = embedding_retrieval(kb, chunk_size=20, overlap=5).searcher
    assert other_chunking.built and other_chunking.name != first.name
    assert other_chunking.embedder.texts == len(other_chunking.chunks) > n_chunks

    article = kb / "returns-window.md"
    article.write_text(article.read_text().replace("14 days", "30 days"))
    edited = embedding_retrieval(kb).searcher
    assert edited.built and edited.name != first.name and edited.embedder.texts == n_chunks
    names = {c.name for c in edited.client.list_collections()}
    assert first.name not in names and other_chunking.name not in names  # older content: deleted
    assert "30 days" in embedding_retrieval(kb).retrieve(query)[0].text


def test_the_embedding_retriever_names_the_rag_extra_when_it_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "chromadb", None)  # import chromadb -> ImportError
    monkeypatch.delitem(sys.modules, "workbench.retrieval.embedding", raising=False)
    with pytest.raises(wb.RetrievalError, match=r'pip install -e "\.\[rag\]"') as caught:
        prepare(wb.Retrieval(kb=str(KB), retriever="embedding"))
    assert "embedding and hybrid retrievers need the `rag` extra" in str(caught.value)


def test_the_no_network_guard_refuses_other_hosts(no_network):
    with pytest.raises(OSError, match="tests never use the network"), socket.socket() as sock:
        sock.connect(("10.1.2.3", 443))
    assert no_network == [("10.1.2.3", 443)]
    no_network.clear()  # this test's own attempt is not a failure


# -- the spec on a variant ------------------------------------------------------------------------
def rag_variant(name: str = "rag", **spec: Any) -> wb.PromptVariant:
    return wb.PromptVariant(
        name=name,
        system="Answer from the articles; cite them as [id].",
        prompt="Articles:\n{{ context }}\n\nQuestion: {{ question }}",
        retrieval=wb.Retrieval(**{"kb": str(KB), "k": 2, **spec}),
    )


def test_the_spec_is_checked_and_round_trips():
    spec = wb.Retrieval(kb="data/kb", retriever="hybrid", k=3, chunk_size=64, overlap=16)
    assert wb.Retrieval.from_dict(spec.to_dict()) == spec
    assert spec.variables() == {"question"}
    for bad, message in [
        ({"kb": "x", "k": 0}, "k must be"),
        ({"kb": "x", "overlap": 128}, "overlap must be"),
        ({"kb": "x", "retriever": "tfidf"}, "unknown retriever 'tfidf'"),
        ({}, "exactly one source"),
        ({"kb": "x", "column": "contexts"}, "exactly one source"),
        ({"kb": "x", "query": "{{ question"}, "syntax error"),
        ({"retriever": "no_such_module_xyz:fn"}, "cannot be imported"),
    ]:
        with pytest.raises(wb.ConfigError, match=message):
            wb.Retrieval(**bad)


def test_retrieval_is_part_of_the_variant_version_and_its_dict_form():
    plain = wb.PromptVariant(name="v", prompt="Q: {{ question }}", system="Be brief.", params={"temperature": 0})
    assert plain.version == "d530b59867e6"  # the version before retrieval existed: unchanged
    assert "retrieval" not in plain.to_dict()
    k2, k5 = rag_variant(k=2), rag_variant(k=5)
    assert k2.version != k5.version and k2.version != rag_variant(retriever="hybrid").version
    assert wb.PromptVariant.from_dict(k2.to_dict()) == k2
    assert wb.PromptVariant.from_dict(k2.to_dict()).version == k2.version
    assert k2.to_dict()["retrieval"] == {
        "kb": str(KB), "retriever": "bm25", "k": 2, "chunk_size": 128, "overlap": 32, "query": "{{ question }}",
    }  # fmt: skip
    assert k2.variables() == {"question"}  # context comes from retrieval, not from the dataset


def test_a_variant_that_retrieves_must_use_context():
    with pytest.raises(wb.TemplateError, match=r"retrieves context but no template uses it"):
        wb.PromptVariant(name="v", prompt="{{ question }}", retrieval=wb.Retrieval(kb="data/kb"))


def test_the_yaml_retrieval_block(tmp_path):
    data = {
        "name": "rag",
        "dataset": {"path": str(tmp_path / "qa.jsonl")},
        "variants": [
            {"name": "hybrid_k3", "prompt": "{{ context }}\n{{ question }}",
             "retrieval": {"kb": str(KB), "retriever": "hybrid", "k": 3, "chunk_size": 64, "overlap": 16}},
        ],
    }  # fmt: skip
    (tmp_path / "qa.jsonl").write_text(json.dumps({"id": "q1", "question": "refund?"}) + "\n")
    variant = wb.experiment_from_dict(data).variants[0]
    assert variant.retrieval == wb.Retrieval(kb=str(KB), retriever="hybrid", k=3, chunk_size=64, overlap=16)
    data["variants"][0]["retrieval"]["top_k"] = 3
    with pytest.raises(wb.ConfigError, match=r"variants\[0\]\.retrieval\.top_k.*unknown key"):
        wb.experiment_from_dict(data)


def test_plan_renders_context_and_keeps_the_chunks():
    dataset = wb.Dataset.from_records([{"id": "q1", "question": "How long is the return window for an item?"}])
    exp = wb.Experiment(name="rag", variants=[rag_variant()], dataset=dataset, models=["openai/gpt-4o-mini"])
    (call,) = list(plan(exp))
    assert call.retrieved is not None and call.retrieved[0].doc_id == "returns-window"
    assert len(call.retrieved) == 2
    user = call.messages[-1]["content"]
    assert user == f"Articles:\n{format_context(call.retrieved)}\n\nQuestion: How long is the return window for an item?"
    assert "[returns-window] You can return most items within 14 days" in user


# -- the user's own pipeline ----------------------------------------------------------------------
def my_retriever(query: str, k: int) -> list[dict[str, Any]]:
    """A user's pipeline: always the same two passages, the second with a score."""
    return [
        {"id": "returns-window", "text": "Returns within 14 days.", "title": "Returns"},
        {"doc_id": "refunds-timing", "id": "refunds-timing#3", "text": "Refunds in 3 days.", "score": 0.5},
        "an extra passage",
    ][:k]


CONTEXTS = [
    {"id": "returns-window", "text": "Returns within 14 days.", "title": "Returns"},
    {"doc_id": "refunds-timing", "id": "refunds-timing#3", "text": "Refunds in 3 days.", "score": 0.5},
]


def test_a_function_and_a_dataset_column_give_the_same_chunks():
    from_function = prepare(wb.Retrieval(retriever=my_retriever, k=2)).retrieve({"question": "q"})
    from_list = prepare(wb.Retrieval(column="contexts", k=2)).retrieve({"contexts": CONTEXTS})
    from_json = prepare(wb.Retrieval(column="contexts", k=2)).retrieve({"contexts": json.dumps(CONTEXTS)})
    expected = (
        Chunk("returns-window", "returns-window", "Returns within 14 days.", 1, None, "Returns"),
        Chunk("refunds-timing#3", "refunds-timing", "Refunds in 3 days.", 2, 0.5),
    )
    assert from_function == from_list == from_json == expected
    assert as_chunks(["a", "b", "c"], k=2) == (Chunk("1", "1", "a", 1), Chunk("2", "2", "b", 2))
    assert as_chunks(None) == as_chunks("") == as_chunks(float("nan")) == ()
    reranked = as_chunks([dataclasses.replace(expected[1], rank=7), expected[0]])
    assert [(c.id, c.rank) for c in reranked] == [("refunds-timing#3", 1), ("returns-window", 2)]


def test_bad_user_context_names_its_origin():
    with pytest.raises(wb.RetrievalError, match=r"row 3 column 'contexts': item 1 has no 'text' key"):
        prepare(wb.Retrieval(column="contexts")).retrieve({"contexts": [{"id": "x"}]}, where="row 3")
    with pytest.raises(wb.RetrievalError, match=r"retriever .*boom.* failed for row 4 .*ZeroDivisionError"):

        def boom(query: str, k: int) -> list[str]:
            return [str(1 / 0)]

        prepare(wb.Retrieval(retriever=boom)).retrieve({"question": "q"}, where="row 4")


# -- end to end through the fake OpenAI server ----------------------------------------------------
@dataclass(frozen=True)
class TopDoc(BaseScorer):
    """1 when the first retrieved document is the labelled one (reads ScoringContext.retrieved)."""

    def score(self, *, inputs: Any, outputs: str, expectations: Any, context: Any = None) -> float:
        return float(context.retrieved is not None and context.retrieved[0].doc_id == expectations["article"])


def test_a_rag_experiment_end_to_end_through_the_fake_server(tmp_path):
    rows = [
        {"id": "q1", "question": "How long is the return window?", "article": "returns-window", "contexts": CONTEXTS},
        {"id": "q2", "question": "seller commission on electronics", "article": "seller-fees-commission",
         "contexts": CONTEXTS[1:]},
    ]  # fmt: skip
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bodies: list[dict[str, Any]] = []

    def reply(body: dict[str, Any]) -> str:
        bodies.append(body)
        return expected_reply(body["model"], body["messages"])

    with FakeOpenAIServer(reply=reply) as server:
        params = {"api_base": server.base_url, "api_key": "sk-fake", "temperature": 0}
        variants = [
            dataclasses.replace(rag_variant("bm25_k2"), params=params),
            wb.PromptVariant(name="own", prompt="{{ context }}\n{{ question }}", params=params,
                             retrieval=wb.Retrieval(column="contexts", k=2)),
        ]  # fmt: skip
        dataset = wb.Dataset.load(path, expected=["article"])
        exp = wb.Experiment(name="rag", variants=variants, dataset=dataset, models=["openai/fake"], scorers=[TopDoc()])
        result = exp.run(log_to_mlflow=False, progress=False)
        again = exp.run(log_to_mlflow=False, progress=False)
    assert len(bodies) == 4 and again.calls_made == 0  # the context is in the cache key: same context, cache hit
    sent = {b["messages"][-1]["content"].split("Question: ")[-1]: b["messages"][-1]["content"] for b in bodies}
    assert "[returns-window] You can return most items within 14 days" in sent["How long is the return window?"]
    assert "[seller-fees-commission] Bazaar charges sellers" in sent["seller commission on electronics"]

    cases = result.cases.set_index(["variant", "case_id"])
    bm25 = chunks_from_json(cases.loc[("bm25_k2", "q1"), "retrieved"])
    assert bm25 is not None and bm25[0].doc_id == "returns-window" and 1 <= len(bm25) <= 2
    assert [c.rank for c in bm25] == list(range(1, len(bm25) + 1))
    assert all(c.score is not None and c.score > 0 for c in bm25)
    own = chunks_from_json(cases.loc[("own", "q2"), "retrieved"])
    assert own == (Chunk("refunds-timing#3", "refunds-timing", "Refunds in 3 days.", 1, 0.5),)
    assert cases.loc[("bm25_k2", "q1"), "score.top_doc"] == 1.0  # the scorer saw the same chunks
    assert cases.loc[("bm25_k2", "q2"), "score.top_doc"] == 1.0
    assert cases.loc[("own", "q2"), "score.top_doc"] == 0.0
    assert list(result.cases.columns).index("retrieved") == list(result.cases.columns).index("tool_calls") + 1


def test_the_retrieved_column_exists_only_when_a_variant_retrieves():
    from workbench.core import schema as col

    assert col.RETRIEVED not in col.table_schema(inputs={}, expected={}, scorers=[]).names
    assert col.RETRIEVED in col.table_schema(inputs={}, expected={}, scorers=[], retrieved=True).names
