"""What the server's log lines look like, and that no known shape of secret survives
them (docs/security.md#what-is-never-logged).

The same lines written by a plain formatter are caught by the check the end-to-end
test greps with (tests/support/leaks.py): the check can fail, and the redaction is
what makes it pass."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from licentia.server.observability.logs import Formatter
from licentia.server.observability.redaction import redact
from tests.support.leaks import leaks

SECRETS = {
    "api key": "lic_0123456789ab_Q2hlY2tpbmctdGhlLWxvZy1yZWRhY3Rpb24tMTIzNA",
    "session": "lis_c2Vzc2lvbi10b2tlbi1vZi1hLXZlbmRvci11c2Vy",
    "customer session": "lcu_c2Vzc2lvbi10b2tlbi1vZi1hLWN1c3RvbWVyLXVzZXI",
    "cloud credential": "lcc_a1b2c3d4e5f6_Y2xvdWQtY29udGFpbmVyLWNyZWRlbnRpYWwtMTIz",
    "device token": "lcd_a1b2c3d4e5f6_ZGV2aWNlLXRva2VuLW9mLWEtY2xvdWQtZGV2aWNl",
    "webhook secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw+9Pvm1L/vy0=",
    "ticket": "7K3QD-M9XWA-4HNPR-2VBTC-8ZJ6E",
    "reset token": "Zm9yZ290LXBhc3N3b3JkLWxpbmstdG9rZW4tMTIzNDU2",
    "customer e-mail": "ops.lead@customer-gmbh.example",
    "database password": "pg-pass-w0rd-9f8e",
    "seat token": "eyJhbGciOiJFZDI1NTE5In0.eyJzdWIiOiJzZWF0In0.c2lnbmF0dXJlLWJ5dGVz",
}
LINES = [
    f"created API key {SECRETS['api key']}",
    f"Authorization: Bearer {SECRETS['session']}",
    f"customer logged in with {SECRETS['customer session']}",
    f"redeemed: credential {SECRETS['cloud credential']}, device {SECRETS['device token']}",
    f"endpoint secret {SECRETS['webhook secret']}",
    f"ticket {SECRETS['ticket']} issued, typed as {SECRETS['ticket'].lower()}",
    f"GET /portal/acme/reset/{SECRETS['reset token']}",
    f"GET /console/reset/demo/{SECRETS['reset token']}?next=/",
    f"mail to {SECRETS['customer e-mail']} (Your licenses) written",
    f"connecting to postgresql://licentia:{SECRETS['database password']}@db:5432/licentia",
    f"seat token {SECRETS['seat token']}",
]


@pytest.fixture
def written() -> Iterator[tuple[logging.Logger, io.StringIO, logging.StreamHandler]]:
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    logger = logging.getLogger("licentia.test-log-lines")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, sink, handler
    logger.removeHandler(handler)


def _write_all(logger: logging.Logger) -> None:
    for line in LINES:
        logger.info(line)
    try:
        raise ValueError(f"no such ticket {SECRETS['ticket']} for {SECRETS['customer e-mail']}")
    except ValueError:
        logger.exception("redeeming failed")


def test_a_plain_formatter_leaks_every_secret_and_the_check_sees_it(written):
    logger, sink, handler = written
    handler.setFormatter(logging.Formatter("%(message)s"))
    _write_all(logger)
    assert sorted(leaks(sink.getvalue(), SECRETS.values())) == sorted(SECRETS.values())


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "console"])
def test_the_servers_formatter_leaves_no_secret_in_a_line(written, as_json: bool):
    logger, sink, handler = written
    handler.setFormatter(Formatter(as_json=as_json))
    _write_all(logger)
    assert leaks(sink.getvalue(), SECRETS.values()) == []
    # What is left still tells the operator what happened, and to whom roughly.
    assert "lic_0123456789ab_[redacted]" in sink.getvalue()
    assert "customer-gmbh.example" in sink.getvalue()
    assert "/portal/acme/reset/[token]" in sink.getvalue()


def test_a_json_line_carries_the_request_id_level_logger_and_time(written):
    logger, sink, handler = written
    handler.setFormatter(Formatter(as_json=True))
    structlog.contextvars.bind_contextvars(request_id="4f2a9c")
    try:
        logger.warning("database refused a value on %s", "POST /api/v1/customers")
    finally:
        structlog.contextvars.clear_contextvars()
    line = json.loads(sink.getvalue())
    assert line["request_id"] == "4f2a9c"
    assert line["level"] == "warning" and line["logger"] == "licentia.test-log-lines"
    assert line["event"] == "database refused a value on POST /api/v1/customers"
    assert line["timestamp"].endswith("Z")


def test_the_access_log_line_becomes_fields_with_the_token_cut_out(written):
    _logger, sink, handler = written
    handler.setFormatter(Formatter(as_json=True))
    access = logging.getLogger("uvicorn.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        access.info(
            '%s - "%s %s HTTP/%s" %d',
            "10.0.0.7:52114",
            "GET",
            f"/portal/acme/welcome/{SECRETS['reset token']}",
            "1.1",
            200,
        )
    finally:
        access.removeHandler(handler)
    line = json.loads(sink.getvalue())
    assert line["event"] == "request" and line["status"] == 200 and line["method"] == "GET"
    assert line["path"] == "/portal/acme/welcome/[token]"
    assert SECRETS["reset token"] not in sink.getvalue()


def test_ordinary_words_and_ids_are_left_alone():
    text = "license 01J9Z3K4 of product PHOTO-PRO activated on device 5f2c; 3 seats in use"
    assert redact(text) == text
