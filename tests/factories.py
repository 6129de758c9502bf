"""Test data: vendors with credentials, and the catalog and orders they need."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import update

from licentia.domain.actors import operator
from licentia.domain.scopes import SCOPES
from licentia.server.db.engine import Database
from licentia.server.keys.master import MasterKey
from licentia.server.keys.services import create_signing_key
from licentia.server.licenses.models import License
from licentia.server.tenancy import services as tenancy

PASSWORD = "correct horse battery staple"


@dataclass
class VendorHandle:
    """One tenant and a client authenticated as its admin API key."""

    id: str
    slug: str
    api_key: str
    client: TestClient
    database: Database
    master: MasterKey
    counter: list[int] = field(default_factory=lambda: [0])

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def unique(self, prefix: str) -> str:
        self.counter[0] += 1
        return f"{prefix}-{self.counter[0]}"

    def request(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Response:
        headers = {"Authorization": f"Bearer {token or self.api_key}", **kwargs.pop("headers", {})}
        return self.client.request(method, f"/api/v1{path}", headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Response:
        return self.request("POST", path, **kwargs)

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        assert response.status_code < 300, response.text
        return response.json()

    # --- catalog and orders ---------------------------------------------------------

    def product(self, features: tuple[str, ...] = ("edit", "export")) -> dict[str, Any]:
        return self.ok(
            "POST",
            "/products",
            json={
                "code": self.unique("PROD"),
                "name": "Product",
                "features": [{"code": code} for code in features],
            },
        )

    def template(self, options: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
        product = overrides.pop("product", None) or self.product()
        body = {
            "sku": self.unique("SKU"),
            "name": "Template",
            "product_id": product["id"],
            "features": [f["code"] for f in product["features"]],
            "options": options or {},
            **overrides,
        }
        return self.ok("POST", "/templates", json=body)

    def order(self, lines: list[dict[str, Any]] | None = None, **body: Any) -> dict[str, Any]:
        if lines is None:
            lines = [{"sku": self.template()["sku"], "quantity": 1}]
        payload = {"external_order_id": self.unique("ORDER"), "lines": lines, **body}
        return self.ok("POST", "/orders", json=payload)

    def license(self, options: dict[str, Any] | None = None) -> dict[str, Any]:
        template = self.template(options)
        order = self.order([{"sku": template["sku"], "quantity": 1}])
        ticket = self.ok("GET", f"/tickets/{order['ticket_id']}")
        return self.ok("GET", f"/licenses/{ticket['license_ids'][0]}")

    def expired_license(self) -> dict[str, Any]:
        """A license whose validity ended a day ago: issued when its end lay ahead (a
        template whose end date is over issues nothing), then the calendar moved on."""
        license_ = self.license({"validity": {"kind": "fixed_end", "end_date": "2999-12-31"}})
        with self.database.transaction() as session:
            session.execute(
                update(License)
                .where(License.id == license_["id"])
                .values(valid_until=datetime.now(UTC) - timedelta(days=1))
            )
        return self.ok("GET", f"/licenses/{license_['id']}")

    # --- people --------------------------------------------------------------------

    def user_token(self, role: str) -> str:
        email = f"{role}-{secrets.token_hex(4)}@example.test"
        with self.database.transaction() as session:
            tenancy.create_user(
                session, operator(self.id), self.id, email=email, password=PASSWORD, role=role
            )
        response = self.client.post(
            "/api/v1/sessions", json={"vendor": self.slug, "email": email, "password": PASSWORD}
        )
        assert response.status_code == 201, response.text
        return str(response.json()["token"])

    def new_api_key(self, scopes: list[str]) -> str:
        with self.database.transaction() as session:
            issued = tenancy.create_api_key(
                session, operator(self.id), self.id, name="test", scopes=scopes
            )
        return issued.secret


@dataclass
class VendorFactory:
    database: Database
    master: MasterKey
    client: TestClient

    def create(self, *, signing_key: bool = True) -> VendorHandle:
        slug = f"v-{secrets.token_hex(6)}"
        with self.database.transaction() as session:
            vendor = tenancy.create_vendor(session, operator(), slug=slug, name=slug)
            if signing_key:
                create_signing_key(session, operator(vendor.id), vendor.id, self.master)
            issued = tenancy.create_api_key(
                session, operator(vendor.id), vendor.id, name="admin", scopes=list(SCOPES)
            )
        return VendorHandle(vendor.id, slug, issued.secret, self.client, self.database, self.master)
