"""The engine against a fake OpenAI-compatible server on 127.0.0.1: faults, kill -9, cache, secrets."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

import workbench as wb
from workbench.engine.cache import ResponseCache
from workbench.engine.retry import RetryPolicy
from workbench.testing import FakeOpenAIServer
from workbench.testing.fake_openai import expected_reply, request_key

MODEL = "openai/fake"
FAKE_KEY = "sk-fake-SECRET-7f3a9c2e5b1d"


def dataset(n: int) -> wb.Dataset:
    return wb.Dataset.from_records([{"id": f"c{i:04d}", "text": f"case number {i}"} for i in range(n)])


def variants(base_url: str) -> list[wb.PromptVariant]:
    params = {"api_base": base_url, "api_key": FAKE_KEY, "temperature": 0}
    return [
        wb.PromptVariant(name="plain", prompt="Echo {{ text }}", params=params),
        wb.PromptVariant(name="polite", prompt="Please echo {{ text }}", params=params),
    ]


def experiment(server: FakeOpenAIServer, n: int, **settings) -> wb.Experiment:
    return wb.Experiment(
        name="server", variants=variants(server.base_url), dataset=dataset(n), models=[MODEL],
        settings=wb.RunSettings(**settings),
    )  # fmt: skip


def body_key(variant: wb.PromptVariant, row: dict) -> str:
    """The fake server's request key for one call (what litellm sends)."""
    return request_key({"model": "fake", "messages": variant.render(row), "temperature": 0})


def check_own_replies(result: wb.ExperimentResult) -> None:
    by_name = {v.name: v for v in result.experiment.variants}
    for row in result.cases.to_dict("records"):
        messages = by_name[row["variant"]].render({"text": row["input.text"]})
        assert row["output"] == expected_reply("fake", messages), row["case_id"]


@pytest.mark.parametrize("transport", ["litellm", "openai-compatible"])
def test_twenty_percent_faults_every_case_gets_its_own_reply_once(transport):
    with FakeOpenAIServer(fault_rate=0.2, hang_s=4.0, retry_after_s=0.02, seed=3) as server:
        exp = experiment(server, 60, timeout_s=2.0, transport=transport,
                         retry=RetryPolicy(max_attempts=10, initial_wait_s=0.01, max_wait_s=0.1))  # fmt: skip
        result = exp.run(log_to_mlflow=False, progress=False)
        stats = server.stats
    assert result.cases["error"].isna().all(), result.cases[["attempts", "error"]].dropna().to_dict("records")[:3]
    assert list(result.cases.columns[:7]) == ["case_id", "variant", "variant_version", "model", "repeat",
                                              "input.text", "prompt"]  # fmt: skip
    check_own_replies(result)
    assert set(server.successes_by_key().values()) == {1}  # no successful call made twice
    assert len(server.successes_by_key()) == 120
    assert sum(stats.faults.values()) >= 15  # the faults really happened
    assert (result.cases["attempts"] > 1).sum() >= 15


def test_cached_rerun_sends_nothing_to_the_server():
    with FakeOpenAIServer() as server:
        exp = experiment(server, 30)
        first = exp.run(log_to_mlflow=False, progress=False)
        sent = server.requests
        second = exp.run(log_to_mlflow=False, progress=False)
        assert server.requests == sent == 60
    assert second.calls_made == 0 and second.cases["cached"].all()
    pd.testing.assert_series_equal(first.cases["output"], second.cases["output"])


RESUMABLE = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from test_engine_server import experiment
    from workbench.testing import FakeOpenAIServer

    class Remote(FakeOpenAIServer):  # the server lives in the test process
        base_url = {base_url!r}

    experiment(Remote(), {n}, max_concurrency=4).run(tracking_uri={uri!r}, progress=False)
    """
)


def test_kill_minus_nine_then_resume_pays_no_completed_call_twice(store_uri, tmp_path, isolated_cache):
    n, uri = 80, store_uri
    with FakeOpenAIServer(latency_s=0.05) as server:
        script = RESUMABLE.format(tests=str(Path(__file__).parent), base_url=server.base_url, n=n, uri=uri)
        child = subprocess.Popen([sys.executable, "-c", script], env=os.environ.copy())
        deadline = time.monotonic() + 120
        while server.stats.successes < 40 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        assert child.returncode == -signal.SIGKILL
        completed_before = len(ResponseCache(isolated_cache))
        assert 30 <= completed_before < 2 * n  # killed mid-run
        exp = experiment(server, n, max_concurrency=4)
        resumed = exp.run(tracking_uri=uri, progress=False)
        successes = server.successes_by_key()
    assert resumed.calls_made == 2 * n - completed_before
    cached_keys = {body_key(v, {"text": f"case number {i}"}) for v in exp.variants for i in range(n)}
    assert set(successes) == cached_keys
    duplicates = {k: c for k, c in successes.items() if c > 1}
    assert len(duplicates) <= 4  # at most the calls in flight at the kill, never a cached one
    assert len(successes) - len(duplicates) >= completed_before
    check_own_replies(resumed)
    with FakeOpenAIServer() as fresh:  # an uninterrupted run gives the same results
        clean = experiment(fresh, n).run(log_to_mlflow=False, progress=False, cache=False)
    pd.testing.assert_series_equal(clean.cases["output"], resumed.cases["output"])
    from mlflow.tracking import MlflowClient

    runs = MlflowClient(uri).search_runs([MlflowClient(uri).get_experiment_by_name("server").experiment_id],
                                         filter_string="tags.`workbench.kind` = 'experiment'")  # fmt: skip
    assert sorted(r.info.status for r in runs) == ["FINISHED", "KILLED"]  # the orphan was closed


@pytest.mark.local_store("scans every file of the SQLite store and its artifact folder for the key")
def test_api_keys_never_land_in_mlruns_cache_or_reports(tmp_path, monkeypatch, isolated_cache):
    store = tmp_path / "mlruns"
    uri = f"sqlite:///{store / 'mlflow.db'}"
    store.mkdir()
    with FakeOpenAIServer(fault_rate=0.3, faults=("500",), seed=1) as server:
        for transport in ("litellm", "openai-compatible"):  # some calls fail: error texts too
            exp = experiment(server, 10, retry=RetryPolicy(max_attempts=1), transport=transport)
            result = exp.run(tracking_uri=uri, progress=False, cache="refresh")
            assert result.cases["error"].notna().any()
        # The report notebook, run on a YAML experiment that takes the key from the environment.
        data = tmp_path / "d.csv"
        dataset(6).frame.to_csv(data, index=False)
        (tmp_path / "exp.yaml").write_text(textwrap.dedent(f"""
            name: secret-report
            dataset: {{path: {data}}}
            models: [{MODEL}]
            scorers: [{{type: json_valid}}]
            variants:
              - {{name: a, prompt: "Echo {{{{ text }}}}", params: {{api_base: "{server.base_url}"}}}}
              - {{name: b, prompt: "Say {{{{ text }}}}", params: {{api_base: "{server.base_url}"}}}}
        """))  # fmt: skip
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        report = wb.run_report("notebooks/ab_test.ipynb", parameters={"experiment": str(tmp_path / "exp.yaml")},
                               output_dir=tmp_path / "reports")  # fmt: skip
        assert report.error is None, report.error
    scanned = [p for root in (store, tmp_path / "reports", isolated_cache.parent) for p in root.rglob("*")
               if p.is_file()]  # fmt: skip
    assert len(scanned) > 10 and any(p.suffix == ".html" for p in scanned)
    leaks = [p for p in scanned if FAKE_KEY.encode() in p.read_bytes()]
    assert leaks == []
