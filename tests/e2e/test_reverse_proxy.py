"""License Central behind a reverse proxy: which proxies are believed, what the
answers tell browsers when the visitor came over https, and the nginx configuration
docs/operations.md recommends (deploy/nginx/licentia.conf), run as it is in front of
a real server."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.harness.cluster import Environment, migrate
from tests.support.servers import Server, free_port, new_environment, running_server

REPO = Path(__file__).resolve().parents[2]
# What is checked here is the HTTP front, not the storage: one backend is enough.
pytestmark = [pytest.mark.slow, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]

FROM_TLS_PROXY = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}


@pytest.fixture(scope="module")
def env(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Environment:
    proxy = {"LICENTIA_TRUSTED_PROXIES": "127.0.0.1"}  # the proxy on this host, named
    env = new_environment(database_url, tmp_path_factory.mktemp("proxy"), proxy)
    migrate(env)
    return env


@pytest.fixture(scope="module")
def server(env: Environment) -> Iterator[Server]:
    with running_server(env) as server:
        yield server


def test_https_reported_by_a_trusted_proxy_gets_hsts(server: Server) -> None:
    answer = httpx.get(f"{server.url}/console/login", headers=FROM_TLS_PROXY)
    assert answer.status_code == 200
    assert answer.headers["strict-transport-security"] == "max-age=31536000"
    assert "strict-transport-security" not in httpx.get(f"{server.url}/healthz").headers


def test_an_untrusted_sender_cannot_claim_https(env: Environment, tmp_path: Path) -> None:
    elsewhere = Environment(
        env.database_url, env.master_key, tmp_path, {"LICENTIA_TRUSTED_PROXIES": "192.0.2.1"}
    )
    with running_server(elsewhere) as server:
        answer = httpx.get(f"{server.url}/console/login", headers=FROM_TLS_PROXY)
    assert answer.status_code == 200
    assert "strict-transport-security" not in answer.headers


# -- nginx in front, configured by deploy/nginx/licentia.conf ------------------------

CONFIG = REPO / "deploy" / "nginx" / "licentia.conf"
PROXY_TIMEOUT = 2  # the file's 10 s header and body timeouts, shortened for the test


@dataclass(frozen=True)
class Proxy:
    https: str  # https://127.0.0.1:<port>
    http_port: int
    api_key: str
    ca: Path  # the test certificate, to verify the proxy with
    folder: Path  # its configuration and logs


def _nginx() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found is None:
        message = "nginx is not installed: `make nginx` installs Debian's package"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "licentia.test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "proxy.pem", folder / "proxy.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _site(folder: Path, upstream: str, https_port: int, http_port: int) -> str:
    """The repository's file with this machine's ports, certificate and short
    timeouts; each replaced line must be in the file exactly once."""
    cert, key = _certificate(folder)
    text = CONFIG.read_text()
    for old, new in {
        "server 127.0.0.1:8000;": f"server {upstream};",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "/etc/ssl/certs/licenses.example.com.pem": str(cert),
        "/etc/ssl/private/licenses.example.com.key": str(key),
        "client_header_timeout 10s;": f"client_header_timeout {PROXY_TIMEOUT}s;",
        "client_body_timeout 10s;": f"client_body_timeout {PROXY_TIMEOUT}s;",
    }.items():
        assert text.count(old) == 1, f"{CONFIG} no longer has exactly one {old!r}"
        text = text.replace(old, new)
    return text


def _main_config(folder: Path) -> str:
    """What /etc/nginx/nginx.conf provides around conf.d, in a folder of the test."""
    temp = " ".join(
        f"{kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi")
    )
    return (
        f"worker_processes 1;\npid {folder / 'nginx.pid'};\n"
        + ("user root;\n" if os.geteuid() == 0 else "")  # workers write the temp folders
        + f"error_log {folder / 'error.log'};\nevents {{ worker_connections 512; }}\n"
        + f"http {{\naccess_log {folder / 'access.log'};\n{temp}\n"
        + f"uwsgi_temp_path {folder / 'uwsgi'}; scgi_temp_path {folder / 'scgi'};\n"
        + f"include {folder / 'licentia.conf'};\n}}\n"
    )


@pytest.fixture(scope="module")
def proxy(env: Environment, server: Server, tmp_path_factory) -> Iterator[Proxy]:
    nginx = _nginx()
    folder = tmp_path_factory.mktemp("nginx")
    https_port, http_port = free_port(), free_port()
    upstream = server.url.removeprefix("http://")
    (folder / "licentia.conf").write_text(_site(folder, upstream, https_port, http_port))
    (folder / "nginx.conf").write_text(_main_config(folder))
    command = [nginx, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e"]
    command += [str(folder / "error.log"), "-g", "daemon off;"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        _await_port(process, https_port)
        slug = f"proxy-{secrets.token_hex(3)}"
        env.cli("admin", "vendor", "create", slug, "--name", slug)
        key = env.cli("admin", "api-key", "create", "--vendor", slug, "--name", "erp")["key"]
        yield Proxy(f"https://127.0.0.1:{https_port}", http_port, key, folder / "proxy.pem", folder)
    finally:
        process.terminate()
        process.wait(timeout=15)


def _await_port(process: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"nginx did not start: {process.stderr.read()}")  # type: ignore[union-attr]
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise AssertionError("nginx did not listen in 30 s")


def _client(proxy: Proxy, source: str = "127.0.0.1") -> httpx.Client:
    context = ssl.create_default_context(cafile=str(proxy.ca))
    transport = httpx.HTTPTransport(verify=context, local_address=source)
    return httpx.Client(base_url=proxy.https, transport=transport, timeout=30)


def test_nginx_forwards_over_tls_and_says_so(proxy: Proxy) -> None:
    with _client(proxy) as client:
        answer = client.get("/healthz")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}
    assert answer.headers["strict-transport-security"] == "max-age=31536000"
    plain = httpx.get(f"http://127.0.0.1:{proxy.http_port}/healthz")
    assert plain.status_code == 301
    assert plain.headers["location"].startswith("https://")


def test_the_server_records_the_clients_address_not_the_proxys_nor_a_forged_one(
    proxy: Proxy,
) -> None:
    auth = {"Authorization": f"Bearer {proxy.api_key}"}
    forged = {"X-Forwarded-For": "198.51.100.66"}
    with _client(proxy, source="127.0.0.9") as client:
        product = client.post(
            "/api/v1/products",
            json={"code": "PRX", "name": "Proxied"},
            headers=auth | forged,
        )
        assert product.status_code == 201, product.text
        events = client.get(
            "/api/v1/audit-events", params={"object_id": product.json()["id"]}, headers=auth
        ).json()["items"]
    assert [event["source_ip"] for event in events] == ["127.0.0.9"]


def test_nginx_refuses_a_body_beyond_its_limit_without_passing_it_on(proxy: Proxy) -> None:
    with _client(proxy) as client:
        answer = client.post("/api/v1/products", content=b"x" * (2 * 1024 * 1024))
    assert answer.status_code == 413
    # nginx's own page, not the server's problem: the body never reached the server.
    assert answer.headers["content-type"].startswith("text/html") and b"nginx" in answer.content


def test_nginx_cuts_off_slow_headers_and_slow_bodies(proxy: Proxy) -> None:
    slow_headers = socket.create_connection(("127.0.0.1", proxy.http_port))
    slow_headers.sendall(b"GET /healthz HTTP/1.1\r\nHost: licentia.test\r\nX-Slow: ")
    context = ssl.create_default_context(cafile=str(proxy.ca))
    https_port = int(proxy.https.rsplit(":", 1)[1])
    slow_body = context.wrap_socket(
        socket.create_connection(("127.0.0.1", https_port)), server_hostname="127.0.0.1"
    )
    slow_body.sendall(
        b"POST /api/v1/products HTTP/1.1\r\nHost: licentia.test\r\nContent-Length: 100\r\n\r\n{"
    )
    try:
        with _client(proxy) as client:
            assert client.get("/healthz").status_code == 200  # served meanwhile
        assert _answer_before_close(slow_headers) == b""  # closed without an answer
        assert _answer_before_close(slow_body) == b""
    finally:
        slow_headers.close()
        slow_body.close()
    # nginx does not send its 408, but logs it: the body was cut off for being slow.
    assert '"POST /api/v1/products HTTP/1.1" 408' in (proxy.folder / "access.log").read_text()


def _answer_before_close(sock: socket.socket) -> bytes:
    """Everything the proxy sends until it closes the connection (60 s at most)."""
    sock.settimeout(60)
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(4096):
            received += chunk
    return received
