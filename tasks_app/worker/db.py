"""Database connection care for code that runs outside a request (workers, the heartbeat).

Django checks and replaces a broken connection only between requests; a worker process keeps
its connection across tasks (CELERY_DB_REUSE_MAX). When PostgreSQL terminates it (a restart, a
failover, pg_terminate_backend, an idle timeout in a proxy), the next query fails and so does
every query after it on that connection, until someone closes it.
"""

from __future__ import annotations

from django.db import connections


def drop_if_broken(alias: str = "default") -> bool:
    """Close the connection if it no longer works, so the next query opens a new one; True if
    it did. Never inside a transaction (its work would be lost silently): there the error
    stands, and the caller's transaction fails as it should."""
    connection = connections[alias]
    if connection.connection is None or connection.in_atomic_block or connection.is_usable():
        return False
    connection.close()
    return True
