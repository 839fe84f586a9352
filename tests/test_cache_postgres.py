"""The response cache in a real PostgreSQL (a cluster of its own, made with initdb, on 127.0.0.1)."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import FakeLLM, sample_reviews

import workbench as wb
from workbench.core.exceptions import WorkbenchError
from workbench.core.outputs import ModelReply
from workbench.engine.cache_choice import open_cache
from workbench.engine.cache_postgres import PostgresResponseCache
from workbench.server.postgres import PostgresCluster, find_bin_dir

pytestmark = pytest.mark.team_server
PASSWORD = "cache-" + "Hq8w" * 5


@pytest.fixture(scope="module")
def cache_url() -> Iterator[str]:
    try:
        find_bin_dir()
    except WorkbenchError as exc:
        pytest.skip(f"no PostgreSQL here: {exc}")
    root = Path(tempfile.mkdtemp(prefix="wb-cache-", dir="/tmp"))
    root.chmod(0o755)  # the postgres user must reach pgdata/ when we run as root
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    cluster = PostgresCluster(root / "pg", port=port)
    try:
        cluster.start()
        cluster.ensure_database("cache", "team", PASSWORD)
        yield f"postgresql://team:{PASSWORD}@127.0.0.1:{port}/cache"
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def _reply(text: str) -> ModelReply:
    return ModelReply(text, 10, 1, 0.0, 0.1)


def test_concurrent_writers_and_a_colleagues_hit(cache_url: str) -> None:
    mine, theirs = PostgresResponseCache(cache_url), PostgresResponseCache(cache_url)
    mine.clear()
    writers = [PostgresResponseCache(cache_url) for _ in range(4)]

    def write(i: int) -> None:  # four connections write the same 50 keys and 50 of their own at once
        for k in range(50):
            writers[i].put(f"shared-{k}", _reply(f"shared {k}"))
            writers[i].put(f"own-{i}-{k}", _reply(f"own {i} {k}"))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(4)))
    assert len(theirs) == 50 + 4 * 50
    assert theirs.get("shared-7").output == "shared 7"
    assert theirs.contains(["own-3-49", "own-9-0", "shared-0"]) == {"own-3-49", "shared-0"}
    assert theirs.get("missing") is None
    assert PASSWORD not in theirs.path and "***" in theirs.path
    assert PASSWORD not in wb.REDACTOR.text(f"could not connect with {PASSWORD}")
    for cache in (mine, theirs, *writers):
        cache.close()


def test_a_run_is_free_for_a_colleague_with_the_same_calls(
    cache_url: str, monkeypatch: pytest.MonkeyPatch, fake_key: str
) -> None:
    monkeypatch.setenv("WORKBENCH_CACHE_URL", cache_url)
    assert isinstance(open_cache(), PostgresResponseCache)
    open_cache().clear()
    experiment = wb.Experiment(
        name="shared-cache",
        variants=[wb.PromptVariant(name="zero_shot", prompt="Review: {{ review }}\nSentiment:")],
        dataset=sample_reviews(),
        models=["openai/gpt-4o-mini"],
        scorers=[wb.LabelMatch(labels=["positive", "negative"], expected="label")],
    )
    first, second = FakeLLM(), FakeLLM()
    mine = experiment.run(log_to_mlflow=False, progress=False, acompletion=first)
    theirs = experiment.run(log_to_mlflow=False, progress=False, acompletion=second)  # a colleague's run
    assert len(first.calls) == 6 and len(second.calls) == 0
    assert theirs.read_cases(["output"])["output"].tolist() == mine.read_cases(["output"])["output"].tolist()
    stored = open_cache()
    assert len(stored) == 6
    values = [row[0] for row in stored._pg.execute("SELECT value FROM workbench_responses").fetchall()]
    assert all(fake_key not in v and PASSWORD not in v for v in values)  # no credential in a value
