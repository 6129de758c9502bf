"""Page speed: the web fronts' main pages for a vendor with 100,000 licenses.

The vendor is seeded straight into the database (``bench/page_seed.py``): 100,000
licenses, 20,000 devices, 1,000 customers. Then each main page is asked for by one
logged-in visitor, one request at a time on a keep-alive connection, so that the time
from the request's first byte to the answer's last is the server's time (plus the
loopback, which ``/healthz`` of the same server, measured in the same rounds, shows):

- the console's dashboard, its license list filtered by a state, the detail of the
  customer with the most licenses, and that customer's biggest ticket;
- the portal's page of that ticket, for the customer's admin.

Goal: p95 at most 25 ms on SQLite and on PostgreSQL. The page weight is each page's
HTML with the stylesheets and scripts it links (uncompressed, each counted once per
page); goal: under 150 KB.

``python -m bench.pages`` runs this part alone (``--backend``, ``--json``, ``--rounds``).
With ``--keep DIR`` the seeded databases are kept (SQLite's file in DIR, PostgreSQL's
named in DIR) and the next run with the same DIR serves them again, migrated to the
code's newest revision, instead of seeding: comparing two commits then costs no
seeding, and both are timed on the same rows. ``--keep DIR --drop`` removes them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from bench.api import seed_catalog
from bench.http import HttpPool
from bench.page_seed import Scale, Seeded, seed_vendor
from bench.server import (
    BenchSetupError,
    Environment,
    Server,
    drop_kept_database,
    new_environment,
    prepare,
    running_server,
    throwaway_database,
)

P95_GOAL_MS = 25.0
WEIGHT_GOAL_KB = 150.0
STAFF_EMAIL = "admin@bench.example"
COOKIE = "licentia_session"
BIG_ORDER = 80


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    front: str  # "console" or "portal": whose session cookie it is sent with


@dataclass(frozen=True)
class PageTimes:
    page: Page
    times_ms: list[float]
    weight_bytes: int
    html_bytes: int

    def percentile(self, q: int) -> float:
        return statistics.quantiles(self.times_ms, n=100, method="inclusive")[q - 1]


def main_pages(slug: str, seeded: Seeded, ticket_id: str) -> list[Page]:
    return [
        Page("console dashboard", "/console/", "console"),
        Page(
            "console licenses, state filter",
            "/console/licenses?" + urlencode({"state": "suspended"}),
            "console",
        ),
        Page("console customer detail", f"/console/customers/{seeded.customer_id}", "console"),
        Page("console ticket", f"/console/tickets/{ticket_id}", "console"),
        Page("portal ticket", f"/portal/{slug}/tickets/{ticket_id}", "portal"),
    ]


HEALTHZ = Page("/healthz", "/healthz", "console")


def measure_backend(
    backend: str,
    *,
    rounds: int = 5,
    requests_each: int = 20,
    scale: Scale = Scale(),
    keep: Path | None = None,
) -> dict[str, Any]:
    """Seed a throwaway database of ``backend``, serve it, and time every main page
    next to ``/healthz``. With ``keep``, the seeded database (and what serving it again
    needs) is kept in that folder, and a later run with the same folder serves it again
    (migrated first) instead of seeding. Raises BenchSetupError if a server or database
    fails."""
    with tempfile.TemporaryDirectory(prefix="licentia-pages-") as tmp:
        workdir = keep if keep is not None else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        with _seeded(backend, workdir, kept=keep is not None, scale=scale) as setup:
            env = Environment(setup.database_url, setup.master_key, Path(tmp))
            env.cli("db", "upgrade")
            with running_server(env) as server:  # on the full database, as after a restart
                cookies = {
                    "console": _staff_session(server, setup.slug, setup.password),
                    "portal": _customer_session(server, setup.slug, setup.seeded),
                }
                pages = main_pages(setup.slug, setup.seeded, setup.ticket_id)
                times = asyncio.run(
                    _time_pages(server.url, cookies, [HEALTHZ, *pages], rounds, requests_each)
                )
                weights = {
                    page: _weight(server.url, cookies[page.front], page.path) for page in pages
                }
    healthz = PageTimes(HEALTHZ, times[HEALTHZ], 0, 0)
    return {
        "backend": backend,
        "seed_seconds": setup.seed_seconds,
        "scale": scale.__dict__,
        "healthz_p50_ms": round(healthz.percentile(50), 2),
        "healthz_p95_ms": round(healthz.percentile(95), 2),
        "pages": [_row(PageTimes(page, times[page], *weights[page]), healthz) for page in pages],
    }


@dataclass(frozen=True)
class _Setup:
    """A seeded database and what a run needs to serve it and log in."""

    database_url: str
    master_key: str
    slug: str
    password: str
    seeded: Seeded
    ticket_id: str
    seed_seconds: float

    def save(self, path: Path) -> None:
        fields = {**self.__dict__, "seeded": self.seeded.__dict__}
        path.write_text(json.dumps(fields, indent=2))

    @classmethod
    def load(cls, path: Path) -> _Setup:
        fields = json.loads(path.read_text())
        return cls(**{**fields, "seeded": Seeded(**fields["seeded"])})


@contextmanager
def _seeded(backend: str, workdir: Path, *, kept: bool, scale: Scale) -> Iterator[_Setup]:
    """A seeded database of ``backend``: the one kept in ``workdir`` if there is one,
    else a new one (kept there if ``kept``, else removed when the block ends)."""
    state = workdir / f"{backend}.json"
    if kept and state.exists():
        yield _Setup.load(state)
        return
    with throwaway_database(backend, workdir, keep=kept) as url:
        setup = _seed_database(url, workdir, scale)
        if kept:
            setup.save(state)
        yield setup


def _seed_database(url: str, workdir: Path, scale: Scale) -> _Setup:
    env = new_environment(url, workdir)
    tenant = prepare(env)
    password = secrets.token_urlsafe(12)
    env.cli(
        "admin", "user", "create", "--vendor", tenant.slug, "--email", STAFF_EMAIL,
        "--role", "admin", "--password", password,
    )  # fmt: skip
    with running_server(env) as server:
        catalog = asyncio.run(seed_catalog(server.url, tenant.api_key))
    started = time.perf_counter()
    seeded = seed_vendor(url, tenant.slug, catalog.sku, scale)
    seed_seconds = round(time.perf_counter() - started, 1)
    with running_server(env) as server:
        ticket_id = _big_order(server, tenant.api_key, catalog.sku, seeded.customer_id)
    return _Setup(url, env.master_key, tenant.slug, password, seeded, ticket_id, seed_seconds)


def _row(figures: PageTimes, healthz: PageTimes) -> dict[str, Any]:
    p95 = figures.percentile(95)
    weight_kb = figures.weight_bytes / 1024
    return {
        "page": figures.page.name,
        "path": figures.page.path,
        "requests": len(figures.times_ms),
        "p50_ms": round(figures.percentile(50), 2),
        "p95_ms": round(p95, 2),
        "healthz_p95_ms": round(healthz.percentile(95), 2),
        "goal": f"p95 <= {P95_GOAL_MS:.0f} ms",
        "goal_met": p95 <= P95_GOAL_MS,
        "weight_kb": round(weight_kb, 1),
        "html_kb": round(figures.html_bytes / 1024, 1),
        "weight_goal": f"< {WEIGHT_GOAL_KB:.0f} KB",
        "weight_goal_met": weight_kb < WEIGHT_GOAL_KB,
    }


def _big_order(server: Server, api_key: str, sku: str, customer_id: str) -> str:
    """The top customer's biggest ticket: 80 licenses, ordered as an ERP does."""
    answer = httpx.post(
        f"{server.url}/api/v1/orders",
        headers={"Authorization": f"Bearer {api_key}"},
        json={
            "external_order_id": "BENCH-BIG",
            "customer_id": customer_id,
            "lines": [{"sku": sku, "quantity": BIG_ORDER}],
        },
        timeout=30,
    )
    if answer.status_code != 201:
        raise BenchSetupError(f"order: {answer.status_code} {answer.text}")
    return str(answer.json()["ticket_id"])


def _staff_session(server: Server, slug: str, password: str) -> str:
    answer = httpx.post(
        f"{server.url}/api/v1/sessions",
        json={"vendor": slug, "email": STAFF_EMAIL, "password": password},
    )
    if answer.status_code != 201:
        raise BenchSetupError(f"staff login: {answer.status_code} {answer.text}")
    return str(answer.json()["token"])


def _customer_session(server: Server, slug: str, seeded: Seeded) -> str:
    """Log in through the portal's login form, as a browser does (CSRF token and all)."""
    with httpx.Client(base_url=server.url) as client:
        form = client.get(f"/portal/{slug}/login")
        token = _Inputs.of(form.text).get("csrf_token", "")
        answer = client.post(
            f"/portal/{slug}/login",
            data={
                "csrf_token": token,
                "email": seeded.customer_email,
                "password": seeded.customer_password,
            },
        )
        session = client.cookies.get(COOKIE)
    if answer.status_code >= 400 or not session:
        raise BenchSetupError(f"portal login: {answer.status_code} {answer.text[:500]}")
    return session


async def _time_pages(
    base_url: str, cookies: dict[str, str], pages: list[Page], rounds: int, requests_each: int
) -> dict[Page, list[float]]:
    """Rounds of ``requests_each`` sequential requests per page, the pages taking
    turns, so that every page sees the machine as it was in each round."""
    times: dict[Page, list[float]] = {page: [] for page in pages}
    pools = {
        front: HttpPool(base_url, 1, {"Cookie": f"{COOKIE}={cookie}"})
        for front, cookie in cookies.items()
    }
    async with pools["console"] as console, pools["portal"] as portal:
        pool_of = {"console": console, "portal": portal}
        for page in pages:  # warm up: caches, compiled templates, query plans
            for _ in range(3):
                await _timed(pool_of[page.front], page)
        for _ in range(rounds):
            for page in pages:
                for _ in range(requests_each):
                    times[page].append(await _timed(pool_of[page.front], page))
    return times


async def _timed(pool: HttpPool, page: Page) -> float:
    request = pool.prepare("GET", page.path)
    started = time.perf_counter()
    status, body = await pool.send(request)
    elapsed = (time.perf_counter() - started) * 1000
    if status != 200:
        raise BenchSetupError(f"GET {page.path}: {status} {body[:300]!r}")
    return elapsed


class _Inputs(HTMLParser):
    """The named inputs' values of a page, and the stylesheets and scripts it links."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.assets: list[str] = []

    @classmethod
    def of(cls, html: str) -> dict[str, str]:
        parser = cls()
        parser.feed(html)
        return parser.values

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "input" and found.get("name"):
            self.values[str(found["name"])] = found.get("value") or ""
        elif tag == "link" and found.get("rel") == "stylesheet" and found.get("href"):
            self.assets.append(str(found["href"]))
        elif tag == "script" and found.get("src"):
            self.assets.append(str(found["src"]))


def _weight(base_url: str, cookie: str, path: str) -> tuple[int, int]:
    """Bytes of the page's HTML plus each stylesheet and script it links, uncompressed."""
    with httpx.Client(base_url=base_url, cookies={COOKIE: cookie}) as client:
        html = client.get(path, headers={"Accept-Encoding": "identity"}).content
        parser = _Inputs()
        parser.feed(html.decode())
        assets = sum(
            len(client.get(asset, headers={"Accept-Encoding": "identity"}).content)
            for asset in dict.fromkeys(parser.assets)
        )
    return len(html) + assets, len(html)


def _drop_kept(backend: str, keep: Path) -> None:
    state = keep / f"{backend}.json"
    if state.exists():
        drop_kept_database(_Setup.load(state).database_url)
        state.unlink()


def rows(reports: list[dict[str, Any]]) -> list[tuple[str, str, str, str, str, bool]]:
    """Table rows: (benchmark, measured, next to, ratio, goal, met)."""
    table = []
    for report in reports:
        backend = report["backend"]
        for row in report["pages"]:
            table.append(
                (
                    f"{row['page']}, {backend}",
                    f"p95 {row['p95_ms']:.1f} ms (p50 {row['p50_ms']:.1f})",
                    f"/healthz p95 {row['healthz_p95_ms']:.1f} ms",
                    "",
                    row["goal"],
                    row["goal_met"],
                )
            )
    for row in reports[0]["pages"] if reports else []:
        table.append(
            (
                f"page weight, {row['page']}",
                f"{row['weight_kb']:.0f} KB (HTML {row['html_kb']:.0f} KB)",
                "",
                "",
                row["weight_goal"],
                row["weight_goal_met"],
            )
        )
    return table


def goals_met(reports: list[dict[str, Any]]) -> bool:
    return all(
        row["goal_met"] and row["weight_goal_met"] for report in reports for row in report["pages"]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pages", description=__doc__)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="keep the seeded databases in DIR (PostgreSQL's: named there) and serve them "
        "again on the next run with the same DIR, instead of seeding; remove with --drop",
    )
    parser.add_argument(
        "--drop", action="store_true", help="drop the databases kept in --keep DIR, and stop"
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds of 20 requests a page")
    args = parser.parse_args(argv)
    backends = args.backend or ("sqlite", "postgresql")
    if args.drop:
        if args.keep is None:
            parser.error("--drop needs --keep DIR")
        for backend in backends:
            _drop_kept(backend, args.keep)
        return 0
    reports = [measure_backend(backend, rounds=args.rounds, keep=args.keep) for backend in backends]
    if args.json:
        print(json.dumps(reports, indent=2))
    else:
        for report in reports:
            print(f"{report['backend']}: seeded in {report['seed_seconds']} s")
        for name, measured, next_to, _, goal, met in rows(reports):
            print(f"{name:48} {measured:28} {next_to:24} {goal:16} {'yes' if met else 'NO'}")
    return 0 if goals_met(reports) else 1


if __name__ == "__main__":
    sys.exit(main())
