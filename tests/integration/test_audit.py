"""The audit log: every change is recorded, readable with filters, and hash-chained so
that an edited or deleted row is found by ``verify_chains`` and ``licentia audit verify``.

Tamper tests edit the database directly, the way an intruder with write access would,
and put the rows back afterwards so the shared test database stays intact.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from licentia.cli.main import app as cli
from licentia.domain.actors import operator
from licentia.domain.audit import HASHED_FIELDS
from licentia.domain.ids import new_id
from licentia.server.audit._postgres import MAX_EVENTS
from licentia.server.audit.models import AuditEvent, AuditHead
from licentia.server.audit.services import record, verify_chains
from licentia.server.db.engine import Database, run_write
from tests.factories import VendorHandle

EVENTS = AuditEvent.metadata.tables["audit_events"]  # the table, for raw edits


def all_events(vendor: VendorHandle, **filters: Any) -> list[dict[str, Any]]:
    """Every page of the vendor's audit events matching ``filters``."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 200, **filters}
    while True:
        page = vendor.ok("GET", "/audit-events", params=params)
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        params["cursor"] = page["next_cursor"]


def admin_key_id(vendor: VendorHandle) -> str:
    (key,) = [k for k in vendor.ok("GET", "/api-keys")["items"] if k["name"] == "admin"]
    return str(key["id"])


def products(vendor: VendorHandle, count: int) -> list[dict[str, Any]]:
    return [vendor.product() for _ in range(count)]


# --- what is recorded ---------------------------------------------------------------------


def test_each_kind_of_change_records_who_did_what_to_which_object(vendors):
    vendor = vendors.create()
    template = vendor.template({"validity": {"kind": "days_from_issue", "days": 9}})
    vendor.ok("PATCH", f"/products/{template['product_id']}", json={"name": "Renamed"})
    vendor.ok("PATCH", f"/templates/{template['id']}", json={"name": "Renamed"})
    customer = vendor.ok("POST", "/customers", json={"name": "ACME", "external_id": "C-1"})
    vendor.ok("PATCH", f"/customers/{customer['id']}", json={"email": "it@acme.example"})
    order = vendor.order([{"sku": template["sku"]}], customer_id=customer["id"])
    grown = [{"sku": template["sku"]}, {"sku": template["sku"], "line_id": "extra"}]
    vendor.ok(
        "POST",
        "/orders",
        json={"external_order_id": order["external_order_id"], "lines": grown},
    )
    vendor.ok("POST", f"/tickets/{order['ticket_id']}/code")
    license_id = vendor.ok("GET", f"/tickets/{order['ticket_id']}")["license_ids"][0]
    for action, body in [("suspend", {}), ("resume", {}), ("extend", {"days": 3})]:
        vendor.ok("POST", f"/licenses/{license_id}/actions/{action}", json=body)
    vendor.ok("POST", f"/licenses/{license_id}/actions/replace", json={})
    subscription = vendor.license({"subscription": {"period": "monthly"}})["id"]
    renewal = {"external_id": "INV-1"}
    vendor.ok("POST", f"/licenses/{subscription}/subscription/actions/renew", json=renewal)
    vendor.ok("POST", f"/licenses/{subscription}/subscription/actions/cancel")
    kid = vendor.ok("GET", "/signing-keys")["items"][0]["kid"]
    vendor.ok("POST", "/signing-keys/rotate")
    vendor.ok("POST", f"/signing-keys/{kid}/retire")
    issued = vendor.ok("POST", "/api-keys", json={"name": "erp", "scopes": ["orders:write"]})
    vendor.ok("DELETE", f"/api-keys/{issued['id']}")

    events = all_events(vendor)
    recorded = {e["action"] for e in events}
    assert recorded >= {
        "product.created",
        "product.updated",
        "template.created",
        "template.updated",
        "customer.created",
        "customer.updated",
        "ticket.created",
        "order.created",
        "order.line_added",
        "license.issued",
        "ticket.code_revealed",
        "license.suspended",
        "license.resumed",
        "license.extended",
        "license.replaced",
        "subscription.renewed",
        "subscription.cancelled",
        "signing_key.created",
        "signing_key.retired",
        "api_key.created",
        "api_key.revoked",
    }
    by_us = [e for e in events if e["seq"] > 2]  # 1-2: the operator set the vendor up
    assert {(e["actor_type"], e["actor_id"]) for e in by_us} == {("api_key", admin_key_id(vendor))}
    assert {e["source_ip"] for e in by_us} == {"testclient"}
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    renamed = next(e for e in events if e["action"] == "customer.updated")
    assert (renamed["object_type"], renamed["object_id"]) == ("customer", customer["id"])
    assert (renamed["before"]["email"], renamed["after"]["email"]) == (None, "it@acme.example")
    key_created = next(e for e in events if e["object_id"] == issued["id"])
    assert (key_created["action"], key_created["after"]["name"]) == ("api_key.created", "erp")
    assert issued["secret"] not in json.dumps(events)


def test_a_user_is_recorded_as_the_user_who_acted(vendors):
    vendor = vendors.create()
    token = vendor.user_token("admin")
    response = vendor.post(
        "/products", token=token, json={"code": "BY-USER", "name": "P", "features": []}
    )
    assert response.status_code == 201, response.text
    (created,) = all_events(vendor, action="user.created")
    (event,) = all_events(vendor, object_id=response.json()["id"])
    assert (event["actor_type"], event["actor_id"]) == ("user", created["object_id"])


# --- reading with filters -----------------------------------------------------------------


def test_each_filter_narrows_the_list_to_what_it_names(vendors):
    vendor = vendors.create()
    user_token = vendor.user_token("admin")
    made = products(vendor, 3)
    by_user = vendor.ok(
        "POST", "/products", token=user_token, json={"code": "U-1", "name": "P", "features": []}
    )
    customer = vendor.ok("POST", "/customers", json={"name": "ACME"})
    everything = all_events(vendor)

    def ids(**filters: Any) -> list[int]:
        return [e["seq"] for e in all_events(vendor, **filters)]

    def expected(keep) -> list[int]:
        return [e["seq"] for e in everything if keep(e)]

    assert ids(action="product.created") == expected(lambda e: e["action"] == "product.created")
    assert len(ids(action="product.created")) == 4
    assert ids(object_type="customer") == expected(lambda e: e["object_type"] == "customer")
    assert ids(object_id=made[1]["id"]) == expected(lambda e: e["object_id"] == made[1]["id"])
    assert len(ids(object_id=customer["id"])) == 1
    key_id = admin_key_id(vendor)
    assert ids(actor_id=key_id) == expected(lambda e: e["actor_id"] == key_id)
    (user_event,) = all_events(vendor, object_id=by_user["id"])
    # The user's own events: logging in (for the token), then the product.
    by_actor = all_events(vendor, actor_id=user_event["actor_id"])
    assert [e["action"] for e in by_actor] == ["login.succeeded", "product.created"]
    assert by_actor[-1]["seq"] == user_event["seq"]
    assert ids(action="product.created", object_id=made[0]["id"]) == expected(
        lambda e: e["action"] == "product.created" and e["object_id"] == made[0]["id"]
    )
    assert ids(action="no.such.action") == []


def test_since_and_until_bound_the_time_window(vendors):
    vendor = vendors.create()
    products(vendor, 4)
    everything = all_events(vendor)
    at = [datetime.fromisoformat(e["at"]) for e in everything]
    middle = at[len(at) // 2]

    def seqs(**window: datetime) -> list[int]:
        params = {name: value.isoformat() for name, value in window.items()}
        return [e["seq"] for e in all_events(vendor, **params)]

    assert seqs(since=middle) == [
        e["seq"] for e, t in zip(everything, at, strict=True) if t >= middle
    ]
    assert seqs(until=middle) == [
        e["seq"] for e, t in zip(everything, at, strict=True) if t < middle
    ]
    assert seqs(since=middle, until=middle) == []
    assert seqs(since=at[0], until=at[-1] + timedelta(seconds=1)) == [e["seq"] for e in everything]


def test_the_list_pages_through_every_event_in_the_order_they_were_written(vendors):
    vendor = vendors.create()
    sku = vendor.template()["sku"]
    for index in range(3):  # each order writes several events in one transaction
        vendor.order([{"sku": sku, "quantity": 4}], external_order_id=f"ERP-{index}")
    seqs, params = [], {"limit": 5}
    while True:
        page = vendor.ok("GET", "/audit-events", params=params)
        seqs += [e["seq"] for e in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) > 20


def test_another_vendors_events_are_never_listed(vendors):
    vendor, other = vendors.create(), vendors.create()
    product = other.product()
    assert all_events(vendor, object_id=product["id"]) == []
    assert {e["action"] for e in all_events(vendor)} == {"signing_key.created", "api_key.created"}


# --- the chain ------------------------------------------------------------------------


@pytest.fixture
def chained(vendors) -> VendorHandle:
    """A vendor whose chain holds eight events (seq 1-8)."""
    vendor = vendors.create()
    products(vendor, 6)
    assert [e["seq"] for e in all_events(vendor)] == list(range(1, 9))
    return vendor


def breaks_of(database: Database, vendor: VendorHandle) -> list[tuple[int, str]]:
    with database.read() as session:
        return [(b.seq, b.reason) for b in verify_chains(session, vendor.id)]


def rows(database: Database, vendor: VendorHandle, seqs: list[int]) -> list[dict[str, Any]]:
    with database.read() as session:
        found = session.execute(
            select(EVENTS).where(AuditEvent.chain == vendor.id, AuditEvent.seq.in_(seqs))
        )
        return [dict(row._mapping) for row in found]


@contextmanager
def edited(
    database: Database, vendor: VendorHandle, seq: int, changes: dict[str, Any]
) -> Iterator[None]:
    (original,) = rows(database, vendor, [seq])
    with database.transaction() as session:
        session.execute(update(EVENTS).where(AuditEvent.id == original["id"]).values(**changes))
    try:
        yield
    finally:
        with database.transaction() as session:
            session.execute(
                update(EVENTS)
                .where(AuditEvent.id == original["id"])
                .values(**{name: original[name] for name in changes})
            )


@contextmanager
def deleted(database: Database, vendor: VendorHandle, seqs: list[int]) -> Iterator[None]:
    originals = rows(database, vendor, seqs)
    assert len(originals) == len(seqs)
    with database.transaction() as session:
        session.execute(delete(EVENTS).where(AuditEvent.id.in_([r["id"] for r in originals])))
    try:
        yield
    finally:
        with database.transaction() as session:
            session.execute(insert(EVENTS), originals)


def forged_value(field: str, original: dict[str, Any]) -> Any:
    """A plausible different value for one column of an event."""
    forged: dict[str, Any] = {
        "chain": "someone-elses-chain",
        "seq": 10_000,
        "at": original["at"] + timedelta(seconds=1) if original["at"] else None,
        "actor_type": "system",
        "actor_id": "someone-else",
        "action": "product.deleted",
        "object_type": "template",
        "object_id": "another-object",
        "before": {"name": "forged"},
        "after": {"name": "forged", "features": []},
        "source_ip": "203.0.113.9",
        "prev_hash": "f" * 64,
        "hash": "e" * 64,
    }
    return forged[field]


@pytest.mark.parametrize("field", [*HASHED_FIELDS, "prev_hash", "hash"])
def test_editing_any_hashed_field_of_a_row_is_found_at_that_row(chained, database, field):
    seq = 5
    (original,) = rows(database, chained, [seq])
    with edited(database, chained, seq, {field: forged_value(field, original)}):
        found = breaks_of(database, chained)
        assert [s for s, _ in found] == [seq], found
    assert breaks_of(database, chained) == []


def test_editing_the_first_or_the_last_row_is_found_there(chained, database):
    for seq in (1, 8):
        with edited(database, chained, seq, {"actor_id": "someone-else"}):
            assert [s for s, _ in breaks_of(database, chained)] == [seq]


def test_deleting_a_middle_row_is_found_at_the_gap(chained, database):
    with deleted(database, chained, [4]):
        assert breaks_of(database, chained) == [(4, "event 4 is missing")]
    assert breaks_of(database, chained) == []


@pytest.mark.parametrize("removed", [[8], [7, 8], [3, 4, 5, 6, 7, 8]])
def test_deleting_the_last_rows_is_found_where_they_were_cut(chained, database, removed):
    with deleted(database, chained, removed):
        ((seq, reason),) = breaks_of(database, chained)
        assert seq == removed[0]
        assert "removed" in reason
    assert breaks_of(database, chained) == []


def test_an_untouched_chain_is_intact(chained, database):
    assert breaks_of(database, chained) == []


# --- the CLI ------------------------------------------------------------------------------


def verify_with_cli(database_url: str, vendor: VendorHandle, *flags: str):
    environment = {
        "LICENTIA_DATABASE_URL": database_url,
        "LICENTIA_MASTER_KEY": base64.urlsafe_b64encode(b"\x05" * 32).decode(),
    }
    return CliRunner().invoke(
        cli, ["audit", "verify", "--vendor", vendor.slug, *flags], env=environment
    )


def test_the_cli_reports_an_intact_chain_with_exit_code_0(chained, database_url):
    result = verify_with_cli(database_url, chained, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"intact": True, "breaks": []}
    people = verify_with_cli(database_url, chained)
    assert people.exit_code == 0
    assert "intact" in people.stdout


def test_the_cli_reports_the_first_broken_link_with_exit_code_7(chained, database, database_url):
    with edited(database, chained, 6, {"action": "product.deleted"}):
        result = verify_with_cli(database_url, chained, "--json")
        people = verify_with_cli(database_url, chained)
    assert result.exit_code == 7, result.output
    report = json.loads(result.stdout)
    assert report["intact"] is False
    assert [(b["chain"], b["seq"]) for b in report["breaks"]] == [(chained.id, 6)]
    assert people.exit_code == 7
    assert "broken" in people.stdout
    with deleted(database, chained, [7, 8]):
        truncated = verify_with_cli(database_url, chained, "--json")
    assert truncated.exit_code == 7
    assert [b["seq"] for b in json.loads(truncated.stdout)["breaks"]] == [7]


# --- concurrency ----------------------------------------------------------------------


def test_concurrent_writers_leave_an_intact_gap_free_chain(vendors, database):
    vendor = vendors.create()
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(
            pool.map(
                lambda index: (
                    vendor.post(
                        "/products", json={"code": f"RACE-{index}", "name": "P", "features": []}
                    ).status_code
                ),
                range(20),
            )
        )
    assert statuses == [201] * 20
    assert breaks_of(database, vendor) == []
    with database.read() as session:
        seqs = list(
            session.scalars(
                select(AuditEvent.seq).where(AuditEvent.chain == vendor.id).order_by(AuditEvent.seq)
            )
        )
    assert seqs == list(range(1, 23))
    assert len(all_events(vendor, action="product.created")) == 20


def record_on(session: Session, chain: str, object_id: str, **documents: Any) -> None:
    record(session, operator(), "test.noted", "thing", object_id, chain=chain, **documents)


def test_the_first_events_of_a_new_chain_written_at_once_all_land_in_one_chain(database):
    """Ten transactions start a chain at the same moment; those that lose the race
    to create it are retried and land after the winner (SQLite, one writer at a
    time, has no race: there the barrier just times out)."""
    chain, together = new_id(), threading.Barrier(10, timeout=1)

    def note(index: int) -> None:
        attempts: list[int] = []

        def work(session: Session) -> None:
            record_on(session, chain, str(index))
            if not attempts:  # only the first attempt waits: all commit at once
                attempts.append(index)
                with suppress(threading.BrokenBarrierError):
                    together.wait()

        run_write(database, work)

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(note, range(10)))
    with database.read() as session:
        assert verify_chains(session, chain) == []
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.chain == chain).order_by(AuditEvent.seq)
        ).all()
    assert [e.seq for e in events] == list(range(1, 11))
    assert sorted(e.object_id for e in events) == sorted(str(i) for i in range(10))


def test_any_text_in_an_event_is_stored_as_given_and_verifies(database):
    chain = new_id()
    awkward = {
        "name": 'réglé ✓ 😀 "quoted" \\ back\tslash \u2028',
        "nested": {"z": [1, 2.5, None, True, {"b": "", "a": "ü"}], "a": {}},
        "": None,
    }
    with database.transaction() as session:
        record_on(session, chain, "1", before=awkward, after=None)
        record_on(session, chain, "2", before=None, after={"ok": False})
    with database.read() as session:
        assert verify_chains(session, chain) == []
        stored = session.scalars(
            select(AuditEvent).where(AuditEvent.chain == chain).order_by(AuditEvent.seq)
        ).all()
    assert [(e.before, e.after) for e in stored] == [(awkward, None), (None, {"ok": False})]


def test_an_order_with_more_licenses_than_one_statement_chains_keeps_the_chain_intact(
    vendors, database
):
    vendor = vendors.create()
    sku = vendor.template()["sku"]
    vendor.order([{"sku": sku}], external_order_id="SMALL-1")
    vendor.order([{"sku": sku, "quantity": MAX_EVENTS + 1}], external_order_id="LARGE")
    vendor.order([{"sku": sku}], external_order_id="SMALL-2")
    assert breaks_of(database, vendor) == []
    seqs = [e["seq"] for e in all_events(vendor)]
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(all_events(vendor, action="license.issued")) == MAX_EVENTS + 3


def test_a_session_in_a_callers_transaction_leaves_the_commit_to_the_caller(database):
    """A session joined to a transaction it did not begin appends its events but does
    not commit them: the caller's rollback takes them back, head and all."""
    chain = new_id()
    with database.transaction() as session:
        record_on(session, chain, "kept")
    with database.write_lock, database.write_engine.connect() as connection:
        outer = connection.begin()
        with Session(bind=connection) as session:
            record_on(session, chain, "rolled-back")
            session.commit()
        assert connection.scalar(select(AuditHead.seq).where(AuditHead.chain == chain)) == 2
        outer.rollback()
    with database.read() as session:
        objects = session.scalars(select(AuditEvent.object_id).where(AuditEvent.chain == chain))
        assert list(objects) == ["kept"]
        assert verify_chains(session, chain) == []
