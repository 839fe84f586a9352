"""The seller half of the issue-14 support RAG data: data/kb/*.md, data/support_qa.jsonl (qa-s-*) and
data/support_conversations.jsonl (conv-s-*) keep the shared data contract and agree with each other."""

import collections
import json
import re

import pytest
import yaml
from conftest import ROOT

DATA = ROOT / "data"
KB = DATA / "kb"
SELLER_SECTIONS = {
    "seller-fees", "listing-rules", "prohibited-items", "payouts",
    "seller-shipping", "seller-account", "promotions", "seller-performance",
}  # fmt: skip
FRONT = re.compile(r"\A---\n(.*?)\n---\n(.*)\Z", re.DOTALL)
QA_KEYS = {"id", "question", "relevant_ids", "reference", "kind", "language", "section"}
CONV_KEYS = {
    "id", "conversation_id", "turn", "messages", "question",
    "relevant_ids", "reference", "expected_behaviour", "language",
}  # fmt: skip
CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)


def read_jsonl(name):
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def words(text):
    """Words of a Markdown body: tokens with a letter or digit, so table bars and bullets do not count."""
    return [t for t in text.split() if any(c.isalnum() for c in t)]


@pytest.fixture(scope="module")
def articles():
    found = {}
    for path in sorted(KB.glob("*.md")):
        match = FRONT.match(path.read_text(encoding="utf-8"))
        assert match, f"{path.name}: no YAML front matter between '---' lines"
        try:
            meta = yaml.safe_load(match.group(1))
        except yaml.YAMLError as exc:
            pytest.fail(f"{path.name}: front matter is not valid YAML (quote titles with a colon): {exc}")
        assert set(meta) == {"id", "title", "section", "audience"}, path.name
        assert meta["id"] == path.stem, path.name
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", meta["id"]), path.name
        assert meta["audience"] in {"buyers", "sellers", "everyone"}, path.name
        found[meta["id"]] = {**meta, "body": match.group(2)}
    return found


@pytest.fixture(scope="module")
def qa():
    return [r for r in read_jsonl("support_qa.jsonl") if r["id"].startswith("qa-s-")]


@pytest.fixture(scope="module")
def conversations():
    rows = [r for r in read_jsonl("support_conversations.jsonl") if r["id"].startswith("conv-s-")]
    by_conv = collections.defaultdict(list)
    for row in rows:
        by_conv[row["conversation_id"]].append(row)
    return {cid: sorted(turns, key=lambda r: r["turn"]) for cid, turns in by_conv.items()}


def test_articles_have_the_right_length_and_the_seller_sections_are_covered(articles):
    for art_id, art in articles.items():
        n = len(words(art["body"]))
        assert 80 <= n <= 250, f"{art_id}: {n} words, the contract asks for 80-250"
    sellers = [a for a in articles.values() if a["section"] in SELLER_SECTIONS]
    assert len(sellers) >= 31
    assert {a["section"] for a in sellers} == SELLER_SECTIONS
    assert all(a["audience"] in {"sellers", "everyone"} for a in sellers)


def test_questions_are_well_formed_and_cite_existing_articles(qa, articles):
    assert len({r["id"] for r in qa}) == len(qa)
    for row in qa:
        assert set(row) == QA_KEYS, row["id"]
        assert re.fullmatch(r"qa-s-\d{3}", row["id"]), row["id"]
        assert row["question"].strip() and row["reference"].strip(), row["id"]
        assert row["section"] in SELLER_SECTIONS, row["id"]
        assert row["language"] in {"en", "ru"}, row["id"]
        assert bool(CYRILLIC.search(row["question"])) == (row["language"] == "ru"), row["id"]
        missing = set(row["relevant_ids"]) - set(articles)
        assert not missing, f"{row['id']}: relevant_ids {sorted(missing)} not in data/kb"
        assert len(set(row["relevant_ids"])) == len(row["relevant_ids"]), row["id"]


def test_question_kinds_meet_the_contract(qa):
    kinds = collections.Counter(r["kind"] for r in qa)
    assert set(kinds) == {"single", "multi", "unanswerable", "clarify"}
    assert len(qa) >= 75
    assert kinds["single"] >= 40 and kinds["multi"] >= 15
    assert kinds["unanswerable"] >= 10 and kinds["clarify"] >= 8
    for row in qa:
        n = len(row["relevant_ids"])
        expected = {"single": n == 1, "multi": 2 <= n <= 3, "unanswerable": n == 0, "clarify": n >= 1}
        assert expected[row["kind"]], f"{row['id']}: kind {row['kind']!r} with {n} relevant_ids"
    share_ru = sum(r["language"] == "ru" for r in qa) / len(qa)
    assert 0.10 <= share_ru <= 0.15


def test_conversation_turns_are_numbered_and_well_formed(conversations, articles):
    assert len(conversations) >= 15
    for cid, turns in conversations.items():
        assert re.fullmatch(r"conv-s-\d{2}", cid), cid
        assert 2 <= len(turns) <= 4, cid
        assert [t["turn"] for t in turns] == list(range(1, len(turns) + 1)), cid
        for t in turns:
            assert set(t) == CONV_KEYS, t["id"]
            assert t["id"] == f"{cid}-t{t['turn']}"
            assert t["expected_behaviour"] in {"answer", "clarify", "refuse"}, t["id"]
            assert (t["expected_behaviour"] == "refuse") == (t["relevant_ids"] == []), t["id"]
            assert set(t["relevant_ids"]) <= set(articles), t["id"]
            assert t["language"] in {"en", "ru"} and t["question"].strip() and t["reference"].strip(), t["id"]


def test_conversation_history_grows_by_exactly_the_previous_turn(conversations):
    for cid, turns in conversations.items():
        assert turns[0]["messages"] == [], cid
        for prev, cur in zip(turns, turns[1:], strict=False):
            roles = [m["role"] for m in cur["messages"]]
            assert roles == ["user", "assistant"] * (cur["turn"] - 1), cur["id"]
            added = [{"role": "user", "content": prev["question"]}, {"role": "assistant", "content": prev["reference"]}]
            assert cur["messages"] == prev["messages"] + added, cur["id"]
