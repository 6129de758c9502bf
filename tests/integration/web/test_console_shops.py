"""The console's web shops page: connect Stripe with its secret (never shown again),
map a price to a SKU, see a failed event with its reason; forms need their CSRF
token; a read-only member sees the page and no form; the page speaks German too."""

from __future__ import annotations

from fastapi import FastAPI

from tests.factories import VendorFactory
from tests.integration.web.console import post_forms, staff_browser
from tests.integration.web.pages import Browser, log_in_staff, staff_user
from tests.support.shops import STRIPE_SECRET, Shop, checkout_session, stripe_event

PAGE = "/console/shops"


def test_connect_a_shop_map_a_price_and_see_the_order_it_makes(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    browser = staff_browser(app, vendor)
    form = {
        "signing_secret": STRIPE_SECRET,
        "refund_action": "withdraw",
        "cancel_action": "none",
        "enabled": "on",
    }
    assert browser.submit(PAGE, f"{PAGE}/stripe", form).status_code == 303
    settings = vendor.ok("GET", "/shops/stripe")
    assert (settings["refund_action"], settings["enabled"]) == ("withdraw", True)
    page = browser.get(PAGE).text
    assert STRIPE_SECRET not in page
    assert f"/api/v1/vendors/{vendor.slug}/shops/stripe/events" in page
    sku = vendor.template()["sku"]
    mapped = browser.submit(
        PAGE,
        "/console/shop-mappings",
        {"provider": "stripe", "provider_ref": "price_A", "sku": sku},
    )
    assert mapped.status_code == 303
    shop = Shop(vendor, "stripe", STRIPE_SECRET)
    receipt = shop.send(
        stripe_event("checkout.session.completed", checkout_session([("price_A", 1)]))
    )
    assert receipt.status_code == 200
    page = browser.get(PAGE).text
    assert "order_created" in page and "price_A" in page


def test_an_unmapped_price_shows_as_a_failed_event_with_its_code(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    browser = staff_browser(app, vendor)
    browser.submit(PAGE, f"{PAGE}/stripe", {"signing_secret": STRIPE_SECRET, "enabled": "on"})
    shop = Shop(vendor, "stripe", STRIPE_SECRET)
    shop.send(stripe_event("checkout.session.completed", checkout_session([("price_lost", 1)])))
    page = browser.get(PAGE).text
    assert "SHOP_ITEM_UNMAPPED" in page and "price_lost" in page


def test_a_mapping_to_an_unknown_sku_is_refused_next_to_the_field(
    app: FastAPI, vendors: VendorFactory
):
    browser = staff_browser(app, vendors.create())
    answer = browser.submit(
        PAGE,
        "/console/shop-mappings",
        {"provider": "stripe", "provider_ref": "price_A", "sku": "NOPE"},
    )
    assert answer.status_code == 422
    problem = answer.text.split('id="f-sku-problem"')[1].split("</p>")[0]
    assert "UNKNOWN_SKU" in problem


def test_connecting_without_a_secret_is_refused_next_to_the_secret(
    app: FastAPI, vendors: VendorFactory
):
    browser = staff_browser(app, vendors.create())
    answer = browser.submit(PAGE, f"{PAGE}/paddle", {"enabled": "on"})
    assert answer.status_code == 422
    assert (
        "VALIDATION_FAILED" in answer.text.split('id="secret-paddle-problem"')[1].split("</p>")[0]
    )


def test_a_form_without_its_csrf_token_is_refused(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    browser = staff_browser(app, vendor)
    answer = browser.client.post(f"{PAGE}/stripe", data={"signing_secret": STRIPE_SECRET})
    assert answer.status_code == 403
    assert vendor.get("/shops/stripe").status_code == 404


def test_a_read_only_member_sees_the_page_but_no_form_and_cannot_post(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    browser = staff_browser(app, vendor, "read-only")
    shown = browser.get(PAGE)
    assert shown.status_code == 200 and post_forms(shown.text) == []
    token = browser.token("/console/")
    refused = browser.client.post(
        f"{PAGE}/stripe", data={"csrf_token": token, "signing_secret": STRIPE_SECRET}
    )
    assert refused.status_code == 403
    assert vendor.get("/shops/stripe").status_code == 404


def test_the_page_speaks_german(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    browser = Browser(app, language="de")
    assert log_in_staff(browser, vendor, staff_user(vendor)).status_code == 303
    page = browser.get(PAGE).text
    assert "Webshops" in page and "Preise und SKUs" in page
