"""The template form: its fields are the template options' paths (``options.validity.kind``,
``options.transfer_limit.returns``…), so that the field a ValidationError names is the
field the message is shown next to. Reading the form only turns text into the JSON
the API would receive; every rule is the domain's (``domain/templates.py``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from licentia.domain.errors import ValidationError
from licentia.domain.subscriptions import SubscriptionPeriod
from licentia.domain.templates import (
    OPTION_DEFAULTS,
    Delivery,
    SeatCounting,
    ValidityKind,
)
from licentia.server.catalog.services import parse_options

PREFIX = "options."
CUSTOM = "custom"  # the fingerprint preset choice meaning "k of n"
INTEGERS = (
    "validity.days",
    "maintenance_days",
    "seats",
    "units",
    "lease_days",
    "refresh_days",
    "max_borrow_days",
    "fingerprint_tolerance.k",
    "fingerprint_tolerance.n",
    "transfer_limit.returns",
    "transfer_limit.period_days",
    "churn_limit.count",
    "churn_limit.days",
    "subscription.days",
    "subscription.grace_days",
    "max_devices",
    "seat_lease_seconds",
    "access_token_seconds",
)
TEXTS = (
    "validity.kind",
    "validity.end_date",
    "delivery",
    "seat_counting",
    "fingerprint_tolerance.preset",
    "vm_policy",
    "subscription.period",
    "subscription.automatic",
    "custom_data.public",
    "custom_data.protected",
    "custom_data.secret",
)
FIELDS = INTEGERS + TEXTS
CHOICES: dict[str, tuple[str, ...]] = {
    "validity.kind": tuple(kind.value for kind in ValidityKind),
    "delivery": tuple(delivery.value for delivery in Delivery),
    "seat_counting": tuple(counting.value for counting in SeatCounting),
    "fingerprint_tolerance.preset": ("loose", "medium", "strict", CUSTOM),
    "vm_policy": ("allow", "deny"),
    "subscription.period": ("", *(period.value for period in SubscriptionPeriod)),
    "subscription.automatic": ("false", "true"),
}
# A choice always posts a value: without a period (no subscription) it is left out.
NEEDS_PERIOD = "subscription.automatic"


def options_from_form(form: Mapping[str, str]) -> dict[str, Any]:
    """The options JSON of the posted form: empty fields are left out (the option's
    default applies). Raises ValidationError naming the field for text that is not
    a whole number or, for protected data, not a JSON object."""
    options: dict[str, Any] = {}
    for path in FIELDS:
        raw = form.get(PREFIX + path, "").strip()
        if not raw or (path == "fingerprint_tolerance.preset" and raw == CUSTOM):
            continue
        if path == NEEDS_PERIOD and not form.get(PREFIX + "subscription.period", "").strip():
            continue
        _put(options, path, _value(path, raw))
    if form.get(PREFIX + "fingerprint_tolerance.preset") == CUSTOM:
        options.setdefault("fingerprint_tolerance", {})["preset"] = None
    return options


def other_problems(form: Mapping[str, str]) -> list[ValidationError]:
    """Every problem of the form besides the service's first refusal: each field that
    is no whole number or no JSON object, then the model's first rule broken by the
    fields that read (which the service never saw: the form stopped at the first
    unreadable field), and a fixed end date already over. The service stops at its
    first refusal; with these the page names them all at once."""
    found = _unreadable(form)
    if found:
        unread = {problem.field for problem in found}
        readable = {name: value for name, value in form.items() if name not in unread}
        try:
            parse_options(options_from_form(readable))
        except ValidationError as error:
            found.append(error)
    end = form.get(PREFIX + "validity.end_date", "").strip()
    if form.get(PREFIX + "validity.kind") == "fixed_end" and end:
        try:
            passed = date.fromisoformat(end) < datetime.now(UTC).date()
        except ValueError:
            passed = False
        if passed:
            message = f"the end date {end} has passed"
            field = PREFIX + "validity.end_date"
            found.append(ValidationError(message, field=field, code="END_DATE_PASSED"))
    return found


def _unreadable(form: Mapping[str, str]) -> list[ValidationError]:
    found: list[ValidationError] = []
    for path in FIELDS:
        raw = form.get(PREFIX + path, "").strip()
        if raw and path in (*INTEGERS, "custom_data.protected"):
            try:
                _value(path, raw)
            except ValidationError as error:
                found.append(error)
    return found


def _value(path: str, raw: str) -> Any:
    if path in INTEGERS:
        try:
            return int(raw)
        except ValueError:
            raise ValidationError(f"{raw!r} is not a whole number", field=PREFIX + path) from None
    if path == "custom_data.protected":
        try:
            return json.loads(raw)
        except ValueError:
            raise ValidationError("protected data is a JSON object", field=PREFIX + path) from None
    if path == NEEDS_PERIOD:
        return raw == "true"
    return raw


def _put(options: dict[str, Any], path: str, value: Any) -> None:
    *parents, name = path.split(".")
    node = options
    for parent in parents:
        node = node.setdefault(parent, {})
    node[name] = value


def form_from_options(options: Mapping[str, Any] | None) -> dict[str, str]:
    """The form's values for stored options (a new template shows the defaults)."""
    stored = options or OPTION_DEFAULTS.model_dump(mode="json")
    values: dict[str, str] = {}
    for path in FIELDS:
        value = _get(stored, path)
        if path == "custom_data.protected" and value is not None:
            values[PREFIX + path] = json.dumps(value, indent=2, sort_keys=True)
        elif isinstance(value, bool):
            values[PREFIX + path] = "true" if value else "false"
        else:
            values[PREFIX + path] = "" if value is None else str(value)
    tolerance = stored.get("fingerprint_tolerance") or {}
    if tolerance.get("k") is not None:
        values[PREFIX + "fingerprint_tolerance.preset"] = CUSTOM
    elif not values[PREFIX + "fingerprint_tolerance.preset"]:
        values[PREFIX + "fingerprint_tolerance.preset"] = "medium"
    return values


def _get(options: Mapping[str, Any], path: str) -> Any:
    node: Any = options
    for name in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(name)
    return node
