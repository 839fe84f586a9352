"""The Ray executor on a local Ray cluster on 127.0.0.1: the same rows, cache and MLflow runs as one process,
and the per-model concurrency limit held across workers (the fake server counts requests in flight)."""

from __future__ import annotations

import os
import sys

import mlflow
import pandas as pd
import pytest

import workbench as wb
from workbench.core.exceptions import ConfigError
from workbench.engine.cache import ResponseCache
from workbench.engine.ray_executor import RayExecutor
from workbench.testing import FakeOpenAIServer

ray = pytest.importorskip("ray", reason='the Ray executor tests need the scale extra: pip install -e ".[scale]"')

LIMIT = 3
#: Columns that differ between any two runs (timing), whatever executes them.
TIMING = ["latency_s"]


@pytest.fixture(scope="module")
def cluster():
    """One local Ray cluster for the module: 2 CPUs, loopback only, no dashboard, no usage report."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    for attempt in (1, 2, 3):
        # Ray gives its raylet a fixed 30 s to register; on a loaded 2-core machine that can pass once.
        try:
            ray.init(
                address="local",
                num_cpus=2,
                include_dashboard=False,
                configure_logging=False,
                log_to_driver=False,
                _node_ip_address="127.0.0.1",
            )
            break
        except Exception as exc:
            ray.shutdown()
            if attempt == 3 or "timed out during startup" not in str(exc):
                raise
    yield ray
    ray.shutdown()


def experiment(base_url: str, *, executor: str = "local") -> wb.Experiment:
    params = {"api_base": base_url, "api_key": "sk-fake-SECRET-ray-5c1e", "temperature": 0}
    return wb.Experiment(
        name="ray-shards",
        variants=[
            wb.PromptVariant(name="plain", prompt="Echo {{ text }}", params=params),
            wb.PromptVariant(name="polite", prompt="Please echo {{ text }}", params=params),
        ],
        dataset=wb.Dataset.from_records(
            [{"id": f"c{i:03d}", "text": f"case {i}", "want": "echo:" if i % 3 else "nope"} for i in range(24)],
            expected=["want"],
        ),
        models=["openai/fake"],
        scorers=[wb.Contains(expected="want"), wb.RegexMatch(pattern=r"^echo:[0-9a-f]{16}$")],
        settings=wb.RunSettings(max_concurrency=LIMIT, executor=executor),
    )


def comparable(result: wb.ExperimentResult) -> pd.DataFrame:
    return result.cases.drop(columns=TIMING).reset_index(drop=True)


def child_metrics(uri: str, run_id: str) -> dict[str, dict[str, float]]:
    client = mlflow.MlflowClient(uri)
    children = client.search_runs(
        [client.get_run(run_id).info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'"
    )
    return {
        child.data.tags["mlflow.runName"]: {k: v for k, v in child.data.metrics.items() if "latency" not in k}
        for child in children
    }


def test_sharded_run_gives_the_rows_cache_and_mlflow_runs_of_one_process(cluster, tmp_path, tracking_uri):
    with FakeOpenAIServer() as server:
        local = experiment(server.base_url).run(tracking_uri=tracking_uri, progress=False, cache=False)
        server.reset_stats()
        server.latency_s = 0.5  # long enough that both workers' calls overlap (same replies, only slower)

        cache = ResponseCache(tmp_path / "ray-cache.sqlite")
        executor = RayExecutor(workers=2, shard_cases=2)
        sharded = experiment(server.base_url).run(
            tracking_uri=tracking_uri, progress=False, cache=cache, executor=executor
        )
        # Two workers with 2 shards of 4 calls in flight each: a per-worker limit lets 2 x 3 calls through.
        assert server.peak_in_flight == LIMIT
        assert server.requests == 48
        assert sharded.calls_made == 48

        assert sharded.cases["case_id"].is_unique is False  # two variants per case
        pd.testing.assert_frame_equal(comparable(sharded), comparable(local))
        assert sharded.cases_path != local.cases_path and sharded.cases_path.exists()
        untimed = [c for c in local.summary.columns if "latency" not in c]
        pd.testing.assert_frame_equal(sharded.summary[untimed], local.summary[untimed])
        assert len(cache) == 48  # the driver wrote every reply the workers made

        assert child_metrics(tracking_uri, sharded.run_id) == child_metrics(tracking_uri, local.run_id)

        # A re-run on the same executor (its workers kept): the driver's cache answers everything.
        server.reset_stats()
        again = experiment(server.base_url).run(log_to_mlflow=False, progress=False, cache=cache, executor=executor)
        assert server.requests == 0
        assert again.calls_made == 0
        assert again.cases["cached"].all()
        same = ["case_id", "variant", "output", "score.contains", "score.regex_match"]
        pd.testing.assert_frame_equal(again.cases[same], local.cases[same])


def test_settings_executor_ray_runs_on_ray(monkeypatch, fake_llm):
    """`settings: {executor: ray}` hands the run to a RayExecutor (its own run is the test above)."""
    used = []

    async def record(self, engine):
        used.append(self)
        await engine.run()  # here, so the test needs no second cluster start

    monkeypatch.setattr(RayExecutor, "run", record)
    exp = experiment("http://127.0.0.1:9/v1", executor="ray")
    result = exp.run(log_to_mlflow=False, progress=False, cache=False, acompletion=fake_llm)
    assert len(used) == 1 and isinstance(used[0], RayExecutor)
    assert result.n_rows == 48


def test_yaml_executor_setting_is_read_and_checked(tmp_path):
    data = {
        "name": "x",
        "dataset": {"path": str(tmp_path / "d.csv")},
        "variants": [{"name": "a", "prompt": "{{ text }}"}],
        "settings": {"executor": "ray"},
    }
    (tmp_path / "d.csv").write_text("id,text\n1,hi\n")
    assert wb.experiment_from_dict(data).settings.executor == "ray"
    with pytest.raises(ConfigError, match="executor"):
        wb.experiment_from_dict({**data, "settings": {"executor": "dask"}})


def test_without_ray_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(ConfigError, match=r'pip install -e "\.\[scale\]"'):
        RayExecutor().connect()


def test_bad_worker_count_is_refused():
    with pytest.raises(ConfigError, match="workers"):
        RayExecutor(workers=0)
