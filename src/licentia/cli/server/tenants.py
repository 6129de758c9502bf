"""``licentia admin vendor|user|api-key|signing-key|master-key``: the operator's
commands for vendors, their staff and their keys (``licentia.cli.server.admin`` names
them)."""

from __future__ import annotations

from typing import Annotated

import typer

from licentia.cli.output import Output
from licentia.cli.server.errors import server_guarded as guarded
from licentia.cli.server.runtime import Runtime
from licentia.domain.actors import operator
from licentia.domain.scopes import SCOPES, Role
from licentia.server.db.base import utcnow
from licentia.server.keys import services as keys
from licentia.server.keys.master import new_master_key_text
from licentia.server.logins import locks
from licentia.server.logins.services import CUSTOMER, STAFF, ThrottlePolicy
from licentia.server.tenancy import services as tenancy

app = typer.Typer(no_args_is_help=True)
vendor_app = typer.Typer(no_args_is_help=True, help="Vendors (tenants).")
user_app = typer.Typer(no_args_is_help=True, help="Vendor staff.")
key_app = typer.Typer(no_args_is_help=True, help="API keys.")
signing_app = typer.Typer(no_args_is_help=True, help="Vendor signing keys.")
app.add_typer(vendor_app, name="vendor")
app.add_typer(user_app, name="user")
app.add_typer(key_app, name="api-key")
app.add_typer(signing_app, name="signing-key")

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
VendorOpt = Annotated[str, typer.Option("--vendor", help="The vendor's slug.")]
CustomersFlag = Annotated[
    bool,
    typer.Option("--customers", help="The vendor's customer users (License Portal), not staff."),
]


@vendor_app.command("create")
@guarded
def vendor_create(
    slug: str, name: Annotated[str, typer.Option(help="Display name.")], as_json: JsonFlag = False
) -> None:
    """Create a vendor with its first signing key."""
    runtime = Runtime.load()
    runtime.check_ready()
    with runtime.db.transaction() as session:
        vendor = tenancy.create_vendor(session, operator(), slug=slug, name=name)
        key = keys.create_signing_key(session, operator(vendor.id), vendor.id, runtime.master)
        data = {"id": vendor.id, "slug": vendor.slug, "name": vendor.name, "signing_key": key.kid}
    Output(as_json).record(data, title="Vendor created")


@vendor_app.command("list")
@guarded
def vendor_list(as_json: JsonFlag = False) -> None:
    runtime = Runtime.load()
    with runtime.db.read() as session:
        rows = [
            {"id": v.id, "slug": v.slug, "name": v.name, "created_at": v.created_at}
            for v in tenancy.list_vendors(session)
        ]
    Output(as_json).rows(rows, ["slug", "name", "id", "created_at"], title="Vendors")


@user_app.command("create")
@guarded
def user_create(
    vendor: VendorOpt,
    email: Annotated[str, typer.Option()],
    role: Annotated[Role, typer.Option()] = Role.READ_ONLY,
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="LICENTIA_NEW_USER_PASSWORD",
        ),
    ] = "",
    as_json: JsonFlag = False,
) -> None:
    """Create a vendor user (password asked for, or from LICENTIA_NEW_USER_PASSWORD)."""
    runtime = Runtime.load()
    with runtime.db.transaction() as session:
        found = tenancy.get_vendor_by_slug(session, vendor)
        user = tenancy.create_user(
            session, operator(found.id), found.id, email=email, password=password, role=role.value
        )
        data = {"id": user.id, "email": user.email, "role": user.role, "vendor": vendor}
    Output(as_json).record(data, title="User created")


@user_app.command("locks")
@guarded
def user_locks(
    vendor: VendorOpt, customers: CustomersFlag = False, as_json: JsonFlag = False
) -> None:
    """Staff (or customer users) with failed logins in a row, and who is locked until when."""
    runtime = Runtime.load()
    policy, now = ThrottlePolicy.of(runtime.settings), utcnow()
    realm = CUSTOMER if customers else STAFF
    with runtime.db.read() as session:
        found = tenancy.get_vendor_by_slug(session, vendor)
        rows = [
            {
                "email": email,
                "failures": state.failures,
                "locked": state.locked_at(now),
                "locked_until": state.locked_until if state.locked_at(now) else None,
            }
            for email, state in locks.locked_accounts(session, realm, found.id, policy, now)
        ]
    Output(as_json).rows(rows, ["email", "failures", "locked", "locked_until"], title="Logins")


@user_app.command("unlock")
@guarded
def user_unlock(
    vendor: VendorOpt, email: str, customers: CustomersFlag = False, as_json: JsonFlag = False
) -> None:
    """Let a locked-out staff member (or customer user) log in again at once."""
    runtime = Runtime.load()
    with runtime.db.transaction() as session:
        found = tenancy.get_vendor_by_slug(session, vendor)
        realm = CUSTOMER if customers else STAFF
        user_id = locks.unlock_by_email(session, operator(found.id), realm, email)
    data = {"id": user_id, "email": email.lower(), "vendor": vendor}
    Output(as_json).message(data, f"{email} may log in again.")


@key_app.command("create")
@guarded
def api_key_create(
    vendor: VendorOpt,
    name: Annotated[str, typer.Option()],
    scope: Annotated[
        list[str] | None,
        typer.Option(help=f"Repeatable; one of {', '.join(SCOPES)}. Default: every scope."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Issue an API key; the key is printed this once and cannot be shown again."""
    runtime = Runtime.load()
    with runtime.db.transaction() as session:
        found = tenancy.get_vendor_by_slug(session, vendor)
        issued = tenancy.create_api_key(
            session, operator(found.id), found.id, name=name, scopes=scope or list(SCOPES)
        )
        data = {
            "id": issued.key.id,
            "name": name,
            "scopes": list(issued.key.scopes),
            "key": issued.secret,
        }
    Output(as_json).record(data, title="API key (shown once)")


@key_app.command("list")
@guarded
def api_key_list(vendor: VendorOpt, as_json: JsonFlag = False) -> None:
    runtime = Runtime.load()
    with runtime.db.read() as session:
        found = tenancy.get_vendor_by_slug(session, vendor)
        rows = [
            {
                "id": k.id,
                "name": k.name,
                "prefix": k.prefix,
                "scopes": list(k.scopes),
                "last_used_at": k.last_used_at,
                "revoked_at": k.revoked_at,
            }
            for k in tenancy.list_api_keys(session, found.id)
        ]
    Output(as_json).rows(rows, ["id", "name", "prefix", "scopes", "last_used_at", "revoked_at"])


@key_app.command("revoke")
@guarded
def api_key_revoke(vendor: VendorOpt, key_id: str, as_json: JsonFlag = False) -> None:
    runtime = Runtime.load()
    with runtime.db.transaction() as session:
        found = tenancy.get_vendor_by_slug(session, vendor)
        key = tenancy.revoke_api_key(session, operator(found.id), found.id, key_id)
        data = {"id": key.id, "revoked_at": key.revoked_at}
    Output(as_json).record(data, title="API key revoked")


@signing_app.command("rotate")
@guarded
def signing_key_rotate(vendor: VendorOpt, as_json: JsonFlag = False) -> None:
    """A new key signs from now on; the previous one keeps verifying until retired."""
    runtime = Runtime.load()
    with runtime.db.transaction() as session:
        found = tenancy.get_vendor_by_slug(session, vendor)
        key = keys.create_signing_key(session, operator(found.id), found.id, runtime.master)
        data = {"kid": key.kid, "status": key.status}
    Output(as_json).record(data, title="Signing key rotated")


@signing_app.command("retire")
@guarded
def signing_key_retire(vendor: VendorOpt, kid: str, as_json: JsonFlag = False) -> None:
    """Stop trusting a previous key: documents it signed no longer verify."""
    runtime = Runtime.load()
    with runtime.db.transaction() as session:
        found = tenancy.get_vendor_by_slug(session, vendor)
        key = keys.retire_signing_key(session, operator(found.id), found.id, kid)
        data = {"kid": key.kid, "status": key.status}
    Output(as_json).record(data, title="Signing key retired")


@signing_app.command("list")
@guarded
def signing_key_list(vendor: VendorOpt, as_json: JsonFlag = False) -> None:
    runtime = Runtime.load()
    with runtime.db.read() as session:
        found = tenancy.get_vendor_by_slug(session, vendor)
        rows = [
            {
                "kid": k.kid,
                "status": k.status,
                "created_at": k.created_at,
                "retired_at": k.retired_at,
            }
            for k in keys.list_signing_keys(session, found.id)
        ]
    Output(as_json).rows(rows, ["kid", "status", "created_at", "retired_at"])


@app.command("master-key")
def master_key() -> None:
    """Print a new random master key (for LICENTIA_MASTER_KEY or the key file)."""
    typer.echo(new_master_key_text())
