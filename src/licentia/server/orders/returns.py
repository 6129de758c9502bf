"""Cancellations and returns from the vendor's ERP: taking back some or all of an
order's licenses.

A license not activated anywhere is withdrawn: nobody holds it, and its ticket no
longer offers it. An activated one is withdrawn or suspended as the ERP asks
(``activated``): a suspension keeps it on the device but unusable, and can be undone.
Each license goes through the license state machine, whose refusals (a license that
is already withdrawn, a suspended one asked to be suspended again) are reported per
license rather than failing the return.

A return is idempotent by the ERP's ``return_id`` (a cancellation by its order): the
same return sent again answers what the first answered and changes nothing; the same
id with other content is refused. A cancelled order takes no new lines
(``services.place_order``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor
from licentia.domain.errors import (
    ConflictError,
    IllegalTransitionError,
    NotFoundError,
    ValidationError,
)
from licentia.domain.identifiers import clean_identifier
from licentia.domain.licenses import FINAL, LicenseState
from licentia.server.audit.services import record
from licentia.server.db.base import utcnow
from licentia.server.licenses.models import License
from licentia.server.licenses.services import change_state, state_of
from licentia.server.orders.models import CANCELLATION, Order, OrderLine, OrderReturn
from licentia.server.orders.services import PROCESSING


class Activated(StrEnum):
    """What becomes of a license that is activated (on a device or in a container)."""

    WITHDRAW = "withdraw"
    SUSPEND = "suspend"


class Outcome(StrEnum):
    WITHDRAWN = "withdrawn"
    SUSPENDED = "suspended"
    REFUSED = "refused"  # the state machine did not allow it: ``code`` says why


@dataclass(frozen=True)
class ReturnLine:
    line_id: str
    quantity: int | None = None  # None: every license of the line not yet taken back


@dataclass(frozen=True)
class ReturnRequest:
    return_id: str
    activated: Activated
    lines: list[ReturnLine] = field(default_factory=list)
    license_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LicenseOutcome:
    license_id: str
    line_id: str
    state_before: str
    state: str
    outcome: Outcome
    code: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class ReturnAnswer:
    order_id: str
    return_id: str | None  # None for a cancellation
    cancellation: bool
    licenses: list[LicenseOutcome]
    replayed: bool = False


def cancel_order(
    session: Session, actor: Actor, order_id: str, activated: Activated
) -> ReturnAnswer:
    """Take back every license of the order not yet taken back, and close the order to
    new lines. Sent again, answers as the first time (``replayed``). Raises
    NotFoundError (order), ConflictError ``RETURN_CONFLICT`` (cancelled before with
    another ``activated``)."""
    return _take_back(session, actor, order_id, ReturnRequest(CANCELLATION, activated))


def return_licenses(
    session: Session, actor: Actor, order_id: str, request: ReturnRequest
) -> ReturnAnswer:
    """Take back ``quantity`` licenses of each line in ``request.lines`` (those not
    activated first) and each license in ``request.license_ids``.

    Raises ValidationError (nothing to return, a bad ``return_id``, a license named
    twice), NotFoundError (order, line, or a license not of this order), ConflictError
    (``RETURN_CONFLICT``: the return id was used with other content;
    ``RETURN_EXCEEDS_LINE``: more licenses than the line has left to return;
    ``ORDER_CANCELLED``; ``ORDER_PROCESSING``: its licenses are still being issued).
    Nothing is changed when it raises."""
    if not request.lines and not request.license_ids:
        raise ValidationError("a return names lines or licenses", field="lines")
    if len(set(request.license_ids)) != len(request.license_ids):
        raise ValidationError("a license is named twice", field="license_ids")
    return_id = clean_identifier(request.return_id, field="return_id")
    return _take_back(session, actor, order_id, replace(request, return_id=return_id))


def _take_back(
    session: Session, actor: Actor, order_id: str, request: ReturnRequest
) -> ReturnAnswer:
    order = _locked_order(session, actor, order_id)
    earlier = session.scalars(select(OrderReturn).where(OrderReturn.order_id == order.id)).all()
    fingerprint = _fingerprint(request)
    for known in earlier:
        if known.return_id == request.return_id:
            return _replay(known, fingerprint)
    if order.status == PROCESSING:
        raise ConflictError(
            "this order's licenses are still being issued: take them back once its status"
            " is completed",
            code="ORDER_PROCESSING",
        )
    cancelled = request.return_id == CANCELLATION
    if not cancelled and any(known.return_id == CANCELLATION for known in earlier):
        raise ConflictError("this order was cancelled", code="ORDER_CANCELLED")
    line_ids = {line.id: line.line_id for line in order.lines}
    taken = {item["license_id"] for known in earlier for item in _taken_back(known.answer)}
    chosen = _choose(session, order, request, taken, cancelled=cancelled)
    outcomes = [
        _apply(session, actor, license_, line_ids, request.activated) for license_ in chosen
    ]
    answer = ReturnAnswer(order.id, None if cancelled else request.return_id, cancelled, outcomes)
    _keep(session, actor, order, request, fingerprint, answer)
    return answer


def taken_back(session: Session, actor: Actor, order_ids: list[str]) -> dict[str, str]:
    """Of ``order_ids``, those the ERP took licenses back from: ``cancelled``, or
    ``returned`` (one or more returns, not cancelled)."""
    rows = session.execute(
        select(OrderReturn.order_id, OrderReturn.return_id).where(
            OrderReturn.vendor_id == actor.vendor_id, OrderReturn.order_id.in_(order_ids)
        )
    ).all()
    states: dict[str, str] = {}
    for order_id, return_id in rows:
        if return_id == CANCELLATION:
            states[order_id] = "cancelled"
        else:
            states.setdefault(order_id, "returned")
    return states


def _locked_order(session: Session, actor: Actor, order_id: str) -> Order:
    """The order, locked: two returns of one order queue, and the second sees the first."""
    assert actor.vendor_id is not None, "order calls need a vendor-scoped actor"
    order = session.scalar(
        select(Order)
        .where(Order.id == order_id, Order.vendor_id == actor.vendor_id)
        .with_for_update()
    )
    if order is None:
        raise NotFoundError("order", order_id)
    return order


def _choose(
    session: Session, order: Order, request: ReturnRequest, taken: set[str], *, cancelled: bool
) -> list[License]:
    """The licenses to take back, in the order they are reported."""
    by_line = {line.line_id: line for line in order.lines}
    line_pks = [line.id for line in order.lines]
    licenses = session.scalars(
        select(License).where(License.order_line_id.in_(line_pks)).order_by(License.id)
    ).all()
    returnable = [
        license_
        for license_ in licenses
        if license_.id not in taken and LicenseState(license_.state) not in FINAL
    ]
    if cancelled:
        return sorted(returnable, key=_preference)
    chosen: list[License] = []
    for index, line in enumerate(request.lines):
        chosen += _of_line(returnable, by_line, line, index)
    by_id = {license_.id: license_ for license_ in licenses}
    for index, license_id in enumerate(request.license_ids):
        if license_id not in by_id:
            raise NotFoundError("license", f"{license_id} in this order")
        if by_id[license_id] in chosen:
            raise ValidationError(
                "this license is also returned by its line", field=f"license_ids[{index}]"
            )
        chosen.append(by_id[license_id])
    return chosen


def _of_line(
    returnable: list[License], by_line: dict[str, OrderLine], line: ReturnLine, index: int
) -> list[License]:
    ordered = by_line.get(line.line_id)
    if ordered is None:
        raise NotFoundError("order line", line.line_id)
    left = sorted((x for x in returnable if x.order_line_id == ordered.id), key=_preference)
    wanted = len(left) if line.quantity is None else line.quantity
    if wanted > len(left):
        raise ConflictError(
            f"line {line.line_id!r} has {len(left)} license(s) left to return, not {wanted}",
            code="RETURN_EXCEEDS_LINE",
            field=f"lines[{index}].quantity",
            returnable=len(left),
        )
    return left[:wanted]


def _preference(license_: License) -> tuple[int, str]:
    """Licenses nobody uses first: a return of two out of five should not take away
    the three a customer has installed when two lie unused."""
    rank = {LicenseState.ACTIVATED: 2, LicenseState.SUSPENDED: 1}
    return rank.get(LicenseState(license_.state), 0), license_.id


def _apply(
    session: Session,
    actor: Actor,
    license_: License,
    line_ids: dict[str, str],
    activated: Activated,
) -> LicenseOutcome:
    now = utcnow()
    before = state_of(license_, now).value
    line_id = line_ids[license_.order_line_id or ""]
    action = "withdraw"
    if license_.state == LicenseState.ACTIVATED and activated is Activated.SUSPEND:
        action = "suspend"
    try:
        changed = change_state(session, actor, license_.id, action)
    except IllegalTransitionError as error:
        return LicenseOutcome(
            license_.id, line_id, before, before, Outcome.REFUSED, error.code, error.message
        )
    outcome = Outcome.SUSPENDED if action == "suspend" else Outcome.WITHDRAWN
    return LicenseOutcome(license_.id, line_id, before, state_of(changed, now).value, outcome)


def _keep(
    session: Session,
    actor: Actor,
    order: Order,
    request: ReturnRequest,
    fingerprint: str,
    answer: ReturnAnswer,
) -> None:
    assert actor.vendor_id is not None
    stored = {**asdict(answer), "replayed": False}
    session.add(
        OrderReturn(
            vendor_id=actor.vendor_id,
            order_id=order.id,
            return_id=request.return_id,
            request_hash=fingerprint,
            answer=stored,
        )
    )
    session.flush()  # the unique (order, return id) decides a race here, not at commit
    counts = {kind.value: 0 for kind in Outcome}
    for item in answer.licenses:
        counts[item.outcome.value] += 1
    action = "order.cancelled" if answer.cancellation else "order.returned"
    # also the order.cancelled / order.returned event's data (docs/webhook-events/)
    after = {
        "external_order_id": order.external_order_id,
        "return_id": answer.return_id,
        "activated": request.activated.value,
        **counts,
    }
    record(session, actor, action, "order", order.id, after=after)


def _replay(known: OrderReturn, fingerprint: str) -> ReturnAnswer:
    if known.request_hash != fingerprint:
        what = "cancelled" if known.return_id == CANCELLATION else "returned under this id"
        raise ConflictError(
            f"this order was {what} with other content",
            code="RETURN_CONFLICT",
            field="activated" if known.return_id == CANCELLATION else "return_id",
        )
    stored = dict(known.answer)
    licenses = [
        LicenseOutcome(**{**item, "outcome": Outcome(item["outcome"])})
        for item in stored.pop("licenses")
    ]
    return ReturnAnswer(**{**stored, "licenses": licenses, "replayed": True})


def _taken_back(answer: dict[str, Any]) -> list[dict[str, Any]]:
    licenses: list[dict[str, Any]] = answer.get("licenses", [])
    return [item for item in licenses if item["outcome"] != Outcome.REFUSED]


def _fingerprint(request: ReturnRequest) -> str:
    canonical = json.dumps(asdict(request), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
