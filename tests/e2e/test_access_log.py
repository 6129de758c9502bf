"""``licentia serve`` with its access log on, as an operator runs it: a password reset
asked for and followed from the mailed link leaves the link's token out of everything
the server writes (the access log and the mail log line)."""

from __future__ import annotations

import re
import subprocess
import time
from email import message_from_bytes
from pathlib import Path

import httpx
import pytest

from tests.e2e.databases import fresh_database
from tests.support.servers import LICENTIA, Server, free_port, new_environment, wait_ready

LINK = re.compile(r"http://\S+(/console/reset/demo/([A-Za-z0-9_-]+))")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _form(client: httpx.Client, path: str, data: dict[str, str]) -> httpx.Response:
    found = CSRF.search(client.get(path).text)
    assert found, path
    return client.post(path, data={"csrf_token": found.group(1), **data})


def _mailed_link(folder: Path) -> tuple[str, str]:
    """The link of the one mail in ``folder`` (written just after the answer went)."""
    deadline = time.monotonic() + 15
    while not list(folder.glob("*.eml")) and time.monotonic() < deadline:
        time.sleep(0.05)
    [mail] = list(folder.glob("*.eml"))
    message = message_from_bytes(mail.read_bytes())
    text = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    payload = text.get_payload(decode=True)
    assert isinstance(payload, bytes)
    found = LINK.search(payload.decode())
    assert found, payload
    return found.group(1), found.group(2)


def test_a_followed_reset_link_leaves_its_token_out_of_the_servers_logs(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
):
    workdir = tmp_path_factory.mktemp("access-log")
    mail = workdir / "mail"
    with fresh_database(database_url, workdir) as url:
        env = new_environment(url, workdir, {"LICENTIA_MAIL_URL": f"file:{mail}"})
        env.cli("db", "upgrade")
        env.cli("demo")
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
            with httpx.Client(base_url=server.url, timeout=30) as client:
                asked = _form(
                    client, "/console/forgot", {"vendor": "demo", "email": "admin@demo.example"}
                )
                assert asked.status_code == 303
                path, token = _mailed_link(mail)
                assert client.get(path).status_code == 200
                done = _form(
                    client,
                    path,
                    {
                        "password": "a-new-demo-password-1",
                        "password_again": "a-new-demo-password-1",
                    },
                )
                assert done.status_code == 303
        finally:
            server.stop()
    written = log.read_text(errors="replace")
    assert "/console/reset/demo/[token]" in written  # the access log is on
    assert token not in written
