from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import models
from django_fsm import FSMField, transition

from uniware.core.fsm import guard
from uniware.core.models import Tenant, Traceability


class ShipmentStatus(models.TextChoices):
    CREATED = "CREATED"
    LOCATION_NOT_SERVICEABLE = "LOCATION_NOT_SERVICEABLE"
    PICKING = "PICKING"
    PICKED = "PICKED"
    PENDING_CUSTOMIZATION = "PENDING_CUSTOMIZATION"
    CUSTOMIZATION_COMPLETE = "CUSTOMIZATION_COMPLETE"
    PACKED = "PACKED"
    READY_TO_SHIP = "READY_TO_SHIP"
    MANIFESTED = "MANIFESTED"
    DISPATCHED = "DISPATCHED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"
    SPLITTED = "SPLITTED"
    MERGED = "MERGED"
    RETURN_EXPECTED = "RETURN_EXPECTED"
    RETURN_ACKNOWLEDGED = "RETURN_ACKNOWLEDGED"
    RETURNED = "RETURNED"


SHIPMENT_PRE_DISPATCH = [
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
# Force dispatch (uniware-research §6.2): with ITEM traceability only packed shipments may go.
FORCE_DISPATCH_ANY_TRACEABILITY = [
    ShipmentStatus.PACKED,
    ShipmentStatus.READY_TO_SHIP,
    ShipmentStatus.MANIFESTED,
]
FORCE_DISPATCH_SKU_OR_NONE = [
    ShipmentStatus.CREATED,
    ShipmentStatus.PICKING,
    ShipmentStatus.PICKED,
    ShipmentStatus.PENDING_CUSTOMIZATION,
    ShipmentStatus.CUSTOMIZATION_COMPLETE,
    *FORCE_DISPATCH_ANY_TRACEABILITY,
]


_known_traceability: ContextVar[str | None] = ContextVar("known_traceability", default=None)


def tenant_traceability() -> str:
    return _known_traceability.get() or Tenant.get().traceability


@contextmanager
def traceability_known() -> Iterator[str]:
    """Read the tenant's traceability once for a whole bulk operation: the guards below
    otherwise read the Tenant row for every shipment they check."""
    token = _known_traceability.set(Tenant.get().traceability)
    try:
        yield _known_traceability.get()
    finally:
        _known_traceability.reset(token)


@guard("the order is on hold")
def _not_on_hold(shipment: Shipment) -> bool:
    return not shipment.order.on_hold


@guard("no shipping provider or tracking number yet")
def _has_label(shipment: Shipment) -> bool:
    return bool(shipment.shipping_provider_id and shipment.tracking_number)


@guard("with ITEM traceability only PACKED, READY_TO_SHIP or MANIFESTED shipments can be forced")
def _force_dispatch_traceability(shipment: Shipment) -> bool:
    if shipment.status in FORCE_DISPATCH_ANY_TRACEABILITY:
        return True
    return tenant_traceability() != Traceability.ITEM


@guard("it waits for re-packing (units were cancelled after packing): confirm it first")
def _not_waiting_for_repacking(shipment: Shipment) -> bool:
    return not shipment.repack_reason


@guard("with ITEM traceability a return must go through a return manifest and putaway")
def _not_item_traceability(shipment: Shipment) -> bool:
    return tenant_traceability() != Traceability.ITEM


class Shipment(models.Model):
    """A package of units of one order from one facility (Uniware's shipping package)."""

    code = models.CharField(max_length=40, unique=True)
    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="shipments")
    facility = models.ForeignKey("inventory.Facility", on_delete=models.PROTECT)
    status = FSMField(
        max_length=24,
        choices=ShipmentStatus.choices,
        default=ShipmentStatus.CREATED,
        editable=False,
    )
    shipping_provider = models.ForeignKey(
        "inventory.ShippingProvider", null=True, blank=True, on_delete=models.PROTECT
    )
    tracking_number = models.CharField(max_length=60, blank=True, db_index=True)
    courier_status = models.CharField(max_length=60, blank=True)
    manifest = models.ForeignKey(
        "orders.Manifest",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        editable=False,
        related_name="shipments",
    )
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        editable=False,
        help_text="The shipment this one was split from or merged out of.",
    )
    repack_reason = models.CharField(
        "waits for re-packing",
        max_length=255,
        blank=True,
        editable=False,
        help_text="Units cancelled after packing that must be taken out of the box; the "
        "shipment is not manifested or dispatched until staff confirm the re-packing.",
    )
    dispatched_at = models.DateTimeField(null=True, blank=True, editable=False)
    delivered_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "facility"], name="shipment_status_fac_idx")]
        permissions = [
            ("invoice_shipment", "Can invoice (pack) shipments"),
            ("label_shipment", "Can generate shipping labels"),
            ("dispatch_shipment", "Can force dispatch shipments"),
            ("split_shipment", "Can split and merge shipments"),
            ("deliver_shipment", "Can mark shipments shipped or delivered"),
            ("return_shipment", "Can record courier returns (expect, receive, mark returned)"),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def audit_order_id(self) -> int:
        return self.order_id

    @transition(
        field=status, source=ShipmentStatus.CREATED, target=ShipmentStatus.LOCATION_NOT_SERVICEABLE
    )
    def mark_not_serviceable(self) -> None:
        pass

    @transition(
        field=status, source=ShipmentStatus.LOCATION_NOT_SERVICEABLE, target=ShipmentStatus.CREATED
    )
    def mark_serviceable(self) -> None:
        """Serviceability was fixed and re-checked."""

    @transition(
        field=status,
        source=[ShipmentStatus.CREATED, ShipmentStatus.PICKED],
        target=ShipmentStatus.PICKING,
        conditions=[_not_on_hold],
    )
    def pick(self) -> None:
        """Put on a picklist (PICKED → PICKING when staged units go on an invoicing picklist)."""

    @transition(field=status, source=ShipmentStatus.PICKING, target=ShipmentStatus.PICKED)
    def receive(self) -> None:
        """Its picklist was received at the staging or invoicing station."""

    @transition(
        field=status, source=ShipmentStatus.PICKED, target=ShipmentStatus.PENDING_CUSTOMIZATION
    )
    def start_customization(self) -> None:
        pass

    @transition(
        field=status,
        source=ShipmentStatus.PENDING_CUSTOMIZATION,
        target=ShipmentStatus.CUSTOMIZATION_COMPLETE,
    )
    def complete_customization(self) -> None:
        pass

    @transition(
        field=status,
        source=[ShipmentStatus.PICKED, ShipmentStatus.CUSTOMIZATION_COMPLETE],
        target=ShipmentStatus.PACKED,
        conditions=[_not_on_hold],
    )
    def pack(self) -> None:
        """Invoiced and packed."""

    @transition(
        field=status,
        source=ShipmentStatus.PACKED,
        target=ShipmentStatus.READY_TO_SHIP,
        conditions=[_not_on_hold, _has_label],
    )
    def mark_ready_to_ship(self) -> None:
        """Label printed: provider and tracking number known."""

    @transition(
        field=status,
        source=ShipmentStatus.READY_TO_SHIP,
        target=ShipmentStatus.MANIFESTED,
        conditions=[_not_on_hold, _not_waiting_for_repacking],
    )
    def add_to_manifest(self) -> None:
        pass

    @transition(field=status, source=ShipmentStatus.MANIFESTED, target=ShipmentStatus.READY_TO_SHIP)
    def remove_from_manifest(self) -> None:
        pass

    @transition(
        field=status,
        source=ShipmentStatus.MANIFESTED,
        target=ShipmentStatus.DISPATCHED,
        conditions=[_not_waiting_for_repacking],
    )
    def dispatch(self) -> None:
        """Its manifest was closed: handed over to the courier."""

    @transition(
        field=status,
        source=FORCE_DISPATCH_SKU_OR_NONE,
        target=ShipmentStatus.DISPATCHED,
        conditions=[_not_on_hold, _force_dispatch_traceability, _not_waiting_for_repacking],
    )
    def force_dispatch(self) -> None:
        """Dispatch outside a manifest close."""

    @transition(field=status, source=SHIPMENT_PRE_DISPATCH, target=ShipmentStatus.DISPATCHED)
    def dispatch_from_channel(self) -> None:
        """The channel reports it dispatched (status sync, seed 000)."""

    @transition(field=status, source=ShipmentStatus.DISPATCHED, target=ShipmentStatus.SHIPPED)
    def ship(self) -> None:
        """The courier has it in transit."""

    @transition(
        field=status,
        source=[ShipmentStatus.DISPATCHED, ShipmentStatus.SHIPPED],
        target=ShipmentStatus.DELIVERED,
    )
    def deliver(self) -> None:
        pass

    @transition(field=status, source=SHIPMENT_PRE_DISPATCH, target=ShipmentStatus.CANCELLED)
    def cancel(self) -> None:
        """All its units were cancelled."""

    @transition(
        field=status,
        source=[
            ShipmentStatus.CREATED,
            ShipmentStatus.LOCATION_NOT_SERVICEABLE,
            ShipmentStatus.PICKED,
        ],
        target=ShipmentStatus.SPLITTED,
    )
    def split(self) -> None:
        """Its units went into new shipments (PICKED: a short pick split at packing, the new
        shipments stay PICKED on the same picklist)."""

    @transition(
        field=status,
        source=[ShipmentStatus.CREATED, ShipmentStatus.LOCATION_NOT_SERVICEABLE],
        target=ShipmentStatus.MERGED,
    )
    def merge(self) -> None:
        """Its units went into one shipment with its siblings."""

    @transition(
        field=status,
        source=[ShipmentStatus.DISPATCHED, ShipmentStatus.SHIPPED],
        target=ShipmentStatus.RETURN_EXPECTED,
    )
    def expect_return(self) -> None:
        """The courier is bringing it back (RTO) or it was cancelled after dispatch."""

    @transition(
        field=status,
        source=ShipmentStatus.RETURN_EXPECTED,
        target=ShipmentStatus.RETURN_ACKNOWLEDGED,
    )
    def acknowledge_return(self) -> None:
        """Received at the warehouse on a return manifest; awaiting putaway."""

    @transition(
        field=status, source=ShipmentStatus.RETURN_ACKNOWLEDGED, target=ShipmentStatus.RETURNED
    )
    def complete_return(self) -> None:
        """Its putaway completed: stock is back."""

    @transition(
        field=status,
        source=[ShipmentStatus.DISPATCHED, ShipmentStatus.SHIPPED, ShipmentStatus.RETURN_EXPECTED],
        target=ShipmentStatus.RETURNED,
        conditions=[_not_item_traceability],
    )
    def mark_returned(self) -> None:
        """SKU/NONE traceability: the return is completed from the order page."""

    @transition(field=status, source=ShipmentStatus.RETURN_EXPECTED, target=ShipmentStatus.RETURNED)
    def write_off_return(self) -> None:
        """Closed without the goods coming back ("reship immediately & don't expect return")."""
