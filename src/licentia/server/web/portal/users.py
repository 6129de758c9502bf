"""The customer admin's colleagues: the list (with who is locked out after failed
logins, and an unlock), removing one (after a page that asks first), an invitation
by e-mail link, the page where an invited
colleague sets a password, and the company's licenses and seats named to its users
(``customer_users.assignments``, as the API's ``/licenses/{id}/assignments``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from licentia.domain.errors import LicentiaError, PermissionDeniedError
from licentia.server.customer_users.assignments import (
    NamedLicense,
    assign_license,
    named_licenses,
    unassign_license,
)
from licentia.server.customer_users.invitations import (
    actor_of,
    invitation_mail,
    invite_colleague,
    invited_user,
    removable_colleague,
    remove_colleague,
    set_password_by_link,
)
from licentia.server.customer_users.models import CustomerUser
from licentia.server.customer_users.services import CustomerIdentity, customer_users
from licentia.server.db.base import utcnow
from licentia.server.logins import locks
from licentia.server.logins.services import CUSTOMER, ThrottlePolicy
from licentia.server.notifications.mail_jobs import enqueue_mail
from licentia.server.rate_limits.families import Family, limited
from licentia.server.web import units
from licentia.server.web.errors import Problems, problem_of, status_of
from licentia.server.web.forms import FORM_CHECKS
from licentia.server.web.portal.pages import Storefront, storefront
from licentia.server.web.rendering import pages_of
from licentia.server.web.resets import check_typed_twice, password_field

router = APIRouter(prefix="/portal", include_in_schema=False, dependencies=FORM_CHECKS)


def _render(request: Request, front: Storefront, template: str, **values: Any) -> Response:
    values.setdefault("problems", Problems())
    return pages_of(request).render(
        request, template, brand=front.brand, front=front, customer=front.customer, **values
    )


def _admin(request: Request, slug: str) -> Storefront | Response:
    front = storefront(request, slug)
    if front.customer is None:
        return RedirectResponse(f"/portal/{slug}/login", status_code=303)
    if not front.customer.is_admin:
        raise PermissionDeniedError("only the customer admin manages the company's users")
    return front


def _users_page(request: Request, front: Storefront, **values: Any) -> Response:
    who = front.customer
    assert who is not None
    policy, now = ThrottlePolicy.of(units.backend_of(request).settings), utcnow()

    def work(
        session: units.DbSession,
    ) -> tuple[list[CustomerUser], list[NamedLicense], dict[str, Any]]:
        people = customer_users(session, who.vendor_id, who.customer_id)
        emails = [person.email for person in people]
        logins = locks.lock_states(session, CUSTOMER, who.vendor_id, emails, policy, now)
        return people, named_licenses(session, who.vendor_id, who.customer_id), logins

    people, named, logins = units.read(request, work)
    values.setdefault("email", "")
    return _render(
        request,
        front,
        "portal/users.html",
        people=people,
        named=named,
        logins=logins,
        now=now,
        **values,
    )


@router.get("/{slug}/users", response_class=HTMLResponse)
def users(slug: str, request: Request) -> Response:
    front = _admin(request, slug)
    return front if isinstance(front, Response) else _users_page(request, front)


@router.post("/{slug}/users", response_class=HTMLResponse)
def invite(slug: str, request: Request, email: str = Form("")) -> Response:
    """Invite a colleague: the account, then the mail with the link."""
    front = _admin(request, slug)
    if isinstance(front, Response):
        return front
    who, backend = front.customer, units.backend_of(request)
    assert who is not None
    templates = request.app.state.mail_templates

    def work(session: units.DbSession) -> Any:
        invited = invite_colleague(session, who, email=email)
        url = backend.settings.public_url
        mail = invitation_mail(session, templates, who, invited, public_url=url)
        return enqueue_mail(session, backend.master, mail, sent_here=True, vendor_id=who.vendor_id)

    try:
        job_id = units.write(request, work)
    except LicentiaError as error:
        problems = Problems()
        problems.add(
            problem_of(error, pages_of(request).gettext_for(request).gettext, field="email")
        )
        return _users_page(
            request, front, email=email, problems=problems, status_code=status_of(error)
        )
    units.send_mail_now(request, job_id, retry=True)  # or later, from the queue
    return RedirectResponse(f"/portal/{slug}/users?invited=1", status_code=303)


@router.post("/{slug}/users/{user_id}/unlock", response_class=HTMLResponse)
def unlock(slug: str, user_id: str, request: Request) -> Response:
    """Lift a colleague's login lock (and forget their failed logins)."""
    return _on_colleague(
        request, slug, lambda s, who: locks.unlock_colleague(s, who, user_id), done="unlocked"
    )


@router.get("/{slug}/welcome/{token}", response_class=HTMLResponse)
@limited(Family.PASSWORD_RESET)
def welcome(slug: str, token: str, request: Request) -> Response:
    front = storefront(request, slug)
    user = units.read(request, lambda s: invited_user(s, front.vendor.id, token, utcnow()))
    return _render(request, front, "portal/welcome.html", email=user.email, token=token)


@router.post("/{slug}/welcome/{token}", response_class=HTMLResponse)
@limited(Family.PASSWORD_RESET)
def set_password(
    slug: str,
    token: str,
    request: Request,
    password: str = Form(""),
    password_again: str = Form(""),
) -> Response:
    front = storefront(request, slug)
    try:
        check_typed_twice(password, password_again)
        user = units.write(
            request, lambda s: set_password_by_link(s, front.vendor.id, token, password, utcnow())
        )
    except LicentiaError as error:
        if error.code == "LINK_INVALID":
            raise
        problems = Problems()
        gettext = pages_of(request).gettext_for(request).gettext
        problems.add(problem_of(error, gettext, field=password_field(error)))
        email = units.read(
            request, lambda s: invited_user(s, front.vendor.id, token, utcnow())
        ).email
        return _render(
            request,
            front,
            "portal/welcome.html",
            email=email,
            token=token,
            problems=problems,
            status_code=422,
        )
    return RedirectResponse(f"/portal/{slug}/login?welcome={user.email}", status_code=303)


# --- named licenses and seats ------------------------------------------------------------


@router.post("/{slug}/users/assignments", response_class=HTMLResponse)
def assign(
    slug: str, request: Request, license_id: str = Form(""), user_id: str = Form("")
) -> Response:
    """Name a license (a seat pool: one of its seats) to one of the company's users."""
    return _assignment(
        request,
        slug,
        license_id,
        lambda s, who: assign_license(
            s, actor_of(who), license_id, user_id, customer_id=who.customer_id
        ),
    )


@router.post("/{slug}/users/assignments/remove", response_class=HTMLResponse)
def unassign(
    slug: str, request: Request, license_id: str = Form(""), user_id: str = Form("")
) -> Response:
    """Free the place a user holds on a license."""
    return _assignment(
        request,
        slug,
        license_id,
        lambda s, who: unassign_license(
            s, actor_of(who), license_id, user_id, customer_id=who.customer_id
        ),
    )


def _assignment(
    request: Request,
    slug: str,
    license_id: str,
    change: Callable[[units.DbSession, CustomerIdentity], object],
) -> Response:
    """Run one change of the customer's named licenses; a refusal is shown at the
    license it concerns."""
    front = _admin(request, slug)
    if isinstance(front, Response):
        return front
    who = front.customer
    assert who is not None
    try:
        units.write(request, lambda s: change(s, who))
    except LicentiaError as error:
        problems = Problems()
        gettext = pages_of(request).gettext_for(request).gettext
        problems.add(problem_of(error, gettext, field=f"license-{license_id}"))
        return _users_page(request, front, problems=problems, status_code=status_of(error))
    return RedirectResponse(f"/portal/{slug}/users#named", status_code=303)


@router.get("/{slug}/users/{user_id}/remove", response_class=HTMLResponse)
def confirm_removal(slug: str, user_id: str, request: Request) -> Response:
    """Ask before a colleague is removed: the users page's button leads here, and only
    this page's form removes them (no script needed)."""
    front = _admin(request, slug)
    if isinstance(front, Response):
        return front
    who = front.customer
    assert who is not None
    person = units.read(request, lambda s: removable_colleague(s, who, user_id))
    return _render(request, front, "portal/remove_colleague.html", person=person)


@router.post("/{slug}/users/{user_id}/remove", response_class=HTMLResponse)
def remove(slug: str, user_id: str, request: Request) -> Response:
    """Remove a colleague who has left (their sessions end, their names are freed)."""
    return _on_colleague(
        request, slug, lambda s, who: remove_colleague(s, who, user_id), done="removed"
    )


def _on_colleague(
    request: Request,
    slug: str,
    act: Callable[[units.DbSession, CustomerIdentity], object],
    *,
    done: str,
) -> Response:
    """Run a customer admin's action on a colleague, then show the users page saying
    it is ``done``."""
    front = _admin(request, slug)
    if isinstance(front, Response):
        return front
    who = front.customer
    assert who is not None
    units.write(request, lambda s: act(s, who))
    return RedirectResponse(f"/portal/{slug}/users?{done}=1", status_code=303)
