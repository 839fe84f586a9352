"""Shared fixtures. No test reaches the network: remote models are faked by
injecting an async completion function built on litellm's ``mock_response``."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402

import workbench as wb  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# browser_support: Chromium, JupyterLab and MLflow UI fixtures for the browser tests;
# tracking_store: the tracking_uri / store_uri fixtures and the switch to a team server.
pytest_plugins = ["browser_support", "tracking_store"]


def sentiment_of(messages: list[dict[str, str]]) -> str:
    """A deterministic 'model': reads the last user turn, answers from keywords."""
    text = messages[-1]["content"].lower()
    return "negative" if any(w in text for w in ("broke", "awful", "bad", "never")) else "positive"


class FakeLLM:
    """An injectable stand-in for ``litellm.acompletion``.

    Replies come from ``reply(model, messages)`` and go through litellm's
    ``mock_response``, so responses, usage and prices are litellm's own.
    ``fail(messages)`` returning True makes that call raise a dropped
    connection; returning an exception raises that one. Records every call
    and the highest number of calls in flight at once.
    """

    def __init__(
        self,
        reply: Callable[[str, list[dict[str, str]]], str] | None = None,
        *,
        delay: float = 0.0,
        fail: Callable[[list[dict[str, str]]], bool | BaseException] | None = None,
    ) -> None:
        self.reply = reply or (lambda model, messages: sentiment_of(messages))
        self.delay = delay
        self.fail = fail or (lambda messages: False)
        self.calls: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, *, model: str, messages: list[dict[str, str]], **kwargs: Any) -> Any:
        self.calls.append({"model": model, "messages": messages, **kwargs})
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            failure = self.fail(messages)
            if isinstance(failure, BaseException):
                raise failure
            if failure:
                raise litellm.exceptions.APIConnectionError(
                    message="connection dropped", llm_provider="openai", model=model
                )
            return await litellm.acompletion(model=model, messages=messages, mock_response=self.reply(model, messages))
        finally:
            self.in_flight -= 1


class NetworkAttempt(OSError):
    """Raised by the no-network guard: a test tried to reach a host other than this machine."""


def _is_loopback(address: Any) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths (str / bytes) never leave the machine
        return True
    host = str(address[0])
    return host in ("localhost", "::1", "0.0.0.0", "") or host.startswith("127.") or host.startswith("::ffff:127.")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every test runs offline: a socket connect to anything but loopback raises :class:`NetworkAttempt`.

    So a test fails if anything (a model hub, a telemetry ping, Chroma's default ONNX model)
    tries to download. Returns the refused addresses, for tests that also check nothing was
    tried and swallowed. Subprocesses (papermill kernels, browsers) are not covered.
    """
    refused: list[Any] = []
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guarded(method: Callable[..., Any]) -> Callable[..., Any]:
        def call(self: socket.socket, address: Any) -> Any:
            if not _is_loopback(address):
                refused.append(address)
                raise NetworkAttempt(f"test tried to connect to {address!r}: tests never use the network")
            return method(self, address)

        return call

    monkeypatch.setattr(socket.socket, "connect", guarded(connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guarded(connect_ex))
    return refused


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own response cache, and its own folder of run files next to it
    (so the secret scans of that folder see them); kernels started by papermill inherit both."""
    path = tmp_path / "cache" / "responses.sqlite"
    monkeypatch.setenv("WORKBENCH_CACHE", str(path))
    monkeypatch.setenv("WORKBENCH_RUNS", str(path.parent / "runs"))
    return path


@pytest.fixture
def fake_llm() -> FakeLLM:
    return FakeLLM()


@pytest.fixture
def fake_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = "sk-test-THIS-IS-A-FAKE-KEY-0000"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    return key


def sample_reviews() -> wb.Dataset:
    """Six labelled reviews (the ``reviews`` fixture; tests that build experiments in helpers call it)."""
    return wb.Dataset.from_records(
        [
            {"id": "a", "review": "Great kettle, boils fast.", "label": "positive"},
            {"id": "b", "review": "Broke after two days.", "label": "negative"},
            {"id": "c", "review": "Awful smell, returned it.", "label": "negative"},
            {"id": "d", "review": "Lovely soft towels.", "label": "positive"},
            {"id": "e", "review": "Not bad at all, would buy again.", "label": "positive"},
            {"id": "f", "review": "The seller never answered.", "label": "negative"},
        ],
        expected=["label"],
    )


@pytest.fixture
def reviews() -> wb.Dataset:
    return sample_reviews()


@pytest.fixture
def variants() -> list[wb.PromptVariant]:
    zero = wb.PromptVariant(name="zero_shot", prompt="Review: {{ review }}\nSentiment:", params={"temperature": 0})
    few = wb.PromptVariant(
        name="few_shot",
        prompt="Review: {{ review }}\nSentiment:",
        examples=[{"review": "Nice.", "output": "positive"}],
        params={"temperature": 0},
    )
    return [zero, few]


@pytest.fixture
def label_match() -> wb.LabelMatch:
    return wb.LabelMatch(labels=["positive", "negative"], expected="label")
