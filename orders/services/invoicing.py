"""Issuing GST tax invoices (CGST Rule 46) and credit notes (Rule 53) for shipments.

Every invoice of the project is made here, set-based: the sale invoice when a shipment is
packed (or dispatched by force or by its channel), the credit note when invoiced units come
back or are cancelled, both at re-packing.

- **Particulars.** A sale invoice needs what Rule 46 asks for: the facility's legal name,
  address, state and GSTIN; each SKU's HSN code and GST rate; a place of supply (the shipping
  state, or the state of the shipping pincode when the channel sent none). `invoice_problems`
  names the first one missing per shipment ("Facility WH1 has no GSTIN"); callers refuse those
  shipments with that reason before they change anything, like a missing sequence.
- **Tax.** Prices are tax-inclusive; `gst.tax` splits each line (one per SKU and price, plus
  the shipping charged with goods of one rate) into taxable value and CGST + SGST (place of
  supply = facility's state) or IGST, rounded per line, so the invoice total is exactly what
  the channel collects.
- **Snapshot.** The seller, buyer and ship-to blocks are stored with the invoice
  (`Invoice.particulars`), so an issued invoice prints the same whatever changes later.
- **Credit notes** reverse the sale invoice for the units given: same parties, same rates
  (from the sale invoice's lines), their own RETURN_INVOICE series. They are never refused for
  a missing particular: the goods came back whatever the master data says now.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal

from gst.gstin import gstin_problem
from gst.states import STATES, place_of_supply
from gst.tax import Supply, Taxed, merge_supplies, shipping_supplies, tax_lines
from inventory.models import Facility, Sku
from uniware.core.models import SequenceName
from uniware.core.services import sequence_take

from ..models import CURRENT_SALE, Invoice, InvoiceLine, InvoiceType, Order, OrderItem, Shipment

LINE_FIELDS = (
    "description",
    "hsn",
    "is_shipping",
    "quantity",
    "unit",
    "unit_price",
    "discount",
    "taxable_value",
    "cgst_rate",
    "cgst",
    "sgst_rate",
    "sgst",
    "igst_rate",
    "igst",
    "cess_rate",
    "cess",
    "total",
)


# --- Particulars ---------------------------------------------------------------------------


def facility_problem(facility: Facility) -> str | None:
    """The first Rule 46 particular of the seller this facility lacks, or None."""
    for name, what in (
        ("gstin", "GSTIN"),
        ("legal_name", "legal name"),
        ("address_line1", "address"),
        ("city", "city"),
        ("pincode", "pincode"),
        ("gst_state", "GST state"),
    ):
        if not getattr(facility, name):
            return f"Facility {facility.code} has no {what}"
    problem = gstin_problem(facility.gstin)
    if problem:
        return f"Facility {facility.code} has an invalid GSTIN {facility.gstin}: {problem}"
    return None


def sku_problem(sku: Sku) -> str | None:
    if not sku.hsn_code:
        return f"SKU {sku.code} has no HSN code"
    if sku.gst_rate is None:
        return f"SKU {sku.code} has no GST rate"
    return None


def order_problem(order: Order) -> str | None:
    if not place_of_supply(order.ship_state, order.ship_pincode):
        return (
            f"Order {order.code} has no place of supply: shipping state {order.ship_state!r} "
            f"and pincode {order.ship_pincode!r} name no Indian state"
        )
    if order.buyer_gstin and gstin_problem(order.buyer_gstin):
        return f"Order {order.code} has an invalid buyer GSTIN {order.buyer_gstin}: " + str(
            gstin_problem(order.buyer_gstin)
        )
    return None


def sale_invoice_problem(
    facility: Facility, order: Order, units: Iterable[OrderItem], skus: Mapping[int, Sku]
) -> str | None:
    """The first particular a sale invoice of these units would lack, or None."""
    return (
        facility_problem(facility)
        or order_problem(order)
        or next(filter(None, (sku_problem(skus[u.sku_id]) for u in units)), None)
    )


def skus_of(units_by_shipment: Mapping[int, list[OrderItem]]) -> dict[int, Sku]:
    """The SKUs of these units by id (one query), for `invoice_problems` and the issuing."""
    return Sku.objects.in_bulk({u.sku_id for units in units_by_shipment.values() for u in units})


def invoice_problems(
    shipments: Iterable[Shipment],
    units_by_shipment: Mapping[int, list[OrderItem]],
    skus: Mapping[int, Sku] | None = None,
) -> dict[int, str]:
    """{shipment id: why} for shipments a sale invoice cannot be issued for.

    Shipments need `order` and `facility` loaded; `units_by_shipment` holds the units the
    invoice would carry."""
    skus = skus if skus is not None else skus_of(units_by_shipment)
    problems = {}
    for shipment in shipments:
        units = units_by_shipment.get(shipment.pk, [])
        why = sale_invoice_problem(shipment.facility, shipment.order, units, skus)
        if why:
            problems[shipment.pk] = why
    return problems


def seller_party(facility: Facility) -> dict:
    return {
        "name": facility.legal_name or facility.name,
        "address_lines": [
            line for line in (facility.address_line1, facility.address_line2) if line
        ],
        "city": facility.city,
        "state": STATES.get(facility.gst_state, ""),
        "state_code": facility.gst_state,
        "pincode": facility.pincode,
        "gstin": facility.gstin,
        "phone": facility.phone,
    }


def ship_to_party(order: Order) -> dict:
    code = place_of_supply(order.ship_state, order.ship_pincode) or ""
    return {
        "name": order.customer_name,
        "address_lines": [a for a in (order.ship_address_line1, order.ship_address_line2) if a],
        "city": order.ship_city,
        "state": STATES.get(code, order.ship_state),
        "state_code": code,
        "pincode": order.ship_pincode,
        "gstin": "",
        "phone": order.customer_phone,
    }


def buyer_party(order: Order) -> dict:
    """The billing address the channel sent, or the ship-to when it sent none."""
    billing = order.billing_address or {}
    party = ship_to_party(order)
    if billing.get("addressLine1") or billing.get("name"):
        code = place_of_supply(billing.get("state", ""), billing.get("pincode", "")) or ""
        lines = [billing.get("addressLine1", ""), billing.get("addressLine2", "")]
        party = {
            "name": billing.get("name") or order.customer_name,
            "address_lines": [line for line in lines if line],
            "city": billing.get("city", ""),
            "state": STATES.get(code, billing.get("state", "")),
            "state_code": code,
            "pincode": billing.get("pincode", ""),
            "phone": billing.get("phone", ""),
        }
    party["gstin"] = order.buyer_gstin
    return party


def particulars(facility: Facility, order: Order) -> dict:
    return {
        "seller": seller_party(facility),
        "buyer": buyer_party(order),
        "ship_to": ship_to_party(order),
    }


# --- Tax ---------------------------------------------------------------------------------


Rates = Mapping[int, tuple[str, Decimal, Decimal]]  # SKU id -> (HSN, GST %, cess %)


@dataclass
class Draft:
    """An invoice to issue: the shipment, the units it carries, the parties, and (credit
    notes) the sale invoice it reverses with that invoice's HSN and rates per SKU."""

    shipment: Shipment
    units: list[OrderItem]
    parts: dict
    rates: Rates = field(default_factory=dict)
    reverses: Invoice | None = None


def _supplies(draft: Draft, skus: Mapping[int, Sku]) -> list[Supply]:
    """Goods lines (one per SKU and price) and the shipping charged with them."""
    goods = []
    for unit in draft.units:
        sku = skus[unit.sku_id]
        hsn, rate, cess = draft.rates.get(unit.sku_id) or (
            sku.hsn_code,
            sku.gst_rate,
            sku.cess_rate,
        )
        supply = Supply(
            key=sku.code,
            description=unit.title or sku.name,
            hsn=hsn,
            quantity=1,
            unit_price=unit.selling_price,
            gst_rate=Decimal(0) if rate is None else rate,
            cess_rate=cess or Decimal(0),
        )
        goods.append((supply, unit.shipping_charges))
    return merge_supplies(s for s, _ in goods) + shipping_supplies(goods)


def _invoice(kind: str, code: str, draft: Draft, taxed: Taxed) -> Invoice:
    return Invoice(
        code=code,
        invoice_type=kind,
        shipment=draft.shipment,
        facility_id=draft.shipment.facility_id,
        total_amount=taxed.grand_total,
        taxable_amount=taxed.taxable,
        cgst=taxed.cgst,
        sgst=taxed.sgst,
        igst=taxed.igst,
        cess=taxed.cess,
        place_of_supply=draft.parts["ship_to"]["state_code"],
        reverse_charge=False,
        particulars=draft.parts,
        reverses=draft.reverses,
    )


def _lines(invoice: Invoice, taxed: Taxed, skus_by_code: Mapping[str, Sku]) -> list[InvoiceLine]:
    lines = []
    for position, line in enumerate(taxed.lines, start=1):
        sku = None if line.is_shipping else skus_by_code.get(line.key)
        values = {name: getattr(line, name) for name in LINE_FIELDS}
        lines.append(InvoiceLine(invoice=invoice, position=position, sku=sku, **values))
    return lines


def _tax(draft: Draft, skus: Mapping[int, Sku]) -> Taxed:
    seller, place = draft.parts["seller"]["state_code"], draft.parts["ship_to"]["state_code"]
    supplies = _supplies(draft, skus)
    if seller not in STATES or place not in STATES:
        # Only a credit note for a sale invoice issued before the seller's GST data existed
        # gets here (sale invoices are refused without it): reversed without a tax split.
        supplies = [replace(s, gst_rate=Decimal(0), cess_rate=Decimal(0)) for s in supplies]
        seller = place = next(iter(STATES))
    return tax_lines(supplies, seller_state=seller, place_of_supply=place)


def _issue(
    kind: str, sequence: str, drafts: list[Draft], skus: Mapping[int, Sku] | None = None
) -> list[Invoice]:
    """Number (per facility, from `sequence`), tax and write the invoices and their lines."""
    if skus is None:
        skus = Sku.objects.in_bulk({u.sku_id for d in drafts for u in d.units})
    skus_by_code = {s.code: s for s in skus.values()}
    by_facility: dict[int, list[Draft]] = defaultdict(list)
    for draft in drafts:
        by_facility[draft.shipment.facility_id].append(draft)
    invoices, lines = [], []
    for members in by_facility.values():
        facility = members[0].shipment.facility
        codes = sequence_take(sequence, facility=facility, count=len(members))
        for draft, code in zip(members, codes, strict=True):
            taxed = _tax(draft, skus)
            invoice = _invoice(kind, code, draft, taxed)
            invoices.append(invoice)
            lines += _lines(invoice, taxed, skus_by_code)
    Invoice.objects.bulk_create(invoices, batch_size=1000)
    for line in lines:
        line.invoice_id = line.invoice.pk
    InvoiceLine.objects.bulk_create(lines, batch_size=2000)
    return invoices


def issue_sale_invoices(
    shipments: Iterable[Shipment],
    units_by_shipment: Mapping[int, list[OrderItem]],
    skus: Mapping[int, Sku] | None = None,
) -> list[Invoice]:
    """Sale invoices for these shipments (order and facility loaded), for the units given.
    Callers have refused shipments with `invoice_problems` and hold the stock-row locks (the
    Sequence row comes last in the lock order)."""
    drafts = [
        Draft(s, list(units_by_shipment.get(s.pk, [])), particulars(s.facility, s.order))
        for s in shipments
    ]
    return _issue(InvoiceType.SALE, SequenceName.INVOICE, drafts, skus) if drafts else []


def issue_credit_notes(units_by_shipment: Mapping[int, list[OrderItem]]) -> list[Invoice]:
    """One credit note (SALE_RETURN) per shipment reversing its sale invoice for these units:
    the sale invoice's parties and rates, numbers from RETURN_INVOICE. Shipments never
    invoiced get none. Callers check the RETURN_INVOICE sequences first."""
    wanted = {k: v for k, v in units_by_shipment.items() if v}
    sales = {
        inv.shipment_id: inv
        for inv in Invoice.objects.filter(CURRENT_SALE, shipment_id__in=list(wanted))
        .select_related("facility", "shipment__order")
        .order_by("shipment_id")
    }
    rates: dict[int, dict] = defaultdict(dict)
    for invoice_id, sku_id, hsn, cgst, sgst, igst, cess in InvoiceLine.objects.filter(
        invoice__in=list(sales.values()), sku__isnull=False
    ).values_list(
        "invoice_id", "sku_id", "hsn", "cgst_rate", "sgst_rate", "igst_rate", "cess_rate"
    ):
        rates[invoice_id].setdefault(sku_id, (hsn, cgst + sgst + igst, cess))
    drafts = []
    for shipment_id, sale in sales.items():
        shipment = sale.shipment
        shipment.facility = sale.facility
        parts = sale.particulars or particulars(sale.facility, shipment.order)
        drafts.append(Draft(shipment, wanted[shipment_id], parts, rates[sale.pk], sale))
    return _issue(InvoiceType.SALE_RETURN, SequenceName.RETURN_INVOICE, drafts) if drafts else []
