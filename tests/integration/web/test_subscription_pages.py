"""Subscriptions on the web fronts: staff make a subscription template in the console's
form, see a license's subscription on its page and cancel it there; the customer sees
it next to the license's validity in the License Portal, in English and German."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from babel.dates import format_datetime
from fastapi import FastAPI

from tests.factories import VendorFactory, VendorHandle
from tests.integration.web.console import post_forms
from tests.integration.web.pages import Browser
from tests.integration.web.staff import console, created_id, field_problem
from tests.integration.web.test_console_catalog import template_form


def _subscription_template_form(product_id: str, sku: str, **subscription: str) -> dict[str, str]:
    form = template_form(
        product_id, sku, **{f"subscription__{k}": v for k, v in subscription.items()}
    )
    form["options.validity.kind"], form["options.validity.days"] = "perpetual", ""
    return form


def test_staff_make_a_subscription_template_in_the_form(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    product = vendor.product()
    browser = console(app, vendor)
    form = _subscription_template_form(
        product["id"], "STUDIO-M", period="days", days="14", automatic="true", grace_days="5"
    )
    answer = browser.submit("/console/templates/new", "/console/templates/new", form)
    assert answer.status_code == 303, answer.text
    template = vendor.ok("GET", f"/templates/{created_id(answer, 'templates')}")
    assert template["options"]["subscription"] == {
        "period": "days",
        "days": 14,
        "automatic": True,
        "grace_days": 5,
    }
    edit = browser.get(f"/console/templates/{template['id']}").text
    assert '<option value="days" selected>' in edit and '<option value="true" selected>' in edit


def test_a_template_without_a_period_is_no_subscription(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    product = vendor.product()
    form = template_form(product["id"], "PLAIN", subscription__automatic="false")
    answer = console(app, vendor).submit("/console/templates/new", "/console/templates/new", form)
    assert answer.status_code == 303, answer.text
    template = vendor.ok("GET", f"/templates/{created_id(answer, 'templates')}")
    assert template["options"]["subscription"] is None


def test_broken_subscription_terms_are_shown_next_to_their_field(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    product = vendor.product()
    browser = console(app, vendor)
    cases = {
        "options.subscription.days": _subscription_template_form(
            product["id"], "S1", period="days"
        ),
        "options.validity.kind": template_form(product["id"], "S2", subscription__period="monthly"),
        "options.subscription.period": template_form(
            product["id"],
            "S3",
            validity__kind="perpetual",
            validity__days="",
            subscription__grace_days="3",
        ),
    }
    for field, form in cases.items():
        answer = browser.submit("/console/templates/new", "/console/templates/new", form)
        assert answer.status_code == 422, field
        assert re.search(r'class="code">[A-Z_]+</span>', field_problem(answer.text, field)), field


def _subscription(vendor: VendorHandle, **terms: object) -> dict[str, Any]:
    return vendor.license({"subscription": {"period": "monthly", "grace_days": 3, **terms}})


def test_the_license_page_shows_the_subscription_and_cancels_it(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    license_ = _subscription(vendor)
    vendor.ok(
        "POST", f"/licenses/{license_['id']}/subscription/actions/renew", json={"external_id": "I"}
    )
    browser = console(app, vendor)
    detail = f"/console/licenses/{license_['id']}"
    page = browser.get(detail).text
    paid_until = vendor.ok("GET", f"/licenses/{license_['id']}")["subscription"]["paid_until"]
    shown = page.split('id="subscription"')[1].split("</section>")[0]
    assert "monthly" in shown and "active" in shown and "3 days" in shown
    assert format_datetime(datetime.fromisoformat(paid_until), "medium", locale="en") in shown
    assert "subscription.renewed" in page  # the history

    answer = browser.submit(detail, f"{detail}/subscription/cancel", {})

    assert answer.status_code == 303
    after = browser.get(answer.headers["location"]).text
    assert "the subscription is cancelled" in after
    assert f"{detail}/subscription/cancel" not in post_forms(after)
    cancelled = vendor.ok("GET", f"/licenses/{license_['id']}")
    assert cancelled["subscription"]["status"] == "cancelled"
    assert cancelled["valid_until"] == paid_until


def test_a_read_only_member_sees_the_subscription_but_cannot_cancel_it(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    license_ = _subscription(vendor)
    browser = console(app, vendor, "read-only")
    detail = f"/console/licenses/{license_['id']}"
    assert 'id="subscription"' in browser.get(detail).text
    answer = browser.submit(detail, f"{detail}/subscription/cancel", {})
    assert answer.status_code == 403 and "FORBIDDEN" in answer.text
    plain = vendor.license()
    other = f"/console/licenses/{plain['id']}"
    assert 'id="subscription"' not in console(app, vendor).get(other).text


def test_the_customer_sees_the_subscription_in_english_and_german(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    template = vendor.template({"subscription": {"period": "monthly"}})
    order = vendor.order([{"sku": template["sku"], "quantity": 1}])
    portal = f"/portal/{vendor.slug}/"
    shown = {}
    for language in ("en", "de"):
        browser = Browser(app, language=language)
        answer = browser.submit(
            portal, f"/portal/{vendor.slug}/tickets", {"codes": order["ticket_code"]}
        )
        assert answer.status_code == 200, answer.text
        shown[language] = answer.text.split('class="small subscription">')[1].split("</span>")[0]
    assert "Subscription, renewed monthly" in shown["en"] and "next renewal on" in shown["en"]
    assert "Abonnement, monatlich verlängert" in shown["de"]
    assert "nächste Verlängerung am" in shown["de"]
