"""User accounts and experiment permissions on the team server, through MLflow's auth REST API.

Every call is made as the admin (HTTP basic auth). The server's ``default_permission`` is
``NO_PERMISSIONS`` (see :mod:`workbench.server.team`): a user sees the experiments they
created (MLflow makes them ``MANAGE`` of those) and the ones granted here.

Example:
    >>> admin = Accounts("http://127.0.0.1:5000", "admin", admin_password)  # doctest: +SKIP
    >>> admin.add_user("alice", password)  # doctest: +SKIP
    >>> admin.grant("alice", "sentiment", "EDIT")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import requests

from workbench.core.exceptions import WorkbenchError

#: What an experiment permission may be (MLflow's names).
PERMISSIONS = ("READ", "USE", "EDIT", "MANAGE", "DENY")


class Accounts:
    """Admin calls on a basic-auth MLflow server.

    Args:
        url: The server, e.g. ``http://127.0.0.1:5000``.
        username: An admin's name.
        password: Their password.
    """

    def __init__(self, url: str, username: str, password: str) -> None:
        self.url = url.rstrip("/")
        self._auth = (username, password)

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = requests.request(method, f"{self.url}{path}", auth=self._auth, timeout=30, **kwargs)
        if response.status_code >= 400:
            raise WorkbenchError(f"{method} {path} on {self.url}: HTTP {response.status_code}: {response.text[:300]}")
        return dict(response.json()) if response.content else {}

    def add_user(self, username: str, password: str) -> None:
        """Create a user (not an admin); an existing one gets ``password`` instead."""
        existing = requests.get(
            f"{self.url}/api/2.0/mlflow/users/get", params={"username": username}, auth=self._auth, timeout=30
        )
        if existing.status_code == 200:
            self.set_password(username, password)
        else:
            self._call("POST", "/api/2.0/mlflow/users/create", json={"username": username, "password": password})

    def set_password(self, username: str, password: str) -> None:
        """Give the existing user ``username`` a new password. For the caller's own account
        (the admin rotating theirs) MLflow also wants the current password: it is sent."""
        body = {"username": username, "password": password}
        if username == self._auth[0]:
            body["current_password"] = self._auth[1]
        self._call("PATCH", "/api/2.0/mlflow/users/update-password", json=body)

    def experiment_id(self, name: str) -> str:
        """The id of experiment ``name``, created (owned by the admin) when missing."""
        found = requests.get(
            f"{self.url}/api/2.0/mlflow/experiments/get-by-name",
            params={"experiment_name": name},
            auth=self._auth,
            timeout=30,
        )
        if found.status_code == 200:
            return str(found.json()["experiment"]["experiment_id"])
        return str(self._call("POST", "/api/2.0/mlflow/experiments/create", json={"name": name})["experiment_id"])

    def grant(self, username: str, experiment: str, permission: str) -> str:
        """Give ``username`` ``permission`` (READ, USE, EDIT, MANAGE or DENY) on experiment
        ``experiment`` (a name; created when missing). Returns the experiment's id."""
        if permission.upper() not in PERMISSIONS:
            raise WorkbenchError(f"permission {permission!r} must be one of {', '.join(PERMISSIONS)}")
        experiment_id = self.experiment_id(experiment)
        self._call(
            "POST",
            "/api/3.0/mlflow/users/permissions/grant",
            json={
                "username": username,
                "resource_type": "experiment",
                "resource_id": experiment_id,
                "permission": permission.upper(),
            },
        )
        return experiment_id
