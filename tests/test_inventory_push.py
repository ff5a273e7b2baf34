"""The inventory push (issue 16, "What is pushed"): what each channel is told, with the channel
simulator over HTTP (and, in the last test, a real Celery worker): the formula and its stored
terms, facilities, only changed listings, the out-of-stock fast path, the channel's "0 at or
below" rule, faults (5xx, 429, failed entries, a channel down while another is fine), the
lease, the safety window of the change scan, and the admin's "push inventory now".

The scenarios marked `dialects` run against the channel contract and against Amazon's and
Shopify's own APIs (issue 17, `tests/sync_fixtures.py`); Amazon's bulk feed has its own tests
(`test_amazon_feeds.py`)."""

from __future__ import annotations

import time
import urllib.request
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from channels.adapters import forget_adapters
from channels.models import Channel, RunOutcome, SyncKind, SyncLease, SyncRun
from channels.sync.runs import lease_release, lease_take
from inventory.models import Facility, Inventory, Shelf, StockMovement
from inventory.services import stock_add
from listings import tasks
from listings.admin_actions import push_inventory_now
from listings.changes import scan
from listings.models import ChannelListing, InventoryCursor, InventoryLane, PushStatus
from listings.push import push_inventory
from listings.quantity import explain
from orders.services import LineInput, OrderInput, order_create, orders_cancel
from simulator import SimulatorServer
from uniware.core.models import StateChange

from .factories import ChannelFactory, SkuFactory, UserFactory, make_world
from .sync_helpers import point_at
from .workers import celery_worker

pytestmark = pytest.mark.postgres
pytest_plugins = ["tests.sync_fixtures"]

CHANGED, ZERO = InventoryLane.CHANGED, InventoryLane.ZERO


def product_ids(code: str) -> dict[str, str]:
    """Our product id of what a channel names a listing by: Shopify names only the variant."""
    rows = ChannelListing.objects.filter(channel__code=code).values_list("variant_id", "product_id")
    return {variant: product for variant, product in rows if variant}


def levels(sim, code: str) -> dict[str, int]:
    """What the channel holds: {productId: inventory} (one facility in these tests)."""
    names = product_ids(code)
    return {
        names.get(r["productId"], r["productId"]): r["inventory"]
        for r in sim.store.received(code)["inventoryLevels"]
    }


def sent(sim, code: str) -> list[list[tuple[str, str]]]:
    """Every inventory request the channel received: [(productId, inventory), ...] each."""
    names = product_ids(code)
    records = sim.store.received(code, "inventory")["inventory"]
    return [
        [
            (names.get(e["productId"], e["productId"]), e["inventory"])
            for e in r["body"]["inventoryList"]
        ]
        for r in records
    ]


def listing(channel, product: str, sku, **fields) -> ChannelListing:
    return ChannelListing.objects.create(
        channel=channel, product_id=product, variant_id=f"{product}-V", sku=sku, **fields
    )


def waiting_order(world, code: str, quantity: int, sku=None):
    """An order whose units wait, not allocated (CREATED, no stock row)."""
    line = LineInput(f"{code}-L1", (sku or world.sku).code, quantity, "499.00")
    spec = OrderInput(
        channel=world.channel, channel_order_id=code, ship_pincode="560001", lines=[line]
    )
    return order_create(spec, allocate=False)


@pytest.fixture
def amazon(world, sim) -> Channel:
    return point_at(ChannelFactory(code="AMAZON", name="Amazon", channel_type="AMAZON"), sim)


# --- what is pushed -------------------------------------------------------------------------


def test_the_channel_gets_the_formula_and_the_terms_are_kept(world, channel, amazon, sim):
    stock_add(shelf=world.shelf, sku=world.sku, quantity=10)  # 20 on shelves
    world.order("FK-1", 5)  # 5 blocked
    waiting_order(world, "FK-2", 1)  # 1 waiting, whatever the channel
    mine = listing(channel, "P-TSHIRT", world.sku, buffer=2)
    theirs = listing(amazon, "A-TSHIRT", world.sku)

    run = push_inventory(channel, lane=CHANGED)
    assert (run.outcome, run.kind, run.changed, run.failed) == ("SUCCESS", "INVENTORY", 1, 0)
    push_inventory(amazon, lane=CHANGED)

    assert levels(sim, "FLIPKART") == {"P-TSHIRT": 12}
    assert levels(sim, "AMAZON") == {"A-TSHIRT": 14}
    mine.refresh_from_db()
    assert (mine.pushed_quantity, mine.wanted_quantity, mine.push_status) == (12, 12, "IN_SYNC")
    assert explain(mine.pushed_terms) == "12 = 20 on shelves − 5 blocked − 1 waiting − 2 buffer"
    assert mine.pushed_at is not None and "Accepted by FLIPKART" in mine.push_answer
    entry = sim.store.received("FLIPKART", "inventory")["inventory"][0]["body"]["inventoryList"]
    assert entry == [
        {
            "productId": "P-TSHIRT",
            "variantId": "P-TSHIRT-V",
            "inventory": "12",
            "facilityCode": "WH1",
        }
    ]
    theirs.refresh_from_db()
    assert theirs.pushed_terms["waiting"] == 1
    with urllib.request.urlopen(f"{sim.url}/?channel=FLIPKART", timeout=10) as page:
        html = page.read().decode()
    assert "Inventory levels held by FLIPKART (1 listings)" in html
    assert "<td>P-TSHIRT</td><td>P-TSHIRT-V</td><td>WH1</td><td>12</td>" in html


def test_only_the_facilities_serving_the_channel_count(world, channel, amazon, sim):
    wh2 = Facility.objects.create(code="WH2", name="Second", priority=2)
    wh3 = Facility.objects.create(code="WH3", name="Closed", priority=3, is_active=False)
    for facility, quantity in ((wh2, 7), (wh3, 5)):
        shelf = Shelf.objects.create(facility=facility, code=f"{facility.code}-A")
        Inventory.objects.create(facility=facility, shelf=shelf, sku=world.sku, quantity=quantity)
    amazon.inventory_facilities.set([wh2, wh3])  # an inactive facility never counts
    listing(channel, "P-TSHIRT", world.sku)
    listing(amazon, "A-TSHIRT", world.sku)

    push_inventory(channel, lane=CHANGED)
    push_inventory(amazon, lane=CHANGED)

    assert levels(sim, "FLIPKART") == {"P-TSHIRT": 17}  # none chosen: every active facility
    assert levels(sim, "AMAZON") == {"A-TSHIRT": 7}
    facility = sim.store.received("AMAZON")["inventoryLevels"][0]["facilityCode"]
    assert facility == "WH2"


@pytest.mark.dialects()
def test_only_changed_listings_are_pushed(world, channel, sim, dialect):
    jeans = SkuFactory(code="JEANS")
    Inventory.objects.create(facility=world.facility, shelf=world.shelf, sku=jeans, quantity=4)
    listing(channel, "P-TSHIRT", world.sku)
    listing(channel, "P-JEANS", jeans)
    listing(channel, "P-OFF", jeans, sync_enabled=False)
    ChannelListing.objects.create(channel=channel, product_id="P-UNMAPPED")

    push_inventory(channel, lane=CHANGED)
    requests = sent(sim, "FLIPKART")
    assert sum(requests, []) == [("P-TSHIRT", "10"), ("P-JEANS", "4")]
    assert len(requests) == (2 if dialect == "amazon" else 1)  # Amazon: a call a listing

    run = push_inventory(channel, lane=CHANGED)  # nothing moved: nothing sent
    assert (run.outcome, run.changed) == ("SUCCESS", 0)
    assert sent(sim, "FLIPKART") == requests

    stock_add(shelf=world.shelf, sku=jeans, quantity=3)
    push_inventory(channel, lane=CHANGED)
    assert sent(sim, "FLIPKART")[len(requests) :] == [[("P-JEANS", "7")]]
    assert set(ChannelListing.objects.values_list("push_status", flat=True)) == {
        "IN_SYNC",
        "NEVER",
    }


@pytest.mark.dialects()
def test_the_zero_lane_pushes_only_what_dropped_to_zero(world, channel, sim):
    jeans = SkuFactory(code="JEANS")
    Inventory.objects.create(facility=world.facility, shelf=world.shelf, sku=jeans, quantity=4)
    tshirt_listing = listing(channel, "P-TSHIRT", world.sku)
    jeans_listing = listing(channel, "P-JEANS", jeans)
    push_inventory(channel, lane=CHANGED)

    world.order("FK-ALL", 10)  # every T-shirt blocked
    stock_add(shelf=world.shelf, sku=jeans, quantity=1)  # more jeans: not urgent
    run = push_inventory(channel, lane=ZERO)

    assert run.changed == 1
    assert sent(sim, "FLIPKART")[-1] == [("P-TSHIRT", "0")]
    jeans_listing.refresh_from_db()
    assert (jeans_listing.push_status, jeans_listing.wanted_quantity) == ("PENDING", 5)
    assert jeans_listing.pushed_quantity == 4
    assert push_inventory(channel, lane=ZERO).changed == 0  # 0 already pushed

    push_inventory(channel, lane=CHANGED)
    assert sent(sim, "FLIPKART")[-1] == [("P-JEANS", "5")]
    tshirt_listing.refresh_from_db()
    assert tshirt_listing.pushed_quantity == 0
    assert explain(tshirt_listing.pushed_terms) == (
        "0 = 10 on shelves − 10 blocked − 0 waiting − 0 buffer"
    )


@pytest.mark.dialects()
def test_the_channel_rule_pushes_zero_at_or_below_n(world, channel, sim):
    channel.inventory_zero_at_or_below = 3
    channel.save()
    mine = listing(channel, "P-TSHIRT", world.sku, buffer=1)
    world.order("FK-1", 6)  # 10 − 6 − 1 = 3: at the rule's limit

    push_inventory(channel, lane=CHANGED)

    assert levels(sim, "FLIPKART") == {"P-TSHIRT": 0}
    mine.refresh_from_db()
    assert explain(mine.pushed_terms) == (
        "0 = 10 on shelves − 6 blocked − 0 waiting − 1 buffer (3, pushed as 0: the channel's "
        "rule is 0 at or below 3)"
    )


def test_more_waiting_than_stock_pushes_zero(world, channel, sim):
    mine = listing(channel, "P-TSHIRT", world.sku)
    world.order("FK-1", 8)
    waiting_order(world, "FK-2", 5)
    push_inventory(channel, lane=CHANGED)
    mine.refresh_from_db()
    assert mine.pushed_quantity == 0
    assert explain(mine.pushed_terms).endswith("(-3, never below 0)")


# --- faults ---------------------------------------------------------------------------------


@pytest.mark.dialects()
def test_server_errors_and_rate_limits_are_retried_by_the_adapter(world, channel, sim):
    listing(channel, "P-TSHIRT", world.sku)
    sim.store.add_fault({"kind": "error", "status": 503, "path": "/updateInventory", "count": 2})
    sim.store.add_fault(
        {"kind": "rate_limit", "path": "/updateInventory", "count": 1, "retryAfter": 0}
    )
    run = push_inventory(channel, lane=CHANGED)
    assert (run.outcome, run.retries) == ("SUCCESS", 3), run.message
    assert levels(sim, "FLIPKART") == {"P-TSHIRT": 10}


@pytest.mark.dialects()
def test_failed_entries_are_recorded_and_retried_next_run(world, channel, sim):
    jeans = SkuFactory(code="JEANS")
    listing(channel, "P-TSHIRT", world.sku)
    listing(channel, "P-JEANS", jeans)
    sim.store.add_fault(
        {
            "kind": "fail_items",
            "path": "/updateInventory",
            "itemIds": ["P-TSHIRT", "P-TSHIRT-V"],  # Shopify names the variant only
            "count": 1,
        }
    )
    run = push_inventory(channel, lane=CHANGED)
    assert (run.outcome, run.changed, run.failed) == ("PARTIAL", 1, 1)
    failed = ChannelListing.objects.get(product_id="P-TSHIRT")
    assert (failed.push_status, failed.push_attempts, failed.pushed_quantity) == ("FAILED", 1, None)
    assert failed.push_answer  # the channel's reason
    assert run.report == [["P-TSHIRT/P-TSHIRT-V", "FAILED", failed.push_answer]]
    assert levels(sim, "FLIPKART") == {"P-JEANS": 0}

    run = push_inventory(channel, lane=CHANGED)  # nothing moved; the failed one goes again
    assert (run.outcome, run.changed) == ("SUCCESS", 1)
    assert sent(sim, "FLIPKART")[-1] == [("P-TSHIRT", "10")]
    failed.refresh_from_db()
    assert (failed.push_status, failed.push_attempts, failed.pushed_quantity) == ("IN_SYNC", 0, 10)


def test_a_channel_down_fails_its_run_and_not_the_others(world, channel, amazon, sim):
    channel.max_attempts = 2
    channel.save()
    listing(channel, "P-TSHIRT", world.sku)
    listing(amazon, "A-TSHIRT", world.sku)
    sim.store.add_fault({"kind": "error", "status": 503, "channel": "FLIPKART"})

    down = push_inventory(channel, lane=CHANGED)
    fine = push_inventory(amazon, lane=CHANGED)

    assert down.outcome == "FAILED" and "gave up after 2 attempts" in down.message
    assert fine.outcome == "SUCCESS" and levels(sim, "AMAZON") == {"A-TSHIRT": 10}
    mine = ChannelListing.objects.get(channel=channel)
    assert mine.push_status == "FAILED" and "503" in mine.push_answer
    cursor = InventoryCursor.objects.get(channel=channel, lane=CHANGED)
    assert (cursor.movement_id, cursor.change_id) == (0, 0)  # read again next run

    sim.store.clear_faults()
    assert push_inventory(channel, lane=CHANGED).outcome == "SUCCESS"
    assert levels(sim, "FLIPKART") == {"P-TSHIRT": 10}


def test_channels_that_take_no_inventory_are_skipped(world, channel, amazon, sim):
    amazon.accepts_inventory = False
    amazon.save()
    listing(amazon, "A-TSHIRT", world.sku)
    run = push_inventory(amazon, lane=CHANGED)
    assert run.outcome == "REFUSED" and "does not accept inventory" in run.message
    assert tasks.pushing_channels() == [channel.pk]
    channel.sync_enabled = False
    channel.save()
    assert tasks.pushing_channels() == []
    assert sim.store.received("AMAZON", "inventory")["inventory"] == []


# --- order of pushes ------------------------------------------------------------------------


def test_a_database_other_than_postgresql_is_refused_with_the_reason(world, channel, monkeypatch):
    """`make demo` runs on SQLite: its pushes are refused, named, instead of failing a run."""
    from listings import push

    class SQLite:
        vendor = "sqlite"

    monkeypatch.setattr(push, "connection", SQLite())
    run = push_inventory(channel, lane=CHANGED)
    assert run.outcome == "REFUSED" and "needs PostgreSQL (set DATABASE_URL)" in run.message


@pytest.mark.dialects()
def test_one_push_per_channel_at_a_time(world, channel, sim):
    listing(channel, "P-TSHIRT", world.sku)
    assert lease_take(channel, SyncKind.INVENTORY, "other") == ""
    run = push_inventory(channel, lane=ZERO)
    assert run.outcome == "REFUSED" and "Another inventory push" in run.message
    assert sent(sim, "FLIPKART") == []
    lease_release(channel, SyncKind.INVENTORY, "other")
    assert push_inventory(channel, lane=CHANGED).outcome == "SUCCESS"
    assert SyncLease.objects.get(channel=channel, kind="INVENTORY").holder == ""


@pytest.mark.dialects()
def test_a_newer_push_is_never_replaced_by_an_older_record(world, channel, sim):
    mine = listing(channel, "P-TSHIRT", world.sku)
    later = timezone.now() + timedelta(hours=1)
    ChannelListing.objects.filter(pk=mine.pk).update(pushed_quantity=3, pushed_at=later)
    push_inventory(channel, full=True)
    mine.refresh_from_db()
    assert (mine.pushed_quantity, mine.pushed_at) == (3, later)


# --- the change scan ------------------------------------------------------------------------


def test_the_cursor_moves_only_past_rows_older_than_the_safety_window(world, channel, sim):
    listing(channel, "P-TSHIRT", world.sku)
    world.order("FK-1", 1)  # stock movements and audit rows
    push_inventory(channel, lane=CHANGED)  # a new cursor: every listing
    first_recent = StockMovement.objects.order_by("pk").first().pk
    cursor = InventoryCursor.objects.get(channel=channel, lane=CHANGED)
    assert cursor.movement_id == first_recent - 1  # every row is recent: read again
    assert cursor.change_id == StateChange.objects.order_by("pk").first().pk - 1

    old = timezone.now() - timedelta(hours=1)
    StockMovement.objects.update(at=old)
    StateChange.objects.update(at=old)
    stock_add(shelf=world.shelf, sku=world.sku, quantity=1)
    newest = StockMovement.objects.order_by("pk").last().pk
    push_inventory(channel, lane=CHANGED)
    cursor.refresh_from_db()
    assert cursor.movement_id == newest - 1
    assert cursor.change_id == StateChange.objects.order_by("pk").last().pk

    with override_settings(INVENTORY_SAFETY_SECONDS=0):
        push_inventory(channel, lane=CHANGED)
    cursor.refresh_from_db()
    assert cursor.movement_id == newest
    assert levels(sim, "FLIPKART") == {"P-TSHIRT": 10}


@pytest.mark.dialects()
def test_units_created_and_cancelled_are_changes_too(world, channel, sim):
    mine = listing(channel, "P-TSHIRT", world.sku)
    with override_settings(INVENTORY_SAFETY_SECONDS=0):
        push_inventory(channel, lane=CHANGED)
        order = waiting_order(world, "FK-W", 3)  # audit rows only, no stock movement
        _, found = scan(channel, CHANGED)
        assert found.listing_ids == [mine.pk]
        push_inventory(channel, lane=CHANGED)
        assert levels(sim, "FLIPKART") == {"P-TSHIRT": 7}
        orders_cancel([order.pk], reason="test")
        push_inventory(channel, lane=CHANGED)
    assert levels(sim, "FLIPKART") == {"P-TSHIRT": 10}


# --- admin: push inventory now --------------------------------------------------------------


def _eager(monkeypatch):
    monkeypatch.setattr(
        tasks.push_inventory, "delay", lambda **kw: tasks.push_inventory.apply(kwargs=kw)
    )


def test_push_channel_inventory_now_is_a_full_push(
    world, channel, sim, admin_client, monkeypatch, django_capture_on_commit_callbacks
):
    listing(channel, "P-TSHIRT", world.sku)
    push_inventory(channel, lane=CHANGED)
    _eager(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:channels_channel_changelist"),
            {"action": "push_channel_inventory_now", "_selected_action": [channel.pk]},
            follow=True,
        )
    assert "Inventory push of every listing queued" in response.content.decode()
    run = SyncRun.objects.filter(kind="INVENTORY").first()
    assert (run.trigger, run.outcome, run.changed, run.params["full"]) == (
        "MANUAL",
        "SUCCESS",
        1,
        True,
    )
    assert sent(sim, "FLIPKART") == [[("P-TSHIRT", "10")], [("P-TSHIRT", "10")]]


def test_push_inventory_now_on_listings_needs_the_permission(
    world, channel, sim, rf, monkeypatch, django_capture_on_commit_callbacks
):
    from django.contrib.messages.storage.fallback import FallbackStorage

    mine = listing(channel, "P-TSHIRT", world.sku)
    ChannelListing.objects.create(channel=channel, product_id="P-UNMAPPED")
    _eager(monkeypatch)
    user = UserFactory(username="clerk")

    def act():
        request = rf.post("/")
        request.user = user
        request.session = {}
        request._messages = FallbackStorage(request)
        with django_capture_on_commit_callbacks(execute=True):
            push_inventory_now(None, request, ChannelListing.objects.all())
        return [str(m) for m in request._messages]

    assert "needs the permission" in act()[0]
    user.user_permissions.add(Permission.objects.get(codename="push_channellisting"))
    user = type(user).objects.get(pk=user.pk)  # drop the permission cache
    said = act()
    assert "1 listing not pushed" in said[0] and "queued" in said[1]
    run = SyncRun.objects.get(kind="INVENTORY")
    assert (run.params["listing_ids"], run.outcome, run.requested_by) == (
        [mine.pk],
        "SUCCESS",
        user,
    )
    assert levels(sim, "FLIPKART") == {"P-TSHIRT": 10}


# --- a real worker --------------------------------------------------------------------------


def _wait_for(predicate, log, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out; worker log:\n{log.read_text()[-4000:]}")


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_pushes_every_channel_and_one_down_stops_nobody(
    transactional_db, require_services, tmp_path
):
    world = make_world(stock=10)
    with SimulatorServer(port=0) as sim:
        for code in ("FLIPKART", "AMAZON"):
            sim.store.add_channel(code, "user", "pass")
        flipkart = point_at(world.channel, sim, max_attempts=2)
        amazon = point_at(ChannelFactory(code="AMAZON", name="Amazon"), sim)
        listing(flipkart, "P-TSHIRT", world.sku)
        listing(amazon, "A-TSHIRT", world.sku, buffer=3)
        sim.store.add_fault({"kind": "error", "status": 500, "channel": "FLIPKART"})
        log = tmp_path / "worker.log"
        with celery_worker("sync", log, require_services):
            tasks.push_inventory.delay()  # what beat sends: one task per channel follows

            def both_ran() -> bool:
                runs = SyncRun.objects.filter(kind="INVENTORY")
                return runs.count() == 2 and all(r.is_finished for r in runs)

            _wait_for(both_ran, log)
            outcomes = dict(SyncRun.objects.values_list("channel__code", "outcome"))
            assert outcomes == {"FLIPKART": RunOutcome.FAILED, "AMAZON": RunOutcome.SUCCESS}
            assert levels(sim, "AMAZON") == {"A-TSHIRT": 7}

            sim.store.clear_faults()
            world.order("FK-1", 4)
            tasks.push_inventory_zero.delay(channel_id=flipkart.pk)
            tasks.push_inventory.delay(channel_id=flipkart.pk)
            _wait_for(lambda: levels(sim, "FLIPKART") == {"P-TSHIRT": 6}, log)
            tasks.push_inventory_full.delay()
            full = SyncRun.objects.filter(params__full=True, outcome=RunOutcome.SUCCESS)
            _wait_for(lambda: full.count() == 2, log)
    forget_adapters()
    assert PushStatus.FAILED not in set(
        ChannelListing.objects.values_list("push_status", flat=True)
    )
