"""The stations in the admin site: `StationAdmin`'s own URLs are the station pages, so the
admin's login, staff check and the role-matrix test cover them. The change list shows every
station's state (who holds which shipment or manifest); an Admin may delete a stuck one.

- `packing/`: Pick and Pack and Warehouse (who may invoice and label in the admin);
- `manifest/`: who may open and close manifests (the same roles; see README "Scan stations");
- `putaway/`: who may complete putaways (Inbound, Returns, Warehouse);
- `commands/`: the sheet of command barcodes (PDF), for both stations' users;
- `print/<document>/<id>/`: the invoice or label of a shipment, or a handover sheet, by the
  printing rules of `orders.admin.printing` (and its background job above PRINT_INLINE_MAX).
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods

from imports.models import ExportKind
from imports.printing import Selection
from orders.admin.printing import print_response
from orders.models import CURRENT_SALE, Invoice

from .commands import command_sheet_pdf
from .handover import manifest_count, manifest_scan
from .models import Station, StationKind
from .putaway import putaway_items, putaway_scan
from .scans import ScanResult
from .services import expected_units, packing_scan


def may_pack(user) -> bool:
    """The packing station invoices and labels: who may do both in the admin."""
    return user.has_perm("orders.invoice_shipment") and user.has_perm("orders.label_shipment")


def may_hand_over(user) -> bool:
    """The handover station adds to and closes manifests."""
    return user.has_perm("orders.add_manifest") and user.has_perm("orders.close_manifest")


def may_put_away(user) -> bool:
    """The putaway station completes putaways."""
    return user.has_perm("inventory.complete_putaway")


def may_use_a_station(user) -> bool:
    return may_pack(user) or may_hand_over(user) or may_put_away(user)


STATIONS: dict[str, tuple[Callable, Callable[..., ScanResult], str]] = {
    StationKind.PACKING: (may_pack, packing_scan, "Packing station"),
    StationKind.MANIFEST: (may_hand_over, manifest_scan, "Manifest handover station"),
    StationKind.PUTAWAY: (may_put_away, putaway_scan, "Putaway station"),
}


def station_links(user) -> list[tuple[str, str]]:
    """(title, URL) of every station the user may work at (the list and the role home)."""
    return [
        (title, reverse(f"admin:stations_station_{kind.lower()}"))
        for kind, (may, _, title) in STATIONS.items()
        if may(user)
    ]


# What each station's panel reads of its row: joining only these keeps the page's query
# cheap to plan (all seven joins cost some 4-8 ms of planning with 1M orders).
PANEL_RELATED: dict[str, tuple[str, ...]] = {
    StationKind.PACKING: ("picklist", "shipment__order"),
    StationKind.MANIFEST: ("manifest",),
    StationKind.PUTAWAY: ("putaway", "shelf"),
}


@admin.register(Station)
class StationAdmin(admin.ModelAdmin):
    list_display = ["user", "kind", "picklist", "shipment", "manifest", "outcome", "message"]
    list_display_links = ["user"]
    list_filter = ["kind", "outcome"]
    list_select_related = ["user", "picklist", "shipment", "manifest"]
    readonly_fields = [f.name for f in Station._meta.fields]
    change_list_template = "stations/change_list.html"

    def has_view_permission(self, request, obj=None) -> bool:
        return super().has_view_permission(request, obj) or may_use_a_station(request.user)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("packing/", view(self.packing_view), name="stations_station_packing"),
            path("manifest/", view(self.manifest_view), name="stations_station_manifest"),
            path("putaway/", view(self.putaway_view), name="stations_station_putaway"),
            path("commands/", view(self.commands_view), name="stations_station_commands"),
            path(
                "print/<str:document>/<int:pk>/",
                view(self.print_view),
                name="stations_station_print",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        links = station_links(request.user)
        return super().changelist_view(request, {**(extra_context or {}), "stations": links})

    def packing_view(self, request: HttpRequest) -> HttpResponse:
        return station_page(request, StationKind.PACKING)

    def manifest_view(self, request: HttpRequest) -> HttpResponse:
        return station_page(request, StationKind.MANIFEST)

    def commands_view(self, request: HttpRequest) -> HttpResponse:
        """The sheet of command barcodes, for whoever may use a station."""
        if not may_use_a_station(request.user):
            raise PermissionDenied
        response = HttpResponse(command_sheet_pdf(), content_type="application/pdf")
        response["Content-Disposition"] = 'inline; filename="station-commands.pdf"'
        return response

    def putaway_view(self, request: HttpRequest) -> HttpResponse:
        return station_page(request, StationKind.PUTAWAY)

    def print_view(self, request: HttpRequest, document: str, pk: int) -> HttpResponse:
        """A station's print link: the shipment's invoice or label, or a handover sheet."""
        if document == "invoice":
            invoices = Invoice.objects.filter(CURRENT_SALE, shipment_id=pk)
            selection = Selection(ExportKind.INVOICES, tuple(invoices.values_list("pk", flat=True)))
        elif document == "label":
            selection = Selection(ExportKind.LABELS, (pk,))
        elif document == "handover":
            selection = Selection(ExportKind.MANIFESTS, (pk,))
        else:
            raise Http404("no such document")
        response = print_response(request, selection)
        if response is None:
            raise Http404("nothing to print: see the message on the admin's next page")
        return response


@require_http_methods(["GET", "POST"])
def station_page(request: HttpRequest, kind: str) -> HttpResponse:
    """GET: the station as it stands. POST: one scan; a page's script gets the panel back,
    a plain form post is redirected to the GET (so a refresh never scans again)."""
    may, scan, title = STATIONS[kind]
    if not may(request.user):
        raise PermissionDenied
    result = None
    if request.method == "POST":
        result = scan(request.user, request.POST.get("scan", ""))
        if request.headers.get("X-Station") != "1":
            return HttpResponseRedirect(request.path, status=303)
    station, _ = Station.objects.select_related(*PANEL_RELATED[kind]).get_or_create(
        user=request.user, kind=kind
    )
    # The scan's own result (a repeat ignored is not stored), else the last one stored.
    shown = result or ScanResult(station.outcome, station.message, station.error)
    context = {"station": station, "shown": shown, "title": title, **_panel(station)}
    if result is not None:
        return render(request, "stations/panel.html", context)
    return render(request, "stations/station.html", context)


def _print_url(document: str, pk: int) -> str:
    return reverse("admin:stations_station_print", args=[document, pk])


def _panel(station: Station) -> dict:
    """What the page shows besides the outcome: the units to scan, or the manifest."""
    if station.kind == StationKind.MANIFEST:
        sheet = station.handed_over_id
        return {
            "manifest": station.manifest,
            "count": manifest_count(station.manifest_id) if station.manifest_id else 0,
            "prints": [("Handover sheet", _print_url("handover", sheet))] if sheet else [],
            "prompt": "Scan a parcel's AWB" if not station.manifest_id else "Next AWB, or CLOSE",
        }
    if station.kind == StationKind.PUTAWAY:
        return _putaway_panel(station)
    ticked = set(station.ticked)
    units = expected_units(station.shipment) if station.shipment_id else []
    packed = station.printable_id
    documents = [("Invoice", "invoice"), ("Label", "label")]
    return {
        "units": [(u, u.pk in ticked) for u in units],
        "prints": [(name, _print_url(doc, packed)) for name, doc in documents] if packed else [],
        "prompt": "Scan a unit" if station.shipment_id else "Scan a picklist",
    }


def _putaway_panel(station: Station) -> dict:
    placed = {item_id: (shelf_id, kind) for item_id, shelf_id, kind in station.placed}
    items = putaway_items(station.putaway_id) if station.putaway_id else []
    prompt = "Scan a putaway" if not station.putaway_id else "Scan a shelf, then its units"
    if station.shelf_id:
        prompt = f"Shelf {station.shelf.code}, {station.inventory_type}: scan units"
    return {"items": [(i, i.pk in placed) for i in items], "prints": [], "prompt": prompt}
