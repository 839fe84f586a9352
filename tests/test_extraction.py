"""Extraction scorers pinned against hand-computed values: FieldMatch (per-field P/R/F1) and Hallucination."""

import asyncio
import json
import math

import pytest
from conftest import FakeLLM

import workbench as wb
from workbench import FieldMatch, Hallucination, ScorerError
from workbench.scorers import run_scorer, scorer_from_spec
from workbench.scorers.values import number_candidates, quantities

FIELDS = ["brand", "colour", "size", "price"]


def score(s, output, expected=None, inputs=None):
    return asyncio.run(run_scorer(s, inputs=inputs or {}, outputs=output, expectations=expected or {}))


# Four replies; the outcome of every field is worked out by hand in the comments.
CASES = [
    (
        # brand TP (case), colour FP+FN, size TP ("42" vs 42, normalised), price TP ("5 000" numeric): 3/4
        '{"brand": "nike", "colour": "white", "size": 42, "price": "5 000"}',
        {"brand": "Nike", "colour": "black", "size": "42", "price": 5000},
    ),
    (
        # brand FP, colour TP, size TN (key missing = null), price FN: 2/4
        '{"brand": "Adidas", "colour": "red", "price": null}',
        {"brand": None, "colour": "red", "size": None, "price": 1200},
    ),
    (
        # fenced JSON: brand TP, colour TN, size TP, price TN: 4/4
        '```json\n{"brand": "Puma", "size": "m"}\n```',
        {"brand": "Puma", "colour": None, "size": "M", "price": None},
    ),
    (
        # not JSON: scores 0; brand FN, colour FN, nothing else counted
        "Sorry, I cannot help with that.",
        {"brand": "Zara", "colour": "blue", "size": None, "price": None},
    ),
]


def test_field_match_per_case_scores_and_reasons():
    s = FieldMatch(expected="fields", fields=FIELDS)
    values = [score(s, out, {"fields": exp}).value for out, exp in CASES]
    assert values == [0.75, 0.5, 1.0, 0.0]
    first = score(s, *[CASES[0][0], {"fields": CASES[0][1]}])
    assert first.reason == '3/4 fields right; colour: got "white", expected "black" (FP+FN)'
    assert score(s, CASES[3][0], {"fields": CASES[3][1]}).reason == "not a JSON object: no field is right"
    assert score(s, "[1, 2]", {"fields": CASES[3][1]}).value == 0.0  # JSON, but not an object


def test_field_match_precision_recall_f1_by_hand():
    s = FieldMatch(expected="fields", fields=FIELDS)
    metrics = s.aggregate([o for o, _ in CASES], [{"fields": e} for _, e in CASES])
    # brand: TP 2 (c1, c3), FP 1 (c2), FN 1 (c4)
    assert (metrics["brand.tp"], metrics["brand.fp"], metrics["brand.fn"]) == (2, 1, 1)
    assert metrics["brand.precision"] == pytest.approx(2 / 3)
    assert metrics["brand.recall"] == pytest.approx(2 / 3)
    assert metrics["brand.f1"] == pytest.approx(2 / 3)
    # colour: TP 1 (c2), FP 1 (c1), FN 2 (c1, c4)
    assert (metrics["colour.tp"], metrics["colour.fp"], metrics["colour.fn"]) == (1, 1, 2)
    assert metrics["colour.precision"] == pytest.approx(0.5)
    assert metrics["colour.recall"] == pytest.approx(1 / 3)
    assert metrics["colour.f1"] == pytest.approx(0.4)
    # size: TP 2; price: TP 1, FN 1
    assert (metrics["size.tp"], metrics["size.fp"], metrics["size.fn"]) == (2, 0, 0)
    assert metrics["size.f1"] == 1.0
    assert (metrics["price.precision"], metrics["price.recall"]) == (1.0, 0.5)
    assert metrics["price.f1"] == pytest.approx(2 / 3)
    # pooled: TP 6, FP 2, FN 4
    assert metrics["micro_precision"] == pytest.approx(0.75)
    assert metrics["micro_recall"] == pytest.approx(0.6)
    assert metrics["micro_f1"] == pytest.approx(2 / 3)
    assert metrics["macro_f1"] == pytest.approx(41 / 60)  # (2/3 + 2/5 + 1 + 2/3) / 4
    assert metrics["unparsed"] == 1


def test_field_with_nothing_to_count_has_nan_f1_left_out_of_macro():
    s = FieldMatch(expected="fields", fields=["brand", "model"])
    metrics = s.aggregate(['{"brand": "Nike"}'], [{"fields": {"brand": "Nike", "model": None}}])
    assert math.isnan(metrics["model.f1"]) and math.isnan(metrics["model.precision"])
    assert metrics["macro_f1"] == 1.0


def test_null_means_absent_in_every_spelling():
    s = FieldMatch(expected="fields")
    want = {"fields": {"brand": None, "size": "42"}}
    for reply in ['{"size": "42"}', '{"brand": null, "size": "42"}', '{"brand": "", "size": "42"}',
                  '{"brand": "N/A", "size": "42"}', '{"brand": [], "size": "42"}']:  # fmt: skip
        assert score(s, reply, want).value == 1.0, reply
    strict = FieldMatch(expected="fields", null_strings=())
    result = score(strict, '{"brand": "N/A", "size": "42"}', want)
    assert result.value == 0.5 and "brand" in result.reason and "(FP)" in result.reason
    missed = score(s, '{"brand": null, "size": null}', want)
    assert missed.value == 0.5 and "(FN)" in missed.reason


def test_42_versus_string_42_by_rule():
    def right(rule, got, want):
        return (
            FieldMatch(expected="f", rules={"size": rule})
            .compare(json.dumps({"size": got}), {"f": {"size": want}})[0]
            .right
        )

    assert not right("exact", "42", 42)  # JSON types differ
    assert right("exact", 42.0, 42)
    assert right("normalized", "42", 42)
    assert right("numeric", "42", 42)
    assert right("auto", "42", 42)  # auto on a number is numeric
    assert right("auto", 42, "42")  # auto on a string is normalised
    assert not right("exact", True, 1)


def test_normalised_rule_case_whitespace_nfkc_yo():
    s = FieldMatch(expected="f", rules={"colour": "normalized"})
    assert score(s, '{"colour": "  ЧЁРНЫЙ \\u00a0 матовый"}', {"f": {"colour": "черный матовый"}}).value == 1.0
    assert score(s, '{"colour": "ｂｌａｃｋ"}', {"f": {"colour": "black"}}).value == 1.0  # full-width (NFKC)
    assert score(s, '{"colour": "black!"}', {"f": {"colour": "black"}}).value == 0.0


def test_set_rule_ignores_order_and_case_but_not_members():
    s = FieldMatch(expected="f")  # auto: a list is a set
    assert score(s, '{"tags": ["red", "black"]}', {"f": {"tags": ["Black", "red"]}}).value == 1.0
    assert score(s, '{"tags": ["red"]}', {"f": {"tags": ["Black", "red"]}}).value == 0.0
    ordered = FieldMatch(expected="f", rules={"tags": "normalized"})
    assert score(ordered, '{"tags": ["red", "black"]}', {"f": {"tags": ["Black", "red"]}}).value == 0.0


def test_fuzzy_threshold_edges():
    # rapidfuzz fuzz.ratio = 100 * (1 - Indel distance / total length):
    # "nike"/"nika": LCS 3 of 8 chars -> 75.0; "adidas"/"adidos": LCS 5 of 12 -> 83.33
    def right(threshold, got, want):
        s = FieldMatch(expected="f", rules={"brand": {"type": "fuzzy", "threshold": threshold}})
        return score(s, json.dumps({"brand": got}), {"f": {"brand": want}}).value == 1.0

    assert right(75, "nika", "Nike") and not right(75.01, "nika", "Nike")
    assert right(83.3, "adidos", "Adidas") and not right(83.34, "adidos", "Adidas")


def test_numeric_tolerances():
    def right(rule, got):
        return score(FieldMatch(expected="f", rules={"price": rule}), json.dumps({"price": got}),
                     {"f": {"price": 1000}}).value == 1.0  # fmt: skip

    assert right({"type": "numeric", "rel_tol": 0.01}, 1010) and not right({"type": "numeric", "rel_tol": 0.01}, 1020)
    assert right({"type": "numeric", "abs_tol": 5}, 1004.5) and not right({"type": "numeric", "abs_tol": 5}, 1006)
    assert right("numeric", "1 000 ₽") and right("numeric", "1,000") and not right("numeric", "about 1000 or 1100")
    assert not right("numeric", 1000.5)


def test_field_match_config_errors_are_clear():
    with pytest.raises(ScorerError, match="unknown rule 'fuzy'"):
        FieldMatch(rules={"brand": "fuzy"})
    with pytest.raises(ScorerError, match="unknown rule option"):
        FieldMatch(rules={"brand": {"type": "fuzzy", "treshold": 80}})
    with pytest.raises(ScorerError, match="without dots"):
        FieldMatch(fields=["a.b"])
    with pytest.raises(ScorerError, match="not a JSON object of fields"):
        FieldMatch(expected="f").check({"f": 42})
    FieldMatch(expected="f").check({"f": '{"brand": null}'})  # JSON text of an object is fine


def test_field_match_spec_round_trips_through_yaml_type():
    spec = {"type": "field_match", "expected": "fields", "rules": {"model": {"type": "fuzzy", "threshold": 85}}}
    s = scorer_from_spec(spec)
    assert isinstance(s, FieldMatch) and s.name == "field_match"
    assert scorer_from_spec(s.spec()).spec() == s.spec()
    assert scorer_from_spec({"type": "hallucination", "source": "text"}).name == "grounded"


# -- hallucination -------------------------------------------------------------------------

RU = "Кроссовки Nike Air Max, размер 42-44, цена 5 000 ₽ 🔥 торг"


def test_grounded_lists_unsupported_values_russian():
    s = Hallucination(source="text", exempt=["category"])
    reply = {"category": "shoes", "brand": "Nike", "model": "Air Max", "size": 43, "price": 5000,
             "currency": "RUB", "colour": "black", "condition": None}  # fmt: skip
    result = score(s, json.dumps(reply), inputs={"text": RU})
    # six values checked (category exempt, null skipped); only colour is not in the text
    assert result.value == pytest.approx(5 / 6)
    assert result.reason == '1 of 6 values unsupported: colour "black"'


def test_grounded_english_with_typos_and_currency():
    s = Hallucination()
    text = "Barely worn Levi's 501 jeens, W32 L34, $40. Colour: indgo"
    reply = {"brand": "Levi's", "model": "501", "size": "W32 L34", "price": 40, "currency": "USD", "colour": "indigo"}
    assert score(s, json.dumps(reply), inputs={"text": text}).value == 1.0  # "indigo" ~ "indgo": ratio 90.9
    assert score(Hallucination(threshold=91), json.dumps(reply), inputs={"text": text}).value == pytest.approx(5 / 6)
    wrong = {"price": 45, "currency": "EUR", "brand": "Wrangler"}
    result = score(s, json.dumps(wrong), inputs={"text": text})
    assert result.value == 0.0
    assert result.reason == '3 of 3 values unsupported: price 45, currency "EUR", brand "Wrangler"'


@pytest.mark.parametrize(
    ("text", "value", "supported"),
    [
        ("размер 42-44", 42, True),
        ("размер 42-44", 44, True),
        ("размер 42-44", 43, True),  # inside the range
        ("размер 42-44", 46, False),
        ("размер 42-44", "42-44", True),
        ("5 000 ₽", 5000, True),
        ("5 000 ₽", "RUB", True),
        ("5 000 ₽", "USD", False),
        ("цена 5000 рублей", "RUB", True),
        ("цена 13300р, торг", "RUB", True),
        ("размер S, рост 170", "RUB", False),  # a letter р is not roubles
        ("rubber sole, 40 EUR", "RUB", False),
        ("rubber sole, 40 EUR", "EUR", True),
        ("2 000 rubles", "RUB", True),
        ("отдам за 5к", 5000, True),
        ("вес 1,5 кг", 1.5, True),
        ("вес 1,5 кг", "1.5 kg", True),
        ("вес 1,5 кг", "1500 г", True),  # same mass, other unit
        ("вес 1,5 кг", "2 kg", False),
        ("вес 1,5 кг", 15, False),
        ("EU 42 / US 9", "US 9", True),
        ("EU 42 / US 9", "US 10", False),
        ("shredded paper", "red", False),  # a whole word, not a substring of one
        ("кросовки Addidas", "Adidas", True),  # typo: ratio 92.3 >= 80
        ("Часы Garmim", "Garmin", True),  # ratio 83.3 >= 80
        ("кроссовки nika", "Nike", False),  # ratio 75 < 80
        ("размер 50\n3000 руб", 3000, True),  # a line break is not a thousands separator
        ("размер 50\n3000 руб", 50300, False),
        ("Пальто ЧЁРНОЕ", "черное", True),  # ё -> е, case
        ("Samsung Galaxy S22", "Galaxy S23", False),  # close strings, another number
        ("Samsung Galaxy S22", "Galaxy S22", True),
        ("Nike Air Max 90", "Air Maks 90", True),  # the number is there, the words are a typo away
        ("Adidas Superstar 39", "Pegasus 39", False),  # the number is there, the words are not
        ("цена 5000 руб", "5001 RUB", False),
    ],
)
def test_unit_aware_support(text, value, supported):
    assert Hallucination().supported(value, text) is supported


def test_aliases_support_translated_values_and_exempt_fields_are_not_checked():
    s = Hallucination(aliases={"black": ["черн"], "used": ["б/у", "ношен"]}, exempt=["category"])
    text = "Куртка черная, б/у один сезон"
    assert score(s, '{"colour": "black", "condition": "used", "category": "clothing"}', inputs={"t": text}).value == 1.0
    assert Hallucination().supported("black", text) is False


def test_grounded_on_nothing_to_check_and_not_json():
    s = Hallucination()
    assert score(s, '{"brand": null}', inputs={"t": "x"}).value == 1.0
    not_json = score(s, "no idea", inputs={"t": "x"})
    assert math.isnan(not_json.value) and "not a JSON object" in not_json.reason
    with pytest.raises(ScorerError, match="which of the inputs"):
        score(s, '{"a": 1}', inputs={"t": "x", "u": "y"})


def test_hallucination_rates_by_hand():
    s = Hallucination(source="text")
    outputs = [
        '{"brand": "Nike", "colour": "black", "size": 42, "price": 5000}',  # colour unsupported: 1/4
        '{"brand": "Puma", "colour": "red"}',  # 0/2
        "not json",  # not scored
        '{"brand": null}',  # nothing checked: 0
    ]
    inputs = [{"text": RU}, {"text": "Puma, red"}, {"text": "x"}, {"text": "y"}]
    metrics = s.aggregate(outputs, [{}] * 4, inputs=inputs)
    assert metrics["hallucination_rate"] == pytest.approx((1 / 4 + 0 + 0) / 3)
    assert metrics["cases_with_hallucination"] == pytest.approx(1 / 3)
    assert metrics["colour.hallucination_rate"] == 0.5  # 1 of 2 colours
    assert metrics["colour.unsupported"] == 1
    assert metrics["brand.hallucination_rate"] == 0.0
    assert set(metrics) == {
        "hallucination_rate", "cases_with_hallucination",
        *(f"{f}.{m}" for f in ("brand", "colour", "size", "price") for m in ("hallucination_rate", "unsupported")),
    }  # fmt: skip


def test_value_readings():
    assert number_candidates("5 000 ₽") == {5000.0}
    assert number_candidates("1,5") == {1.5}
    assert number_candidates("1.500") == {1.5, 1500.0}  # ambiguous: both readings
    assert number_candidates("42-44") == set()
    assert (1500.0, "mass") in quantities("1,5 кг")


# -- end to end ------------------------------------------------------------------------------

LISTINGS = [
    ("a", "Кроссовки Nike, размер 42, 5 000 ₽", {"brand": "Nike", "colour": None, "size": "42", "price": 5000}),
    ("b", "Red Adidas hoodie, size M, $30", {"brand": "Adidas", "colour": "red", "size": "M", "price": 30}),
    ("c", "Сумка как у Gucci, чёрная, 1200 руб", {"brand": None, "colour": "black", "size": None, "price": 1200}),
    ("d", "Puma cap, blue, one size, 15 EUR", {"brand": "Puma", "colour": "blue", "size": None, "price": 15}),
]


def listing_reply(model, messages):
    """The 'careful' variant copies the truth; the 'sloppy' one says brand Nike and colour white always."""
    prompt = messages[-1]["content"]
    text = prompt.split(": ", 1)[1]
    _, _, truth = next(row for row in LISTINGS if row[1] == text)
    if prompt.startswith("Careful"):
        return json.dumps(truth, ensure_ascii=False)
    return json.dumps({**truth, "brand": "Nike", "colour": "white"}, ensure_ascii=False)


def listing_experiment():
    dataset = wb.Dataset.from_records([{"id": i, "text": t, "fields": f} for i, t, f in LISTINGS], expected=["fields"])
    variants = [
        wb.PromptVariant(name="sloppy", prompt="Sloppy: {{ text }}"),
        wb.PromptVariant(name="careful", prompt="Careful: {{ text }}"),
    ]
    fields = FieldMatch(expected="fields", fields=["brand", "colour", "size", "price"])
    scorers = [fields, Hallucination(aliases={"black": ["черн"]})]
    exp = wb.Experiment(name="extract", variants=variants, dataset=dataset, models=["openai/gpt-4o-mini"],
                        scorers=scorers)  # fmt: skip
    return exp


def test_end_to_end_per_field_metrics_in_summary_and_paired_comparison(fake_key):
    exp = listing_experiment()
    result = exp.run(log_to_mlflow=False, progress=False, acompletion=FakeLLM(listing_reply))
    summary = result.summary.set_index("variant")
    assert summary.loc["careful", "field_match"] == 1.0
    assert summary.loc["careful", "field_match.brand.f1"] == 1.0
    # sloppy brand: a TP (Nike), FP+FN (Adidas), FP (null), FP+FN (Puma) -> TP 1, FP 3, FN 2
    assert summary.loc["sloppy", "field_match.brand.tp"] == 1
    assert summary.loc["sloppy", "field_match.brand.fp"] == 3
    assert summary.loc["sloppy", "field_match.brand.fn"] == 2
    assert summary.loc["sloppy", "field_match.brand.f1"] == pytest.approx(2 / 7)
    # sloppy colour: FP (null), FP+FN, FP+FN, FP+FN -> TP 0, F1 0
    assert summary.loc["sloppy", "field_match.colour.f1"] == 0.0
    # per case, sloppy gets size and price right and brand only on case a: 3/4, 2/4, 2/4, 2/4
    assert summary.loc["sloppy", "field_match"] == pytest.approx((0.75 + 0.5 + 0.5 + 0.5) / 4)
    # sloppy hallucinates: "white" is in no text; "Nike" is unsupported in b, c, d
    assert summary.loc["careful", "grounded.hallucination_rate"] == 0.0
    assert summary.loc["sloppy", "grounded.colour.hallucination_rate"] == 1.0
    assert summary.loc["sloppy", "grounded.brand.unsupported"] == 3

    comparison = result.compare(baseline="sloppy", candidate="careful")
    row = comparison["field_match"]
    assert row.n_cases == 4 and row.mean_baseline == pytest.approx(0.5625) and row.mean_candidate == 1.0
    assert row.diff == pytest.approx(1 - 0.5625)
    # grounded per case, sloppy: a 3/4, b 2/4, c 1/3, d 1/3 ("Nike" and "white" in no text but a's)
    assert comparison["grounded"].mean_baseline == pytest.approx((3 / 4 + 2 / 4 + 1 / 3 + 1 / 3) / 4)

    report = wb.field_report(result, scorer="field_match")
    assert report.loc[("sloppy", "openai/gpt-4o-mini", "brand"), "f1"] == pytest.approx(2 / 7)
    assert set(report.columns) == {"tp", "fp", "fn", "precision", "recall", "f1"}
    assert (
        wb.field_report(result, scorer="grounded").loc[("sloppy", "openai/gpt-4o-mini", "colour"), "unsupported"] == 4
    )
    with pytest.raises(wb.UsageError, match="no per-field columns"):
        wb.field_report(result, scorer="nope")


def test_per_field_metrics_reach_mlflow(fake_key, tracking_uri):
    from mlflow.tracking import MlflowClient

    result = listing_experiment().run(tracking_uri=tracking_uri, progress=False, acompletion=FakeLLM(listing_reply))
    client = MlflowClient(tracking_uri)
    parent = client.get_run(result.run_id)
    assert parent.data.metrics["sloppy.field_match.brand.f1"] == pytest.approx(2 / 7)
    assert parent.data.metrics["careful.grounded.hallucination_rate"] == 0.0
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'"
    )
    sloppy = next(c for c in children if c.data.params["variant"] == "sloppy")
    assert sloppy.data.metrics["field_match.colour.f1"] == 0.0
    assert sloppy.data.metrics["grounded.colour.unsupported"] == 4
    reopened = wb.load_run(result.run_id, tracking_uri=tracking_uri)  # the per-field table of a past run
    assert wb.field_report(reopened).loc[("sloppy", "openai/gpt-4o-mini", "brand"), "f1"] == pytest.approx(2 / 7)


YAML = """
name: listings
dataset: {path: data/listings.jsonl, id_column: id, expected: [expected], limit: 12}
models: [openai/gpt-4o-mini]
variants:
  - name: extract
    prompt: "Listing: {{ text }}"
scorers:
  - type: json_schema_valid
    schema: data/listing.schema.json
  - type: field_match
    expected: expected
    rules: {model: {type: fuzzy, threshold: 85}, price: {type: numeric, rel_tol: 0.01}}
  - type: hallucination
    source: text
    exempt: [category]
    aliases: data/listing_aliases.json
"""


def test_yaml_experiment_on_the_golden_set(fake_key, monkeypatch):
    import yaml
    from conftest import ROOT

    monkeypatch.chdir(ROOT / "tests")  # relative paths resolve from the project root too
    rows = {json.loads(line)["text"]: json.loads(line) for line in (ROOT / "data" / "listings.jsonl").open()}

    def reply(model, messages):  # right on every field, except the colour, always "black"
        expected = rows[messages[-1]["content"].removeprefix("Listing: ")]["expected"]
        return json.dumps({**expected, "colour": "black"}, ensure_ascii=False)

    exp = wb.experiment_from_dict(yaml.safe_load(YAML), base_dir=ROOT)
    result = exp.run(log_to_mlflow=False, progress=False, acompletion=FakeLLM(reply))
    summary = result.summary.iloc[0]
    assert summary["json_schema_valid"] == 1.0
    assert summary["field_match.brand.f1"] == 1.0 and summary["field_match.price.f1"] == 1.0
    truth = [rows[t]["expected"]["colour"] for t in rows][:12]
    black = sum(c == "black" for c in truth)
    colour_absent = sum(c is None for c in truth)
    # colour: "black" right where it is black (TP), a FP where absent, FP+FN elsewhere
    assert summary["field_match.colour.tp"] == black
    assert summary["field_match.colour.fp"] == 12 - black
    assert summary["field_match.colour.fn"] == 12 - black - colour_absent
