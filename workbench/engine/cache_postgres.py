"""The response cache in the team's PostgreSQL: a colleague's identical call is a hit.

Set ``WORKBENCH_CACHE_URL=postgresql://user:password@host:5433/database`` and every run (and
``workbench cache info|clear``) uses table ``workbench_responses`` there instead of the local
SQLite file. Same key as the SQLite cache (:func:`~workbench.engine.cache.cache_key`: model,
rendered messages, output-affecting params, repeat index; no credential is part of it), same
value (the reply's text, tool calls and usage: no credential either). Writers in any number of
processes are safe: one row per key, written with ``INSERT ... ON CONFLICT DO UPDATE``, each
statement its own transaction. The URL's password is taught to the redaction chain, so it is
masked wherever it could appear (an error message, say).

Needs the ``team`` extra (``pip install -e ".[team]"``: psycopg).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from workbench.core.exceptions import ConfigError
from workbench.core.outputs import ModelReply
from workbench.core.redaction import REDACTOR
from workbench.engine.cache import CachedResponse, ResponseCache

#: The table the cache keeps its rows in.
TABLE = "workbench_responses"


def _display(url: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}:***@{parts.hostname}:{parts.port}" if parts.password else parts.netloc
    return urlunsplit(parts._replace(netloc=netloc))


class PostgresResponseCache(ResponseCache):
    """:class:`ResponseCache` in a PostgreSQL database.

    Args:
        url: ``postgresql://user:password@host:port/database`` (``postgresql+psycopg://`` works too).

    Example:
        >>> cache = PostgresResponseCache("postgresql://mlflow:...@127.0.0.1:5433/mlflow")  # doctest: +SKIP
    """

    def __init__(self, url: str) -> None:  # noqa: D107  (no SQLite file to open: the parent's init is not used)
        try:
            import psycopg
        except ImportError:
            raise ConfigError(
                'WORKBENCH_CACHE_URL names PostgreSQL, which needs psycopg: pip install -e ".[team]"'
            ) from None
        url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        password = urlsplit(url).password
        if password:
            REDACTOR.secrets.learn([password])
        self.path = _display(url)
        self._lock = threading.Lock()
        self._pg: Any = psycopg.connect(url, autocommit=True)
        for attempt in range(5):  # two processes creating the table at once: one wins, the other retries
            try:
                self._pg.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                break
            except psycopg.errors.UniqueViolation:
                if attempt == 4:
                    raise
                time.sleep(0.1)

    def get(self, key: str) -> CachedResponse | None:
        with self._lock:
            row = self._pg.execute(f"SELECT value FROM {TABLE} WHERE key = %s", (key,)).fetchone()
        return None if row is None else ModelReply.from_json(row[0])

    def contains(self, keys: Sequence[str]) -> set[str]:
        with self._lock:
            rows = self._pg.execute(f"SELECT key FROM {TABLE} WHERE key = ANY(%s)", (list(keys),)).fetchall()
        return {r[0] for r in rows}

    def put(self, key: str, value: ModelReply) -> None:
        with self._lock:
            self._pg.execute(
                f"INSERT INTO {TABLE} (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                (key, value.to_json()),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._pg.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()[0])

    def clear(self) -> int:
        with self._lock:
            return int(self._pg.execute(f"DELETE FROM {TABLE}").rowcount)

    def close(self) -> None:
        with self._lock:
            self._pg.close()
