"""Printed documents of orders: what goes from the database to `documents` (the renderers).

Each `*_docs` function reads many objects in a fixed number of queries and returns the plain
data of `documents.data`; each `*_pdf` function returns one PDF for the whole selection:

- `invoices_pdf`: tax invoices and credit notes. An issued invoice is rendered once, at its
  first print, and its file kept (`InvoiceDocument`): a re-print returns the same bytes. It is
  printed from what the invoice stored when it was issued (lines, totals, parties), never from
  today's master data.
- `labels_pdf`: 4x6 inch shipping labels, in pick order (`pick_order`), optionally 4-up on A4;
  a package the channel booked (Amazon Easy Ship) gets the channel's own label instead.
- `picklists_pdf`: picklist sheets, rows in shelf order (the walk through the facility).
- `manifests_pdf`: handover sheets with every AWB.

A selection holding something that cannot be printed (a shipment without AWB has no label)
raises `NotPrintable` naming every such record; nothing is printed then.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal
from itertools import groupby, islice

from django.db.models import Count, Sum
from django.utils import timezone

from documents.data import (
    CREDIT_NOTE,
    TAX_INVOICE,
    InvoiceDoc,
    InvoiceTotals,
    LabelDoc,
    ManifestDoc,
    ManifestRow,
    Party,
    PicklistDoc,
    PicklistRow,
    TaxSummaryRow,
)
from documents.data import (
    InvoiceLine as LineDoc,
)
from documents.pdf import PdfSpool
from documents.render import render_labels, render_manifests, render_picklists
from documents.render.invoices import CompiledInvoice, compile_invoices
from documents.words import amount_in_words
from gst.states import STATES
from gst.tax import hsn_summary
from uniware.core.db import chunked

from .models import (
    CURRENT_SALE,
    ChannelLabel,
    Invoice,
    InvoiceDocument,
    InvoiceLine,
    Manifest,
    OrderItem,
    OrderItemStatus,
    Picklist,
    PicklistItem,
    Shipment,
)
from .services.invoicing import seller_party, ship_to_party

BATCH = 100  # invoices read at a time (their docs, or their stored files)


class NotPrintable(Exception):
    """Some of the selected records cannot be printed; the message names them and why."""


def _refuse(problems: Sequence[str]) -> None:
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise NotPrintable("; ".join(problems[:10]) + more)


def _local_date(moment):
    return timezone.localtime(moment).date()


def walk_key(shelf_code: str) -> tuple:
    """Shelves in walking order: natural order of their codes (A2 before A10)."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", shelf_code or "~"))


# --- Invoices ----------------------------------------------------------------------------


def _party(data: dict) -> Party:
    return Party(
        name=data.get("name", ""),
        address_lines=tuple(data.get("address_lines") or ()),
        city=data.get("city", ""),
        state=data.get("state", ""),
        pincode=data.get("pincode", ""),
        state_code=data.get("state_code", ""),
        gstin=data.get("gstin", ""),
        phone=data.get("phone", ""),
    )


def _hsn_rows(lines: Sequence[InvoiceLine]) -> tuple[TaxSummaryRow, ...]:
    return tuple(
        TaxSummaryRow(r.hsn, r.taxable, r.rate, r.cgst, r.sgst, r.igst, r.cess)
        for r in hsn_summary(lines)
    )


def _parts(invoice: Invoice) -> dict:
    """The parties the invoice stored at issue (older invoices: from today's data)."""
    if invoice.particulars:
        return invoice.particulars
    order = invoice.shipment.order
    ship_to = ship_to_party(order)
    return {"seller": seller_party(invoice.facility), "buyer": ship_to, "ship_to": ship_to}


def invoice_doc(invoice: Invoice, lines: Sequence[InvoiceLine]) -> InvoiceDoc:
    """The printable invoice (shipment, order, channel, facility, reverses loaded)."""
    parts = _parts(invoice)
    order = invoice.shipment.order
    issued = _local_date(invoice.created_at)
    seller = _party(parts["seller"])
    place = invoice.place_of_supply or parts["ship_to"].get("state_code", "")
    original = invoice.reverses
    return InvoiceDoc(
        kind=CREDIT_NOTE if invoice.is_credit_note else TAX_INVOICE,
        number=invoice.code,
        date=issued,
        seller=seller,
        buyer=_party(parts["buyer"]),
        ship_to=_party(parts["ship_to"]),
        place_of_supply=STATES.get(place, parts["ship_to"].get("state", "")),
        place_of_supply_code=place,
        lines=tuple(LineDoc.of(line) for line in lines),
        hsn_summary=_hsn_rows(lines),
        totals=InvoiceTotals(
            taxable=invoice.taxable_amount,
            grand_total=invoice.total_amount,
            cgst=invoice.cgst,
            sgst=invoice.sgst,
            igst=invoice.igst,
            cess=invoice.cess,
        ),
        amount_in_words=amount_in_words(invoice.total_amount),
        order_code=order.code,
        channel=order.channel.name,
        channel_order_id=order.channel_order_id,
        qr_text=f"{seller.gstin}|{invoice.code}|{issued:%d-%m-%Y}|{invoice.total_amount}",
        reverse_charge=invoice.reverse_charge,
        original_invoice_number=original.code if original else "",
        original_invoice_date=_local_date(original.created_at) if original else None,
    )


def invoice_docs(invoice_ids: Iterable[int]) -> list[InvoiceDoc]:
    """The invoices in the order given (two queries)."""
    ids = list(dict.fromkeys(invoice_ids))
    invoices = Invoice.objects.select_related(
        "facility", "reverses", "shipment__order__channel"
    ).in_bulk(ids)
    lines: dict[int, list[InvoiceLine]] = defaultdict(list)
    for line in InvoiceLine.objects.filter(invoice_id__in=ids).order_by("invoice_id", "position"):
        lines[line.invoice_id].append(line)
    _refuse([f"invoice #{pk} does not exist" for pk in ids if pk not in invoices])
    return [invoice_doc(invoices[pk], lines[pk]) for pk in ids]


def invoices_pdf(invoice_ids: Iterable[int]) -> bytes:
    """One PDF of these invoices, in the order given; each rendered at most once ever.

    Invoices never printed are rendered CHUNK to a Typst compile, and each one's own file is
    stored (`InvoiceDocument`: what a re-print returns); the PDF returned takes their pages from
    the chunks, whose fonts are embedded once per chunk, not from the split files (each of which
    embeds them again). Stored invoices are read BATCH at a time. Pages are gathered in a
    `PdfSpool`, so memory holds a bounded part of the selection, not all of it."""
    ids = list(dict.fromkeys(invoice_ids))
    if not ids:
        raise NotPrintable("no invoice selected")
    stored = set(
        InvoiceDocument.objects.filter(invoice_id__in=ids).values_list("invoice_id", flat=True)
    )
    with PdfSpool() as spool:
        for was_stored, run in groupby(ids, key=stored.__contains__):
            if was_stored:
                _add_stored(spool, list(run))
            else:
                _add_first_prints(spool, list(run))
        return spool.result()


def _add_stored(spool: PdfSpool, invoice_ids: list[int]) -> None:
    for batch in chunked(invoice_ids, BATCH):
        files = dict(
            InvoiceDocument.objects.filter(invoice_id__in=batch).values_list("invoice_id", "pdf")
        )
        for pk in batch:
            spool.add(bytes(files[pk]))


def _add_first_prints(spool: PdfSpool, invoice_ids: list[int]) -> None:
    """Render, store and add invoices never printed: their docs are read BATCH at a time as the
    renderer asks for them; each compiled chunk is stored while Typst compiles the next."""
    docs = (doc for batch in chunked(invoice_ids, BATCH) for doc in invoice_docs(batch))
    pks = iter(invoice_ids)
    for chunk in compile_invoices(docs):
        _store_and_add(spool, dict(zip(islice(pks, len(chunk)), chunk, strict=True)))


def _store_and_add(spool: PdfSpool, rendered: dict[int, CompiledInvoice]) -> None:
    """Keep each invoice's own file. One rendered meanwhile by another print keeps that
    print's file (ON CONFLICT DO NOTHING), and its pages come from that file here too: what was
    stored is the invoice."""
    ours = {pk: hashlib.sha256(one.file).hexdigest() for pk, one in rendered.items()}
    InvoiceDocument.objects.bulk_create(
        [
            InvoiceDocument(invoice_id=pk, pdf=one.file, sha256=ours[pk])
            for pk, one in rendered.items()
        ],
        ignore_conflicts=True,
    )
    kept = InvoiceDocument.objects.filter(invoice_id__in=list(rendered)).values_list(
        "invoice_id", "sha256"
    )
    lost = [pk for pk, sha in kept if sha != ours[pk]]
    theirs = dict(
        InvoiceDocument.objects.filter(invoice_id__in=lost).values_list("invoice_id", "pdf")
        if lost
        else ()
    )
    for pk, one in rendered.items():
        if pk in theirs:
            spool.add(bytes(theirs[pk]))
        else:
            spool.add(one.chunk, one.pages)


# --- Labels ------------------------------------------------------------------------------


def pick_order(shipment_ids: Iterable[int]) -> list[int]:
    """The shipments in the order their units are picked: by picklist, then by the walk
    position of their first unit on it; shipments on no picklist come last, by code."""
    ids = set(shipment_ids)
    first: dict[int, tuple] = {}
    rows = PicklistItem.objects.filter(shipment_id__in=ids).values_list(
        "shipment_id", "picklist_id", "shelf__code", "sku__code"
    )
    for shipment_id, picklist_id, shelf, sku in rows:
        key = (picklist_id, walk_key(shelf), sku)
        if shipment_id not in first or key < first[shipment_id]:
            first[shipment_id] = key
    codes = dict(Shipment.objects.filter(pk__in=ids).values_list("pk", "code"))
    on_lists = sorted(first, key=lambda pk: (first[pk], codes.get(pk, "")))
    rest = sorted((pk for pk in codes if pk not in first), key=lambda pk: codes[pk])
    return on_lists + rest


def _active_totals(shipment_ids) -> dict[int, tuple[int, Decimal]]:
    """{shipment id: (units, amount to collect)} over units not cancelled."""
    rows = (
        OrderItem.objects.filter(shipment_id__in=shipment_ids)
        .exclude(status=OrderItemStatus.CANCELLED)
        .values("shipment_id")
        .annotate(n=Count("pk"), amount=Sum("selling_price") + Sum("shipping_charges"))
        .order_by()
    )
    return {r["shipment_id"]: (r["n"], r["amount"] or Decimal(0)) for r in rows}


def label_docs(shipment_ids: Iterable[int]) -> list[LabelDoc]:
    """Labels in pick order (four queries)."""
    ids = pick_order(shipment_ids)
    shipments = Shipment.objects.select_related(
        "order__channel", "facility", "shipping_provider"
    ).in_bulk(ids)
    invoices = dict(
        Invoice.objects.filter(CURRENT_SALE, shipment_id__in=ids).values_list("shipment_id", "code")
    )
    _refuse(
        [
            f"shipment {s.code} has no AWB (tracking number) yet: generate its label first"
            for s in shipments.values()
            if not (s.tracking_number and s.shipping_provider_id)
        ]
    )
    totals = _active_totals(ids)
    docs = []
    for pk in ids:
        s = shipments[pk]
        order = s.order
        cod = totals.get(pk, (0, Decimal(0)))[1] if order.payment_method == "COD" else None
        docs.append(
            LabelDoc(
                awb=s.tracking_number,
                provider=s.shipping_provider.name,
                pincode=order.ship_pincode,
                ship_to=_party(ship_to_party(order)),
                return_address=_party(seller_party(s.facility)),
                payment_method=order.payment_method,
                order_code=order.code,
                invoice_number=invoices.get(pk, ""),
                shipment_code=s.code,
                cod_amount=cod,
                channel_order_id=order.channel_order_id,
            )
        )
    return docs


def labels_pdf(shipment_ids: Iterable[int], *, four_up: bool = False) -> bytes:
    """Our labels, and the channel's own label for a package it booked (Amazon Easy Ship),
    in pick order (4-up on A4: ours first, then the channel's, a page each)."""
    docs = label_docs(shipment_ids)
    if not docs:
        raise NotPrintable("no shipment selected")
    theirs = dict(
        ChannelLabel.objects.filter(shipment__code__in=[d.shipment_code for d in docs])
        .order_by()
        .values_list("shipment__code", "pdf")
    )
    if not theirs:
        return render_labels(docs, four_up=four_up)
    _refuse(
        [
            f"shipment {code} was booked with its channel before our record of it was lost: "
            "print its label from the channel's seller portal"
            for code, pdf in theirs.items()
            if not pdf
        ]
    )
    ours = [d for d in docs if d.shipment_code not in theirs]
    rendered = render_labels(ours, four_up=four_up) if ours else b""
    with PdfSpool() as spool:
        if four_up and ours:
            spool.add(rendered)
        done = 0
        for doc in docs:
            if doc.shipment_code in theirs:
                spool.add(bytes(theirs[doc.shipment_code]))
            elif not four_up:
                spool.add(rendered, pages=range(done, done + 1))
                done += 1
        return spool.result()


# --- Picklists and manifests -------------------------------------------------------------


def picklist_docs(picklist_ids: Iterable[int]) -> list[PicklistDoc]:
    """Picklists in the order given, rows (shelf x SKU) in walking order (two queries)."""
    ids = list(dict.fromkeys(picklist_ids))
    picklists = Picklist.objects.select_related("facility").in_bulk(ids)
    _refuse([f"picklist #{pk} does not exist" for pk in ids if pk not in picklists])
    counts: dict[int, dict[tuple[str, str], list]] = defaultdict(dict)
    rows = (
        PicklistItem.objects.filter(picklist_id__in=ids)
        .exclude(order_item__status=OrderItemStatus.CANCELLED)
        .values_list("picklist_id", "shelf__code", "sku__code", "sku__name")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for picklist_id, shelf, sku, name, n in rows:
        counts[picklist_id][shelf or "", sku] = [name, n]
    docs = []
    for pk in ids:
        picklist = picklists[pk]
        walk = sorted(counts[pk].items(), key=lambda kv: (walk_key(kv[0][0]), kv[0][1]))
        docs.append(
            PicklistDoc(
                code=picklist.code,
                facility=picklist.facility.code,
                created=timezone.localtime(picklist.created_at),
                rows=tuple(
                    PicklistRow(
                        shelf=shelf, sku=sku, description=name, quantity=n, barcode_value=sku
                    )
                    for (shelf, sku), (name, n) in walk
                ),
            )
        )
    return docs


def picklists_pdf(picklist_ids: Iterable[int]) -> bytes:
    docs = picklist_docs(picklist_ids)
    if not docs:
        raise NotPrintable("no picklist selected")
    return render_picklists(docs)


def manifest_docs(manifest_ids: Iterable[int]) -> list[ManifestDoc]:
    """Handover sheets in the order given, shipments by code (three queries)."""
    ids = list(dict.fromkeys(manifest_ids))
    manifests = Manifest.objects.select_related("facility", "channel", "shipping_provider").in_bulk(
        ids
    )
    _refuse([f"manifest #{pk} does not exist" for pk in ids if pk not in manifests])
    shipments = list(
        Shipment.objects.filter(manifest_id__in=ids)
        .select_related("order")
        .only(
            "pk", "code", "tracking_number", "manifest_id", "order__code", "order__payment_method"
        )
        .order_by("code")
    )
    totals = _active_totals([s.pk for s in shipments])
    rows: dict[int, list[ManifestRow]] = defaultdict(list)
    for s in shipments:
        units, amount = totals.get(s.pk, (0, Decimal(0)))
        cod = amount if s.order.payment_method == "COD" else None
        rows[s.manifest_id].append(ManifestRow(s.tracking_number, s.code, s.order.code, units, cod))
    return [
        ManifestDoc(
            code=m.code,
            facility=m.facility.code,
            channel=m.channel.name,
            provider=m.shipping_provider.name,
            created=timezone.localtime(m.created_at),
            rows=tuple(rows[pk]),
        )
        for pk in ids
        for m in [manifests[pk]]
    ]


def manifests_pdf(manifest_ids: Iterable[int]) -> bytes:
    docs = manifest_docs(manifest_ids)
    if not docs:
        raise NotPrintable("no manifest selected")
    return render_manifests(docs)


__all__ = [
    "NotPrintable",
    "invoice_docs",
    "invoices_pdf",
    "label_docs",
    "labels_pdf",
    "manifest_docs",
    "manifests_pdf",
    "pick_order",
    "picklist_docs",
    "picklists_pdf",
]
