"""The ``openai-compatible`` transport against the fake server on 127.0.0.1."""

import litellm
import pytest

import workbench as wb
from workbench.config import experiment_from_dict
from workbench.exceptions import ConfigError, ModelError
from workbench.providers.openai_compatible import ProviderConnectionError, ProviderHTTPError
from workbench.retry import RetryPolicy, is_retryable, retry_after_s
from workbench.runner import Engine, validate
from workbench.testing import FakeOpenAIServer
from workbench.testing.fake_openai import expected_reply

KEY = "sk-transport-SECRET-41c9"


def run(
    server: FakeOpenAIServer, *, model: str = "openai/fake", n: int = 6, attempts: int = 3, **params
) -> wb.ExperimentResult:
    variant = wb.PromptVariant(
        name="v", prompt="Echo {{ text }}", params={"api_base": server.base_url, "api_key": KEY, **params}
    )
    exp = wb.Experiment(
        name="transport",
        variants=[variant],
        dataset=wb.Dataset.from_records([{"id": f"c{i}", "text": f"case {i}"} for i in range(n)]),
        models=[model],
        settings=wb.RunSettings(
            transport="openai-compatible", retry=RetryPolicy(max_attempts=attempts, initial_wait_s=0.01)
        ),
    )
    return exp.run(log_to_mlflow=False, progress=False)


def test_replies_tokens_and_params_reach_the_server_as_sent():
    seen = []

    def reply(body):
        seen.append(body)
        return expected_reply(body["model"], body["messages"])

    with FakeOpenAIServer(reply=reply) as server:
        result = run(server, temperature=0.3, max_tokens=7, seed=11)
    rows = result.cases.to_dict("records")
    for row in rows:
        messages = [{"role": "user", "content": f"Echo {row['input.text']}"}]
        assert row["output"] == expected_reply("fake", messages)
        assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
    assert {(b["model"], b["temperature"], b["max_tokens"], b["seed"]) for b in seen} == {("fake", 0.3, 7, 11)}
    assert not any(k in b for b in seen for k in ("api_key", "api_base", "timeout", "num_retries"))


def test_cost_is_litellm_price_for_known_models_and_nan_for_unknown():
    with FakeOpenAIServer() as server:
        priced = run(server, model="openai/gpt-4o-mini", n=2)
        unpriced = run(server, n=2)
    row = priced.cases.iloc[0]
    prompt, completion = litellm.cost_per_token(
        model="openai/gpt-4o-mini",
        prompt_tokens=int(row["prompt_tokens"]),
        completion_tokens=int(row["completion_tokens"]),
    )
    assert row["cost_usd"] == pytest.approx(prompt + completion) and row["cost_usd"] > 0
    assert unpriced.cases["cost_usd"].isna().all()  # unknown, never 0


def test_rate_limits_are_retried_after_retry_after():
    with FakeOpenAIServer(fault_rate=0.5, faults=("429",), retry_after_s=0.2, seed=5) as server:
        limited = run(server, n=8, attempts=10)
        stats = server.stats
    assert limited.cases["error"].isna().all() and stats.faults["429"] >= 2
    retried = limited.cases[limited.cases["attempts"] > 1]
    assert len(retried) >= 1 and (retried["latency_s"] >= 0.2).all()  # waited at least Retry-After


def test_the_retry_policy_reads_the_transport_errors():
    assert is_retryable(ProviderHTTPError(503, "busy", {})) and is_retryable(ProviderHTTPError(429, "slow", {}))
    assert not is_retryable(ProviderHTTPError(400, "bad request", {}))  # it will not get better
    assert is_retryable(ProviderConnectionError("dropped")) and is_retryable(TimeoutError("slow"))
    assert retry_after_s(ProviderHTTPError(429, "slow", {"Retry-After": "2.5"})) == 2.5


def test_http_errors_are_recorded_with_status_and_without_the_key():
    with FakeOpenAIServer(fault_rate=1.0, faults=("500",)) as server:
        result = run(server, n=3)
        assert server.requests == 9  # 3 cases x max_attempts=3: 5xx is retried
    errors = result.cases["error"]
    assert errors.str.contains("HTTP 500").all() and errors.str.contains("/chat/completions").all()
    assert not errors.str.contains(KEY).any()
    assert result.summary.iloc[0]["error_rate"] == 1.0


def test_dropped_connections_and_hangs_are_retried():
    with FakeOpenAIServer(fault_rate=0.4, faults=("drop", "hang"), hang_s=3.0, seed=2) as server:
        variant = wb.PromptVariant(name="v", prompt="Echo {{ text }}", params={"api_base": server.base_url})
        exp = wb.Experiment(
            name="transport",
            variants=[variant],
            dataset=wb.Dataset.from_records([{"id": f"c{i}", "text": f"case {i}"} for i in range(10)]),
            models=["hosted_vllm/fake"],
            settings=wb.RunSettings(
                transport="openai-compatible", timeout_s=1.0, retry=RetryPolicy(max_attempts=8, initial_wait_s=0.01)
            ),
        )
        result = exp.run(log_to_mlflow=False, progress=False)
        faults = server.stats.faults
    assert result.cases["error"].isna().all(), result.cases["error"].dropna().tolist()
    assert faults.get("drop", 0) >= 1 and faults.get("hang", 0) >= 1


@pytest.mark.parametrize(
    ("model", "params", "message"),
    [
        ("anthropic/claude-3-5-haiku-latest", {"api_key": "x", "api_base": "http://127.0.0.1:9/v1"}, "anthropic"),
        ("openai/fake", {"api_key": "x"}, "needs an `api_base`"),
        ("openai/fake", {"api_base": "http://127.0.0.1:9/v1", "mock_response": "hi"}, "litellm-only"),
    ],
)
def test_models_the_transport_cannot_reach_fail_before_any_call(model, params, message):
    exp = wb.Experiment(
        name="transport",
        variants=[wb.PromptVariant(name="v", prompt="Echo {{ text }}", params=params)],
        dataset=wb.Dataset.from_records([{"id": "a", "text": "x"}]),
        models=[model],
        settings=wb.RunSettings(transport="openai-compatible"),
    )
    with pytest.raises(ModelError, match=message) as info:
        exp.run(log_to_mlflow=False, progress=False)
    assert "settings.transport" in str(info.value)


def test_yaml_settings_take_the_transport_and_reject_unknown_ones(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("id,text\na,x\n")
    spec = {
        "name": "t",
        "dataset": {"path": str(data)},
        "models": ["openai/fake"],
        "variants": [{"name": "v", "prompt": "{{ text }}"}],
        "settings": {"transport": "openai-compatible"},
    }
    assert experiment_from_dict(spec, source="t.yaml").settings.transport == "openai-compatible"
    spec["settings"] = {"transport": "curl"}
    with pytest.raises(ConfigError, match=r"(?s)t.yaml.*settings.transport.*litellm"):
        experiment_from_dict(spec, source="t.yaml")
    with pytest.raises(ConfigError, match="transport must be one of"):
        wb.RunSettings(transport="curl")


def test_the_local_model_keeps_its_own_provider_under_the_transport():
    exp = wb.Experiment(
        name="transport",
        variants=[wb.PromptVariant(name="v", prompt="x {{ text }}")],
        dataset=wb.Dataset.from_records([{"id": "a", "text": "x"}]),
        models=["local/gemma-3-270m"],
        settings=wb.RunSettings(transport="openai-compatible"),
    )
    validate(exp)  # no api_base needed: local models never go over HTTP
    engine = Engine(exp, acompletion=None, cache=None, read_cache=False, budget_usd=None, progress=False)
    assert engine.completions["local/gemma-3-270m"] is litellm.acompletion
