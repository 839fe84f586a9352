"""The buyer half of the Bazaar help centre (issue 14): data/kb articles, the questions in
data/support_qa.jsonl (qa-b-*) and the conversations in data/support_conversations.jsonl (conv-b-*)
follow the contract in the issue (front matter, sizes, counts per kind, static histories)."""

import collections
import itertools
import json
import re

import pytest
import yaml
from conftest import ROOT

DATA = ROOT / "data"
KB = DATA / "kb"
BUYER_SECTIONS = {
    "returns", "refunds", "delivery", "orders", "payments",
    "account-security", "buyer-protection", "reviews",
}  # fmt: skip
SELLER_SECTIONS = {
    "seller-fees", "listing-rules", "prohibited-items", "payouts",
    "seller-shipping", "seller-account", "promotions", "seller-performance",
}  # fmt: skip
FRONT_MATTER = {"id", "title", "section", "audience"}
QA_FIELDS = {"id", "question", "relevant_ids", "reference", "kind", "language", "section"}
TURN_FIELDS = {
    "id", "conversation_id", "turn", "messages", "question",
    "relevant_ids", "reference", "expected_behaviour", "language",
}  # fmt: skip
CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)


def read_article(path):
    """Front matter (dict) and body (str) of one data/kb/*.md file."""
    text = path.read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n(.*)", text, re.DOTALL)
    assert match, f"{path.name}: no YAML front matter between '---' lines"
    return yaml.safe_load(match.group(1)), match.group(2)


def read_jsonl(name):
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def articles():
    return {p.stem: read_article(p) for p in sorted(KB.glob("*.md"))}


@pytest.fixture(scope="module")
def buyer_articles(articles):
    return {i: a for i, a in articles.items() if a[0]["section"] in BUYER_SECTIONS}


@pytest.fixture(scope="module")
def questions():
    # In id order: the file itself is shuffled once, so that a `limit` mixes buyers and sellers.
    return sorted((r for r in read_jsonl("support_qa.jsonl") if r["id"].startswith("qa-b-")), key=lambda r: r["id"])


@pytest.fixture(scope="module")
def turns():
    return [r for r in read_jsonl("support_conversations.jsonl") if r["id"].startswith("conv-b-")]


def test_every_article_has_its_front_matter_and_a_body_of_80_to_250_words(articles):
    assert articles, "data/kb has no articles"
    for stem, (meta, body) in articles.items():
        assert set(meta) == FRONT_MATTER, (stem, sorted(meta))
        assert meta["id"] == stem, f"{stem}.md has id {meta['id']!r}"
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", stem), stem
        assert meta["section"] in BUYER_SECTIONS | SELLER_SECTIONS, (stem, meta["section"])
        assert meta["audience"] in {"buyers", "sellers", "everyone"}, stem
        assert meta["title"].strip(), stem
        assert 80 <= len(body.split()) <= 250, (stem, len(body.split()))


def test_the_buyer_half_covers_every_buyer_section(buyer_articles):
    assert len(buyer_articles) >= 31
    sections = collections.Counter(meta["section"] for meta, _ in buyer_articles.values())
    assert set(sections) == BUYER_SECTIONS
    assert min(sections.values()) >= 3, sections


def test_question_rows_are_well_formed_and_cite_existing_buyer_articles(questions, buyer_articles):
    assert len({q["id"] for q in questions}) == len(questions)
    for n, q in enumerate(questions, start=1):
        assert set(q) == QA_FIELDS, (q["id"], sorted(q))
        assert q["id"] == f"qa-b-{n:03d}", q["id"]
        assert q["question"].strip() and q["reference"].strip(), q["id"]
        assert q["section"] in BUYER_SECTIONS, q["id"]
        missing = set(q["relevant_ids"]) - set(buyer_articles)
        assert not missing, f"{q['id']} cites {sorted(missing)}, not a buyer article in data/kb"
        assert len(set(q["relevant_ids"])) == len(q["relevant_ids"]), q["id"]


def test_each_kind_has_its_minimum_and_its_shape(questions, buyer_articles):
    kinds = collections.Counter(q["kind"] for q in questions)
    assert set(kinds) <= {"single", "multi", "unanswerable", "clarify"}
    assert len(questions) >= 75
    assert kinds["single"] >= 40 and kinds["multi"] >= 15, kinds
    assert kinds["unanswerable"] >= 10 and kinds["clarify"] >= 8, kinds
    for q in questions:
        count = len(q["relevant_ids"])
        expected = {"single": count == 1, "multi": 2 <= count <= 3,
                    "unanswerable": count == 0, "clarify": count >= 1}[q["kind"]]  # fmt: skip
        assert expected, (q["id"], q["kind"], q["relevant_ids"])
        if q["kind"] == "single":
            assert buyer_articles[q["relevant_ids"][0]][0]["section"] == q["section"], q["id"]
        if q["kind"] == "clarify":
            assert q["reference"].rstrip().endswith("?"), f"{q['id']}: a clarifying question"


def test_about_one_question_in_eight_is_russian_and_says_so(questions):
    languages = collections.Counter(q["language"] for q in questions)
    assert set(languages) == {"en", "ru"}
    assert 0.08 <= languages["ru"] / len(questions) <= 0.2, languages
    for q in questions:
        assert bool(CYRILLIC.search(q["question"])) == (q["language"] == "ru"), q["id"]


def test_conversation_rows_are_well_formed(turns, buyer_articles):
    assert len({t["id"] for t in turns}) == len(turns)
    for t in turns:
        assert set(t) == TURN_FIELDS, (t["id"], sorted(t))
        assert t["id"] == f"{t['conversation_id']}-t{t['turn']}", t["id"]
        assert re.fullmatch(r"conv-b-\d\d", t["conversation_id"]), t["id"]
        assert t["expected_behaviour"] in {"answer", "clarify", "refuse"}, t["id"]
        assert set(t["relevant_ids"]) <= set(buyer_articles), t["id"]
        assert (t["relevant_ids"] == []) == (t["expected_behaviour"] == "refuse"), t["id"]
        assert bool(CYRILLIC.search(t["question"])) == (t["language"] == "ru"), t["id"]


def test_each_history_is_the_previous_history_plus_the_previous_turn(turns):
    conversations = collections.defaultdict(list)
    for t in turns:
        conversations[t["conversation_id"]].append(t)
    assert len(conversations) >= 15
    for conversation_id, rows in conversations.items():
        assert [t["turn"] for t in rows] == list(range(1, len(rows) + 1)), conversation_id
        assert 2 <= len(rows) <= 4, conversation_id
        assert rows[0]["messages"] == [], conversation_id
        for before, after in itertools.pairwise(rows):
            grown = before["messages"] + [
                {"role": "user", "content": before["question"]},
                {"role": "assistant", "content": before["reference"]},
            ]
            assert after["messages"] == grown, after["id"]
        roles = [m["role"] for m in rows[-1]["messages"]]
        assert roles == ["user", "assistant"] * (len(rows) - 1), conversation_id
