"""Every context's models, imported so that ``Base.metadata`` is complete."""

from licentia.server.audit.models import AuditEvent, AuditHead
from licentia.server.catalog.models import Feature, Product, Template
from licentia.server.db.base import Base
from licentia.server.devices.models import Device, DeviceFlag, DeviceUpdate, LicenseReturn
from licentia.server.idempotency.models import IdempotencyRecord
from licentia.server.keys.models import SigningKey
from licentia.server.licenses.models import License
from licentia.server.orders.models import Customer, Order, OrderLine, Ticket
from licentia.server.tenancy.models import ApiKey, UserSession, Vendor, VendorUser

__all__ = [
    "ApiKey",
    "AuditEvent",
    "AuditHead",
    "Base",
    "Customer",
    "Device",
    "DeviceFlag",
    "DeviceUpdate",
    "Feature",
    "IdempotencyRecord",
    "License",
    "LicenseReturn",
    "Order",
    "OrderLine",
    "Product",
    "SigningKey",
    "Template",
    "Ticket",
    "UserSession",
    "Vendor",
    "VendorUser",
]
