"""A browser-like client for the web fronts: its own cookies and its own address,
forms posted with the CSRF token the page gave."""

from __future__ import annotations

import re
import secrets
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from licentia.domain.actors import operator
from licentia.server.customer_users.services import create_customer_user
from licentia.server.db.engine import Database
from licentia.server.orders.services import create_customer
from licentia.server.tenancy import services as tenancy
from tests.factories import PASSWORD, VendorHandle

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """One visitor: cookies kept between requests, a client address of its own (the
    login throttle counts per address), redirects not followed unless asked."""

    def __init__(self, app: FastAPI, *, language: str = "en") -> None:
        self.client = TestClient(
            app,
            raise_server_exceptions=False,
            follow_redirects=False,
            client=(f"client-{secrets.token_hex(4)}", 50000),
            headers={"Accept-Language": language},
        )

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.client.get(path, **kwargs)

    def token(self, path: str) -> str:
        found = _TOKEN.search(self.get(path).text)
        assert found, f"no form with a CSRF token on {path}"
        return found.group(1)

    def submit(self, page: str, action: str, data: dict[str, str], **kwargs: Any) -> Response:
        """Post a form of ``page`` to ``action`` the way a browser would."""
        return self.client.post(action, data={"csrf_token": self.token(page), **data}, **kwargs)

    def plant_session(self, token: str) -> None:
        """Set the session cookie as another site or person could have."""
        self.client.cookies.set("licentia_session", token, domain="testserver.local", path="/")

    @property
    def session_cookie(self) -> str | None:
        return self.client.cookies.get("licentia_session")


def staff_user(vendor: VendorHandle, role: str = "admin") -> str:
    email = f"{role}-{secrets.token_hex(4)}@example.test"
    with vendor.database.transaction() as session:
        tenancy.create_user(
            session, operator(vendor.id), vendor.id, email=email, password=PASSWORD, role=role
        )
    return email


def customer_with_admin(database: Database, vendor: VendorHandle) -> tuple[str, str]:
    """A new customer of ``vendor`` and the e-mail of its customer admin."""
    email = f"admin-{secrets.token_hex(4)}@customer.test"
    with database.transaction() as session:
        customer = create_customer(
            session, operator(vendor.id), name="Customer", external_id=None, email=None
        )
        create_customer_user(
            session, operator(vendor.id), customer.id, email=email, role="admin", password=PASSWORD
        )
    return customer.id, email


def log_in_staff(browser: Browser, vendor: VendorHandle, email: str) -> Response:
    return browser.submit(
        "/console/login",
        "/console/login",
        {"vendor": vendor.slug, "email": email, "password": PASSWORD},
    )


def log_in_customer(browser: Browser, vendor: VendorHandle, email: str) -> Response:
    login = f"/portal/{vendor.slug}/login"
    return browser.submit(login, login, {"email": email, "password": PASSWORD})
