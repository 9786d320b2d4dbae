"""Django's PostgreSQL backend whose pool checks each connection on checkout, within a time limit.

Django builds the psycopg pool itself and offers only psycopg_pool's own
check (CONN_HEALTH_CHECKS), which waits for the server's answer with no
limit; this backend puts config.dbcheck.BoundedCheck in its place. Set
OPTIONS["check_timeout"] (seconds); everything else is Django's backend.
"""

from typing import Any

import psycopg
from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool

from config.dbcheck import BoundedCheck


class DatabaseWrapper(base.DatabaseWrapper):
    """The postgresql backend; its pool's checkout check is bounded."""

    @property
    def pool(self) -> ConnectionPool[psycopg.Connection[Any]] | None:
        """Django's pool, checking each connection on checkout within ``check_timeout``."""
        pool: ConnectionPool[psycopg.Connection[Any]] | None = super().pool
        if pool is not None and not isinstance(pool._check, BoundedCheck):
            pool._check = BoundedCheck(self.settings_dict["OPTIONS"].get("check_timeout", 1.0))
        return pool

    def get_connection_params(self) -> dict[str, Any]:
        """libpq's parameters: Django's, less ours."""
        params = super().get_connection_params()
        params.pop("check_timeout", None)
        return params
