"""Console: licenses. A list filtered by state, product, customer and device (the
filters stay in the address, pages follow a cursor), a license's detail with its
history and its subscription, and the vendor's actions on it: extend, suspend, resume,
withdraw, replace, cancel the subscription.
The same use cases as ``api/routes/licenses.py``; a refusal of the state machine
(``ILLEGAL_TRANSITION``, naming the current state) is shown above the actions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from licentia.domain.actors import Actor
from licentia.domain.errors import LicentiaError, NotFoundError, ValidationError
from licentia.domain.licenses import LicenseState, allowed_actions
from licentia.server.db.base import utcnow
from licentia.server.db.pagination import paginate_rows
from licentia.server.licenses import services as licenses
from licentia.server.licenses.models import License
from licentia.server.subscriptions import services as subscriptions
from licentia.server.web import units
from licentia.server.web.console.confirmations import (
    Confirmation,
    check_understood,
    confirmation_page,
)
from licentia.server.web.console.frame import (
    filters_of,
    history_of,
    limit_of,
    next_page,
    problems_of,
    render,
    require_staff,
)
from licentia.server.web.console.staff import gettext_of
from licentia.server.web.errors import Problems, status_of
from licentia.server.web.forms import FORM_CHECKS

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=FORM_CHECKS)
FILTERS = ("state", "product", "customer", "device")
STATES = tuple(state.value for state in LicenseState)
Action = Callable[[units.DbSession, Actor], License]
SOURCE = "console"  # the source of a subscription cancelled on these pages
# What an action's redirect says was done (``?done=``): the page names it, translated,
# so an address may carry only these (any other text would be shown as the page's own).
OUTCOMES = ("extended", "replaced", "subscription_cancelled", "suspended", "resumed", "withdrawn")


@router.get("/licenses", response_class=HTMLResponse)
def license_list(request: Request, cursor: str | None = None) -> Response:
    actor = require_staff(request, "licenses:read")
    chosen = filters_of(request, FILTERS)
    filters = licenses.LicenseFilter(
        customer_id=chosen.get("customer"),
        state=chosen.get("state"),
        product_code=chosen.get("product"),
        device_id=chosen.get("device"),
    )
    problems, items, more = Problems(), [], None
    try:
        query, limit = licenses.license_list_query(actor, filters), limit_of(request)
        page = units.read(
            request, lambda s: paginate_rows(s, query, License.id, cursor=cursor, limit=limit)
        )
        items, more = list(page.items), next_page(request, page.next_cursor)
    except ValidationError as error:
        problems = problems_of(request, error)
    now = utcnow()
    return render(
        request,
        actor,
        "console/licenses.html",
        status_code=422 if problems else 200,
        items=items,
        filters=chosen,
        states=STATES,
        next_page=more,
        problems=problems,
        state_of=lambda item: licenses.state_of(item, now).value,
    )


def _detail(
    request: Request,
    license_id: str,
    *,
    problems: Problems,
    status_code: int = 200,
    typed: dict[str, str] | None = None,
) -> Response:
    actor = require_staff(request, "licenses:read")

    def work(session: units.DbSession) -> dict[str, Any]:
        license_ = licenses.get_license(session, actor, license_id)
        return {"item": license_, "history": history_of(session, actor, "license", license_id)}

    found = units.read(request, work)
    now = utcnow()
    state = licenses.state_of(found["item"], now)
    return render(
        request,
        actor,
        "console/license.html",
        status_code=status_code,
        state=state.value,
        allowed=allowed_actions(state),
        problems=problems,
        done=_outcome(request.query_params.get("done")),
        subscription=licenses.subscription_of(found["item"], now),
        typed=typed or {},
        **found,
    )


def _outcome(done: str | None) -> str | None:
    return done if done in OUTCOMES else None


@router.get("/licenses/{license_id}", response_class=HTMLResponse)
def license_detail(license_id: str, request: Request) -> Response:
    return _detail(request, license_id, problems=Problems())


def _act(
    request: Request,
    license_id: str,
    done: str,
    action: Action,
    typed: dict[str, str] | None = None,
) -> Response:
    """Run ``action``; on success show the license it answers (a successor after a
    replacement), else this license with the refusal above its actions or next to the
    field it names (``typed``: what the form held, shown again)."""
    actor = require_staff(request, "licenses:write")
    try:
        changed = units.write(request, lambda s: action(s, actor).id)
    except LicentiaError as error:
        problems = problems_of(request, error)
        status = status_of(error)
        return _detail(request, license_id, problems=problems, status_code=status, typed=typed)
    return RedirectResponse(f"/console/licenses/{changed}?done={done}", status_code=303)


def _until(text: str) -> datetime | None:
    """A day of the form as the end of that day, UTC."""
    if not text.strip():
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError as error:
        raise ValidationError("write a date as YYYY-MM-DD", field="until") from error
    return datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=UTC)


def _days(text: str) -> int | None:
    if not text.strip():
        return None
    try:
        return int(text.strip())
    except ValueError as error:
        raise ValidationError("write a whole number of days", field="days") from error


@router.post("/licenses/{license_id}/extend", response_class=HTMLResponse)
def extend(
    license_id: str, request: Request, until: str = Form(""), days: str = Form("")
) -> Response:
    def action(session: units.DbSession, actor: Actor) -> License:
        end, more = _until(until), _days(days)
        return licenses.extend_license(session, actor, license_id, until=end, days=more)

    return _act(request, license_id, "extended", action)


@router.post("/licenses/{license_id}/replace", response_class=HTMLResponse)
def replace(license_id: str, request: Request, sku: str = Form("")) -> Response:
    def action(session: units.DbSession, actor: Actor) -> License:
        try:
            return licenses.replace_license(session, actor, license_id, sku=sku.strip() or None)
        except NotFoundError as error:
            if error.details.get("kind") != "template":
                raise
            # The form's field, as an order line or a shop mapping names an unknown SKU.
            message = f"no template with SKU {sku.strip()!r}"
            raise ValidationError(message, field="sku", code="UNKNOWN_SKU") from error

    return _act(request, license_id, "replaced", action, typed={"sku": sku})


@router.post("/licenses/{license_id}/subscription/cancel", response_class=HTMLResponse)
def cancel_subscription(license_id: str, request: Request) -> Response:
    def action(session: units.DbSession, actor: Actor) -> License:
        return subscriptions.cancel_subscription(session, actor, license_id, source=SOURCE)

    return _act(request, license_id, "subscription_cancelled", action)


def _withdrawal(request: Request, item: License) -> Confirmation:
    _ = gettext_of(request)
    return Confirmation(
        heading=_("Withdraw this license?"),
        facts=((_("License"), item.id), (_("Product"), item.product_code)),
        consequence=_(
            "Withdrawing is final: the license stops working at its next check, on its"
            " computer, in its cloud container or seat pool, and it can never be resumed"
            " or activated again."
        ),
        understand=_("I understand: a withdrawn license cannot be brought back."),
        action=f"/console/licenses/{item.id}/withdraw",
        button=_("Withdraw the license for good"),
        back=f"/console/licenses/{item.id}",
    )


@router.get("/licenses/{license_id}/withdraw", response_class=HTMLResponse)
def confirm_withdrawal(license_id: str, request: Request) -> Response:
    """The step before a withdrawal: it is final."""
    actor = require_staff(request, "licenses:write")
    item = units.read(request, lambda s: licenses.get_license(s, actor, license_id))
    return confirmation_page(request, actor, _withdrawal(request, item))


@router.post("/licenses/{license_id}/withdraw", response_class=HTMLResponse)
def withdraw(license_id: str, request: Request, understood: str = Form("")) -> Response:
    """The withdrawal, once the box was ticked (else the confirmation again)."""
    actor = require_staff(request, "licenses:write")
    try:
        check_understood(understood)
    except ValidationError as error:
        item = units.read(request, lambda s: licenses.get_license(s, actor, license_id))
        problems = problems_of(request, error)
        return confirmation_page(
            request, actor, _withdrawal(request, item), problems=problems, status_code=422
        )

    def action(session: units.DbSession, actor: Actor) -> License:
        return licenses.change_state(session, actor, license_id, "withdraw")

    return _act(request, license_id, "withdrawn", action)


@router.post("/licenses/{license_id}/{verb}", response_class=HTMLResponse)
def change_state(license_id: str, verb: Literal["suspend", "resume"], request: Request) -> Response:
    """Registered last, so that the other actions match their own routes."""

    def action(session: units.DbSession, actor: Actor) -> License:
        return licenses.change_state(session, actor, license_id, verb)

    done = {"suspend": "suspended", "resume": "resumed"}[verb]
    return _act(request, license_id, done, action)
