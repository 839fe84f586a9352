import pytest

from workbench import MissingVariablesError, PromptVariant, TemplateError


def make(**kw):
    base = {"name": "v", "prompt": "Review: {{ review }} ({{ product }})"}
    return PromptVariant(**{**base, **kw})


def test_variables_include_system_and_prompt():
    v = make(system="You rate {{ product }} reviews for {{ shop }}.")
    assert v.variables() == {"review", "product", "shop"}


def test_render_builds_system_fewshot_and_user_turns():
    v = make(system="Rate it.", examples=[{"review": "ok", "product": "mug", "output": "positive"}])
    messages = v.render({"review": "bad", "product": "lamp"})
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "Review: ok (mug)"
    assert messages[2]["content"] == "positive"
    assert messages[3]["content"] == "Review: bad (lamp)"


def test_missing_variables_error_names_every_variable_variant_and_row():
    v = make(system="For {{ shop }}")
    with pytest.raises(MissingVariablesError) as info:
        v.render({"review": "fine", "product": float("nan")}, where="data/x.csv row 17")
    message = str(info.value)
    assert info.value.missing == ["product", "shop"]
    assert "'product'" in message and "'shop'" in message
    assert "'v'" in message and "data/x.csv row 17" in message


def test_version_is_a_content_hash():
    a = make()
    assert a.version == make(name="other_name", description="words").version
    assert a.version != make(prompt="Review: {{ review }}!").version
    assert a.version != make(params={"temperature": 0.5}).version
    assert a.version == make(params={"api_key": "sk-secret"}).version
    assert a.version != make(examples=[{"review": "x", "product": "y", "output": "positive"}]).version


def test_example_without_output_is_rejected():
    with pytest.raises(TemplateError, match="no 'output' key"):
        make(examples=[{"review": "x", "product": "y"}])


def test_example_missing_a_variable_is_rejected():
    with pytest.raises(MissingVariablesError, match="few-shot example 1"):
        make(examples=[{"review": "x", "output": "positive"}])


def test_template_syntax_error_names_variant_and_line():
    with pytest.raises(TemplateError, match=r"variant 'v': prompt template has a syntax error on line 2"):
        make(prompt="ok\n{{ review ")


def test_round_trip_through_dict():
    v = make(system="s", examples=[{"review": "a", "product": "b", "output": "c"}], params={"max_tokens": 3})
    again = PromptVariant.from_dict(v.to_dict())
    assert again == v and again.version == v.version


def test_an_unclosed_delimiter_is_named_on_its_own_line_with_what_is_missing():
    # Jinja itself blames line 2 ("expected token 'end of print statement', got 'Sentiment'").
    with pytest.raises(TemplateError) as info:
        make(prompt="Review: {{ review\nSentiment:")
    assert str(info.value) == (
        "variant 'v': prompt template has a syntax error on line 1: "
        "missing `}}` to close the `{{` in 'Review: {{ review'"
    )
    with pytest.raises(TemplateError, match=r"system template has a syntax error on line 2: missing `%}` to close"):
        make(system="Rate it.\n{% if review }}x{% endif %}")
    with pytest.raises(TemplateError, match=r"on line 1: expected token 'end of print statement', got 'b'"):
        make(prompt="{{ review }} {{ a b }}")  # closed, but wrong inside: Jinja's own words
