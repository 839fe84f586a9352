"""Test doubles for the workbench's own tests and benchmarks; product code never imports this.

Example:
    >>> from workbench.testing import FakeOpenAIServer, expected_reply
    >>> with FakeOpenAIServer(latency_s=0.05) as server:  # doctest: +SKIP
    ...     server.base_url
"""

from workbench.testing.fake_openai import (
    FAULT_KINDS,
    FakeOpenAIServer,
    ServerStats,
    expected_reply,
    request_key,
)

__all__ = [
    "FAULT_KINDS",
    "FakeOpenAIServer",
    "ServerStats",
    "expected_reply",
    "request_key",
]
