"""The manifest handover station: scan each parcel's AWB (or shipment code) as it goes on
the courier's pile; CLOSE dispatches the manifest and offers its handover sheet.

The station holds one open manifest at a time, that of the first parcel's route (facility,
channel, provider): `shipments_manifest` opens it or continues the route's open one (and
settles two stations opening it at once), `manifest_add_shipments` adds the next parcels.
A parcel of another route, not READY_TO_SHIP, on hold or cancelled is refused with the
reason, changing nothing. Every action goes through `orders.services` as the user.
"""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from orders.models import ManifestStatus, Shipment, ShipmentStatus
from orders.services import manifest_add_shipments, manifest_close, shipments_manifest
from uniware.core.fsm import IllegalTransition

from .models import Station, StationKind
from .scans import (
    CANCEL,
    CLOSE,
    ScanError,
    ScanResult,
    is_double_fire,
    lock_station,
    remember,
    repeat_ignored,
)

STATE_FIELDS = ("manifest", "handed_over")


def manifest_scan(user, code: str, *, now: datetime | None = None) -> ScanResult:
    """Handle one scan at the user's manifest handover station."""
    code, now = code.strip(), now or timezone.now()
    with transaction.atomic():
        station = lock_station(user, StationKind.MANIFEST, "manifest")
        if is_double_fire(station, code, now):
            return repeat_ignored(station, code)
        before = {f: getattr(station, f"{f}_id") for f in STATE_FIELDS}
        if station.manifest_id and station.manifest.status != ManifestStatus.CREATED:
            station.manifest = None  # closed or discarded elsewhere
        result = _handle(station, code, user)
        changed = [f for f in STATE_FIELDS if getattr(station, f"{f}_id") != before[f]]
        remember(station, code, now, result, *changed)
    return result


def _handle(station: Station, code: str, user) -> ScanResult:
    if code == CLOSE:
        return _close(station, user)
    if code == CANCEL:
        station.manifest = None
        return ScanResult.ok("Station cleared; the manifest stays open.")
    if not code:
        return ScanResult.refuse(ScanError.NOTHING_OPEN, "Scan a parcel's AWB.")
    shipment = (
        Shipment.objects.select_related("order__channel", "shipping_provider")
        .filter(Q(tracking_number=code) | Q(code=code))
        .order_by("pk")
        .first()
    )
    problem = _refusal(station, shipment, code)
    if problem:
        return problem
    try:
        if station.manifest_id:
            outcome = manifest_add_shipments(station.manifest, [shipment.pk], actor=user)
        else:
            outcome = shipments_manifest([shipment.pk], actor=user)
    except (IllegalTransition, ValidationError) as exc:
        return ScanResult.refuse(ScanError.REFUSED, f"{shipment.code}: {exc}")
    if not outcome.ok:
        reasons = "; ".join(reason for _, reason in outcome.failed)
        return ScanResult.refuse(ScanError.REFUSED, f"{shipment.code}: {reasons}")
    manifest = outcome.done[0].manifest
    station.manifest = manifest
    count = manifest_count(manifest.pk)
    return ScanResult.ok(f"{shipment.code} on {manifest.code}: {count} parcel(s).")


def _refusal(station: Station, shipment: Shipment | None, code: str) -> ScanResult | None:
    if shipment is None:
        return ScanResult.refuse(ScanError.UNKNOWN_CODE, f"{code}: no shipment has this AWB.")
    if shipment.status == ShipmentStatus.CANCELLED:
        return ScanResult.refuse(
            ScanError.CANCELLED, f"{shipment.code} is cancelled: keep it back."
        )
    if shipment.order.on_hold:
        return ScanResult.refuse(
            ScanError.ON_HOLD, f"Order {shipment.order.code} is on hold: keep the parcel back."
        )
    if shipment.status != ShipmentStatus.READY_TO_SHIP:
        return ScanResult.refuse(
            ScanError.WRONG_STATUS,
            f"{shipment.code} is {shipment.status}: only READY_TO_SHIP parcels are handed over.",
        )
    manifest = station.manifest
    if manifest and (
        shipment.order.channel_id != manifest.channel_id
        or shipment.shipping_provider_id != manifest.shipping_provider_id
        or shipment.facility_id != manifest.facility_id
    ):
        return ScanResult.refuse(
            ScanError.OTHER_ROUTE,
            f"{shipment.code} goes by {shipment.order.channel} / {shipment.shipping_provider}; "
            f"manifest {manifest.code} is another pile. CLOSE it first.",
        )
    return None


def manifest_count(manifest_id: int) -> int:
    """The parcels on the manifest (the station's running count)."""
    return Shipment.objects.filter(manifest_id=manifest_id).count()


def _close(station: Station, user) -> ScanResult:
    """Dispatch the manifest and offer its handover sheet."""
    manifest = station.manifest
    if manifest is None:
        return ScanResult.refuse(ScanError.NOTHING_OPEN, "No manifest open at this station.")
    try:
        closed = manifest_close(manifest, actor=user)
    except (IllegalTransition, ValidationError) as exc:
        return ScanResult.refuse(ScanError.REFUSED, f"{manifest.code} not closed: {exc}")
    station.manifest = None
    station.handed_over = manifest
    return ScanResult.done(
        f"Manifest {manifest.code} closed: {len(closed.done)} parcel(s) dispatched. "
        "Print the handover sheet."
    )
