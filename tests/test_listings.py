"""The extraction golden set data/listings.jsonl: valid, complete, covering its hard cases, reproducible."""

import collections
import importlib.util
import json
import re

import jsonschema
import pytest
from conftest import ROOT

import workbench as wb
from workbench import FieldMatch, Hallucination

DATA = ROOT / "data"
KINDS = {
    "plain", "absent", "conflict", "size_notation", "price_currency",
    "typo", "emoji", "not_brand", "cyrillic_brand",
}  # fmt: skip
OPTIONAL = ("brand", "model", "colour", "size", "condition", "price", "currency")


@pytest.fixture(scope="module")
def rows():
    lines = (DATA / "listings.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def by_kind(rows, kind):
    return [r for r in rows if r["kind"] == kind]


def test_every_line_is_a_listing_whose_expected_fields_validate(rows):
    schema = json.loads((DATA / "listing.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert len(rows) >= 200
    for row in rows:
        assert set(row) == {"id", "kind", "lang", "text", "expected"}, row["id"]
        assert row["text"].strip(), row["id"]
        errors = [e.message for e in validator.iter_errors(row["expected"])]
        assert not errors, (row["id"], errors)
    assert len({r["id"] for r in rows}) == len(rows)
    assert len({r["text"] for r in rows}) == len(rows)


def test_hard_cases_and_languages_are_all_there(rows):
    assert collections.Counter(r["kind"] for r in rows) == dict.fromkeys(KINDS, 27)
    langs = collections.Counter(r["lang"] for r in rows)
    assert langs["ru"] >= 80 and langs["en"] >= 80
    cyrillic = [r for r in rows if re.search("[а-яё]", r["text"], re.IGNORECASE)]
    assert len(cyrillic) == langs["ru"]


def test_hard_cases_mean_what_they_say(rows):
    brands = {r["expected"]["brand"] for r in rows} - {None}
    for row in by_kind(rows, "not_brand"):  # "like Nike": a brand is named, but it is not the brand
        assert row["expected"]["brand"] is None
        assert any(b in row["text"] for b in brands), row["id"]
    for row in by_kind(rows, "absent"):
        assert sum(row["expected"][f] is None for f in OPTIONAL) >= 2, row["id"]
    for row in by_kind(rows, "typo") + by_kind(rows, "cyrillic_brand"):  # the brand is not written as such
        assert row["expected"]["brand"] not in row["text"], row["id"]
    for row in by_kind(rows, "emoji"):
        assert re.search("[\u2600-\u27bf\U0001f300-\U0001faff]", row["text"]), row["id"]
    sizes = [r["expected"]["size"] for r in by_kind(rows, "size_notation")]
    assert all(sizes) and any("-" in s for s in sizes) and any(s.startswith(("EU", "US", "RU")) for s in sizes)
    currencies = collections.Counter(r["expected"]["currency"] for r in by_kind(rows, "price_currency"))
    assert {"RUB", "USD", "EUR", None} <= set(currencies)
    absent_everywhere = {f: sum(r["expected"][f] is None for r in rows) for f in OPTIONAL}
    assert all(n > 0 for n in absent_everywhere.values()), absent_everywhere


def test_the_file_is_what_the_seeded_generator_writes(tmp_path):
    spec = importlib.util.spec_from_file_location("make_listings", DATA / "make_listings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path / "listings.jsonl")
    assert (tmp_path / "listings.jsonl").read_bytes() == (DATA / "listings.jsonl").read_bytes()


def test_the_dataset_loads_and_every_expected_value_is_grounded_in_its_text():
    dataset = wb.Dataset.load(DATA / "listings.jsonl", expected=["expected"])
    fields = FieldMatch(expected="expected")
    grounded = Hallucination(source="text", aliases=str(DATA / "listing_aliases.json"), exempt=["category"])
    unsupported = []
    for case in dataset.cases():
        fields.check(case.expectations)
        truth = json.dumps(fields.truth(case.expectations), ensure_ascii=False)
        assert fields.score(inputs=case.inputs, outputs=truth, expectations=case.expectations).value == 1.0
        result = grounded.score(inputs=case.inputs, outputs=truth, expectations={})
        if result.value < 1.0:
            unsupported.append((case.id, result.reason))
    assert unsupported == []  # the golden answers never need a value the text does not give
