"""The OpenAPI document as the API really behaves: who must authenticate how, and the
problem+json answers each operation gives.

FastAPI derives the document from the routes; this module corrects what it cannot
know. The vendor's one bearer dependency becomes two alternatives (an API key or a
staff session), so Swagger's Authorize dialog names both; the device protocol, which
authenticates by the signature on its body, asks for no header; and the failures are
declared as the problem documents that ``problems.py`` sends, not as FastAPI's own
validation schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from licentia.server.api.problems import MEDIA_TYPE
from licentia.server.api.schemas import JOSE

VENDOR_CREDENTIAL = "VendorCredential"
_SCHEMES: dict[str, dict[str, Any]] = {
    "ApiKey": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "lic_<prefix>_<secret>",
        "description": "A vendor's API key, for its ERP, CRM or web shop "
        "(POST /api/v1/api-keys or `licentia admin api-key create`).",
    },
    "StaffSession": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "lis_…",
        "description": "A vendor user's session token, from POST /api/v1/sessions.",
    },
    "CloudDeviceToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "lcd_…",
        "description": "A device's token for a cloud container, from "
        "POST /api/v1/vendors/{slug}/cloud/devices with the container credential.",
    },
    "ContainerCredential": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "lcc_<prefix>_<secret>",
        "description": "A cloud container's credential (the .licred file): its customer "
        "admin's key.",
    },
}
_SIGNED_BY_DEVICE = (
    "\n\nNo Authorization header: the body is a JWS signed with the device key "
    "(docs/device-protocol.md), and that signature is the credential."
)
_PROBLEM: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem document (docs/api.md, Errors)",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "examples": ["urn:licentia:problem:VALIDATION_FAILED"]},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "for people; may change"},
        "code": {"type": "string", "description": "stable, for programs"},
        "field": {
            "type": ["string", "null"],
            "description": "the offending input, e.g. lines[0].sku",
        },
        "errors": {
            "type": "array",
            "description": "every invalid field of the request",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    "additionalProperties": True,
}
_FAILURES = {
    "400": "BAD_REQUEST: the body is not JSON at all",
    "401": "UNAUTHENTICATED (SIGNATURE_INVALID for a signed message, INVALID_CREDENTIALS "
    "for a login): no valid credential",
    "403": "FORBIDDEN: the credential lacks the scope (`scope` names it)",
    "404": "NOT_FOUND or a more specific code: no such object for this caller",
    "409": "CONFLICT or a more specific code: the request clashes with the current state",
    "413": "BODY_TOO_LARGE: the body is over this operation's size limit",
    "415": "UNSUPPORTED_MEDIA_TYPE: a body sent without Content-Type: application/json",
    "422": "VALIDATION_FAILED or a more specific code: input that breaks a rule",
    "429": "RATE_LIMITED or a more specific code: too many requests; try again after "
    "Retry-After seconds",
    "500": "INTERNAL_ERROR or CONFIGURATION_ERROR: the server failed; nothing is revealed",
    "503": "DATABASE_UNREACHABLE or another code: the server cannot answer now; try again "
    "after Retry-After seconds",
}
# Answers that every operation can give, whatever it does: an abuse limit reached (429),
# a failure of the server (500) or of what it depends on (503).
_EVERY_OPERATION = ("429", "500", "503")
# What each header of a failure says (docs/api.md, Errors).
_HEADERS: dict[str, dict[str, Any]] = {
    "401": {
        "WWW-Authenticate": {
            "description": "the scheme to authenticate with (Bearer)",
            "schema": {"type": "string"},
        }
    },
    "429": {
        "Retry-After": {
            "description": "seconds to wait before trying again",
            "schema": {"type": "string"},
        }
    },
    "503": {
        "Retry-After": {
            "description": "seconds to wait before trying again",
            "schema": {"type": "string"},
        }
    },
}
_READS = frozenset({"get", "head"})


def install(app: FastAPI) -> None:
    """Serve the corrected document at /openapi.json (built once, on first request)."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = corrected(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]


def corrected(document: dict[str, Any]) -> dict[str, Any]:
    components = document.setdefault("components", {})
    schemes = components.setdefault("securitySchemes", {})
    schemes.pop(VENDOR_CREDENTIAL, None)
    schemes.update(_SCHEMES)
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = _PROBLEM
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            _secure(operation)
            _declare_failures(operation, method, path, schemas)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return document


def _secure(operation: dict[str, Any]) -> None:
    security = operation.get("security")
    if security == [{VENDOR_CREDENTIAL: []}]:
        operation["security"] = [{"ApiKey": []}, {"StaffSession": []}]
    elif security is None and _signed_by_device(operation):
        operation["security"] = []
        operation["description"] = operation.get("description", "") + _SIGNED_BY_DEVICE
    elif security is None:
        operation["security"] = []


def _signed_by_device(operation: dict[str, Any]) -> bool:
    return JOSE in operation.get("requestBody", {}).get("content", {})


def _declare_failures(
    operation: dict[str, Any], method: str, path: str, schemas: dict[str, Any]
) -> None:
    """Every problem status the operation can answer, each with the Problem schema: the
    ones its shape implies (a body, parameters, a credential, an id in the path, a
    write) and those every operation can give. A route declares any other status it
    answers in its ``responses`` (a description is enough); the schema is added here."""
    responses = operation.setdefault("responses", {})
    for fastapis_own in ("default", "422"):
        responses.pop(fastapis_own, None)
    for status in _failures_of(operation, method, path, schemas):
        responses.setdefault(status, {"description": _FAILURES[status]})
    for status, response in responses.items():
        if int(status) >= 400:
            response["content"] = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
            if status in _HEADERS:
                response["headers"] = _HEADERS[status]


def _names_an_object(body: dict[str, Any], schemas: dict[str, Any]) -> bool:
    """Whether a JSON body names another object by its id (``customer_id``), which
    may not exist."""
    reference = body.get("application/json", {}).get("schema", {}).get("$ref", "")
    fields = schemas.get(reference.rsplit("/", 1)[-1], {}).get("properties", {})
    return any(name.endswith("_id") for name in fields)


def _failures_of(
    operation: dict[str, Any], method: str, path: str, schemas: dict[str, Any]
) -> list[str]:
    body = operation.get("requestBody", {}).get("content", {})
    statuses = list(_EVERY_OPERATION)
    if body:
        statuses.append("413")
    if "application/json" in body:
        statuses += ["400", "415"]
    if body or operation.get("parameters"):
        statuses.append("422")
    if operation["security"] or _signed_by_device(operation):
        statuses.append("401")
    if operation["security"] and "ApiKey" in operation["security"][0]:
        statuses.append("403")
    if "{" in path or _names_an_object(body, schemas):
        statuses.append("404")
    if method not in _READS:
        statuses.append("409")
    return statuses
