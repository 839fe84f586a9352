"""The fake OpenAI-compatible server, exercised through real litellm and httpx clients on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import httpx
import litellm
import pytest

import workbench  # sets the offline defaults before litellm is used
from workbench.testing import FakeOpenAIServer, ServerStats, expected_reply, request_key

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "How are you today?"}]


def _body(content: str, **params: object) -> dict[str, object]:
    return {"model": "fake", "messages": [{"role": "user", "content": content}], **params}


def _complete(server: FakeOpenAIServer, messages: list[dict[str, str]], **kwargs: object) -> object:
    return litellm.completion(
        model="openai/fake", api_base=server.base_url, api_key="sk-fake", messages=messages, **kwargs
    )


def test_reply_is_derived_from_the_request_and_has_usage() -> None:
    other = [{"role": "user", "content": "something else entirely"}]
    with FakeOpenAIServer() as server:
        first = _complete(server, MESSAGES)
        second = _complete(server, other)
    assert first.choices[0].message.content == expected_reply("fake", MESSAGES)
    assert second.choices[0].message.content == expected_reply("fake", other)
    assert expected_reply("fake", MESSAGES) != expected_reply("fake", other)
    assert expected_reply("fake", MESSAGES) != expected_reply("other-model", MESSAGES)
    # Word counts: "Be brief." (2) + "How are you today?" (4); the reply is one word.
    assert (first.usage.prompt_tokens, first.usage.completion_tokens, first.usage.total_tokens) == (6, 1, 7)


def test_custom_reply_callable_sees_the_request_json() -> None:
    with FakeOpenAIServer(reply=lambda body: f"{body['model']}|{body['messages'][-1]['content']}") as server:
        response = _complete(server, MESSAGES)
    assert response.choices[0].message.content == "fake|How are you today?"


def test_models_endpoint_lists_a_model() -> None:
    with FakeOpenAIServer() as server:
        listing = httpx.get(server.base_url + "/models").json()
    assert listing["object"] == "list"
    assert [m["id"] for m in listing["data"]] == ["fake"]


def test_malformed_and_streaming_requests_are_rejected_with_400() -> None:
    with FakeOpenAIServer() as server:
        url = server.base_url + "/chat/completions"
        assert httpx.post(url, content=b"not json").status_code == 400
        assert httpx.post(url, json={"model": "fake"}).status_code == 400
        assert httpx.post(url, json=_body("hi", stream=True)).status_code == 400


def test_500_fault_makes_litellm_raise() -> None:
    with FakeOpenAIServer(fault_rate=1.0, faults=("500",)) as server:
        with pytest.raises(litellm.InternalServerError):
            _complete(server, MESSAGES, num_retries=0)
        stats = server.stats
    assert stats == ServerStats(requests=1, successes=0, faults={"500": 1})


def test_503_fault_returns_503() -> None:
    with FakeOpenAIServer(fault_rate=1.0, faults=("503",)) as server:
        response = httpx.post(server.base_url + "/chat/completions", json=_body("hi"))
    assert response.status_code == 503
    assert "error" in response.json()


def test_429_fault_sends_retry_after() -> None:
    with FakeOpenAIServer(fault_rate=1.0, faults=("429",), retry_after_s=0.25) as server:
        response = httpx.post(server.base_url + "/chat/completions", json=_body("hi"))
        stats = server.stats
    assert response.status_code == 429
    assert float(response.headers["Retry-After"]) == 0.25
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert stats.faults == {"429": 1} and stats.successes == 0


def test_drop_closes_the_connection_without_a_response() -> None:
    with FakeOpenAIServer(fault_rate=1.0, faults=("drop",)) as server:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            httpx.post(server.base_url + "/chat/completions", json=_body("hi"), timeout=5)
        stats = server.stats
    assert stats.requests == 1 and stats.successes == 0 and stats.faults == {"drop": 1}


def test_hang_outlasts_the_client_timeout() -> None:
    with FakeOpenAIServer(fault_rate=1.0, faults=("hang",), hang_s=30) as server:
        start = time.perf_counter()
        with pytest.raises(httpx.TimeoutException):
            httpx.post(server.base_url + "/chat/completions", json=_body("hi"), timeout=0.3)
        assert time.perf_counter() - start < 5
        deadline = time.monotonic() + 5
        while server.stats.client_disconnects == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        stats = server.stats
    assert stats.faults == {"hang": 1} and stats.successes == 0 and stats.client_disconnects == 1


def test_stats_count_requests_and_successes_per_key() -> None:
    a, b = _body("alpha"), _body("beta", temperature=0.5)
    with FakeOpenAIServer() as server:
        url = server.base_url + "/chat/completions"
        for body in (a, a, a, b, b):
            assert httpx.post(url, json=body).status_code == 200
        # A sampling parameter is part of the key: the same messages at another temperature differ.
        assert httpx.post(url, json=_body("beta", temperature=0.9)).status_code == 200
        assert server.requests == 6
        assert server.successes_by_key() == {
            request_key(a): 3,
            request_key(b): 2,
            request_key(_body("beta", temperature=0.9)): 1,
        }
        assert server.stats_by_key()[request_key(a)].requests == 3
        server.reset_stats()
        assert server.stats == ServerStats()
        assert server.successes_by_key() == {}


def _statuses(seed: int) -> list[int]:
    server = FakeOpenAIServer(fault_rate=0.5, faults=("429", "500", "503"), seed=seed)
    with server, httpx.Client(base_url=server.base_url) as client:
        return [
            client.post("/chat/completions", json=_body(f"case {i}")).status_code
            for i in range(20)
            for _attempt in range(3)
        ]


def test_faults_are_deterministic_per_seed_and_attempt() -> None:
    first, again, other_seed = _statuses(0), _statuses(0), _statuses(1)
    assert first == again
    assert first != other_seed
    assert 200 in first and set(first) - {200}
    # The decision depends on the attempt number, so some request that faulted later succeeds.
    per_case = [first[i : i + 3] for i in range(0, len(first), 3)]
    assert any(attempts[0] != 200 and 200 in attempts[1:] for attempts in per_case)


def test_litellm_retries_through_429_faults() -> None:
    conversations = [[{"role": "user", "content": f"question {i}"}] for i in range(10)]
    with FakeOpenAIServer(fault_rate=0.5, faults=("429",), retry_after_s=0.01) as server:
        replies = [_complete(server, m, num_retries=6).choices[0].message.content for m in conversations]
        stats, successes = server.stats, server.successes_by_key()
    assert replies == [expected_reply("fake", m) for m in conversations]
    assert stats.faults.get("429", 0) > 0
    assert stats.requests == stats.successes + stats.faults["429"]
    assert sorted(successes.values()) == [1] * 10


def test_concurrent_requests_do_not_block_each_other() -> None:
    async def fire(base_url: str) -> list[int]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=10) as client:
            responses = await asyncio.gather(
                *(client.post("/chat/completions", json=_body(f"c{i}")) for i in range(64))
            )
        return [r.status_code for r in responses]

    with FakeOpenAIServer(latency_s=0.1) as server:
        start = time.perf_counter()
        statuses = asyncio.run(fire(server.base_url))
        elapsed = time.perf_counter() - start
        assert server.stats.successes == 64
    assert statuses == [200] * 64
    assert elapsed < 1.5, f"64 requests at 0.1 s latency took {elapsed:.2f} s: the server blocks"


def test_authorization_header_is_neither_logged_nor_stored(caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-very-secret-0123456789"
    caplog.set_level(logging.DEBUG)
    with FakeOpenAIServer() as server:
        headers = {"Authorization": f"Bearer {secret}"}
        httpx.post(server.base_url + "/chat/completions", json=_body("hi"), headers=headers)
        state = repr(vars(server)) + repr(server.stats) + repr(server.stats_by_key())
    assert secret not in caplog.text
    assert secret not in state


def test_stop_releases_the_port_even_with_a_hanging_request() -> None:
    server = FakeOpenAIServer(fault_rate=1.0, faults=("hang",), hang_s=60).start()
    port = server.port
    assert port is not None
    with pytest.raises(httpx.TimeoutException):
        httpx.post(server.base_url + "/chat/completions", json=_body("hi"), timeout=0.2)
    start = time.perf_counter()
    server.stop()
    assert time.perf_counter() - start < 5
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    with pytest.raises(workbench.WorkbenchError, match="not started"):
        _ = server.base_url


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"fault_rate": 1.5}, "fault_rate"), ({"faults": ("418",)}, "faults"), ({"faults": ()}, "faults")],
)
def test_invalid_arguments_are_rejected(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FakeOpenAIServer(**kwargs)  # type: ignore[arg-type]
