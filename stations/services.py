"""The packing station: scan a picklist (or one of its shipments), then every unit of the
shipment it offers, then VALIDATE (or Enter on an empty input) to invoice and label it.

`packing_scan(user, code)` is the whole station: one call per scan, a typed `ScanResult`
back, every refusal changing nothing but the message. A scan runs in a fixed number of
queries (the station row, the shipment's units, at most one look-up of an unknown code, the
save). Invoicing and labelling go through `orders.services` as the user, so they are audited
as the user. After a shipment is packed the next one of the picklist is claimed in its own
transaction (`claim_next`), the one lock of a shipment at a time.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Min, Q
from django.utils import timezone

from inventory.models import Sku
from orders.locks import lock_shipments
from orders.models import (
    OrderItem,
    OrderItemStatus,
    OrderStatus,
    Picklist,
    PicklistItem,
    PicklistStatus,
    Shipment,
    ShipmentStatus,
)
from orders.services import (
    picklist_receive,
    shipment_split,
    shipments_invoice,
    shipments_label_with_channel,
)
from uniware.core.fsm import IllegalTransition
from uniware.core.models import Tenant, Traceability

from .models import ScanOutcome, Station, StationKind
from .scans import (
    CANCEL,
    SPLIT,
    UNDO,
    VALIDATE,
    ScanError,
    ScanResult,
    is_double_fire,
    lock_station,
    remember,
    repeat_ignored,
)

STATE_FIELDS = ("picklist", "shipment", "ticked", "printable")
SPLIT_PERMISSION = "orders.split_shipment"  # what the shipment admin's split action needs


def packing_scan(user, code: str, *, now: datetime | None = None) -> ScanResult:
    """Handle one scan at the user's packing station."""
    code, now = code.strip(), now or timezone.now()
    with transaction.atomic():
        station = lock_station(user, StationKind.PACKING, "shipment__order")
        if is_double_fire(station, code, now):
            return repeat_ignored(station, code)
        before = _state(station)
        result = _handle(station, code, user)
        changed = [f for f in STATE_FIELDS if _state(station)[f] != before[f]]
        remember(station, code, now, result, *changed)
    if station.picklist_id and not station.shipment_id and claim_next(user) is None:
        result = _picklist_finished(station, result)
    return result


def _picklist_finished(station: Station, result: ScanResult) -> ScanResult:
    """Nothing (more) to pack on the picklist: say so, on the page and on the station."""
    if result.outcome == ScanOutcome.DONE:
        result = ScanResult.done(f"{result.message} Picklist finished.")
    else:
        result = ScanResult.refuse(ScanError.NOTHING_OPEN, "No shipment of it waits to be packed.")
    Station.objects.filter(pk=station.pk).update(
        outcome=result.outcome, message=result.message, error=result.error
    )
    return result


def _state(station: Station) -> dict:
    return {
        "picklist": station.picklist_id,
        "shipment": station.shipment_id,
        "ticked": list(station.ticked),
        "printable": station.printable_id,
    }


def _handle(station: Station, code: str, user) -> ScanResult:
    if code == CANCEL:
        station.picklist = station.shipment = None
        station.ticked = []
        return ScanResult.ok("Station cleared: scan a picklist.")
    if station.shipment_id is None:
        if code in ("", VALIDATE, UNDO):
            return ScanResult.refuse(ScanError.NOTHING_OPEN, "Scan a picklist or a shipment.")
        return _start(station, code, user)
    shipment = station.shipment
    if (
        shipment.status == ShipmentStatus.CANCELLED
        or shipment.order.status == OrderStatus.CANCELLED
    ):
        return ScanResult.refuse(
            ScanError.CANCELLED,
            f"Shipment {shipment.code} was cancelled: put its units aside and scan CANCEL.",
        )
    if shipment.order.on_hold:
        return ScanResult.refuse(
            ScanError.ON_HOLD,
            f"Order {shipment.order.code} is on hold: set the parcel aside and scan CANCEL.",
        )
    units = expected_units(shipment)
    if code in ("", VALIDATE):
        return _validate(station, shipment, units, user)
    if code == SPLIT:
        return _split(station, shipment, units, user)
    if code == UNDO:
        if not station.ticked:
            return ScanResult.refuse(ScanError.NOTHING_OPEN, "Nothing to undo.")
        station.ticked = station.ticked[:-1]
        return ScanResult.ok("Last unit taken back.")
    return _tick(station, shipment, units, code)


def expected_units(shipment: Shipment) -> list[OrderItem]:
    """The shipment's units in shelf order (one query)."""
    return list(
        OrderItem.objects.filter(shipment=shipment)
        .select_related("sku", "inventory__shelf")
        .order_by("inventory__shelf__code", "sku__code", "pk")
    )


def _start(station: Station, code: str, user) -> ScanResult:
    """A picklist code, or a shipment's code: take that picklist (receiving it if needed)."""
    picklist = Picklist.objects.filter(code=code).first()
    wanted = None
    if picklist is None:
        item = (
            PicklistItem.objects.filter(shipment__code=code)
            .select_related("picklist")
            .order_by("-picklist_id")
            .first()
        )
        if item is None:
            return ScanResult.refuse(
                ScanError.UNKNOWN_CODE, f"{code}: no picklist or shipment has this code."
            )
        picklist, wanted = item.picklist, item.shipment_id
    if picklist.status == PicklistStatus.CLOSED:
        return ScanResult.refuse(
            ScanError.WRONG_STATUS, f"Picklist {picklist.code} is closed: nothing left to pack."
        )
    if picklist.status == PicklistStatus.CREATED:
        picklist_receive([picklist.pk], actor=user)
    station.picklist, station.ticked = picklist, []
    shipment = _claim(station, wanted) if wanted else None
    if wanted and shipment is None:
        station.picklist = None  # refused: the station stays as it was
        return ScanResult.refuse(
            ScanError.WRONG_STATUS,
            f"{code} is not waiting to be packed, or another station has it.",
        )
    return ScanResult.ok(f"Picklist {picklist.code}: scan the units.")


def claim_next(user) -> Shipment | None:
    """Give the user's packing station the next free shipment of its picklist, in shelf
    order; clear the picklist when none is left. Its own transaction."""
    with transaction.atomic():
        station = lock_station(user, StationKind.PACKING)
        if station.shipment_id or not station.picklist_id:
            return station.shipment
        held = Station.objects.filter(kind=StationKind.PACKING, shipment__isnull=False)
        candidates = (
            PicklistItem.objects.filter(
                picklist_id=station.picklist_id,
                shipment__status=ShipmentStatus.PICKED,
                shipment__order__on_hold=False,
            )
            .exclude(shipment_id__in=held.values("shipment_id"))
            .values("shipment_id")
            .annotate(first_shelf=Min("shelf__code"))
            .order_by("first_shelf", "shipment_id")
            .values_list("shipment_id", flat=True)[:5]
        )
        for shipment_id in candidates:
            shipment = _claim(station, shipment_id)
            if shipment is not None:
                return shipment
        station.picklist = None
        station.save(update_fields=["picklist", "updated_at"])
        return None


def _claim(station: Station, shipment_id: int) -> Shipment | None:
    """Hold the shipment at this station, if it is PICKED and no other station holds it: the
    shipment row is locked (after its order, as `orders.locks` says), and the partial unique
    constraint `one_packing_station_per_shipment` is the last word between two stations."""
    try:
        with transaction.atomic():
            [shipment] = lock_shipments([shipment_id]) or [None]
            if shipment is None or shipment.status != ShipmentStatus.PICKED:
                return None
            if shipment.order.on_hold:
                return None
            taken = Station.objects.filter(kind=StationKind.PACKING, shipment_id=shipment_id)
            if taken.exclude(pk=station.pk).exists():
                return None
            station.shipment, station.ticked = shipment, []
            station.save(update_fields=["picklist", "shipment", "ticked", "updated_at"])
            return shipment
    except IntegrityError:
        return None


def _matches(unit: OrderItem, shipment: Shipment, code: str, item_traceability: bool) -> bool:
    if item_traceability:
        return code == f"{shipment.order.code}/{unit.code}"
    return code in (unit.sku.code, unit.sku.barcode)


def _tick(station: Station, shipment: Shipment, units: list[OrderItem], code: str) -> ScanResult:
    """A unit's code (ITEM traceability) or its SKU's barcode or code: tick one unit."""
    item_traceability = Tenant.get().traceability == Traceability.ITEM
    matching = [u for u in units if _matches(u, shipment, code, item_traceability)]
    if not matching:
        return _not_here(shipment, code, item_traceability)
    live = [u for u in matching if u.status != OrderItemStatus.CANCELLED]
    if not live:
        return ScanResult.refuse(
            ScanError.CANCELLED, f"{code}: this unit was cancelled. Put it aside."
        )
    todo = [u for u in live if u.pk not in station.ticked]
    if not todo and len(live) < len(matching):
        return ScanResult.refuse(
            ScanError.CANCELLED, f"{code}: one of these was cancelled. Put this one aside."
        )
    if not todo:
        return ScanResult.refuse(
            ScanError.EXTRA_UNIT,
            f"{code}: all {len(live)} are scanned already. Put this one back.",
        )
    station.ticked = [*station.ticked, todo[0].pk]
    missing = _missing(units, station.ticked)
    sku = todo[0].sku.code
    if not missing:
        return ScanResult.ok(
            f"{sku} {len(live) - len(todo) + 1}/{len(live)}. All scanned: VALIDATE."
        )
    return ScanResult.ok(f"{sku} {len(live) - len(todo) + 1}/{len(live)}; {len(missing)} to go.")


def _not_here(shipment: Shipment, code: str, item_traceability: bool) -> ScanResult:
    """WRONG_ITEM for a code the system knows, UNKNOWN_CODE otherwise (one query)."""
    if item_traceability and "/" in code:
        order_code, unit_code = code.rsplit("/", 1)
        known = OrderItem.objects.filter(order__code=order_code, code=unit_code).exists()
    else:
        known = Sku.objects.filter(Q(code=code) | Q(barcode=code)).exists()
        if known and item_traceability:
            return ScanResult.refuse(
                ScanError.WRONG_ITEM, f"{code} is a SKU: scan the unit's own code (ITEM)."
            )
    if known:
        return ScanResult.refuse(
            ScanError.WRONG_ITEM, f"{code} is not in shipment {shipment.code}. Put it back."
        )
    return ScanResult.refuse(ScanError.UNKNOWN_CODE, f"{code}: nobody knows this code.")


def _missing(units: list[OrderItem], ticked: list[int]) -> list[OrderItem]:
    done = set(ticked)
    return [u for u in units if u.status != OrderItemStatus.CANCELLED and u.pk not in done]


def _validate(station: Station, shipment: Shipment, units, user) -> ScanResult:
    """Every unit scanned: invoice (PACKED) and label (READY_TO_SHIP), as the user. Units
    missing: refused, never a silent short-ship."""
    missing = _missing(units, station.ticked)
    if missing:
        skus = ", ".join(sorted({u.sku.code for u in missing}))
        return ScanResult.refuse(
            ScanError.INCOMPLETE,
            f"{len(missing)} unit(s) still to scan ({skus}). A partial shipment is not "
            "packed here: a supervisor may scan SPLIT to split the missing units off.",
        )
    if shipment.status == ShipmentStatus.PICKED:
        invoiced = shipments_invoice([shipment.pk], actor=user)
        if not invoiced.ok:
            return ScanResult.refuse(ScanError.REFUSED, _reasons(invoiced))
    # An Easy Ship shipment is booked with Amazon here, inside the scan's transaction (a few
    # seconds; the station and the shipment are this packer's): a booking whose record is
    # rolled back is read back from Amazon the next time (orders.services.channel_labels).
    labelled = shipments_label_with_channel([shipment.pk], actor=user)
    if not labelled.ok:
        return ScanResult.refuse(ScanError.REFUSED, f"Invoiced, but no label: {_reasons(labelled)}")
    [done] = labelled.done
    station.printable, station.shipment, station.ticked = done, None, []
    return ScanResult.done(f"Shipment {done.code} packed, AWB {done.tracking_number}: print.")


def _split(station: Station, shipment: Shipment, units, user) -> ScanResult:
    """A supervisor's confirmation of a partial shipment: the units not scanned go into a new
    shipment through `orders.services.shipment_split` (as the user, who must hold the admin's
    split permission); the station keeps the scanned ones, in a new shipment, to VALIDATE."""
    if not user.has_perm(SPLIT_PERMISSION):
        return ScanResult.refuse(
            ScanError.SUPERVISOR_NEEDED,
            f"A partial shipment needs a supervisor: only a user who may split shipments "
            f"can confirm {shipment.code} with SPLIT.",
        )
    missing = _missing(units, station.ticked)
    if not missing:
        return ScanResult.refuse(ScanError.NOTHING_OPEN, "Nothing is missing: scan VALIDATE.")
    if not station.ticked:
        return ScanResult.refuse(ScanError.NOTHING_OPEN, "No unit scanned yet: nothing to pack.")
    try:
        scanned, rest = shipment_split(shipment, [list(station.ticked)], actor=user)
    except IllegalTransition as exc:
        return ScanResult.refuse(ScanError.REFUSED, f"Not split: {exc}")
    station.shipment = scanned
    return ScanResult.ok(
        f"Split {shipment.code}: {scanned.code} holds the {len(station.ticked)} unit(s) "
        f"scanned (VALIDATE it); {rest.code} keeps the {len(missing)} missing."
    )


def _reasons(outcome) -> str:
    return "; ".join(f"{obj}: {reason}" for obj, reason in outcome.failed)
