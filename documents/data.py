"""Plain data the renderers print: no database, no Django models.

The code that reads orders, invoices and manifests fills these; the renderers only format them.
Keeping them apart lets the same renderer serve the admin, the background jobs, the management
command and the benchmark, and lets tests build documents without a database.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal

TAX_INVOICE = "TAX INVOICE"
CREDIT_NOTE = "CREDIT NOTE"
INVOICE_KINDS = (TAX_INVOICE, CREDIT_NOTE)
ZERO = Decimal("0")


@dataclass(frozen=True, slots=True)
class Party:
    """A seller, buyer, ship-to or return address as printed."""

    name: str
    address_lines: tuple[str, ...]
    city: str
    state: str
    pincode: str
    state_code: str = ""  # GST state code, e.g. "29" for Karnataka
    gstin: str = ""  # empty for an unregistered buyer
    phone: str = ""


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One invoice line: one SKU at one price. Amounts are already rounded by the caller."""

    description: str
    hsn: str
    quantity: int
    unit_price: Decimal  # tax-inclusive, per unit
    taxable_value: Decimal
    total: Decimal
    unit: str = "NOS"
    discount: Decimal = ZERO
    cgst_rate: Decimal = ZERO
    cgst: Decimal = ZERO
    sgst_rate: Decimal = ZERO
    sgst: Decimal = ZERO
    igst_rate: Decimal = ZERO
    igst: Decimal = ZERO
    cess_rate: Decimal = ZERO
    cess: Decimal = ZERO

    @classmethod
    def of(cls, line: object) -> InvoiceLine:
        """From any line with these attribute names (a `gst.tax` line, a stored line)."""
        return cls(**{f.name: getattr(line, f.name) for f in fields(cls) if hasattr(line, f.name)})


@dataclass(frozen=True, slots=True)
class TaxSummaryRow:
    """One row of the HSN-wise summary: per HSN code and total GST rate."""

    hsn: str
    taxable: Decimal
    rate: Decimal = ZERO  # total GST rate of the row (CGST + SGST, or IGST)
    cgst: Decimal = ZERO
    sgst: Decimal = ZERO
    igst: Decimal = ZERO
    cess: Decimal = ZERO

    @property
    def total_tax(self) -> Decimal:
        return self.cgst + self.sgst + self.igst + self.cess


@dataclass(frozen=True, slots=True)
class InvoiceTotals:
    """Totals as computed by the invoicing code; printed, never recomputed here."""

    taxable: Decimal
    grand_total: Decimal
    cgst: Decimal = ZERO
    sgst: Decimal = ZERO
    igst: Decimal = ZERO
    cess: Decimal = ZERO
    round_off: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class InvoiceDoc:
    """A tax invoice (CGST Rule 46) or a credit note (Rule 53) ready to print."""

    kind: str  # TAX_INVOICE or CREDIT_NOTE
    number: str
    date: date
    seller: Party
    buyer: Party  # billing
    ship_to: Party
    place_of_supply: str  # state name
    place_of_supply_code: str  # GST state code
    lines: tuple[InvoiceLine, ...]
    hsn_summary: tuple[TaxSummaryRow, ...]
    totals: InvoiceTotals
    amount_in_words: str
    order_code: str
    channel: str
    qr_text: str
    reverse_charge: bool = False
    channel_order_id: str = ""
    original_invoice_number: str = ""  # credit notes only
    original_invoice_date: date | None = None  # credit notes only

    def __post_init__(self) -> None:
        if self.kind not in INVOICE_KINDS:
            raise ValueError(f"Invoice kind must be one of {INVOICE_KINDS}, not {self.kind!r}")
        if self.kind == CREDIT_NOTE and not (
            self.original_invoice_number and self.original_invoice_date
        ):
            raise ValueError(
                f"Credit note {self.number} must name the original invoice's number and date"
            )

    @property
    def is_credit_note(self) -> bool:
        return self.kind == CREDIT_NOTE

    @property
    def inter_state(self) -> bool:
        return any(line.igst for line in self.lines) or self.totals.igst != ZERO


@dataclass(frozen=True, slots=True)
class LabelDoc:
    """A 4x6 inch shipping label."""

    awb: str
    provider: str
    pincode: str
    ship_to: Party
    return_address: Party
    payment_method: str  # "COD" or "PREPAID"
    order_code: str
    invoice_number: str
    shipment_code: str
    cod_amount: Decimal | None = None
    channel_order_id: str = ""
    weight_kg: Decimal | None = None

    @property
    def is_cod(self) -> bool:
        return self.cod_amount is not None and self.cod_amount > 0


@dataclass(frozen=True, slots=True)
class PicklistRow:
    shelf: str
    sku: str
    description: str
    quantity: int
    barcode_value: str


@dataclass(frozen=True, slots=True)
class PicklistDoc:
    """A picklist sheet; rows are printed in the order given (the walk through the facility)."""

    code: str
    facility: str
    created: datetime
    rows: tuple[PicklistRow, ...]

    @property
    def total_quantity(self) -> int:
        return sum(row.quantity for row in self.rows)

    @property
    def total_skus(self) -> int:
        return len({row.sku for row in self.rows})


@dataclass(frozen=True, slots=True)
class ManifestRow:
    awb: str
    shipment_code: str
    order_code: str
    units: int
    cod_amount: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ManifestDoc:
    """A handover sheet for one facility, channel and provider."""

    code: str
    facility: str
    channel: str
    provider: str
    created: datetime
    rows: tuple[ManifestRow, ...] = field(default_factory=tuple)

    @property
    def shipment_count(self) -> int:
        return len(self.rows)

    @property
    def unit_count(self) -> int:
        return sum(row.units for row in self.rows)

    @property
    def cod_count(self) -> int:
        return sum(1 for row in self.rows if row.cod_amount)

    @property
    def cod_total(self) -> Decimal:
        return sum((row.cod_amount or ZERO for row in self.rows), ZERO)
