"""Where webhooks may go: every kind of non-public address is refused, unless the
operator's allow-list names it; only https unless plain http is allowed."""

from __future__ import annotations

import ipaddress

import pytest

from licentia.domain.errors import ValidationError
from licentia.domain.webhook_targets import TargetPolicy, address_kind

STRICT = TargetPolicy()

FORBIDDEN = [
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.10", "private"),
    ("100.64.0.1", "private"),  # shared address space (carrier-grade NAT)
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("::1", "loopback"),
    ("169.254.10.20", "link-local"),
    ("fe80::1", "link-local"),
    ("169.254.169.254", "metadata"),
    ("fd00:ec2::254", "metadata"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 - an address under test, not a bind
    ("::", "unspecified"),
    ("fd12:3456::1", "unique-local"),
    ("fc00::5", "unique-local"),
    ("::ffff:127.0.0.1", "ipv4-mapped"),
    ("::ffff:8.8.8.8", "ipv4-mapped"),
    ("2002:7f00:1::", "loopback"),  # 6to4 wrapping 127.0.0.1
    ("64:ff9b::a00:1", "private"),  # NAT64 wrapping 10.0.0.1
]


@pytest.mark.parametrize(("address", "kind"), FORBIDDEN)
def test_each_kind_of_non_public_address_is_refused(address, kind):
    parsed = ipaddress.ip_address(address)
    assert address_kind(parsed) == kind
    assert STRICT.refusal(parsed) == f"{parsed} is not public ({kind})"


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_a_public_address_is_allowed(address):
    assert STRICT.refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hooks",
        "https://[::1]:8443/hooks",
        "https://localhost/hooks",
        "https://api.localhost/hooks",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.7/erp",
        "https://[::ffff:10.0.0.7]/erp",
        "http://erp.example/hooks",  # plain http
    ],
)
def test_a_url_naming_a_forbidden_address_or_scheme_is_refused(url):
    with pytest.raises(ValidationError) as refused:
        STRICT.check_url(url)
    assert refused.value.code == "WEBHOOK_URL_FORBIDDEN"


def test_a_public_https_url_and_a_host_name_pass_the_check_made_at_creation():
    STRICT.check_url("https://erp.example/hooks")
    STRICT.check_url("https://93.184.215.14/hooks")


def test_the_operator_allows_networks_plain_http_or_every_private_kind():
    erp = TargetPolicy.of(allow_http=True, networks=["10.20.0.0/16"])
    erp.check_url("http://10.20.3.4:8080/hooks")
    with pytest.raises(ValidationError):
        erp.check_url("http://10.21.0.1/hooks")
    anywhere_private = TargetPolicy.of(allow_http=False, networks=["*"])
    for address in ("127.0.0.1", "192.168.1.1", "fd00::1", "169.254.1.1"):
        assert anywhere_private.refusal(ipaddress.ip_address(address)) is None
    # the metadata service and addresses nobody's receiver has stay refused
    for address in ("169.254.169.254", "224.0.0.1", "0.0.0.0", "::ffff:127.0.0.1"):  # noqa: S104
        assert anywhere_private.refusal(ipaddress.ip_address(address)) is not None
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 network"):
        TargetPolicy.of(allow_http=False, networks=["intranet"])
