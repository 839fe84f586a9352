"""wb.retrieval_report: retrievers scored against labelled articles without calling a model."""

import math

import pytest

import workbench as wb

#: A scripted retriever: each question's ranking is fixed, so every metric can be computed by hand.
RANKINGS = {
    "q1": ["a", "b", "c"],  # relevant a: rank 1
    "q2": ["b", "c", "a"],  # relevant a: rank 3, outside k = 2
    "q3": ["c", "a", "a"],  # relevant a, d: a at rank 2 (its second chunk counts once)
}


def scripted(query, k):
    return [{"id": f"{doc}#{i}", "doc_id": doc, "text": doc} for i, doc in enumerate(RANKINGS[query][:k])]


@pytest.fixture
def questions():
    return wb.Dataset.from_records(
        [
            {"id": "1", "question": "q1", "relevant_ids": ["a"], "kind": "single", "language": "en"},
            {"id": "2", "question": "q2", "relevant_ids": ["a"], "kind": "single", "language": "ru"},
            {"id": "3", "question": "q3", "relevant_ids": ["a", "d"], "kind": "multi", "language": "en"},
            {"id": "4", "question": "q1", "relevant_ids": [], "kind": "unanswerable", "language": "en"},
        ],
        expected=["relevant_ids", "kind"],
    )


def test_metrics_match_hand_computed_values(questions):
    report = wb.retrieval_report(questions, {"scripted": wb.Retrieval(retriever=scripted, k=2)}, n_resamples=200)
    cases = report.cases.set_index("case_id")
    assert list(cases.index) == ["1", "2", "3"]  # the unanswerable question is left out and counted
    assert list(cases["recall"]) == [1.0, 0.0, 0.5]
    assert list(cases["precision"]) == [0.5, 0.0, 0.5]
    assert list(cases["mrr"]) == [1.0, 0.0, 0.5]
    assert cases.loc["3", "ndcg"] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert list(cases["hit"]) == [True, False, True]
    assert cases.loc["3", "retrieved"] == ["c", "a"]

    row = report.table.iloc[0]
    assert (row["n"], row["no_relevant"], row["k"]) == (3, 1, 2)
    assert row["recall"] == pytest.approx(0.5)
    assert row["recall_low"] <= row["recall"] <= row["recall_high"]
    assert 0.0 <= row["recall_low"] < row["recall_high"] <= 1.0

    by_language = report.by("language").set_index("language")
    assert by_language.loc["ru", "recall"] == 0.0 and by_language.loc["en", "recall"] == pytest.approx(0.75)
    assert list(report.missed("scripted")["case_id"]) == ["2"]


def test_built_in_retrievers_rank_the_right_article_first():
    questions = wb.Dataset.from_records(
        [
            {"id": "1", "question": "How do I reset a forgotten password?", "relevant_ids": ["account-password-reset"]},
            {"id": "2", "question": "When are seller payouts made?", "relevant_ids": ["payouts-schedule"]},
        ],
        expected=["relevant_ids"],
    )
    report = wb.retrieval_report(
        questions, {"bm25": wb.Retrieval(kb="tests/data/kb_small", retriever="bm25", k=1)}, by=(), n_resamples=200
    )
    assert list(report.cases["recall"]) == [1.0, 1.0]
    assert report.table.iloc[0]["p95_ms"] >= report.table.iloc[0]["p50_ms"] > 0
