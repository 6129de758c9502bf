"""Licenses through the API: the vendor's actions, their audit trail, and the tickets
that carry them.

Each test gets fresh vendors and runs on SQLite and PostgreSQL. Expiry is derived from
``valid_until``; where a test needs a license that has already expired, it issues one
from a template whose fixed end date lies in the past, or moves ``valid_until`` in the
database (the clock cannot be moved through the API).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test
from sqlalchemy import text, update

from licentia.domain.errors import ConfigurationError
from licentia.formats.tickets import check_symbol, normalize_ticket_code
from licentia.server.keys.master import MasterKey
from licentia.server.licenses.models import License
from licentia.server.orders.models import Ticket
from tests.factories import VendorHandle

TIME_LIMITED = {"validity": {"kind": "days_from_issue", "days": 30}}
LIVE = {"available", "activated", "returned"}
# Which vendor action the API allows from which state (activation is not a vendor action).
ALLOWED = {
    "suspend": LIVE | {"expired"},
    "resume": {"suspended"},
    "withdraw": LIVE | {"expired", "suspended"},
}


def act(vendor: VendorHandle, license_id: str, action: str, **body: Any):
    return vendor.post(f"/licenses/{license_id}/actions/{action}", json=body)


def audit_of(vendor: VendorHandle, license_id: str) -> list[dict[str, Any]]:
    page = vendor.ok("GET", "/audit-events", params={"object_id": license_id, "limit": 200})
    return page["items"]


def move_valid_until(vendor: VendorHandle, license_id: str, valid_until: datetime) -> None:
    with vendor.database.transaction() as session:
        session.execute(
            update(License).where(License.id == license_id).values(valid_until=valid_until)
        )


def assert_illegal(response, current_state: str) -> None:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "ILLEGAL_TRANSITION"
    assert response.json()["current_state"] == current_state


# --- suspend, resume, withdraw ------------------------------------------------------------


def test_suspend_then_resume_returns_the_license_to_where_it_was(vendors):
    vendor = vendors.create()
    license_ = vendor.license()
    suspended = act(vendor, license_["id"], "suspend").json()
    assert suspended["state"] == "suspended"
    resumed = act(vendor, license_["id"], "resume").json()
    assert resumed["state"] == "available"
    assert [license_["version"], suspended["version"], resumed["version"]] == [1, 2, 3]


def test_an_expired_license_suspended_and_resumed_is_expired_again(vendors):
    vendor = vendors.create()
    license_ = vendor.expired_license()
    assert license_["state"] == "expired"
    assert act(vendor, license_["id"], "suspend").json()["state"] == "suspended"
    assert act(vendor, license_["id"], "resume").json()["state"] == "expired"


def test_resuming_a_license_that_is_not_suspended_names_its_current_state(vendors):
    vendor = vendors.create()
    license_ = vendor.license()
    assert_illegal(act(vendor, license_["id"], "resume"), "available")
    assert vendor.ok("GET", f"/licenses/{license_['id']}")["version"] == 1


@pytest.mark.parametrize("ending", ["withdraw", "replace"])
def test_a_withdrawn_or_replaced_license_refuses_every_further_action(vendors, ending):
    vendor = vendors.create()
    license_ = vendor.license(TIME_LIMITED)
    assert act(vendor, license_["id"], ending).status_code == 200
    final = {"withdraw": "withdrawn", "replace": "replaced"}[ending]
    for action, body in [
        ("suspend", {}),
        ("resume", {}),
        ("withdraw", {}),
        ("replace", {}),
        ("extend", {"days": 5}),
    ]:
        assert_illegal(act(vendor, license_["id"], action, **body), final)
    assert vendor.ok("GET", f"/licenses/{license_['id']}")["state"] == final


def test_activation_is_not_a_vendor_action(vendors):
    vendor = vendors.create()
    license_ = vendor.license()
    response = act(vendor, license_["id"], "activate")
    assert response.status_code == 422
    assert response.json()["field"] == "action"
    assert vendor.ok("GET", f"/licenses/{license_['id']}")["state"] == "available"


def test_another_vendors_license_cannot_be_acted_on(vendors):
    vendor, other = vendors.create(), vendors.create()
    license_ = vendor.license(TIME_LIMITED)
    for action, body in [("suspend", {}), ("withdraw", {}), ("extend", {"days": 1})]:
        response = act(other, license_["id"], action, **body)
        assert response.status_code == 404, action
    assert vendor.ok("GET", f"/licenses/{license_['id']}")["version"] == 1


# --- extend --------------------------------------------------------------------------


def test_extending_by_days_moves_the_end_and_to_a_date_sets_it(vendors):
    vendor = vendors.create()
    license_ = vendor.license(TIME_LIMITED)
    end = datetime.fromisoformat(license_["valid_until"])
    by_days = act(vendor, license_["id"], "extend", days=10).json()
    assert datetime.fromisoformat(by_days["valid_until"]) == end + timedelta(days=10)
    target = end + timedelta(days=365)
    to_date = act(vendor, license_["id"], "extend", until=target.isoformat()).json()
    assert datetime.fromisoformat(to_date["valid_until"]) == target
    assert to_date["version"] == 3


def test_extending_an_expired_license_makes_it_live_again(vendors):
    vendor = vendors.create()
    license_ = vendor.expired_license()
    before = datetime.now(UTC)
    revived = act(vendor, license_["id"], "extend", days=7).json()
    assert revived["state"] == "available"
    assert datetime.fromisoformat(revived["valid_until"]) >= before + timedelta(days=7)


def test_a_perpetual_license_cannot_be_extended(vendors):
    vendor = vendors.create()
    license_ = vendor.license()
    response = act(vendor, license_["id"], "extend", days=10)
    assert response.status_code == 409
    assert response.json()["code"] == "NOT_TIME_LIMITED"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "until"),
        ({"days": 3, "until": "2999-01-01T00:00:00Z"}, "until"),
        ({"days": 0}, "days"),
        ({"days": -4}, "days"),
        ({"until": "2001-01-01T00:00:00Z"}, "until"),
        ({"until": "shortly"}, "until"),
        ({"days": "many"}, "days"),
    ],
)
def test_a_bad_extension_is_refused_with_the_field_named(vendors, body, field):
    vendor = vendors.create()
    license_ = vendor.license(TIME_LIMITED)
    response = act(vendor, license_["id"], "extend", **body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert vendor.ok("GET", f"/licenses/{license_['id']}")["valid_until"] == license_["valid_until"]


def test_an_extension_cannot_shorten_a_license(vendors):
    vendor = vendors.create()
    license_ = vendor.license(TIME_LIMITED)
    sooner = datetime.fromisoformat(license_["valid_until"]) - timedelta(days=1)
    response = act(vendor, license_["id"], "extend", until=sooner.isoformat())
    assert response.status_code == 422
    assert response.json()["field"] == "until"


# --- replace -------------------------------------------------------------------------


def test_replacing_issues_a_successor_from_the_same_template_on_the_same_ticket(vendors):
    vendor = vendors.create()
    license_ = vendor.license(TIME_LIMITED)
    successor = vendor.ok("POST", f"/licenses/{license_['id']}/actions/replace")  # no body
    old = vendor.ok("GET", f"/licenses/{license_['id']}")
    assert (old["state"], old["replaced_by_id"]) == ("replaced", successor["id"])
    assert successor["id"] != license_["id"]
    assert successor["state"] == "available"
    same = ("ticket_id", "template_id", "product_code", "features")
    assert {k: successor[k] for k in same} == {k: license_[k] for k in same}
    ticket = vendor.ok("GET", f"/tickets/{license_['ticket_id']}")
    assert set(ticket["license_ids"]) == {license_["id"], successor["id"]}


def test_replacing_with_a_sku_upgrades_to_that_template(vendors):
    vendor = vendors.create()
    license_ = vendor.license()
    upgrade = vendor.template(product=vendor.product(("edit", "export", "raw")))
    successor = act(vendor, license_["id"], "replace", sku=upgrade["sku"]).json()
    assert successor["template_id"] == upgrade["id"]
    assert successor["features"] == ["edit", "export", "raw"]
    assert successor["ticket_id"] == license_["ticket_id"]


def test_replacing_with_an_unknown_sku_changes_nothing(vendors):
    vendor, other = vendors.create(), vendors.create()
    license_ = vendor.license()
    foreign_sku = other.template(sku="FOREIGN-ONLY")["sku"]
    for sku in ("NO-SUCH-SKU", foreign_sku):
        assert act(vendor, license_["id"], "replace", sku=sku).status_code == 404
    assert vendor.ok("GET", f"/licenses/{license_['id']}")["state"] == "available"


# --- the audit trail ----------------------------------------------------------------------


def test_every_change_is_audited_with_the_state_before_and_after(vendors):
    vendor = vendors.create()
    license_ = vendor.license(TIME_LIMITED)
    lid = license_["id"]
    act(vendor, lid, "suspend")
    act(vendor, lid, "extend", days=3)
    act(vendor, lid, "resume")
    successor = act(vendor, lid, "replace").json()
    trail = [
        (e["action"], (e["before"] or {}).get("state"), e["after"]["state"])
        for e in audit_of(vendor, lid)
    ]
    assert trail == [
        ("license.issued", None, "available"),
        ("license.suspended", "available", "suspended"),
        ("license.extended", "suspended", "suspended"),
        ("license.resumed", "suspended", "available"),
        ("license.replaced", "available", "replaced"),
    ]
    events = audit_of(vendor, lid)
    assert [e["after"]["version"] for e in events] == [1, 2, 3, 4, 5]
    extended = events[2]
    assert extended["after"]["valid_until"] > extended["before"]["valid_until"]
    assert events[-1]["after"]["replaced_by_id"] == successor["id"]
    assert [e["action"] for e in audit_of(vendor, successor["id"])] == ["license.issued"]


def test_a_refused_action_changes_nothing_and_records_nothing(vendors):
    vendor = vendors.create()
    license_ = vendor.license()
    act(vendor, license_["id"], "withdraw")
    assert act(vendor, license_["id"], "suspend").status_code == 409
    assert [e["action"] for e in audit_of(vendor, license_["id"])] == [
        "license.issued",
        "license.withdrawn",
    ]


# --- listing by state -------------------------------------------------------------------


def test_the_list_filters_by_state_including_the_derived_expired_state(vendors):
    vendor = vendors.create()
    available = vendor.license(TIME_LIMITED)["id"]
    expired = vendor.expired_license()["id"]
    lapsed = vendor.license(TIME_LIMITED)["id"]
    move_valid_until(vendor, lapsed, datetime.now(UTC) - timedelta(minutes=1))
    suspended = vendor.license()["id"]
    act(vendor, suspended, "suspend")
    withdrawn = vendor.license()["id"]
    act(vendor, withdrawn, "withdraw")

    def listed(state: str) -> set[str]:
        return {x["id"] for x in vendor.ok("GET", "/licenses", params={"state": state})["items"]}

    assert listed("available") == {available}
    assert listed("expired") == {expired, lapsed}
    assert listed("suspended") == {suspended}
    assert listed("withdrawn") == {withdrawn}
    assert listed("replaced") == set()
    assert vendor.ok("GET", f"/licenses/{lapsed}")["state"] == "expired"


# --- any sequence of actions, through the API -------------------------------------------


def test_any_sequence_of_vendor_actions_follows_the_state_table(vendors):
    vendor = vendors.create()

    class ThroughTheApi(RuleBasedStateMachine):
        """The model: the stored state, whether validity ran out, and version."""

        @initialize()
        def issue(self) -> None:
            self.license = vendor.license(TIME_LIMITED)
            self.stored, self.lapsed, self.version = "available", False, 1
            self.before_suspend = "available"

        @property
        def shown(self) -> str:
            return "expired" if self.stored in LIVE and self.lapsed else self.stored

        def expect(self, response) -> None:
            assert response.status_code == 200, response.text
            self.version += 1
            assert (response.json()["state"], response.json()["version"]) == (
                self.shown,
                self.version,
            )

        @rule(action=st.sampled_from(sorted(ALLOWED)))
        def vendor_acts(self, action: str) -> None:
            response = act(vendor, self.license["id"], action)
            if self.shown not in ALLOWED[action]:
                assert_illegal(response, self.shown)
                return
            if action == "suspend":
                self.before_suspend, self.stored = self.stored, "suspended"
            else:
                self.stored = self.before_suspend if action == "resume" else "withdrawn"
            self.expect(response)

        @rule()
        def validity_runs_out(self) -> None:
            move_valid_until(vendor, self.license["id"], datetime.now(UTC) - timedelta(hours=1))
            self.lapsed = True

        @rule(days=st.integers(1, 60))
        def vendor_extends(self, days: int) -> None:
            response = act(vendor, self.license["id"], "extend", days=days)
            if self.stored == "withdrawn":
                assert_illegal(response, "withdrawn")
                return
            self.lapsed = False
            self.expect(response)

    run_state_machine_as_test(
        ThroughTheApi,
        settings=settings(
            max_examples=12,
            stateful_step_count=8,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


# --- tickets ------------------------------------------------------------------------------


def ordered_ticket(vendor: VendorHandle) -> tuple[str, str]:
    order = vendor.order()
    return order["ticket_id"], order["ticket_code"]


def test_a_ticket_is_found_by_its_code_however_it_is_typed(vendors):
    vendor = vendors.create()
    ticket_id, code = ordered_ticket(vendor)
    for typed in (code, code.lower(), code.replace("-", " "), code.replace("-", "")):
        found = vendor.post("/tickets/lookup", json={"code": typed})
        assert found.status_code == 200, found.text
        assert found.json()["id"] == ticket_id


def test_a_mistyped_code_is_refused_before_any_lookup(vendors):
    vendor = vendors.create()
    _, code = ordered_ticket(vendor)
    wrong = "1" if code[0] != "1" else "2"
    response = vendor.post("/tickets/lookup", json={"code": wrong + code[1:]})
    assert response.status_code == 422
    assert response.json()["code"] == "TICKET_CODE_INVALID"
    assert response.json()["field"] == "code"


def test_a_well_formed_code_that_was_never_issued_is_not_found(vendors):
    vendor, other = vendors.create(), vendors.create()
    _, others_code = ordered_ticket(other)
    data = "ABCDEFGHJKMNPQRSTVWXYZ01"
    unknown = normalize_ticket_code(data + check_symbol(data))
    for code in (unknown, others_code):
        response = vendor.post("/tickets/lookup", json={"code": code})
        assert response.status_code == 404
        assert response.json()["code"] == "TICKET_NOT_FOUND"


def test_revealing_a_code_again_gives_the_same_code_and_is_audited(vendors):
    vendor = vendors.create()
    ticket_id, code = ordered_ticket(vendor)
    revealed = vendor.ok("POST", f"/tickets/{ticket_id}/code")
    assert revealed == {"id": ticket_id, "code": code}
    events = vendor.ok(
        "GET", "/audit-events", params={"object_id": ticket_id, "action": "ticket.code_revealed"}
    )["items"]
    assert len(events) == 1
    assert events[0]["actor_type"] == "api_key"
    assert code not in str(events[0])


def test_a_database_leak_alone_does_not_reveal_ticket_codes(vendors, master):
    vendor = vendors.create()
    ticket_id, code = ordered_ticket(vendor)
    with vendor.database.read() as session:
        row = session.execute(text("SELECT * FROM tickets WHERE id = :id"), {"id": ticket_id}).one()
        stored = session.get_one(Ticket, ticket_id)
    leaked = repr(tuple(row)).encode() + b"".join(
        bytes(v) for v in row if isinstance(v, bytes | memoryview)
    )
    for form in (code, code.replace("-", "")):
        assert form.encode() not in leaked
        # not an unkeyed hash either: without the master key it cannot be recomputed
        assert hashlib.sha256(form.encode()).hexdigest() != stored.code_hash
    assert stored.code_hash == master.keyed_hash(code, purpose="ticket-lookup")
    another_master = MasterKey(b"\x07" * 32)
    assert another_master.keyed_hash(code, purpose="ticket-lookup") != stored.code_hash
    with pytest.raises(ConfigurationError):
        another_master.decrypt(stored.code_encrypted, purpose="ticket-code")


def test_the_ticket_code_appears_in_no_table_even_with_an_idempotency_key(vendors):
    vendor = vendors.create()
    sku = vendor.template()["sku"]
    placed = vendor.ok(
        "POST",
        "/orders",
        json={"external_order_id": "ERP-LEAK", "lines": [{"sku": sku}]},
        headers={"Idempotency-Key": "leak-check-1"},
    )
    code = placed["ticket_code"]
    replayed = vendor.post(
        "/orders",
        json={"external_order_id": "ERP-LEAK", "lines": [{"sku": sku}]},
        headers={"Idempotency-Key": "leak-check-1"},
    )
    assert (replayed.status_code, replayed.json()) == (201, placed)  # the sealed answer
    with vendor.database.read() as session:
        for table, owner in VENDOR_TABLES:
            query = text(f"SELECT * FROM {table} WHERE {owner} = :vendor")  # noqa: S608
            rows = repr(session.execute(query, {"vendor": vendor.id}).all())
            assert rows != "[]", f"{table} holds nothing of this vendor"
            assert code not in rows, table
            assert code.replace("-", "") not in rows, table


VENDOR_TABLES = [
    ("tickets", "vendor_id"),
    ("orders", "vendor_id"),
    ("licenses", "vendor_id"),
    ("idempotency_records", "vendor_id"),
    ("audit_events", "chain"),
]
