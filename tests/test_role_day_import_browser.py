"""A Sales day in a real browser (issue 15): orders a channel sent as a spreadsheet are
imported (upload, check, import), then the order list is exported to a file. The worker's two
steps run in a thread of their own, as the worker would; the job page follows them by itself.
The test counts the clicks and prints them."""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from imports import services
from imports.models import ImportJob
from orders.models import Order

from .importing import csv_bytes, order_row
from .role_day import logged_in, role_user
from .test_browser import browser  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def as_worker(step, *args) -> None:
    """Run a worker's step outside the browser's event loop, its connection closed after."""

    def run():
        try:
            step(*args)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(run).result()


def test_import_orders_then_export_the_order_list(browser, world, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    upload = tmp_path / "orders.csv"
    upload.write_bytes(csv_bytes([order_row("IMP-1"), order_row("IMP-2", quantity="2")]))
    sales = role_user("Sales Manager", "sales-import")

    with browser() as ui:
        page, clicks = ui.page, logged_in(ui, sales)

        clicks.to_next_page(page.locator('a[href$="/admin/orders/order/"]').first)
        clicks.to_next_page(page.get_by_role("link", name="Import orders"))
        clicks.count += 1  # choosing the file
        page.set_input_files("#import_upload_form input[type=file]", str(upload))
        clicks.to_next_page(page.locator("input[name=_upload]"))
        job_id = int(page.url.rstrip("/").split("/")[-2])
        with page.expect_navigation(wait_until="load"):  # the page follows the job
            as_worker(services.import_job_check, job_id)
        clicks.to_next_page(page.locator("input[name=_import]"))
        with page.expect_navigation(wait_until="load"):
            as_worker(services.import_job_run, job_id)
        expect(page.locator("#content")).to_contain_text("Imported 2")
        ui.screenshot("role-day-sales-import")

        clicks.to_next_page(page.locator('a[href$="/admin/orders/order/"]').first)
        clicks.count += 1
        with page.expect_download() as download:
            page.get_by_role("button", name="Export CSV").click()
        exported = download.value.path().read_bytes().decode("utf-8-sig")
        problems = list(ui.problems)

    task_clicks = clicks.count
    print(f"\nclicks, an import of orders and an export of the list (Sales): {task_clicks}")
    assert problems == []
    assert task_clicks <= 7
    assert ImportJob.objects.get(pk=job_id).created_count == 2
    assert set(Order.objects.values_list("channel_order_id", flat=True)) == {"IMP-1", "IMP-2"}
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert sorted(r["channel_order_id"] for r in rows) == ["IMP-1", "IMP-2"]  # a row an order
