"""The admin of channels and syncs, through the test client: the write-only password, presets,
"Sync status from channel" on orders (always a task: reported per order when it ends within
the request's short wait, linked with its progress otherwise),
the runs list and page, and re-sync from a date."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from channels import admin_actions
from channels.models import Channel, RunOutcome, SyncKind, SyncRun
from orders.models import Order, OrderItemStatus

from .factories import UserFactory
from .sync_helpers import mirror

pytest_plugins = ["tests.sync_fixtures"]


def url(model, view: str = "changelist", *args) -> str:
    meta = model._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=args)


def texts(response) -> list[str]:
    return [re.sub(r"<[^>]+>", " ", str(m)) for m in response.context["messages"]]


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.fixture
def sales(client):
    client.force_login(UserFactory(roles=["Sales Manager"]))
    return client


# --- channels -----------------------------------------------------------------------------------


def channel_form(**fields) -> dict:
    data = {
        "code": "MEESHO",
        "name": "Meesho",
        "channel_type": "AMAZON",
        "is_enabled": "on",
        "base_url": "https://api.example.com/uc",
        "username": "seller",
        "password": "s3cret-pass",
        "sync_enabled": "on",
        "pull_window_days": 15,
        "pull_statuses": "CREATED,PENDING_VERIFICATION",
        "page_size": 50,
        "status_batch_size": 50,
        "return_window_days": 30,
        "request_timeout": 30,
        "max_attempts": 5,
        "retry_base_delay": 1,
    }
    data.update(fields)
    return data


def test_the_password_is_write_only_and_presets_apply_on_creation(db, admin_client):
    response = admin_client.post(url(Channel, "add"), channel_form(), follow=True)
    assert response.status_code == 200
    channel = Channel.objects.get(code="MEESHO")
    assert channel.password == "s3cret-pass"
    assert channel.status_sync_channel_shipped_only  # the AMAZON type's preset

    page = admin_client.get(url(Channel, "change", channel.pk)).content.decode()
    assert "s3cret-pass" not in page
    assert 'name="password"' in page

    data = channel_form(password="", status_sync_channel_shipped_only="", supports_status_sync="on")
    admin_client.post(url(Channel, "change", channel.pk), data)
    channel.refresh_from_db()
    assert channel.password == "s3cret-pass"  # empty keeps it
    assert not channel.status_sync_channel_shipped_only  # editable once saved

    admin_client.post(url(Channel, "change", channel.pk), channel_form(password="n3w-pass"))
    channel.refresh_from_db()
    assert channel.password == "n3w-pass"
    admin_client.post(
        url(Channel, "change", channel.pk), channel_form(password="", clear_password="on")
    )
    channel.refresh_from_db()
    assert channel.password == ""


def test_a_native_channel_keeps_its_refresh_token_write_only_and_names_its_settings(
    db, admin_client
):
    settings = '{"marketplace_id": "A21TJRUUN4KGV", "seller_id": "A2SELLER"}'
    form = channel_form(
        code="AMZIN",
        channel_type="AMAZON_SP",
        refresh_token="Atzr|IwEB-zebra",
        api_settings=settings,
    )
    page = admin_client.get(url(Channel, "add")).content.decode()
    assert '"marketplace_id" (Amazon.in is A21TJRUUN4KGV)' in page  # the types' settings
    assert 'Shopify: "location_id"' in page
    admin_client.post(url(Channel, "add"), form, follow=True)
    channel = Channel.objects.get(code="AMZIN")
    assert channel.refresh_token == "Atzr|IwEB-zebra"
    assert channel.api_settings == {"marketplace_id": "A21TJRUUN4KGV", "seller_id": "A2SELLER"}
    assert channel.status_sync_channel_shipped_only  # the preset
    assert channel.accepts_cancel and not channel.accepts_status_notifications

    page = admin_client.get(url(Channel, "change", channel.pk)).content.decode()
    assert "zebra" not in page and 'name="refresh_token"' in page
    text = squash(re.sub(r"<[^>]+>", " ", page))
    assert "Saved refresh token: set" in text
    admin_client.post(url(Channel, "change", channel.pk), {**form, "refresh_token": ""})
    channel.refresh_from_db()
    assert channel.refresh_token == "Atzr|IwEB-zebra"  # empty keeps it

    missing = {**form, "code": "AMZ2", "api_settings": '{"marketplace_id": "A21TJRUUN4KGV"}'}
    refused = admin_client.post(url(Channel, "add"), missing)
    assert "Channel AMZ2: API settings need &#x27;seller_id&#x27;" in refused.content.decode()
    assert not Channel.objects.filter(code="AMZ2").exists()


def test_channel_actions_queue_runs_and_resync_moves_the_cursor(
    world, channel, admin_client, monkeypatch, django_capture_on_commit_callbacks
):
    from channels import tasks

    queued = []
    monkeypatch.setattr(tasks.pull_orders, "delay", lambda **kw: queued.append(kw))
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            url(Channel),
            {"action": "pull_now", ACTION_CHECKBOX_NAME: [channel.pk], "index": 0},
            follow=True,
        )
    run = SyncRun.objects.get()
    assert (run.kind, run.trigger, run.outcome) == (SyncKind.ORDER_PULL, "MANUAL", "QUEUED")
    assert queued == [{"run_id": run.pk}]
    assert "Order pull queued for FLIPKART" in squash(" ".join(texts(response)))

    since = (timezone.localdate() - timedelta(days=40)).isoformat()
    data = {
        "action": "resync",
        ACTION_CHECKBOX_NAME: [channel.pk],
        "index": 0,
        "confirm_resync": "yes",
        "kind": SyncKind.STATUS,
        "since": since,
    }
    page = admin_client.post(url(Channel), {**data, "confirm_resync": ""})
    assert b"Re-sync from a chosen date" in page.content  # the intermediate page first
    response = admin_client.post(url(Channel), data, follow=True)
    cursor = channel.sync_cursors.get(kind=SyncKind.STATUS)
    assert timezone.localtime(cursor.resync_from).date().isoformat() == since
    assert "covers orders from" in " ".join(texts(response))
    change = admin_client.get(url(Channel, "change", channel.pk)).content.decode()
    assert "Sync cursors" in change and "Latest runs" in change


# --- "Sync status from channel" on orders ---------------------------------------------------


@pytest.fixture
def fast_worker(monkeypatch):
    """A worker that runs a queued sync at once (the request then finds it ended)."""
    from channels import tasks

    monkeypatch.setattr(
        admin_actions, "queue_run", lambda run: tasks.sync_selected_orders(run_id=run.pk)
    )


def test_sync_status_from_channel_reports_per_order(world, channel, sim, live, sales, fast_worker):
    dispatched = world.order("FK-1", 1)
    in_sync = world.order("FK-2", 1)
    unknown = world.order("FK-3", 1)
    mirror(sim, dispatched, status="DISPATCHED")
    mirror(sim, in_sync)

    response = sales.post(
        url(Order),
        {
            "action": "sync_status_from_channel",
            ACTION_CHECKBOX_NAME: [o.pk for o in (dispatched, in_sync, unknown)],
            "index": 0,
        },
        follow=True,
    )

    run = SyncRun.objects.get()
    shown = [squash(t) for t in texts(response)]
    assert shown == [
        f"FLIPKART: changed 1 order ( run #{run.pk} ): FLIPKART-FK-1: dispatched 1 unit",
        f"FLIPKART: 2 orders unchanged ( run #{run.pk} ): FLIPKART-FK-2: in sync with the "
        "channel FLIPKART-FK-3: the channel does not know this order",
    ]
    assert set(dispatched.items.values_list("status", flat=True)) == {OrderItemStatus.DISPATCHED}
    assert (run.kind, run.trigger, run.requested_by.groups.get().name) == (
        SyncKind.SELECTED,
        "MANUAL",
        "Sales Manager",
    )
    page = sales.get(url(SyncRun, "change", run.pk)).content.decode()
    assert "dispatched 1 unit" in page and "the channel does not know this order" in page


def test_sync_status_from_channel_is_refused_before_go_live(world, channel, sim, sales):
    order = world.order("FK-1", 1)
    response = sales.post(
        url(Order),
        {"action": "sync_status_from_channel", ACTION_CHECKBOX_NAME: [order.pk], "index": 0},
        follow=True,
    )
    assert texts(response) == ["FLIPKART: Sync not allowed as Tenant is not Live yet"]
    assert SyncRun.objects.get().outcome == RunOutcome.REFUSED


def test_the_request_never_calls_the_channel_and_links_a_run_still_going(
    world, channel, sim, live, sales, monkeypatch, django_capture_on_commit_callbacks
):
    """The worker has not ended the run within the wait: the request has asked the channel
    nothing, says where to follow the run, and the run page shows its progress."""
    from channels import tasks

    monkeypatch.setattr(admin_actions, "SYNC_WAIT_SECONDS", 0)
    orders = [world.order(f"FK-{n}", 1) for n in range(3)]
    for order in orders:
        mirror(sim, order, status="DISPATCHED")
    queued = []
    monkeypatch.setattr(tasks.sync_selected_orders, "delay", lambda **kw: queued.append(kw))

    with django_capture_on_commit_callbacks(execute=True):
        response = sales.post(
            url(Order),
            {
                "action": "sync_status_from_channel",
                ACTION_CHECKBOX_NAME: [o.pk for o in orders],
                "index": 0,
            },
            follow=True,
        )

    run = SyncRun.objects.get()
    assert (run.outcome, run.progress_total, queued) == ("QUEUED", 3, [{"run_id": run.pk}])
    assert sim.store.requests("FLIPKART") == []  # nothing asked of the channel in the request
    assert squash(texts(response)[0]).startswith(
        f"Status sync of 3 orders is running as run #{run.pk} (FLIPKART)"
    )
    page = sales.get(url(SyncRun, "change", run.pk)).content.decode()
    assert 'http-equiv="refresh"' in page  # refreshes itself while queued or running
    assert "0/3 (0%)" in page

    tasks.sync_selected_orders(run_id=run.pk)  # what the worker does

    run.refresh_from_db()
    assert (run.outcome, run.changed, run.progress_done) == (RunOutcome.SUCCESS, 3, 3)
    page = sales.get(url(SyncRun, "change", run.pk)).content.decode()
    assert 'http-equiv="refresh"' not in page and "3/3 (100%)" in page
    listing = sales.get(url(SyncRun)).content.decode()
    assert "Status sync of selected orders" in listing


def test_pick_and_pack_cannot_sync_orders(world, client):
    client.force_login(UserFactory(roles=["Pick and Pack"]))
    response = client.get(url(Order))
    assert response.status_code == 200
    form = response.context["action_form"]
    choices = {name for name, _ in form.fields["action"].choices} if form else set()
    assert "sync_status_from_channel" not in choices


def test_a_selection_beyond_the_cap_is_refused_with_the_way_out(world, sales, monkeypatch):
    monkeypatch.setattr(admin_actions, "SYNC_MAX", 1)
    orders = [world.order(f"FK-{n}", 1) for n in range(2)]
    response = sales.post(
        url(Order),
        {
            "action": "sync_status_from_channel",
            ACTION_CHECKBOX_NAME: [o.pk for o in orders],
            "index": 0,
        },
        follow=True,
    )
    assert texts(response) == [
        "Select at most 1 orders to sync; for more, use the channel's \"Re-sync from a chosen "
        'date".'
    ]
    assert not SyncRun.objects.exists()
