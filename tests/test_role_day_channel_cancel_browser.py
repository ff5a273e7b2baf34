"""A Sales day in a real browser (issue 15): the channel cancelled an order; staff sync the
channel's statuses now (the worker's run in a thread of its own, as the worker would), follow
the run and see the order cancelled, its stock released. The test counts the clicks."""

from __future__ import annotations

import pytest

from channels import tasks
from channels.models import RunOutcome, SyncKind, SyncRun
from orders.models import OrderItemStatus, OrderStatus

from .role_day import logged_in, role_user
from .sync_helpers import mirror
from .test_browser import browser  # noqa: F401 (the fixture)
from .test_role_day_import_browser import as_worker

pytest_plugins = ["tests.sync_fixtures"]
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_channel_cancel_seen_by_a_sync_run_now(browser, world, channel, sim, live):  # noqa: F811
    from playwright.sync_api import expect

    order = world.order("FK-CXL", 2)
    mirror(sim, order, status="CANCELLED")
    sales = role_user("Sales Manager", "sales-cancel")

    with browser() as ui:
        page, clicks = ui.page, logged_in(ui, sales)

        clicks.to_next_page(page.locator('a[href$="/admin/channels/channel/"]').first)
        clicks.tick(page.locator("input.action-select").first)
        clicks.choose("select[name='action']", "sync_status_now")
        clicks.to_next_page(page.locator("button[name='index']"))
        expect(page.locator("ul.messagelist li.success")).to_contain_text("queued for FLIPKART")
        as_worker(lambda: tasks.sync_status(channel_id=channel.pk, run_id=queued_run()))
        clicks.to_next_page(page.locator("ul.messagelist li.success a"))  # the runs
        expect(page.locator("#result_list")).to_contain_text("1 changed")
        clicks.to_next_page(page.locator('a[href$="/admin/orders/order/"]').first)
        clicks.to_next_page(page.locator("#result_list a", has_text=order.code))
        expect(page.locator("#content")).to_contain_text("CANCELLED")
        ui.screenshot("role-day-sales-channel-cancel")
        problems = list(ui.problems)

    task_clicks = clicks.count
    print(f"\nclicks, a channel cancel synced now and read (Sales): {task_clicks}")
    assert problems == []
    assert task_clicks <= 7
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert set(order.items.values_list("status", flat=True)) == {OrderItemStatus.CANCELLED}
    run = SyncRun.objects.get(kind=SyncKind.STATUS)
    assert (run.outcome, run.changed, run.trigger) == (RunOutcome.SUCCESS, 1, "MANUAL")


def queued_run() -> int:
    return SyncRun.objects.get(kind=SyncKind.STATUS, outcome=RunOutcome.QUEUED).pk
