"""The embedded model, for real: Gemma 3 270M through litellm's custom provider."""

import asyncio

import litellm
import pytest

import workbench as wb
from workbench.providers.local import messages_to_prompt

pytestmark = pytest.mark.local_model
MODEL = "local/gemma-3-270m"
QUESTION = [{"role": "user", "content": "Review: The strap broke on day one.\nSentiment:"}]
# Shares QUESTION's first tokens: llama.cpp would reuse them from its KV cache.
SIMILAR = [{"role": "user", "content": "Review: The strap broke on day two.\nSentiment:"}]
STORY = [{"role": "user", "content": "Once upon a time"}]


def text(response) -> str:
    return response.choices[0].message.content


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
    others = {litellm.completion(seed=s, **kwargs).choices[0].message.content for s in (1, 2, 3)}
    b = litellm.completion(seed=7, **kwargs).choices[0].message.content  # after other calls of the same prompt
    assert a == b
    assert len(others | {a}) > 1  # different seeds sample differently


def test_concurrent_async_calls_are_serialised_safely():
    """Same prompt, same params, same answer: whatever ran before it and however many calls are in flight."""
    greedy = {"temperature": 0, "max_tokens": 4}
    seeded = [{"temperature": 1.0, "seed": seed, "max_tokens": 4} for seed in (3, 7, 11)]
    litellm.completion(model=MODEL, messages=STORY, temperature=0, max_tokens=2)  # unrelated prompt ran last
    expected = [text(litellm.completion(model=MODEL, messages=QUESTION, **p)) for p in (greedy, *seeded)]

    async def many():
        calls = []
        for _ in range(3):  # each call follows QUESTION itself or SIMILAR, which share its prefix
            calls += [litellm.acompletion(model=MODEL, messages=QUESTION, **p) for p in (greedy, *seeded)]
            calls.append(litellm.acompletion(model=MODEL, messages=SIMILAR, temperature=0, max_tokens=2))
        return await asyncio.gather(*calls)

    outputs = [text(r) for i, r in enumerate(asyncio.run(many())) if i % 5 != 4]
    assert outputs == expected * 3  # no corrupted context, no dependence on the previous prompt


def test_outputs_do_not_depend_on_call_order():
    """24 golden-set cases x both variants: the runner's order, then reversed and interleaved, same outputs."""
    exp = wb.load_experiment("experiments/sentiment.yaml").with_overrides(limit=24)
    rows = exp.run(log_to_mlflow=False, progress=False, cache=False).cases
    assert rows["error"].isna().all()
    first = {(r.case_id, r.variant): r.output for r in rows.itertuples()}
    again = {}
    for case in reversed(list(exp.dataset.cases())):
        for variant in reversed(exp.variants):
            messages = variant.render(case.inputs)
            # Right after the same prompt cut before its last line (as when its template is edited),
            # so llama.cpp could reuse all but the last few tokens.
            head = [*messages[:-1], {"role": "user", "content": messages[-1]["content"].rsplit("\n", 1)[0]}]
            litellm.completion(model=MODEL, messages=head, temperature=0, max_tokens=1)
            again[case.id, variant.name] = text(litellm.completion(model=MODEL, messages=messages, **variant.params))
    assert len(first) == len(again) == 48
    assert {key: (first[key], again[key]) for key in first if first[key] != again[key]} == {}


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


# --- SmolLM2-135M-Instruct: the second embedded model, an instruction-tuned one ---------------

SMOL = "local/smollm2-135m-instruct"
CAPITAL = [
    {"role": "system", "content": "You are a helpful assistant. Answer in one word."},
    {"role": "user", "content": "What is the capital of France?"},
]


def test_smollm2_follows_an_instruction_through_its_chat_template():
    response = litellm.completion(model=SMOL, messages=CAPITAL, temperature=0, max_tokens=8)
    assert "Paris" in text(response)
    assert litellm.completion_cost(completion_response=response) == 0.0
    assert text(litellm.completion(model=SMOL, messages=CAPITAL, temperature=0, max_tokens=8)) == text(response)
    # The prompt is the GGUF's ChatML template, not the base model's plain rendering.
    llama = wb.register_local_provider()._llama("smollm2-135m-instruct")
    chatml = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in CAPITAL)
    chatml += "<|im_start|>assistant\n"
    assert response.usage.prompt_tokens == len(llama.tokenize(chatml.encode(), special=True))
    assert response.usage.prompt_tokens != len(llama.tokenize(messages_to_prompt(CAPITAL).encode(), special=True))


def test_both_embedded_models_run_by_name_and_load_once_per_process():
    handler = wb.register_local_provider()
    data = wb.Dataset.from_records(
        [{"id": "a", "question": "What colour is the sky on a clear day?"}, {"id": "b", "question": "What is 2 + 2?"}]
    )
    variant = wb.PromptVariant(
        name="ask", prompt="Question: {{ question }}\nAnswer:", params={"temperature": 0, "max_tokens": 12}
    )
    exp = wb.Experiment(name="both", variants=[variant], dataset=data, models=[MODEL, SMOL])
    result = exp.run(log_to_mlflow=False, progress=False, cache=False)
    cases = result.cases
    assert cases["error"].isna().all() and len(cases) == 4
    assert (cases["output"].str.strip().str.len() > 0).all()
    assert set(result.summary["model"]) == {MODEL, SMOL} and (result.summary["cost_usd"] == 0).all()
    loaded = dict(handler._models)
    assert {"gemma-3-270m", "smollm2-135m-instruct"} <= set(loaded)
    exp.run(log_to_mlflow=False, progress=False, cache=False)
    assert all(handler._models[name] is loaded[name] for name in loaded)  # no second load
