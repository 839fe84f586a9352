"""The team's tracking server: PostgreSQL, ``mlflow server`` with basic auth, user accounts.

``workbench server start|stop|status|user`` drives it; see ``docs/team_server.md``.
"""

from workbench.server.accounts import Accounts
from workbench.server.postgres import PostgresCluster
from workbench.server.team import ServerStatus, TeamServer

__all__ = ["Accounts", "PostgresCluster", "ServerStatus", "TeamServer"]
