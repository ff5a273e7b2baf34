"""Status notifications to channels (issue 5, seed 003, channel-api.md §4-6).

Payloads against the seed's field list; the outbox written in the change's transaction; and
delivery to the channel simulator over real HTTP (in this process: `deliver_due` is what the
Celery task runs). The real worker, the broker and concurrency: test_notifications_worker.py.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from channels.adapters import forget_adapters
from notifications import outbox
from notifications.delivery import DeliveryReport, claim, deliver_due, send
from notifications.models import (
    AttemptOutcome,
    Notification,
    NotificationKind,
    NotificationState,
    new_notification,
)
from notifications.payloads import (
    FORWARD_STATUSES,
    REVERSE_STATUSES,
    cancel_body,
    entries_to_send,
    format_updated,
    forward_entry,
    reverse_entry,
)
from notifications.recording import record
from notifications.services import notifications_discard, notifications_retry
from orders.models import Order, OrderKind, Picklist, PicklistStatus, Shipment, ShipmentStatus
from orders.services import (
    LineInput,
    OrderInput,
    manifest_close,
    order_create,
    picklist_create,
    picklist_receive,
    reverse_pickup_allocate_courier,
    reverse_pickup_create,
    reverse_pickups_complete,
    shipment_split,
    shipments_deliver,
    shipments_generate_label,
    shipments_invoice,
    shipments_manifest,
    shipments_ship,
    units_cancel,
)
from simulator import SimulatorServer
from simulator.contract import parse_updated
from uniware.core.models import Sequence, Tenant

FORWARD = ["PICKING", "PICKED", "PACKED", "READY_TO_SHIP", "MANIFESTED", "DISPATCHED"]
JOURNEY = ["CREATED", *FORWARD, "SHIPPED", "DELIVERED"]
SEED_FORWARD_FIELDS = {"orderItemId", "status", "IsReverse", "courier_status", "updated"}
SEED_REVERSE_COURIER_FIELDS = {"reversePickupCourierName", "reversePickupCourierCode", "returnAwb"}
UPDATED_RE = re.compile(r"^[A-Z][a-z]{2} [1-9]\d?, \d{4} (1[0-2]|[1-9]):[0-5]\d:[0-5]\d (AM|PM)$")


# --- helpers (also used by test_notifications_worker.py) -------------------------------------


def make_order(world, coid: str, lines=(("L1", 1),), **kwargs) -> Order:
    """An order of the world's channel with lines `<coid>-<line>` of the given quantities."""
    return order_create(
        OrderInput(
            channel=world.channel,
            channel_order_id=coid,
            ship_pincode="560001",
            lines=[
                LineInput(f"{coid}-{line}", world.sku.code, qty, "499.00", channel_product_id="")
                for line, qty in lines
            ],
            **kwargs,
        ),
        actor="test",
    )


def fresh(obj):
    return type(obj).objects.get(pk=obj.pk)


def advance(shipments, status: str) -> None:
    """Move CREATED shipments forward to `status` with the services."""
    if isinstance(shipments, Shipment):
        shipments = [shipments]
    ids = [s.pk for s in shipments]
    steps = [*FORWARD, "SHIPPED", "DELIVERED"]
    for step in steps[: steps.index(status) + 1]:
        if step == "PICKING":
            outcome = picklist_create(ids, destination="INVOICING", actor="test")
        elif step == "PICKED":
            open_picklists = Picklist.objects.filter(status=PicklistStatus.CREATED)
            outcome = picklist_receive(open_picklists.values_list("pk", flat=True), actor="test")
        elif step == "PACKED":
            outcome = shipments_invoice(ids, actor="test")
        elif step == "READY_TO_SHIP":
            outcome = shipments_generate_label(ids, actor="test")
        elif step == "MANIFESTED":
            outcome = shipments_manifest(ids, actor="test")
        elif step == "DISPATCHED":
            for manifest in {fresh(s).manifest for s in shipments}:
                outcome = manifest_close(manifest, actor="test")
        elif step == "SHIPPED":
            outcome = shipments_ship(ids, actor="test")
        else:
            outcome = shipments_deliver(ids, actor="test")
        assert not outcome.failed, (step, outcome.failed)


def connect_channel(channel, sim=None, code: str = "FLIPKART", **flags) -> None:
    """Point the channel at the simulator and switch on the pushes it should get."""
    # a long back-off by default: a failed attempt waits for the test to make it due again
    values = {"accepts_status_notifications": True, "retry_base_delay": 30.0, **flags}
    if sim is not None:
        values.update(base_url=sim.channel_url(code), username="user", password="pass")
    for name, value in values.items():
        setattr(channel, name, value)
    channel.save()


def sim_order(sim, coid: str, lines=(("L1", 1),), code: str = "FLIPKART") -> None:
    sim.store.put_orders(
        code,
        [
            {
                "id": coid,
                "orderItems": [
                    {"orderItemId": f"{coid}-{line}", "sku": "TSHIRT", "quantity": qty}
                    for line, qty in lines
                ],
            }
        ],
    )


def accepted(sim, code: str = "FLIPKART", kind: str = "notifications") -> dict:
    """{(order id, orderItemId): [status of every entry the channel accepted, in order]}."""
    result: dict[tuple, list] = defaultdict(list)
    for rec in sim.store.received(code, kind)[kind]:
        response = rec["response"]
        if "httpStatus" in response:
            continue
        failed = {i["orderItemId"] for i in response.get("orderItems", [])}
        for entry in rec["body"]["orderItems"]:
            if entry["orderItemId"] not in failed:
                result[(rec.get("orderId"), entry["orderItemId"])].append(entry.get("status"))
    return dict(result)


def journey(n: int, statuses=JOURNEY) -> list[str]:
    return [s for s in statuses for _ in range(n)]


def notifications(order=None, **filters) -> list[Notification]:
    rows = Notification.objects.order_by("id")
    if order is not None:
        rows = rows.filter(order=order)
    return list(rows.filter(**filters))


@pytest.fixture
def kicks(monkeypatch):
    """Record the post-commit delivery kicks instead of queueing Celery tasks."""
    calls = []
    monkeypatch.setattr(outbox, "kick", lambda: calls.append(1))
    return calls


@pytest.fixture
def sim():
    with SimulatorServer(port=0) as server:
        server.store.add_channel("FLIPKART", "user", "pass")
        yield server
    forget_adapters()


@pytest.fixture
def world(world, kicks):
    Sequence.objects.create(name="RETURN_INVOICE", facility=world.facility, prefix="CN-WH1-")
    return world


# --- payloads against seed 003 ----------------------------------------------------------------


@pytest.mark.parametrize(
    "moment, zone, expected",
    [
        (datetime(2023, 3, 8, 13, 42, 31, tzinfo=UTC), "Asia/Kolkata", "Mar 8, 2023 7:12:31 PM"),
        (datetime(2021, 1, 5, 3, 4, 5, tzinfo=UTC), "UTC", "Jan 5, 2021 3:04:05 AM"),
        (datetime(2026, 11, 2, 10, 43, 44, tzinfo=UTC), "Asia/Kolkata", "Nov 2, 2026 4:13:44 PM"),
        (datetime(2024, 12, 31, 18, 30, 0, tzinfo=UTC), "Asia/Kolkata", "Jan 1, 2025 12:00:00 AM"),
        (datetime(2024, 7, 14, 12, 0, 9, tzinfo=UTC), "UTC", "Jul 14, 2024 12:00:09 PM"),
        (datetime(2024, 7, 14, 0, 59, 59, tzinfo=UTC), "UTC", "Jul 14, 2024 12:59:59 AM"),
        (datetime(2024, 2, 29, 23, 1, 2, tzinfo=UTC), "UTC", "Feb 29, 2024 11:01:02 PM"),
        # the tenant's zone decides the day: 01:30 UTC is still the 9th in New York
        (
            datetime(2024, 10, 10, 1, 30, 0, tzinfo=UTC),
            "America/New_York",
            "Oct 9, 2024 9:30:00 PM",
        ),
    ],
)
def test_updated_is_the_seed_format_in_the_tenant_zone(moment, zone, expected):
    text = format_updated(moment, ZoneInfo(zone))
    assert text == expected
    assert UPDATED_RE.match(text)
    # the channel side reads it back as the same local time
    assert parse_updated(text) == moment.astimezone(ZoneInfo(zone)).replace(tzinfo=None)


def test_forward_entry_has_exactly_the_seed_fields():
    entry = forward_entry("FK-1-L1", "DISPATCHED", "In transit", "Mar 8, 2023 7:12:31 PM")
    assert set(entry) == SEED_FORWARD_FIELDS
    assert entry["IsReverse"] is False and entry["courier_status"] == "In transit"
    assert not SEED_REVERSE_COURIER_FIELDS & set(entry)


@pytest.mark.parametrize("status", REVERSE_STATUSES)
def test_reverse_courier_fields_only_with_courier_allocated(status):
    entry = reverse_entry(
        "FK-1-L1", status, "Mar 8, 2023 7:12:31 PM", courier_name="Delhivery",
        courier_code="DEL", return_awb="RAWB1",
    )  # fmt: skip
    assert entry["IsReverse"] is True
    if status == "COURIER_ALLOCATED":
        assert set(entry) == SEED_FORWARD_FIELDS | SEED_REVERSE_COURIER_FIELDS
        assert (entry["reversePickupCourierName"], entry["returnAwb"]) == ("Delhivery", "RAWB1")
    else:
        assert set(entry) == SEED_FORWARD_FIELDS


def test_every_shipment_status_is_one_seed_003_sends():
    assert set(ShipmentStatus.values) == set(FORWARD_STATUSES)


def test_cancel_body_counts_units_per_line_and_leaves_out_unknown_ids():
    body = cancel_body("FK-1", [("L1", "P-1", "V-1"), ("L1", "P-1", "V-1"), ("L2", "", "")])
    assert body == {
        "orderId": "FK-1",
        "orderItems": [
            {"orderItemId": "L1", "productId": "P-1", "variantId": "V-1", "quantity": 2},
            {"orderItemId": "L2", "quantity": 1},
        ],
    }


def test_a_retry_sends_only_the_failed_items():
    body = {"orderItems": [{"orderItemId": i} for i in ("A", "A", "B", "C")]}
    assert entries_to_send(body, None) is body
    assert entries_to_send(body, ["A", "C"])["orderItems"] == [
        {"orderItemId": "A"},
        {"orderItemId": "A"},
        {"orderItemId": "C"},
    ]


# --- the outbox -------------------------------------------------------------------------------


def test_forward_journey_writes_one_notification_per_change_with_a_unit_per_entry(
    world, kicks, django_capture_on_commit_callbacks
):
    connect_channel(world.channel)
    tenant = Tenant.get()
    tenant.time_zone = "America/New_York"
    tenant.save()
    with django_capture_on_commit_callbacks(execute=True):  # the test's one transaction
        order = make_order(world, "FK-1", [("L1", 2), ("L2", 1)])
        advance(order.shipments.get(), "DELIVERED")

    rows = notifications(order, kind=NotificationKind.STATUS)
    assert [n.event for n in rows] == JOURNEY
    for n in rows:
        entries = n.payload["orderItems"]
        # one entry per unit: the line of quantity 2 twice
        assert [e["orderItemId"] for e in entries] == ["FK-1-L1", "FK-1-L1", "FK-1-L2"]
        assert n.unit_count == 3 and n.state == NotificationState.PENDING
        for entry in entries:
            assert set(entry) == SEED_FORWARD_FIELDS
            assert entry["status"] == n.event and entry["IsReverse"] is False
            assert entry["updated"] == format_updated(n.changed_at, ZoneInfo("America/New_York"))
    assert len({n.idempotency_key for n in rows}) == len(rows)
    assert len(kicks) == 1  # delivery queued after the commit, once
    # the channel does not accept dispatch pushes: none written
    assert not notifications(order, kind=NotificationKind.DISPATCH)


def test_nothing_for_channels_that_do_not_accept_notifications(world):
    order = make_order(world, "FK-1")
    advance(order.shipments.get(), "DISPATCHED")
    assert Notification.objects.count() == 0


def test_dispatch_push_with_self_shipping_only_where_accepted(world):
    connect_channel(world.channel, accepts_status_notifications=False, accepts_dispatch=True)
    order = make_order(world, "FK-1", [("L1", 2), ("L2", 1)])
    advance(order.shipments.get(), "DELIVERED")
    [push] = notifications()
    shipment = fresh(order.shipments.get())
    invoice = shipment.invoices.get()
    assert (push.kind, push.event) == (NotificationKind.DISPATCH, "DISPATCHED")
    assert push.payload["orderItems"] == [
        {"orderItemId": "FK-1-L1", "quantity": 2},
        {"orderItemId": "FK-1-L2", "quantity": 1},
    ]
    shipping = push.payload["selfShipping"]
    assert shipping["deliveryPartner"] == "Blue Dart"
    assert shipping["trackingId"] == shipment.tracking_number != ""
    assert shipping["invoiceNumber"] == invoice.code
    assert datetime.fromisoformat(shipping["dispatchDate"]) == shipment.dispatched_at.replace(
        microsecond=0
    )


def test_dispatch_push_without_self_shipping_when_the_channel_ships(world):
    connect_channel(world.channel, accepts_status_notifications=False, accepts_dispatch=True)
    order = make_order(world, "FK-1", third_party_shipping=True)
    shipment = order.shipments.get()
    shipment.tracking_number = "CHANNEL-AWB"
    shipment.save(update_fields=["tracking_number"])
    advance(shipment, "DISPATCHED")
    [push] = notifications()
    assert "selfShipping" not in push.payload


def test_courier_status_comes_from_the_shipment(world):
    connect_channel(world.channel)
    order = make_order(world, "FK-1")
    shipment = order.shipments.get()
    advance(shipment, "DISPATCHED")
    Shipment.objects.filter(pk=shipment.pk).update(courier_status="Out for delivery")
    shipments_deliver([shipment.pk], actor="test")
    last = notifications(order)[-1]
    assert last.event == "DELIVERED"
    assert {e["courier_status"] for e in last.payload["orderItems"]} == {"Out for delivery"}


def test_split_reports_splitted_then_the_new_shipments(world):
    connect_channel(world.channel)
    order = make_order(world, "FK-1", [("L1", 2), ("L2", 1)])
    shipment = order.shipments.get()
    units = list(order.items.order_by("pk"))
    shipment_split(shipment, [[units[0].pk]], actor="test")
    rows = notifications(order)
    assert [n.event for n in rows] == ["CREATED", "SPLITTED", "CREATED"]
    split, created = rows[1], rows[2]
    assert [e["orderItemId"] for e in split.payload["orderItems"]] == [
        "FK-1-L1",
        "FK-1-L1",
        "FK-1-L2",
    ]
    assert split.source_code == shipment.code
    new_codes = set(Shipment.objects.filter(parent=shipment).values_list("code", flat=True))
    assert set(created.source_code.split(", ")) == new_codes and created.unit_count == 3


def test_cancelling_reports_the_cancelled_shipment_and_pushes_the_cancel(world):
    connect_channel(world.channel, accepts_cancel=True)
    order = make_order(world, "FK-1", [("L1", 2)])
    assert units_cancel([u.pk for u in order.items.all()], reason="customer asked").ok
    rows = notifications(order)
    assert [(n.kind, n.event) for n in rows] == [
        ("STATUS", "CREATED"),
        ("STATUS", "CANCELLED"),
        ("CANCEL", "CANCELLED"),
    ]
    assert [e["status"] for e in rows[1].payload["orderItems"]] == ["CANCELLED", "CANCELLED"]
    assert rows[2].payload == {
        "orderId": "FK-1",
        "orderItems": [{"orderItemId": "FK-1-L1", "quantity": 2}],
    }


def test_no_cancel_push_when_the_channel_cancelled(world):
    connect_channel(world.channel, accepts_cancel=True)
    order = make_order(world, "FK-1")
    assert units_cancel([order.items.get().pk], reason="by channel", by_channel=True).ok
    assert [n.kind for n in notifications(order)] == ["STATUS", "STATUS"]


def test_a_partly_cancelled_shipment_reports_only_its_remaining_units(world):
    connect_channel(world.channel)
    order = make_order(world, "FK-1", [("L1", 1), ("L2", 1)])
    first, second = order.items.order_by("pk")
    assert units_cancel([first.pk], reason="customer asked").ok
    advance(order.shipments.get(), "PICKING")
    last = notifications(order)[-1]
    assert last.event == "PICKING"
    assert [e["orderItemId"] for e in last.payload["orderItems"]] == ["FK-1-L2"]


def test_reverse_pickup_notifications(world):
    connect_channel(world.channel)
    order = make_order(world, "FK-1", [("L1", 2)])
    advance(order.shipments.get(), "DELIVERED")
    first, _ = order.items.order_by("pk")
    pickup = reverse_pickup_create([first.pk], reason="wrong size", actor="test")
    reverse_pickup_allocate_courier(
        pickup, courier_name="Delhivery", courier_code="DEL", return_awb="RAWB1", actor="test"
    )
    assert reverse_pickups_complete([pickup.pk], actor="test").ok
    created, allocated, complete = notifications(order, is_reverse=True)
    assert [n.event for n in (created, allocated, complete)] == [
        "CREATED",
        "COURIER_ALLOCATED",
        "COMPLETE",
    ]
    assert created.payload is None  # the pickup's units are saved after it: built when sent
    for n in (allocated, complete):
        [entry] = n.payload["orderItems"]  # only the unit on the pickup
        assert entry["orderItemId"] == "FK-1-L1" and entry["IsReverse"] is True
    [entry] = allocated.payload["orderItems"]
    assert (
        entry["reversePickupCourierName"],
        entry["reversePickupCourierCode"],
        entry["returnAwb"],
    ) == ("Delhivery", "DEL", "RAWB1")
    assert not SEED_REVERSE_COURIER_FIELDS & set(complete.payload["orderItems"][0])


def test_reshipment_orders_are_not_notified(world):
    """Follow-up orders have channel order ids the channel does not know."""
    connect_channel(world.channel)
    order = make_order(world, "FK-1")
    Order.objects.filter(pk=order.pk).update(kind=OrderKind.RESHIPMENT)
    advance(order.shipments.get(), "PICKING")
    assert [n.event for n in notifications(order)] == ["CREATED"]  # before it was marked


def test_a_rolled_back_change_leaves_no_notification(world, kicks):
    connect_channel(world.channel)
    order = make_order(world, "FK-1")
    before, kicked = Notification.objects.count(), len(kicks)
    with pytest.raises(RuntimeError), transaction.atomic():
        advance(order.shipments.get(), "PICKING")
        assert Notification.objects.count() == before + 1
        raise RuntimeError("boom")
    assert Notification.objects.count() == before
    assert len(kicks) == kicked


@pytest.mark.django_db(transaction=True)
def test_one_kick_per_committed_transaction_that_wrote_notifications(kicks):
    from .factories import make_world

    world = make_world()
    connect_channel(world.channel)
    order = make_order(world, "FK-1")  # creation and allocation: one transaction
    assert len(kicks) == 1
    shipment = order.shipments.get()
    with transaction.atomic():  # two services, several signals, one commit
        picklist_create([shipment.pk], destination="INVOICING", actor="test")
        picklist_receive(
            Picklist.objects.filter(status=PicklistStatus.CREATED).values_list("pk", flat=True)
        )
    assert len(kicks) == 2
    assert [n.event for n in notifications(order)] == ["CREATED", "PICKING", "PICKED"]
    with pytest.raises(RuntimeError), transaction.atomic():
        shipments_invoice([shipment.pk], actor="test")
        raise RuntimeError("rolled back")
    assert len(kicks) == 2 and len(notifications(order)) == 3


def test_outbox_queries_do_not_grow_with_shipments(world):
    connect_channel(world.channel, accepts_dispatch=True)
    world.inventory.quantity = 500
    world.inventory.save()

    def close(prefix: str, n: int) -> int:
        orders = [make_order(world, f"{prefix}-{k}", [("L1", 2)]) for k in range(n)]
        shipments = [o.shipments.get() for o in orders]
        advance(shipments, "MANIFESTED")
        manifest = fresh(shipments[0]).manifest
        before = Notification.objects.count()
        with CaptureQueriesContext(connection) as queries:
            assert manifest_close(manifest, actor="test").ok
        assert Notification.objects.count() - before == 2 * n  # status + dispatch push
        return len(queries)

    small, large = close("S", 2), close("L", 20)
    # a fixed number per batch: only the insert may split (SQLite's 999-parameter limit)
    assert small <= large <= small + 2, (small, large)


@pytest.mark.postgres
def test_big_batches_are_written_by_copy_with_every_field(world):
    connect_channel(world.channel)
    order = make_order(world, "FK-1")
    rows = [
        new_notification(
            channel_id=world.channel.pk,
            order_id=order.pk,
            channel_order_id="FK-1",
            kind=NotificationKind.STATUS,
            event="PICKING",
            payload={"orderItems": [{"orderItemId": f"L{k}", "IsReverse": False}]},
            unit_count=1,
            changed_at=timezone.now(),
            source_kind="SHIPMENT",
            source_codes=[f"SP-{k}"],
        )
        for k in range(outbox.COPY_THRESHOLD + 1)
    ]
    with CaptureQueriesContext(connection) as queries:
        outbox.write(rows)
    assert not any("INSERT" in q["sql"] for q in queries.captured_queries)  # COPY
    stored = {n.idempotency_key: n for n in notifications(order, event="PICKING")}
    assert len(stored) == len(rows)
    for row in rows[:3] + rows[-3:]:
        n = stored[row.idempotency_key]
        assert n.payload == row.payload and n.payload["orderItems"][0]["IsReverse"] is False
        assert (n.state, n.attempts, n.retry_item_ids, n.discarded_by) == ("PENDING", 0, None, None)
        assert n.created_at and n.next_attempt_at == row.changed_at
        assert n.source_code == row.source_code


# --- delivery over HTTP (simulator) --------------------------------------------------------


def test_forward_journey_is_delivered_in_order(world, sim):
    connect_channel(world.channel, sim, accepts_dispatch=True)
    sim_order(sim, "FK-1", [("L1", 2), ("L2", 1)])
    order = make_order(world, "FK-1", [("L1", 2), ("L2", 1)])
    advance(order.shipments.get(), "DELIVERED")

    report = deliver_due()

    assert report.delivered == len(JOURNEY) + 1 and report.failed == report.retrying == 0
    assert accepted(sim) == {
        ("FK-1", "FK-1-L1"): journey(2),
        ("FK-1", "FK-1-L2"): journey(1),
    }
    rows = notifications(order)
    assert {n.state for n in rows} == {NotificationState.DELIVERED}
    received = sim.store.received("FLIPKART")
    by_key = {r["idempotencyKey"]: r for r in received["notifications"]}
    for n in rows:
        [attempt] = n.attempt_log.all()
        assert (attempt.number, attempt.http_status, attempt.outcome) == (1, 200, "SUCCESS")
        if n.kind == NotificationKind.STATUS:
            assert by_key[n.idempotency_key]["headers"]["apiKey"]
            assert by_key[n.idempotency_key]["body"] == n.payload
    [dispatch] = received["dispatches"]
    assert dispatch["response"]["status"] == "SUCCESS"


def test_every_notification_goes_once_even_when_delivered_twice(world, sim):
    connect_channel(world.channel, sim)
    sim_order(sim, "FK-1")
    order = make_order(world, "FK-1")
    deliver_due()
    assert deliver_due().claimed == 0  # nothing left
    Notification.objects.filter(order=order).update(state=NotificationState.PENDING)
    deliver_due()  # sent again with the same keys: the channel drops the duplicates
    assert accepted(sim) == {("FK-1", "FK-1-L1"): ["CREATED"]}
    assert len(sim.store.received("FLIPKART")["duplicates"]) == 1


def test_a_5xx_is_retried_with_backoff_and_holds_back_only_its_order(world, sim):
    connect_channel(world.channel, sim)
    for coid in ("FK-1", "FK-2"):
        sim_order(sim, coid)
    one, two = make_order(world, "FK-1"), make_order(world, "FK-2")
    sim.store.add_fault({"kind": "error", "status": 503, "path": "/order/FK-1", "count": 1})
    advance([one.shipments.get(), two.shipments.get()], "PICKING")

    start = timezone.now()
    report = deliver_due()

    assert (report.delivered, report.retrying, report.held_back) == (2, 1, 1)
    created, picking = notifications(one)
    assert (created.state, created.attempts, created.rejections) == ("PENDING", 1, 0)
    # base 30 s, half of it random: between 15 and 30 s
    wait = (created.next_attempt_at - start).total_seconds()
    assert 15 <= wait <= 31
    [attempt] = created.attempt_log.all()
    assert (attempt.http_status, attempt.outcome) == (503, AttemptOutcome.TRANSIENT)
    assert picking.attempts == 0 and picking.state == "PENDING"  # held back, not tried
    assert accepted(sim) == {("FK-2", "FK-2-L1"): ["CREATED", "PICKING"]}

    Notification.objects.filter(pk=created.pk).update(next_attempt_at=timezone.now())
    assert deliver_due().delivered == 2
    assert accepted(sim)[("FK-1", "FK-1-L1")] == ["CREATED", "PICKING"]
    assert [a.outcome for a in fresh(created).attempt_log.order_by("number")] == [
        "TRANSIENT",
        "SUCCESS",
    ]


def test_retry_after_is_honoured(world, sim):
    connect_channel(world.channel, sim)
    sim_order(sim, "FK-1")
    make_order(world, "FK-1")
    sim.store.add_fault({"kind": "rate_limit", "retryAfter": 40, "count": 1, "path": "/order/*"})
    start = timezone.now()
    deliver_due()
    [n] = notifications()
    assert n.attempt_log.get().http_status == 429
    assert (n.next_attempt_at - start).total_seconds() >= 40


def test_partial_success_retries_only_the_failed_items(world, sim):
    connect_channel(world.channel, sim)
    sim_order(sim, "FK-1", [("L1", 2), ("L2", 1)])
    order = make_order(world, "FK-1", [("L1", 2), ("L2", 1)])
    sim.store.add_fault({"kind": "fail_items", "itemIds": ["FK-1-L1"], "count": 1})

    deliver_due()
    [n] = notifications(order)
    assert (n.state, n.retry_item_ids, n.rejections) == ("PENDING", ["FK-1-L1"], 1)
    assert "FK-1-L1" in n.last_error
    Notification.objects.filter(pk=n.pk).update(next_attempt_at=timezone.now())
    deliver_due()

    n = fresh(n)
    assert n.state == NotificationState.DELIVERED and n.retry_item_ids is None
    first, second = sim.store.received("FLIPKART")["notifications"]
    assert first["response"]["status"] == "PARTIAL_SUCCESS"
    assert [e["orderItemId"] for e in second["body"]["orderItems"]] == ["FK-1-L1", "FK-1-L1"]
    assert second["idempotencyKey"] == first["idempotencyKey"] == n.idempotency_key
    assert accepted(sim) == {
        ("FK-1", "FK-1-L1"): journey(2, ["CREATED"]),
        ("FK-1", "FK-1-L2"): ["CREATED"],
    }
    assert [(a.outcome, a.units) for a in n.attempt_log.order_by("number")] == [
        (AttemptOutcome.PARTIAL, 3),
        (AttemptOutcome.SUCCESS, 2),
    ]


@pytest.mark.parametrize(
    "fault, outcome, http",
    [
        ({"kind": "error", "status": 400}, AttemptOutcome.REJECTED, 400),
        ({"kind": "garbage", "garbage": "text"}, AttemptOutcome.MALFORMED, 200),
        ({"kind": "garbage", "garbage": "wrong_shape"}, AttemptOutcome.MALFORMED, 200),
        ({"kind": "garbage", "garbage": "truncated"}, AttemptOutcome.MALFORMED, 200),
        ({"kind": "garbage", "garbage": "empty"}, AttemptOutcome.MALFORMED, 200),
    ],
)
def test_refusals_stop_after_a_bounded_number_of_attempts(
    world, sim, settings, fault, outcome, http
):
    settings.NOTIFICATIONS_MAX_REJECTIONS = 3
    connect_channel(world.channel, sim)
    sim_order(sim, "FK-1")
    order = make_order(world, "FK-1")
    advance(order.shipments.get(), "PICKING")
    sim.store.add_fault({**fault, "path": "/order/*"})
    for _ in range(5):
        Notification.objects.filter(state="PENDING").update(next_attempt_at=timezone.now())
        deliver_due()
    created, picking = notifications(order)
    assert (created.state, created.attempts, created.rejections) == ("FAILED", 3, 3)
    assert created.last_error
    assert {(a.outcome, a.http_status) for a in created.attempt_log.all()} == {(outcome, http)}
    assert (picking.state, picking.attempts) == ("PENDING", 0)  # held back by the failed one

    sim.store.clear_faults()
    assert notifications_retry([created.pk], actor="test").ok
    deliver_due()
    assert {n.state for n in notifications(order)} == {"DELIVERED"}
    assert accepted(sim) == {("FK-1", "FK-1-L1"): ["CREATED", "PICKING"]}


def test_discarding_a_failed_notification_lets_the_later_ones_go(world, sim, settings):
    settings.NOTIFICATIONS_MAX_REJECTIONS = 1
    connect_channel(world.channel, sim)
    sim_order(sim, "FK-1")
    order = make_order(world, "FK-1")
    sim.store.add_fault({"kind": "error", "status": 404, "count": 1, "path": "/order/*"})
    deliver_due()
    advance(order.shipments.get(), "PICKING")
    deliver_due()
    created, picking = notifications(order)
    assert (created.state, picking.state) == ("FAILED", "PENDING")
    with pytest.raises(ValueError, match="reason"):
        notifications_discard([created.pk], reason=" ")
    outcome = notifications_discard([created.pk, picking.pk], reason="sent by hand", actor="test")
    assert [str(n) for n in outcome.done] == [str(created), str(picking)]
    deliver_due()
    assert accepted(sim) == {}  # both discarded: nothing sent
    assert fresh(created).discard_reason == "sent by hand"
    assert notifications_retry([created.pk]).failed == [
        (str(fresh(created)), "notification is DISCARDED: only pending or failed are retried")
    ]


def test_an_expired_token_is_renewed_within_the_attempt(world, sim):
    connect_channel(world.channel, sim)
    sim_order(sim, "FK-1")
    order = make_order(world, "FK-1")
    deliver_due()
    advance(order.shipments.get(), "PICKING")
    sim.store.expire_tokens("FLIPKART")
    deliver_due()
    [_, picking] = notifications(order)
    [attempt] = picking.attempt_log.all()
    assert (picking.state, attempt.outcome) == ("DELIVERED", "SUCCESS")


def test_a_reply_lost_after_the_channel_took_it_is_not_taken_twice(world, sim):
    connect_channel(world.channel, sim)
    sim_order(sim, "FK-1")
    make_order(world, "FK-1")
    sim.store.add_fault(
        {"kind": "error", "status": 502, "count": 1, "apply": "after", "path": "/order/*"}
    )
    deliver_due()
    Notification.objects.update(next_attempt_at=timezone.now())
    deliver_due()
    [n] = notifications()
    assert [a.outcome for a in n.attempt_log.order_by("number")] == ["TRANSIENT", "SUCCESS"]
    assert accepted(sim) == {("FK-1", "FK-1-L1"): ["CREATED"]}
    assert len(sim.store.received("FLIPKART")["duplicates"]) == 1


def test_connection_errors_and_timeouts_are_transient(world, sim):
    connect_channel(world.channel, sim, request_timeout=0.3)
    sim_order(sim, "FK-1")
    make_order(world, "FK-1")
    sim.store.add_fault({"kind": "slow", "delay": 1.0, "count": 1, "path": "/order/*"})
    deliver_due()
    Notification.objects.update(next_attempt_at=timezone.now())
    sim.store.add_fault({"kind": "disconnect", "count": 2, "path": "/order/*"})
    deliver_due()
    [n] = notifications()
    outcomes = [(a.outcome, a.error.split(" (")[0]) for a in n.attempt_log.order_by("number")]
    assert outcomes == [("TRANSIENT", "timeout after 0.3 s"), ("TRANSIENT", "connection error")]
    assert n.state == "PENDING" and n.rejections == 0


def test_reverse_pickup_creation_is_built_and_delivered(world, sim):
    connect_channel(world.channel, sim)
    sim_order(sim, "FK-1", [("L1", 2)])
    order = make_order(world, "FK-1", [("L1", 2)])
    advance(order.shipments.get(), "DELIVERED")
    first, _ = order.items.order_by("pk")
    pickup = reverse_pickup_create([first.pk], reason="wrong size", actor="test")
    reverse_pickup_allocate_courier(
        pickup, courier_name="Delhivery", courier_code="DEL", return_awb="RAWB1", actor="test"
    )
    deliver_due()
    created, allocated = notifications(order, is_reverse=True)
    assert created.state == allocated.state == "DELIVERED"
    assert created.unit_count == 1
    assert created.payload["orderItems"][0]["status"] == "CREATED"
    tail = [r["body"]["orderItems"] for r in sim.store.received("FLIPKART")["notifications"]][-2:]
    assert [[(e["status"], e["IsReverse"]) for e in entries] for entries in tail] == [
        [("CREATED", True)],
        [("COURIER_ALLOCATED", True)],
    ]


def test_cancel_push_is_delivered(world, sim):
    connect_channel(world.channel, sim, accepts_cancel=True)
    sim_order(sim, "FK-1", [("L1", 2)])
    order = make_order(world, "FK-1", [("L1", 2)])
    assert units_cancel([order.items.order_by("pk")[0].pk], reason="customer asked").ok
    deliver_due()
    [cancel] = sim.store.received("FLIPKART")["cancels"]
    assert cancel["body"] == {
        "orderId": "FK-1",
        "orderItems": [{"orderItemId": "FK-1-L1", "quantity": 1}],
    }
    assert cancel["response"]["status"] == "SUCCESS"


# --- claims ----------------------------------------------------------------------------------


def test_a_claimed_notification_is_not_claimed_again_until_its_lease_ends(world, sim):
    connect_channel(world.channel, sim)
    for coid in ("FK-1", "FK-2"):
        sim_order(sim, coid)
        make_order(world, coid)
    first = claim()
    assert len(first.rows) == 2
    assert claim() is None  # both taken
    Notification.objects.filter(pk=first.rows[0].pk).update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )
    again = claim()
    assert [n.pk for n in again.rows] == [first.rows[0].pk]  # the expired lease only
    # the first claimer finds its claim gone: it records its attempts but not a state over
    # the new claimer's
    report = DeliveryReport()
    record(first, send(first), report)
    assert report.attempts == 2
    assert Notification.objects.get(pk=first.rows[0].pk).claim_token == again.token


def test_an_order_is_never_overtaken(world, sim):
    connect_channel(world.channel, sim)
    sim_order(sim, "FK-1")
    order = make_order(world, "FK-1")
    advance(order.shipments.get(), "PICKED")
    created, picking, picked = notifications(order)
    # another worker holds the first one right now: the later ones must wait for it
    Notification.objects.filter(pk=created.pk).update(
        claimed_until=timezone.now() + timedelta(minutes=5), claim_token="other"
    )
    assert claim() is None
    # the first one is back-off: same
    Notification.objects.filter(pk=created.pk).update(
        claimed_until=None, claim_token="", next_attempt_at=timezone.now() + timedelta(minutes=5)
    )
    assert claim() is None
    Notification.objects.filter(pk=created.pk).update(next_attempt_at=timezone.now())
    batch = claim()
    assert [n.pk for n in batch.rows] == [created.pk, picking.pk, picked.pk]


def test_the_lease_stops_a_slow_batch_before_it_could_overlap(world, sim, settings):
    settings.NOTIFICATIONS_LEASE_SECONDS = 0  # no time left: nothing may start
    connect_channel(world.channel, sim)
    sim_order(sim, "FK-1")
    make_order(world, "FK-1")
    report = deliver_due(max_batches=1)
    assert report.held_back == 1 and report.attempts == 0
    [n] = notifications()
    assert (n.state, n.claim_token, n.attempts) == ("PENDING", "", 0)
    assert accepted(sim) == {}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_never_take_the_same_notification(kicks):
    """Claimers at once (threads, each with its own connection), each marking what it
    claimed as sent: every notification is claimed exactly once, an order's notifications
    never by two claimers at the same time, and always in order."""
    from .factories import make_world

    world = make_world(stock=1000)
    connect_channel(world.channel)
    world.inventory.quantity = 1000
    world.inventory.save()
    orders = [make_order(world, f"FK-{n}") for n in range(60)]
    shipments = [o.shipments.get() for o in orders]
    picklist_create([s.pk for s in shipments[:30]], destination="INVOICING", actor="test")
    picklist_receive(
        Picklist.objects.filter(status=PicklistStatus.CREATED).values_list("pk", flat=True)
    )
    total = Notification.objects.count()
    assert total == 60 + 30 + 30

    claimed: list[list[tuple[int, int]]] = [[] for _ in range(4)]
    overlaps: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def claimer(k: int) -> None:
        try:
            start.wait()
            idle = 0
            while idle < 3:
                batch = claim(7)
                if batch is None or not batch.rows:
                    idle += 1
                    time.sleep(0.01)
                    continue
                idle = 0
                order_ids = {n.order_id for n in batch.rows}
                others = Notification.objects.filter(
                    order_id__in=order_ids, claimed_until__isnull=False
                ).exclude(claim_token=batch.token)
                if others.exists():
                    overlaps.append(f"claimer {k}: {list(others.values_list('pk', flat=True))}")
                claimed[k] += [(n.order_id, n.pk) for n in batch.rows]
                Notification.objects.filter(claim_token=batch.token).update(
                    state="DELIVERED", claim_token="", claimed_until=None
                )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claimer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    ids = [pk for rows in claimed for _, pk in rows]
    assert len(ids) == len(set(ids)) == total
    assert overlaps == []
    assert sum(1 for rows in claimed if rows) >= 2  # they did run side by side
    for rows in claimed:
        last: dict[int, int] = {}
        for order_id, pk in rows:
            assert pk > last.get(order_id, 0)
            last[order_id] = pk


# --- admin -----------------------------------------------------------------------------------


@pytest.fixture
def admin_client_logged(client, django_user_model):
    user = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(user)
    return client


def test_admin_list_page_and_order_page(world, sim, admin_client_logged):
    client = admin_client_logged
    connect_channel(world.channel, sim)
    sim_order(sim, "FK-1")
    order = make_order(world, "FK-1")
    advance(order.shipments.get(), "PICKING")
    sim.store.add_fault({"kind": "error", "status": 500, "count": 1, "path": "/order/*"})
    deliver_due()
    created, picking = notifications(order)

    url = reverse("admin:notifications_notification_changelist")
    created_url = reverse("admin:notifications_notification_change", args=[created.pk])
    queries = ["", "?state__exact=PENDING", f"?order={order.pk}", "?q=FK-1", "?kind__exact=STATUS"]
    for query in queries:
        response = client.get(url + query)
        assert response.status_code == 200, query
        assert created_url in response.content.decode(), query
    for query in ("?state__exact=DELIVERED", f"?order={order.pk + 1}", "?q=FK-2"):
        assert created_url not in client.get(url + query).content.decode(), query

    page = client.get(reverse("admin:notifications_notification_change", args=[created.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    assert "Attempts" in text and "HTTP 500" in text and "Channel unavailable" in text
    assert "&quot;orderItemId&quot;: &quot;FK-1-L1&quot;" in text  # the payload
    assert "uw_action_retry_now" in text and "uw_action_discard" in text
    page = client.get(reverse("admin:notifications_notification_change", args=[picking.pk]))
    assert "held back by the order's earlier" in page.content.decode()

    order_page = client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert "Channel notifications" in order_page and f"#{picking.pk}" in order_page


def test_admin_retry_and_discard_actions(world, sim, admin_client_logged, settings):
    settings.NOTIFICATIONS_MAX_REJECTIONS = 1
    client = admin_client_logged
    connect_channel(world.channel, sim)
    sim_order(sim, "FK-1")
    sim_order(sim, "FK-2")
    one, two = make_order(world, "FK-1"), make_order(world, "FK-2")
    sim.store.add_fault({"kind": "error", "status": 422, "count": 2, "path": "/order/*"})
    deliver_due()
    [first], [second] = notifications(one), notifications(two)
    assert first.state == second.state == "FAILED"
    url = reverse("admin:notifications_notification_changelist")

    response = client.post(url, {"action": "retry_now", "_selected_action": [first.pk]})
    assert response.status_code == 302
    assert fresh(first).state == "PENDING" and fresh(first).rejections == 0

    # discard asks for a reason first
    response = client.post(url, {"action": "discard", "_selected_action": [second.pk]})
    assert response.status_code == 200 and b"Reason (required)" in response.content
    response = client.post(
        url,
        {
            "action": "discard",
            "_selected_action": [second.pk],
            "confirm_discard": "yes",
            "reason": "channel fixed it by hand",
        },
    )
    assert response.status_code == 302
    second = fresh(second)
    assert (second.state, second.discard_reason) == ("DISCARDED", "channel fixed it by hand")
    assert second.discarded_by.username == "boss"

    deliver_due()
    assert fresh(first).state == "DELIVERED"


def test_staff_without_the_permission_cannot_retry(world, client, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_notification"))
    client.force_login(user)
    connect_channel(world.channel)
    make_order(world, "FK-1")
    [n] = notifications()
    url = reverse("admin:notifications_notification_changelist")
    assert client.get(url).status_code == 200
    client.post(url, {"action": "retry_now", "_selected_action": [n.pk]})
    assert fresh(n).attempts == 0 and fresh(n).next_attempt_at == n.next_attempt_at
    page = client.get(reverse("admin:notifications_notification_change", args=[n.pk]))
    assert b"uw_action_retry_now" not in page.content


def test_payload_is_json_serialisable_as_sent(world):
    connect_channel(world.channel)
    make_order(world, "FK-1")
    [n] = notifications()
    assert json.loads(json.dumps(n.payload)) == n.payload


# --- tasks and the adapter fallback ----------------------------------------------------------


@pytest.fixture
def queued(monkeypatch):
    from notifications import tasks

    calls = []
    monkeypatch.setattr(tasks.deliver, "apply_async", lambda **kw: calls.append(kw))
    monkeypatch.setattr(tasks, "_eager", lambda: False)
    return calls


def test_the_task_queues_its_next_round_only_for_short_waits(queued, monkeypatch):
    from notifications import tasks

    now = timezone.now()
    tasks._follow_up(DeliveryReport(more=True))
    assert queued == [{}]  # budget spent with work left: at once
    tasks._follow_up(DeliveryReport(next_due=now + timedelta(seconds=5)))
    assert 4 < queued[-1]["countdown"] <= 5.1
    tasks._follow_up(DeliveryReport(next_due=now + timedelta(minutes=10)))
    tasks._follow_up(DeliveryReport())
    assert len(queued) == 2  # long back-offs are the sweeper's
    monkeypatch.setattr(tasks, "_eager", lambda: True)
    tasks._follow_up(DeliveryReport(more=True))
    assert len(queued) == 2  # eager: no self-queueing loop


def test_each_attempt_is_one_try_of_the_adapter_whatever_it_answers(world, monkeypatch):
    """Delivery goes through the adapter interface (`push_once`): an adapter translating to a
    marketplace's own API needs nothing else."""
    from channels.adapters import ChannelUnavailable, Reply
    from notifications.delivery import send_one

    connect_channel(world.channel, base_url="https://marketplace.example.com/api")
    make_order(world, "FK-1", [("L1", 1), ("L2", 1)])
    [n] = notifications()
    partial = {"status": "PARTIAL_SUCCESS", "orderItems": [{"orderItemId": "FK-1-L2"}]}
    answers = [
        ChannelUnavailable("Channel FLIPKART: authentication: HTTP 503"),
        Reply(429, "slow down", "HTTP 429", transient=True, retry_after=7.0),
        Reply(200, json.dumps(partial)),
    ]
    calls = []

    class Marketplace:
        def push_once(self, push, order_id, body, key, *, ref=""):
            calls.append((push, order_id, len(body["orderItems"]), key))
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

    monkeypatch.setattr("notifications.delivery.adapter_for", lambda channel: Marketplace())
    first, second, third = (send_one(n, world.channel) for _ in range(3))
    assert (first.outcome, first.status) == (AttemptOutcome.TRANSIENT, None)
    assert "authentication: HTTP 503" in first.error
    assert (second.outcome, second.status, second.retry_after) == ("TRANSIENT", 429, 7.0)
    assert (third.outcome, third.failed_ids) == (AttemptOutcome.PARTIAL, ["FK-1-L2"])
    assert calls == [("STATUS", "FK-1", 2, n.idempotency_key)] * 3
