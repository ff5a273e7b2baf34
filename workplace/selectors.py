"""The counts behind each role's home page (issue 15), cached like the dashboard's.

Facility work (shipments at each step, picklists, manifests, putaways, return manifests) is
counted per facility, so a tile can say where the work is; the rest per installation. Each
count is one grouped query on an indexed status; together about a dozen queries, at most
twice a minute whatever the size of the tables (`WORK_TTL_SECONDS`)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db.models import Count, Q
from django.utils import timezone

from channels.models import SyncError, SyncErrorState
from imports.models import ImportJob, JobStatus
from inventory.models import Facility, Putaway, PutawayStatus
from listings.models import ChannelListing, PushStatus
from notifications.models import Notification, NotificationState
from orders.models import (
    Manifest,
    ManifestStatus,
    Picklist,
    PicklistStatus,
    ReturnManifest,
    ReturnManifestStatus,
    ReversePickup,
    Shipment,
    ShipmentStatus,
)
from orders.models.returns import REVERSE_PICKUP_OPEN

WORK_TTL_SECONDS = 30
CACHE_KEY = "workplace:figures"
SHIPMENT_STEPS = [
    ShipmentStatus.CREATED,
    ShipmentStatus.PICKING,
    ShipmentStatus.PICKED,
    ShipmentStatus.PACKED,
    ShipmentStatus.READY_TO_SHIP,
    ShipmentStatus.MANIFESTED,
    ShipmentStatus.RETURN_EXPECTED,
]
RECENT_IMPORTS = timedelta(days=7)
PerFacility = dict[int, int]  # facility id -> count


@dataclass
class WorkFigures:
    """Plain data, so it can be cached."""

    facilities: dict[int, str] = field(default_factory=dict)  # id -> code
    shipments: dict[str, PerFacility] = field(default_factory=dict)  # status -> per facility
    picklists_to_receive: PerFacility = field(default_factory=dict)
    manifests_open: PerFacility = field(default_factory=dict)
    putaways_pending: PerFacility = field(default_factory=dict)
    return_manifests_open: PerFacility = field(default_factory=dict)
    reverse_pickups_open: PerFacility = field(default_factory=dict)
    sync_errors_open: int = 0
    notifications_failed: int = 0
    listings_unmapped: int = 0
    listings_failed: int = 0
    imports_with_errors: int = 0
    computed_at: datetime | None = None


def work_figures(*, fresh: bool = False) -> WorkFigures:
    if not fresh:
        cached = cache.get(CACHE_KEY)
        if cached is not None:
            return cached
    figures = compute_work_figures()
    cache.set(CACHE_KEY, figures, WORK_TTL_SECONDS)
    return figures


def _per_facility(queryset) -> PerFacility:
    rows = queryset.order_by().values_list("facility_id").annotate(n=Count("pk"))
    return dict(rows)


def compute_work_figures() -> WorkFigures:
    figures = WorkFigures(computed_at=timezone.now())
    figures.facilities = dict(Facility.objects.values_list("pk", "code"))
    shipments: dict[str, PerFacility] = defaultdict(dict)
    rows = (
        Shipment.objects.filter(status__in=SHIPMENT_STEPS)
        .order_by()
        .values_list("status", "facility_id")
        .annotate(n=Count("pk"))
    )
    for status, facility_id, n in rows:
        shipments[status][facility_id] = n
    figures.shipments = dict(shipments)
    figures.picklists_to_receive = _per_facility(
        Picklist.objects.filter(status=PicklistStatus.CREATED)
    )
    figures.manifests_open = _per_facility(Manifest.objects.filter(status=ManifestStatus.CREATED))
    figures.putaways_pending = _per_facility(Putaway.objects.filter(status=PutawayStatus.CREATED))
    figures.return_manifests_open = _per_facility(
        ReturnManifest.objects.filter(status=ReturnManifestStatus.CREATED)
    )
    figures.reverse_pickups_open = _per_facility(
        ReversePickup.objects.filter(status__in=REVERSE_PICKUP_OPEN)
    )
    _office_counts(figures)
    return figures


def _office_counts(figures: WorkFigures) -> None:
    """What waits for the office, not the floor: syncs, notifications, listings, imports."""
    figures.sync_errors_open = SyncError.objects.filter(state=SyncErrorState.OPEN).count()
    figures.notifications_failed = Notification.objects.filter(
        state=NotificationState.FAILED
    ).count()
    figures.listings_unmapped = ChannelListing.objects.filter(sku__isnull=True).count()
    figures.listings_failed = ChannelListing.objects.filter(push_status=PushStatus.FAILED).count()
    recent = ImportJob.objects.filter(created_at__gte=timezone.now() - RECENT_IMPORTS)
    figures.imports_with_errors = recent.filter(
        Q(status=JobStatus.FAILED) | Q(status=JobStatus.DONE, error_count__gt=0)
    ).count()
