"""A PostgreSQL connection the database drops (a restart, a failover, an operator's
``pg_terminate_backend``) costs no failed request where running again is safe: reads,
and write transactions that had not begun to commit (docs/operations.md)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from licentia.domain.actors import operator
from licentia.server.db.engine import Database, run_read, run_write
from licentia.server.orders import services as orders
from licentia.server.orders.models import Customer
from tests.factories import VendorFactory
from tests.integration.test_errors import assert_problem


@pytest.fixture
def killer(backend: str, database: Database) -> Iterator[psycopg.Connection]:
    """An administrator's connection that terminates backends of the test database and
    waits until each is gone."""
    if backend != "postgresql":
        pytest.skip("SQLite has no connection to lose")
    url = database.write_engine.url.set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as admin:
        yield admin
    database.dispose()  # the suite's later tests share these pools: none starts on a corpse


def _terminate(admin: psycopg.Connection, pid: int) -> None:
    admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))


def _terminate_all_but(admin: psycopg.Connection) -> int:
    """Terminate every other connection to this database (the app's pooled ones)."""
    rows = admin.execute(
        "SELECT pid FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).fetchall()
    for (pid,) in rows:
        _terminate(admin, pid)
    return len(rows)


def test_a_write_whose_connection_dropped_before_commit_runs_again_once(
    vendors: VendorFactory, database: Database, killer: psycopg.Connection
) -> None:
    vendor = vendors.create()
    pids: list[int] = []

    def work(session: Session) -> str:
        pids.append(session.scalar(select(func.pg_backend_pid())) or 0)
        if len(pids) == 1:
            _terminate(killer, pids[0])
        customer = orders.create_customer(
            session, operator(vendor.id), name="Once", external_id=None, email=None
        )
        return customer.id

    customer_id = run_write(database, work)
    assert len(pids) == 2 and pids[0] != pids[1]
    with database.read() as session:
        names = session.scalars(select(Customer.name).where(Customer.vendor_id == vendor.id))
        assert list(names) == ["Once"]
        assert session.get(Customer, customer_id) is not None


def test_a_write_whose_connection_dropped_while_committing_is_not_run_again(
    vendors: VendorFactory, database: Database, killer: psycopg.Connection
) -> None:
    vendor = vendors.create()
    runs: list[int] = []

    def work(session: Session) -> None:
        pid = session.scalar(select(func.pg_backend_pid())) or 0
        runs.append(pid)
        orders.create_customer(
            session, operator(vendor.id), name="Maybe", external_id=None, email=None
        )
        _terminate(killer, pid)  # the audit events and the COMMIT are still to be sent

    with pytest.raises(OperationalError) as raised:
        run_write(database, work)
    assert raised.value.connection_invalidated
    assert len(runs) == 1
    with database.read() as session:
        assert not list(session.scalars(select(Customer).where(Customer.vendor_id == vendor.id)))


def test_a_read_whose_connection_dropped_runs_again(
    database: Database, killer: psycopg.Connection
) -> None:
    pids: list[int] = []

    def work(session: Session) -> int:
        pids.append(session.scalar(select(func.pg_backend_pid())) or 0)
        if len(pids) == 1:
            _terminate(killer, pids[0])
        return session.scalar(text("SELECT 41 + 1")) or 0

    assert run_read(database, work) == 42
    assert len(pids) == 2


def test_the_api_answers_after_every_pooled_connection_was_terminated(
    vendors: VendorFactory, killer: psycopg.Connection
) -> None:
    vendor = vendors.create()
    vendor.ok("GET", "/products")  # the pool holds connections now
    assert _terminate_all_but(killer) > 0
    assert vendor.get("/products").status_code == 200
    assert _terminate_all_but(killer) > 0
    created = vendor.post("/customers", json={"name": "After the restart"})
    assert created.status_code == 201, created.text
    assert _terminate_all_but(killer) > 0
    assert vendor.get(f"/customers/{created.json()['id']}").status_code == 200


def test_a_connection_lost_while_committing_is_a_503_not_a_500(
    vendors: VendorFactory, database: Database, killer: psycopg.Connection
) -> None:
    vendor = vendors.create()
    customer = vendor.ok("POST", "/customers", json={"name": "Before"})
    pids: list[int] = []

    @event.listens_for(database.writer, "before_commit")
    def _drop(session: Session) -> None:
        pid = session.scalar(select(func.pg_backend_pid())) or 0
        if not pids:
            pids.append(pid)
            _terminate(killer, pid)

    try:
        answer = vendor.request("PATCH", f"/customers/{customer['id']}", json={"name": "After"})
    finally:
        event.remove(database.writer, "before_commit", _drop)
    assert pids
    assert_problem(answer, 503, "DATABASE_UNREACHABLE")


def test_license_reads_on_the_loop_answer_after_every_pooled_connection_was_terminated(
    vendors: VendorFactory, killer: psycopg.Connection
) -> None:
    vendor = vendors.create()
    template = vendor.template({"delivery": "device"})
    order = vendor.order([{"sku": template["sku"], "quantity": 1}])
    (license_id,) = vendor.ok("GET", f"/tickets/{order['ticket_id']}")["license_ids"]
    vendor.ok("GET", f"/licenses/{license_id}")  # the event loop's pool holds connections
    for _ in range(3):
        assert _terminate_all_but(killer) > 0
        answer = vendor.get(f"/licenses/{license_id}")
        assert answer.status_code == 200, answer.text
