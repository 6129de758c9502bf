"""The query planner's statistics on SQLite.

SQLite plans a query without knowing how many rows an index narrows down to until
``ANALYZE`` has counted them. Without them, ``vendor_id = ? AND ticket_id = ?`` is as
likely to go through the vendor's index as through the ticket's, and then reads every
license of the vendor. PostgreSQL's autovacuum keeps its own statistics; SQLite's are
refreshed here, at start and then every hour.
"""

from __future__ import annotations

from licentia.server.db.engine import Database

REFRESH_SECONDS = 3600.0


def refresh_statistics(db: Database) -> bool:
    """On SQLite, ``ANALYZE`` in a write transaction, then reopen the pools'
    connections, which load the statistics only when they open. Returns whether
    anything was done (nothing on PostgreSQL).

    The whole tables are read: a sampled ``ANALYZE`` (``PRAGMA analysis_limit``) rated
    every index of few distinct values alike (a license's state as its vendor), and
    the planner then read a state's licenses through the vendor's index."""
    if db.write_engine.dialect.name != "sqlite":
        return False
    with db.write_lock, db.write_engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
    db.dispose()
    return True
