"""Structured output: ``response_format`` in a variant's params (issue 13, item 4).

The short form names a schema file; the local models turn the schema into a llama.cpp grammar
(tested for real on SmolLM2 with a few listings); remote models receive litellm's form.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema
import pytest

import workbench as wb
from workbench.core.exceptions import ConfigError
from workbench.core.response_format import expand_response_format, schema_of
from workbench.engine.cache import cache_key
from workbench.experiment.config import load_experiment
from workbench.providers.local import _split_type_lists, grammar_for
from workbench.testing import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_FILE = ROOT / "data" / "listing.schema.json"
SCHEMA = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def test_short_form_reads_the_schema_file_into_litellms_form():
    rf = expand_response_format({"json_schema": "data/listing.schema.json"})
    assert rf == {"type": "json_schema", "json_schema": {"name": "listing", "schema": SCHEMA}}


def test_litellm_form_with_a_path_is_read_and_an_inline_schema_kept():
    rf = expand_response_format({"type": "json_schema", "json_schema": {"schema": str(SCHEMA_FILE)}})
    assert rf["json_schema"] == {"name": "listing", "schema": SCHEMA}
    inline = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": True}}
    assert expand_response_format(inline) == inline
    assert expand_response_format({"type": "json_object"}) == {"type": "json_object"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"json_schema": "data/no_such.schema.json"}, "cannot read the JSON schema file 'data/no_such.schema.json'"),
        ({"type": "xml"}, "'type' must be one of"),
        ({"type": "json_schema", "json_schema": {"name": "x"}}, "needs json_schema"),
        ("json", "must be a mapping"),
    ],
)
def test_bad_response_formats_say_what_is_wrong(value, message):
    with pytest.raises(ConfigError, match=message):
        expand_response_format(value, where="variant 'v'")


def test_yaml_error_names_the_file_and_variant(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"id": "1", "text": "x"}\n')
    path = tmp_path / "e.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            name: e
            dataset: {path: d.jsonl}
            variants:
              - name: constrained
                prompt: "{{ text }}"
                params: {response_format: {json_schema: nowhere.json}}
            """
        )
    )
    with pytest.raises(ConfigError, match=r"e\.yaml key 'variants\[0\]'.*'constrained'.*nowhere\.json"):
        load_experiment(path)


def test_the_schema_is_in_the_variant_version_and_the_cache_key():
    plain = wb.PromptVariant(name="a", prompt="{{ text }}", params={"max_tokens": 9})
    constrained = wb.PromptVariant(
        name="a", prompt="{{ text }}", params={"max_tokens": 9, "response_format": {"json_schema": str(SCHEMA_FILE)}}
    )
    assert constrained.params["response_format"]["json_schema"]["schema"] == SCHEMA
    assert plain.version != constrained.version
    msgs = [{"role": "user", "content": "hi"}]
    other = {"type": "json_schema", "json_schema": {"name": "listing", "schema": {**SCHEMA, "required": []}}}
    keys = {
        cache_key("local/smollm2-135m-instruct", msgs, params, 0)
        for params in (plain.params, constrained.params, {**plain.params, "response_format": other})
    }
    assert len(keys) == 3


def test_schema_of_and_grammar_for():
    assert schema_of({"type": "text"}) == (False, None)
    assert grammar_for(None) is None and grammar_for({"type": "text"}) is None
    assert "root" in grammar_for({"type": "json_object"})._grammar
    grammar = grammar_for(expand_response_format({"json_schema": str(SCHEMA_FILE)}))._grammar
    # the schema's field order is the order the fields are written in
    root = next(line for line in grammar.splitlines() if line.startswith("root ::="))
    assert root.index("category-kv") < root.index("brand-kv") < root.index("currency-kv")


def test_type_lists_keep_their_bounds_in_the_grammar():
    schema = {"type": "object", "properties": {"b": {"type": ["string", "null"], "maxLength": 3}}}
    assert _split_type_lists(schema)["properties"]["b"] == {
        "anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}]
    }
    grammar = grammar_for({"type": "json_schema", "json_schema": {"name": "s", "schema": schema}})._grammar
    assert "(char (char)?)?" in grammar  # at most 3 chars; llama-cpp-python alone would allow any number


def test_remote_models_receive_response_format_unchanged(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake-rf-000")
    bodies: list[dict] = []

    def reply(body: dict) -> str:
        bodies.append(body)
        return '{"category": "shoes"}'

    with FakeOpenAIServer(reply=reply) as server:
        variant = wb.PromptVariant(
            name="constrained",
            prompt="{{ text }}",
            params={"api_base": server.base_url, "response_format": {"json_schema": str(SCHEMA_FILE)}},
        )
        experiment = wb.Experiment(
            name="rf-remote",
            variants=[variant],
            dataset=wb.Dataset.from_records([{"id": "1", "text": "Nike shoes"}]),
            models=["openai/fake"],
        )
        result = experiment.run(log_to_mlflow=False, progress=False, cache=False)
    assert result.cases["output"].tolist() == ['{"category": "shoes"}']
    assert len(bodies) == 1
    assert bodies[0]["response_format"] == {"type": "json_schema", "json_schema": {"name": "listing", "schema": SCHEMA}}


LISTINGS = [json.loads(line) for line in (ROOT / "data" / "listings.jsonl").read_text(encoding="utf-8").splitlines()]


def test_smollm2_with_the_listing_schema_writes_valid_json_whatever_the_call_order():
    handler = wb.register_local_provider()
    rf = expand_response_format({"json_schema": str(SCHEMA_FILE)})
    params = {"max_tokens": 220, "temperature": 0, "response_format": rf}

    def extract(text: str) -> tuple[str, str]:
        messages = [
            {"role": "system", "content": "Extract the listing's fields as JSON."},
            {"role": "user", "content": text},
        ]
        out = handler.generate("local/smollm2-135m-instruct", messages, params)
        return out.choices[0].message.content, out.choices[0].finish_reason

    texts = [LISTINGS[0]["text"], LISTINGS[1]["text"]]
    forward = [extract(t) for t in texts]
    backward = [extract(t) for t in reversed(texts)][::-1]
    assert forward == backward  # each call evaluates its prompt afresh
    for output, finish in forward:
        assert finish == "stop", output
        jsonschema.validate(json.loads(output), SCHEMA)
    # without the grammar the same model does not write the listing's JSON
    free = handler.generate(
        "local/smollm2-135m-instruct",
        [{"role": "user", "content": texts[0]}],
        {"max_tokens": 40, "temperature": 0},
    )
    assert free.choices[0].message.content != forward[0][0]


def test_extraction_yaml_compares_three_variants_with_the_schema_grammar_on_one():
    experiment = load_experiment(ROOT / "experiments" / "extraction.yaml")
    assert [v.name for v in experiment.variants] == ["instructions", "few_shot", "constrained"]
    assert experiment.models == ["local/smollm2-135m-instruct"]
    constrained = experiment.variants[2].params["response_format"]
    assert constrained == {"type": "json_schema", "json_schema": {"name": "listing", "schema": SCHEMA}}
    assert all("response_format" not in v.params for v in experiment.variants[:2])
    few_shot_texts = {e["text"] for e in experiment.variants[1].examples}
    assert len(few_shot_texts) >= 2 and not few_shot_texts & {row["text"] for row in LISTINGS}  # not scored
    for example in experiment.variants[1].examples:
        jsonschema.validate(json.loads(example["output"]), SCHEMA)
    names = [s.name for s in experiment.scorers]
    assert names == ["json_valid", "json_schema_valid", "field_match", "grounded"]


def test_gemma_base_model_follows_the_grammar_through_the_completion_path():
    handler = wb.register_local_provider()
    schema = {
        "type": "object",
        "properties": {"colour": {"enum": ["black", "white", "grey", None]}, "new": {"type": "boolean"}},
        "required": ["colour", "new"],
        "additionalProperties": False,
    }
    rf = {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}
    messages = [{"role": "user", "content": f"Listing: {LISTINGS[0]['text']}\nJSON:"}]
    out = handler.generate("local/gemma-3-270m", messages, {"max_tokens": 40, "temperature": 0, "response_format": rf})
    reply = out.choices[0].message.content
    jsonschema.validate(json.loads(reply), schema)
    free = handler.generate("local/gemma-3-270m", messages, {"max_tokens": 40, "temperature": 0})
    assert free.choices[0].message.content != reply
