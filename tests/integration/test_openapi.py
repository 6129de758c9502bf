"""The OpenAPI document tells a user what the API really asks and answers: the
credential each operation wants (so Swagger's Authorize dialog asks for the right
secret) and the problem documents it sends when it fails."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient

from licentia.formats.tickets import generate_ticket_code

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def document(client: TestClient) -> dict[str, Any]:
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    return dict(answer.json())


def operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return dict(document["paths"][f"/api/v1{path.replace('{id}', '{device_id}')}"][method])


def test_each_kind_of_caller_has_its_own_security_scheme(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert set(schemes) == {"ApiKey", "StaffSession", "CloudDeviceToken", "ContainerCredential"}
    formats = {name: scheme["bearerFormat"] for name, scheme in schemes.items()}
    assert formats["ApiKey"].startswith("lic_") and formats["StaffSession"].startswith("lis_")
    assert formats["CloudDeviceToken"].startswith("lcd_")
    assert formats["ContainerCredential"].startswith("lcc_")


@pytest.mark.parametrize(
    ("method", "path", "security"),
    [
        ("get", "/products", [{"ApiKey": []}, {"StaffSession": []}]),
        ("post", "/orders", [{"ApiKey": []}, {"StaffSession": []}]),
        ("get", "/licenses/{license_id}/seats", [{"ApiKey": []}, {"StaffSession": []}]),
        ("post", "/vendors/{slug}/cloud/seats", [{"CloudDeviceToken": []}]),
        ("post", "/vendors/{slug}/cloud/check", [{"CloudDeviceToken": []}]),
        ("get", "/vendors/{slug}/cloud/admin/seats", [{"ContainerCredential": []}]),
        (
            "delete",
            "/vendors/{slug}/cloud/admin/devices/{device_id}",
            [{"ContainerCredential": []}],
        ),
        ("post", "/vendors/{slug}/devices/activate", []),
        ("post", "/vendors/{slug}/devices/events", []),
        ("post", "/vendors/{slug}/cloud/events", [{"CloudDeviceToken": []}]),
        ("post", "/vendors/{slug}/cloud/redeem", []),
        ("post", "/sessions", []),
        ("get", "/vendors/{slug}/jwks.json", []),
    ],
)
def test_each_operation_asks_for_the_credential_it_checks(
    document: dict[str, Any], method: str, path: str, security: list[dict[str, list[str]]]
) -> None:
    assert operation(document, method, path)["security"] == security


def test_the_device_protocol_says_its_signature_is_the_credential(
    document: dict[str, Any],
) -> None:
    activate = operation(document, "post", "/vendors/{slug}/devices/activate")
    assert "signed with the device key" in activate["description"]
    assert PROBLEM in activate["responses"]["401"]["content"]


def test_failures_are_declared_as_the_problem_documents_that_are_sent(
    document: dict[str, Any],
) -> None:
    assert "HTTPValidationError" not in document["components"]["schemas"]
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "code"} <= set(problem["required"])
    create = operation(document, "post", "/templates")
    # 404: its body names a product by id, which may not exist
    failures = {"400", "401", "403", "404", "409", "413", "415", "422", "429", "500", "503"}
    assert set(create["responses"]) == {"201"} | failures  # no catch-all "default"
    for status in failures:
        content = create["responses"][status]["content"]
        assert content == {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    read = operation(document, "get", "/licenses/{license_id}")
    assert {"401", "403", "404", "422"} <= set(read["responses"])
    assert not {"409", "413", "415"} & set(read["responses"])  # a read without a body


def every_operation(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def test_every_operation_declares_the_limits_and_failures_any_request_can_meet(
    document: dict[str, Any],
) -> None:
    for method, path, declared in every_operation(document):
        responses = declared["responses"]
        assert "default" not in responses, (method, path)
        for status in ("429", "500", "503"):
            assert PROBLEM in responses[status]["content"], (method, path, status)
        assert "Retry-After" in responses["429"]["headers"]
        if "requestBody" in declared:
            assert PROBLEM in responses["413"]["content"], (method, path)


def test_a_creating_post_declares_its_idempotency_key(document: dict[str, Any]) -> None:
    headers = {
        parameter["name"]: parameter["schema"]
        for parameter in operation(document, "post", "/orders")["parameters"]
        if parameter["in"] == "header"
    }
    assert headers["Idempotency-Key"]["maxLength"] == 200


@pytest.mark.parametrize(
    "path",
    [
        "/vendors/{slug}/devices/activate",
        "/vendors/{slug}/devices/receipts",
        "/vendors/{slug}/cloud/borrow/returns",
    ],
)
def test_a_signed_device_message_is_declared_as_a_compact_jws(
    document: dict[str, Any], path: str
) -> None:
    declared = operation(document, "post", path)
    schema = declared["requestBody"]["content"]["application/jose"]["schema"]
    assert schema["type"] == "string" and schema["pattern"].count(".") == 2
    assert declared["security"] == [] and PROBLEM in declared["responses"]["401"]["content"]


def test_a_method_a_path_does_not_have_is_answered_with_the_methods_it_has(
    client: TestClient,
) -> None:
    for method in ("PUT", "TRACE", "DELETE"):
        answer = client.request(method, "/api/v1/products")
        assert answer.status_code == 405
        assert answer.headers["content-type"] == PROBLEM
        assert answer.headers["allow"] == "GET, POST"  # both routes of the path, not one


def test_the_answers_match_the_declared_problem_schema(client: TestClient, vendors) -> None:
    vendor = vendors.create()
    answer = vendor.post("/templates", json={"sku": "S"})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM
    assert {"type", "title", "status", "detail", "code", "field", "errors"} <= set(answer.json())


# Strings a parser turns into a value of its own kind before anything keeps them.
_PARSED_FORMATS = frozenset({"date-time", "date"})


def _unbounded(node: dict[str, Any], where: str, schemas: dict[str, Any], seen: frozenset[str]):
    """Where ``node`` lets a client send a string, list or map of any length."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name not in seen:
            yield from _unbounded(schemas[name], name, schemas, seen | {name})
        return
    for key in ("anyOf", "oneOf", "allOf"):
        for alternative in node.get(key, ()):
            yield from _unbounded(alternative, where, schemas, seen)
    kind = node.get("type")
    bounded = {"maxLength", "enum", "const"} & node.keys() or node.get("format") in _PARSED_FORMATS
    if kind == "string" and not bounded:
        yield f"{where}: a string without maxLength"
    if kind == "array":
        if "maxItems" not in node:
            yield f"{where}: a list without maxItems"
        yield from _unbounded(node.get("items", {}), f"{where}[]", schemas, seen)
    for name, child in node.get("properties", {}).items():
        yield from _unbounded(child, f"{where}.{name}", schemas, seen)
    extra = node.get("additionalProperties")
    if extra not in (None, False):
        if "maxProperties" not in node:
            yield f"{where}: a map without maxProperties"
        if isinstance(extra, dict):
            yield from _unbounded(extra, f"{where}{{}}", schemas, seen)


def test_every_request_body_bounds_its_strings_lists_and_maps(document: dict[str, Any]) -> None:
    """A request model's string, list or map without a bound is refused here, so a
    new field cannot forget it (the body's own limit is only the last defence)."""
    schemas = document["components"]["schemas"]
    found = [
        problem
        for path, operations in document["paths"].items()
        for method, spec in operations.items()
        for kind, media in spec.get("requestBody", {}).get("content", {}).items()
        for problem in _unbounded(
            media.get("schema", {}), f"{method.upper()} {path} {kind}", schemas, frozenset()
        )
    ]
    assert found == []


def test_every_query_parameter_is_bounded(document: dict[str, Any]) -> None:
    """Filters are compared with stored values: each says how long it may be. (A path
    parameter only names an object, found or not, within the request line's limit.)"""
    schemas = document["components"]["schemas"]
    found = [
        problem
        for path, operations in document["paths"].items()
        for method, spec in operations.items()
        for parameter in spec.get("parameters", ())
        if parameter["in"] == "query"
        for problem in _unbounded(
            parameter.get("schema", {}),
            f"{method.upper()} {path} ?{parameter['name']}",
            schemas,
            frozenset(),
        )
    ]
    assert found == []


def declared_statuses(document: dict[str, Any], method: str, path: str) -> set[str]:
    return set(document["paths"][f"/api/v1{path}"][method]["responses"])


def test_answers_the_fuzzer_found_undeclared_are_declared(
    client: TestClient, vendors, document: dict[str, Any]
) -> None:
    """Each of these answers was sent by a real server and missing from the document
    (tests/e2e/test_api_fuzzing.py found them); each is now declared."""
    vendor = vendors.create()
    login = client.post(
        "/api/v1/sessions", json={"vendor": vendor.slug, "email": "no@x.example", "password": "x"}
    )
    assert login.status_code == 401
    assert "401" in declared_statuses(document, "post", "/sessions")

    register = client.post(
        f"/api/v1/vendors/{vendor.slug}/cloud/devices",
        json={"credential": "lcc_0000_wrong", "name": "Workstation"},
    )
    assert register.status_code == 401
    assert "401" in declared_statuses(document, "post", "/vendors/{slug}/cloud/devices")

    withdrawn = vendor.license()
    vendor.ok("POST", f"/licenses/{withdrawn['id']}/actions/withdraw")
    assert vendor.get(f"/licenses/{withdrawn['id']}/document").status_code == 409
    assert "409" in declared_statuses(document, "get", "/licenses/{license_id}/document")

    container = vendor.post("/cloud-containers", json={"customer_id": "0" * 36, "name": "C"})
    assert container.status_code == 404
    assert "404" in declared_statuses(document, "post", "/cloud-containers")


def test_a_secret_rotations_overlap_declares_the_most_the_server_takes(
    vendors, document: dict[str, Any]
) -> None:
    """The stateful fuzzing found an overlap of 15 days refused 422 while the document
    set no maximum: it says 7 days now, what the service takes."""
    declared = document["components"]["schemas"]["SecretRotation"]["properties"]
    week = 7 * 86400
    assert declared["overlap_seconds"]["maximum"] == week
    vendor = vendors.create()
    endpoint = vendor.ok("POST", "/webhook-endpoints", json={"url": "https://hooks.example/in"})
    rotate = f"/webhook-endpoints/{endpoint['id']}/actions/rotate-secret"
    assert vendor.post(rotate, json={"overlap_seconds": week}).status_code == 200
    refused = vendor.post(rotate, json={"overlap_seconds": week + 1})
    assert refused.status_code == 422 and refused.json()["field"] == "overlap_seconds"


@pytest.mark.parametrize(
    ("path", "name"), [("/licenses", "state"), ("/devices", "status"), ("/devices", "flag")]
)
def test_a_list_filter_declares_the_values_the_server_accepts(
    vendors, document: dict[str, Any], path: str, name: str
) -> None:
    declared = next(
        parameter["schema"]
        for parameter in document["paths"][f"/api/v1{path}"]["get"]["parameters"]
        if parameter["name"] == name
    )
    refused = vendors.create().get(path, params={name: "nonsense"})
    assert refused.status_code == 422
    assert sorted(declared["enum"]) == sorted(refused.json()["allowed"])


def test_the_erp_calls_declare_their_per_item_results_and_their_refusals(
    document: dict[str, Any],
) -> None:
    batch = operation(document, "post", "/orders/bulk")
    assert "201" not in batch["responses"]  # always 200, one result per order
    answer = batch["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    item = document["components"]["schemas"]["BatchItem"]
    assert answer.endswith("/BatchOut")
    assert set(item["properties"]["status"]["enum"]) == {
        "created",
        "extended",
        "replayed",
        "failed",
    }
    for status in ("413", "422"):
        assert PROBLEM in batch["responses"][status]["content"]
    body = document["components"]["schemas"]["Batch"]["properties"]["orders"]
    assert body["maxItems"] == 100
    upsert = operation(document, "put", "/customers/by-external-id/{external_id}")
    assert {"200", "201", "422"} <= set(upsert["responses"])
    for action in ("cancel", "return"):
        declared = operation(document, "post", f"/orders/{{order_id}}/actions/{action}")
        assert {"200", "404", "409"} <= set(declared["responses"])


def _valid(schema: dict[str, Any], value: str) -> bool:
    # A validator with ECMA-262's ``$`` (the end of the text), as Schemathesis uses:
    # Python's ``re``, under the ``jsonschema`` package, also matches before a final
    # newline.
    return bool(jsonschema_rs.validator_for(schema).is_valid(value))


def _schema_of(document: dict[str, Any], model: str, field: str) -> dict[str, Any]:
    schema = document["components"]["schemas"][model]["properties"][field]
    return dict(next((s for s in schema.get("anyOf", []) if s["type"] == "string"), schema))


@pytest.mark.parametrize(
    ("path", "model", "field", "body"),
    [
        ("/customers", "CustomerCreate", "external_id", {"name": "Acme"}),
        ("/customers", "CustomerCreate", "name", {}),
        ("/products", "ProductCreate", "name", {"code": "P"}),
        ("/products", "ProductCreate", "code", {"name": "P"}),
    ],
)
@pytest.mark.parametrize(
    "value", ["ACME-1", "Émile", " ", "\u3000", "A\u200bB", "A\u0007", "\u001f", "A\n", "\ufeffA"]
)
def test_a_string_the_document_allows_is_taken_and_one_it_does_not_is_refused(
    vendors,
    document: dict[str, Any],
    path: str,
    model: str,
    field: str,
    body: dict[str, Any],
    value: str,
) -> None:
    """The patterns of the document say what the services check (Schemathesis'
    positive_data_acceptance and negative_data_rejection found where they did not)."""
    schema = _schema_of(document, model, field)
    answer = vendors.create().post(path, json={**body, field: value})
    allowed = _valid(schema, value)
    assert (answer.status_code == 201) == allowed, (value, answer.text)


@pytest.mark.parametrize(
    "value",
    [
        "a@b.c",
        " a@b.c\u3000",
        "a@b",
        "a b@c.d",
        "a@b.c\n",
        "\ufeffa@b.c",
        "a@b.c,d@e.f",
        "x@y.z\x1f",
        "",
    ],
)
def test_an_email_address_the_document_allows_is_taken_and_one_it_does_not_is_refused(
    vendors, document: dict[str, Any], value: str
) -> None:
    """The document's pattern is the address rule of domain/emails.py (EMAIL_INVALID),
    with the spaces the service strips around an address."""
    schema = _schema_of(document, "CustomerCreate", "email")
    answer = vendors.create().post("/customers", json={"name": "Acme", "email": value})
    assert (answer.status_code == 201) == _valid(schema, value), (value, answer.text)
    if answer.status_code != 201:
        assert answer.json()["code"] == "EMAIL_INVALID"


def test_the_formats_beyond_json_schema_are_named(client: TestClient, vendors, document) -> None:
    """A cursor is only the server's to make, and a ticket code's check symbol is beyond
    a pattern: the document names their formats (the fuzzer knows how to make them), and
    a well-formed code no ticket has is a 404 it declares."""
    listing = operation(document, "get", "/products")["parameters"]
    cursor = next(p for p in listing if p["name"] == "cursor")["schema"]
    assert (cursor["type"], cursor["format"]) == ("string", "cursor")
    code = _schema_of(document, "TicketLookup", "code")
    assert code["format"] == "ticket-code"
    well_formed = generate_ticket_code().lower().replace("-", " ")
    assert _valid(code, well_formed)
    lookup = vendors.create().post("/tickets/lookup", json={"code": well_formed})
    assert lookup.status_code == 404
    assert "404" in declared_statuses(document, "post", "/tickets/lookup")
