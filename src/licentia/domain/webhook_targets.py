"""Where webhooks may go: a receiver is a public ``https`` address unless the operator
allows more (docs/security.md, "Webhook targets").

A vendor names the URL, but the server makes the request: without these rules an
endpoint could make License Central call its own admin ports, the database, a cloud's
metadata service or anything else on the operator's private network (server-side
request forgery). So every address a receiver's name resolves to must be public, and
the connection goes to the address that was checked (``server/webhooks/egress.py``).
The operator may allow plain ``http`` and private networks: the tests' local receiver,
an ERP on the premises.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from licentia.domain.errors import ValidationError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ANY_PRIVATE = "*"  # in the allow-list: every private kind below (never metadata)
FORBIDDEN_CODE = "WEBHOOK_URL_FORBIDDEN"

# Cloud metadata services (AWS, GCP and Azure share the first; AWS's IPv6 one; Alibaba):
# refused even when private addresses are allowed, unless a network names them.
METADATA: tuple[Network, ...] = tuple(
    ipaddress.ip_network(n) for n in ("169.254.169.254/32", "fd00:ec2::254/128", "100.100.100.200")
)
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# The kinds ``ANY_PRIVATE`` allows: addresses a private network really uses.
PRIVATE_KINDS = frozenset({"loopback", "private", "link-local", "unique-local"})
# Names that always mean this machine (RFC 6761), refused before any resolution.
_LOOPBACK_NAMES = ("localhost", "localhost.")


def address_kind(address: Address) -> str | None:
    """What makes ``address`` unfit for a receiver, or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return "ipv4-mapped"
        embedded = _embedded_ipv4(address)
        if embedded is not None and address_kind(embedded) is not None:
            return address_kind(embedded)
    return _kind(address)


def _kind(address: Address) -> str | None:
    checks = (
        ("metadata", any(address in network for network in METADATA)),
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unique-local", address in _UNIQUE_LOCAL),
        ("reserved", address.is_reserved),
        ("private", address.is_private or not address.is_global),
    )
    return next((kind for kind, holds in checks if holds), None)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a 6to4, Teredo or NAT64 address reaches."""
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True)
class TargetPolicy:
    """The operator's rules for receivers: whether plain ``http`` is allowed, and which
    non-public networks (``allowed``; ``any_private`` for every private kind)."""

    allow_http: bool = False
    allowed: tuple[Network, ...] = ()
    any_private: bool = False

    @classmethod
    def of(cls, *, allow_http: bool, networks: Iterable[str]) -> TargetPolicy:
        """From the settings' list of networks; raises ValueError for one it cannot read."""
        items = [n.strip() for n in networks if n.strip()]
        return cls(
            allow_http=allow_http,
            allowed=tuple(ipaddress.ip_network(n, strict=False) for n in items if n != ANY_PRIVATE),
            any_private=ANY_PRIVATE in items,
        )

    def refusal(self, address: Address) -> str | None:
        """Why a delivery to ``address`` is refused, or None when it may go there."""
        kind = address_kind(address)
        if kind is None or any(address in network for network in self.allowed):
            return None
        if self.any_private and kind in PRIVATE_KINDS:
            return None
        return f"{address} is not public ({kind})"

    def scheme_refusal(self, scheme: str) -> str | None:
        if scheme == "https" or (scheme == "http" and self.allow_http):
            return None
        return f"{scheme} is not allowed: receivers use https"

    def check_url(self, url: str) -> None:
        """Refuse a receiver URL that names a forbidden scheme or address: raises
        ValidationError ``WEBHOOK_URL_FORBIDDEN``. A host name is checked again at
        every delivery, against each address it then resolves to; here only a literal
        address (or ``localhost``) can be judged."""
        parts = urlsplit(url)
        reason = self.scheme_refusal(parts.scheme)
        host = (parts.hostname or "").lower()
        literal = _literal(host)
        if reason is None and literal is not None:
            reason = self.refusal(literal)
        if reason is not None:
            raise ValidationError(
                f"this receiver is not allowed: {reason} (docs/security.md)",
                field="url",
                code=FORBIDDEN_CODE,
            )


def _literal(host: str) -> Address | None:
    """The address ``host`` names without a resolution, if any."""
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return ipaddress.IPv4Address("127.0.0.1")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
