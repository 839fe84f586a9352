"""RAG scorers: retrieval metrics (hand-computed reference values), citations, faithfulness, refusal."""

from __future__ import annotations

import math

import numpy as np
import pytest

from workbench.core.chunks import Chunk
from workbench.core.exceptions import ScorerError
from workbench.scorers.base import run_scorer, scorer_from_spec
from workbench.scorers.context import ScoringContext
from workbench.scorers.retrieval_metrics import (
    MRR,
    NO_RELEVANT,
    NDCGAtK,
    PrecisionAtK,
    RecallAtK,
    ndcg_at_k,
    relevant_ids,
)


def chunks(*docs: str, texts: dict[str, str] | None = None) -> tuple[Chunk, ...]:
    """Chunks in rank order; a repeated doc id is a second chunk of the same document."""
    texts = texts or {}
    seen: dict[str, int] = {}
    out = []
    for rank, doc in enumerate(docs, start=1):
        n = seen[doc] = seen.get(doc, -1) + 1
        out.append(Chunk(f"{doc}#{n}", doc, texts.get(doc, f"text of {doc}"), rank, 1.0 / rank))
    return tuple(out)


def ctx(output: str = "", *, retrieved=None, relevant=None, inputs=None, **expectations) -> ScoringContext:
    if relevant is not None:
        expectations["relevant_ids"] = relevant
    return ScoringContext(inputs=inputs or {}, output=output, expectations=expectations, retrieved=retrieved)


def score(scorer, context: ScoringContext):
    import asyncio

    return asyncio.run(run_scorer(scorer, context))


# Ranks: d1, d2, d1 (second chunk of d1), d3, d4 -> documents d1, d2, d3, d4; relevant d3 and d5.
MULTI = chunks("d1", "d2", "d1", "d3", "d4")
IDCG_2 = 1 + 1 / math.log2(3)  # two relevant documents: ranks 1 and 2 in the ideal ranking


@pytest.mark.parametrize(
    ("scorer", "expected"),
    [
        (RecallAtK(k=3), 0.5),  # d3 is the 3rd distinct document (the 4th chunk): 1 of 2 relevant
        (RecallAtK(k=2), 0.0),
        (RecallAtK(k=10), 0.5),  # k larger than what was retrieved
        (PrecisionAtK(k=3), 1 / 3),
        (PrecisionAtK(k=10), 0.1),  # divided by k, not by the 4 documents retrieved
        (PrecisionAtK(k=1), 0.0),
        (MRR(), 1 / 3),
        (MRR(k=2), 0.0),
        (NDCGAtK(k=3), (1 / math.log2(4)) / IDCG_2),  # = 0.5 / 1.6309 = 0.30657
        (NDCGAtK(k=10), 0.5 / IDCG_2),
        (NDCGAtK(k=1), 0.0),
    ],
    ids=lambda v: v.name if hasattr(v, "name") else None,
)
def test_reference_values_with_a_document_split_into_two_chunks(scorer, expected):
    result = score(scorer, ctx(retrieved=MULTI, relevant=["d3", "d5"]))
    assert result.value == pytest.approx(expected)
    assert math.isclose(NDCGAtK(k=3).compute(["d1", "d2", "d3"], ["d3", "d5"]), 0.306573, abs_tol=1e-6)


def test_duplicate_chunks_of_a_relevant_document_count_once():
    retrieved = chunks("d1", "d1", "d1", "d2")
    assert score(PrecisionAtK(k=2), ctx(retrieved=retrieved, relevant=["d1"])).value == 0.5  # d1, d2; not 2/2
    assert score(RecallAtK(k=1), ctx(retrieved=retrieved, relevant=["d1", "d2"])).value == 0.5
    # all relevant documents in the first two ranks: the ideal ranking, 1.0 (not more)
    assert score(NDCGAtK(k=3), ctx(retrieved=retrieved, relevant=["d1", "d2"])).value == pytest.approx(1.0)
    # chunks 1-3 are one document, so d2 is rank 2 (reciprocal rank 1/2, not 1/4)
    assert score(MRR(), ctx(retrieved=retrieved, relevant=["d2"])).value == 0.5


def test_ties_in_score_are_ordered_by_rank_not_by_tuple_order():
    tied = (
        Chunk("b#0", "b", "...", rank=2, score=0.7),
        Chunk("a#0", "a", "...", rank=1, score=0.7),
        Chunk("c#0", "c", "...", rank=3, score=0.2),
    )
    assert score(MRR(), ctx(retrieved=tied, relevant=["b"])).value == 0.5
    assert score(RecallAtK(k=1), ctx(retrieved=tied, relevant=["a"])).value == 1.0
    assert score(NDCGAtK(k=3), ctx(retrieved=tied, relevant=["b", "c"])).value == pytest.approx(
        (1 / math.log2(3) + 1 / math.log2(4)) / IDCG_2  # 0.6309 + 0.5 over 1.6309 = 0.6934
    )


def test_nothing_relevant_retrieved_scores_zero_and_nothing_retrieved_too():
    for scorer in (RecallAtK(k=3), PrecisionAtK(k=3), MRR(), NDCGAtK(k=3)):
        assert score(scorer, ctx(retrieved=chunks("x", "y"), relevant=["d1"])).value == 0.0
        assert score(scorer, ctx(retrieved=(), relevant=["d1"])).value == 0.0


def test_no_relevant_article_is_not_scored_and_is_counted():
    for scorer in (RecallAtK(k=3), PrecisionAtK(k=3), MRR(), NDCGAtK(k=3)):
        result = score(scorer, ctx(retrieved=chunks("d1"), relevant=[]))
        assert math.isnan(result.value)
        assert result.reason == NO_RELEVANT == "no relevant article labelled: scored by refusal instead"
        expectations = [{"relevant_ids": []}, {"relevant_ids": ["d1"]}, {"relevant_ids": "[]"}]
        assert scorer.aggregate(["", "", ""], expectations) == {"no_relevant_cases": 2.0}


def test_no_retrieval_is_not_scored_with_a_reason():
    result = score(RecallAtK(k=3), ctx(retrieved=None, relevant=["d1"]))
    assert math.isnan(result.value)
    assert "no retrieval" in result.reason and "retriever" in result.reason


def test_reason_names_hits_and_misses():
    result = score(RecallAtK(k=3), ctx(retrieved=MULTI, relevant=["d3", "d5"]))
    assert result.reason == "1 of 2 relevant in top 3 ['d1', 'd2', 'd3']; missed ['d5']"


def test_relevant_ids_accepts_lists_json_text_comma_text_and_arrays():
    assert relevant_ids({"relevant_ids": ["a", "b", "a"]}) == ["a", "b"]
    assert relevant_ids({"relevant_ids": '["a", "b"]'}) == ["a", "b"]
    assert relevant_ids({"relevant_ids": "a, b"}) == ["a", "b"]
    assert relevant_ids({"relevant_ids": ""}) == []
    assert relevant_ids({"relevant_ids": np.array(["a"], dtype=object)}) == ["a"]
    with pytest.raises(ScorerError, match="expected columns are \\['label'\\]"):
        relevant_ids({"label": "x"})
    with pytest.raises(ScorerError, match="give a list of document ids"):
        relevant_ids({"relevant_ids": 3})
    with pytest.raises(ScorerError, match="not a JSON list"):
        RecallAtK().check({"relevant_ids": "[oops"})


def test_specs_names_and_bad_k():
    built = scorer_from_spec({"type": "ndcg_at_k", "k": 8})
    assert isinstance(built, NDCGAtK) and built.name == "ndcg_at_8"
    assert scorer_from_spec(RecallAtK(k=3).spec()) == RecallAtK(k=3)
    assert (MRR().name, MRR(k=5).name, PrecisionAtK(k=2, metric_name="p2").name) == ("mrr", "mrr_at_5", "p2")
    with pytest.raises(ScorerError, match="`k` must be a whole number >= 1"):
        RecallAtK(k=0)


def test_ndcg_agrees_with_sklearn_on_random_rankings():
    # ranx would be the reference, but it pulls numba + llvmlite (~64 MB) and ir-datasets;
    # scikit-learn's ndcg_score (binary gains, log2 discount, ideal over the true gains) is the check.
    from sklearn.metrics import ndcg_score

    rng = np.random.default_rng(7)
    for _ in range(200):
        n_docs, k = int(rng.integers(3, 12)), int(rng.integers(1, 6))
        k = min(k, n_docs)
        gains = (rng.random(n_docs) < 0.3).astype(float)
        if not gains.any():
            gains[rng.integers(n_docs)] = 1.0
        order = rng.permutation(n_docs)  # order[0] is the best-ranked document
        ranked = [f"d{i}" for i in order]
        relevant = [f"d{i}" for i in np.flatnonzero(gains)]
        scores = np.empty(n_docs)
        scores[order] = np.arange(n_docs, 0, -1)  # distinct scores: no tie averaging in sklearn
        expected = ndcg_score(gains[None, :], scores[None, :], k=k)
        assert ndcg_at_k(ranked, relevant, k) == pytest.approx(expected), (ranked, relevant, k)


# ---- citations -------------------------------------------------------------------------------

KB_TEXTS = {
    "returns-window": "Buyers can return most items within 14 days after delivery. Return shipping is free.",
    "seller-fees": "Bazaar charges sellers a 5% commission on each sale, with a minimum of 20 RUB.",
    "payouts": "Payouts are sent every Monday to the bank card in Seller account > Payouts.",
}
RETRIEVED = chunks("returns-window", "seller-fees", texts=KB_TEXTS)


def test_citation_checker_correct_not_retrieved_nonexistent_and_unsupported():
    from workbench.scorers.citations import CitationCorrectness

    scorer = CitationCorrectness(kb=list(KB_TEXTS))
    answer = (
        "You can return an item within 14 days after delivery [returns-window]. "  # correct
        "Payouts are sent every Monday [payouts]. "  # in the KB, not retrieved
        "Returns are handled by the courier [returns-policy]. "  # no such article
        "The commission is 10% per sale [seller-fees]."  # retrieved, but says 5%
    )
    result = score(scorer, ctx(answer, retrieved=RETRIEVED, relevant=["returns-window"]))
    assert result.value == 0.25
    assert result.reason.startswith("1 of 4 citations correct; ")
    assert "[payouts] was not retrieved" in result.reason
    assert "[returns-policy] is not in the knowledge base" in result.reason
    assert '[seller-fees] does not support "The commission is 10% per sale [seller-fees]."' in result.reason


def test_citation_variants_and_markers_after_the_full_stop():
    from workbench.scorers.citations import CitationCorrectness, cited_ids

    assert cited_ids("a [x#2][y] b [source: z, x] [see](http://u) 【w】") == ["x", "y", "z", "w"]
    answer = "Sellers pay a 5% commission on each sale. [seller-fees#0]\nReturn shipping is free 【returns-window】"
    result = score(CitationCorrectness(), ctx(answer, retrieved=RETRIEVED, relevant=["seller-fees"]))
    assert (result.value, result.reason) == (1.0, "2 of 2 citations correct")
    # without `kb`, an id that was not retrieved cannot be told apart from one that does not exist
    result = score(CitationCorrectness(), ctx("Payouts come every Monday [payouts].", retrieved=RETRIEVED, relevant=[]))
    assert result.value == 0.0 and "[payouts] is not in the retrieved context" in result.reason


def test_a_sentence_combining_two_articles_may_cite_both_but_not_a_bystander():
    from workbench.scorers.citations import CitationCorrectness

    answer = "Items can be returned within 14 days, and sellers pay a 5% commission [returns-window, seller-fees]."
    result = score(CitationCorrectness(), ctx(answer, retrieved=RETRIEVED, relevant=["returns-window"]))
    assert result.value == 1.0
    three = chunks("returns-window", "seller-fees", "payouts", texts=KB_TEXTS)
    answer = "Return shipping is free [returns-window][payouts]."
    result = score(CitationCorrectness(), ctx(answer, retrieved=three, relevant=["returns-window"]))
    assert result.value == 0.5 and "[payouts] does not support" in result.reason


def test_no_citations_is_zero_for_an_answer_and_nan_for_a_refusal_or_without_retrieval():
    from workbench.scorers.citations import CitationCorrectness

    scorer = CitationCorrectness()
    result = score(scorer, ctx("Returns are free within 14 days.", retrieved=RETRIEVED, relevant=["returns-window"]))
    assert (result.value, result.reason) == (0.0, "no citations though an answer was expected")
    refusal = "I don't have information about gift cards. Please contact support."
    assert math.isnan(score(scorer, ctx(refusal, retrieved=RETRIEVED, relevant=["returns-window"])).value)
    assert math.isnan(score(scorer, ctx("Which order do you mean?", retrieved=RETRIEVED, relevant=[])).value)
    assert math.isnan(score(scorer, ctx("Free [returns-window].", retrieved=None, relevant=["x"])).value)
    metrics = scorer.aggregate(
        ["Free returns [returns-window].", "Free returns.", refusal],
        [{"relevant_ids": ["returns-window"]}] * 3,
    )
    assert metrics == {"answers_without_citations": 0.5, "citations_per_answer": 0.5}


def test_kb_folder_and_bad_kb(tmp_path):
    from workbench.scorers.citations import CitationCorrectness

    for name in KB_TEXTS:
        (tmp_path / f"{name}.md").write_text("---\nid: x\n---\ntext", encoding="utf-8")
    scorer = CitationCorrectness(kb=str(tmp_path))
    result = score(scorer, ctx("Payouts every Monday [payouts].", retrieved=RETRIEVED, relevant=["payouts"]))
    assert result.reason == "0 of 1 citations correct; [payouts] was not retrieved"
    assert scorer_from_spec(scorer.spec()) == scorer
    with pytest.raises(ScorerError, match="is not a folder"):
        CitationCorrectness(kb=str(tmp_path / "missing"))


# ---- refusal -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "refuses"),
    [
        ("I'm sorry, the help centre does not cover gift wrapping.", True),
        ("I don’t have information about that. Please contact support.", True),
        ("Please contact support.", True),
        ("К сожалению, в справочном центре нет информации об этом. Обратитесь в службу поддержки.", True),
        ("Я не могу ответить на этот вопрос.", True),
        ("Обратитесь в поддержку.", True),
        ("You can return items within 14 days of delivery [returns-window].", False),
        # a real answer that ends by pointing to support is not a refusal
        ("Parcels arrive in 3-7 days. Track it under My orders. If it is late, contact support.", False),
        ("Вернуть товар можно в течение 14 дней после получения.", False),
        # answers that merely contain a negative phrase (from the project's reference answers)
        ("Give the RRN to your bank. If the bank can't find it, write to Help > Chat with support.", False),
        ("A full refund if the order never arrives. Change-of-mind returns are not covered.", False),
        ("The help centre says nothing about price matching; I suggest contacting support.", True),
        ("The help centre doesn't explain how to change the phone number. Please ask support.", True),
    ],
)
def test_refusal_markers_in_english_and_russian(reply, refuses):
    from workbench.scorers.refusal import is_refusal

    assert is_refusal(reply) is refuses


def test_refusal_correctness_scores_and_rates():
    from workbench.scorers.refusal import RefusalCorrectness

    scorer = RefusalCorrectness()
    answer, refusal = "Returns are free within 14 days.", "I don't know; please contact support."
    cases = [
        (answer, {"relevant_ids": ["returns-window"]}, {}, 1.0),
        (refusal, {"relevant_ids": ["returns-window"]}, {}, 0.0),  # false refusal
        (refusal, {"relevant_ids": []}, {}, 1.0),
        (answer, {"relevant_ids": []}, {}, 0.0),  # missed refusal
        (answer, {"relevant_ids": ["x"]}, {"kind": "unanswerable"}, 0.0),  # the kind says so too
        (refusal, {"kind": "unanswerable"}, {}, 1.0),
        # conversation turns say what the reply should do
        (refusal, {"relevant_ids": [], "expected_behaviour": "refuse"}, {}, 1.0),
        (refusal, {"relevant_ids": []}, {"expected_behaviour": "clarify"}, 0.0),
    ]
    for output, expectations, inputs, expected in cases:
        assert score(scorer, ctx(output, inputs=inputs, **expectations)).value == expected, output
    metrics = scorer.aggregate([c[0] for c in cases], [c[1] for c in cases], inputs=[c[2] for c in cases])
    assert metrics == {"false_refusal_rate": 2 / 3, "missed_refusal_rate": 0.4, "unanswerable_cases": 5.0}
    with pytest.raises(ScorerError, match="needs expected column 'relevant_ids'"):
        scorer.score(inputs={}, outputs="x", expectations={"label": "y"})
    custom = RefusalCorrectness(markers=["no idea"])
    assert custom.score(inputs={}, outputs="No idea, sorry.", expectations={"relevant_ids": []}).value == 1.0
    assert scorer_from_spec(custom.spec()) == custom and "markers" not in scorer.spec()


# ---- faithfulness and answer relevance -------------------------------------------------------


def test_lexical_faithfulness_counts_supported_claims_and_says_it_is_an_approximation():
    from workbench.judge.grounding import Faithfulness

    answer = (
        "Happy to help! "  # no claim
        "You can return most items within 14 days after delivery [returns-window]. "  # supported
        "Sellers pay a 7% commission on each sale. "  # the number is wrong (5%)
        "Gift wrapping costs nothing at Bazaar."  # not in the context at all
    )
    result = score(Faithfulness(), ctx(answer, retrieved=RETRIEVED, relevant=["returns-window"]))
    assert result.value == pytest.approx(1 / 3)
    assert result.reason == (
        "1 of 3 claims supported (lexical approximation: content-word overlap and exact numbers, not entailment); "
        'unsupported: "Sellers pay a 7% commission on each sale."; "Gift wrapping costs nothing at Bazaar."'
    )
    # the same claim in one chunk: supported; words spread over unrelated chunks do not add up
    assert score(Faithfulness(), ctx("Sellers pay a 5% commission on each sale.", retrieved=RETRIEVED)).value == 1.0
    assert score(Faithfulness(threshold=1.0), ctx("Sellers pay 5% on returns.", retrieved=RETRIEVED)).value == 0.0


def test_faithfulness_does_not_score_refusals_missing_retrieval_or_empty_answers():
    from workbench.judge.grounding import Faithfulness

    refusal = score(Faithfulness(), ctx("Sorry, I don't have information about that.", retrieved=RETRIEVED))
    assert math.isnan(refusal.value) and "refusal" in refusal.reason
    assert math.isnan(score(Faithfulness(), ctx("Returns: 14 days.", retrieved=None)).value)
    assert score(Faithfulness(), ctx("OK!", retrieved=RETRIEVED)).reason == "no claims to check"
    assert Faithfulness().calls_models is False and Faithfulness(judge_model="openai/x").calls_models is True


class StubModels:
    """A ModelCaller with fixed answers: the claims to extract, and a verdict per claim."""

    def __init__(self, claims_reply: str, verdicts: dict[str, str]):
        self.claims_reply, self.verdicts, self.calls = claims_reply, verdicts, []

    async def complete(self, *, model, messages, params, repeat=0):
        from workbench.core.outputs import Answer, ModelReply

        self.calls.append((model, messages, dict(params)))
        text = messages[-1]["content"]
        if text.startswith("Break the answer"):
            output = self.claims_reply
        else:
            claim = next(c for c in self.verdicts if f'"""\n{c}\n"""' in text)
            output = self.verdicts[claim]
        return Answer(ModelReply(output, prompt_tokens=10, completion_tokens=5, cost_usd=0.001), cached=False)


def test_judge_faithfulness_extracts_claims_and_asks_per_claim_through_the_run_call_path():
    from workbench.judge.grounding import Faithfulness

    models = StubModels(
        '```json\n["Returns are free within 14 days.", "Refunds arrive in 2 hours."]\n```',
        {
            "Returns are free within 14 days.": '{"reason": "the context says 14 days", "score": "PASS"}',
            "Refunds arrive in 2 hours.": '{"reason": "not in the context", "score": "FAIL"}',
        },
    )
    context = ScoringContext(
        inputs={"question": "How do returns work?"},
        output="Returns are free for 14 days, and your refund arrives in 2 hours [returns-window].",
        expectations={"relevant_ids": ["returns-window"]},
        retrieved=RETRIEVED,
        models=models,
    )
    result = score(Faithfulness(judge_model="openai/judge"), context)
    assert result.value == 0.5
    assert result.reason == '1 of 2 claims supported (judge openai/judge); unsupported: "Refunds arrive in 2 hours."'
    assert (result.prompt_tokens, result.completion_tokens, result.cost_usd, result.cached) == (30, 15, 0.003, False)
    assert len(models.calls) == 3 and {m for m, _, _ in models.calls} == {"openai/judge"}
    assert "How do returns work?" in models.calls[0][1][-1]["content"]
    verdict_prompt = models.calls[1][1][-1]["content"]
    assert "[returns-window] Buyers can return most items within 14 days" in verdict_prompt
    assert models.calls[1][2]["temperature"] == 0.0


def test_judge_faithfulness_falls_back_to_sentences_when_extraction_is_not_a_list():
    from workbench.judge.grounding import Faithfulness

    answer = "Returns are free within 14 days [returns-window]. Refunds arrive in 2 hours."
    models = StubModels(
        "Sure! Here are the claims: returns are free",
        {"Returns are free within 14 days.": "PASS", "Refunds arrive in 2 hours.": "I cannot tell"},
    )
    context = ScoringContext(inputs={}, output=answer, expectations={}, retrieved=RETRIEVED, models=models)
    result = score(Faithfulness(judge_model="openai/judge"), context)
    assert result.value == 1.0  # one PASS; the unreadable verdict is left out, not counted as a FAIL
    assert "1 verdict(s) unreadable or failed" in result.reason and "claims are sentences" in result.reason


def test_judge_params_are_redacted_in_the_spec():
    from workbench.judge.grounding import Faithfulness

    spec = Faithfulness(judge_model="openai/judge", params={"api_key": "sk-secret-123456789"}).spec()
    assert "sk-secret-123456789" not in str(spec)
    assert Faithfulness().spec() == {"type": "faithfulness", "threshold": 0.6, "extract_claims": True}
    assert scorer_from_spec({"type": "faithfulness", "threshold": 0.5}) == Faithfulness(threshold=0.5)


def test_answer_relevance_lexical_and_judged():
    from workbench.judge.grounding import AnswerRelevance

    question = {"question": "How long is the return window for shoes?"}
    good = score(AnswerRelevance(), ctx("The return window for shoes is 14 days.", inputs=question, relevant=["r"]))
    assert good.value == 1.0 and "lexical approximation" in good.reason
    partial = score(AnswerRelevance(), ctx("The return window is 14 days.", inputs=question, relevant=["r"]))
    assert partial.value == pytest.approx(2 / 3)  # return, window; not shoes
    off = score(AnswerRelevance(), ctx("Payouts are sent on Mondays.", inputs=question, relevant=["r"]))
    assert off.value == 0.0
    refused = score(AnswerRelevance(), ctx("I don't know.", inputs=question, relevant=["r"]))
    assert (refused.value, refused.reason) == (0.0, "a refusal does not answer the question")
    assert math.isnan(score(AnswerRelevance(), ctx("I don't know.", inputs=question, relevant=[])).value)
    models = StubModels("", {"The return window is 14 days.": '{"reason": "partly", "score": 4}'})
    context = ScoringContext(
        inputs=question, output="The return window is 14 days.", expectations={}, retrieved=None, models=models
    )
    judged = score(AnswerRelevance(judge_model="openai/judge"), context)
    assert (judged.value, judged.reason, judged.prompt_tokens) == (0.75, "partly", 10)
    with pytest.raises(ScorerError, match="needs `question=`"):
        score(AnswerRelevance(), ctx("x", inputs={"a": "1", "b": "2"}))


def test_numbers_must_match_in_any_reading_and_computed_numbers_are_unsupported():
    from workbench.scorers.support import support

    passage = "The refund is 2,851 RUB after 149 RUB return shipping is deducted; it arrives in 3-7 days."
    assert support("Your refund is 2,851 RUB.", [passage]).supported  # "2,851" read as 2851 or 2.851
    assert support("Return shipping of 149 RUB is deducted from the refund.", [passage]).supported
    computed = support("The refund is 3,100 RUB before the return shipping is deducted.", [passage])
    assert computed.coverage == 1.0 and computed.numbers_missing == (3.1,)  # 3,100: 3.1 or 3100, neither written
    assert not computed.supported


def test_judge_faithfulness_through_the_fake_openai_server_and_the_response_cache(tmp_path):
    """The real call path (litellm to a local fake server, a SQLite cache): a re-score makes no call."""
    import json
    import re

    from workbench.core.settings import RunSettings
    from workbench.engine.cache import ResponseCache
    from workbench.engine.calls import CallPath
    from workbench.judge.grounding import Faithfulness
    from workbench.testing import FakeOpenAIServer

    def reply(body: dict) -> str:
        text = body["messages"][-1]["content"]
        if text.startswith("Break the answer"):
            return json.dumps(["Buyers can return items within 14 days.", "Return shipping costs 300 RUB."])
        claim = re.search(r'Response to judge:\n"""\n(.*?)\n"""', text, re.S).group(1)
        return json.dumps({"reason": "checked", "score": "PASS" if "14 days" in claim else "FAIL"})

    answer = "You can return items within 14 days, and return shipping costs 300 RUB [returns-window]."
    with FakeOpenAIServer(reply=reply) as server:
        scorer = Faithfulness(judge_model="openai/judge", params={"api_base": server.base_url, "api_key": "sk-fake-1"})
        models = CallPath(RunSettings(), cache=ResponseCache(str(tmp_path / "cache.sqlite")))
        context = ScoringContext(
            inputs={"question": "returns?"}, output=answer, expectations={}, retrieved=RETRIEVED, models=models
        )
        first = score(scorer, context)
        calls = server.requests
        again = score(scorer, context)
        assert server.requests == calls == 3  # one extraction, two verdicts; none the second time
    assert first.value == again.value == 0.5
    assert 'unsupported: "Return shipping costs 300 RUB."' in first.reason
    assert first.cached is False and again.cached is True and first.prompt_tokens > 0


def test_group_metrics_reach_the_summary_row():
    """The engine's summary calls each aggregate with the group's outputs, expected values and inputs."""
    import pandas as pd

    from workbench.engine.summary import summarize
    from workbench.scorers.refusal import RefusalCorrectness

    scorers = [RecallAtK(k=5), RefusalCorrectness()]
    outputs = ["Returns are free within 14 days.", "I don't know, please contact support.", "It costs 5%."]
    relevant = [["returns-window"], ["returns-window"], []]
    frame = pd.DataFrame(
        {
            "case_id": ["a", "b", "c"], "variant": "v", "variant_version": "1", "model": "m", "error": None,
            "prompt_tokens": 10, "completion_tokens": 5, "cost_usd": 0.0, "cached": False, "latency_s": 0.1,
            "output": outputs, "expected.relevant_ids": relevant, "input.question": ["q1", "q2", "q3"],
            "score.recall_at_5": [1.0, 0.0, math.nan], "score.refusal_correctness": [1.0, 0.0, 0.0],
        }
    )  # fmt: skip
    row = summarize(frame, scorers).iloc[0]
    assert row["recall_at_5"] == 0.5 and row["recall_at_5.no_relevant_cases"] == 1.0
    assert row["refusal_correctness.false_refusal_rate"] == 0.5
    assert row["refusal_correctness.missed_refusal_rate"] == 1.0


def test_a_sentence_joining_facts_of_two_chunks_is_supported_clause_by_clause():
    from workbench.scorers.support import support

    review = "You can write a review within 90 days of delivery."
    edit = "A published review can be edited within 30 days of publishing."
    sentence = "You can write a review within 90 days of delivery, and edit it within 30 days of publishing."
    both = support(sentence, [review, edit])
    assert both.supported and both.passage is None
    assert not support(sentence, [review]).supported  # the second clause has no passage
    wrong = "You can write a review within 90 days of delivery; it can be edited within 60 days of publishing."
    assert not support(wrong, [review, edit]).supported


def test_answers_in_another_script_than_the_articles_are_not_scored_lexically():
    from workbench.judge.grounding import AnswerRelevance, Faithfulness
    from workbench.scorers.citations import CitationCorrectness

    answer = "Вернуть товар можно в течение 14 дней после доставки [returns-window]."
    result = score(Faithfulness(), ctx(answer, retrieved=RETRIEVED, relevant=["returns-window"]))
    assert math.isnan(result.value) and "different scripts" in result.reason and "judge_model" in result.reason
    result = score(CitationCorrectness(), ctx(answer, retrieved=RETRIEVED, relevant=["returns-window"]))
    assert math.isnan(result.value)
    assert result.reason == "1 left out: support not checkable (answer and article in different scripts)"
    cited_wrong = answer.replace("[returns-window]", "[returns-window][payouts]")  # payouts: not retrieved
    result = score(CitationCorrectness(), ctx(cited_wrong, retrieved=RETRIEVED, relevant=["r"]))
    assert result.value == 0.0 and result.reason.startswith("0 of 1 citations correct; [payouts] is not in")
    question = {"question": "Сколько дней на возврат?"}
    assert math.isnan(score(AnswerRelevance(), ctx("Returns: 14 days.", inputs=question, relevant=["r"])).value)
    assert score(AnswerRelevance(), ctx("Возврат возможен 14 дней.", inputs=question, relevant=["r"])).value == 1.0


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "recall_at_k", "k": 3},
        {"type": "precision_at_k", "k": 8},
        {"type": "mrr"},
        {"type": "ndcg_at_k", "k": 5},
        {"type": "faithfulness", "threshold": 0.7},
        {"type": "answer_relevance", "question": "question"},
        {"type": "citation_correctness", "kb": ["returns-window", "payouts"]},
        {"type": "refusal_correctness"},
    ],
)
def test_every_rag_scorer_is_a_yaml_type_exported_from_workbench(spec):
    import workbench as wb

    built = scorer_from_spec(spec, where="experiments/support_rag.yaml key 'scorers[0]'")
    assert type(built).__name__ in wb.__all__
    assert scorer_from_spec(built.spec()) == built
    with pytest.raises(ScorerError, match="has no option\\(s\\) \\['colour'\\]"):
        scorer_from_spec({**spec, "colour": 1})
