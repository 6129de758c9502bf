"""SQLite's query planner statistics, refreshed by the server (db/statistics.py): the
planner learns how many rows each index narrows down to, so that a ticket's licenses
are read through the ticket's index, not through every license of the vendor."""

from __future__ import annotations

from sqlalchemy import text

from licentia.server.db.engine import connect
from licentia.server.db.statistics import refresh_statistics
from tests.factories import VendorFactory

TICKET_LICENSES = (
    "EXPLAIN QUERY PLAN SELECT id FROM licenses WHERE vendor_id = :vendor AND ticket_id = :ticket"
)


def test_sqlite_plans_a_tickets_licenses_on_the_ticket_index_once_counted(
    database_url: str, vendors: VendorFactory
):
    vendor = vendors.create()
    template = vendor.template()
    for _ in range(3):
        vendor.order([{"sku": template["sku"], "quantity": 40}])
    ticket_id = vendor.order()["ticket_id"]
    db = connect(database_url, pool_size=2)
    try:
        refreshed = refresh_statistics(db)
        if db.write_engine.dialect.name != "sqlite":
            assert refreshed is False  # PostgreSQL's autovacuum keeps its own
            return
        assert refreshed is True
        with db.read() as session:
            plan = " ".join(
                str(row[-1])
                for row in session.execute(
                    text(TICKET_LICENSES), {"vendor": vendor.id, "ticket": ticket_id}
                )
            )
            counted = session.execute(
                text("SELECT stat FROM sqlite_stat1 WHERE idx = 'ix_licenses_vendor_id'")
            ).scalar_one()
        assert "ticket" in plan and "ix_licenses_vendor_id" not in plan
        assert int(counted.split()[0]) >= 121  # every license was counted
    finally:
        db.dispose()
