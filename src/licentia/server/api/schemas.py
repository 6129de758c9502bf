"""Response shapes shared by every resource."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from licentia.domain import emails
from licentia.domain.identifiers import identifier_pattern
from licentia.formats import tickets
from licentia.server.api.bodies import DEVICE_MESSAGE
from licentia.server.catalog.services import CODE_PATTERN, NAME_PATTERN
from licentia.server.db.pagination import Page

T = TypeVar("T", bound=BaseModel)
JSON = "application/json"
# Bounds of the strings every request model takes (a test walks the OpenAPI document
# and refuses a string without a maxLength): the body's limit bounds them all anyway
# (api/bodies.py), these say what each field may hold.
ID = 64  # an id Licentia made (a UUID is 36 characters)
CODE = 64  # a product's, feature's or template's code (SKU), a vendor's slug
NAME = 200  # a name people read
EMAIL = 320  # RFC 5321's longest address
SECRET = 1024  # a password, a credential, a ticket code as typed
# A list's page holds at most ``limit`` items and about this many bytes of JSON: items
# are bounded (a template's custom data, a ticket's 1000 license ids), but 200 of the
# largest would make one answer of megabytes.
MAX_PAGE_BYTES = 1024 * 1024


def _identifier_syntax(schema: dict[str, Any]) -> None:
    # Called when the document is built, not at import: the pattern is made from the
    # Unicode tables (domain/identifiers.py).
    schema["pattern"] = identifier_pattern()


# What the services check of a string beyond its length, declared so that the document
# says it too (JSON Schema patterns); the services stay the ones that refuse, with
# their own codes. A code or SKU:
Code = Annotated[
    str, Field(min_length=1, max_length=CODE, json_schema_extra={"pattern": CODE_PATTERN})
]
# A name people read, not only spaces:
Name = Annotated[
    str, Field(min_length=1, max_length=NAME, json_schema_extra={"pattern": NAME_PATTERN})
]
# An identifier of the vendor's systems (an external customer or order id), without
# control or invisible characters (IDENTIFIER_INVALID):
Identifier = Annotated[
    str, Field(min_length=1, max_length=NAME, json_schema_extra=_identifier_syntax)
]
# An order line's id, the same kind of identifier, shorter:
LineId = Annotated[str, Field(min_length=1, max_length=CODE, json_schema_extra=_identifier_syntax)]
# One e-mail address, spaces around it allowed (EMAIL_INVALID):
Email = Annotated[str, Field(max_length=EMAIL, json_schema_extra={"pattern": emails.PATTERN})]
# A ticket code as people type it (formats/tickets.py); its check symbol is beyond a
# pattern, hence the format, which says what the pattern cannot (TICKET_CODE_INVALID).
TypedTicketCode = Annotated[
    str,
    Field(
        max_length=SECRET,
        description="XXXXX-XXXXX-XXXXX-XXXXX-XXXXX: case, dashes and spaces do not matter",
        json_schema_extra={"pattern": tickets.PATTERN, "format": "ticket-code"},
    ),
]
JOSE = "application/jose"
# A JWS in compact serialisation: three base64url parts (docs/formats.md).
_COMPACT_JWS: dict[str, Any] = {
    "type": "string",
    "pattern": "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$",
    "description": "a JWS in compact serialisation (docs/formats.md)",
}
# ``openapi_extra`` of a route whose body is a message signed by a device
# (docs/device-protocol.md); the route reads the body itself.
JOSE_BODY: dict[str, Any] = {
    "requestBody": {
        "content": {JOSE: {"schema": {**_COMPACT_JWS, "maxLength": DEVICE_MESSAGE}}},
        "required": True,
    }
}

# ``openapi_extra`` of a creating POST (``Context.create``): it honours an
# ``Idempotency-Key`` (docs/api.md, Idempotency).
IDEMPOTENT: dict[str, Any] = {
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": "sent again with the same request, answers what the first answered",
            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
        }
    ]
}


def jose_answer(description: str) -> dict[int | str, dict[str, Any]]:
    """``responses`` of a route that answers a signed document (200)."""
    return {200: {"content": {JOSE: {"schema": _COMPACT_JWS}}, "description": description}}


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def json_of(model: BaseModel, *, status_code: int = 200) -> Response:
    """``model`` as a JSON answer. A route that returns a Response spares FastAPI a
    second validation of the model, which it runs in the threadpool for a sync route:
    a hop of its own per request. Hot routes use this; the route's ``response_model``
    still documents the shape."""
    return Response(model.model_dump_json(), status_code=status_code, media_type=JSON)


class PageOut(BaseModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` as ``cursor`` to get the next one."""

    items: list[T]
    next_cursor: str | None


def page_of(page: Page[Any], convert: Callable[[Any], T]) -> PageOut[T]:
    """The page's items as ``convert`` answers them, as many as fit in
    MAX_PAGE_BYTES of JSON (at least one): the rest come with the next cursor."""
    items: list[T] = []
    size = 0
    for item in page.items:
        answered = convert(item)
        size += len(answered.model_dump_json())
        shorter = page.first(len(items)) if items and size > MAX_PAGE_BYTES else page
        if shorter is not page:
            return PageOut[T](items=items, next_cursor=shorter.next_cursor)
        items.append(answered)
    return PageOut[T](items=items, next_cursor=page.next_cursor)


class PageParams(BaseModel):
    cursor: str | None = None
    limit: int = 50


async def page_params(
    cursor: str = Query(
        "",
        max_length=NAME,
        description="next_cursor of the previous page (none: the first page); any other "
        "text is refused (422, field cursor)",
        # Opaque: only the server makes them, which no pattern can say.
        json_schema_extra={"format": "cursor"},
    ),
    limit: int = Query(50, ge=1, le=200),
) -> PageParams:
    return PageParams(cursor=cursor or None, limit=limit)
