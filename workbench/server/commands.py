"""The team-server commands of the ``workbench`` CLI: ``workbench server start|stop|status|user|rotate-admin``
and ``workbench sync`` (see docs/team_server.md)."""

from __future__ import annotations

import argparse
import os
import secrets
from typing import Any

from workbench.core.exceptions import WorkbenchError
from workbench.server import Accounts, TeamServer
from workbench.tracking.sync import sync_run


def _cmd_server(args: argparse.Namespace) -> int:
    server = TeamServer.from_env()
    if args.action == "start":
        server.start()
        print(f"team server: {server.url} (PostgreSQL on 127.0.0.1:{server.db.port}, files in {server.root})")
        print(f"admin user {server.admin!r}: its password is in {server.secrets_file} (mode 600)")
        print("add a user: workbench server user NAME --grant EXPERIMENT=EDIT; point the workbench at it with")
        print(f"  export MLFLOW_TRACKING_URI={server.url} MLFLOW_TRACKING_USERNAME=NAME MLFLOW_TRACKING_PASSWORD=...")
    elif args.action == "stop":
        server.stop()
        print(f"stopped mlflow server and PostgreSQL ({server.root})")
    elif args.action == "status":
        status = server.status()
        print(status)
        return 0 if status.healthy else 1
    elif args.action == "rotate-admin":
        given = os.environ.get("WORKBENCH_NEW_ADMIN_PASSWORD")
        password = server.rotate_admin_password(given)
        where = "from $WORKBENCH_NEW_ADMIN_PASSWORD" if given else "generated"
        print(f"admin {server.admin!r} has a new password ({where}), kept in {server.secrets_file} (mode 600);")
        print("the old one is refused from now on (mlflow server restarted to forget cached logins)")
        if args.show:
            print(f"new admin password: {password}")
    else:  # user
        if not args.name:
            raise WorkbenchError(
                "workbench server user needs a NAME, e.g. workbench server user alice --grant sentiment=EDIT"
            )
        given = os.environ.get("WORKBENCH_USER_PASSWORD")
        password = given or secrets.token_urlsafe(18)
        admin = Accounts(server.url, server.admin, server.secrets()["MLFLOW_AUTH_ADMIN_PASSWORD"])
        admin.add_user(args.name, password)
        for pair in args.grant:
            experiment, _, permission = pair.rpartition("=")
            if not experiment:
                raise WorkbenchError(f"--grant {pair!r} must look like EXPERIMENT=PERMISSION, e.g. sentiment=EDIT")
            admin.grant(args.name, experiment, permission)
            print(f"{args.name}: {permission.upper()} on experiment {experiment!r}")
        shown = (
            "(from $WORKBENCH_USER_PASSWORD)" if given else f"{password}  (shown once; keep it in a password manager)"
        )
        print(f"user {args.name!r} on {server.url}; password {shown}")
    return 0


def _cmd_sync(args: argparse.Namespace) -> int:
    result = sync_run(args.folder, tracking_uri=args.tracking_uri)
    print(f"uploaded {result.n_rows} rows of {result.name} to MLflow run {result.run_id} ({result.tracking_uri})")
    return 0


def add_team_commands(sub: Any) -> None:
    """Add ``server`` and ``sync`` to the CLI's subcommands."""
    server = sub.add_parser("server", help="the team's MLflow server on PostgreSQL with logins (docs/team_server.md)")
    server.add_argument("action", choices=["start", "stop", "status", "user", "rotate-admin"])
    server.add_argument("name", nargs="?", help="user: the account to create (or to give a new password)")
    server.add_argument(
        "--grant", action="append", default=[], metavar="EXPERIMENT=PERMISSION", help="user: READ, EDIT, MANAGE..."
    )
    server.add_argument(
        "--show", action="store_true", help="rotate-admin: print the new password (else it is only in secrets.env)"
    )
    server.set_defaults(func=_cmd_server)

    sync = sub.add_parser("sync", help="upload a finished run that MLflow did not take (the server was down)")
    sync.add_argument("folder", help="the run's folder, as the error named it (.cache/workbench/runs/<run>)")
    sync.add_argument("--tracking-uri", help="log it here instead of where it was going")
    sync.set_defaults(func=_cmd_sync)
