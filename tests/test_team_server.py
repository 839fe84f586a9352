"""The team server for real: PostgreSQL from Debian's package, ``mlflow server`` with basic auth.

One server per module (starting one costs about a minute on 2 busy cores), on free ports of
127.0.0.1, in a folder of its own under /tmp that the ``postgres`` user can reach when the
tests run as root. Select them with ``-m team_server``; without PostgreSQL's initdb they skip.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import FakeLLM, sample_reviews
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

import workbench as wb
from workbench.cli import main
from workbench.core.exceptions import TrackingUnreachableError, WorkbenchError
from workbench.server import Accounts, TeamServer
from workbench.server.postgres import find_bin_dir

pytestmark = pytest.mark.team_server

ROOT = Path(__file__).resolve().parents[1]
PASSWORDS = {"alice": "alice-" + "Q7x2" * 5, "bob": "bob-" + "Z9k4" * 5}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[TeamServer]:
    try:
        find_bin_dir()
    except WorkbenchError as exc:
        pytest.skip(f"no PostgreSQL here: {exc}")
    root = Path(tempfile.mkdtemp(prefix="wb-team-", dir="/tmp"))
    root.chmod(0o755)  # the postgres user must reach pgdata/ when we run as root
    team = TeamServer(root / "server", port=_free_port(), pg_port=_free_port())
    try:
        team.start()
        admin = Accounts(team.url, team.admin, team.secrets()["MLFLOW_AUTH_ADMIN_PASSWORD"])
        for name, password in PASSWORDS.items():
            admin.add_user(name, password)
        admin.grant("bob", "team-b", "EDIT")
        yield team
    finally:
        team.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def as_alice(server: TeamServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORDS["alice"])
    return server.url


def _experiment(name: str) -> wb.Experiment:
    return wb.Experiment(
        name=name,
        variants=[
            wb.PromptVariant(name="zero_shot", prompt="Review: {{ review }}\nSentiment:", params={"temperature": 0}),
            wb.PromptVariant(name="terse", prompt="{{ review }}\n=>", params={"temperature": 0}),
        ],
        dataset=sample_reviews(),
        models=["openai/gpt-4o-mini"],
        scorers=[wb.LabelMatch(labels=["positive", "negative"], expected="label")],
    )


def test_server_refuses_no_login_a_wrong_password_and_the_old_default(server: TeamServer) -> None:
    search = f"{server.url}/api/2.0/mlflow/experiments/search"
    assert requests.get(search, params={"max_results": 5}, timeout=30).status_code == 401
    wrong = requests.get(search, params={"max_results": 5}, auth=("alice", "not-her-password"), timeout=30)
    assert wrong.status_code == 401
    old_default = requests.get(search, params={"max_results": 5}, auth=("admin", "password1234"), timeout=30)
    assert old_default.status_code == 401
    ok = requests.get(search, params={"max_results": 5}, auth=("alice", PASSWORDS["alice"]), timeout=30)
    assert ok.status_code == 200
    assert server.status().healthy and server.status().postgres
    assert (server.secrets_file.stat().st_mode & 0o777) == 0o600


def test_a_user_cannot_read_another_teams_experiment(server: TeamServer, as_alice: str) -> None:
    bob = requests.get(
        f"{server.url}/api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": "team-b"},
        auth=("bob", PASSWORDS["bob"]),
        timeout=30,
    )
    assert bob.status_code == 200
    experiment_id = bob.json()["experiment"]["experiment_id"]
    alice = requests.get(
        f"{server.url}/api/2.0/mlflow/experiments/get",
        params={"experiment_id": experiment_id},
        auth=("alice", PASSWORDS["alice"]),
        timeout=30,
    )
    assert alice.status_code == 403
    with pytest.raises(MlflowException, match="PERMISSION_DENIED|Permission denied"):
        MlflowClient(as_alice).get_experiment(experiment_id)
    with pytest.raises(MlflowException, match="PERMISSION_DENIED|Permission denied"):
        MlflowClient(as_alice).create_run(experiment_id)


def test_the_workbench_logs_a_run_with_credentials_from_the_environment(
    server: TeamServer, as_alice: str, fake_key: str, tmp_path: Path
) -> None:
    result = _experiment("team-a").run(progress=False, acompletion=FakeLLM())
    client = MlflowClient(as_alice)
    parent = client.get_run(result.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied by the server
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'"
    )
    assert sorted(c.data.params["variant"] for c in children) == ["terse", "zero_shot"]
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.metrics["label_match"] == pytest.approx(
            result.summary.set_index("variant").loc[child.data.params["variant"], "label_match"]
        )
    reopened = wb.load_run(result.run_id)  # the artifacts came back through the server
    assert len(reopened.read_cases(["case_id"])) == 12
    assert reopened.summary["label_match"].tolist() == pytest.approx(result.summary["label_match"].tolist())
    # Where the password lands if anything leaks it: params, tags, artifacts, the run's folder.
    password = PASSWORDS["alice"]
    for run in [parent, *children]:
        assert password not in repr(run.data.params) + repr(run.data.tags)
        folder = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / run.info.run_id)))
        for file in folder.rglob("*"):
            if file.is_file():
                assert password.encode() not in file.read_bytes(), file
    for file in result.cases_path.parent.rglob("*"):
        assert password.encode() not in file.read_bytes(), file
    assert "***" in wb.REDACTOR.text(f"login failed for alice:{password}")


def test_eight_experiments_at_once_from_separate_processes(server: TeamServer, as_alice: str, tmp_path: Path) -> None:
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-FAKE-KEY-000000000000", "PYTHONPATH": str(ROOT)}
    jobs = []
    for i in range(8):  # one experiment name: they race to create it, and its prompts
        run_env = {**env, "WORKBENCH_RUNS": str(tmp_path / f"runs{i}"), "WORKBENCH_CACHE": str(tmp_path / f"c{i}.db")}
        command = [sys.executable, str(ROOT / "tests" / "team_server_job.py"), "concurrent", "--cases", "6"]
        jobs.append(subprocess.Popen(command, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [job.communicate(timeout=600) for job in jobs]
    for job, (_, err) in zip(jobs, outputs, strict=True):
        assert job.returncode == 0, err[-3000:]
    run_ids = [json.loads(out.strip().splitlines()[-1])["run_id"] for out, _ in outputs]
    assert len(set(run_ids)) == 8
    client = MlflowClient(as_alice)
    experiment = client.get_experiment_by_name("concurrent")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    assert len(runs) == 8 * 3  # a parent and two variant runs each
    assert {r.info.status for r in runs} == {"FINISHED"}  # none left RUNNING
    for run_id in run_ids:
        parent = client.get_run(run_id)
        assert "workbench.verdict" in parent.data.tags
        assert {"manifest.json", "summary.csv", "charts.html", "run"} <= {a.path for a in client.list_artifacts(run_id)}
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == run_id]
        assert len(children) == 2
        for child in children:
            assert child.data.metrics["label_match"] == pytest.approx(1.0)
            assert child.data.metrics["n"] == 6
            table = json.loads(Path(client.download_artifacts(child.info.run_id, "cases.json")).read_text())
            assert len(table["data"]) == 6


class _KillServer(wb.RunObserver):
    """Kills the mlflow server (SIGKILL, workers too) when the first case is done; optionally
    starts it again in the background, while the run goes on and MLflow's client retries."""

    def __init__(self, server: TeamServer, *, restart: bool) -> None:
        self.server, self.restart, self.thread = server, restart, None

    def case_done(self, row: object) -> None:
        if self.thread is None and self.server.pid() is not None:
            self.server.stop_mlflow(sig=signal.SIGKILL)
            self.thread = threading.Thread(target=self.server.start if self.restart else (lambda: None))
            self.thread.start()


def test_server_killed_mid_run_and_restarted_the_run_completes(
    server: TeamServer, as_alice: str, fake_key: str
) -> None:
    killer = _KillServer(server, restart=True)
    result = _experiment("team-a-faults").run(
        progress=False, acompletion=FakeLLM(delay=0.2), cache=False, observers=[killer]
    )
    killer.thread.join()
    client = MlflowClient(as_alice)
    parent = client.get_run(result.run_id)
    assert parent.info.status == "FINISHED"
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'"
    )
    assert sorted(c.info.status for c in children) == ["FINISHED", "FINISHED"]
    assert {"manifest.json", "summary.csv", "charts.html", "run"} <= {
        a.path for a in client.list_artifacts(result.run_id)
    }


def test_server_down_past_the_retries_keeps_the_run_and_sync_uploads_it(
    server: TeamServer, as_alice: str, fake_key: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    killer = _KillServer(server, restart=False)
    with pytest.raises(TrackingUnreachableError, match="workbench sync") as raised:
        _experiment("team-a-faults").run(
            progress=False, acompletion=FakeLLM(delay=0.2), cache=False, observers=[killer]
        )
    result = raised.value.result
    folder = result.cases_path.parent
    assert f"workbench sync {folder}" in str(raised.value)
    assert len(wb.core.runstore.CasesFile(result.cases_path).read(["case_id"])) == 12  # nothing lost
    note = json.loads((folder / "mlflow_pending.json").read_text())
    assert note["parent_run_id"] and note["tracking_uri"] == server.url
    assert PASSWORDS["alice"] not in json.dumps(note)
    server.start()
    assert main(["sync", str(folder)]) == 0
    assert "uploaded 12 rows" in capsys.readouterr().out
    client = MlflowClient(as_alice)
    parent = client.get_run(note["parent_run_id"])  # the run opened before the server went down
    assert parent.info.status == "FINISHED"
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert sorted(c.info.status for c in children) == ["FINISHED", "FINISHED"]
    assert (
        parent.data.metrics["zero_shot.label_match"] == pytest.approx(result.summary["label_match"].iloc[0])
        or (parent.data.tags["workbench.verdict"])
    )
    reopened = wb.load_run(parent.info.run_id)
    assert len(reopened.read_cases(["case_id"])) == 12
    assert main(["sync", str(folder)]) == 2  # once only: the folder says it was uploaded


def test_rotating_the_admin_password_refuses_the_old_one_at_once(
    server: TeamServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`workbench server rotate-admin`: a new admin password, generated or from the environment, kept
    in secrets.env (600) and printed only with --show; the old one gets 401 on every worker."""
    search = f"{server.url}/api/2.0/mlflow/experiments/search"

    def status(password: str) -> set[int]:  # several calls: the server has two workers, each with its cache
        return {
            requests.get(search, params={"max_results": 1}, auth=(server.admin, password), timeout=30).status_code
            for _ in range(6)
        }

    old = server.secrets()["MLFLOW_AUTH_ADMIN_PASSWORD"]
    assert status(old) == {200}  # and now cached as valid by the workers that answered
    monkeypatch.setenv("WORKBENCH_SERVER_DIR", str(server.root))
    monkeypatch.setenv("WORKBENCH_SERVER_PORT", str(server.port))
    monkeypatch.setenv("WORKBENCH_PG_PORT", str(server.db.port))
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("WORKBENCH_NEW_ADMIN_PASSWORD", raising=False)

    assert main(["server", "rotate-admin"]) == 0
    out = capsys.readouterr().out
    generated = server.secrets()["MLFLOW_AUTH_ADMIN_PASSWORD"]
    assert generated != old and len(generated) >= 24
    assert generated not in out and old not in out and "new password (generated)" in out
    assert (server.secrets_file.stat().st_mode & 0o777) == 0o600
    assert status(old) == {401}
    assert status(generated) == {200}

    chosen = "rotated-" + "P3m8" * 5
    monkeypatch.setenv("WORKBENCH_NEW_ADMIN_PASSWORD", chosen)
    assert main(["server", "rotate-admin", "--show"]) == 0
    assert f"new admin password: {chosen}" in capsys.readouterr().out
    assert server.secrets()["MLFLOW_AUTH_ADMIN_PASSWORD"] == chosen
    assert status(generated) == {401}
    assert status(chosen) == {200}
    assert main(["server", "rotate-admin"]) == 2  # the same password again is refused...
    assert "is the current one" in capsys.readouterr().err
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", chosen)  # ...and so is one the environment decides
    monkeypatch.delenv("WORKBENCH_NEW_ADMIN_PASSWORD")
    assert main(["server", "rotate-admin"]) == 2
    assert "$MLFLOW_AUTH_ADMIN_PASSWORD" in capsys.readouterr().err
    assert status(chosen) == {200}
    alice = requests.get(search, params={"max_results": 1}, auth=("alice", PASSWORDS["alice"]), timeout=30)
    assert alice.status_code == 200  # users unaffected
