"""Request bodies are bounded per route and refused before they are read
(docs/security.md, "Bounded requests"): a JSON route takes 64 KiB, a device's signed
message 256 KiB, a page that uploads a file that and its form. Beyond it: 413
``BODY_TOO_LARGE`` (an error page on a page), whether the body declares its length or
comes in chunks, on the hot calls as on every other route."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI

from licentia.server.api import create_app
from licentia.server.api.bodies import DEVICE_MESSAGE, JSON_BODY
from licentia.server.db.engine import Database
from licentia.server.keys.master import MasterKey
from licentia.server.settings import Settings
from licentia.server.web.units import FORM_WITH_FILE
from tests.integration.test_errors import assert_problem

JSON = {"Content-Type": "application/json"}


def _order_body(vendor, size: int) -> bytes:
    """A well-formed order whose JSON is ``size`` bytes long (spaces pad it)."""
    body = json.dumps(
        {"external_order_id": vendor.unique("BIG"), "lines": [{"sku": "NO-SUCH-SKU"}]}
    ).encode()
    return body + b" " * (size - len(body))


def _chunks(body: bytes, size: int = 16 * 1024) -> Iterator[bytes]:
    """The body in pieces: sent chunked, with no Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_a_json_body_over_64_kib_is_refused_one_within_is_read(vendors, chunked):
    vendor = vendors.create()
    body = _order_body(vendor, JSON_BODY + 1)
    content = _chunks(body) if chunked else body
    refused = vendor.post("/orders", content=content, headers=JSON)
    problem = assert_problem(refused, 413, "BODY_TOO_LARGE")
    assert problem["max_bytes"] == JSON_BODY
    # The same body within the limit is read, and refused for what it says.
    read = vendor.post("/orders", content=body[:JSON_BODY], headers=JSON)
    assert_problem(read, 422, "UNKNOWN_SKU")


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_a_device_message_may_be_longer_than_json_but_not_beyond_256_kib(vendors, chunked):
    vendor = vendors.create()
    path = f"/api/v1/vendors/{vendor.slug}/devices/activate"  # a hot call
    within = b"x" * (JSON_BODY * 2)
    beyond = b"x" * (DEVICE_MESSAGE + 1)
    read = vendor.client.post(path, content=_chunks(within) if chunked else within)
    assert_problem(read, 401, "SIGNATURE_INVALID")  # read, and found to be no JWS
    refused = vendor.client.post(path, content=_chunks(beyond) if chunked else beyond)
    assert assert_problem(refused, 413, "BODY_TOO_LARGE")["max_bytes"] == DEVICE_MESSAGE


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_a_hot_json_call_takes_64_kib_like_any_json_route(vendors, chunked):
    vendor = vendors.create()
    path = f"/api/v1/vendors/{vendor.slug}/cloud/seats"
    body = json.dumps({"product": "P", "user": "u" * (JSON_BODY + 1)}).encode()
    refused = vendor.client.post(
        path,
        content=_chunks(body) if chunked else body,
        headers={"Authorization": "Bearer lcd_unknown", "Content-Type": "application/json"},
    )
    assert_problem(refused, 413, "BODY_TOO_LARGE")


def test_a_page_refuses_a_file_beyond_its_limit_with_an_error_page(vendors):
    vendor = vendors.create()
    path = f"/portal/{vendor.slug}/offline/request"
    upload = {"request_file": ("request.jws", b"x" * FORM_WITH_FILE, "application/jose")}
    refused = vendor.client.post(path, files=upload)
    assert refused.status_code == 413
    assert refused.headers["content-type"].startswith("text/html")
    assert "BODY_TOO_LARGE" in refused.text and "too large" in refused.text


def test_a_page_form_takes_64_kib(vendors):
    vendor = vendors.create()
    refused = vendor.client.post("/console/login", data={"vendor": "x" * (JSON_BODY + 1)})
    assert refused.status_code == 413
    assert "BODY_TOO_LARGE" in refused.text


# --- on the wire: a real server, a client that declares or streams a large body --------


@pytest.fixture
def server(settings: Settings, database: Database, master: MasterKey) -> Iterator[tuple[str, int]]:
    app: FastAPI = create_app(settings, database=database, master=master)
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


def _answer(connection: socket.socket) -> tuple[int, dict]:
    """Status and JSON body of the one answer the server sends on ``connection``."""
    response = http.client.HTTPResponse(connection)
    response.begin()
    return response.status, json.loads(response.read())


def _headers(method: str, path: str, api_key: str, framing: str) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: licentia.test",
        f"Authorization: Bearer {api_key}",
        "Content-Type: application/json",
        framing,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize(
    "path", ["/api/v1/orders", "/api/v1/vendors/{slug}/devices/activate"], ids=["route", "hot"]
)
def test_a_declared_length_beyond_the_limit_is_answered_before_any_byte_of_it(
    server, vendors, path
):
    vendor = vendors.create()
    with socket.create_connection(server, timeout=60) as connection:
        head = _headers("POST", path.format(slug=vendor.slug), vendor.api_key, "")
        connection.sendall(head.replace(b"\r\n\r\n", b"\r\nContent-Length: 104857600\r\n\r\n"))
        status, problem = _answer(connection)  # not one byte of the 100 MB was sent
    assert (status, problem["code"]) == (413, "BODY_TOO_LARGE")


def test_a_chunked_body_is_cut_at_the_limit_while_other_clients_are_served(server, vendors):
    vendor = vendors.create()
    sku = vendor.template()["sku"]
    with socket.create_connection(server, timeout=60) as upload:
        upload.sendall(
            _headers("POST", "/api/v1/orders", vendor.api_key, "Transfer-Encoding: chunked")
        )
        chunk = b" " * 16 * 1024
        for _ in range(3):  # 48 KiB sent: within the limit, the upload still open
            upload.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        host, port = server
        served = http.client.HTTPConnection(host, port, timeout=60)
        served.request(
            "POST",
            "/api/v1/orders",
            json.dumps({"external_order_id": vendor.unique("OK"), "lines": [{"sku": sku}]}),
            {"Authorization": f"Bearer {vendor.api_key}", "Content-Type": "application/json"},
        )
        assert served.getresponse().status == 201  # while the large upload waits
        served.close()
        for _ in range(2):  # past 64 KiB
            upload.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        status, problem = _answer(upload)  # without the end of the body
    assert (status, problem["code"], problem["max_bytes"]) == (413, "BODY_TOO_LARGE", JSON_BODY)


def test_a_route_that_reads_no_body_refuses_a_declared_long_one_as_a_problem(vendors):
    vendor = vendors.create()
    license_id = vendor.license()["id"]
    refused = vendor.post(f"/licenses/{license_id}/actions/suspend", content=b"x" * (JSON_BODY + 1))
    assert_problem(refused, 413, "BODY_TOO_LARGE")
    assert vendor.ok("GET", f"/licenses/{license_id}")["state"] == "available"
