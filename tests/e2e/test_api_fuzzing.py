"""Schemathesis against a real ``licentia serve``: every operation of the OpenAPI
document, with inputs made from its schemas (valid ones and broken ones), must get an
answer the document declares (status, media type, body schema) and never a 5xx.

The server runs on each backend with a vendor that has one of everything (products,
templates, a customer, orders, a device, a cloud container with a registered device
and a seat), so that most generated ids name real objects; every request carries the
credential its operation declares (an API key with every scope, the cloud device's
token, the container credential). The device messages are generated as compact JWS
text: each is answered with a problem, never a 500 (signed ones are
tests/integration/test_hostile_input.py's). A stateful run then chains operations by
the links Schemathesis infers (create a product, then read, change, list it), each
chain on a new vendor made the same way.

The budget is small here (``LICENTIA_FUZZ_EXAMPLES`` examples per operation and five
times as many chains, ``LICENTIA_FUZZ_CHAINS``, of ``LICENTIA_FUZZ_STATEFUL_STEPS``
steps; a fixed seed, so every run sends the same requests); ``make fuzz`` runs the
long one.
docs/security.md says what is checked and how to run it.
"""

from __future__ import annotations

import base64
import os
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import Case, Config
from schemathesis.generation import GenerationMode
from schemathesis.schemas import BaseSchema

from licentia.domain.actors import operator
from licentia.domain.scopes import SCOPES
from licentia.formats.tickets import ALPHABET, DATA_SYMBOLS, GROUP, check_symbol
from licentia.server.db.engine import Database, connect
from licentia.server.keys.master import MasterKey
from licentia.server.keys.services import create_signing_key
from licentia.server.tenancy import services as tenancy
from tests.e2e.databases import fresh_database
from tests.integration.device_messages import BareDevice
from tests.support.servers import Server, new_environment, running_server

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("fuzzing")]

EXAMPLES = int(os.environ.get("LICENTIA_FUZZ_EXAMPLES", "4"))
SEED = int(os.environ.get("LICENTIA_FUZZ_SEED", "20261203"))
STATEFUL_STEPS = int(os.environ.get("LICENTIA_FUZZ_STATEFUL_STEPS", "6"))
CHAINS = int(os.environ.get("LICENTIA_FUZZ_CHAINS", str(EXAMPLES * 5)))
JOSE = "application/jose"
# What the document promises for every answer (docs/security.md, Fuzzing), and for
# every request: one its schemas allow is not refused as malformed (400, 413, 415,
# 422); one they do not allow is refused.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "positive_data_acceptance",
    "negative_data_rejection",
)
# Schemathesis' own list of refusals, and 413: a string beyond its maxLength can make a
# body longer than its route takes, which is refused before it is read.
REJECTIONS = [
    *("400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"),
    "5xx",
]
# Schemathesis' list of answers to a valid request (refused for its state: 401, 403,
# 404, 409), and 422 for the operations whose rules go beyond what a JSON Schema says.
ACCEPTANCES = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
BEYOND_SCHEMA = {
    # a SKU the vendor has not defined (UNKNOWN_SKU); in a batch, also at most 5,000
    # licenses in all: a sum over its orders' lines
    "POST /api/v1/orders",
    "POST /api/v1/orders/bulk",
    # a shop's price mapped to a SKU the vendor has not defined (UNKNOWN_SKU)
    "POST /api/v1/shop-mappings",
    "PATCH /api/v1/shop-mappings/{mapping_id}",
    # a product has at most 256 features in all: those it has and those a change adds
    # (TOO_MANY_FEATURES); a long run's changes fill the fixture's product up to it
    "PATCH /api/v1/products/{product_id}",
    # a top-up adds at least one unit, a reset may set none: the path decides
    "POST /api/v1/licenses/{license_id}/units/{action}",
    # a replay's window: until after since (a rule between two fields)
    "POST /api/v1/webhook-endpoints/{endpoint_id}/actions/replay-failed",
    # rules between options (docs/api.md, Template options): a seat pool needs seats,
    # refresh_days within lease_days, ...; a change is checked merged with the options
    # the template has
    "POST /api/v1/templates",
    "PATCH /api/v1/templates/{template_id}",
}

# The formats the document names beyond JSON Schema's own (api/schemas.py): cursors,
# which only the server makes (the one of any position in any list is the base64url
# of its key), and ticket codes, whose check symbol no pattern says.
schemathesis.openapi.format(
    "cursor",
    st.integers(min_value=0, max_value=2**63 - 1).map(
        lambda key: base64.urlsafe_b64encode(str(key).encode()).rstrip(b"=").decode()
    ),
)
schemathesis.openapi.format(
    "ticket-code",
    st.text(ALPHABET, min_size=DATA_SYMBOLS, max_size=DATA_SYMBOLS).map(
        lambda data: "-".join(
            (data + check_symbol(data))[i : i + GROUP] for i in range(0, DATA_SYMBOLS + 1, GROUP)
        )
    ),
)

# A device message is text on the wire; its answers are text too (a signed update).
schemathesis.serializer.alias(JOSE, "text/plain")


@schemathesis.deserializer(JOSE)
def _compact_jws(_context: Any, response: Any) -> str:
    return str(response.content.decode("ascii"))


@dataclass(frozen=True)
class World:
    """A served vendor with one of everything, and the credentials to call as."""

    server: Server
    slug: str
    api_key: str
    device_token: str
    container_credential: str
    ids: dict[str, list[str]]

    def headers_for(self, case: Case) -> dict[str, str]:
        """The credential the case's operation declares, if any; and a valid case's
        ``Idempotency-Key`` made new: the same key with another request is refused
        (IDEMPOTENCY_KEY_REUSED), and which keys the vendor used is state, not schema."""
        headers = self._credential(case)
        valid = case.meta is not None and case.meta.generation.mode is GenerationMode.POSITIVE
        if valid and "Idempotency-Key" in (case.headers or {}):
            headers["Idempotency-Key"] = str(uuid.uuid4())
        return headers

    def move(self, case: Case, to: World) -> None:
        """Point ``case``'s path at ``to``'s vendor, and at its objects where it names
        this world's (ids taken from earlier answers are left as they are)."""
        parameters = case.path_parameters or {}
        for name, value in parameters.items():
            if name == "slug" and value == self.slug:
                parameters[name] = to.slug
            elif value in self.ids.get(name, ()):
                parameters[name] = to.ids[name][self.ids[name].index(value)]

    def _credential(self, case: Case) -> dict[str, str]:
        schemes = {
            name
            for requirement in case.operation.definition.raw["security"]
            for name in requirement
        }
        secret = (
            self.api_key
            if "ApiKey" in schemes
            else self.device_token
            if "CloudDeviceToken" in schemes
            else self.container_credential
            if "ContainerCredential" in schemes
            else None
        )
        return {"Authorization": f"Bearer {secret}"} if secret else {}


@dataclass(frozen=True)
class Cluster:
    """The served database, where the test makes vendors as ``licentia admin`` does."""

    server: Server
    database: Database
    master: MasterKey

    def vendor(self) -> World:
        """A new vendor with an API key of every scope and one of everything."""
        slug = f"fuzz-{secrets.token_hex(4)}"
        with self.database.transaction() as session:
            vendor = tenancy.create_vendor(session, operator(), slug=slug, name="Fuzz")
            create_signing_key(session, operator(vendor.id), vendor.id, self.master)
            issued = tenancy.create_api_key(
                session, operator(vendor.id), vendor.id, name="fuzz", scopes=list(SCOPES)
            )
        return _populate(self.server, slug, issued.secret)


@pytest.fixture(scope="module")
def cluster(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("fuzz")
    with fresh_database(database_url, workdir) as url:
        # Without rate limits: thousands of requests from one address and one key are
        # what a fuzzer sends, and its inputs must reach the routes (the limits have
        # tests of their own; a 429 would pass as declared, and test nothing).
        # Webhook endpoints with any generated http(s) URL are accepted, so that the
        # operations on an endpoint get real ones (the address rules have tests of their
        # own), and this server delivers nothing: no request leaves for a generated host.
        # Jobs do not run either: an accepted large order (up to 20,000 licenses) stays
        # processing instead of taking the server's CPU for the rest of the run.
        extra = {
            "LICENTIA_DATABASE_POOL_SIZE": "4",
            "LICENTIA_RATE_LIMITS": "false",
            "LICENTIA_WEBHOOK_ALLOW_HTTP": "true",
            "LICENTIA_WEBHOOK_ALLOWED_NETWORKS": "*",
            "LICENTIA_WEBHOOK_POLL_SECONDS": "0",
            "LICENTIA_JOB_POLL_SECONDS": "0",
        }
        env = new_environment(url, workdir, extra)
        env.cli("db", "upgrade")
        master = MasterKey(
            base64.urlsafe_b64decode(env.master_key + "=" * (-len(env.master_key) % 4))
        )
        database = connect(url, pool_size=1)
        try:
            with running_server(env) as server:
                yield Cluster(server, database, master)
        finally:
            database.dispose()


@pytest.fixture(scope="module")
def world(cluster: Cluster) -> World:
    return cluster.vendor()


def _populate(server: Server, slug: str, api_key: str) -> World:
    """One of everything, made through the API as a vendor's ERP and devices would."""
    api = httpx.Client(
        base_url=f"{server.url}/api/v1", headers={"Authorization": f"Bearer {api_key}"}, timeout=60
    )

    def made(method: str, path: str, **kwargs: Any) -> Any:
        answer = api.request(method, path, **kwargs)
        assert answer.status_code < 300, answer.text
        return answer.json()

    product = made(
        "POST", "/products", json={"code": "APP", "name": "App", "features": [{"code": "base"}]}
    )
    device_template = made(
        "POST",
        "/templates",
        json={"sku": "APP-DEV", "name": "App", "product_id": product["id"], "features": ["base"]},
    )
    pool_template = made(
        "POST",
        "/templates",
        json={
            "sku": "APP-POOL",
            "name": "App pool",
            "product_id": product["id"],
            "features": ["base"],
            "options": {"delivery": "seat_pool", "seats": 3, "units": 1000, "max_devices": 100},
        },
    )
    customer = made("POST", "/customers", json={"name": "Acme", "external_id": "ACME"})
    device_order = made(
        "POST",
        "/orders",
        json={
            "external_order_id": "FUZZ-1",
            "customer_id": customer["id"],
            # One license: the activation takes any free license of the ticket, so with
            # more, the one on the device would differ from vendor to vendor. A chain
            # replayed on another vendor would then be answered otherwise (the license a
            # ticket lists first is on a device, or not), and Hypothesis would stop with
            # FlakyStrategyDefinition.
            "lines": [{"sku": "APP-DEV", "quantity": 1}],
        },
    )
    pool_order = made(
        "POST", "/orders", json={"external_order_id": "FUZZ-2", "lines": [{"sku": "APP-POOL"}]}
    )
    device = BareDevice(slug)
    activated = httpx.post(
        f"{server.url}/api/v1/vendors/{slug}/devices/activate",
        content=device.request("activate", device_order["ticket_code"]),
        headers={"Content-Type": JOSE},
        timeout=60,
    )
    assert activated.status_code == 200, activated.text
    cloud = f"{server.url}/api/v1/vendors/{slug}/cloud"
    redeemed = httpx.post(f"{cloud}/redeem", json={"ticket": pool_order["ticket_code"]}, timeout=60)
    assert redeemed.status_code == 201, redeemed.text
    container = redeemed.json()
    registered = httpx.post(
        f"{cloud}/devices",
        json={"credential": container["credential"], "name": "Workstation"},
        timeout=60,
    )
    assert registered.status_code == 201, registered.text
    cloud_device = registered.json()
    seat = httpx.post(
        f"{cloud}/seats",
        json={"product": "APP", "user": "ada", "device": "workstation"},
        headers={"Authorization": f"Bearer {cloud_device['token']}"},
        timeout=60,
    )
    assert seat.status_code == 201, seat.text
    device_id = made("GET", "/devices")["items"][0]["id"]
    ids = {
        "product_id": [product["id"]],
        "template_id": [device_template["id"], pool_template["id"]],
        "customer_id": [customer["id"]],
        "order_id": [device_order["id"], pool_order["id"]],
        "ticket_id": [device_order["ticket_id"], pool_order["ticket_id"]],
        "license_id": made("GET", "/tickets/" + device_order["ticket_id"])["license_ids"]
        + container["license_ids"],
        "device_id": [device_id, cloud_device["device_id"]],
        "container_id": [container["container_id"]],
        "lease_id": [seat.json()["lease_id"]],
        "key_id": [made("GET", "/api-keys")["items"][0]["id"]],
        "kid": [made("GET", "/signing-keys")["items"][0]["kid"]],
    }
    api.close()
    return World(server, slug, api_key, cloud_device["token"], container["credential"], ids)


def fuzz_config(world: World) -> Config:
    """Schemathesis' settings: the budget, the checks, and the path parameters (the
    vendor's slug always, a real id most of the time)."""
    parameters: dict[str, Any] = {"path.slug": world.slug}
    for name in world.ids:
        parameters[f"path.{name}"] = {"dictionary": name, "probability": 0.8}
    return Config.from_dict(
        {
            "seed": SEED,
            "suppress-health-check": ["all"],
            # No NUL in text: the API refuses it everywhere (api/nul.py, docs/api.md), a
            # rule of the whole document that no schema of a field says.
            "generation": {"max-examples": EXAMPLES, "database": "none", "allow-x00": False},
            "checks": {
                "enabled": False,
                **{name: {"enabled": True} for name in CHECKS},
                "negative_data_rejection": {"expected-statuses": REJECTIONS},
            },
            "operations": [
                {
                    "include-name": name,
                    "checks": {
                        "positive_data_acceptance": {"expected-statuses": [*ACCEPTANCES, "422"]}
                    },
                }
                for name in sorted(BEYOND_SCHEMA)
            ],
            "parameters": parameters,
            "dictionaries": {name: {"values": values} for name, values in world.ids.items()},
            "request-timeout": 60,
        }
    )


@pytest.fixture(scope="module")
def api_schema(world: World) -> BaseSchema:
    return schemathesis.openapi.from_url(
        f"{world.server.url}/openapi.json", config=fuzz_config(world)
    )


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """Schemathesis (4.32) reads the node's private ``_nodeid``, which pytest 9.2 no
    longer sets; it only names each operation's subtest with it."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@schema.parametrize()
def test_every_operation_answers_as_its_document_says(case: Case, world: World) -> None:
    case.call_and_validate(headers=world.headers_for(case))


def test_chained_operations_answer_as_the_document_says(
    api_schema: BaseSchema, cluster: Cluster, world: World
) -> None:
    """Each scenario runs on a vendor of its own, made as the first one was: Hypothesis
    draws a scenario's next step from what the earlier steps were answered, and replays
    the beginnings of scenarios it has run, so a scenario must be answered the same
    whatever ran before it (on one vendor, a code taken by an earlier scenario answers
    409 where it answered 201, and after five minutes the cloud device's token has
    ended: Hypothesis then stops with FlakyStrategyDefinition)."""

    class Chains(api_schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            self.vendor = cluster.vendor()

        def before_call(self, case: Case) -> None:
            world.move(case, self.vendor)
            _within_path_enums(case)

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"headers": self.vendor.headers_for(case)}

    Chains.run(settings=_stateful_settings())


def _within_path_enums(case: Case) -> None:
    """Schemathesis passes a path parameter on to a chain's next step when both
    operations have one of that name, as if the name meant the same in both: after
    ``POST /licenses/{license_id}/actions/withdraw`` it sent
    ``POST /devices/{device_id}/actions/withdraw`` as a valid request, which the device
    actions' enum does not list (a 422 that is right). A valid step's path parameter
    outside its operation's enum takes the enum's first value, so that it stays valid."""
    if case.meta is None or case.meta.generation.mode is not GenerationMode.POSITIVE:
        return
    parameters = case.path_parameters or {}
    for declared in case.operation.definition.raw.get("parameters", ()):
        allowed = declared.get("schema", {}).get("enum")
        name = declared["name"]
        if declared["in"] == "path" and allowed and parameters.get(name) not in allowed:
            parameters[name] = allowed[0]


def _stateful_settings() -> Any:
    from hypothesis import HealthCheck, settings

    return settings(
        max_examples=CHAINS,
        stateful_step_count=STATEFUL_STEPS,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
