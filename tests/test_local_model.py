"""The embedded model, for real: Gemma 3 270M through litellm's custom provider."""

import asyncio

import litellm
import pytest

import workbench as wb
from workbench.providers.local import messages_to_prompt

pytestmark = pytest.mark.local_model
MODEL = "local/gemma-3-270m"
QUESTION = [{"role": "user", "content": "Review: The strap broke on day one.\nSentiment:"}]


def test_messages_render_to_a_completion_prompt():
    prompt = messages_to_prompt(
        [
            {"role": "system", "content": "Label reviews. "},
            {"role": "user", "content": "Review: great\nSentiment:"},
            {"role": "assistant", "content": "positive"},
            {"role": "user", "content": "Review: awful\nSentiment:"},
        ]
    )
    assert prompt == "Label reviews.\n\nReview: great\nSentiment: positive\n\nReview: awful\nSentiment:"


def test_completion_returns_text_usage_and_zero_cost():
    response = litellm.completion(model=MODEL, messages=QUESTION, temperature=0, max_tokens=5)
    assert isinstance(response.choices[0].message.content, str) and response.choices[0].message.content
    assert response.usage.prompt_tokens >= 10
    assert 1 <= response.usage.completion_tokens <= 5  # max_tokens honoured
    assert litellm.completion_cost(completion_response=response) == 0.0


def test_temperature_zero_is_deterministic_and_stop_is_honoured():
    kwargs = {"model": MODEL, "temperature": 0, "max_tokens": 12}
    first = litellm.completion(messages=QUESTION, **kwargs).choices[0].message.content
    again = litellm.completion(messages=QUESTION, **kwargs).choices[0].message.content
    assert first == again
    story = [{"role": "user", "content": "Once upon a time"}]
    unstopped = litellm.completion(messages=story, **kwargs).choices[0].message.content
    stopped = litellm.completion(messages=story, stop=[" "], **kwargs).choices[0].message.content
    assert " " in unstopped.strip() and " " not in stopped.strip()


def test_seed_makes_sampling_reproducible():
    kwargs = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "My favourite colour is"}],
        "temperature": 1.0,
        "max_tokens": 12,
    }
    a = litellm.completion(seed=7, **kwargs).choices[0].message.content
    b = litellm.completion(seed=7, **kwargs).choices[0].message.content
    others = {litellm.completion(seed=s, **kwargs).choices[0].message.content for s in (1, 2, 3)}
    assert a == b
    assert len(others | {a}) > 1  # different seeds sample differently


def test_concurrent_async_calls_are_serialised_safely():
    async def many():
        return await asyncio.gather(
            *[litellm.acompletion(model=MODEL, messages=QUESTION, temperature=0, max_tokens=4) for _ in range(4)]
        )

    outputs = {r.choices[0].message.content for r in asyncio.run(many())}
    assert len(outputs) == 1  # same prompt, greedy: same answer, no corrupted context


def test_unknown_local_model_is_a_clear_error(variants, reviews):
    exp = wb.Experiment(name="x", variants=variants, dataset=reviews, models=["local/nope"])
    with pytest.raises(wb.ModelError, match=r"unknown local model 'local/nope'.*local/gemma-3-270m"):
        exp.run(log_to_mlflow=False, progress=False)


def test_few_shot_beats_zero_shot_on_the_golden_set(tracking_uri):
    exp = wb.load_experiment("experiments/sentiment.yaml").with_overrides(limit=24)
    result = exp.run(tracking_uri=tracking_uri, progress=False)
    summary = result.summary.set_index("variant")
    assert summary.loc["few_shot", "label_match"] > summary.loc["zero_shot", "label_match"]
    assert summary.loc["few_shot", "label_match"] >= 0.75
    assert (summary["cost_usd"] == 0).all() and (summary["errors"] == 0).all()
    assert (summary["prompt_tokens_mean"] > 0).all()
