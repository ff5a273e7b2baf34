"""Property test of the inventory push (issue 16): after any sequence of stock movements
(allocation, waiting orders, cancellation, picking, dispatch, putaway, stock added, adjustment,
re-allocation) and pushes (either lane, full) to two channels over the simulator:

- every quantity a push sends is the formula on the state at that moment, so no listing is
  ever pushed more than its sellable stock (on shelves − blocked in its facilities);
- once the CHANGED push has run, the last quantity each channel accepted for each listing is
  the formula on the current state, and every listing is IN_SYNC.

The formula is written here again from the issue's words (not with `listings.quantity`).
Two facilities (AMAZON sells only WH2's stock), two SKUs, a buffer, the channel's "0 at or
below" rule and the change scan's safety window (0 s: the cursor moves past every row; the
default: it re-reads them) are drawn. Each example runs in a savepoint that is rolled back.
"""

from __future__ import annotations

import contextlib
import os

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.test import TestCase, override_settings
from django_fsm import TransitionNotAllowed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.adapters import forget_adapters
from inventory.models import Facility, Inventory, InventoryType, Putaway, Shelf
from inventory.putaway import putaways_complete
from inventory.services import stock_add, stock_adjust
from listings.models import ChannelListing, InventoryLane
from listings.push import push_inventory
from orders.models import OrderItem, PicklistItem, Shipment, ShipmentStatus
from orders.models.order import ITEM_PRE_DISPATCH
from orders.services import (
    LineInput,
    OrderInput,
    order_create,
    picklist_create,
    picklist_receive,
    reallocate_waiting_units,
    shipments_force_dispatch,
    units_cancel,
)
from uniware.core.services import SequenceNotDefined

from .factories import ChannelFactory, SkuFactory, make_world
from .sync_helpers import point_at

pytestmark = pytest.mark.postgres
pytest_plugins = ["tests.sync_fixtures"]

REFUSALS = (TransitionNotAllowed, ValidationError, SequenceNotDefined, ValueError)
OPS = [
    "order",
    "waiting_order",
    "cancel_unit",
    "pick_shipment",
    "force_dispatch",
    "complete_putaway",
    "add_stock",
    "adjust",
    "reallocate",
    "push",
    "push",
    "full_push",
]
step = st.tuples(st.sampled_from(OPS), st.integers(0, 30), st.integers(0, 30))


def expected(listing: ChannelListing) -> int:
    """The issue's formula, on the current state."""
    channel = listing.channel
    chosen = list(channel.inventory_facilities.values_list("pk", flat=True))
    facilities = Facility.objects.filter(is_active=True)
    if chosen:
        facilities = facilities.filter(pk__in=chosen)
    stock = Inventory.objects.filter(
        sku=listing.sku, inventory_type=InventoryType.GOOD_INVENTORY, facility__in=facilities
    ).aggregate(q=Sum("quantity"), b=Sum("blocked_quantity"))
    waiting = OrderItem.objects.filter(
        sku=listing.sku, status__in=ITEM_PRE_DISPATCH, inventory__isnull=True
    ).count()
    quantity = max(0, (stock["q"] or 0) - (stock["b"] or 0) - waiting - listing.buffer)
    rule = channel.inventory_zero_at_or_below
    return 0 if rule is not None and quantity <= rule else quantity


def sellable(listing: ChannelListing) -> int:
    """GOOD stock on shelves minus blocked in the listing's facilities (no waiting, no buffer)."""
    chosen = list(listing.channel.inventory_facilities.values_list("pk", flat=True))
    rows = Inventory.objects.filter(
        sku=listing.sku, inventory_type=InventoryType.GOOD_INVENTORY, facility__is_active=True
    )
    if chosen:
        rows = rows.filter(facility__in=chosen)
    stock = rows.aggregate(q=Sum("quantity"), b=Sum("blocked_quantity"))
    return (stock["q"] or 0) - (stock["b"] or 0)


class Run:
    def __init__(self, sim, buffer: int, rule: int | None):
        self.sim = sim
        self.world = make_world(stock=6)
        wh2 = Facility.objects.create(code="WH2", name="Second", priority=2)
        self.shelves = [self.world.shelf, Shelf.objects.create(facility=wh2, code="B1")]
        self.skus = [self.world.sku, SkuFactory(code="JEANS")]
        Inventory.objects.create(facility=wh2, shelf=self.shelves[1], sku=self.skus[0], quantity=3)
        Inventory.objects.create(
            facility=self.world.facility, shelf=self.shelves[0], sku=self.skus[1], quantity=4
        )
        self.flipkart = point_at(self.world.channel, sim)
        self.amazon = point_at(
            ChannelFactory(code="AMAZON", name="Amazon"), sim, inventory_zero_at_or_below=rule
        )
        self.amazon.inventory_facilities.set([wh2])
        self.channels = [self.flipkart, self.amazon]
        for channel in self.channels:
            for sku in self.skus:
                ChannelListing.objects.create(
                    channel=channel,
                    product_id=f"{channel.code}-{sku.code}",
                    sku=sku,
                    buffer=buffer if channel == self.flipkart else 0,
                )
        self.orders = 0
        self.pushes = 0

    def do(self, op: str, n: int, m: int) -> None:
        getattr(self, op)(n, m)

    def _order(self, n: int, m: int, allocate: bool) -> None:
        self.orders += 1
        code = f"P-{self.orders}"
        line = LineInput(f"{code}-L1", self.skus[m % 2].code, 1 + n % 3, "499.00")
        spec = OrderInput(
            channel=self.channels[n % 2], channel_order_id=code, ship_pincode="560001", lines=[line]
        )
        order_create(spec, allocate=allocate)

    def order(self, n, m):
        self._order(n, m, allocate=True)

    def waiting_order(self, n, m):
        self._order(n, m, allocate=False)

    def cancel_unit(self, n, m):
        pk = _pick(OrderItem.objects.filter(status__in=ITEM_PRE_DISPATCH), n)
        if pk:
            units_cancel([pk], reason="property test")

    def pick_shipment(self, n, m):
        """Put a shipment on a picklist and often receive it: its units then leave their
        block only at dispatch, or at a cancel that sends them to a putaway."""
        pk = _pick(Shipment.objects.filter(status=ShipmentStatus.CREATED), n)
        if pk is None:
            return
        outcome = picklist_create([pk], destination="INVOICING")
        if outcome.done and m % 2:
            picklists = PicklistItem.objects.filter(shipment_id=pk).values_list("picklist_id")
            picklist_receive({p for (p,) in picklists})

    def force_dispatch(self, n, m):
        pk = _pick(Shipment.objects.filter(status=ShipmentStatus.CREATED), n)
        if pk:
            shipments_force_dispatch([pk])

    def complete_putaway(self, n, m):
        pk = _pick(Putaway.objects.filter(status="CREATED"), n)
        if pk:
            putaways_complete([pk], shelf=self.shelves[0], inventory_type="GOOD_INVENTORY")

    def add_stock(self, n, m):
        stock_add(shelf=self.shelves[n % 2], sku=self.skus[m % 2], quantity=1 + n % 3)

    def adjust(self, n, m):
        pk = _pick(Inventory.objects.filter(quantity__gt=0), n)
        if pk:
            stock_adjust(Inventory.objects.get(pk=pk), delta=-1 - m % 2, note="counted")

    def reallocate(self, n, m):
        reallocate_waiting_units()

    def push(self, n, m):
        channel = self.channels[n % 2]
        lane = [InventoryLane.CHANGED, InventoryLane.ZERO][m % 2]
        self._push(channel, lane=lane)

    def full_push(self, n, m):
        self._push(self.channels[n % 2], full=True)

    def _push(self, channel, **how) -> None:
        before = len(self.sim.store.received(channel.code, "inventory")["inventory"])
        run = push_inventory(channel, **how)
        assert run.outcome == "SUCCESS", run.message
        self.pushes += 1
        records = self.sim.store.received(channel.code, "inventory")["inventory"][before:]
        by_product = {
            listing.product_id: listing
            for listing in ChannelListing.objects.filter(channel=channel).select_related("channel")
        }
        for record in records:
            for entry in record["body"]["inventoryList"]:
                listing = by_product[entry["productId"]]
                quantity = int(entry["inventory"])
                assert quantity == expected(listing), (entry, listing.wanted_terms)
                assert quantity <= max(0, sellable(listing)), entry

    def check_final(self) -> None:
        """Once the CHANGED push ran, each channel holds the formula for each listing."""
        for channel in self.channels:
            self._push(channel, lane=InventoryLane.CHANGED)
            held = {
                r["productId"]: r["inventory"]
                for r in self.sim.store.received(channel.code)["inventoryLevels"]
            }
            for listing in ChannelListing.objects.filter(channel=channel).select_related("channel"):
                want = expected(listing)
                assert held.get(listing.product_id) == want, (listing, held, listing.wanted_terms)
                assert (listing.pushed_quantity, listing.push_status) == (want, "IN_SYNC")


def _pick(queryset, n: int):
    ids = list(queryset.order_by("pk").values_list("pk", flat=True))
    return ids[n % len(ids)] if ids else None


def run_steps(sim, steps, *, buffer: int, rule: int | None, safety: int) -> int:
    savepoint = transaction.savepoint()
    sim.store.reset()
    for code in ("FLIPKART", "AMAZON"):
        sim.store.add_channel(code, "user", "pass")
    try:
        with override_settings(INVENTORY_SAFETY_SECONDS=safety):
            run = Run(sim, buffer, rule)
            for op, n, m in steps:
                with (
                    TestCase.captureOnCommitCallbacks(execute=True),
                    contextlib.suppress(*REFUSALS),  # refused: nothing changed
                ):
                    run.do(op, n, m)
            run.check_final()
            return run.pushes
    finally:
        transaction.savepoint_rollback(savepoint)
        forget_adapters()


PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("INVENTORY_PROPERTY_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def test_channels_hold_the_formula_once_the_push_ran(db, sim):
    pushes = []

    @PROPERTY_SETTINGS
    @given(
        steps=st.lists(step, min_size=3, max_size=20),
        buffer=st.integers(0, 2),
        rule=st.sampled_from([None, 0, 2]),
        safety=st.sampled_from([0, 300]),
    )
    def examples(steps, buffer, rule, safety):
        pushes.append(run_steps(sim, steps, buffer=buffer, rule=rule, safety=safety))

    examples()
    assert sum(pushes) > len(pushes) * 2  # pushes ran in between, not only the final ones
