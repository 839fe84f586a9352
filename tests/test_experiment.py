import asyncio
import math

import pytest
from conftest import FakeLLM

import workbench as wb


def make(variants, reviews, label_match, **kw):
    return wb.Experiment(
        name="unit",
        variants=variants,
        dataset=reviews,
        models=["openai/gpt-4o-mini"],
        scorers=[label_match],
        **kw,
    )


def test_cases_and_summary_shape(fake_key, fake_llm, variants, reviews, label_match):
    result = make(variants, reviews, label_match, repeats=2).run(
        log_to_mlflow=False, progress=False, acompletion=fake_llm
    )
    cases = result.cases
    assert len(cases) == 2 * 6 * 2 == len(fake_llm.calls)
    for column in [
        "case_id",
        "variant",
        "variant_version",
        "model",
        "repeat",
        "input.review",
        "expected.label",
        "prompt",
        "output",
        "error",
        "score.label_match",
        "reason.label_match",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "latency_s",
    ]:
        assert column in cases.columns, column
    # The fake answers from keywords: "Not bad at all" (positive) is read as negative.
    expected = sum(o == e for o, e in zip(cases["output"], cases["expected.label"], strict=True)) / len(cases)
    assert cases["score.label_match"].mean() == pytest.approx(expected) == pytest.approx(5 / 6)
    summary = result.summary.set_index("variant")
    assert list(summary.index) == ["zero_shot", "few_shot"]
    assert summary.loc["few_shot", "n"] == 12 and summary.loc["few_shot", "errors"] == 0
    assert summary.loc["few_shot", "label_match"] == pytest.approx(5 / 6)
    assert summary.loc["few_shot", "label_match.macro_f1"] > 0
    assert summary.loc["few_shot", "cost_usd"] > 0  # litellm knows gpt-4o-mini's price
    assert summary.loc["few_shot", "latency_p95_s"] >= summary.loc["few_shot", "latency_p50_s"]
    # The rendered prompt of each case (few-shot turns live in the logged template).
    few_prompt = cases.loc[cases["variant"] == "few_shot", "prompt"].iloc[0]
    assert few_prompt == "[user]\nReview: Great kettle, boils fast.\nSentiment:"
    few_call = next(c for c in fake_llm.calls if len(c["messages"]) == 3)
    assert few_call["messages"][1] == {"role": "assistant", "content": "positive"}


def test_failed_calls_are_recorded_not_scored(fake_key, variants, reviews, label_match):
    fake = FakeLLM(fail=lambda messages: "Lovely" in messages[-1]["content"])
    result = make(variants, reviews, label_match).run(log_to_mlflow=False, progress=False, acompletion=fake)
    failed = result.cases[result.cases["error"].notna()]
    assert len(failed) == 2 and failed["input.review"].str.contains("Lovely").all()
    assert failed["score.label_match"].isna().all()
    assert "APIConnectionError" in failed["error"].iloc[0]
    row = result.summary.iloc[0]
    assert row["errors"] == 1 and row["error_rate"] == pytest.approx(1 / 6)
    ok = result.cases[(result.cases["variant"] == row["variant"]) & result.cases["error"].isna()]
    assert row["label_match"] == pytest.approx(ok["score.label_match"].mean())  # errors excluded, not 0
    assert any("1 of 6 calls failed" in note for note in result.notes)


def test_calls_run_concurrently_within_the_limit(fake_key, variants, reviews, label_match):
    fake = FakeLLM(delay=0.05)
    exp = make(variants, reviews, label_match, repeats=3, settings=wb.RunSettings(max_concurrency=4))
    exp.run(log_to_mlflow=False, progress=False, acompletion=fake)
    assert fake.max_in_flight == 4


def test_run_works_inside_a_running_event_loop(fake_key, fake_llm, variants, reviews, label_match):
    exp = make(variants, reviews, label_match)

    async def notebook_cell():  # Jupyter runs cells inside a live asyncio loop
        asyncio.get_running_loop()
        return exp.run(log_to_mlflow=False, progress=False, acompletion=fake_llm)

    result = asyncio.run(notebook_cell())
    assert len(result.cases) == 12


def test_unknown_model_fails_before_any_call(fake_llm, variants, reviews, label_match):
    exp = wb.Experiment(
        name="u", variants=variants, dataset=reviews, models=["nosuchprovider/x"], scorers=[label_match]
    )
    with pytest.raises(wb.ModelError, match="unknown model 'nosuchprovider/x'"):
        exp.run(log_to_mlflow=False, progress=False, acompletion=fake_llm)
    assert fake_llm.calls == []


def test_missing_api_key_fails_before_any_call(monkeypatch, fake_llm, variants, reviews, label_match):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(wb.ModelError, match="OPENAI_API_KEY"):
        make(variants, reviews, label_match).run(log_to_mlflow=False, progress=False, acompletion=fake_llm)
    assert fake_llm.calls == []


def test_bad_expected_label_fails_before_any_call(fake_key, fake_llm, variants, reviews):
    scorer = wb.LabelMatch(labels=["pos", "neg"], expected="label")
    with pytest.raises(wb.ScorerError, match=r"row 1.*id 'a'.*'positive' is not one of the labels"):
        make(variants, reviews, scorer).run(log_to_mlflow=False, progress=False, acompletion=fake_llm)
    assert fake_llm.calls == []


def test_unknown_price_is_nan_and_noted(monkeypatch, fake_llm, variants, reviews, label_match):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    exp = wb.Experiment(
        name="u", variants=variants, dataset=reviews, models=["openai/my-finetune-7"], scorers=[label_match]
    )
    result = exp.run(log_to_mlflow=False, progress=False, acompletion=fake_llm)
    assert math.isnan(result.summary["cost_usd"].iloc[0])
    assert any("cost unknown for 'openai/my-finetune-7'" in n for n in result.notes)


def test_disagreements_and_verdict(fake_key, variants, reviews, label_match):
    # few_shot "fixes" the one case the keyword model gets wrong.
    def reply(model, messages):
        if len(messages) > 1 and "Not bad" in messages[-1]["content"]:
            return "positive"
        return FakeLLM().reply(model, messages)

    result = make(variants, reviews, label_match).run(log_to_mlflow=False, progress=False, acompletion=FakeLLM(reply))
    diff = result.disagreements()
    assert list(diff["case_id"]) == ["e"]
    assert diff["zero_shot:output"].iloc[0] == "negative" and diff["few_shot:output"].iloc[0] == "positive"
    assert result.best()["variant"] == "few_shot"
    # One fixed case out of six is no evidence, and the verdict says so.
    verdict = result.verdict()
    assert verdict.startswith("No detectable difference on label_match: +16.7 pts")
    assert "(exact McNemar, n = 6)" in verdict


def test_experiment_definition_errors():
    ds = wb.Dataset.from_records([{"id": "1", "x": "y"}])
    v = wb.PromptVariant(name="a", prompt="{{ x }}")
    with pytest.raises(wb.ConfigError, match="duplicate variant names"):
        wb.Experiment(name="e", variants=[v, v], dataset=ds)
    with pytest.raises(wb.ConfigError, match="repeats must be >= 1"):
        wb.Experiment(name="e", variants=[v], dataset=ds, repeats=0)
    with pytest.raises(wb.ConfigError, match="two scorers named"):
        wb.Experiment(name="e", variants=[v], dataset=ds, scorers=[wb.JsonValid(), wb.JsonValid()])


def test_the_success_rule_decides_successes_and_can_name_another_scorer(fake_key, fake_llm, variants, reviews):
    """One configurable success rule: cost per success and failures follow it, not a hidden 0.5 on scorer one."""
    # "short" passes every output; label_match fails some: the rule decides which one counts.
    short = wb.scorer(lambda outputs: len(outputs.split()) <= 3, name="short")
    label = wb.LabelMatch(labels=["positive", "negative"], expected="label")
    base = wb.Experiment(name="rule", variants=variants[:1], dataset=reviews, models=["openai/gpt-4o-mini"],
                         scorers=[label, short])  # fmt: skip
    by_label = base.run(log_to_mlflow=False, progress=False, acompletion=fake_llm).summary.iloc[0]
    strict = base.with_overrides()
    strict.success = wb.SuccessRule(scorer="short", threshold=1.0)
    by_short = strict.run(log_to_mlflow=False, progress=False, acompletion=fake_llm).summary.iloc[0]
    assert by_label["successes"] == round(by_label["label_match"] * 6) < 6
    assert by_short["successes"] == 6
    with pytest.raises(wb.ConfigError, match="success rule names scorer 'nope'"):
        wb.Experiment(name="x", variants=variants, dataset=reviews, scorers=[label], success=wb.SuccessRule("nope"))


def test_yaml_success_and_max_error_rate_reach_the_experiment(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("id,text,label\n1,a,positive\n")
    path = tmp_path / "e.yaml"
    path.write_text(
        "name: e\ndataset: {path: d.csv, expected: [label]}\nvariants: [{name: v, prompt: '{{ text }}'}]\n"
        "scorers: [{type: label_match, labels: [positive, negative], expected: label}]\n"
        "settings: {max_error_rate: 0.1}\nsuccess: {scorer: label_match, threshold: 0.9}\n"
    )
    exp = wb.load_experiment(path)
    assert exp.settings.max_error_rate == 0.1
    assert exp.success == wb.SuccessRule(scorer="label_match", threshold=0.9)
