"""The forward flow after allocation: picklist → receive → invoice → label → manifest → close
→ ship → deliver, force dispatch, split/merge and manifest discard, with exact stock figures."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType

from inventory.models import Inventory
from orders.models import (
    Invoice,
    Manifest,
    ManifestStatus,
    Order,
    OrderItemStatus,
    OrderStatus,
    Picklist,
    PicklistStatus,
    Shipment,
    ShipmentStatus,
)
from orders.services import (
    manifest_add_shipments,
    manifest_close,
    manifest_create,
    manifest_discard,
    manifest_remove_shipments,
    orders_hold,
    orders_unhold,
    picklist_create,
    picklist_receive,
    shipment_split,
    shipments_deliver,
    shipments_force_dispatch,
    shipments_generate_label,
    shipments_invoice,
    shipments_manifest,
    shipments_merge,
    shipments_ship,
)
from uniware.core.fsm import IllegalTransition
from uniware.core.models import Sequence, StateChange, Tenant, Traceability

from .factories import ChannelFactory, FacilityFactory, ProviderFactory, ShelfFactory

# --- helpers (also used by test_concurrency) ---------------------------------------------


def stock_of(world) -> tuple[int, int]:
    row = Inventory.objects.get(pk=world.inventory.pk)
    return row.quantity, row.blocked_quantity


def unit_statuses(order: Order) -> list[str]:
    return list(order.items.order_by("pk").values_list("status", flat=True))


def shipment_of(order: Order) -> Shipment:
    return Shipment.objects.get(order=order)


def to_picked(shipments: list[Shipment], destination: str = "INVOICING") -> Picklist:
    outcome = picklist_create([s.pk for s in shipments], destination=destination, actor="test")
    assert outcome.ok, outcome.failed
    [picklist] = outcome.created
    assert picklist_receive([picklist.pk], actor="test").ok
    return picklist


def to_packed(shipments: list[Shipment]) -> Picklist:
    picklist = to_picked(shipments)
    outcome = shipments_invoice([s.pk for s in shipments], actor="test")
    assert outcome.ok, outcome.failed
    return picklist


def to_ready(shipments: list[Shipment]) -> None:
    to_packed(shipments)
    outcome = shipments_generate_label([s.pk for s in shipments], actor="test")
    assert outcome.ok, outcome.failed


def to_manifested(world, shipments: list[Shipment]) -> Manifest:
    to_ready(shipments)
    manifest = manifest_create(
        facility=world.facility, channel=world.channel, shipping_provider=world.provider
    )
    outcome = manifest_add_shipments(manifest, [s.pk for s in shipments], actor="test")
    assert outcome.ok, outcome.failed
    return manifest


def status(obj) -> str:
    return type(obj).objects.values_list("status", flat=True).get(pk=obj.pk)


# --- the whole forward flow --------------------------------------------------------------


def test_forward_flow_invoicing_picklist_to_delivery(world):
    order = world.order("FK-1", quantity=2)
    shipment = shipment_of(order)
    assert stock_of(world) == (10, 2)
    assert status(shipment) == ShipmentStatus.CREATED and order.status == OrderStatus.CREATED

    outcome = picklist_create([shipment.pk], destination="INVOICING", actor="picker")
    assert outcome.ok and outcome.done == [shipment]
    [picklist] = outcome.created
    assert picklist.items.count() == 2
    assert picklist.items.filter(shelf=world.shelf).count() == 2
    assert status(shipment) == ShipmentStatus.PICKING
    assert unit_statuses(order) == [OrderItemStatus.PICKING_FOR_INVOICING] * 2
    assert status(order) == OrderStatus.PROCESSING

    assert picklist_receive([picklist.pk], actor="picker").ok
    assert status(picklist) == PicklistStatus.RECEIVED
    assert status(shipment) == ShipmentStatus.PICKED

    outcome = shipments_invoice([shipment.pk], actor="packer")
    assert outcome.ok and outcome.done == [shipment]
    assert status(shipment) == ShipmentStatus.PACKED
    [invoice] = Invoice.objects.filter(shipment=shipment)
    assert invoice.code == "INV-WH1-000001" and invoice.total_amount == 998
    assert status(picklist) == PicklistStatus.CLOSED, "all its shipments are invoiced"

    assert shipments_generate_label([shipment.pk], actor="packer").ok
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.READY_TO_SHIP
    assert shipment.shipping_provider == world.provider
    assert shipment.tracking_number == f"BLUEDART{shipment.pk:010d}"

    outcome = shipments_manifest([shipment.pk], actor="packer")
    assert outcome.ok and outcome.done == [shipment]
    [manifest] = outcome.created
    assert (manifest.channel, manifest.shipping_provider, manifest.facility) == (
        world.channel,
        world.provider,
        world.facility,
    )
    assert status(shipment) == ShipmentStatus.MANIFESTED
    assert unit_statuses(order) == [OrderItemStatus.MANIFESTED] * 2
    assert stock_of(world) == (10, 2), "nothing leaves the shelf before dispatch"

    outcome = manifest_close(manifest, actor="lead")
    assert outcome.ok and outcome.done == [shipment]
    assert status(manifest) == ManifestStatus.CLOSED
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.DISPATCHED and shipment.dispatched_at is not None
    assert unit_statuses(order) == [OrderItemStatus.DISPATCHED] * 2
    assert stock_of(world) == (8, 0)
    assert status(order) == OrderStatus.COMPLETE
    assert status(picklist) == PicklistStatus.CLOSED

    assert shipments_ship([shipment.pk], actor="task:tracking").ok
    assert status(shipment) == ShipmentStatus.SHIPPED
    assert shipments_deliver([shipment.pk], actor="task:tracking").ok
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.DELIVERED and shipment.delivered_at is not None
    assert unit_statuses(order) == [OrderItemStatus.DELIVERED] * 2
    assert status(order) == OrderStatus.COMPLETE
    assert stock_of(world) == (8, 0)

    history = list(
        StateChange.objects.filter(
            content_type=ContentType.objects.get_for_model(Shipment), object_id=shipment.pk
        )
        .order_by("id")
        .values_list("transition", "from_state", "to_state", "actor")
    )
    assert history == [
        ("create", "", "CREATED", "system"),
        ("pick", "CREATED", "PICKING", "picker"),
        ("receive", "PICKING", "PICKED", "picker"),
        ("pack", "PICKED", "PACKED", "packer"),
        ("mark_ready_to_ship", "PACKED", "READY_TO_SHIP", "packer"),
        ("add_to_manifest", "READY_TO_SHIP", "MANIFESTED", "packer"),
        ("dispatch", "MANIFESTED", "DISPATCHED", "lead"),
        ("ship", "DISPATCHED", "SHIPPED", "task:tracking"),
        ("deliver", "SHIPPED", "DELIVERED", "task:tracking"),
    ]
    order_history = list(
        StateChange.objects.filter(
            content_type=ContentType.objects.get_for_model(Order), object_id=order.pk
        )
        .order_by("id")
        .values_list("transition", "to_state")
    )
    assert order_history == [
        ("create", "CREATED"),
        ("start_processing", "PROCESSING"),
        ("complete", "COMPLETE"),
    ]


def test_staging_picklist_then_invoicing_picklist(world):
    order = world.order("FK-1", quantity=2)
    shipment = shipment_of(order)
    staging = to_picked([shipment], destination="STAGING")
    assert unit_statuses(order) == [OrderItemStatus.PICKING_FOR_STAGING] * 2
    assert status(shipment) == ShipmentStatus.PICKED

    outcome = shipments_invoice([shipment.pk])
    assert outcome.done == [] and "not picked for invoicing" in outcome.failed[0][1]
    assert not Invoice.objects.exists()

    refused = picklist_create([shipment.pk], destination="STAGING")
    assert refused.done == [] and "to INVOICING" in refused.failed[0][1]

    invoicing = to_picked([shipment], destination="INVOICING")
    assert unit_statuses(order) == [OrderItemStatus.PICKING_FOR_INVOICING] * 2
    assert status(shipment) == ShipmentStatus.PICKED
    assert shipments_invoice([shipment.pk]).ok
    assert status(shipment) == ShipmentStatus.PACKED
    assert status(staging) == PicklistStatus.CLOSED
    assert status(invoicing) == PicklistStatus.CLOSED


def test_picklist_spans_orders_and_channels_one_per_facility(world):
    other = ChannelFactory(code="AMAZON", name="Amazon")
    a = world.order("FK-1")
    b = world.order("AZ-1")
    Order.objects.filter(pk=b.pk).update(channel=other)
    outcome = picklist_create([shipment_of(a).pk, shipment_of(b).pk], destination="INVOICING")
    assert outcome.ok and len(outcome.created) == 1
    assert outcome.created[0].items.count() == 2
    assert outcome.created[0].code == "PL-000001"


def test_picklist_refuses_shipments_not_ready_to_pick(world):
    order = world.order("FK-1")
    shipment = shipment_of(order)
    to_picked([shipment])
    outcome = picklist_create([shipment.pk], destination="INVOICING")
    assert outcome.done == [] and outcome.created == []
    assert Picklist.objects.count() == 1
    with pytest.raises(ValueError, match="destination 'SHELF'"):
        picklist_create([shipment.pk], destination="SHELF")


def test_receive_twice_is_refused(world):
    picklist = to_picked([shipment_of(world.order("FK-1"))])
    outcome = picklist_receive([picklist.pk])
    assert outcome.done == []
    assert "is RECEIVED: cannot receive" in outcome.failed[0][1]


# --- invoicing and sequences -------------------------------------------------------------


def test_invoice_without_sequence_changes_nothing(db):
    from .factories import make_world

    world = make_world(invoice_sequence=False)
    shipment = shipment_of(world.order("FK-1"))
    picklist = to_picked([shipment])
    states_before = StateChange.objects.count()
    sequences_before = set(Sequence.objects.values_list("name", "facility", "next_value"))
    outcome = shipments_invoice([shipment.pk], actor="packer")
    assert outcome.done == []
    assert outcome.failed == [(shipment.code, "Sequence INVOICE is not defined for facility WH1")]
    assert status(shipment) == ShipmentStatus.PICKED
    assert status(picklist) == PicklistStatus.RECEIVED
    assert not Invoice.objects.exists()
    assert StateChange.objects.count() == states_before
    assert set(Sequence.objects.values_list("name", "facility", "next_value")) == sequences_before
    assert not Sequence.objects.filter(name="INVOICE").exists()


def test_invoice_failure_leaves_sequence_value_unchanged(world):
    """Shipments of a facility without a sequence fail; the others are invoiced with
    consecutive numbers, and the failing facility's lack of numbers costs no number."""
    wh2 = FacilityFactory(code="WH2", priority=2)
    ok = shipment_of(world.order("FK-1"))
    other = shipment_of(world.order("FK-2"))
    Shipment.objects.filter(pk=other.pk).update(facility=wh2)
    to_picked([ok])
    to_picked([Shipment.objects.get(pk=other.pk)])
    outcome = shipments_invoice([ok.pk, other.pk])
    assert outcome.done == [ok]
    assert outcome.failed == [(other.code, "Sequence INVOICE is not defined for facility WH2")]
    assert Sequence.objects.get(name="INVOICE", facility=world.facility).next_value == 2
    assert list(Invoice.objects.values_list("code", flat=True)) == ["INV-WH1-000001"]


def test_facility_invoice_sequence_wins_over_tenant_wide(world):
    Sequence.objects.create(name="INVOICE", facility=None, prefix="T-", next_value=500)
    shipment = shipment_of(world.order("FK-1"))
    to_packed([shipment])
    assert Invoice.objects.get(shipment=shipment).code == "INV-WH1-000001"
    assert Sequence.objects.get(name="INVOICE", facility=None).next_value == 500


def test_tenant_wide_invoice_sequence_is_used_when_facility_has_none(db):
    from .factories import make_world

    world = make_world(invoice_sequence=False)
    Sequence.objects.create(name="INVOICE", facility=None, prefix="T-", padding=4, next_value=41)
    shipment = shipment_of(world.order("FK-1"))
    to_packed([shipment])
    assert Invoice.objects.get(shipment=shipment).code == "T-0041"
    assert Sequence.objects.get(name="INVOICE", facility=None).next_value == 42


def test_invoice_numbers_are_consecutive_in_a_batch(world):
    shipments = [shipment_of(world.order(f"FK-{n}")) for n in range(3)]
    to_packed(shipments)
    codes = sorted(Invoice.objects.values_list("code", flat=True))
    assert codes == ["INV-WH1-000001", "INV-WH1-000002", "INV-WH1-000003"]


# --- labels ------------------------------------------------------------------------------


def test_label_needs_packed_shipment(world):
    shipment = shipment_of(world.order("FK-1"))
    outcome = shipments_generate_label([shipment.pk])
    assert outcome.done == []
    assert "is CREATED: cannot mark ready to ship" in outcome.failed[0][1]


def test_label_uses_given_tracking_number(world):
    shipment = shipment_of(world.order("FK-1"))
    to_packed([shipment])
    assert shipments_generate_label([shipment.pk], tracking_numbers={shipment.pk: "AWB9"}).ok
    shipment.refresh_from_db()
    assert (shipment.status, shipment.tracking_number) == (ShipmentStatus.READY_TO_SHIP, "AWB9")


def test_third_party_shipping_needs_channel_provider_and_tracking(world):
    order = world.order("FK-1", third_party_shipping=True, pincode="999999", ship_state="Karnataka")
    shipment = shipment_of(order)
    assert shipment.shipping_provider is None
    to_packed([shipment])
    outcome = shipments_generate_label([shipment.pk])
    assert outcome.done == [] and "channel ships this order" in outcome.failed[0][1]
    assert status(shipment) == ShipmentStatus.PACKED
    Shipment.objects.filter(pk=shipment.pk).update(shipping_provider=world.provider)
    assert shipments_generate_label([shipment.pk], tracking_numbers={shipment.pk: "FK123"}).ok
    shipment.refresh_from_db()
    assert (shipment.status, shipment.tracking_number) == (ShipmentStatus.READY_TO_SHIP, "FK123")


# --- manifests ---------------------------------------------------------------------------


def test_manifest_takes_only_same_channel_provider_and_facility(world):
    good = shipment_of(world.order("FK-1"))
    other_channel = shipment_of(world.order("FK-2"))
    other_provider = shipment_of(world.order("FK-3"))
    other_facility = shipment_of(world.order("FK-4"))
    to_ready([good, other_channel, other_provider, other_facility])
    amazon = ChannelFactory(code="AMAZON", name="Amazon")
    Order.objects.filter(pk=other_channel.order_id).update(channel=amazon)
    dtdc = ProviderFactory(code="DTDC", name="DTDC")
    Shipment.objects.filter(pk=other_provider.pk).update(shipping_provider=dtdc)
    wh2 = FacilityFactory(code="WH2", priority=2)
    Shipment.objects.filter(pk=other_facility.pk).update(facility=wh2)

    manifest = manifest_create(
        facility=world.facility, channel=world.channel, shipping_provider=world.provider
    )
    outcome = manifest_add_shipments(
        manifest, [good.pk, other_channel.pk, other_provider.pk, other_facility.pk]
    )
    assert outcome.done == [good]
    reasons = dict(outcome.failed)
    assert "another channel than FLIPKART" in reasons[other_channel.code]
    assert "DTDC, not BLUEDART" in reasons[other_provider.code]
    assert "ships from WH2" in reasons[other_facility.code]
    for s in (other_channel, other_provider, other_facility):
        assert status(s) == ShipmentStatus.READY_TO_SHIP
        assert Shipment.objects.get(pk=s.pk).manifest_id is None
    assert Shipment.objects.get(pk=good.pk).manifest_id == manifest.pk


def test_shipments_manifest_groups_by_channel_and_provider(world):
    a = shipment_of(world.order("FK-1"))
    b = shipment_of(world.order("FK-2"))
    to_ready([a, b])
    Order.objects.filter(pk=b.order_id).update(channel=ChannelFactory(code="AMAZON"))
    outcome = shipments_manifest([a.pk, b.pk])
    assert outcome.ok and len(outcome.created) == 2
    assert {m.channel.code for m in outcome.created} == {"FLIPKART", "AMAZON"}
    # a second call reuses the open manifest
    c = shipment_of(world.order("FK-3"))
    to_ready([c])
    again = shipments_manifest([c.pk])
    manifest_of = dict(Shipment.objects.values_list("pk", "manifest_id"))
    assert again.created == [] and manifest_of[c.pk] == manifest_of[a.pk]


def test_closed_manifest_takes_no_shipments_and_closes_once(world):
    a = shipment_of(world.order("FK-1"))
    manifest = to_manifested(world, [a])
    assert manifest_close(manifest).ok
    b = shipment_of(world.order("FK-2"))
    to_ready([b])
    with pytest.raises(IllegalTransition, match="is CLOSED"):
        manifest_add_shipments(manifest, [b.pk])
    with pytest.raises(
        IllegalTransition, match=f"Manifest {manifest.code} is CLOSED: cannot close"
    ):
        manifest_close(manifest)
    assert stock_of(world) == (9, 1)


def test_close_empty_manifest_is_refused(world):
    manifest = manifest_create(
        facility=world.facility, channel=world.channel, shipping_provider=world.provider
    )
    with pytest.raises(IllegalTransition, match="it has no shipments"):
        manifest_close(manifest)
    assert status(manifest) == ManifestStatus.CREATED


def test_remove_from_manifest_and_discard_only_when_empty(world):
    shipment = shipment_of(world.order("FK-1"))
    manifest = to_manifested(world, [shipment])
    with pytest.raises(IllegalTransition, match="still has shipments"):
        manifest_discard(manifest)
    assert status(manifest) == ManifestStatus.CREATED

    outcome = manifest_remove_shipments(manifest, [shipment.pk])
    assert outcome.ok
    shipment.refresh_from_db()
    assert (shipment.status, shipment.manifest_id) == (ShipmentStatus.READY_TO_SHIP, None)
    assert unit_statuses(shipment.order) == [OrderItemStatus.PICKING_FOR_INVOICING]

    manifest_discard(manifest)
    assert status(manifest) == ManifestStatus.DISCARDED
    with pytest.raises(IllegalTransition, match="is DISCARDED: cannot discard"):
        manifest_discard(manifest)


def test_close_with_held_order_is_refused_and_changes_nothing(world):
    shipment = shipment_of(world.order("FK-1"))
    manifest = to_manifested(world, [shipment])
    assert orders_hold([shipment.order_id], reason="customer called").ok
    with pytest.raises(IllegalTransition, match="orders on hold"):
        manifest_close(manifest)
    assert status(manifest) == ManifestStatus.CREATED
    assert status(shipment) == ShipmentStatus.MANIFESTED
    assert stock_of(world) == (10, 1)


def test_manifest_close_dispatches_many_and_consumes_exact_stock(world):
    orders = [world.order(f"FK-{n}", quantity=2) for n in range(4)]
    shipments = [shipment_of(o) for o in orders]
    manifest = to_manifested(world, shipments)
    assert stock_of(world) == (10, 8)
    outcome = manifest_close(manifest, actor="lead")
    assert sorted(s.pk for s in outcome.done) == sorted(s.pk for s in shipments)
    assert stock_of(world) == (2, 0)
    assert set(Shipment.objects.values_list("status", flat=True)) == {ShipmentStatus.DISPATCHED}
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.COMPLETE}
    assert StateChange.objects.filter(transition="dispatch", actor="lead").count() == 4 + 8


# --- hold --------------------------------------------------------------------------------


def test_held_order_is_not_picked_invoiced_or_labelled(world):
    order = world.order("FK-1")
    shipment = shipment_of(order)
    assert orders_hold([order.pk], actor="sales", reason="address check").ok
    outcome = picklist_create([shipment.pk], destination="INVOICING")
    assert outcome.done == [] and "the order is on hold" in outcome.failed[0][1]
    assert not Picklist.objects.exists()

    orders_unhold([order.pk], actor="sales")
    picklist = to_picked([shipment])
    orders_hold([order.pk])
    outcome = shipments_invoice([shipment.pk])
    assert outcome.done == [] and "the order is on hold" in outcome.failed[0][1]
    assert status(shipment) == ShipmentStatus.PICKED and status(picklist) == PicklistStatus.RECEIVED
    assert not Invoice.objects.exists()
    held = StateChange.objects.filter(order=order, transition="hold").order_by("id").first()
    assert (held.actor, held.reason) == ("sales", "address check")


def test_hold_twice_and_hold_complete_order_are_refused(world):
    order = world.order("FK-1")
    assert orders_hold([order.pk]).ok
    assert orders_hold([order.pk]).failed == [(order.code, "already on hold")]
    assert orders_unhold([order.pk]).ok
    assert orders_unhold([order.pk]).failed == [(order.code, "not on hold")]
    shipments_force_dispatch([shipment_of(order).pk])
    assert orders_hold([order.pk]).failed == [
        (order.code, "order is COMPLETE: nothing left to hold")
    ]


# --- force dispatch ----------------------------------------------------------------------


def test_force_dispatch_invoices_first_and_consumes_stock(world):
    order = world.order("FK-1", quantity=3)
    shipment = shipment_of(order)
    outcome = shipments_force_dispatch([shipment.pk], actor="lead", reason="courier at door")
    assert outcome.ok and outcome.done == [shipment]
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.DISPATCHED and shipment.dispatched_at is not None
    assert Invoice.objects.get(shipment=shipment).code == "INV-WH1-000001"
    assert unit_statuses(order) == [OrderItemStatus.DISPATCHED] * 3
    assert stock_of(world) == (7, 0)
    assert status(order) == OrderStatus.COMPLETE
    row = StateChange.objects.get(object_id=shipment.pk, transition="force_dispatch")
    assert (row.actor, row.reason, row.from_state) == ("lead", "courier at door", "CREATED")


def test_force_dispatch_keeps_existing_invoice(world):
    shipment = shipment_of(world.order("FK-1"))
    to_packed([shipment])
    assert shipments_force_dispatch([shipment.pk]).ok
    assert Invoice.objects.filter(shipment=shipment).count() == 1
    assert Sequence.objects.get(name="INVOICE").next_value == 2


def test_force_dispatch_without_sequence_changes_nothing(db):
    from .factories import make_world

    world = make_world(invoice_sequence=False)
    order = world.order("FK-1")
    shipment = shipment_of(order)
    outcome = shipments_force_dispatch([shipment.pk])
    assert outcome.failed == [(shipment.code, "Sequence INVOICE is not defined for facility WH1")]
    assert status(shipment) == ShipmentStatus.CREATED
    assert unit_statuses(order) == [OrderItemStatus.FULFILLABLE]
    assert stock_of(world) == (10, 1)
    assert not Invoice.objects.exists()


def test_force_dispatch_under_item_traceability_needs_packed(world):
    Tenant.objects.filter(pk=1).update(traceability=Traceability.ITEM)
    created = shipment_of(world.order("FK-1"))
    packed = shipment_of(world.order("FK-2"))
    to_packed([packed])
    outcome = shipments_force_dispatch([created.pk, packed.pk])
    assert outcome.done == [packed]
    assert "only PACKED, READY_TO_SHIP or MANIFESTED" in dict(outcome.failed)[created.code]
    assert status(created) == ShipmentStatus.CREATED
    assert stock_of(world) == (9, 1)


def test_force_dispatch_of_held_order_is_refused(world):
    order = world.order("FK-1")
    orders_hold([order.pk])
    outcome = shipments_force_dispatch([shipment_of(order).pk])
    assert outcome.done == [] and "the order is on hold" in outcome.failed[0][1]
    assert stock_of(world) == (10, 1)


def test_force_dispatch_twice_dispatches_once(world):
    shipment = shipment_of(world.order("FK-1"))
    assert shipments_force_dispatch([shipment.pk]).ok
    again = shipments_force_dispatch([shipment.pk])
    assert again.done == [] and "is DISPATCHED: cannot force dispatch" in again.failed[0][1]
    assert stock_of(world) == (9, 0)


# --- split and merge ---------------------------------------------------------------------


def test_split_then_merge_shipments_of_one_order(world):
    order = world.order("FK-1", quantity=3)
    original = shipment_of(order)
    units = list(order.items.order_by("pk"))
    parts = shipment_split(original, [[units[0].pk]], actor="lead")
    assert len(parts) == 2
    assert status(original) == ShipmentStatus.SPLITTED
    assert [list(p.items.values_list("pk", flat=True)) for p in parts] == [
        [units[0].pk],
        [units[1].pk, units[2].pk],
    ]
    assert all(p.parent_id == original.pk and p.status == ShipmentStatus.CREATED for p in parts)
    assert stock_of(world) == (10, 3), "splitting moves no stock"

    merged = shipments_merge([p.pk for p in parts], actor="lead")
    assert merged.items.count() == 3 and merged.order_id == order.pk
    assert {status(p) for p in parts} == {ShipmentStatus.MERGED}
    assert status(merged) == ShipmentStatus.CREATED
    # the merged shipment goes through the flow as usual
    to_packed([merged])
    assert status(merged) == ShipmentStatus.PACKED


def test_split_needs_two_groups_and_known_units(world):
    order = world.order("FK-1", quantity=2)
    shipment = shipment_of(order)
    other_unit = world.order("FK-2").items.get()
    with pytest.raises(IllegalTransition, match="at least two non-empty groups"):
        shipment_split(shipment, [list(order.items.values_list("pk", flat=True))])
    with pytest.raises(IllegalTransition, match="are not in it"):
        shipment_split(shipment, [[other_unit.pk]])
    assert status(shipment) == ShipmentStatus.CREATED
    assert Shipment.objects.count() == 2


def test_merge_refuses_shipments_of_different_orders(world):
    a = shipment_of(world.order("FK-1"))
    b = shipment_of(world.order("FK-2"))
    with pytest.raises(IllegalTransition, match="belongs to order FLIPKART-FK-2"):
        shipments_merge([a.pk, b.pk])
    assert {status(a), status(b)} == {ShipmentStatus.CREATED}
    assert Shipment.objects.count() == 2


def test_split_refused_while_picking(world):
    """A shipment on a picklist not yet received cannot split (its units are on their way);
    once PICKED it may (a short pick at packing, see test_stations_split.py)."""
    order = world.order("FK-1", quantity=2)
    shipment = shipment_of(order)
    picklist_create([shipment.pk], destination="INVOICING")
    with pytest.raises(IllegalTransition, match="is PICKING: cannot split"):
        shipment_split(shipment, [[order.items.first().pk]])
    assert status(shipment) == ShipmentStatus.PICKING


def test_facility_sequence_for_shipment_codes(world):
    """SHIPMENT numbers come from the tenant-wide sequence of the migration unless the
    facility has its own."""
    first = shipment_of(world.order("FK-1"))
    assert first.code == "SP-000001"
    Sequence.objects.create(name="SHIPMENT", facility=world.facility, prefix="WH1-S", padding=3)
    second = shipment_of(world.order("FK-2"))
    assert second.code == "WH1-S001"


def test_location_not_serviceable_shipment_cannot_be_picked_or_forced(world):
    order = world.order("FK-1", pincode="110001")
    shipment = shipment_of(order)
    assert status(shipment) == ShipmentStatus.LOCATION_NOT_SERVICEABLE
    outcome = picklist_create([shipment.pk], destination="INVOICING")
    assert outcome.done == [] and "is LOCATION_NOT_SERVICEABLE: cannot pick" in outcome.failed[0][1]
    forced = shipments_force_dispatch([shipment.pk])
    assert forced.done == [] and "cannot force dispatch" in forced.failed[0][1]
    assert stock_of(world) == (10, 1) and not Invoice.objects.exists()


def test_second_shelf_units_get_their_shelf_on_the_picklist(world):
    shelf = ShelfFactory(facility=world.facility, code="B7")
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=1)
    Inventory.objects.create(facility=world.facility, shelf=shelf, sku=world.sku, quantity=5)
    order = world.order("FK-1", quantity=2)
    outcome = picklist_create([shipment_of(order).pk], destination="INVOICING")
    shelves = sorted(outcome.created[0].items.values_list("shelf__code", flat=True))
    assert shelves == ["A1", "B7"]


def test_force_dispatch_closes_picklists_with_nothing_left_to_pick(world):
    a = shipment_of(world.order("FK-1"))
    b = shipment_of(world.order("FK-2"))
    c = shipment_of(world.order("FK-3"))
    received = to_picked([a, b])
    [unreceived] = picklist_create([c.pk], destination="INVOICING").created
    assert shipments_force_dispatch([a.pk, c.pk]).ok
    assert status(received) == PicklistStatus.RECEIVED, "b still waits for invoicing"
    assert status(unreceived) == PicklistStatus.CLOSED, "nothing left to pick"
    assert shipments_force_dispatch([b.pk]).ok
    assert status(received) == PicklistStatus.CLOSED
    assert stock_of(world) == (7, 0)


def test_close_skips_a_shipment_dispatched_after_the_list_was_read(world, monkeypatch):
    """Between reading the manifest's shipments and locking them, another process
    force-dispatched one: the close dispatches the others instead of failing."""
    from orders.services import fulfilment

    a = shipment_of(world.order("FK-1"))
    b = shipment_of(world.order("FK-2"))
    manifest = to_manifested(world, [a, b])
    real_lock = fulfilment.lock_shipments

    def lock_after_someone_else_dispatched(ids):
        ids = list(ids)
        monkeypatch.setattr(fulfilment, "lock_shipments", real_lock)
        assert shipments_force_dispatch([b.pk], actor="other").ok
        return real_lock(ids)

    monkeypatch.setattr(fulfilment, "lock_shipments", lock_after_someone_else_dispatched)
    outcome = manifest_close(manifest, actor="lead")
    assert outcome.done == [a]
    assert status(manifest) == ManifestStatus.CLOSED
    assert stock_of(world) == (8, 0), "each unit consumed once"
    b_dispatched = StateChange.objects.filter(object_code=b.code, to_state="DISPATCHED")
    assert list(b_dispatched.values_list("transition", "actor")) == [("force_dispatch", "other")]
