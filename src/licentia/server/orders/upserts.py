"""Customers kept in step with the vendor's ERP or CRM, by the external id it knows
them by: created the first time, updated when a field changed, left alone (and not
audited) when nothing did, so that sending the same customer again is harmless."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor
from licentia.domain.emails import check_address
from licentia.domain.errors import AlreadyExistsError, ValidationError
from licentia.domain.identifiers import clean_identifier
from licentia.server.audit.services import record
from licentia.server.catalog.services import check_name
from licentia.server.orders.models import Customer
from licentia.server.orders.services import create_customer, customer_view

_FIELDS = ("name", "email")


@dataclass(frozen=True)
class Upserted:
    customer: Customer
    created: bool
    changed: bool  # False when the customer was known with these very values


def upsert_customer(
    session: Session, actor: Actor, external_id: str, fields: dict[str, Any]
) -> Upserted:
    """The customer with ``external_id``, created with ``fields`` (``name``, and
    ``email`` if given) or updated to them. A field left out of ``fields`` keeps its
    value; ``email: None`` removes the address.

    Raises IdentifierInvalidError (``external_id``), ValidationError (no ``name`` for a
    new customer, a bad name, ``EMAIL_INVALID``). Two requests creating one customer
    race on its unique external id; the loser's IntegrityError makes the unit of work
    retry and update the winner's row instead.
    """
    external_id = clean_identifier(external_id, field="external_id")
    if "name" in fields:
        if fields["name"] is None:
            raise ValidationError("a customer's name cannot be removed", field="name")
        check_name(fields["name"])
    if fields.get("email") is not None:
        fields = {**fields, "email": check_address(fields["email"], field="email")}
    known = _locked(session, actor, external_id)
    if known is None:
        if "name" not in fields:
            raise ValidationError("a new customer needs a name", field="name")
        try:
            created = create_customer(
                session,
                actor,
                name=fields["name"],
                external_id=external_id,
                email=fields.get("email"),
            )
            return Upserted(created, created=True, changed=True)
        except AlreadyExistsError:
            # A concurrent request created it since our first read (PostgreSQL's
            # READ COMMITTED shows it to the next statement): update that one.
            known = _locked(session, actor, external_id)
            assert known is not None
    changes = {
        name: fields[name]
        for name in _FIELDS
        if name in fields and fields[name] != getattr(known, name)
    }
    if changes:
        before = customer_view(known)
        for name, value in changes.items():
            setattr(known, name, value)
        session.flush()
        after = customer_view(known)
        record(session, actor, "customer.updated", "customer", known.id, before=before, after=after)
    return Upserted(known, created=False, changed=bool(changes))


def _locked(session: Session, actor: Actor, external_id: str) -> Customer | None:
    return session.scalar(
        select(Customer)
        .where(Customer.vendor_id == _vendor(actor), Customer.external_id == external_id)
        .with_for_update()
    )


def _vendor(actor: Actor) -> str:
    assert actor.vendor_id is not None, "customer calls need a vendor-scoped actor"
    return actor.vendor_id
