"""Property tests: random sequences of forward steps, cancellations, returns, reships,
replacements, stock arrivals and putaways never break the stock.

After every step:
- no stock row is negative, and each row's blocked quantity is exactly the number of units
  holding a block on it;
- nothing is counted twice: units on shelves + units on pending putaways = starting stock +
  stock added − units dispatched and not returned − units written off (discarded putaways);
- no unit is on two putaways, and each putaway-returned unit went into exactly one row;
- the stock ledger explains every row (`check_stock` finds no drift) and every unit: a unit
  holding a block has a net +1 blocked change in the ledger, any other unit 0.
Channel-driven dispatch and cancellation are steps too. Over a whole test run at least a third
of the steps must succeed (write something), so the test cannot pass by refusing everything.
At the end, once every pending putaway is completed, the shelves alone hold exactly the
starting stock plus additions minus what was dispatched and not returned (or written off).

Each example runs in a savepoint that is rolled back, so examples do not see each other.
Callbacks the services leave for after the commit (allocation of follow-up orders,
re-allocation of waiting units) run at the end of each step, as they would in production.
"""

from __future__ import annotations

import os

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Sum
from django.test import TestCase
from django_fsm import TransitionNotAllowed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inventory.ledger import stock_drift
from inventory.models import Inventory, Putaway, PutawayItem, PutawayStatus, Shelf, StockMovement
from inventory.putaway import putaways_complete, putaways_discard
from inventory.services import stock_add
from orders.models import (
    Order,
    OrderItem,
    OrderItemStatus,
    PicklistItem,
    ReshipOption,
    ReturnManifest,
    ReversePickup,
    ReversePickupStatus,
    Shipment,
    ShipmentStatus,
)
from orders.models.order import ITEM_BLOCKING_STOCK
from orders.services import (
    manifest_close,
    orders_cancel,
    picklist_create,
    picklist_receive,
    return_manifest_close,
    reverse_pickup_allocate_courier,
    reverse_pickup_create,
    reverse_pickups_cancel,
    reverse_pickups_complete,
    reverse_pickups_mark_not_received,
    shipments_deliver,
    shipments_expect_return,
    shipments_force_dispatch,
    shipments_generate_label,
    shipments_invoice,
    shipments_manifest,
    shipments_mark_returned,
    shipments_receive_return,
    shipments_repacked,
    shipments_ship,
    units_cancel,
    units_dispatch_from_channel,
    units_replace,
    units_reship,
)
from uniware.core.models import Sequence, StateChange, Tenant
from uniware.core.services import SequenceNotDefined

from .factories import make_world

START = 6
REFUSALS = (TransitionNotAllowed, ValidationError, SequenceNotDefined, ValueError)
# Units that left the shelves at dispatch (and are not back unless on a putaway).
DISPATCHED_UNITS = [
    OrderItemStatus.DISPATCHED,
    OrderItemStatus.DELIVERED,
    OrderItemStatus.RESHIPPED,
    OrderItemStatus.REPLACED,
]

OPS = [
    "order",
    "forward",
    "force_dispatch",
    "cancel_unit",
    "cancel_order",
    "expect_return",
    "receive_return",
    "close_return_manifest",
    "complete_putaway",
    "discard_putaway",
    "reverse_pickup",
    "advance_pickup",
    "reship",
    "replace",
    "add_stock",
    "channel_dispatch",
    "channel_cancel",
    "repack",
]
# forward steps are drawn more often: returns need dispatched shipments
step = st.tuples(
    st.sampled_from(OPS + ["forward"] * 4 + ["order"]), st.integers(0, 30), st.integers(0, 30)
)


class Run:
    """Interprets steps against the database; `n` picks among candidates (mod their count)."""

    def __init__(self, traceability: str, *, dispatched: bool = False):
        tenant = Tenant.get()
        tenant.traceability = traceability
        tenant.save()
        self.world = make_world(stock=START)
        Sequence.objects.create(name="RETURN_INVOICE", facility=self.world.facility, prefix="CN-")
        self.spare = Shelf.objects.create(facility=self.world.facility, code="B1")
        self.added = 0
        self.orders = 0
        for quantity in (1, 2, 1):  # something to work on from the first step
            self.order(quantity - 1, 0)
        if dispatched:  # start from dispatched orders: the return paths get explored
            for pk in Shipment.objects.order_by("pk").values_list("pk", flat=True):
                while self.forward_one(pk, 2):
                    pass

    @staticmethod
    def pick(queryset, n: int):
        ids = list(queryset.order_by("pk").values_list("pk", flat=True))
        return ids[n % len(ids)] if ids else None

    def do(self, op: str, n: int, m: int) -> None:
        getattr(self, op)(n, m)

    def order(self, n, m):
        self.orders += 1
        self.world.order(f"P-{self.orders}", 1 + n % 3)

    def forward(self, n, m):
        """Move one shipment 1 to 8 steps along the forward flow."""
        pk = self.pick(
            Shipment.objects.exclude(
                status__in=[ShipmentStatus.CANCELLED, ShipmentStatus.SPLITTED]
            ),
            n,
        )
        for _ in range(1 + m % 8):
            if pk is None or not self.forward_one(pk, m):
                return

    @staticmethod
    def forward_one(pk: int, m: int) -> bool:
        status = Shipment.objects.get(pk=pk).status
        if status == ShipmentStatus.CREATED:
            outcome = picklist_create([pk], destination="INVOICING")
        elif status == ShipmentStatus.PICKING:
            outcome = picklist_receive(
                PicklistItem.objects.filter(shipment_id=pk, picklist__status="CREATED").values_list(
                    "picklist_id", flat=True
                )
            )
        elif status == ShipmentStatus.PICKED:
            outcome = shipments_invoice([pk])
        elif status == ShipmentStatus.PACKED:
            outcome = shipments_generate_label([pk])
        elif status == ShipmentStatus.READY_TO_SHIP:
            outcome = shipments_manifest([pk])
        elif status == ShipmentStatus.MANIFESTED:
            outcome = manifest_close(Shipment.objects.get(pk=pk).manifest)
        elif status == ShipmentStatus.DISPATCHED and m % 3 == 0:
            outcome = shipments_ship([pk])
        elif status in (ShipmentStatus.DISPATCHED, ShipmentStatus.SHIPPED) and m % 3 == 1:
            outcome = shipments_deliver([pk])
        else:
            return False
        return bool(outcome.done)

    def force_dispatch(self, n, m):
        pk = self.pick(
            Shipment.objects.filter(
                status__in=[ShipmentStatus.CREATED, ShipmentStatus.PACKED, ShipmentStatus.PICKED]
            ),
            n,
        )
        if pk:
            shipments_force_dispatch([pk])

    def cancel_unit(self, n, m):
        pk = self.pick(OrderItem.objects.exclude(status=OrderItemStatus.CANCELLED), n)
        if pk:
            units_cancel([pk], reason="property test", by_channel=bool(m % 2))

    def cancel_order(self, n, m):
        pk = self.pick(Order.objects.exclude(status="CANCELLED"), n)
        if pk and m % 3 == 0:  # rarer: it ends a whole order
            orders_cancel([pk], reason="property test")

    def expect_return(self, n, m):
        pk = self.pick(
            Shipment.objects.filter(status__in=[ShipmentStatus.DISPATCHED, ShipmentStatus.SHIPPED]),
            n,
        )
        if pk:
            shipments_expect_return([pk])

    def receive_return(self, n, m):
        statuses = (
            [ShipmentStatus.RETURN_EXPECTED]
            if m % 2
            else [ShipmentStatus.RETURN_EXPECTED, ShipmentStatus.DISPATCHED]
        )
        pk = self.pick(Shipment.objects.filter(status__in=statuses), n)
        if pk is None:
            return
        if Tenant.get().traceability == "ITEM":
            outcome = shipments_receive_return([pk])
            if m % 3 and outcome.done:  # often closed right away
                manifest = ReturnManifest.objects.filter(items__shipment_id=pk).get()
                return_manifest_close(manifest)
        else:
            kind = "GOOD_INVENTORY" if m % 3 else "BAD_INVENTORY"
            shelf = self.spare if m % 5 == 0 else None
            shipments_mark_returned([pk], shelf=shelf, inventory_type=kind)

    def close_return_manifest(self, n, m):
        pk = self.pick(ReturnManifest.objects.filter(status="CREATED"), n)
        if pk:
            return_manifest_close(ReturnManifest.objects.get(pk=pk))

    def complete_putaway(self, n, m):
        pk = self.pick(Putaway.objects.filter(status=PutawayStatus.CREATED), n)
        if pk is None:
            return
        shelf = [None, self.world.shelf, self.spare][m % 3]
        kind = "BAD_INVENTORY" if m % 4 == 3 else "GOOD_INVENTORY"
        putaways_complete([pk], shelf=shelf, inventory_type=kind)

    def discard_putaway(self, n, m):
        pk = self.pick(Putaway.objects.filter(status=PutawayStatus.CREATED), n)
        if pk and m % 3 == 0:  # rarer than completing
            putaways_discard([pk], reason="property test")

    def reverse_pickup(self, n, m):
        """A customer return, often taken on to its end right away."""
        pk = self.pick(
            OrderItem.objects.filter(
                status__in=[OrderItemStatus.DISPATCHED, OrderItemStatus.DELIVERED]
            ),
            n,
        )
        if pk:
            pickup = reverse_pickup_create([pk], reason="property test")
            if m % 3:
                self.advance_pickup(pickup.pk, m)

    def advance_pickup(self, n, m):
        """One or two steps of an open reverse pickup."""
        pk = self.pick(
            ReversePickup.objects.filter(
                status__in=[ReversePickupStatus.CREATED, ReversePickupStatus.COURIER_ALLOCATED]
            ),
            n,
        )
        for _ in range(2):
            if pk is None:
                return
            pickup = ReversePickup.objects.get(pk=pk)
            if m % 7 == 0:
                reverse_pickups_cancel([pk], reason="property test")
            elif pickup.status == ReversePickupStatus.CREATED:
                reverse_pickup_allocate_courier(
                    pickup, courier_name="C", courier_code="C", return_awb=f"R{pk}"
                )
            elif pickup.status == ReversePickupStatus.COURIER_ALLOCATED:
                if m % 5 == 0:
                    reverse_pickups_mark_not_received([pk])
                else:
                    reverse_pickups_complete([pk])

    def reship(self, n, m):
        """Reship a dispatched unit, usually after announcing its courier return."""
        pk = self.pick(OrderItem.objects.filter(status=OrderItemStatus.DISPATCHED), n)
        if pk is None:
            return
        shipment_id = OrderItem.objects.get(pk=pk).shipment_id
        if m % 4 and Shipment.objects.get(pk=shipment_id).status in (
            ShipmentStatus.DISPATCHED,
            ShipmentStatus.SHIPPED,
        ):
            shipments_expect_return([shipment_id])
        units_reship([pk], option=ReshipOption.values[m % 3])

    def replace(self, n, m):
        pk = self.pick(
            OrderItem.objects.filter(
                status__in=[OrderItemStatus.DISPATCHED, OrderItemStatus.DELIVERED]
            ),
            n,
        )
        if pk and m % 2:
            units_replace([pk])

    def channel_dispatch(self, n, m):
        """The channel says a unit (or its whole order) went out: as the status sync does."""
        pk = self.pick(OrderItem.objects.filter(status__in=ITEM_BLOCKING_STOCK), n)
        if pk is None:
            return
        ids = [pk]
        if m % 2:
            order_id = OrderItem.objects.get(pk=pk).order_id
            ids = list(
                OrderItem.objects.filter(order_id=order_id, status__in=ITEM_BLOCKING_STOCK)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
        units_dispatch_from_channel(ids, actor="task:status_sync", reason="property test")

    def channel_cancel(self, n, m):
        """The channel cancels the live units of an order (or one of them)."""
        pk = self.pick(
            OrderItem.objects.exclude(status__in=[OrderItemStatus.CANCELLED, *DISPATCHED_UNITS]), n
        )
        if pk is None:
            return
        ids = [pk]
        if m % 2:
            order_id = OrderItem.objects.get(pk=pk).order_id
            ids = list(
                OrderItem.objects.filter(order_id=order_id)
                .exclude(status=OrderItemStatus.CANCELLED)
                .values_list("pk", flat=True)
            )
        units_cancel(ids, reason="cancelled by the channel", by_channel=True)

    def repack(self, n, m):
        """Staff confirm that a packed box lost its cancelled units (its putaway can go on)."""
        pk = self.pick(Shipment.objects.exclude(repack_reason=""), n)
        if pk:
            shipments_repacked([pk])

    def add_stock(self, n, m):
        if m % 3 == 0:
            stock_add(shelf=self.world.shelf, sku=self.world.sku, quantity=1 + n % 3)
            self.added += 1 + n % 3

    # --- the properties ---------------------------------------------------------------------

    def check(self) -> None:
        rows = list(Inventory.objects.values("pk", "quantity", "blocked_quantity"))
        holding = dict(
            OrderItem.objects.filter(status__in=ITEM_BLOCKING_STOCK)
            .values_list("inventory_id")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for row in rows:
            assert 0 <= row["blocked_quantity"] <= row["quantity"], row
            assert row["blocked_quantity"] == holding.get(row["pk"], 0), (row, holding)
        assert set(holding) <= {r["pk"] for r in rows}

        on_shelves = sum(r["quantity"] for r in rows)
        pending = PutawayItem.objects.filter(putaway__status=PutawayStatus.CREATED).count()
        written_off = PutawayItem.objects.filter(putaway__status=PutawayStatus.DISCARDED).count()
        out = OrderItem.objects.filter(
            status__in=DISPATCHED_UNITS, putaway_item__isnull=True
        ).count()
        expected = START + self.added - out - written_off
        assert on_shelves + pending == expected, (on_shelves, pending, out, written_off)

        completed = PutawayItem.objects.filter(putaway__status=PutawayStatus.COMPLETE)
        assert completed.filter(inventory__isnull=True).count() == 0
        per_putaway = Putaway.objects.annotate(n=Count("items")).values_list("item_count", "n")
        assert all(count == n for count, n in per_putaway)
        self.check_ledger()

    @staticmethod
    def check_ledger() -> None:
        """Stock rows = sums of the ledger; each unit's net block in the ledger is its own."""
        assert stock_drift() == []
        blocking = set(
            OrderItem.objects.filter(status__in=ITEM_BLOCKING_STOCK).values_list("pk", flat=True)
        )
        net = dict(
            StockMovement.objects.filter(order_item__isnull=False)
            .values_list("order_item_id")
            .annotate(b=Sum("blocked_change"))
            .order_by()
        )
        for unit, blocked in net.items():
            assert blocked == (1 if unit in blocking else 0), (unit, blocked)
        assert blocking <= {unit for unit, blocked in net.items() if blocked == 1}

    def finish(self) -> None:
        waiting = Shipment.objects.exclude(repack_reason="").values_list("pk", flat=True)
        assert shipments_repacked(list(waiting)).ok
        pending = list(
            Putaway.objects.filter(status=PutawayStatus.CREATED).values_list("pk", flat=True)
        )
        outcome = putaways_complete(pending, shelf=self.spare)
        assert outcome.ok, outcome.failed
        self.check()
        on_shelves = Inventory.objects.aggregate(total=Sum("quantity"))["total"] or 0
        written_off = PutawayItem.objects.filter(putaway__status=PutawayStatus.DISCARDED).count()
        out = OrderItem.objects.filter(
            status__in=DISPATCHED_UNITS, putaway_item__isnull=True
        ).count()
        assert on_shelves == START + self.added - out - written_off


class Tally:
    """Steps run and steps that wrote something (an audit or a ledger row), over a test run."""

    def __init__(self) -> None:
        self.steps = self.succeeded = 0
        self.by_op: dict[str, int] = {}

    def assert_fair_share(self) -> None:
        assert self.steps, "no step ran"
        print(f"{self.succeeded} of {self.steps} steps succeeded: {self.by_op}")  # with -s
        assert self.succeeded * 3 >= self.steps, (self.succeeded, self.steps, self.by_op)


def _written() -> tuple[int, int]:
    return StateChange.objects.count(), StockMovement.objects.count()


def run_steps(traceability: str, steps, *, dispatched: bool = False, tally=None) -> None:
    savepoint = transaction.savepoint()
    tally = tally or Tally()
    try:
        run = Run(traceability, dispatched=dispatched)
        run.check()
        for op, n, m in steps:
            before = _written()
            with TestCase.captureOnCommitCallbacks(execute=True):
                try:
                    run.do(op, n, m)
                except REFUSALS:
                    pass  # a refused step changes nothing; the checks below prove it
                except IntegrityError as exc:  # never expected: a constraint caught a bug
                    raise AssertionError(f"{op}: {exc}") from exc
            tally.steps += 1
            if _written() != before:
                tally.succeeded += 1
                tally.by_op[op] = tally.by_op.get(op, 0) + 1
            run.check()
        with TestCase.captureOnCommitCallbacks(execute=True):
            run.finish()
    finally:
        transaction.savepoint_rollback(savepoint)


# More examples on demand: STOCK_PROPERTY_EXAMPLES=500 pytest tests/test_stock_properties.py
PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("STOCK_PROPERTY_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def test_stock_is_never_negative_nor_counted_twice(db):
    tally = Tally()

    @PROPERTY_SETTINGS
    @given(
        traceability=st.sampled_from(["ITEM", "SKU", "NONE"]),
        steps=st.lists(step, min_size=5, max_size=50),
    )
    def examples(traceability, steps):
        run_steps(traceability, steps, tally=tally)

    examples()
    tally.assert_fair_share()
    assert tally.by_op.get("channel_dispatch") and tally.by_op.get("channel_cancel"), tally.by_op


RETURN_OPS = [
    "expect_return",
    "receive_return",
    "close_return_manifest",
    "complete_putaway",
    "discard_putaway",
    "reverse_pickup",
    "advance_pickup",
    "reship",
    "replace",
    "forward",
    "cancel_unit",
    "channel_cancel",
    "order",
]
return_step = st.tuples(st.sampled_from(RETURN_OPS), st.integers(0, 30), st.integers(0, 30))


def test_returns_from_dispatched_orders_keep_the_stock_right(db):
    """The same properties, starting from dispatched orders, with mostly return steps."""
    tally = Tally()

    @PROPERTY_SETTINGS
    @given(
        traceability=st.sampled_from(["ITEM", "SKU", "NONE"]),
        steps=st.lists(return_step, min_size=3, max_size=30),
    )
    def examples(traceability, steps):
        run_steps(traceability, steps, dispatched=True, tally=tally)

    examples()
    tally.assert_fair_share()


def test_a_long_known_sequence(db):
    """A fixed walk through every kind of step (fails here first if the property breaks)."""
    steps = [
        ("order", 1, 0),
        ("order", 2, 0),
        ("forward", 0, 0),
        ("forward", 0, 0),
        ("forward", 0, 0),
        ("cancel_unit", 0, 0),
        ("forward", 0, 0),
        ("forward", 0, 0),
        ("forward", 0, 0),
        ("force_dispatch", 0, 0),
        ("expect_return", 0, 0),
        ("reship", 0, 1),
        ("receive_return", 0, 1),
        ("close_return_manifest", 0, 0),
        ("complete_putaway", 0, 1),
        ("reverse_pickup", 0, 0),
        ("advance_pickup", 0, 1),
        ("advance_pickup", 0, 1),
        ("discard_putaway", 0, 0),
        ("replace", 0, 1),
        ("add_stock", 1, 0),
        ("cancel_order", 0, 0),
        ("order", 1, 0),
        ("channel_dispatch", 0, 1),
        ("order", 0, 0),
        ("channel_cancel", 0, 1),
    ]
    for level in ("ITEM", "SKU"):
        tally = Tally()
        run_steps(level, steps, tally=tally)
        tally.assert_fair_share()
