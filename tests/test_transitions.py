"""Every declared transition and guard of Order, OrderItem, Shipment, Picklist and Manifest.

For each transition and each status value, `apply_transition` either reaches the target (with
an audit row) or raises `IllegalTransition` naming the object, its status and the transition,
and changes nothing: neither the status in the database nor the audit trail.
"""

from __future__ import annotations

import itertools

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from django_fsm import ConcurrentTransition

from orders.models import (
    Manifest,
    ManifestStatus,
    Order,
    OrderItem,
    OrderItemStatus,
    OrderStatus,
    Picklist,
    PicklistStatus,
    Shipment,
    ShipmentStatus,
)
from uniware.core.actors import Actor
from uniware.core.fsm import (
    IllegalTransition,
    apply_transition,
    apply_transitions,
    can_transition,
    states_changed,
)
from uniware.core.models import StateChange, Tenant, Traceability

from .factories import UserFactory

TASK = Actor.of("task:test")

# --- the status values of the seeds (001 and 003) ----------------------------------------


def test_order_statuses_are_the_seed_values():
    assert OrderStatus.values == [
        "PENDING_VERIFICATION",
        "CREATED",
        "PROCESSING",
        "COMPLETE",
        "CANCELLED",
    ]


def test_order_item_statuses_are_the_seed_values_with_the_spelling_fix():
    assert sorted(OrderItemStatus.values) == sorted(
        [
            "CREATED",
            "FULFILLABLE",
            "UNFULFILLABLE",
            "CANCELLED",
            "DISPATCHED",
            "DELIVERED",
            "LOCATION_NOT_SERVICEABLE",
            "MANIFESTED",
            "PICKING_FOR_STAGING",
            "PICKING_FOR_INVOICING",
            "REPLACED",
            "RESHIPPED",
        ]
    )
    assert "LOCATION_NOT_SERVICABLE" not in OrderItemStatus.values  # domain.md spelling fix


def test_shipment_statuses_are_the_seed_values():
    # seed 003's list of forward statuses pushed to channels, in its order
    assert ShipmentStatus.values == [
        "CREATED",
        "LOCATION_NOT_SERVICEABLE",
        "PICKING",
        "PICKED",
        "PENDING_CUSTOMIZATION",
        "CUSTOMIZATION_COMPLETE",
        "PACKED",
        "READY_TO_SHIP",
        "MANIFESTED",
        "DISPATCHED",
        "SHIPPED",
        "DELIVERED",
        "CANCELLED",
        "SPLITTED",
        "MERGED",
        "RETURN_EXPECTED",
        "RETURN_ACKNOWLEDGED",
        "RETURNED",
    ]


def test_picklist_and_manifest_statuses_are_those_of_domain_md():
    assert PicklistStatus.values == ["CREATED", "RECEIVED", "CLOSED"]
    assert ManifestStatus.values == ["CREATED", "CLOSED", "DISCARDED"]


@pytest.mark.parametrize("model", [Order, OrderItem, Shipment, Picklist, Manifest])
def test_status_is_not_editable_by_hand(model):
    assert model._meta.get_field("status").editable is False


# --- the declared transitions: name -> (sources, target) ----------------------------------

PRE_DISPATCH_ITEM = [
    OrderItemStatus.CREATED,
    OrderItemStatus.FULFILLABLE,
    OrderItemStatus.UNFULFILLABLE,
    OrderItemStatus.LOCATION_NOT_SERVICEABLE,
    OrderItemStatus.PICKING_FOR_STAGING,
    OrderItemStatus.PICKING_FOR_INVOICING,
    OrderItemStatus.MANIFESTED,
]
PRE_DISPATCH_SHIPMENT = [
    ShipmentStatus.CREATED,
    ShipmentStatus.LOCATION_NOT_SERVICEABLE,
    ShipmentStatus.PICKING,
    ShipmentStatus.PICKED,
    ShipmentStatus.PENDING_CUSTOMIZATION,
    ShipmentStatus.CUSTOMIZATION_COMPLETE,
    ShipmentStatus.PACKED,
    ShipmentStatus.READY_TO_SHIP,
    ShipmentStatus.MANIFESTED,
]
FORCE_DISPATCH_SKU = [
    ShipmentStatus.CREATED,
    ShipmentStatus.PICKING,
    ShipmentStatus.PICKED,
    ShipmentStatus.PENDING_CUSTOMIZATION,
    ShipmentStatus.CUSTOMIZATION_COMPLETE,
    ShipmentStatus.PACKED,
    ShipmentStatus.READY_TO_SHIP,
    ShipmentStatus.MANIFESTED,
]
FORCE_DISPATCH_ITEM = [
    ShipmentStatus.PACKED,
    ShipmentStatus.READY_TO_SHIP,
    ShipmentStatus.MANIFESTED,
]

TRANSITIONS = {
    Order: {
        "accept": ([OrderStatus.PENDING_VERIFICATION], OrderStatus.CREATED),
        "start_processing": ([OrderStatus.CREATED], OrderStatus.PROCESSING),
        "complete": ([OrderStatus.CREATED, OrderStatus.PROCESSING], OrderStatus.COMPLETE),
        "cancel": (
            [OrderStatus.PENDING_VERIFICATION, OrderStatus.CREATED, OrderStatus.PROCESSING],
            OrderStatus.CANCELLED,
        ),
    },
    OrderItem: {
        "allocate": (
            [
                OrderItemStatus.CREATED,
                OrderItemStatus.UNFULFILLABLE,
                OrderItemStatus.LOCATION_NOT_SERVICEABLE,
            ],
            OrderItemStatus.FULFILLABLE,
        ),
        "mark_unfulfillable": ([OrderItemStatus.CREATED], OrderItemStatus.UNFULFILLABLE),
        "mark_not_serviceable": (
            [OrderItemStatus.CREATED, OrderItemStatus.UNFULFILLABLE, OrderItemStatus.FULFILLABLE],
            OrderItemStatus.LOCATION_NOT_SERVICEABLE,
        ),
        "mark_not_found": (
            [OrderItemStatus.PICKING_FOR_STAGING, OrderItemStatus.PICKING_FOR_INVOICING],
            OrderItemStatus.UNFULFILLABLE,
        ),
        "pick_for_staging": ([OrderItemStatus.FULFILLABLE], OrderItemStatus.PICKING_FOR_STAGING),
        "pick_for_invoicing": (
            [OrderItemStatus.FULFILLABLE, OrderItemStatus.PICKING_FOR_STAGING],
            OrderItemStatus.PICKING_FOR_INVOICING,
        ),
        "manifest": ([OrderItemStatus.PICKING_FOR_INVOICING], OrderItemStatus.MANIFESTED),
        "unmanifest": ([OrderItemStatus.MANIFESTED], OrderItemStatus.PICKING_FOR_INVOICING),
        "dispatch": (
            [
                OrderItemStatus.UNFULFILLABLE,
                OrderItemStatus.FULFILLABLE,
                OrderItemStatus.LOCATION_NOT_SERVICEABLE,
                OrderItemStatus.PICKING_FOR_STAGING,
                OrderItemStatus.PICKING_FOR_INVOICING,
                OrderItemStatus.MANIFESTED,
            ],
            OrderItemStatus.DISPATCHED,
        ),
        "deliver": ([OrderItemStatus.DISPATCHED], OrderItemStatus.DELIVERED),
        "cancel": (PRE_DISPATCH_ITEM, OrderItemStatus.CANCELLED),
        "replace": (
            [OrderItemStatus.DISPATCHED, OrderItemStatus.DELIVERED],
            OrderItemStatus.REPLACED,
        ),
        "reship": ([OrderItemStatus.DISPATCHED], OrderItemStatus.RESHIPPED),
    },
    Shipment: {
        "mark_not_serviceable": ([ShipmentStatus.CREATED], ShipmentStatus.LOCATION_NOT_SERVICEABLE),
        "mark_serviceable": ([ShipmentStatus.LOCATION_NOT_SERVICEABLE], ShipmentStatus.CREATED),
        "pick": ([ShipmentStatus.CREATED, ShipmentStatus.PICKED], ShipmentStatus.PICKING),
        "receive": ([ShipmentStatus.PICKING], ShipmentStatus.PICKED),
        "start_customization": ([ShipmentStatus.PICKED], ShipmentStatus.PENDING_CUSTOMIZATION),
        "complete_customization": (
            [ShipmentStatus.PENDING_CUSTOMIZATION],
            ShipmentStatus.CUSTOMIZATION_COMPLETE,
        ),
        "pack": (
            [ShipmentStatus.PICKED, ShipmentStatus.CUSTOMIZATION_COMPLETE],
            ShipmentStatus.PACKED,
        ),
        "mark_ready_to_ship": ([ShipmentStatus.PACKED], ShipmentStatus.READY_TO_SHIP),
        "add_to_manifest": ([ShipmentStatus.READY_TO_SHIP], ShipmentStatus.MANIFESTED),
        "remove_from_manifest": ([ShipmentStatus.MANIFESTED], ShipmentStatus.READY_TO_SHIP),
        "dispatch": ([ShipmentStatus.MANIFESTED], ShipmentStatus.DISPATCHED),
        "force_dispatch": (FORCE_DISPATCH_SKU, ShipmentStatus.DISPATCHED),
        "dispatch_from_channel": (PRE_DISPATCH_SHIPMENT, ShipmentStatus.DISPATCHED),
        "ship": ([ShipmentStatus.DISPATCHED], ShipmentStatus.SHIPPED),
        "deliver": ([ShipmentStatus.DISPATCHED, ShipmentStatus.SHIPPED], ShipmentStatus.DELIVERED),
        "cancel": (PRE_DISPATCH_SHIPMENT, ShipmentStatus.CANCELLED),
        "split": (  # PICKED: a short pick split at packing (issue 14)
            [
                ShipmentStatus.CREATED,
                ShipmentStatus.LOCATION_NOT_SERVICEABLE,
                ShipmentStatus.PICKED,
            ],
            ShipmentStatus.SPLITTED,
        ),
        "merge": (
            [ShipmentStatus.CREATED, ShipmentStatus.LOCATION_NOT_SERVICEABLE],
            ShipmentStatus.MERGED,
        ),
        "expect_return": (
            [ShipmentStatus.DISPATCHED, ShipmentStatus.SHIPPED],
            ShipmentStatus.RETURN_EXPECTED,
        ),
        "acknowledge_return": (
            [ShipmentStatus.RETURN_EXPECTED],
            ShipmentStatus.RETURN_ACKNOWLEDGED,
        ),
        "complete_return": ([ShipmentStatus.RETURN_ACKNOWLEDGED], ShipmentStatus.RETURNED),
        "mark_returned": (
            [ShipmentStatus.DISPATCHED, ShipmentStatus.SHIPPED, ShipmentStatus.RETURN_EXPECTED],
            ShipmentStatus.RETURNED,
        ),
        "write_off_return": ([ShipmentStatus.RETURN_EXPECTED], ShipmentStatus.RETURNED),
    },
    Picklist: {
        "receive": ([PicklistStatus.CREATED], PicklistStatus.RECEIVED),
        "close": ([PicklistStatus.CREATED, PicklistStatus.RECEIVED], PicklistStatus.CLOSED),
    },
    Manifest: {
        "close": ([ManifestStatus.CREATED], ManifestStatus.CLOSED),
        "discard": ([ManifestStatus.CREATED], ManifestStatus.DISCARDED),
    },
}


def declared(model) -> set[tuple[str, str, str]]:
    field = model._meta.get_field("status")
    return {(t.name, t.source, t.target) for t in field.get_all_transitions(model)}


@pytest.mark.parametrize("model", list(TRANSITIONS), ids=lambda m: m.__name__)
def test_the_table_lists_every_declared_transition(model):
    expected = {
        (name, source, target)
        for name, (sources, target) in TRANSITIONS[model].items()
        for source in sources
    }
    assert declared(model) == expected


# --- objects in any status ---------------------------------------------------------------


_numbers = itertools.count(1)


def make_order(world, status=OrderStatus.CREATED, *, on_hold=False) -> Order:
    n = next(_numbers)
    return Order.objects.create(
        code=f"T-{n}",
        channel=world.channel,
        channel_order_id=f"T-{n}",
        order_date=timezone.now(),
        status=status,
        payment_method="PREPAID",
        ship_pincode="560001",
        on_hold=on_hold,
    )


def make_shipment(
    world, status=ShipmentStatus.CREATED, *, order=None, label=True, code="SP-T1"
) -> Shipment:
    return Shipment.objects.create(
        code=code,
        order=order or make_order(world),
        facility=world.facility,
        status=status,
        shipping_provider=world.provider if label else None,
        tracking_number="AWB1" if label else "",
    )


def make_item(world, status=OrderItemStatus.CREATED, *, stock=True, order=None) -> OrderItem:
    return OrderItem.objects.create(
        order=order or make_order(world),
        code="L1-0",
        channel_order_item_id="L1",
        sku=world.sku,
        status=status,
        facility=world.facility if stock else None,
        inventory=world.inventory if stock else None,
    )


def make(world, model, status):
    if model is Order:
        return make_order(world, status)
    if model is OrderItem:
        return make_item(world, status)
    if model is Shipment:
        return make_shipment(world, status)
    if model is Picklist:
        return Picklist.objects.create(
            code="PL-T1", facility=world.facility, destination="INVOICING", status=status
        )
    return Manifest.objects.create(
        code="MF-T1",
        facility=world.facility,
        channel=world.channel,
        shipping_provider=world.provider,
        status=status,
    )


def audit_rows(obj):
    return StateChange.objects.filter(
        content_type=ContentType.objects.get_for_model(type(obj)), object_id=obj.pk
    )


def db_status(obj) -> str:
    return type(obj).objects.values_list("status", flat=True).get(pk=obj.pk)


def assert_refused(obj, transition: str, *, why: str = "", actor=TASK) -> IllegalTransition:
    status = obj.status
    audit_before = StateChange.objects.count()
    assert not can_transition(obj, transition)
    with pytest.raises(IllegalTransition) as caught:
        apply_transition(obj, transition, actor=actor)
    message = str(caught.value)
    assert str(obj) in message
    assert f"is {status}:" in message
    assert transition.replace("_", " ") in message
    if why:
        assert why in message
    assert caught.value.obj is obj and caught.value.transition == transition
    assert obj.status == status, "the object in memory is unchanged"
    assert db_status(obj) == status, "the database is unchanged"
    assert StateChange.objects.count() == audit_before, "no audit row"
    return caught.value


def cases():
    for model, table in TRANSITIONS.items():
        statuses = model._meta.get_field("status").choices
        for name, (sources, target) in table.items():
            for value, _ in statuses:
                allowed = value in sources
                yield pytest.param(
                    model,
                    name,
                    value,
                    target if allowed else None,
                    id=f"{model.__name__}.{name}-{value}-{'ok' if allowed else 'refused'}",
                )


@pytest.mark.parametrize("model, transition, status, target", list(cases()))
def test_transition_from_every_status(world, model, transition, status, target):
    obj = make(world, model, status)
    if target is None:
        assert_refused(obj, transition)
        return
    change = apply_transition(obj, transition, actor=TASK, reason="test")
    assert (change.from_state, change.to_state) == (status, target)
    assert obj.status == target and db_status(obj) == target
    [row] = audit_rows(obj)
    expected_order = {
        Order: obj.pk,
        OrderItem: getattr(obj, "order_id", None),
        Shipment: getattr(obj, "order_id", None),
    }.get(model)
    assert (row.from_state, row.to_state, row.transition) == (status, target, transition)
    assert (row.actor, row.user_id, row.reason, row.order_id) == (
        "task:test",
        None,
        "test",
        expected_order,
    )
    assert row.object_code == str(obj)


def test_every_status_value_is_exercised():
    exercised = {(m, s) for m, t, s, _ in (c.values for c in cases())}
    for model in TRANSITIONS:
        for value in model._meta.get_field("status").choices:
            assert (model, value[0]) in exercised


# --- guards ------------------------------------------------------------------------------

HOLD_GUARDED = [
    ("pick", ShipmentStatus.CREATED),
    ("pick", ShipmentStatus.PICKED),
    ("pack", ShipmentStatus.PICKED),
    ("pack", ShipmentStatus.CUSTOMIZATION_COMPLETE),
    ("mark_ready_to_ship", ShipmentStatus.PACKED),
    ("add_to_manifest", ShipmentStatus.READY_TO_SHIP),
    *[("force_dispatch", s) for s in FORCE_DISPATCH_SKU],
]


@pytest.mark.parametrize("transition, status", HOLD_GUARDED)
def test_held_order_blocks_shipment_transition(world, transition, status):
    shipment = make_shipment(world, status, order=make_order(world, on_hold=True))
    assert_refused(shipment, transition, why="the order is on hold")
    Order.objects.filter(pk=shipment.order_id).update(on_hold=False)
    shipment.order.on_hold = False
    assert can_transition(shipment, transition)


@pytest.mark.parametrize(
    "provider, tracking",
    [(False, ""), (False, "AWB1"), (True, "")],
    ids=["none", "no-provider", "no-awb"],
)
def test_ready_to_ship_needs_provider_and_tracking_number(world, provider, tracking):
    shipment = make_shipment(world, ShipmentStatus.PACKED, label=False)
    Shipment.objects.filter(pk=shipment.pk).update(
        shipping_provider=world.provider if provider else None, tracking_number=tracking
    )
    shipment.refresh_from_db()
    assert_refused(shipment, "mark_ready_to_ship", why="no shipping provider or tracking number")


@pytest.mark.parametrize("traceability", ["ITEM", "SKU", "NONE"])
@pytest.mark.parametrize("status", ShipmentStatus.values)
def test_force_dispatch_by_traceability(world, traceability, status):
    """uniware-research.md §6.2: ITEM only from PACKED, READY_TO_SHIP, MANIFESTED; SKU and NONE
    also from CREATED, PICKING, PICKED (and the customization steps between PICKED and PACKED)."""
    Tenant.objects.filter(pk=1).update(traceability=traceability)
    shipment = make_shipment(world, status)
    allowed = FORCE_DISPATCH_ITEM if traceability == Traceability.ITEM else FORCE_DISPATCH_SKU
    if status in allowed:
        apply_transition(shipment, "force_dispatch", actor=TASK)
        assert db_status(shipment) == ShipmentStatus.DISPATCHED
    elif status in FORCE_DISPATCH_SKU:  # a declared source, refused by the guard
        assert_refused(shipment, "force_dispatch", why="with ITEM traceability only PACKED")
    else:
        assert_refused(shipment, "force_dispatch")


@pytest.mark.parametrize("traceability", ["ITEM", "SKU", "NONE"])
@pytest.mark.parametrize(
    "status", [ShipmentStatus.DISPATCHED, ShipmentStatus.SHIPPED, ShipmentStatus.RETURN_EXPECTED]
)
def test_mark_returned_is_refused_under_item_traceability(world, traceability, status):
    Tenant.objects.filter(pk=1).update(traceability=traceability)
    shipment = make_shipment(world, status)
    if traceability == Traceability.ITEM:
        assert_refused(shipment, "mark_returned", why="return manifest and putaway")
    else:
        apply_transition(shipment, "mark_returned", actor=TASK)
        assert db_status(shipment) == ShipmentStatus.RETURNED


@pytest.mark.parametrize(
    "transition, status",
    [
        ("allocate", OrderItemStatus.CREATED),
        ("allocate", OrderItemStatus.UNFULFILLABLE),
        ("allocate", OrderItemStatus.LOCATION_NOT_SERVICEABLE),
        ("mark_not_serviceable", OrderItemStatus.CREATED),
        ("mark_not_serviceable", OrderItemStatus.FULFILLABLE),
    ],
)
def test_unit_needs_blocked_stock_to_be_allocated(world, transition, status):
    item = make_item(world, status, stock=False)
    assert_refused(item, transition, why="the unit has no stock blocked")


# --- audit -------------------------------------------------------------------------------


def test_audit_row_names_the_user(world):
    user = UserFactory(username="meera")
    order = make_order(world, OrderStatus.PENDING_VERIFICATION)
    apply_transition(order, "accept", actor=Actor.of(user), reason="called the customer")
    [row] = audit_rows(order)
    assert (row.user, row.actor, row.reason, row.order_id) == (
        user,
        "meera",
        "called the customer",
        order.pk,
    )
    assert (row.from_state, row.to_state, row.transition) == (
        "PENDING_VERIFICATION",
        "CREATED",
        "accept",
    )
    assert (
        row.at is not None and str(row) == f"{order.code}: PENDING_VERIFICATION → CREATED (accept)"
    )


def test_bulk_transition_writes_one_audit_row_each_and_extra_values(world):
    order = make_order(world)
    shipments = [
        make_shipment(world, ShipmentStatus.MANIFESTED, order=order, code=f"SP-{n}")
        for n in range(3)
    ]
    now = timezone.now()
    changes = apply_transitions(
        shipments, "dispatch", actor=TASK, values={"dispatched_at": now}, now=now
    )
    assert [c.to_state for c in changes] == [ShipmentStatus.DISPATCHED] * 3
    for s in shipments:
        s.refresh_from_db()
        assert (s.status, s.dispatched_at, s.updated_at) == (ShipmentStatus.DISPATCHED, now, now)
    rows = StateChange.objects.filter(transition="dispatch", order=order)
    assert rows.count() == 3 and {r.at for r in rows} == {now}


def test_states_changed_signal_carries_the_changes(world):
    seen = []

    def receiver(sender, transition, changes, **kwargs):
        seen.append((sender, transition, [(c.from_state, c.to_state) for c in changes]))

    states_changed.connect(receiver)
    try:
        apply_transition(make_order(world), "start_processing", actor=TASK)
    finally:
        states_changed.disconnect(receiver)
    assert seen == [(Order, "start_processing", [("CREATED", "PROCESSING")])]


def test_one_refused_object_refuses_the_whole_batch(world):
    order = make_order(world)
    good = make_shipment(world, ShipmentStatus.PICKING, order=order, code="SP-1")
    bad = make_shipment(world, ShipmentStatus.CREATED, order=order, code="SP-2")
    with pytest.raises(IllegalTransition, match="SP-2 is CREATED: cannot receive"):
        apply_transitions([good, bad], "receive", actor=TASK)
    assert db_status(good) == ShipmentStatus.PICKING and good.status == ShipmentStatus.PICKING
    assert not StateChange.objects.exists()


# --- stale objects -----------------------------------------------------------------------


def test_stale_object_raises_concurrent_transition_and_changes_nothing(world):
    order = make_order(world)
    fresh = make_item(world, OrderItemStatus.CREATED, order=order)
    stale = OrderItem.objects.create(
        order=order,
        code="L1-1",
        channel_order_item_id="L1",
        sku=world.sku,
        status=OrderItemStatus.UNFULFILLABLE,
        facility=world.facility,
        inventory=world.inventory,
    )
    # someone else allocated `stale` meanwhile
    OrderItem.objects.filter(pk=stale.pk).update(status=OrderItemStatus.FULFILLABLE)
    audit_before = StateChange.objects.count()
    # two groups (CREATED→ and UNFULFILLABLE→FULFILLABLE): the first is written, then undone
    with pytest.raises(ConcurrentTransition, match="changed by someone else"):
        apply_transitions([fresh, stale], "allocate", actor=TASK)
    assert db_status(fresh) == OrderItemStatus.CREATED
    assert db_status(stale) == OrderItemStatus.FULFILLABLE
    assert (fresh.status, stale.status) == (OrderItemStatus.CREATED, OrderItemStatus.UNFULFILLABLE)
    assert StateChange.objects.count() == audit_before


def test_stale_single_object(world):
    shipment = make_shipment(world, ShipmentStatus.READY_TO_SHIP)
    Shipment.objects.filter(pk=shipment.pk).update(status=ShipmentStatus.CANCELLED)
    with pytest.raises(ConcurrentTransition):
        apply_transition(shipment, "add_to_manifest", actor=TASK)
    assert db_status(shipment) == ShipmentStatus.CANCELLED
    assert not audit_rows(shipment).exists()
