"""A whole day of License Central at DEBUG, then everything it wrote searched for every
secret and every customer's e-mail address that day made: none may be there.

``licentia serve`` runs as an operator runs it (access log on, JSON lines, level
debug: SQL statements logged too), and the journey touches each secret the server
hands out or takes in: the demo's API key, password and ticket, a new API key, a
vendor user's session, the tickets of two orders, a device's activation, a cloud
container's credential, its device token, a seat token and an access token, a webhook
endpoint's secrets (made and rotated), the operator's metrics token and master key, a
customer user's invitation and password reset (their mailed links followed, the new
passwords set), and a request refused for a NUL character with a customer's address
beside it (refused before any statement; that a failed statement's parameters are
never part of its error is tests/integration/test_statement_errors.py's). The check
is tests/support/leaks.py, shown to catch a planted leak by tests/unit/test_log_lines.py.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
from email import message_from_bytes
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.databases import fresh_database
from tests.integration.device_messages import BareDevice
from tests.support.leaks import leaks
from tests.support.servers import LICENTIA, Server, free_port, new_environment, wait_ready

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
WELCOME = re.compile(r"http://\S+(/portal/demo/welcome/([A-Za-z0-9_-]+))")
RESET = re.compile(r"http://\S+(/portal/demo/reset/([A-Za-z0-9_-]+))")
PROXY_REQUEST_ID = "edge-7f3c-journey"


class Journey:
    """The calls of one day, noting every secret and customer address they meet."""

    def __init__(self, server: Server, demo: dict[str, Any], mail: Path) -> None:
        self.url = server.url
        self.mail = mail
        self.secrets: list[str] = []
        self.addresses: list[str] = []
        self.api_key = demo["api_key"]
        self.note(demo["api_key"], demo["ticket_code"], demo["password (all demo users)"])
        self.addresses.append(demo["customer admin (Acme Photo GmbH)"])
        self.demo = demo

    def note(self, *found: str) -> None:
        self.secrets.extend(found)

    def api(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.api_key}", **kwargs.pop("headers", {})}
        answer = httpx.request(
            method, f"{self.url}/api/v1{path}", headers=headers, timeout=30, **kwargs
        )
        assert answer.status_code == status, answer.text
        return answer.json() if answer.content else None

    def mailed(self, pattern: re.Pattern[str]) -> re.Match[str]:
        """The link in the mail that ``pattern`` finds (written just after the answer,
        so read again until it is complete)."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            for path in self.mail.glob("*.eml"):
                message = message_from_bytes(path.read_bytes())
                for part in message.walk():
                    payload = part.get_payload(decode=True)
                    if part.get_content_type() == "text/plain" and isinstance(payload, bytes):
                        found = pattern.search(payload.decode(errors="replace"))
                        if found:
                            return found
            time.sleep(0.05)
        raise AssertionError(f"no mail with {pattern.pattern} in {self.mail}")


def _form(
    client: httpx.Client, page: str, data: dict[str, str], action: str = ""
) -> httpx.Response:
    found = CSRF.search(client.get(page).text)
    assert found, page
    return client.post(action or page, data={"csrf_token": found.group(1), **data})


def _vendor_side(day: Journey) -> tuple[str, str]:
    """A new API key, a session, a customer, products and two orders: the tickets."""
    issued = day.api(
        "POST", "/api-keys", 201, json={"name": "erp", "scopes": ["catalog:write", "orders:write"]}
    )
    day.note(issued["secret"])
    login = {"vendor": "demo", "email": day.demo["user (admin)"]}
    session = day.api(
        "POST", "/sessions", 201, json={**login, "password": day.demo["password (all demo users)"]}
    )
    day.note(session["token"])
    buyer = f"buyer.{secrets.token_hex(3)}@customer-gmbh.example"
    day.addresses.append(buyer)
    customer = day.api("POST", "/customers", 201, json={"name": "Buyer GmbH", "email": buyer})
    product = day.api(
        "POST",
        "/products",
        201,
        json={"code": "JOURNEY", "name": "Journey", "features": [{"code": "run"}]},
    )
    tickets = []
    for name, options in (("DEV", {}), ("SEAT", {"delivery": "seat_pool", "seats": 2})):
        template = {
            "sku": f"J-{name}",
            "name": name,
            "product_id": product["id"],
            "features": ["run"],
        }
        day.api("POST", "/templates", 201, json={**template, "options": options})
        order = day.api(
            "POST",
            "/orders",
            201,
            json={
                "external_order_id": f"J-{name}-1",
                "customer_id": customer["id"],
                "lines": [{"sku": f"J-{name}", "quantity": 1}],
            },
        )
        day.note(order["ticket_code"])
        tickets.append(order["ticket_code"])
    return tickets[0], tickets[1]


def _device_and_cloud(day: Journey, device_ticket: str, cloud_ticket: str) -> None:
    base = f"{day.url}/api/v1/vendors/demo"
    activated = httpx.post(
        f"{base}/devices/activate",
        content=BareDevice("demo").request("activate", device_ticket),
        headers={"Content-Type": "application/jose"},
        timeout=30,
    )
    assert activated.status_code == 200, activated.text
    redeemed = httpx.post(f"{base}/cloud/redeem", json={"ticket": cloud_ticket}, timeout=30)
    assert redeemed.status_code == 201, redeemed.text
    credential = redeemed.json()["credential"]
    registered = httpx.post(
        f"{base}/cloud/devices", json={"credential": credential, "name": "laptop"}, timeout=30
    )
    assert registered.status_code == 201, registered.text
    token = registered.json()["token"]
    seat = httpx.post(
        f"{base}/cloud/seats",
        json={"product": "JOURNEY", "user": "ann", "device": "laptop"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert seat.status_code == 201, seat.text
    day.note(credential, token, seat.json()["token"])


def _webhooks(day: Journey) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/hook"  # deliveries fail, and are logged
    endpoint = day.api("POST", "/webhook-endpoints", 201, json={"url": nowhere})
    rotated = day.api("POST", f"/webhook-endpoints/{endpoint['id']}/actions/rotate-secret", json={})
    day.note(endpoint["secret"], rotated["secret"])


def _customer_user(day: Journey) -> None:
    """The customer admin invites a colleague, who sets a password from the mailed link
    and later resets it from another."""
    colleague = f"colleague.{secrets.token_hex(3)}@customer-gmbh.example"
    day.addresses.append(colleague)
    first, second = (
        "first-password-" + secrets.token_hex(6),
        "second-password-" + secrets.token_hex(6),
    )
    day.note(first, second)
    with httpx.Client(base_url=day.url, timeout=30) as admin:
        login = {
            "email": day.demo["customer admin (Acme Photo GmbH)"],
            "password": day.demo["password (all demo users)"],
        }
        assert _form(admin, "/portal/demo/login", login).status_code == 303
        assert _form(admin, "/portal/demo/users", {"email": colleague}).status_code == 303
    welcome = day.mailed(WELCOME)
    day.note(welcome.group(2))
    with httpx.Client(base_url=day.url, timeout=30) as person:
        assert person.get(welcome.group(1)).status_code == 200
        assert (
            _form(
                person, welcome.group(1), {"password": first, "password_again": first}
            ).status_code
            == 303
        )
        assert _form(person, "/portal/demo/forgot", {"email": colleague}).status_code == 303
        reset = day.mailed(RESET)
        day.note(reset.group(2))
        assert person.get(reset.group(1)).status_code == 200
        assert (
            _form(
                person, reset.group(1), {"password": second, "password_again": second}
            ).status_code
            == 303
        )


def _refused_request(day: Journey) -> None:
    """A value no backend takes (a NUL character), beside a customer's address."""
    address = f"refused.{secrets.token_hex(3)}@customer-gmbh.example"
    day.addresses.append(address)
    day.api("POST", "/customers", 422, json={"name": "Nul\u0000 GmbH", "email": address})


def _metrics_and_proxy(day: Journey, metrics_token: str) -> None:
    scraped = httpx.get(
        f"{day.url}/metrics", headers={"Authorization": f"Bearer {metrics_token}"}, timeout=30
    )
    assert scraped.status_code == 200 and "licentia_http_requests_total" in scraped.text
    # The server trusts its loopback proxy: the proxy's request id names the request.
    named = httpx.get(
        f"{day.url}/api/v1/licenses",
        headers={"Authorization": f"Bearer {day.api_key}", "X-Request-ID": PROXY_REQUEST_ID},
        timeout=30,
    )
    assert named.headers["X-Request-ID"] == PROXY_REQUEST_ID


def test_a_day_at_debug_leaves_no_secret_and_no_customer_address_in_any_log(
    backend: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
):
    workdir = tmp_path_factory.mktemp("secret-logs")
    mail = workdir / "mail"
    metrics_token = secrets.token_urlsafe(24)
    with fresh_database(database_url, workdir) as url:
        env = new_environment(
            url,
            workdir,
            {
                "LICENTIA_MAIL_URL": f"file:{mail}",
                "LICENTIA_LOG_LEVEL": "debug",
                "LICENTIA_LOG_FORMAT": "json",
                "LICENTIA_METRICS_TOKEN": metrics_token,
                "LICENTIA_WEBHOOK_POLL_SECONDS": "0.2",
                "LICENTIA_WEBHOOK_ALLOW_HTTP": "true",  # the receiver that never answers
                "LICENTIA_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
                "LICENTIA_TRUSTED_PROXIES": "127.0.0.1",
            },
        )
        env.cli("db", "upgrade")
        demo = env.cli("demo")
        port = free_port()
        log = workdir / "serve.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [LICENTIA, "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env.variables(),
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Server(process, f"http://127.0.0.1:{port}", log)
        try:
            wait_ready(server)
            day = Journey(server, demo, mail)
            day.note(env.master_key, metrics_token)
            device_ticket, cloud_ticket = _vendor_side(day)
            _device_and_cloud(day, device_ticket, cloud_ticket)
            _webhooks(day)
            _customer_user(day)
            _refused_request(day)
            _metrics_and_proxy(day, metrics_token)
            time.sleep(1)  # a few rounds of (failing) webhook deliveries
        finally:
            server.stop()

    written = log.read_text(errors="replace")
    lines = [json.loads(line) for line in written.splitlines() if line.startswith("{")]
    # The log really was at DEBUG, JSON, with the access log and request ids in it.
    assert any(line.get("logger") == "sqlalchemy.engine.Engine" for line in lines)
    access = [line for line in lines if line.get("logger") == "uvicorn.access"]
    assert any(line.get("path") == "/portal/demo/welcome/[token]" for line in access)
    assert any(line.get("request_id") == PROXY_REQUEST_ID for line in access)
    assert all(line.get("request_id") for line in access)
    assert leaks(written, day.secrets) == []
    assert leaks(written, day.addresses) == []
