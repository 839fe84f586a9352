"""On-disk response cache: never pay twice for a call that did not change.

The key is a hash of the model, the rendered messages, every parameter that
changes the output, and the **repeat index** (so repeats of a sampled call
stay distinct and a re-run reproduces each repeat). Credentials, timeouts and
retry settings are not part of the key. Only successful responses are stored;
errors are never cached.

Because each response is written the moment it arrives, the cache is also
what makes a killed run resumable: start it again and every completed call is
a hit.

The store is one SQLite file (``.cache/workbench/responses.sqlite`` in the
project by default, ``$WORKBENCH_CACHE`` to move it), safe to share between
processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from workbench.core.images import for_key
from workbench.core.outputs import ModelReply
from workbench.core.redaction import without_secrets
from workbench.util.paths import project_root

#: Parameters that do not change what the model answers.
_NOT_OUTPUT_AFFECTING = frozenset(
    {"timeout", "num_retries", "max_retries", "api_base", "base_url", "api_version", "metadata"}
)


def cache_key(model: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any], repeat: int) -> str:
    """The cache key of one call.

    For a router group (:class:`~workbench.core.routing.RouterGroup`) ``model`` is the group's
    name, never the deployment that answered: which replica answers is decided per call by
    the router (load, cooldowns, rpm limits), so keying on it would turn most re-runs into
    misses and pay again for the same answer. That is right because a group is, by contract,
    one model served in several places: a hit from replica A is the answer replica B would
    give. The cost of the choice: a group that mixes *different* models (a cheaper fallback at
    ``order: 2``) serves whichever answered first, and changing a group's deployments under
    the same name still hits. The cached reply keeps its ``deployment``, so the row of a hit
    still says which deployment produced it; rename the group to start afresh.

    Example:
        >>> a = cache_key("openai/gpt-4o-mini", [{"role": "user", "content": "hi"}], {"temperature": 0}, 0)
        >>> a == cache_key("openai/gpt-4o-mini", [{"role": "user", "content": "hi"}],
        ...                {"temperature": 0, "api_key": "sk-..."}, 0)
        True
        >>> a == cache_key("openai/gpt-4o-mini", [{"role": "user", "content": "hi"}], {"temperature": 0}, 1)
        False
    """
    kept = without_secrets({k: v for k, v in params.items() if k not in _NOT_OUTPUT_AFFECTING})
    # An image counts by the hash of its bytes: its base64 text is not copied into the payload.
    payload = json.dumps([model, for_key(messages), kept, repeat], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


#: What is kept of a successful call (text, tool calls, usage): a :class:`~workbench.core.outputs.ModelReply`.
CachedResponse = ModelReply


def default_cache_path() -> Path:
    """``$WORKBENCH_CACHE`` if set, else ``.cache/workbench/responses.sqlite`` in the project."""
    override = os.environ.get("WORKBENCH_CACHE")
    if override:
        return Path(override)
    return project_root() / ".cache" / "workbench" / "responses.sqlite"


#: How long an open or a write waits for another process holding the file.
_BUSY_TIMEOUT_S = 30.0


def _set_up(db: sqlite3.Connection) -> None:
    """WAL mode and the table, retried while another process creates the same file.

    Switching a new file to WAL takes an exclusive lock and SQLite answers
    "database is locked" at once (no busy wait) when two processes do it
    together, as two notebooks or CI jobs starting side by side do.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # durable across a process kill, fast
            db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class ResponseCache:
    """A SQLite-backed map from :func:`cache_key` to :class:`CachedResponse`.

    Example:
        >>> cache = ResponseCache(":memory:")
        >>> cache.put("k", CachedResponse("positive", 10, 1, 0.0, 0.1))
        >>> cache.get("k").output
        'positive'
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = str(path) if path is not None else str(default_cache_path())
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=_BUSY_TIMEOUT_S)
        _set_up(self._db)

    def get(self, key: str) -> CachedResponse | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        return None if row is None else ModelReply.from_json(row[0])

    def contains(self, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` are cached (one query per 500 keys)."""
        found: set[str] = set()
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = list(keys[i : i + 500])
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"SELECT key FROM responses WHERE key IN ({marks})", chunk)
                found.update(r[0] for r in rows)
        return found

    def put(self, key: str, value: ModelReply) -> None:
        payload = value.to_json()
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO responses (key, value) VALUES (?, ?)", (key, payload))

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def clear(self) -> int:
        """Delete every entry; returns how many there were."""
        with self._lock:
            n = int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
            self._db.execute("DELETE FROM responses")
        return n

    def close(self) -> None:
        with self._lock:
            self._db.close()


#: What ``run(cache=...)`` accepts: True (the project's cache), False (none),
#: "refresh" (call again and overwrite), or a ResponseCache.
CacheOption = bool | str | ResponseCache
