"""Who is acting: the principal behind a request, job or CLI command."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from licentia.domain.errors import PermissionDeniedError
from licentia.domain.scopes import SCOPES

OPERATOR_CHAIN = "operator"


class ActorKind(StrEnum):
    """Who stands behind a change; stored as the audit event's ``actor_type``."""

    USER = "user"  # a vendor user, by login session
    API_KEY = "api_key"  # a vendor's machine (ERP, CRM, web shop)
    OPERATOR = "operator"  # whoever runs License Central, at the CLI
    SYSTEM = "system"  # a background job
    DEVICE = "device"  # a device container, by its signed request
    CLOUD_DEVICE = "cloud_device"  # a device registered to a cloud container, by its token
    CUSTOMER = "customer"  # whoever redeems a ticket (the ticket is the secret)
    CUSTOMER_ADMIN = "customer_admin"  # a cloud container's admin, by its credential
    CUSTOMER_USER = "customer_user"  # a customer's person, logged in to the License Portal
    SHOP = "shop"  # a vendor's web shop (Stripe, Paddle), by its signed event


@dataclass(frozen=True)
class Actor:
    """A principal. ``vendor_id`` is None only for the operator and system jobs."""

    kind: ActorKind
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
    return Actor(ActorKind.OPERATOR, None, vendor_id, frozenset(SCOPES))
