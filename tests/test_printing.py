"""Documents printed from the database (`orders.printing`): read back with pdftotext and zbar.

An invoice prints what it stored when issued and is rendered once (a re-print gives the same
bytes); labels come in pick order with a readable AWB barcode; picklists walk the shelves;
handover sheets list every AWB. A selection with something unprintable is refused whole."""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from documents.pdf import page_count
from documents.render import invoices
from documents.render.invoices import typst_to_pdf
from inventory.models import Inventory
from orders import printing
from orders.models import Invoice, InvoiceDocument, InvoiceType
from orders.printing import (
    NotPrintable,
    invoices_pdf,
    label_docs,
    labels_pdf,
    manifests_pdf,
    pick_order,
    picklists_pdf,
)
from orders.services import units_cancel
from uniware.core.models import Sequence

from .factories import ShelfFactory, SkuFactory
from .test_documents_render import _tools, decode_page, pdf_text  # noqa: F401
from .test_fulfilment import shipment_of, to_manifested, to_packed, to_picked, to_ready


def _text(pdf: bytes, tmp_path) -> str:
    return re.sub(r"\s+", " ", pdf_text(pdf, tmp_path))


def test_invoice_prints_every_rule_46_particular_and_is_rendered_once(world, tmp_path):
    order = world.order("FK-1", quantity=2, customer_name="Asha Rao", ship_state="Karnataka")
    shipment = shipment_of(order)
    to_packed([shipment])
    invoice = Invoice.objects.get(shipment=shipment)

    first = invoices_pdf([invoice.pk])
    text = _text(first, tmp_path)
    for expected in (
        "TAX INVOICE",
        invoice.code,
        world.facility.gstin,
        "Test Seller Pvt Ltd",
        "Asha Rao",
        "Karnataka (29)",  # place of supply with its state code
        "6109",  # HSN, in the lines and the summary
        "998.00",
        "Nine Hundred",  # amount in words
    ):
        assert expected in text, expected
    assert "CGST" in text and "IGST" not in text

    # a later change of the seller's address does not change the issued invoice
    type(world.facility).objects.filter(pk=world.facility.pk).update(legal_name="New Name Ltd")
    assert invoices_pdf([invoice.pk]) == first
    assert InvoiceDocument.objects.filter(invoice=invoice).count() == 1


def test_credit_note_names_the_original_invoice(world, tmp_path):
    Sequence.objects.create(name="RETURN_INVOICE", prefix="CN-")
    order = world.order("FK-2", quantity=2)
    shipment = shipment_of(order)
    to_packed([shipment])
    sale = Invoice.objects.get(shipment=shipment)
    assert units_cancel([order.items.first().pk], reason="damaged", actor="test").ok
    note = Invoice.objects.get(invoice_type=InvoiceType.SALE_RETURN)

    text = _text(invoices_pdf([note.pk, sale.pk]), tmp_path)
    assert "CREDIT NOTE" in text and note.code in text
    # the date as printed: in the tenant's zone (18:45 UTC is already tomorrow in India)
    printed = timezone.localtime(sale.created_at).strftime("%d-%m-%Y")
    assert sale.code in text and printed in text


def test_a_first_print_of_many_stores_each_invoice_and_keeps_the_order_given(
    world, tmp_path, monkeypatch
):
    monkeypatch.setattr(invoices, "CHUNK", 2)  # 4 new invoices: two Typst compiles
    shipments = [shipment_of(world.order(f"FK-3{n}")) for n in range(5)]
    to_packed(shipments)
    given = list(Invoice.objects.filter(shipment__in=shipments).order_by("-pk"))
    ids = [inv.pk for inv in given]
    alone = invoices_pdf([ids[2]])  # printed before: the selection mixes stored and new

    first = invoices_pdf(ids)
    text = _text(first, tmp_path)
    positions = [text.index(inv.code) for inv in given]
    assert positions == sorted(positions) and page_count(first) == 5
    assert bytes(InvoiceDocument.objects.get(invoice_id=ids[2]).pdf) == alone
    for inv in given:  # each one's own file is stored: a re-print of one gives it
        own = invoices_pdf([inv.pk])
        assert own == bytes(InvoiceDocument.objects.get(invoice=inv).pdf)
        assert page_count(own) == 1 and inv.code in _text(own, tmp_path)
        assert not any(other.code in _text(own, tmp_path) for other in given if other != inv)
    again = _text(invoices_pdf(ids), tmp_path)
    assert [again.index(inv.code) for inv in given] == sorted(again.index(i.code) for i in given)


def test_an_invoice_stored_meanwhile_by_another_print_keeps_that_file(world, tmp_path, monkeypatch):
    shipments = [shipment_of(world.order(f"FK-4{n}")) for n in range(2)]
    to_packed(shipments)
    raced, other = Invoice.objects.filter(shipment__in=shipments).order_by("pk")
    theirs = typst_to_pdf(f'#set text(font: "DejaVu Sans")\nStored first: {raced.pk}')
    compiling = printing.compile_invoices

    def another_print_stores_first(docs):
        for chunk in compiling(docs):
            InvoiceDocument.objects.create(
                invoice=raced, pdf=theirs, sha256=hashlib.sha256(theirs).hexdigest()
            )
            yield chunk

    monkeypatch.setattr(printing, "compile_invoices", another_print_stores_first)
    text = _text(invoices_pdf([raced.pk, other.pk]), tmp_path)
    assert f"Stored first: {raced.pk}" in text and raced.code not in text and other.code in text
    assert bytes(InvoiceDocument.objects.get(invoice=raced).pdf) == theirs
    assert other.code in _text(bytes(InvoiceDocument.objects.get(invoice=other).pdf), tmp_path)


def test_labels_come_in_pick_order_with_a_readable_awb(world, tmp_path):
    second_shelf = ShelfFactory(facility=world.facility, code="A10")
    SkuFactory(code="CAP", name="Cap")
    Inventory.objects.create(
        facility=world.facility, shelf=second_shelf, sku=SkuFactory(code="CAP"), quantity=5
    )
    far = shipment_of(world.order("FK-3", sku="CAP", payment_method="COD"))  # shelf A10
    near = shipment_of(world.order("FK-4"))  # shelf A1
    to_ready([far, near])

    assert pick_order([far.pk, near.pk]) == [near.pk, far.pk]
    docs = label_docs([far.pk, near.pk])
    assert [d.shipment_code for d in docs] == [near.code, far.code]
    assert docs[1].is_cod and docs[1].cod_amount == D("499.00") and not docs[0].is_cod

    pdf = labels_pdf([far.pk, near.pk])
    assert page_count(pdf) == 2
    far.refresh_from_db()
    assert far.tracking_number in decode_page(pdf, tmp_path, page=2)
    text = _text(pdf, tmp_path)
    assert "560001" in text and "₹" in text


def test_a_selection_with_an_unlabelled_shipment_is_refused_whole(world):
    ready = shipment_of(world.order("FK-5"))
    packed = shipment_of(world.order("FK-6"))
    to_ready([ready])
    to_packed([packed])
    with pytest.raises(NotPrintable, match=f"shipment {packed.code} has no AWB"):
        labels_pdf([ready.pk, packed.pk])


def test_picklist_sheet_walks_the_shelves_with_quantities(world, tmp_path):
    shelf = ShelfFactory(facility=world.facility, code="B2")
    Inventory.objects.create(
        facility=world.facility, shelf=shelf, sku=SkuFactory(code="CAP"), quantity=5
    )
    shipments = [
        shipment_of(world.order("FK-7", quantity=2)),
        shipment_of(world.order("FK-8", sku="CAP")),
        shipment_of(world.order("FK-9")),
    ]
    picklist = to_picked(shipments)
    text = _text(picklists_pdf([picklist.pk]), tmp_path)
    assert picklist.code in text
    assert text.index("A1") < text.index("B2")  # walk order
    assert re.search(r"A1 TSHIRT .*? 3\b", text)  # one row per shelf and SKU, 3 units
    decoded = decode_page(picklists_pdf([picklist.pk]), tmp_path)
    assert {"TSHIRT", "CAP"} <= set(decoded)


def test_handover_sheet_lists_every_awb(world, tmp_path):
    shipments = [shipment_of(world.order(f"FK-1{n}")) for n in range(3)]
    manifest = to_manifested(world, shipments)
    pdf = manifests_pdf([manifest.pk])
    text = _text(pdf, tmp_path)
    assert manifest.code in text and "Blue Dart" in text
    for shipment in shipments:
        shipment.refresh_from_db()
        assert shipment.tracking_number in text
    assert set(decode_page(pdf, tmp_path)) >= {s.tracking_number for s in shipments}


def test_bulk_documents_take_a_fixed_number_of_queries(world):
    def count(n: int) -> int:
        shipments = [shipment_of(world.order(f"Q{n}-{i}")) for i in range(n)]
        to_ready(shipments)
        ids = [s.pk for s in shipments]
        with CaptureQueriesContext(connection) as queries:
            label_docs(ids)
        return len(queries)

    assert count(2) == count(6)
