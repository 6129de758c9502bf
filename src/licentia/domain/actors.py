"""Who is acting: the principal behind a request, job or CLI command."""

from __future__ import annotations

from dataclasses import dataclass, field

from licentia.domain.errors import PermissionDeniedError
from licentia.domain.scopes import SCOPES

OPERATOR_CHAIN = "operator"


@dataclass(frozen=True)
class Actor:
    """A principal. ``vendor_id`` is None only for the operator and system jobs."""

    kind: str  # user | api_key | operator | system
    id: str | None
    vendor_id: str | None
    scopes: frozenset[str] = field(default_factory=frozenset)
    source_ip: str | None = None

    def require(self, scope: str) -> None:
        """Raise PermissionDeniedError unless this actor holds ``scope``."""
        if scope not in self.scopes:
            raise PermissionDeniedError(f"this credential lacks the scope {scope!r}", scope=scope)

    @property
    def chain(self) -> str:
        return self.vendor_id or OPERATOR_CHAIN


def operator(vendor_id: str | None = None) -> Actor:
    """The operator at the CLI: every scope, on one vendor or none."""
    return Actor("operator", None, vendor_id, frozenset(SCOPES))
