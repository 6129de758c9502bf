"""Reads on the event loop (server/db/loop_statements.py): PostgreSQL only, same rows."""

from __future__ import annotations

import asyncio
from datetime import UTC
from typing import Any

import psycopg
from sqlalchemy import bindparam, func, select

from licentia.server.db.engine import Database
from licentia.server.db.loop_statements import NOT_HERE, LoopStatements
from licentia.server.licenses.models import License
from licentia.server.licenses.services import LICENSE_ROW

_BY_ID = select(License.__table__).where(License.__table__.c.id == bindparam("license_id"))


def _a_license(vendors) -> str:
    vendor = vendors.create()
    template = vendor.template({"validity": {"kind": "days_from_issue", "days": 30}})
    order = vendor.order([{"sku": template["sku"], "quantity": 1}])
    license_id: str = vendor.ok("GET", f"/tickets/{order['ticket_id']}")["license_ids"][0]
    return license_id


def test_a_row_read_on_the_loop_equals_the_thread_pools_row(vendors, database: Database):
    license_id = _a_license(vendors)
    with database.read_engine.connect() as connection:
        expected = connection.execute(_BY_ID, {"license_id": license_id}).one()
    reads = LoopStatements(database.write_engine, size=2)

    async def read() -> tuple[Any, Any]:
        await reads.open()
        try:
            row = await reads.first(_BY_ID, {"license_id": license_id})
            ran = await reads.run(lambda c: c.execute(_BY_ID, {"license_id": license_id}).one())
            return row, ran
        finally:
            await reads.close()

    row, ran = asyncio.run(read())
    assert row is not None and row is not NOT_HERE
    assert row._asdict() == expected._asdict()  # datetimes and JSON as SQLAlchemy gives them
    assert row.issued_at.utcoffset() == UTC.utcoffset(None)
    assert isinstance(row.options, dict)
    if database.write_engine.dialect.name == "sqlite":
        assert ran is NOT_HERE  # SQLite writes stay on the thread pool, under its lock
    else:
        assert ran._asdict() == expected._asdict()
    assert asyncio.run(_first_without_open(reads, license_id)) is NOT_HERE


async def _first_without_open(reads: LoopStatements, license_id: str) -> Any:
    """A loop the pool was not opened on (an app served without its lifespan)."""
    return await reads.first(_BY_ID, {"license_id": license_id})


def test_a_missing_row_is_none_and_a_connection_the_server_dropped_is_replaced(
    vendors, database: Database
):
    if database.write_engine.dialect.name == "sqlite":
        return  # nothing to drop: SQLite answers NOT_HERE (above)
    license_id = _a_license(vendors)
    reads = LoopStatements(database.write_engine, size=1)
    admin = database.write_engine.url.set(drivername="postgresql")

    async def read_across_a_restart() -> tuple[Any, Any, Any]:
        await reads.open()
        try:
            missing = await reads.first(LICENSE_ROW, {"license_id": "nope", "vendor_id": "x"})
            mine = await reads.first(select(func.pg_backend_pid().label("pid")), {})
            with psycopg.connect(admin.render_as_string(hide_password=False)) as killer:
                killer.execute("SELECT pg_terminate_backend(%s)", (mine.pid,))
            again = await reads.first(_BY_ID, {"license_id": license_id})
            mine = await reads.first(select(func.pg_backend_pid().label("pid")), {})
            with psycopg.connect(admin.render_as_string(hide_password=False)) as killer:
                killer.execute("SELECT pg_terminate_backend(%s)", (mine.pid,))
            ran = await reads.run(lambda c: c.execute(_BY_ID, {"license_id": license_id}).one())
            return missing, again, ran
        finally:
            await reads.close()

    missing, again, ran = asyncio.run(read_across_a_restart())
    assert missing is None
    assert again is not None and again is not NOT_HERE and again.id == license_id
    assert ran.id == license_id  # run() too, on a new connection
