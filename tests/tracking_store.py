"""Where the tests' MLflow runs go: a SQLite file (the default) or, with one switch, a real team server.

``WORKBENCH_TEST_TRACKING=server`` (``make test-mlflow-server``) starts, once per session, the
team server of :mod:`workbench.server` (PostgreSQL plus ``mlflow server --app-name basic-auth``
on free ports of 127.0.0.1, in a folder of its own under /tmp), makes a user with a generated
password, and hands every MLflow test that server's URL with the credentials in
``MLFLOW_TRACKING_URI`` / ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``, as a real
user's shell would have them (subprocesses and papermill kernels inherit them).

The server is shared by the session, so each test starts from an empty one: before it runs,
every experiment, run, trace, logged model and registered prompt is deleted from the database
(the experiment ids keep counting up), and the permissions the auth app gave on them go too.
So two tests that both make an experiment ``sentiment`` never see each other's runs, as with
their own SQLite files.

Fixtures:
    tracking_uri: the session's store (SQLite) or the server, emptied.
    store_uri: a store of the test's own: a new SQLite file ``tmp_path/mlflow.db``, or the server, emptied.

Markers:
    mlflow: the test logs to or reads from MLflow; added to every test that uses one of the
        fixtures above, and put by hand on the others.
    local_store(reason): the test needs a store on this machine's disk (it reads the SQLite
        file or the artifact folder itself); the server pass leaves it out and lists it with
        its reason at the end.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: The switch: ``local`` (SQLite files, the default) or ``server`` (a team server for the session).
SWITCH = "WORKBENCH_TEST_TRACKING"
USER = "tester"
STORE_FIXTURES = ("tracking_uri", "store_uri")
#: Fixtures of tests that need a store on local disk, and why.
LOCAL_FIXTURES = {
    "mlflow_ui": "drives the `mlflow ui` that wb.ui_command starts on a local SQLite store",
}


def server_mode() -> bool:
    value = os.environ.get(SWITCH, "local").strip().lower()
    if value not in ("local", "server"):
        raise pytest.UsageError(f"${SWITCH}={value!r}: use 'local' (SQLite, the default) or 'server' (a team server)")
    return value == "server"


def pytest_configure(config: pytest.Config) -> None:
    server_mode()  # a bad value stops the session before anything runs
    config.addinivalue_line("markers", "mlflow: logs to or reads from MLflow (the server pass runs these)")
    config.addinivalue_line(
        "markers", "local_store(reason): needs an MLflow store on local disk; left out of the server pass"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if any(name in getattr(item, "fixturenames", ()) for name in STORE_FIXTURES):
            item.add_marker(pytest.mark.mlflow)
        for name, reason in LOCAL_FIXTURES.items():
            if name in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.mlflow)
                item.add_marker(pytest.mark.local_store(reason))
        local = item.get_closest_marker("local_store")
        if local is not None:
            if not (local.args or local.kwargs.get("reason")):
                raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.local_store needs a reason")
            item.add_marker(pytest.mark.mlflow)  # an MLflow test all the same (`-m mlflow` runs it locally)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """In the server pass, name the MLflow tests it left out and why (none is left out silently)."""
    if not server_mode():
        return
    left_out = [
        (item.nodeid, item.get_closest_marker("local_store"))
        for item in getattr(config, "_tracking_local_items", [])
        if item.get_closest_marker("local_store") is not None
    ]
    if left_out:
        terminalreporter.section("MLflow tests left out of the server pass (they need a local store)")
        for nodeid, marker in left_out:
            reason = marker.args[0] if marker.args else marker.kwargs.get("reason")
            terminalreporter.write_line(f"{nodeid}: {reason}")


@pytest.hookimpl(trylast=True)
def pytest_deselected(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("local_store") is not None:
            item.config.__dict__.setdefault("_tracking_local_items", []).append(item)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SessionServer:
    """The session's team server, a user on it, and a way to empty it between tests."""

    def __init__(self, root: Path) -> None:
        import sqlalchemy

        from workbench.server import Accounts, TeamServer
        from workbench.server.team import AUTH_DB, ROLE, RUNS_DB

        self.team = TeamServer(root / "server", port=_free_port(), pg_port=_free_port())
        self.team.start()
        values = self.team.secrets()
        self.password = "tester-" + secrets.token_urlsafe(18)
        Accounts(self.team.url, self.team.admin, values["MLFLOW_AUTH_ADMIN_PASSWORD"]).add_user(USER, self.password)
        role_password = values["WORKBENCH_PG_PASSWORD"]
        self.runs = sqlalchemy.create_engine(self.team.db.url(RUNS_DB, ROLE, role_password))
        self.auth = sqlalchemy.create_engine(self.team.db.url(AUTH_DB, ROLE, role_password))
        # Deleting rows (children first) is much cheaper than TRUNCATE, which makes new files.
        runs_tables = sqlalchemy.MetaData()
        runs_tables.reflect(self.runs)
        self.tables = [t.name for t in reversed(runs_tables.sorted_tables) if t.name != "alembic_version"]
        auth_tables = sqlalchemy.inspect(self.auth).get_table_names()
        self.permission_tables = [t for t in auth_tables if t.endswith("_permissions")]

    @property
    def url(self) -> str:
        return self.team.url

    def empty(self) -> None:
        """Delete every experiment but MLflow's ``Default`` (id 0), and everything hanging off them."""
        import sqlalchemy

        with self.runs.begin() as db:
            for table in self.tables:
                keep = " WHERE experiment_id <> 0" if table == "experiments" else ""
                db.execute(sqlalchemy.text(f'DELETE FROM "{table}"{keep}'))
        with self.auth.begin() as db:
            for table in self.permission_tables:
                db.execute(sqlalchemy.text(f'DELETE FROM "{table}"'))

    def stop(self) -> None:
        self.runs.dispose()
        self.auth.dispose()
        self.team.stop()


@pytest.fixture(scope="session")
def tracking_server() -> Iterator[SessionServer | None]:
    """The session's team server when ``$WORKBENCH_TEST_TRACKING=server``, else None."""
    if not server_mode():
        yield None
        return
    from workbench.server.postgres import find_bin_dir

    find_bin_dir()  # no PostgreSQL: the error says how to get it (the switch asked for a server: no skip)
    root = Path(tempfile.mkdtemp(prefix="wb-tests-server-", dir="/tmp"))
    root.chmod(0o755)  # the postgres user must reach pgdata/ when the tests run as root
    server = None
    try:
        server = SessionServer(root)
        yield server
    finally:
        if server is not None:
            server.stop()
        else:  # start failed half-way: stop what did start
            from workbench.server import TeamServer

            TeamServer(root / "server").stop_mlflow()
        shutil.rmtree(root, ignore_errors=True)


def _use_server(server: SessionServer, monkeypatch: pytest.MonkeyPatch) -> str:
    server.empty()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", USER)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", server.password)
    return server.url


@pytest.fixture(scope="session")
def session_sqlite(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite MLflow store for the session (creating one costs seconds)."""
    store = tmp_path_factory.mktemp("mlruns")
    return f"sqlite:///{store / 'mlflow.db'}"


@pytest.fixture
def tracking_uri(tracking_server: SessionServer | None, monkeypatch: pytest.MonkeyPatch, session_sqlite: str) -> str:
    """The MLflow store tests share: the session's SQLite file, or the team server (emptied)."""
    if tracking_server is not None:
        return _use_server(tracking_server, monkeypatch)
    return session_sqlite


@pytest.fixture
def store_uri(tracking_server: SessionServer | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """An empty MLflow store of the test's own: ``sqlite:///<tmp_path>/mlflow.db``, or the team server (emptied)."""
    if tracking_server is not None:
        return _use_server(tracking_server, monkeypatch)
    return f"sqlite:///{tmp_path / 'mlflow.db'}"
