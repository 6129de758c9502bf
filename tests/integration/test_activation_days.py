"""The activations per day that the dashboard reads are kept with each activation
(``ActivationDay``); migration 0024 counted the ones the audit log already held."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from licentia.domain.ids import new_id
from licentia.server.audit.models import AuditEvent
from licentia.server.db.engine import Database, connect
from licentia.server.db.schema import upgrade
from licentia.server.licenses.models import ActivationDay
from licentia.server.tenancy.models import Vendor
from tests.factories import VendorFactory
from tests.integration.device_messages import activate_device
from tests.integration.web.test_console_dashboard import cloud_user
from tests.support.servers import SetupError, postgres_database


@pytest.fixture
def empty_database(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'before.db'}"
        return
    admin = os.environ.get(
        "LICENTIA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    try:
        with postgres_database(admin, "licentia_migration") as url:
            yield url
    except SetupError as error:
        pytest.skip(str(error))


def _event(vendor_id: str, seq: int, action: str, at: datetime) -> dict[str, object]:
    return {
        "id": new_id(),
        "chain": vendor_id,
        "seq": seq,
        "at": at,
        "actor_type": "device",
        "actor_id": None,
        "action": action,
        "object_type": "license",
        "object_id": new_id(),
        "before": None,
        "after": None,
        "source_ip": None,
        "prev_hash": "0" * 64,
        "hash": "0" * 64,
    }


def test_the_migration_counts_the_activations_the_audit_log_holds_per_utc_day(
    empty_database: str,
):
    upgrade(empty_database, "0023")
    db = connect(empty_database, pool_size=1)
    try:
        vendor_id, other_id = new_id(), new_id()
        times = [
            ("license.activated", datetime(2026, 11, 30, 23, 59, tzinfo=UTC)),
            ("license.activated", datetime(2026, 11, 30, 0, 0, tzinfo=UTC)),
            ("license.activated", datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC)),
            ("license.issued", datetime(2026, 12, 1, 9, 0, tzinfo=UTC)),  # not an activation
        ]
        with db.transaction() as session:
            for id_, slug in ((vendor_id, "mine"), (other_id, "theirs")):
                session.execute(insert(Vendor).values(id=id_, slug=slug, name=slug))
            events = [_event(vendor_id, n, action, at) for n, (action, at) in enumerate(times)]
            events.append(_event(other_id, 0, "license.activated", times[0][1]))
            session.execute(insert(AuditEvent), events)
        upgrade(empty_database)
        with db.read() as session:
            rows = session.execute(
                select(ActivationDay.vendor_id, ActivationDay.day, ActivationDay.activations)
            ).all()
    finally:
        db.dispose()
    assert sorted(rows) == sorted(
        [
            (vendor_id, date(2026, 11, 30), 2),
            (vendor_id, date(2026, 12, 1), 1),
            (other_id, date(2026, 11, 30), 1),
        ]
    )


def test_every_activation_audited_is_counted_on_its_day(vendors: VendorFactory, database: Database):
    """Device and cloud activations, each counted where it is audited."""
    vendor = vendors.create()
    order = vendor.order([{"sku": vendor.template()["sku"], "quantity": 2}])
    activate_device(vendor, order["ticket_code"])
    activate_device(vendor, order["ticket_code"])
    cloud_user(vendor, delivery="cloud")
    with database.read() as session:
        audited = session.scalar(
            select(func.count()).where(
                AuditEvent.chain == vendor.id, AuditEvent.action == "license.activated"
            )
        )
        kept = session.scalar(
            select(func.sum(ActivationDay.activations)).where(ActivationDay.vendor_id == vendor.id)
        )
    assert audited == 3 and kept == 3
