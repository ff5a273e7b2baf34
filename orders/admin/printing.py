"""Printing from the admin: bulk actions on the lists of shipments, invoices, picklists and
manifests, and the same actions as buttons on each document's owner page (opened in a new
tab). Whatever is selected prints as one PDF, shown inline by the browser; labels in pick
order. A selection of more than `settings.PRINT_INLINE_MAX` documents becomes a background job
(`imports.printing`) and the action leads to its page (progress bar, then the download).

Who may print what is one rule, shared with the background jobs' pages and downloads
(`imports.access.DATA_PERMISSIONS` with `imports.services.EXPORT_PERMISSIONS`):

- labels: view shipments and orders, and `orders.label_shipment` (Pick and Pack, Warehouse);
- tax invoices: view invoices and orders, and `orders.invoice_shipment` (Pick and Pack,
  Warehouse); credit notes: the same, or `orders.return_shipment` instead of invoicing
  (Returns too). Sales see invoices but do not print them: printing issues the file that goes
  in the box;
- picklists and manifest handover sheets: view them (Pick and Pack, Returns, Warehouse).

A selection holding a document that cannot be printed (`orders.printing.NotPrintable`: a
shipment without AWB, a shipment not invoiced) prints nothing; the message names them all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseRedirectBase
from django.urls import reverse

from imports.models import ExportKind
from imports.printing import Selection, print_job_create, render
from imports.services import can_export
from uniware.core.admin_utils import _listing, plural

from ..models import (
    CURRENT_SALE,
    Invoice,
    InvoiceType,
    PicklistItem,
    PicklistStatus,
    ShipmentStatus,
)
from ..printing import NotPrintable, pick_order

# A label is re-printed until the parcel leaves; later it has no use.
LABEL_REPRINTABLE = {ShipmentStatus.READY_TO_SHIP, ShipmentStatus.MANIFESTED}
# Shipments of a picklist that will never carry a label.
NOT_SHIPPING = {ShipmentStatus.CANCELLED, ShipmentStatus.SPLITTED, ShipmentStatus.MERGED}


def may_print(user, kind: str) -> bool:
    """The printing rule of the kind: the same decides who sees its background jobs."""
    return can_export(user, kind)


class SeeOther(HttpResponseRedirectBase):
    """303 to the background job's page. Not an HttpResponseRedirect, so a change-page
    button's "back to this page" (ObjectActionsMixin) does not replace it."""

    status_code = 303


def print_response(request: HttpRequest, selection: Selection) -> HttpResponse | None:
    """The selection's PDF, or (above PRINT_INLINE_MAX documents) a redirect to its
    background job; None, with a message, when nothing can be printed."""
    if not may_print(request.user, selection.kind):
        raise PermissionDenied
    count = len(selection.ids)
    if not count:
        messages.warning(request, f"Nothing to print: no {selection.noun}s in the selection.")
        return None
    if count > settings.PRINT_INLINE_MAX:
        try:
            job = print_job_create(selection, user=request.user)
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
            return None
        except NotPrintable as exc:
            messages.error(request, f"Nothing printed: {exc}")
            return None
        messages.success(
            request,
            f"{plural(count, selection.noun)} are being printed in the background; the PDF "
            "will be ready to open here.",
        )
        return SeeOther(reverse("admin:imports_exportjob_change", args=[job.pk]))
    try:
        pdf = render(selection)
    except NotPrintable as exc:
        messages.error(request, f"Nothing printed: {exc}")
        return None
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{selection.filename()}"'
    return response


def refuse(request: HttpRequest, reason: str, codes: list[str]) -> None:
    """Nothing printed, naming the records (the first 50) and why."""
    messages.error(request, f"Nothing printed: {reason}: {_listing(codes)}.")


ButtonTest = Callable[[HttpRequest, Any], bool]


def always(request: HttpRequest, obj: Model) -> bool:
    return True


class PrintActionsMixin:
    """Adds the print actions' buttons to the change page (with ObjectActionsMixin):
    `print_buttons` maps an action to its button's label and a test of (request, object)."""

    print_actions: list[str] = []
    print_buttons: dict[str, tuple[str, ButtonTest]] = {}

    def object_action_buttons(self, request, obj):
        buttons = super().object_action_buttons(request, obj)
        allowed = self.get_actions(request)
        for name, (label, test) in self.print_buttons.items():
            if name in allowed and test(request, obj):
                buttons.append({"name": name, "label": label, "new_tab": True})
        return buttons


def _ids(queryset: QuerySet) -> list[int]:
    return list(queryset.order_by("pk").values_list("pk", flat=True))


# --- Shipments: labels and invoices ------------------------------------------------------------


def _is_invoiced(request: HttpRequest, shipment) -> bool:
    return Invoice.objects.filter(CURRENT_SALE, shipment=shipment).exists()


def _label_reprintable(request: HttpRequest, shipment) -> bool:
    return bool(shipment.tracking_number) and shipment.status in LABEL_REPRINTABLE


class ShipmentPrintingMixin(PrintActionsMixin):
    print_actions = ["print_labels", "print_labels_4up", "print_invoices"]
    print_buttons = {
        "print_invoices": ("Print invoice", _is_invoiced),
        "print_labels": ("Print label", _label_reprintable),
    }

    def has_print_labels_permission(self, request) -> bool:
        return may_print(request.user, ExportKind.LABELS)

    def has_print_invoices_permission(self, request) -> bool:
        return may_print(request.user, ExportKind.INVOICES)

    @admin.action(description="Print labels", permissions=["print_labels"])
    def print_labels(self, request, queryset):
        return print_response(request, Selection(ExportKind.LABELS, tuple(_ids(queryset))))

    @admin.action(description="Print labels 4-up on A4", permissions=["print_labels"])
    def print_labels_4up(self, request, queryset):
        return print_response(
            request, Selection(ExportKind.LABELS, tuple(_ids(queryset)), four_up=True)
        )

    @admin.action(description="Print invoices", permissions=["print_invoices"])
    def print_invoices(self, request, queryset):
        """The current tax invoice of each shipment, in pick order (as their labels)."""
        shipments = dict(queryset.values_list("pk", "code"))
        invoices = dict(
            Invoice.objects.filter(CURRENT_SALE, shipment_id__in=list(shipments)).values_list(
                "shipment_id", "pk"
            )
        )
        missing = sorted(code for pk, code in shipments.items() if pk not in invoices)
        if missing:
            refuse(request, "not invoiced", missing)
            return None
        ordered = tuple(invoices[pk] for pk in pick_order(list(shipments)))
        return print_response(request, Selection(ExportKind.INVOICES, ordered))


# --- Invoices and credit notes -----------------------------------------------------------------


def _kind_of(types: set[str]) -> str:
    """Credit notes only: CREDIT_NOTES (Returns may print them); any tax invoice: INVOICES."""
    return ExportKind.CREDIT_NOTES if types == {InvoiceType.SALE_RETURN} else ExportKind.INVOICES


def _may_print_invoice(request: HttpRequest, invoice: Invoice) -> bool:
    return may_print(request.user, _kind_of({invoice.invoice_type}))


class InvoicePrintingMixin(PrintActionsMixin):
    print_actions = ["print_invoices"]
    print_buttons = {"print_invoices": ("Print", _may_print_invoice)}

    def has_print_invoices_permission(self, request) -> bool:
        user = request.user
        return may_print(user, ExportKind.INVOICES) or may_print(user, ExportKind.CREDIT_NOTES)

    @admin.action(description="Print invoices and credit notes", permissions=["print_invoices"])
    def print_invoices(self, request, queryset):
        rows = list(queryset.order_by("pk").values_list("pk", "code", "invoice_type"))
        kind = _kind_of({kind for _, _, kind in rows})
        if rows and not may_print(request.user, kind):
            invoices = [code for _, code, kind in rows if kind == InvoiceType.SALE]
            refuse(request, "you may print credit notes only; these are tax invoices", invoices)
            return None
        return print_response(request, Selection(kind, tuple(pk for pk, _, _ in rows)))


# --- Picklists and manifests -------------------------------------------------------------------


def _picked(request: HttpRequest, picklist) -> bool:
    """Labels follow picking (invoice and label at the packing station)."""
    return picklist.status != PicklistStatus.CREATED


class PicklistPrintingMixin(PrintActionsMixin):
    print_actions = ["print_picklists", "print_labels"]
    print_buttons = {
        "print_picklists": ("Print picklist", always),
        "print_labels": ("Print labels", _picked),
    }

    def has_print_picklists_permission(self, request) -> bool:
        return may_print(request.user, ExportKind.PICKLISTS)

    def has_print_labels_permission(self, request) -> bool:
        return may_print(request.user, ExportKind.LABELS)

    @admin.action(description="Print picklists", permissions=["print_picklists"])
    def print_picklists(self, request, queryset):
        return print_response(request, Selection(ExportKind.PICKLISTS, tuple(_ids(queryset))))

    @admin.action(description="Print labels of their shipments", permissions=["print_labels"])
    def print_labels(self, request, queryset):
        """The labels of the picklists' shipments (those still shipping), in pick order."""
        shipments = (
            PicklistItem.objects.filter(picklist__in=queryset.values("pk"))
            .exclude(shipment__status__in=NOT_SHIPPING)
            .order_by()
            .values_list("shipment_id", flat=True)
            .distinct()
        )
        ordered = tuple(pick_order(list(shipments)))
        return print_response(request, Selection(ExportKind.LABELS, ordered))


class ManifestPrintingMixin(PrintActionsMixin):
    print_actions = ["print_handover_sheets"]
    print_buttons = {"print_handover_sheets": ("Print handover sheet", always)}

    def has_print_handover_sheets_permission(self, request) -> bool:
        return may_print(request.user, ExportKind.MANIFESTS)

    @admin.action(description="Print handover sheets", permissions=["print_handover_sheets"])
    def print_handover_sheets(self, request, queryset):
        return print_response(request, Selection(ExportKind.MANIFESTS, tuple(_ids(queryset))))
