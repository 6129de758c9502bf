"""A forgotten password, for the console's staff and the portal's customer users: the
link asked for (the same answer whether the account exists or not) and mailed after
the answer has gone, and the new password set from the link."""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request
from starlette.background import BackgroundTask

from licentia.domain.emails import check_address
from licentia.domain.errors import LicentiaError, ValidationError
from licentia.server.db.base import utcnow
from licentia.server.notifications.mail_jobs import enqueue_mail
from licentia.server.password_resets.services import (
    Realm,
    ResetTarget,
    request_reset,
    reset_mail,
    reset_password,
    reset_target,
)
from licentia.server.tenancy.staff import new_password_hash
from licentia.server.web import units


def ask_for_link(request: Request, realm: Realm, *, vendor_slug: str, email: str) -> BackgroundTask:
    """Make a link for the account, if there is one, with its mail queued in the same
    transaction, and return the task that sends it once the answer is sent (so the
    time of the answer does not tell whether a mail went out; a failed send is
    retried by the queue). Raises ValidationError (``EMAIL_INVALID``) for what is no address."""
    address = check_address(email, field="email")
    backend = units.backend_of(request)
    settings, templates = backend.settings, units.mail_templates_of(request)
    source_ip = request.client.host if request.client else None

    def work(session: units.DbSession) -> str | None:
        link = request_reset(
            session,
            realm,
            vendor_slug=vendor_slug,
            email=address,
            ttl=timedelta(minutes=settings.password_reset_minutes),
            now=utcnow(),
            source_ip=source_ip,
        )
        if link is None:
            return None
        mail = reset_mail(session, templates, link, public_url=settings.public_url)
        # the vendor's: a reset mail that fails on every attempt is on its Failed jobs page
        return enqueue_mail(session, backend.master, mail, sent_here=True, vendor_id=link.vendor_id)

    job_id = units.write(request, work)
    return BackgroundTask(units.send_mail_now, request, job_id, retry=True)


def target_of(request: Request, realm: Realm, vendor_slug: str, token: str) -> ResetTarget:
    """Whose password the link sets; raises LinkInvalidError."""
    return units.read(
        request,
        lambda s: reset_target(s, realm, vendor_slug=vendor_slug, token=token, now=utcnow()),
    )


def set_new_password(
    request: Request, realm: Realm, *, vendor_slug: str, token: str, password: str
) -> str:
    """Set the password from the link and end the user's sessions; returns their
    e-mail. Raises LinkInvalidError, ValidationError (field ``password``: the rule of
    every password) or ServerBusyError (``LOGINS_BUSY``)."""
    target_of(request, realm, vendor_slug, token)  # a dead link costs no hashing
    hashed = new_password_hash(password, units.backend_of(request).password_checks)
    source_ip = request.client.host if request.client else None
    email = units.write(
        request,
        lambda s: reset_password(
            s,
            realm,
            vendor_slug=vendor_slug,
            token=token,
            password_hash=hashed,
            now=utcnow(),
            source_ip=source_ip,
        ),
    )
    units.forget_credentials(request)  # the ended sessions stop working in this process at once
    return email


AGAIN = "password_again"


def check_typed_twice(password: str, again: str) -> None:
    """A new password is typed twice, so that a typo does not lock its owner out.
    Raises ValidationError (``PASSWORDS_DIFFER``, field ``password_again``)."""
    if password != again:
        raise ValidationError("the two passwords differ", field=AGAIN, code="PASSWORDS_DIFFER")


def password_field(error: LicentiaError) -> str:
    """The field of a new-password form an error goes next to."""
    return AGAIN if error.details.get("field") == AGAIN else "password"
