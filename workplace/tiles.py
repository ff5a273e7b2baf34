"""Each role's home page: the tiles of work waiting for it (issue 15).

A tile counts one kind of work and links to the list filtered to it; facility work also says
how much waits in each facility, each with its own link. A user sees the tiles of every role
they hold (a superuser: Admin's), and only tiles whose list they may open.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib import admin

from channels.models import SyncError
from imports.models import ImportJob
from inventory.models import Putaway
from listings.models import ChannelListing
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
from uniware.core.admin_utils import changelist_url

from .selectors import PerFacility, WorkFigures


@dataclass
class Tile:
    key: str
    label: str
    hint: str
    count: int
    url: str
    by_facility: list[tuple[str, int, str]] = field(default_factory=list)  # code, n, url
    attention: bool = False  # something went wrong, not just the next step


@dataclass
class TileSpec:
    label: str
    hint: str
    model: type
    params: dict
    count: Callable[[WorkFigures], int | PerFacility]
    attention: bool = False


def _shipments(status: str) -> Callable[[WorkFigures], PerFacility]:
    return lambda f: f.shipments.get(status, {})


SPECS: dict[str, TileSpec] = {
    "to_pick": TileSpec(
        "To pick",
        "shipments: create a picklist",
        Shipment,
        {"status__exact": ShipmentStatus.CREATED},
        _shipments(ShipmentStatus.CREATED),
    ),
    "picklists": TileSpec(
        "Picklists to receive",
        "picked units arriving",
        Picklist,
        {"status__exact": PicklistStatus.CREATED},
        lambda f: f.picklists_to_receive,
    ),
    "to_invoice": TileSpec(
        "To invoice and pack",
        "shipments picked",
        Shipment,
        {"status__exact": ShipmentStatus.PICKED},
        _shipments(ShipmentStatus.PICKED),
    ),
    "to_label": TileSpec(
        "To label",
        "shipments packed",
        Shipment,
        {"status__exact": ShipmentStatus.PACKED},
        _shipments(ShipmentStatus.PACKED),
    ),
    "to_manifest": TileSpec(
        "To hand over",
        "shipments ready to ship: add to a manifest",
        Shipment,
        {"status__exact": ShipmentStatus.READY_TO_SHIP},
        _shipments(ShipmentStatus.READY_TO_SHIP),
    ),
    "manifests": TileSpec(
        "Manifests to close",
        "open manifests: dispatch them",
        Manifest,
        {"status__exact": ManifestStatus.CREATED},
        lambda f: f.manifests_open,
    ),
    "returns_expected": TileSpec(
        "Returns expected",
        "courier returns on their way back",
        Shipment,
        {"status__exact": ShipmentStatus.RETURN_EXPECTED},
        _shipments(ShipmentStatus.RETURN_EXPECTED),
    ),
    "return_manifests": TileSpec(
        "Return manifests open",
        "receive and close them",
        ReturnManifest,
        {"status__exact": ReturnManifestStatus.CREATED},
        lambda f: f.return_manifests_open,
    ),
    "pickups": TileSpec(
        "Reverse pickups open",
        "customer returns being collected",
        ReversePickup,
        {"status__in": ",".join(REVERSE_PICKUP_OPEN)},
        lambda f: f.reverse_pickups_open,
    ),
    "putaways": TileSpec(
        "Putaways pending",
        "units to put back on shelves",
        Putaway,
        {},
        lambda f: f.putaways_pending,
    ),
    "sync_errors": TileSpec(
        "Sync errors open",
        "orders a channel sync could not follow",
        SyncError,
        {},
        lambda f: f.sync_errors_open,
        attention=True,
    ),
    "notifications": TileSpec(
        "Notifications failed",
        "channels not told: retry or discard",
        Notification,
        {"state__exact": NotificationState.FAILED},
        lambda f: f.notifications_failed,
        attention=True,
    ),
    "unmapped": TileSpec(
        "Unmapped listings",
        "their orders wait: map them to SKUs",
        ChannelListing,
        {"needs": "unmapped"},
        lambda f: f.listings_unmapped,
        attention=True,
    ),
    "push_failed": TileSpec(
        "Inventory pushes failed",
        "listings a channel refused",
        ChannelListing,
        {"needs": "failed"},
        lambda f: f.listings_failed,
        attention=True,
    ),
    "imports": TileSpec(
        "Imports with errors",
        "last 7 days: fix the rows and upload again",
        ImportJob,
        {},
        lambda f: f.imports_with_errors,
        attention=True,
    ),
}

FLOOR = ["to_pick", "picklists", "to_invoice", "to_label", "to_manifest", "manifests"]
RETURNS = ["returns_expected", "return_manifests", "pickups", "putaways"]
OFFICE = ["sync_errors", "notifications", "unmapped", "push_failed", "imports"]
ROLE_TILES: dict[str, list[str]] = {
    "Pick and Pack": FLOOR,
    "Warehouse Manager": [*FLOOR, "returns_expected", "putaways"],
    "Sales Manager": OFFICE,
    "Returns Manager": RETURNS,
    "Inbound Manager": ["putaways", "imports"],
    "Catalog Manager": ["unmapped", "push_failed"],
    "Admin": [*FLOOR, *RETURNS, *OFFICE],
}


def roles_of(user) -> list[str]:
    """The roles whose home the user sees: their groups in the role table (a superuser: Admin)."""
    if user.is_superuser:
        return ["Admin"]
    names = set(user.groups.values_list("name", flat=True))
    return [role for role in ROLE_TILES if role in names]


def may_view(user, model) -> bool:
    """The user may open the model's list (it is in the admin, and they may view it)."""
    meta = model._meta
    registered = admin.site.is_registered(model)
    return registered and user.has_perm(f"{meta.app_label}.view_{meta.model_name}")


def build_tile(key: str, figures: WorkFigures) -> Tile:
    spec = SPECS[key]
    counted = spec.count(figures)
    tile = Tile(key, spec.label, spec.hint, 0, changelist_url(spec.model, **spec.params))
    tile.attention = spec.attention
    if isinstance(counted, dict):
        tile.count = sum(counted.values())
        for facility_id, n in sorted(
            counted.items(), key=lambda kv: figures.facilities.get(kv[0], "")
        ):
            url = changelist_url(spec.model, **spec.params, facility__id__exact=facility_id)
            tile.by_facility.append((figures.facilities.get(facility_id, "?"), n, url))
    else:
        tile.count = counted
    return tile


def role_homes(user, figures: WorkFigures) -> list[tuple[str, list[Tile]]]:
    """[(role, its tiles)] for the user; a tile is left out when its list is closed to them."""
    homes = []
    for role in roles_of(user):
        keys = [k for k in ROLE_TILES[role] if may_view(user, SPECS[k].model)]
        homes.append((role, [build_tile(k, figures) for k in keys]))
    return homes
