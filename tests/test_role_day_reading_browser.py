"""A Sales day in a real browser (issue 15): a customer calls about her order; staff find it by
her phone number from their home page and read its whole story on one page. The test counts
the clicks (typing is not counted) and prints them."""

from __future__ import annotations

import pytest

from .role_day import logged_in, role_user
from .sync_helpers import advance
from .test_browser import browser  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_reading_an_order_found_by_the_customers_phone(browser, world):  # noqa: F811
    from playwright.sync_api import expect

    world.order("FK-OTHER", 1, customer_phone="9000000001", customer_name="Ravi Kumar")
    order = world.order("FK-CALL", 2, customer_phone="9876543210", customer_name="Asha Rao")
    advance(order.shipments.get(), "PACKED")  # picked, invoiced
    invoice = order.shipments.get().invoices.get().code  # (no queries inside the browser)
    sales = role_user("Sales Manager", "sales-day")

    with browser() as ui:
        page, clicks = ui.page, logged_in(ui, sales)

        clicks.to_next_page(page.locator('a[href$="/admin/orders/order/"]').first)
        expect(page.locator("#searchbar")).to_be_focused()  # type at once
        page.keyboard.type("98765 43210")  # as the customer says it
        clicks.to_next_page(page.locator("#changelist-search [type=submit]"))
        expect(page.locator("#result_list tbody tr")).to_have_count(1)
        clicks.to_next_page(page.locator("#result_list a", has_text=order.code))

        for title in ("Units", "Shipments", "Invoices", "History"):
            expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
        expect(page.locator("#id_customer_name")).to_have_value("Asha Rao")  # Sales may edit
        expect(page.locator("body")).to_contain_text(invoice)
        ui.screenshot("role-day-sales-reading-an-order")
        problems = list(ui.problems)

    task_clicks = clicks.count
    print(f"\nclicks, reading an order found by phone (Sales): {task_clicks}")
    assert problems == []
    assert task_clicks <= 3
