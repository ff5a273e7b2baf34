"""Generated sample documents for the benchmark and for trying templates (no database).

Amounts are computed by `gst.tax`, as an issued invoice's are, so a sample looks like a real one.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from gst.tax import Supply, tax_lines

from .data import (
    CREDIT_NOTE,
    TAX_INVOICE,
    InvoiceDoc,
    InvoiceLine,
    InvoiceTotals,
    LabelDoc,
    ManifestDoc,
    ManifestRow,
    Party,
    PicklistDoc,
    PicklistRow,
    TaxSummaryRow,
)
from .words import amount_in_words

PAISA = Decimal("0.01")
SELLER = Party(
    name="Acme Retail Private Limited",
    address_lines=("Plot 42, KIADB Industrial Area", "Bommasandra"),
    city="Bengaluru",
    state="Karnataka",
    state_code="29",
    pincode="560099",
    gstin="29AABCA1234F1Z5",
    phone="080-4000-1234",
)
BUYERS = (
    (
        "Priya Sharma",
        "Flat 12B, Lotus Towers, Andheri East",
        "Mumbai",
        "Maharashtra",
        "27",
        "400069",
    ),
    ("Rahul Verma", "House 7, Sector 21", "Gurugram", "Haryana", "06", "122016"),
    ("Anita Rao", "No. 5, 3rd Cross, Indiranagar", "Bengaluru", "Karnataka", "29", "560038"),
)
PRODUCTS = (
    ("Cotton T-shirt, red, M", "61091000", Decimal("5"), Decimal("499.00")),
    ("Running shoes, size 9", "64041100", Decimal("18"), Decimal("2399.00")),
    ("Steel water bottle 1 L", "73239390", Decimal("12"), Decimal("649.50")),
    ("Wireless earbuds", "85183000", Decimal("18"), Decimal("1899.00")),
)


def sample_party(index: int) -> Party:
    name, street, city, state, code, pincode = BUYERS[index % len(BUYERS)]
    return Party(
        name=name,
        address_lines=(street,),
        city=city,
        state=state,
        state_code=code,
        pincode=pincode,
        phone=f"98450{index % 100000:05d}",
    )


def sample_invoice(index: int, *, credit_note: bool = False, lines: int = 3) -> InvoiceDoc:
    """Invoice `index`: 1 to `lines` lines, intra-state for Karnataka buyers, else IGST."""
    buyer = sample_party(index)
    supplies = [
        Supply(
            key=description,
            description=description,
            hsn=hsn,
            quantity=1 + (index + n) % 3,
            unit_price=price,
            gst_rate=rate,
        )
        for n in range(1 + index % lines)
        for description, hsn, rate, price in [PRODUCTS[(index + n) % len(PRODUCTS)]]
    ]
    taxed = tax_lines(supplies, seller_state=SELLER.state_code, place_of_supply=buyer.state_code)
    total = taxed.grand_total
    number = f"INV/25-26/{index + 1:06d}"
    day = date(2025, 6, 1) + timedelta(days=index % 28)
    return InvoiceDoc(
        kind=CREDIT_NOTE if credit_note else TAX_INVOICE,
        number=f"CN/25-26/{index + 1:06d}" if credit_note else number,
        date=day + timedelta(days=7) if credit_note else day,
        seller=SELLER,
        buyer=buyer,
        ship_to=buyer,
        place_of_supply=buyer.state,
        place_of_supply_code=buyer.state_code,
        lines=tuple(InvoiceLine.of(line) for line in taxed.lines),
        hsn_summary=tuple(
            TaxSummaryRow(r.hsn, r.taxable, r.rate, r.cgst, r.sgst, r.igst, r.cess)
            for r in taxed.hsn_summary
        ),
        totals=InvoiceTotals(
            taxable=taxed.taxable,
            grand_total=total,
            cgst=taxed.cgst,
            sgst=taxed.sgst,
            igst=taxed.igst,
        ),
        amount_in_words=amount_in_words(total),
        order_code=f"FLIPKART-OD{4300000 + index}",
        channel="Flipkart",
        channel_order_id=f"OD{4300000 + index}",
        qr_text=f"{SELLER.gstin}|{number}|{day:%d-%m-%Y}|{total}",
        original_invoice_number=number if credit_note else "",
        original_invoice_date=day if credit_note else None,
    )


def sample_label(index: int) -> LabelDoc:
    buyer = sample_party(index)
    cod = index % 2 == 0
    return LabelDoc(
        awb=f"BLUEDART{1000000 + index}",
        provider="Blue Dart Express",
        pincode=buyer.pincode,
        ship_to=buyer,
        return_address=SELLER,
        payment_method="COD" if cod else "PREPAID",
        cod_amount=Decimal("1299.00") + index if cod else None,
        order_code=f"FLIPKART-OD{4300000 + index}",
        channel_order_id=f"OD{4300000 + index}",
        invoice_number=f"INV/25-26/{index + 1:06d}",
        shipment_code=f"SHP{200000 + index}",
        weight_kg=Decimal("0.45"),
    )


def sample_picklist(index: int, rows: int = 30) -> PicklistDoc:
    return PicklistDoc(
        code=f"PL{5000 + index}",
        facility="WH1 Bengaluru",
        created=datetime(2025, 6, 1, 9, 30) + timedelta(minutes=index),
        rows=tuple(
            PicklistRow(
                shelf=f"A-{n // 10 + 1:02d}-{n % 10 + 1:02d}",
                sku=f"SKU-{n:05d}",
                description=PRODUCTS[n % len(PRODUCTS)][0],
                quantity=1 + n % 4,
                barcode_value=f"SKU-{n:05d}",
            )
            for n in range(rows)
        ),
    )


def sample_manifest(index: int, rows: int = 40) -> ManifestDoc:
    return ManifestDoc(
        code=f"MF{7000 + index}",
        facility="WH1 Bengaluru",
        channel="Flipkart",
        provider="Blue Dart Express",
        created=datetime(2025, 6, 1, 17, 0),
        rows=tuple(
            ManifestRow(
                awb=f"BLUEDART{1000000 + n}",
                shipment_code=f"SHP{200000 + n}",
                order_code=f"FLIPKART-OD{4300000 + n}",
                units=1 + n % 3,
                cod_amount=Decimal("1299.00") + n if n % 2 == 0 else None,
            )
            for n in range(rows)
        ),
    )
