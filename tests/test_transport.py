"""The ``openai-compatible`` transport against the fake server on 127.0.0.1."""

import json

import litellm
import pytest

import workbench as wb
from workbench.core.exceptions import ConfigError, ModelError
from workbench.engine.cache import ResponseCache
from workbench.engine.calls import CallPath
from workbench.engine.planning import validate
from workbench.engine.retry import RetryPolicy, is_retryable, retry_after_s
from workbench.experiment.config import experiment_from_dict
from workbench.providers.openai_compatible import ProviderConnectionError, ProviderHTTPError
from workbench.testing import FakeOpenAIServer
from workbench.testing.fake_openai import expected_reply

KEY = "sk-transport-SECRET-41c9"


def run(
    server: FakeOpenAIServer,
    *,
    model: str = "openai/fake",
    n: int = 6,
    attempts: int = 3,
    all_fail: bool = False,
    **params,
) -> wb.ExperimentResult:
    """Run ``n`` cases through the transport. ``all_fail``: every call is expected to fail, so the
    run raises TooManyErrorsError; its partial result is returned."""
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
    if not all_fail:
        return exp.run(log_to_mlflow=False, progress=False)
    with pytest.raises(wb.TooManyErrorsError, match=rf"{n} of {n} calls failed") as failed:
        exp.run(log_to_mlflow=False, progress=False)
    assert KEY not in str(failed.value)
    return failed.value.result


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
    assert retry_after_s(ProviderHTTPError(429, "slow", {"RETRY-AFTER": "3"})) == 3  # any case


def test_http_errors_are_recorded_with_status_and_without_the_key():
    with FakeOpenAIServer(fault_rate=1.0, faults=("500",)) as server:
        result = run(server, n=3, all_fail=True)
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
    calls = CallPath(exp.settings)
    assert calls.transport is not None  # remote models would use it...
    assert calls._function("local/gemma-3-270m", task=True) is litellm.acompletion  # ...the local one does not
    assert calls._function("openai/x", task=True) is calls.transport
    assert calls._function("openai/x", task=False) is litellm.acompletion  # judges go through litellm


class ScriptedServer:
    """A bare OpenAI-shaped endpoint on 127.0.0.1 answering 200 with scripted bodies.

    It records whether each request carried ``Authorization: Bearer <KEY>`` and the
    client address it came from (one address: one pooled connection).
    """

    def __init__(self, bodies: list[bytes]) -> None:
        self.bodies, self.authorized, self.peers = bodies, [], []

    def __enter__(self) -> "ScriptedServer":
        import asyncio
        import threading

        from aiohttp import web

        async def chat(request: web.Request) -> web.Response:
            self.authorized.append(request.headers.get("Authorization") == f"Bearer {KEY}")
            self.peers.append(request.transport.get_extra_info("peername") if request.transport else None)
            body = self.bodies[min(len(self.authorized), len(self.bodies)) - 1]
            return web.Response(body=body, content_type="application/json")

        self.loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        self.runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.base_url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/v1"
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


GOOD = json.dumps(
    {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "fake",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
).encode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": {"message": "upstream overloaded", "code": 503}}', "error in a 200 answer"),
        (b'{"object": "chat.completion", "choices": []}', "did not answer an OpenAI chat completion"),
        (b'{"choices": [{"index": 0, "message": null}]}', "choice without a message"),
        (b"\xff\xfe not json", "did not answer an OpenAI chat completion"),
    ],
)
def test_a_200_without_a_completion_is_an_error_never_an_empty_output(body, message, isolated_cache):
    with ScriptedServer([body]) as server:
        result = run(server, n=1, attempts=1, all_fail=True)
    assert result.cases["error"].str.contains(message).all(), result.cases["error"].tolist()
    assert result.cases["output"].isna().all() and server.authorized == [True]
    assert len(ResponseCache(isolated_cache)) == 0  # errors are never cached


def test_a_200_error_with_a_retryable_code_is_retried_then_succeeds():
    with ScriptedServer([b'{"error": {"message": "busy", "code": 503}}', GOOD]) as server:
        result = run(server, n=1, attempts=3)
    assert result.cases["output"].tolist() == ["ok"] and result.cases["attempts"].tolist() == [2]


def test_the_session_is_pooled_and_closed():
    import asyncio

    from workbench.providers.openai_compatible import OpenAICompatibleTransport

    async def main(url: str) -> tuple[int, bool, bool]:
        transport = OpenAICompatibleTransport()
        messages = [{"role": "user", "content": "hi"}]
        sessions = []
        for _ in range(3):
            reply = await transport(model="openai/fake", messages=messages, timeout=5, api_base=url, api_key=KEY)
            assert reply.choices[0].message.content == "ok"
            sessions.append(transport._session)
        session = sessions[0]
        await transport.aclose()
        return len({id(s) for s in sessions}), session is not None and session.closed, transport._session is None

    with ScriptedServer([GOOD]) as server:
        assert asyncio.run(main(server.base_url)) == (1, True, True)
        assert server.authorized == [True, True, True]
        assert len(server.peers) == 3 and len(set(server.peers)) == 1  # one kept-alive connection


def test_params_that_are_not_plain_json_fail_before_any_call():
    class Schema:
        pass

    exp = wb.Experiment(
        name="transport",
        variants=[wb.PromptVariant(name="v", prompt="{{ text }}", params={"api_base": "http://127.0.0.1:9/v1",
                                                                            "metadata": Schema})],
        dataset=wb.Dataset.from_records([{"id": "a", "text": "x"}]),
        models=["openai/fake"],
        settings=wb.RunSettings(transport="openai-compatible"),
    )  # fmt: skip
    with pytest.raises(ModelError, match="plain JSON"):
        validate(exp)
    # A response_format that is a class (a pydantic model, say) is refused when the variant is made.
    with pytest.raises(wb.ConfigError, match="params.response_format: must be a mapping"):
        wb.PromptVariant(name="v", prompt="{{ text }}", params={"response_format": Schema})


def test_proxies_come_from_the_environment_and_no_proxy_exempts_a_host(monkeypatch):
    from workbench.providers.openai_compatible import env_proxy

    for name in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert env_proxy("http://vllm.internal:8000/v1/chat/completions") is None
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    assert env_proxy("http://vllm.internal:8000/v1/chat/completions") == "http://proxy.internal:3128"
    assert env_proxy("http://127.0.0.1:8000/v1/chat/completions") is None
