"""Receiving a picklist with units not found on their shelves (issue 15): the units leave their
shipment and stock row (a NOT_FOUND ledger row with the reason), then are allocated again
from another shelf or wait as UNFULFILLABLE; the rest is received as usual; an emptied
shipment is cancelled without telling the channel; a fixed number of queries; the admin's
"Receive with items not found…" form."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inventory.ledger import stock_drift
from inventory.models import Inventory, Shelf, StockMovement, StockReason
from notifications.models import Notification
from orders.models import (
    Order,
    OrderItem,
    OrderItemStatus,
    Picklist,
    PicklistItem,
    PicklistStatus,
    Shipment,
    ShipmentStatus,
)
from orders.services import (
    LineInput,
    NotFoundThen,
    OrderInput,
    allocate_units,
    orders_create,
    picklist_create,
    picklist_receive,
    picklist_receive_partial,
    units_cancel,
)
from orders.services.picking import picklist_lines
from uniware.core.fsm import IllegalTransition
from uniware.core.models import StateChange

from .factories import SkuFactory, UserFactory, make_world
from .test_admin import act, action_names, texts, url
from .test_browser import PASSWORD, browser, click_to_next_page, expect_success  # noqa: F401
from .test_concurrency import in_parallel

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

REASON = "shelf empty, counted twice"


# --- set-up ------------------------------------------------------------------------------


def two_shelves(world, on_a1: int, on_b2: int) -> tuple[Inventory, Inventory]:
    """TSHIRT on A1 (the world's row, allocated first) and on B2."""
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=on_a1)
    b2 = Shelf.objects.create(facility=world.facility, code="B2")
    row = Inventory.objects.create(facility=world.facility, shelf=b2, sku=world.sku, quantity=0)
    if on_b2:
        Inventory.objects.filter(pk=row.pk).update(quantity=on_b2)
        # the ledger explains every row: an opening movement for what was set by hand
        StockMovement.objects.create(
            inventory=row,
            facility=world.facility,
            shelf=b2,
            sku=world.sku,
            inventory_type=row.inventory_type,
            quantity_change=on_b2,
            reason=StockReason.OPENING,
            actor="test",
            at=row.updated_at,
        )
    return world.inventory, row


def on_a_picklist(world, count: int, destination: str = "INVOICING", quantity: int = 1):
    """`count` orders of `quantity` TSHIRTs each, allocated (on A1), on one picklist."""
    orders = [world.order(f"FK-{n}", quantity=quantity) for n in range(count)]
    shipments = list(Shipment.objects.filter(order__in=orders).order_by("pk"))
    outcome = picklist_create([s.pk for s in shipments], destination=destination, actor="test")
    assert outcome.ok, outcome.failed
    return outcome.created[0], orders, shipments


def stock(row: Inventory) -> tuple[int, int]:
    row.refresh_from_db()
    return row.quantity, row.blocked_quantity


def fresh(obj):
    return type(obj).objects.get(pk=obj.pk)


def line_key(world) -> tuple[int, int]:
    return (world.shelf.pk, world.sku.pk)


def fix_ledger(world) -> None:
    """`make_world` wrote the opening row for its stock; A1 set by hand needs its own."""
    row = Inventory.objects.get(pk=world.inventory.pk)
    booked = sum(
        StockMovement.objects.filter(inventory=row).values_list("quantity_change", flat=True)
    )
    if row.quantity != booked:
        StockMovement.objects.create(
            inventory=row,
            facility=world.facility,
            shelf=world.shelf,
            sku=world.sku,
            inventory_type=row.inventory_type,
            quantity_change=row.quantity - booked,
            reason=StockReason.OPENING,
            actor="test",
            at=row.updated_at,
        )


# --- the service -------------------------------------------------------------------------


def test_back_to_allocation_takes_another_shelf_never_the_one_it_was_missing_from(world):
    a1, b2 = two_shelves(world, on_a1=5, on_b2=4)
    fix_ledger(world)
    picklist, orders, shipments = on_a_picklist(world, 3)
    assert stock(a1) == (5, 3)

    receipt = picklist_receive_partial(
        picklist.pk, not_found={line_key(world): 1}, reason=REASON, actor="picker"
    )

    # the newest order gives its unit up; A1 still shows 2 free, but it is not taken again
    [unit] = receipt.not_found
    assert unit.order_id == orders[-1].pk
    unit = fresh(unit)
    assert unit.status == OrderItemStatus.FULFILLABLE
    assert unit.inventory_id == b2.pk
    assert stock(a1) == (4, 2)  # the missing unit is written off: quantity and block
    assert stock(b2) == (4, 1)
    assert fresh(picklist).status == PicklistStatus.RECEIVED
    assert [fresh(s).status for s in shipments] == ["PICKED", "PICKED", "CANCELLED"]
    new = Shipment.objects.get(pk=unit.shipment_id)
    assert new.status == ShipmentStatus.CREATED and new.order_id == orders[-1].pk
    assert receipt.new_shipments == [new] and receipt.reallocated == [unit]
    assert receipt.emptied == [shipments[-1]] and receipt.waiting == []
    assert not PicklistItem.objects.filter(order_item=unit).exists()
    assert [line.quantity for line in picklist_lines(picklist.pk)] == [2]
    assert stock_drift() == []


def test_the_ledger_and_the_units_history_keep_the_reason(world):
    picklist, orders, shipments = on_a_picklist(world, 2)

    receipt = picklist_receive_partial(
        picklist.pk, not_found={line_key(world): 1}, reason=REASON, actor="picker"
    )

    [unit] = receipt.not_found
    [move] = StockMovement.objects.filter(reason=StockReason.NOT_FOUND)
    assert (move.inventory_id, move.quantity_change, move.blocked_change) == (
        world.inventory.pk,
        -1,
        -1,
    )
    assert move.order_item_id == unit.pk and move.note == REASON
    assert (move.reference_kind, move.reference_code) == ("picklist", picklist.code)
    history = StateChange.objects.get(object_id=unit.pk, transition="mark_not_found")
    assert (history.from_state, history.to_state) == ("PICKING_FOR_INVOICING", "UNFULFILLABLE")
    assert REASON in history.reason and picklist.code in history.reason
    assert history.actor == "picker"
    received = StateChange.objects.get(object_id=picklist.pk, transition="receive")
    assert received.reason == f"1 not found (A1 TSHIRT × 1), back to allocation: {REASON}"
    cancelled = StateChange.objects.get(object_id=shipments[1].pk, transition="cancel")
    assert REASON in cancelled.reason


def test_unfulfillable_waits_for_stock_even_when_another_shelf_has_some(world):
    a1, b2 = two_shelves(world, on_a1=3, on_b2=4)
    fix_ledger(world)
    picklist, orders, shipments = on_a_picklist(world, 3)

    receipt = picklist_receive_partial(
        picklist.pk,
        not_found={line_key(world): 2},
        reason=REASON,
        then=NotFoundThen.UNFULFILLABLE,
        actor="picker",
    )

    assert len(receipt.waiting) == 2 and receipt.reallocated == []
    waiting = OrderItem.objects.filter(pk__in=[u.pk for u in receipt.waiting])
    assert {(u.status, u.shipment_id, u.inventory_id, u.facility_id) for u in waiting} == {
        (OrderItemStatus.UNFULFILLABLE, None, None, None)
    }
    assert stock(a1) == (1, 1) and stock(b2) == (4, 0)
    assert [fresh(s).status for s in shipments] == ["PICKED", "CANCELLED", "CANCELLED"]
    assert {fresh(o).status for o in orders} == {"PROCESSING"}
    assert stock_drift() == []


def test_back_to_allocation_without_stock_anywhere_waits(world):
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=2)
    fix_ledger(world)
    picklist, _, _ = on_a_picklist(world, 2)

    receipt = picklist_receive_partial(
        picklist.pk, not_found={line_key(world): 1}, reason=REASON, actor="picker"
    )

    assert receipt.reallocated == [] and len(receipt.waiting) == 1
    assert fresh(receipt.waiting[0]).status == OrderItemStatus.UNFULFILLABLE
    assert stock(world.inventory) == (1, 1)


def test_a_short_pick_keeps_the_units_found_in_their_shipment(world):
    picklist, [order], [shipment] = on_a_picklist(world, 1, quantity=3)

    receipt = picklist_receive_partial(
        picklist.pk,
        not_found={line_key(world): 1},
        reason=REASON,
        then=NotFoundThen.UNFULFILLABLE,
    )

    assert fresh(shipment).status == ShipmentStatus.PICKED
    kept = list(shipment.items.values_list("status", flat=True))
    assert kept == [OrderItemStatus.PICKING_FOR_INVOICING] * 2
    assert receipt.received == [shipment] and receipt.emptied == []
    assert fresh(order).status == "PROCESSING"


def test_units_named_by_id_on_a_staging_picklist(world):
    picklist, orders, shipments = on_a_picklist(world, 2, destination="STAGING")
    unit = OrderItem.objects.get(order=orders[0])

    receipt = picklist_receive_partial(
        picklist.pk, not_found_units=[unit.pk], reason=REASON, actor="picker"
    )

    assert receipt.not_found == [unit]
    # A1 still shows 7 free, but the unit was not found there: it waits
    assert fresh(unit).status == OrderItemStatus.UNFULFILLABLE
    assert [fresh(s).status for s in shipments] == ["CANCELLED", "PICKED"]


def test_nothing_found_closes_the_picklist(world):
    picklist, _, shipments = on_a_picklist(world, 2)

    picklist_receive_partial(
        picklist.pk,
        not_found={line_key(world): 2},
        reason=REASON,
        then=NotFoundThen.UNFULFILLABLE,
    )

    assert fresh(picklist).status == PicklistStatus.CLOSED
    assert {fresh(s).status for s in shipments} == {ShipmentStatus.CANCELLED}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"not_found": "too many"},
            "Shelf A1, SKU TSHIRT: 3 not found, but the picklist has only 2 to pick there",
        ),
        ({"not_found_units": [10**9]}, "are not on this picklist"),
        ({}, "No unit is marked not found"),
        ({"not_found": "one", "reason": "  "}, "Say why the units were not found"),
    ],
)
def test_a_wrong_request_is_refused_and_changes_nothing(world, kwargs, message):
    picklist, _, shipments = on_a_picklist(world, 2)
    counts = {"too many": {line_key(world): 3}, "one": {line_key(world): 1}}
    if "not_found" in kwargs:
        kwargs["not_found"] = counts[kwargs["not_found"]]
    before = (stock(world.inventory), StockMovement.objects.count(), StateChange.objects.count())

    with pytest.raises(ValidationError) as refused:
        picklist_receive_partial(picklist.pk, **{"reason": REASON, **kwargs})

    assert message in " ".join(refused.value.messages)
    after = (stock(world.inventory), StockMovement.objects.count(), StateChange.objects.count())
    assert after == before
    assert fresh(picklist).status == PicklistStatus.CREATED
    assert {fresh(s).status for s in shipments} == {ShipmentStatus.PICKING}


def test_a_received_picklist_is_refused(world):
    picklist, _, _ = on_a_picklist(world, 1)
    picklist_receive([picklist.pk])

    with pytest.raises(IllegalTransition, match="is RECEIVED: cannot receive"):
        picklist_receive_partial(picklist.pk, not_found={line_key(world): 1}, reason=REASON)


def test_no_channel_notification_names_the_emptied_shipment(world):
    world.channel.accepts_status_notifications = True
    world.channel.accepts_cancel = True
    world.channel.save()
    a1, b2 = two_shelves(world, on_a1=2, on_b2=1)
    fix_ledger(world)
    picklist, orders, shipments = on_a_picklist(world, 2)
    before = set(Notification.objects.values_list("pk", flat=True))

    picklist_receive_partial(
        picklist.pk, not_found={line_key(world): 1}, reason=REASON, actor="picker"
    )

    emptied, received = shipments[1], shipments[0]
    assert fresh(emptied).status == ShipmentStatus.CANCELLED
    new = Notification.objects.exclude(pk__in=before)
    queued = {(n.event, n.source_code) for n in new}
    unit = OrderItem.objects.get(order=orders[1])
    assert queued == {
        ("PICKED", received.code),  # the shipment found, as any receive tells
        ("CREATED", Shipment.objects.get(pk=unit.shipment_id).code),  # re-allocated
    }
    assert not any(emptied.code in code for _, code in queued)
    assert not new.filter(event="CANCELLED").exists()


def test_the_queries_do_not_grow_with_the_units(world, django_assert_max_num_queries):
    two_shelves(world, on_a1=60, on_b2=30)
    fix_ledger(world)
    small, _, _ = on_a_picklist(world, 2)
    with CaptureQueriesContext(connection) as ctx:
        receipt = picklist_receive_partial(small.pk, not_found={line_key(world): 1}, reason=REASON)
    assert len(receipt.reallocated) == 1 and len(receipt.emptied) == 1

    large = on_a_picklist_more(world, 20)
    with django_assert_max_num_queries(len(ctx.captured_queries)):
        receipt = picklist_receive_partial(large.pk, not_found={line_key(world): 12}, reason=REASON)
    assert len(receipt.reallocated) == 12 and len(receipt.emptied) == 12
    assert len(receipt.received) == 8 and stock_drift() == []


def on_a_picklist_more(world, count: int) -> Picklist:
    orders = [world.order(f"MORE-{n}") for n in range(count)]
    shipments = Shipment.objects.filter(order__in=orders).values_list("pk", flat=True)
    return picklist_create(list(shipments), destination="INVOICING").created[0]


def test_an_order_on_a_picklist_counts_each_unit_once(world):
    picklist, _, _ = on_a_picklist(world, 3)
    [line] = picklist_lines(picklist.pk)
    assert (str(line), line.quantity) == ("Shelf A1, SKU TSHIRT", 3)
    assert Order.objects.count() == 3


# --- the admin ---------------------------------------------------------------------------


@pytest.fixture
def walk(world):
    """A picklist over shelves A1 (TSHIRT × 2), A10 (MUG × 1) and A2 (CAP × 1)."""
    for code, shelf in (("MUG", "A10"), ("CAP", "A2")):
        sku = SkuFactory(code=code, name=code.title())
        place = Shelf.objects.create(facility=world.facility, code=shelf)
        Inventory.objects.create(facility=world.facility, shelf=place, sku=sku, quantity=5)
    orders = [world.order("FK-1", quantity=2), world.order("FK-2", sku="MUG")]
    orders.append(world.order("FK-3", sku="CAP"))
    shipments = list(Shipment.objects.filter(order__in=orders).order_by("pk"))
    picklist = picklist_create([s.pk for s in shipments], destination="INVOICING").created[0]
    return picklist, shipments


@pytest.fixture
def as_role(client):
    """`as_role("Pick and Pack")`: the test client, logged in as a user of that role."""

    def login(role: str):
        client.force_login(UserFactory(roles=[role]))
        return client

    return login


def form_post(picklist, **fields) -> dict:
    return {"confirm": "yes", "reason": REASON, "then": "REALLOCATE", **fields}


def test_the_form_lists_shelf_sku_and_quantity_in_walk_order(walk, as_role):
    picklist, _ = walk
    page = act(as_role("Pick and Pack"), Picklist, "receive_partial", [picklist])

    assert page.status_code == 200
    rows = [[str(cell) for cell in row[:4]] for row in page.context["rows"]]
    assert rows == [
        ["A1", "TSHIRT", "Red T-shirt", "2"],
        ["A2", "CAP", "Cap", "1"],
        ["A10", "MUG", "Mug", "1"],
    ]
    html = page.content.decode()
    assert html.count('name="not_found_') == 3
    assert "Back to allocation" in html and 'value="UNFULFILLABLE"' in html


def test_a_quantity_above_the_line_is_shown_next_to_it_naming_the_line(walk, world, as_role):
    picklist, shipments = walk
    field = f"not_found_{world.shelf.pk}_{world.sku.pk}"

    page = act(
        as_role("Pick and Pack"),
        Picklist,
        "receive_partial",
        [picklist],
        **form_post(picklist, **{field: 3}),
    )

    assert page.status_code == 200
    form = page.context["form"]
    assert form.errors[field] == [
        "Shelf A1, SKU TSHIRT: 3 not found, but the picklist has only 2 to pick there"
    ]
    cell = next(row[4] for row in page.context["rows"] if row[1] == "TSHIRT")
    assert "3 not found, but the picklist has only 2" in str(cell.errors)
    assert 'class="errors"' in page.content.decode()
    assert fresh(picklist).status == PicklistStatus.CREATED
    assert {fresh(s).status for s in shipments} == {ShipmentStatus.PICKING}


def test_nothing_marked_not_found_and_no_reason_are_refused(walk, as_role):
    picklist, _ = walk
    page = act(
        as_role("Pick and Pack"),
        Picklist,
        "receive_partial",
        [picklist],
        **form_post(picklist, reason=""),
    )

    form = page.context["form"]
    assert "reason" in form.errors
    assert "at least one line" in " ".join(form.non_field_errors())
    assert fresh(picklist).status == PicklistStatus.CREATED


def test_receiving_from_the_form(walk, world, as_role):
    picklist, shipments = walk
    mug = Inventory.objects.get(sku__code="MUG")
    field = f"not_found_{mug.shelf_id}_{mug.sku_id}"

    done = act(
        as_role("Pick and Pack"),
        Picklist,
        "receive_partial",
        [picklist],
        **form_post(picklist, **{field: 1}, then="UNFULFILLABLE"),
    )

    [message] = texts(done)
    assert message.startswith(f"Received picklist {picklist.code} with 1 unit not found")
    assert (
        "(marked unfulfillable)" in message
        and "Waiting for stock (UNFULFILLABLE): 1 unit" in message
    )
    assert f"Cancelled, nothing in them found: {shipments[1].code}." in message
    assert fresh(picklist).status == PicklistStatus.RECEIVED
    assert [fresh(s).status for s in shipments] == ["PICKED", "CANCELLED", "PICKED"]
    assert stock(mug) == (4, 0)
    history = StateChange.objects.get(object_id=picklist.pk, transition="receive")
    assert history.actor.startswith("user") and REASON in history.reason


def test_the_button_and_the_permission_are_those_of_receive(walk, as_role):
    picklist, _ = walk
    packer = as_role("Pick and Pack")
    page = packer.get(url(Picklist, "change", picklist.pk)).content.decode()
    assert 'name="uw_action_receive_partial"' in page
    assert {"receive", "receive_partial"} <= action_names(packer, Picklist)
    returns = as_role("Returns Manager")  # sees picklists, may not receive them
    assert returns.get(url(Picklist, "change", picklist.pk)).status_code == 200
    assert not {"receive", "receive_partial"} & action_names(returns, Picklist)


def test_the_form_takes_one_created_picklist(walk, world, as_role):
    picklist, _ = walk
    other = on_a_picklist(world, 1)[0]
    response = act(as_role("Pick and Pack"), Picklist, "receive_partial", [picklist, other])
    assert "one picklist at a time" in texts(response)[0]


# --- competing threads (committed for real) ------------------------------------------------


@pytest.fixture
def tx_world(transactional_db):
    import importlib

    from django.apps import apps

    defaults = importlib.import_module("uniware.core.migrations.0002_defaults")
    defaults.create_defaults(apps, None)
    return make_world(stock=10)


@pytest.mark.django_db(transaction=True)
def test_a_receive_and_a_partial_receive_of_one_picklist_race(tx_world):
    world = tx_world
    picklist, _, shipments = on_a_picklist(world, 3)

    def work(i: int):
        if i == 0:
            return picklist_receive([picklist.pk], actor="packer")
        return picklist_receive_partial(
            picklist.pk, not_found={line_key(world): 1}, reason=REASON, actor="picker"
        )

    results = in_parallel(2, work)

    (_, whole), (kind, partial) = results
    assert whole.failed or kind == "error", "exactly one of them received the picklist"
    if kind == "error":  # the whole receive came first
        assert isinstance(partial, IllegalTransition) and whole.ok
        assert {fresh(s).status for s in shipments} == {ShipmentStatus.PICKED}
        assert not StockMovement.objects.filter(reason=StockReason.NOT_FOUND).exists()
    else:
        assert "is RECEIVED: cannot receive" in whole.failed[0][1]
        assert sorted(fresh(s).status for s in shipments) == ["CANCELLED", "PICKED", "PICKED"]
    assert fresh(picklist).status == PicklistStatus.RECEIVED
    assert stock_drift() == []


@pytest.mark.django_db(transaction=True)
def test_back_to_allocation_and_a_new_order_race_for_the_last_unit_elsewhere(tx_world):
    world = tx_world
    a1, b2 = two_shelves(world, on_a1=2, on_b2=1)
    fix_ledger(world)
    picklist, orders, _ = on_a_picklist(world, 2)
    newcomer = orders_create(
        [
            OrderInput(
                channel=world.channel,
                channel_order_id="NEW-1",
                ship_pincode="560001",
                lines=[LineInput("L1", "TSHIRT", 1, "100")],
            )
        ],
        allocate=False,
    )[0]

    def work(i: int):
        if i == 0:
            return picklist_receive_partial(
                picklist.pk, not_found={line_key(world): 1}, reason=REASON, actor="picker"
            )
        return allocate_units(order_ids=[newcomer.pk], actor="allocator")

    results = in_parallel(2, work)

    assert [kind for kind, _ in results] == ["ok", "ok"], results
    missing = OrderItem.objects.get(pk=results[0][1].not_found[0].pk)
    other = OrderItem.objects.get(order=newcomer)
    on_b2 = [u for u in (missing, other) if u.inventory_id == b2.pk]
    assert len(on_b2) == 1, "the last unit on B2 went to exactly one of them"
    assert {missing.status, other.status} == {"FULFILLABLE", "UNFULFILLABLE"}
    assert stock(b2) == (1, 1) and stock(a1) == (1, 1)
    assert stock_drift() == []


@pytest.mark.django_db(transaction=True)
def test_a_partial_receive_and_a_cancel_of_the_unit_race(tx_world):
    world = tx_world
    picklist, orders, shipments = on_a_picklist(world, 2)
    unit = OrderItem.objects.get(order=orders[1])

    def work(i: int):
        if i == 0:
            return units_cancel([unit.pk], reason="customer changed mind", actor="sales")
        return picklist_receive_partial(
            picklist.pk, not_found_units=[unit.pk], reason=REASON, actor="picker"
        )

    (_, cancelled), (kind, partial) = in_parallel(2, work)

    assert cancelled.ok, cancelled.failed  # cancelled either way, as its stage then requires
    assert fresh(unit).status == OrderItemStatus.CANCELLED
    if kind == "error":  # the cancel came first: the unit is no longer on the picklist
        assert isinstance(partial, ValidationError)
        assert fresh(picklist).status == PicklistStatus.CREATED
    else:
        assert fresh(picklist).status == PicklistStatus.RECEIVED
    assert fresh(shipments[1]).status == ShipmentStatus.CANCELLED
    assert stock_drift() == []


# --- in the browser ------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_packer_receives_with_an_item_not_found_in_the_browser(browser):  # noqa: F811
    from django.contrib.auth.models import Group
    from django.core.cache import cache
    from playwright.sync_api import expect

    cache.clear()
    world = make_world(stock=5)
    for n in range(3):
        world.order(f"FK-BR-{n}")
    shipments = list(Shipment.objects.order_by("pk").values_list("pk", flat=True))
    picklist = picklist_create(shipments, destination="INVOICING").created[0]
    packer = UserFactory(username="packer-partial")
    packer.groups.add(Group.objects.get(name="Pick and Pack"))
    packer.set_password(PASSWORD)
    packer.save()
    field = f"not_found_{world.shelf.pk}_{world.sku.pk}"
    page_url = url(Picklist, "change", picklist.pk)

    with browser() as ui:
        page = ui.page
        page.goto(f"{ui.base_url}/admin/login/?next={page_url}", wait_until="load")
        page.fill("#id_username", packer.username)
        page.fill("#id_password", PASSWORD)
        click_to_next_page(page, page.locator("#login-form [type=submit]"))
        click_to_next_page(page, page.locator("button[name='uw_action_receive_partial']"))
        expect(page.locator("table.uw-table tbody tr")).to_have_count(1)
        page.fill(f"input[name='{field}']", "4")
        page.fill("#id_reason", "not on the shelf")
        click_to_next_page(page, page.locator("#uw-action-form [type=submit]"))
        expect(page.locator("td.errors")).to_contain_text(
            "Shelf A1, SKU TSHIRT: 4 not found, but the picklist has only 3 to pick there"
        )
        ui.screenshot("refused")
        page.fill(f"input[name='{field}']", "1")
        page.check("input[name='then'][value='UNFULFILLABLE']")
        click_to_next_page(page, page.locator("#uw-action-form [type=submit]"))
        expect_success(page, f"Received picklist {picklist.code} with 1 unit not found")
        expect(page.locator(".fieldBox.field-status_badge")).to_contain_text("RECEIVED")
        ui.screenshot("received")
        assert ui.problems == []
