"""Edges of HTTP that a client notices: the ``Authorization`` header is read the same
way on every path (hot or not), and an unexpected server error is answered without
dropping the client's keep-alive connection (docs/security.md)."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI

from licentia.server.api import create_app
from licentia.server.db.engine import Database
from licentia.server.keys.master import MasterKey
from licentia.server.settings import Settings
from tests.integration.test_errors import assert_problem


@pytest.mark.parametrize(
    "header",
    ["Bearer  {key}", "bearer {key}", "BEARER {key}", "Bearer {key}  ", "  Bearer   {key}"],
)
def test_a_credential_is_read_alike_by_the_hot_calls_and_every_other_route(vendors, header):
    vendor = vendors.create()
    license_id = vendor.license()["id"]
    headers = {"Authorization": header.format(key=vendor.api_key)}
    hot = vendor.client.get(f"/api/v1/licenses/{license_id}", headers=headers)
    plain = vendor.client.get("/api/v1/products", headers=headers)
    assert (hot.status_code, plain.status_code) == (200, 200), hot.text


@pytest.mark.parametrize("header", ["Bearer", "Bearer   ", "Basic {key}", "{key}", "Bearer\t{key}"])
def test_a_header_without_a_bearer_credential_is_refused_alike(vendors, header):
    vendor = vendors.create()
    license_id = vendor.license()["id"]
    headers = {"Authorization": header.format(key=vendor.api_key)}
    hot = vendor.client.get(f"/api/v1/licenses/{license_id}", headers=headers)
    plain = vendor.client.get("/api/v1/products", headers=headers)
    assert_problem(hot, 401, "UNAUTHENTICATED")
    assert_problem(plain, 401, "UNAUTHENTICATED")


def _boom() -> None:
    raise RuntimeError("a defect in a route")


@pytest.fixture
def server_with_a_defect(
    settings: Settings, database: Database, master: MasterKey
) -> Iterator[tuple[str, int]]:
    """A real server whose app has one route that fails unexpectedly."""
    app: FastAPI = create_app(settings, database=database, master=master)
    app.add_api_route("/api/v1/defect", _boom)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.01)
    yield listener.getsockname()
    server.should_exit = True
    thread.join(timeout=30)
    listener.close()


def test_an_unexpected_error_is_answered_on_a_connection_that_stays_open(server_with_a_defect):
    host, port = server_with_a_defect
    connection = http.client.HTTPConnection(host, port, timeout=60)
    try:
        connection.request("GET", "/api/v1/defect")
        failed = connection.getresponse()
        body = failed.read()
        assert failed.status == 500
        assert b"INTERNAL_ERROR" in body and b"a defect in a route" not in body
        assert failed.getheader("connection") != "close"
        connection.request("GET", "/healthz")  # the same connection, as a pooling client
        again = connection.getresponse()
        assert again.status == 200
        assert again.read() == b'{"status":"ok"}'
    finally:
        connection.close()
