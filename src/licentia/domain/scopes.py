"""Scopes of API keys and the scopes each vendor-user role grants."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    SALES = "sales"
    SUPPORT = "support"
    READ_ONLY = "read-only"


SCOPES: tuple[str, ...] = (
    "catalog:read",
    "catalog:write",
    "customers:read",
    "customers:write",
    "orders:read",
    "orders:write",
    "licenses:read",
    "licenses:write",
    "keys:read",
    "keys:write",
    "audit:read",
    "vendor:read",
    "vendor:write",
    "webhooks:read",
    "webhooks:write",
    "shops:read",
    "shops:write",
)

_READ = frozenset(s for s in SCOPES if s.endswith(":read"))

ROLE_SCOPES: dict[Role, frozenset[str]] = {
    Role.ADMIN: frozenset(SCOPES),
    Role.SALES: _READ - {"audit:read", "keys:read", "webhooks:read"}
    | {"catalog:write", "customers:write", "orders:write"},
    Role.SUPPORT: _READ | {"customers:write", "licenses:write"},
    Role.READ_ONLY: _READ,
}
