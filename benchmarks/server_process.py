"""Run the fake OpenAI server in its own process, so it does not share the client's GIL.

Benchmarks use this; tests use the in-process :class:`~workbench.testing.FakeOpenAIServer`.
"""

from __future__ import annotations

import multiprocessing as mp
from multiprocessing.connection import Connection
from typing import Any


def _serve(conn: Connection, options: dict[str, Any]) -> None:
    from workbench.testing import FakeOpenAIServer

    with FakeOpenAIServer(**options) as server:
        conn.send(server.base_url)
        while True:
            command = conn.recv()
            if command == "stats":
                conn.send(server.stats)
            elif command == "reset":
                server.reset_stats()
                conn.send(None)
            else:
                break


class ServerProcess:
    """``with ServerProcess(latency_s=0.1) as server: server.base_url, server.stats()``."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self._conn, child = mp.get_context("spawn").Pipe()
        self._process = mp.get_context("spawn").Process(target=_serve, args=(child, options), daemon=True)

    def __enter__(self) -> ServerProcess:
        self._process.start()
        self.base_url: str = self._conn.recv()
        return self

    def stats(self) -> Any:
        self._conn.send("stats")
        return self._conn.recv()

    def reset(self) -> None:
        self._conn.send("reset")
        self._conn.recv()

    def __exit__(self, *exc: object) -> None:
        self._conn.send("stop")
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
