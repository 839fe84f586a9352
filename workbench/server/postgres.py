"""A project-local PostgreSQL cluster for the team server, made with Debian's (or any) ``initdb``.

The cluster lives in ``<server dir>/pgdata``; it listens on ``127.0.0.1:<port>`` (password,
SCRAM) and on a Unix socket in ``<server dir>/run`` (trust, but the folder is 0700: only its
owner gets in). PostgreSQL refuses to run as root, so when this runs as root ``initdb`` and
``pg_ctl`` run as the ``postgres`` system user (``runuser -u postgres --``), which then owns
``pgdata`` and ``run``; the server folder and its parents must be searchable by that user.
As any other user they run as that user.

Example:
    >>> cluster = PostgresCluster(Path(".cache/workbench/server"), port=5433)  # doctest: +SKIP
    >>> cluster.start(); cluster.ensure_database("mlflow", "mlflow", password)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

from workbench.core.exceptions import WorkbenchError

#: The database superuser's name (local socket only).
SUPERUSER = "postgres"
#: Unix socket paths are limited to 107 bytes (``<dir>/.s.PGSQL.<port>`` must fit).
_SOCKET_MAX = 90


def find_bin_dir() -> Path:
    """Where ``initdb`` and ``pg_ctl`` are: ``$WORKBENCH_PG_BIN``, Debian's newest
    ``/usr/lib/postgresql/<version>/bin``, or the ``PATH``."""
    override = os.environ.get("WORKBENCH_PG_BIN")
    if override:
        return Path(override)
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if debian:
        return debian[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise WorkbenchError(
        "PostgreSQL's initdb was not found: install it (Debian: `apt-get install postgresql`) "
        "or point $WORKBENCH_PG_BIN at the folder holding initdb and pg_ctl"
    )


class PostgresCluster:
    """One PostgreSQL cluster in ``<root>/pgdata``, started and stopped with ``pg_ctl``.

    Args:
        root: The team server's folder (``pgdata/``, ``run/`` and ``postgres.log`` go in it).
        port: TCP port on 127.0.0.1.
    """

    def __init__(self, root: Path, *, port: int) -> None:
        self.root = root.resolve()
        self.port = port
        self.data = self.root / "pgdata"
        self.socket_dir = self.root / "run"
        self.log = self.root / "postgres.log"
        self.bin = find_bin_dir()
        self._owner = SUPERUSER if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    # -- commands ---------------------------------------------------------------------------
    def _as_owner(self, *command: str) -> list[str]:
        """The command, run as the postgres user when we are root (PostgreSQL refuses root)."""
        return ["runuser", "-u", self._owner, "--", *command] if os.geteuid() == 0 else list(command)

    def _run(self, *command: str, stdin: str | None = None) -> str:
        done = subprocess.run(self._as_owner(*command), input=stdin, capture_output=True, text=True, cwd="/")
        if done.returncode != 0:
            raise WorkbenchError(
                f"{Path(command[0]).name} failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()}"
            )
        return done.stdout

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam(self._owner)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    # -- life cycle -------------------------------------------------------------------------
    @property
    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def init(self) -> bool:
        """Make the cluster if it is not there yet; True when it was made now."""
        if self.initialised:
            return False
        if len(str(self.socket_dir)) > _SOCKET_MAX:
            raise WorkbenchError(
                f"the server folder {self.root} is too deep for PostgreSQL's Unix socket "
                f"(at most {_SOCKET_MAX} characters): set $WORKBENCH_SERVER_DIR to a shorter path"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        for folder in (self.data, self.socket_dir):
            folder.mkdir(mode=0o700, exist_ok=True)
            self._chown(folder)
        self.log.touch(mode=0o600)
        self._chown(self.log)
        # The superuser gets no password: it logs in only through the private socket.
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-instructions",
        )
        return True

    def running(self) -> bool:
        if not self.initialised:
            return False
        command = self._as_owner(str(self.bin / "pg_ctl"), "-D", str(self.data), "status")
        return subprocess.run(command, capture_output=True, cwd="/").returncode == 0

    def start(self) -> None:
        """Start the cluster (made first if missing) and wait until it accepts connections."""
        self.init()
        if self.running():
            return
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.socket_dir}"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self) -> None:
        if self.running():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    # -- databases --------------------------------------------------------------------------
    def sql(self, statement: str, *, database: str = "postgres") -> str:
        """Run SQL as the superuser over the private socket (``psql``); its output, unaligned."""
        # On stdin, not argv: passwords never show in `ps`.
        return self._run(
            str(self.bin / "psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.socket_dir),
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            "-d",
            database,
            stdin=statement,
        )

    def ensure_database(self, name: str, role: str, password: str) -> None:
        """Make ``role`` (login, ``password``) and database ``name`` owned by it, if missing.

        The password is (re)set every time, so the one in the environment or the secrets
        file is the one that works.
        """
        quoted = password.replace("'", "''")
        self.sql(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
            f'CREATE ROLE "{role}" LOGIN; END IF; END $$;\n'
            f"ALTER ROLE \"{role}\" PASSWORD '{quoted}';"
        )
        exists = self.sql(f"SELECT 1 FROM pg_database WHERE datname = '{name}';").strip()
        if not exists:
            self.sql(f'CREATE DATABASE "{name}" OWNER "{role}";')

    def url(self, database: str, role: str, password: str) -> str:
        """A SQLAlchemy URL for ``database`` over TCP (psycopg 3 driver)."""
        return f"postgresql+psycopg://{role}:{password}@127.0.0.1:{self.port}/{database}"
