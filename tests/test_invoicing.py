"""GST invoices issued by the flows: lines and tax per place of supply, refusals for missing
Rule 46 particulars, Rule 46 number series (length, characters, financial year in the tenant's
zone), and credit notes that reverse a sale invoice at its own rates."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from orders.models import Invoice, InvoiceLine, InvoiceType, Shipment, ShipmentStatus
from orders.services import (
    LineInput,
    OrderInput,
    order_create,
    shipments_invoice,
    units_cancel,
    units_dispatch_from_channel,
)
from uniware.core.models import Sequence, Tenant
from uniware.core.services import SequenceNotDefined, sequence_take

from .factories import SkuFactory
from .test_fulfilment import shipment_of, to_packed, to_picked


def _order(world, oid: str, lines, **kwargs):
    """lines: [(sku code, quantity, price, shipping per unit)]."""
    return order_create(
        OrderInput(
            channel=world.channel,
            channel_order_id=oid,
            ship_pincode=kwargs.pop("pincode", "560001"),
            lines=[
                LineInput(f"{oid}-L{n}", sku, qty, price, shipping)
                for n, (sku, qty, price, shipping) in enumerate(lines, start=1)
            ],
            **kwargs,
        )
    )


def _invoice(shipment) -> Invoice:
    return Invoice.objects.get(shipment=shipment, invoice_type=InvoiceType.SALE)


def _lines(invoice) -> list[tuple]:
    return list(
        InvoiceLine.objects.filter(invoice=invoice)
        .order_by("position")
        .values_list("description", "hsn", "quantity", "unit_price", "taxable_value", "total")
    )


def test_intra_state_invoice_splits_cgst_and_sgst_per_line(world):
    shirt = world.sku
    shirt.gst_rate, shirt.hsn_code = D("5"), "6109"
    shirt.save()
    order = _order(world, "FK-1", [("TSHIRT", 2, "499.00", "0")], customer_name="Asha")
    shipment = shipment_of(order)
    to_packed([shipment])

    invoice = _invoice(shipment)
    assert invoice.place_of_supply == "29"  # pincode 560001: Karnataka, the facility's state
    assert (invoice.total_amount, invoice.taxable_amount) == (D("998.00"), D("950.48"))
    assert (invoice.cgst, invoice.sgst, invoice.igst) == (D("23.76"), D("23.76"), D("0"))
    [line] = InvoiceLine.objects.filter(invoice=invoice)
    assert (line.quantity, line.unit_price, line.taxable_value) == (2, D("499.00"), D("950.48"))
    assert (line.cgst_rate, line.sgst_rate, line.igst_rate) == (D("2.5"), D("2.5"), D("0"))
    assert line.taxable_value + line.cgst + line.sgst == line.total == D("998.00")
    assert invoice.particulars["seller"]["gstin"] == world.facility.gstin
    assert invoice.particulars["buyer"]["name"] == "Asha"


def test_the_database_refuses_a_total_a_paisa_off_and_takes_it_exact(world):
    """The last line of defence: total = taxable + taxes, to the paisa (a window of half a
    paisa, so SQLite's floating-point sums pass: `make demo` runs on SQLite)."""
    from django.db import IntegrityError

    world.sku.gst_rate, world.sku.hsn_code = D("5"), "6109"
    world.sku.save()
    shipment = shipment_of(_order(world, "FK-CK", [("TSHIRT", 3, "333.33", "0")]))
    to_packed([shipment])
    invoice = _invoice(shipment)
    line = InvoiceLine.objects.filter(invoice=invoice).first()

    for model, obj, field in ((Invoice, invoice, "total_amount"), (InvoiceLine, line, "total")):
        with pytest.raises(IntegrityError), transaction.atomic():
            model.objects.filter(pk=obj.pk).update(**{field: getattr(obj, field) + D("0.01")})
        model.objects.filter(pk=obj.pk).update(**{field: getattr(obj, field)})  # exact: taken


def test_inter_state_invoice_has_igst_and_a_taxed_shipping_line(world):
    SkuFactory(code="SHOE", name="Running shoe", hsn_code="6404", gst_rate=D("18"))
    world.inventory.__class__.objects.create(
        facility=world.facility, shelf=world.shelf, sku_id=SkuFactory(code="SHOE").pk, quantity=5
    )
    order = _order(
        world,
        "FK-2",
        [("TSHIRT", 1, "499.00", "40.00"), ("SHOE", 1, "2399.00", "60.00")],
        ship_state="Maharashtra",  # the channel's state wins over the pincode's
    )
    shipment = shipment_of(order)
    to_packed([shipment])

    invoice = _invoice(shipment)
    assert invoice.place_of_supply == "27"
    assert invoice.cgst == invoice.sgst == D("0") and invoice.igst > 0
    lines = _lines(invoice)
    descriptions = [line[0] for line in lines]
    assert descriptions.count("Shipping charges") == 2  # one per rate of the goods it ships
    shipping = InvoiceLine.objects.filter(invoice=invoice, is_shipping=True).order_by("hsn")
    assert [(s.hsn, s.igst_rate, s.total) for s in shipping] == [
        ("6109", D("5"), D("40.00")),
        ("6404", D("18"), D("60.00")),
    ]
    assert invoice.total_amount == D("499.00") + D("40.00") + D("2399.00") + D("60.00")
    assert invoice.total_amount == sum(line[5] for line in lines)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda w: _set(w.facility, gstin=""), "Facility WH1 has no GSTIN"),
        (lambda w: _set(w.sku, hsn_code=""), "SKU TSHIRT has no HSN code"),
        (lambda w: _set(w.sku, gst_rate=None), "SKU TSHIRT has no GST rate"),
    ],
)
def test_invoicing_refuses_a_missing_particular_and_changes_nothing(world, change, message):
    order = world.order("FK-3")
    shipment = shipment_of(order)
    to_picked([shipment])
    change(world)
    before = Sequence.objects.get(name="INVOICE").next_value

    outcome = shipments_invoice([shipment.pk], actor="test")

    assert outcome.failed == [(shipment.code, message)]
    assert Shipment.objects.get(pk=shipment.pk).status == ShipmentStatus.PICKED
    assert not Invoice.objects.exists()
    assert Sequence.objects.get(name="INVOICE").next_value == before


def _set(obj, **values) -> None:
    type(obj).objects.filter(pk=obj.pk).update(**values)


def test_unknown_place_of_supply_is_refused_with_the_order_named(world):
    order = world.order("FK-4")
    shipment = shipment_of(order)
    to_picked([shipment])
    _set(order, ship_pincode="000000", ship_state="Atlantis")  # corrected by staff, wrongly
    outcome = shipments_invoice([shipment.pk], actor="test")
    [(code, why)] = outcome.failed
    assert code == shipment.code and "Order FLIPKART-FK-4 has no place of supply" in why


def test_one_bad_shipment_does_not_block_the_others(world):
    good = shipment_of(world.order("FK-5"))
    SkuFactory(code="MUG", name="Mug", hsn_code="")
    world.inventory.__class__.objects.create(
        facility=world.facility, shelf=world.shelf, sku_id=SkuFactory(code="MUG").pk, quantity=5
    )
    bad = shipment_of(world.order("FK-6", sku="MUG"))
    to_picked([good, bad])
    outcome = shipments_invoice([good.pk, bad.pk], actor="test")
    assert [s.pk for s in outcome.done] == [good.pk]
    assert outcome.failed == [(bad.code, "SKU MUG has no HSN code")]


def test_credit_note_reverses_the_sale_invoice_at_its_rates(world):
    Sequence.objects.create(name="RETURN_INVOICE", prefix="CN/{FY}/", restarts_yearly=True)
    order = world.order("FK-7", quantity=2)
    shipment = shipment_of(order)
    to_packed([shipment])
    sale = _invoice(shipment)
    _set(world.sku, gst_rate=D("12"))  # a later change of the SKU's rate

    unit = order.items.order_by("pk").first()
    outcome = units_cancel([unit.pk], reason="customer changed mind", actor="test")
    assert outcome.ok, outcome.failed

    note = Invoice.objects.get(invoice_type=InvoiceType.SALE_RETURN)
    assert note.reverses_id == sale.pk
    assert note.code.startswith("CN/") and len(note.code) <= 16
    [line] = InvoiceLine.objects.filter(invoice=note)
    assert (line.cgst_rate, line.quantity, line.total) == (D("2.5"), 1, D("499.00"))
    assert note.particulars == sale.particulars


# --- Rule 46 series ------------------------------------------------------------------------


def test_a_series_that_could_exceed_16_characters_is_refused(world):
    seq = Sequence(name="INVOICE", prefix="INVOICE-WH1-", padding=6)
    with pytest.raises(ValidationError) as error:
        seq.clean()
    assert "16" in str(error.value) and "Rule 46" in str(error.value)
    with pytest.raises(ValidationError, match="only letters, digits"):
        Sequence(name="RETURN_INVOICE", prefix="CN WH1", padding=4).clean()
    with pytest.raises(ValidationError, match=r"\{FY\}"):
        Sequence(name="INVOICE", prefix="INV-", padding=6, restarts_yearly=True).clean()
    Sequence(name="INVOICE", prefix="INV/{FY}/", padding=6, restarts_yearly=True).clean()
    # other documents keep their free prefixes
    Sequence(name="SHIPMENT", prefix="SHIPMENT-WH1-LONG-", padding=6).clean()


def test_an_illegal_series_saved_behind_the_forms_back_refuses_at_invoicing(world):
    Sequence.objects.filter(name="INVOICE").update(prefix="INVOICE-WH1-")
    shipment = shipment_of(world.order("FK-8"))
    to_picked([shipment])
    [(code, why)] = shipments_invoice([shipment.pk], actor="test").failed
    assert why.startswith("Sequence INVOICE for facility WH1 cannot be used: numbers would be")


def _take_at(moment: datetime) -> str:
    with mock.patch("django.utils.timezone.now", return_value=moment), transaction.atomic():
        return sequence_take("INVOICE", facility=None)[0]


def test_financial_year_prefix_restarts_on_1_april_in_the_tenants_zone(db):
    tenant = Tenant.get()
    tenant.time_zone = "Asia/Kolkata"
    tenant.save()
    Sequence.objects.create(name="INVOICE", prefix="INV/{FY}/", restarts_yearly=True)
    assert _take_at(datetime(2027, 3, 31, 12, 0, tzinfo=UTC)) == "INV/26-27/000001"
    assert _take_at(datetime(2027, 3, 31, 18, 0, tzinfo=UTC)) == "INV/26-27/000002"
    # 18:30 UTC on 31 March is midnight in India: the new financial year has begun there
    assert _take_at(datetime(2027, 3, 31, 18, 31, tzinfo=UTC)) == "INV/27-28/000001"
    assert _take_at(datetime(2027, 4, 2, 9, 0, tzinfo=UTC)) == "INV/27-28/000002"


def test_an_exhausted_series_refuses_instead_of_growing_past_its_digits(db):
    Sequence.objects.create(name="INVOICE", prefix="I", padding=2, next_value=99)
    with transaction.atomic():
        assert sequence_take("INVOICE")[0] == "I99"
    with pytest.raises(SequenceNotDefined, match="run out of its 2 digits"), transaction.atomic():
        sequence_take("INVOICE")


# --- Channel dispatch --------------------------------------------------------------------


def test_channel_dispatch_refuses_an_order_it_could_not_invoice_and_dispatches_the_rest(world):
    SkuFactory(code="MUG", name="Mug", hsn_code="")
    mug = world.order("FK-9", sku="MUG")  # no stock: stays unfulfillable, needs an invoice
    shirt = world.order("FK-10")
    units = [u.pk for o in (mug, shirt) for u in o.items.all()]

    outcome = units_dispatch_from_channel(units, actor="task:status_sync")

    assert [o.code for o in outcome.done] == [shirt.code]
    assert outcome.failed == [(mug.code, "SKU MUG has no HSN code")]
    assert Invoice.objects.filter(shipment__order=shirt).count() == 1
    assert not Invoice.objects.filter(shipment__order=mug).exists()


def test_the_invoice_page_shows_its_lines_and_tax(world, admin_client):
    shipment = shipment_of(world.order("FK-11", quantity=2))
    to_packed([shipment])
    invoice = _invoice(shipment)
    page = admin_client.get(f"/admin/orders/invoice/{invoice.pk}/change/").content.decode()
    assert "Red T-shirt" in page and "6109" in page
    assert "23.76 (2.5 %)" in page  # CGST on 998.00 at 5 %, intra-state
    assert "950.48" in page  # taxable value
