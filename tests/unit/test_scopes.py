"""Scopes and roles: what each vendor-user role may do, and how a missing scope is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from licentia.domain.actors import Actor, ActorKind, operator
from licentia.domain.errors import PermissionDeniedError
from licentia.domain.scopes import ROLE_SCOPES, SCOPES, Role

scope_sets = st.frozensets(st.sampled_from(SCOPES))


def resources(scopes: frozenset[str], access: str) -> set[str]:
    return {scope.split(":")[0] for scope in scopes if scope.endswith(f":{access}")}


def test_every_scope_is_a_resource_and_an_access_of_read_or_write() -> None:
    for scope in SCOPES:
        resource, access = scope.split(":")
        assert resource and access in {"read", "write"}
    assert len(set(SCOPES)) == len(SCOPES)


def test_every_role_has_scopes_and_only_known_ones() -> None:
    assert set(ROLE_SCOPES) == set(Role)
    for scopes in ROLE_SCOPES.values():
        assert scopes and scopes <= set(SCOPES)


@pytest.mark.parametrize("role", list(Role))
def test_a_role_that_may_write_a_resource_may_also_read_it(role: Role) -> None:
    scopes = ROLE_SCOPES[role]
    assert resources(scopes, "write") <= resources(scopes, "read")


def test_an_admin_holds_every_scope() -> None:
    assert ROLE_SCOPES[Role.ADMIN] == frozenset(SCOPES)


def test_read_only_reads_everything_and_writes_nothing() -> None:
    read_only = ROLE_SCOPES[Role.READ_ONLY]
    assert resources(read_only, "write") == set()
    assert read_only == {scope for scope in SCOPES if scope.endswith(":read")}


def test_every_role_reads_the_catalog_customers_orders_and_licenses() -> None:
    daily = {"catalog:read", "customers:read", "orders:read", "licenses:read"}
    for scopes in ROLE_SCOPES.values():
        assert daily <= scopes


def test_sales_sells_but_neither_touches_keys_nor_reads_the_audit_log() -> None:
    sales = ROLE_SCOPES[Role.SALES]
    assert {"catalog:write", "customers:write", "orders:write"} <= sales
    assert not sales & {"keys:read", "keys:write", "audit:read", "licenses:write"}


def test_support_looks_after_customers_and_licenses_but_does_not_sell() -> None:
    support = ROLE_SCOPES[Role.SUPPORT]
    assert {"customers:write", "licenses:write", "audit:read"} <= support
    assert not support & {"catalog:write", "orders:write", "keys:write"}


def test_only_the_admin_may_manage_keys() -> None:
    holders = {role for role, scopes in ROLE_SCOPES.items() if "keys:write" in scopes}
    assert holders == {Role.ADMIN}


@given(held=scope_sets, wanted=st.sampled_from(SCOPES))
def test_an_actor_is_refused_exactly_the_scopes_it_does_not_hold(
    held: frozenset[str], wanted: str
) -> None:
    actor = Actor(ActorKind.API_KEY, "key-1", "vendor-1", held)
    if wanted in held:
        actor.require(wanted)
    else:
        with pytest.raises(PermissionDeniedError) as refused:
            actor.require(wanted)
        assert refused.value.code == "FORBIDDEN"
        assert refused.value.details["scope"] == wanted


def test_the_operator_holds_every_scope_on_its_vendor() -> None:
    actor = operator("vendor-1")
    for scope in SCOPES:
        actor.require(scope)
    assert actor.vendor_id == "vendor-1"
