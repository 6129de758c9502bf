"""Every context's models, imported so that ``Base.metadata`` is complete."""

from licentia.server.audit.models import AuditEvent, AuditHead
from licentia.server.catalog.models import Feature, Product, Template
from licentia.server.cloud.models import CloudContainer, CloudDevice
from licentia.server.counters.models import LedgerEntry, UnitCounter
from licentia.server.customer_users.models import CustomerSession, CustomerUser, LicenseAssignment
from licentia.server.db.base import Base
from licentia.server.devices.models import Device, DeviceFlag, DeviceUpdate, LicenseReturn
from licentia.server.idempotency.models import IdempotencyRecord
from licentia.server.jobs.models import JobRow
from licentia.server.keys.models import SigningKey
from licentia.server.licenses.models import ActivationDay, License
from licentia.server.logins.models import LoginFailure, LoginLock
from licentia.server.notifications.models import LicenseNotice, MailUnsubscribe
from licentia.server.orders.models import Customer, Order, OrderLine, OrderReturn, Ticket
from licentia.server.password_resets.models import PasswordReset
from licentia.server.push import changes as push_changes  # noqa: F401 - its commit listener
from licentia.server.seats.models import SeatEvent, SeatSlot, SeatWaiter
from licentia.server.shops.models import ShopEvent, ShopMapping, ShopReference, ShopSettings
from licentia.server.subscriptions.models import SubscriptionRenewal
from licentia.server.tenancy.models import (
    ApiKey,
    UserSession,
    Vendor,
    VendorBranding,
    VendorUser,
)
from licentia.server.totp.models import RecoveryCode, StaffTotp
from licentia.server.webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

__all__ = [
    "ActivationDay",
    "ApiKey",
    "AuditEvent",
    "AuditHead",
    "Base",
    "CloudContainer",
    "CloudDevice",
    "Customer",
    "CustomerSession",
    "CustomerUser",
    "Device",
    "DeviceFlag",
    "DeviceUpdate",
    "Feature",
    "IdempotencyRecord",
    "JobRow",
    "LedgerEntry",
    "License",
    "LicenseAssignment",
    "LicenseNotice",
    "LicenseReturn",
    "LoginFailure",
    "LoginLock",
    "MailUnsubscribe",
    "Order",
    "OrderLine",
    "OrderReturn",
    "PasswordReset",
    "Product",
    "RecoveryCode",
    "SeatEvent",
    "SeatSlot",
    "SeatWaiter",
    "ShopEvent",
    "ShopMapping",
    "ShopReference",
    "ShopSettings",
    "SigningKey",
    "StaffTotp",
    "SubscriptionRenewal",
    "Template",
    "Ticket",
    "UnitCounter",
    "UserSession",
    "Vendor",
    "VendorBranding",
    "VendorUser",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
]
