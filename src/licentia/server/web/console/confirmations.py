"""The confirmation step before an action that cannot be undone (withdraw a license,
revoke an API key, retire a signing key): a page of its own that names the object and
what follows, and a box to tick before the action runs. It works without JavaScript:
the action's form posts ``understood=yes``, and a post without it shows this page
again with the box marked."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from licentia.domain.actors import Actor
from licentia.domain.errors import ValidationError
from licentia.server.web.console.staff import render
from licentia.server.web.errors import Problems

FIELD = "understood"


@dataclass(frozen=True)
class Confirmation:
    """What the confirmation page says: the question, the object's facts, what follows
    (``consequence``), the box's label, the action's address and button, and the way
    back."""

    heading: str
    facts: tuple[tuple[str, str], ...]
    consequence: str
    understand: str
    action: str
    button: str
    back: str


def confirmation_page(
    request: Request,
    actor: Actor,
    confirmation: Confirmation,
    *,
    problems: Problems | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        actor,
        "console/confirm.html",
        status_code=status_code,
        confirm=confirmation,
        problems=problems or Problems(),
    )


def check_understood(understood: str) -> None:
    """Raises ValidationError (field ``understood``) unless the box was ticked."""
    if understood != "yes":
        raise ValidationError("confirm that this cannot be undone", field=FIELD)
