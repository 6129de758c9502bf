"""A vendor's branding: what its portal and its mail look like to its customers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor
from licentia.domain.branding import DEFAULT_ACCENT, DEFAULT_PRIMARY, check_colour, check_logo
from licentia.domain.errors import NotFoundError
from licentia.server.audit.services import record
from licentia.server.db.base import utcnow
from licentia.server.tenancy.models import Vendor, VendorBranding


@dataclass(frozen=True)
class Branding:
    """The values a page or a mail is rendered with."""

    vendor_slug: str
    display_name: str
    primary_colour: str
    accent_colour: str
    support_email: str | None
    support_url: str | None
    has_logo: bool


def branding_of(session: Session, vendor: Vendor) -> Branding:
    """The vendor's branding; its name and the default colours when it set none."""
    row = session.execute(_CHOSEN.where(VendorBranding.vendor_id == vendor.id)).first()
    if row is None:
        return Branding(
            vendor.slug, vendor.name, DEFAULT_PRIMARY, DEFAULT_ACCENT, None, None, False
        )
    return _chosen(vendor.slug, row)


def storefront_of(session: Session, slug: str) -> tuple[Vendor, Branding]:
    """The vendor with this slug and its branding, in one query (the portal asks on
    every page). Raises NotFoundError if no vendor has this slug."""
    row = session.execute(_STOREFRONT, {"slug": slug}).first()
    if row is None:
        raise NotFoundError("vendor", slug)
    vendor, chosen = row[:2]
    if chosen is None:
        return vendor, Branding(
            vendor.slug, vendor.name, DEFAULT_PRIMARY, DEFAULT_ACCENT, None, None, False
        )
    return vendor, _chosen(vendor.slug, row[2:])


def branding_for(session: Session, vendor_id: str) -> Branding:
    """The branding of the vendor with this id (a vendor-scoped actor's own).

    One query, on every console page: the vendor and its choices together, and of
    the logo only whether there is one (its bytes are the logo address's)."""
    row = session.execute(_BRANDING, {"vendor_id": vendor_id}).first()
    if row is None:
        raise NotFoundError("vendor", vendor_id)
    slug, name, chosen = row[:3]
    if chosen is None:
        return Branding(slug, name, DEFAULT_PRIMARY, DEFAULT_ACCENT, None, None, False)
    return _chosen(slug, row[3:])


_CHOSEN = select(
    VendorBranding.display_name,
    VendorBranding.primary_colour,
    VendorBranding.accent_colour,
    VendorBranding.support_email,
    VendorBranding.support_url,
    VendorBranding.logo.is_not(None),
)


_BRANDING = (  # built once: every console page asks
    select(Vendor.slug, Vendor.name, VendorBranding.vendor_id, *_CHOSEN.selected_columns)
    .outerjoin(VendorBranding, VendorBranding.vendor_id == Vendor.id)
    .where(Vendor.id == bindparam("vendor_id", type_=Vendor.id.type))
)
_STOREFRONT = (  # built once: the portal asks on every page
    select(Vendor, VendorBranding.vendor_id, *_CHOSEN.selected_columns)
    .outerjoin(VendorBranding, VendorBranding.vendor_id == Vendor.id)
    .where(Vendor.slug == bindparam("slug", type_=Vendor.slug.type))
)


def _chosen(slug: str, row: Sequence[Any]) -> Branding:
    display_name, primary, accent, support_email, support_url, has_logo = row
    return Branding(slug, display_name, primary, accent, support_email, support_url, bool(has_logo))


def logo_of(session: Session, vendor: Vendor) -> tuple[bytes, str] | None:
    """The logo's bytes and media type, or None."""
    row = session.get(VendorBranding, vendor.id)
    if row is None or row.logo is None or row.logo_type is None:
        return None
    return row.logo, row.logo_type


def update_branding(
    session: Session,
    actor: Actor,
    vendor: Vendor,
    *,
    display_name: str,
    primary_colour: str,
    accent_colour: str,
    support_email: str | None = None,
    support_url: str | None = None,
    logo: tuple[bytes, str] | None = None,
) -> Branding:
    """Set the vendor's branding. Raises ValidationError for an unreadable colour
    (``COLOUR_INVALID``, ``COLOUR_CONTRAST_TOO_LOW``) or logo (``LOGO_INVALID``)."""
    primary = check_colour(primary_colour, field="primary_colour")
    accent = check_colour(accent_colour, field="accent_colour")
    if logo is not None:
        check_logo(*logo)
    row = session.get(VendorBranding, vendor.id)
    if row is None:
        row = VendorBranding(vendor_id=vendor.id)
        session.add(row)
    row.display_name = display_name.strip() or vendor.name
    row.primary_colour, row.accent_colour = primary, accent
    row.support_email, row.support_url = support_email or None, support_url or None
    if logo is not None:
        row.logo, row.logo_type = logo
    row.updated_at = utcnow()
    after = {"display_name": row.display_name, "primary_colour": primary, "accent_colour": accent}
    record(session, actor, "vendor.branding_updated", "vendor", vendor.id, after=after)
    session.flush()
    return branding_of(session, vendor)
