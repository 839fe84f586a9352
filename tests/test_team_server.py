"""The team server for real: PostgreSQL from Debian's package, ``mlflow server`` with basic auth.

One server per module (starting one costs about a minute on 2 busy cores), on free ports of
127.0.0.1, in a folder of its own under /tmp that the ``postgres`` user can reach when the
tests run as root. Select them with ``-m team_server``; without PostgreSQL's initdb they skip.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import FakeLLM, sample_reviews
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

import workbench as wb
from workbench.core.exceptions import WorkbenchError
from workbench.server import Accounts, TeamServer
from workbench.server.postgres import find_bin_dir

pytestmark = pytest.mark.team_server

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
