"""Which response cache a run uses: ``run(cache=...)`` and ``$WORKBENCH_CACHE_URL``.

The SQLite file (:class:`~workbench.engine.cache.ResponseCache`) by default; the team's
PostgreSQL (:class:`~workbench.engine.cache_postgres.PostgresResponseCache`) when
``$WORKBENCH_CACHE_URL`` names one.
"""

from __future__ import annotations

import os

from workbench.core.exceptions import ConfigError
from workbench.engine.cache import CacheOption, ResponseCache
from workbench.engine.cache_postgres import PostgresResponseCache


def open_cache() -> ResponseCache:
    """The project's cache: PostgreSQL when ``$WORKBENCH_CACHE_URL`` names one (shared by the
    team, see :mod:`workbench.engine.cache_postgres`), else the SQLite file."""
    url = os.environ.get("WORKBENCH_CACHE_URL")
    if url:
        if not url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
            raise ConfigError(f"WORKBENCH_CACHE_URL must be a postgresql:// URL, got {url.split(':', 1)[0]!r}://...")
        return PostgresResponseCache(url)
    return ResponseCache()


def resolve_cache(option: CacheOption) -> tuple[ResponseCache | None, bool]:
    """The cache to use and whether to read from it."""
    if option is True:
        return open_cache(), True
    if option is False or option is None:
        return None, False
    if option == "refresh":
        return open_cache(), False
    if isinstance(option, ResponseCache):
        return option, True
    raise ConfigError(f"cache must be True, False, 'refresh' or a ResponseCache, got {option!r}")
