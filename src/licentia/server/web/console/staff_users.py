"""Console: the vendor's staff. Invite a colleague by e-mail (a link to set their
password, sent through the mail module), change a role, disable or enable an account,
see who is locked out after failed logins and unlock them; and the page the link leads
to. The use cases are ``tenancy/staff.py`` and ``logins/locks.py``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from licentia.domain.actors import Actor
from licentia.domain.errors import LicentiaError
from licentia.domain.scopes import Role
from licentia.server.db.base import utcnow
from licentia.server.db.pagination import paginate
from licentia.server.logins import locks
from licentia.server.logins.services import STAFF, ThrottlePolicy
from licentia.server.notifications.mail_jobs import enqueue_mail
from licentia.server.tenancy import staff
from licentia.server.tenancy.models import VendorUser
from licentia.server.totp import services as totp
from licentia.server.web import units
from licentia.server.web.console.frame import (
    brand_of,
    limit_of,
    next_page,
    problems_of,
    render,
    require_staff,
)
from licentia.server.web.errors import Problems, status_of
from licentia.server.web.forms import FORM_CHECKS
from licentia.server.web.rendering import pages_of
from licentia.server.web.resets import check_typed_twice, password_field

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=FORM_CHECKS)
ROLES = tuple(role.value for role in Role)


def _staff_page(
    request: Request,
    actor: Actor,
    *,
    cursor: str | None = None,
    problems: Problems | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    query, limit = staff.staff_query(actor), limit_of(request)
    policy, now = ThrottlePolicy.of(units.backend_of(request).settings), utcnow()
    assert actor.vendor_id is not None
    vendor_id = actor.vendor_id

    def work(session: units.DbSession) -> tuple[Any, set[str], dict[str, Any]]:
        found = paginate(session, query, VendorUser.id, cursor=cursor, limit=limit)
        emails = [user.email for user in found.items]
        return (
            found,
            totp.enabled_among(session, [user.id for user in found.items]),
            locks.lock_states(session, STAFF, vendor_id, emails, policy, now),
        )

    page, with_totp, logins = units.read(request, work)
    return render(
        request,
        actor,
        "console/staff.html",
        status_code=status_code,
        items=page.items,
        with_totp=with_totp,
        logins=logins,
        now=now,
        next_page=next_page(request, page.next_cursor),
        roles=ROLES,
        problems=problems or Problems(),
        values=values or {"email": "", "role": Role.READ_ONLY.value},
        done=request.query_params.get("done"),
    )


@router.get("/staff", response_class=HTMLResponse)
def staff_list(request: Request, cursor: str | None = None) -> Response:
    return _staff_page(request, require_staff(request, "vendor:read"), cursor=cursor)


def _mail_link(request: Request, actor: Actor, invitation: staff.Invitation) -> None:
    """Queue the invitation's mail, in the vendor's brand, and send it at once."""
    brand = brand_of(request, actor)
    public_url = units.backend_of(request).settings.public_url.rstrip("/")
    mail = units.mail_templates_of(request).render(
        "staff_invitation",
        to=invitation.user.email,
        vendor_slug=brand.vendor_slug,
        brand=brand.__dict__,
        link=f"{public_url}/console/password/{invitation.link_token}",
        role=invitation.user.role,
    )
    master = units.backend_of(request).master
    job_id = units.write(
        request,
        lambda s: enqueue_mail(s, master, mail, sent_here=True, vendor_id=actor.vendor_id),
    )
    units.send_mail_now(request, job_id, retry=True)  # or later, from the queue


@router.post("/staff", response_class=HTMLResponse)
def invite(request: Request, email: str = Form(""), role: str = Form("")) -> Response:
    actor = require_staff(request, "vendor:write")
    try:
        invitation = units.write(
            request, lambda s: staff.invite_user(s, actor, email=email, role=role)
        )
    except LicentiaError as error:
        values = {"email": email, "role": role}
        problems = problems_of(request, error)
        return _staff_page(
            request, actor, problems=problems, values=values, status_code=status_of(error)
        )
    _mail_link(request, actor, invitation)
    return RedirectResponse("/console/staff?done=invited", status_code=303)


@router.post("/staff/{user_id}/invite-again", response_class=HTMLResponse)
def invite_again(user_id: str, request: Request) -> Response:
    actor = require_staff(request, "vendor:write")
    invitation = units.write(request, lambda s: staff.renew_invitation(s, actor, user_id))
    _mail_link(request, actor, invitation)
    return RedirectResponse("/console/staff?done=invited", status_code=303)


@router.post("/staff/{user_id}/role", response_class=HTMLResponse)
def change_role(user_id: str, request: Request, role: str = Form("")) -> Response:
    actor = require_staff(request, "vendor:write")
    return _change(request, actor, lambda s: staff.change_role(s, actor, user_id, role), "role")


@router.post("/staff/{user_id}/disable", response_class=HTMLResponse)
def disable(user_id: str, request: Request) -> Response:
    actor = require_staff(request, "vendor:write")
    return _change(request, actor, lambda s: staff.disable_user(s, actor, user_id), "disabled")


@router.post("/staff/{user_id}/totp-reset", response_class=HTMLResponse)
def reset_totp(user_id: str, request: Request) -> Response:
    """A colleague lost their authenticator and recovery codes: TOTP off for them."""
    actor = require_staff(request, "vendor:write")

    def work(session: units.DbSession) -> VendorUser:
        totp.reset_for_member(session, actor, user_id)
        return staff.get_staff_user(session, actor, user_id)

    return _change(request, actor, work, "totp_reset")


@router.post("/staff/{user_id}/enable", response_class=HTMLResponse)
def enable(user_id: str, request: Request) -> Response:
    actor = require_staff(request, "vendor:write")
    return _change(request, actor, lambda s: staff.enable_user(s, actor, user_id), "enabled")


@router.post("/staff/{user_id}/unlock", response_class=HTMLResponse)
def unlock(user_id: str, request: Request) -> Response:
    """Lift a colleague's login lock (and forget their failed logins)."""
    actor = require_staff(request, "vendor:write")
    return _change(request, actor, lambda s: locks.unlock_staff_user(s, actor, user_id), "unlocked")


def _change(
    request: Request, actor: Actor, work: Callable[[units.DbSession], VendorUser], done: str
) -> Response:
    try:
        units.write(request, work)
    except LicentiaError as error:
        problems = problems_of(request, error)
        return _staff_page(request, actor, problems=problems, status_code=status_of(error))
    return RedirectResponse(f"/console/staff?done={done}", status_code=303)


# --- the link in the invitation ---------------------------------------------------------


@router.get("/password/{token}", response_class=HTMLResponse)
def password_form(token: str, request: Request) -> Response:
    user, vendor = units.read(request, lambda s: staff.invited_user(s, token))
    return pages_of(request).render(
        request, "console/password.html", email=user.email, vendor=vendor.slug, problems=Problems()
    )


@router.post("/password/{token}", response_class=HTMLResponse)
def set_password(
    token: str, request: Request, password: str = Form(""), password_again: str = Form("")
) -> Response:
    checks = units.backend_of(request).password_checks
    try:
        units.read(request, lambda s: staff.invited_user(s, token))  # before the hashing
        check_typed_twice(password, password_again)
        hashed = staff.new_password_hash(password, checks)
        units.write(request, lambda s: staff.set_password_with_link(s, token, hashed))
    except LicentiaError as error:
        user, vendor = units.read(request, lambda s: staff.invited_user(s, token))
        return pages_of(request).render(
            request,
            "console/password.html",
            status_code=status_of(error),
            email=user.email,
            vendor=vendor.slug,
            problems=problems_of(request, error, field=password_field(error)),
        )
    return RedirectResponse("/console/login?password=set", status_code=303)
