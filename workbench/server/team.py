"""The team's tracking server: ``mlflow server`` on PostgreSQL, artifacts proxied, basic auth on.

:class:`TeamServer` puts everything in one folder (``$WORKBENCH_SERVER_DIR``, or
``.cache/workbench/server`` in the project, git-ignored):

- ``pgdata/``, ``run/``, ``postgres.log``: the PostgreSQL cluster
  (:class:`~workbench.server.postgres.PostgresCluster`), databases ``mlflow`` (runs) and
  ``mlflow_auth`` (users and permissions), both owned by role ``mlflow``;
- ``artifacts/``: what ``--artifacts-destination`` points at (the server proxies uploads);
- ``secrets.env`` (mode 600): the ``mlflow`` role's password, the admin's and the UI's CSRF
  key, generated on first start unless ``WORKBENCH_PG_PASSWORD`` / ``MLFLOW_AUTH_ADMIN_PASSWORD``
  / ``MLFLOW_FLASK_SERVER_SECRET_KEY`` are set (the environment always wins); MLflow ships no
  default admin password and refuses the old ``password1234``;
- ``basic_auth.ini`` (mode 600): MLflow's auth config. ``default_permission = NO_PERMISSIONS``:
  a user reads only the experiments they created or were granted;
- ``mlflow.pid``, ``mlflow.log``: the server process (its own process group).

The database URL goes to ``mlflow server`` in ``MLFLOW_BACKEND_STORE_URI`` and the admin
password in ``MLFLOW_AUTH_ADMIN_PASSWORD``, never on its command line (``ps`` shows that).

Example:
    >>> server = TeamServer.from_env()  # doctest: +SKIP
    >>> server.start().url  # doctest: +SKIP
    'http://127.0.0.1:5000'
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from workbench.core.exceptions import WorkbenchError
from workbench.server.accounts import Accounts
from workbench.server.postgres import PostgresCluster
from workbench.util.env import ui_environment
from workbench.util.paths import project_root

#: Where the team server keeps its files unless ``$WORKBENCH_SERVER_DIR`` says otherwise.
SERVER_DIR = Path(".cache") / "workbench" / "server"
#: The database role and databases the server uses.
ROLE, RUNS_DB, AUTH_DB = "mlflow", "mlflow", "mlflow_auth"
#: Seconds to wait for ``mlflow server`` to answer its health check.
START_TIMEOUT_S = 180.0
#: Credentials the server needs; kept in ``secrets.env`` unless set in the environment.
SECRET_NAMES = ("WORKBENCH_PG_PASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY")


@dataclass(frozen=True)
class ServerStatus:
    """What ``workbench server status`` reports."""

    url: str
    postgres: bool
    pid: int | None
    healthy: bool

    def __str__(self) -> str:
        db = "running" if self.postgres else "stopped"
        server = f"pid {self.pid}, {'healthy' if self.healthy else 'not answering'}" if self.pid else "stopped"
        return f"mlflow server {self.url}: {server}; PostgreSQL: {db}"


class TeamServer:
    """PostgreSQL plus an authenticated ``mlflow server``, started, stopped and checked together.

    Args:
        root: The server's folder (see the module's docstring).
        port: The MLflow server's port on ``host``.
        pg_port: PostgreSQL's port on 127.0.0.1.
        host: The interface MLflow binds to. Keep 127.0.0.1 and put a TLS proxy in front for
            anything beyond this machine (docs/team_server.md).
        workers: MLflow's worker processes.
        admin: The admin user's name (``MLFLOW_AUTH_ADMIN_USERNAME``).
    """

    def __init__(
        self,
        root: Path,
        *,
        port: int = 5000,
        pg_port: int = 5433,
        host: str = "127.0.0.1",
        workers: int = 2,
        admin: str = "admin",
    ) -> None:
        self.root = root.resolve()
        self.port, self.host, self.workers, self.admin = port, host, workers, admin
        self.db = PostgresCluster(self.root, port=pg_port)
        self.secrets_file = self.root / "secrets.env"
        self.pid_file = self.root / "mlflow.pid"
        self.log = self.root / "mlflow.log"

    @classmethod
    def from_env(cls) -> TeamServer:
        """Settings from ``WORKBENCH_SERVER_DIR``, ``WORKBENCH_SERVER_PORT``, ``WORKBENCH_PG_PORT``,
        ``WORKBENCH_SERVER_HOST`` and ``MLFLOW_AUTH_ADMIN_USERNAME``."""
        env = os.environ
        return cls(
            Path(env.get("WORKBENCH_SERVER_DIR") or project_root() / SERVER_DIR),
            port=int(env.get("WORKBENCH_SERVER_PORT", "5000")),
            pg_port=int(env.get("WORKBENCH_PG_PORT", "5433")),
            host=env.get("WORKBENCH_SERVER_HOST", "127.0.0.1"),
            admin=env.get("MLFLOW_AUTH_ADMIN_USERNAME", "admin"),
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- secrets ----------------------------------------------------------------------------
    def secrets(self) -> dict[str, str]:
        """The role's and the admin's passwords: the environment's, else ``secrets.env``'s,
        else new ones (written to ``secrets.env``, mode 600)."""
        stored: dict[str, str] = {}
        if self.secrets_file.exists():
            for line in self.secrets_file.read_text(encoding="utf-8").splitlines():
                name, sep, value = line.partition("=")
                if sep:
                    stored[name.strip()] = value.strip()
        values = {name: os.environ.get(name) or stored.get(name) or secrets.token_urlsafe(24) for name in SECRET_NAMES}
        if values != {name: stored.get(name) for name in SECRET_NAMES}:
            self._write_secrets(values)
        return values

    def _write_secrets(self, values: dict[str, str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.secrets_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write("".join(f"{k}={v}\n" for k, v in values.items()))
        self.secrets_file.chmod(0o600)  # an older file keeps its mode through O_TRUNC

    def rotate_admin_password(self, new_password: str | None = None) -> str:
        """Give the admin a new password (``new_password``, else a generated one), keep it in
        ``secrets.env``, and restart ``mlflow server`` so the old one is refused at once.

        The restart matters: each MLflow worker caches a checked (user, password) pair for
        ``auth_cache_ttl_seconds`` and only the worker that changed the password forgets it.
        Returns the new password (the CLI prints it only when asked).

        Raises:
            WorkbenchError: the server is not running, the admin password comes from
                ``$MLFLOW_AUTH_ADMIN_PASSWORD`` (rotate it where it is kept), or the new one is the old one.
        """
        if os.environ.get("MLFLOW_AUTH_ADMIN_PASSWORD"):
            raise WorkbenchError(
                "the admin password comes from $MLFLOW_AUTH_ADMIN_PASSWORD, which wins over "
                f"{self.secrets_file}: change it where it is kept, or unset it to rotate the stored one"
            )
        if not self.healthy():
            raise WorkbenchError(f"no team server answers on {self.url}: `workbench server start` first")
        values = self.secrets()
        new = new_password or secrets.token_urlsafe(24)
        if new == values["MLFLOW_AUTH_ADMIN_PASSWORD"]:
            raise WorkbenchError("the new admin password is the current one: choose another (or let one be generated)")
        Accounts(self.url, self.admin, values["MLFLOW_AUTH_ADMIN_PASSWORD"]).set_password(self.admin, new)
        self._write_secrets({**values, "MLFLOW_AUTH_ADMIN_PASSWORD": new})
        self.stop_mlflow()
        self.start()
        return new

    def _auth_config(self, role_password: str) -> Path:
        config = self.root / "basic_auth.ini"
        text = (
            "[mlflow]\n"
            "default_permission = NO_PERMISSIONS\n"
            f"database_uri = {self.db.url(AUTH_DB, ROLE, role_password)}\n"
            f"admin_username = {self.admin}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            # Checks a (user, password) pair's PBKDF2 hash once a minute instead of on every
            # request (MLflow: ~3x the throughput); a changed password takes up to 60 s elsewhere.
            "auth_cache_ttl_seconds = 60\n"
        )
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        return config

    # -- life cycle -------------------------------------------------------------------------
    def pid(self) -> int | None:
        """The server's pid when its process is alive."""
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.url}/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def start(self) -> TeamServer:
        """Start PostgreSQL (made on first start), its databases, then ``mlflow server``; wait until healthy."""
        values = self.secrets()
        password = values["WORKBENCH_PG_PASSWORD"]
        self.db.start()
        for database in (RUNS_DB, AUTH_DB):
            self.db.ensure_database(database, ROLE, password)
        if self.pid() is not None:
            self._wait_healthy()
            return self
        (self.root / "artifacts").mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
        env.update(ui_environment())
        env.update(
            MLFLOW_BACKEND_STORE_URI=self.db.url(RUNS_DB, ROLE, password),
            MLFLOW_AUTH_CONFIG_PATH=str(self._auth_config(password)),
            MLFLOW_AUTH_ADMIN_USERNAME=self.admin,
            MLFLOW_AUTH_ADMIN_PASSWORD=values["MLFLOW_AUTH_ADMIN_PASSWORD"],
            MLFLOW_FLASK_SERVER_SECRET_KEY=values["MLFLOW_FLASK_SERVER_SECRET_KEY"],  # CSRF, same across restarts
        )
        command = [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--app-name",
            "basic-auth",
            "--serve-artifacts",
            "--artifacts-destination",
            str(self.root / "artifacts"),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        with open(self.log, "ab") as log:
            process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self.pid_file.write_text(str(process.pid))
        self._wait_healthy(process)
        return self

    def _wait_healthy(self, process: subprocess.Popen[bytes] | None = None) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.healthy():
                return
            if process is not None and process.poll() is not None:
                raise WorkbenchError(f"mlflow server exited with {process.returncode}:\n{self._log_tail()}")
            time.sleep(0.5)
        raise WorkbenchError(
            f"mlflow server did not answer on {self.url} in {START_TIMEOUT_S:.0f} s:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return f"(no log at {self.log})"

    def stop_mlflow(self, *, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> None:
        """Stop ``mlflow server`` and its workers (its whole process group)."""
        pid = self.pid()
        if pid is None:
            return
        try:
            os.killpg(pid, sig)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.2)
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _reap(pid)
        self.pid_file.unlink(missing_ok=True)

    def stop(self) -> None:
        """Stop ``mlflow server``, then PostgreSQL."""
        self.stop_mlflow()
        self.db.stop()

    def status(self) -> ServerStatus:
        return ServerStatus(self.url, self.db.running(), self.pid(), self.healthy())


def _alive(pid: int) -> bool:
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _reap(pid: int) -> None:
    """Collect the exit status of a server this process started (else it stays a zombie)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
