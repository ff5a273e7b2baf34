"""Invoices: a shipment's GST tax invoice, the credit notes that reverse it, their lines, and
the printed file of each (rendered once, then kept: a re-print gives the same bytes).

An invoice keeps everything it prints: the lines with their tax (`InvoiceLine`), the totals,
and in `particulars` the seller, buyer and ship-to blocks as they were when it was issued, so a
later change of a facility's address or an order's customer never changes an issued invoice.
`orders.services.invoicing` issues them; `orders.printing` builds the printed documents.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models


class InvoiceType(models.TextChoices):
    SALE = "SALE", "Sale invoice"
    SALE_RETURN = "SALE_RETURN", "Sale return invoice (credit note)"


# The sale invoice a shipment carries now (older ones were superseded at re-packing).
CURRENT_SALE = models.Q(invoice_type="SALE", superseded_at__isnull=True)


TAXES = ("cgst", "sgst", "igst", "cess")
HALF_PAISA = Decimal("0.005")


def adds_up(total: str, *parts: str) -> models.Q:
    """`total` is the sum of `parts`, to the paisa. Written as a window of half a paisa: on
    PostgreSQL (numeric, two decimals) only equality falls in it; on SQLite, whose decimals
    are floating point (the demo's default database), so does the sum's rounding error."""
    summed = models.F(parts[0])
    for part in parts[1:]:
        summed = summed + models.F(part)
    return models.Q(**{f"{total}__gte": summed - HALF_PAISA, f"{total}__lte": summed + HALF_PAISA})


def _money_field(verbose_name: str | None = None) -> models.DecimalField:
    return models.DecimalField(verbose_name, max_digits=14, decimal_places=2, default=0)


def _rate(verbose_name: str | None = None) -> models.DecimalField:
    """Three decimals: CGST and SGST on the 0.25 % rate are 0.125 % each."""
    return models.DecimalField(verbose_name, max_digits=6, decimal_places=3, default=0)


class Invoice(models.Model):
    """A shipment's sale invoice (CGST Rule 46) or the credit note that reverses it (Rule 53).

    `total_amount` is what the channel collects for the invoiced units (tax-inclusive prices
    and shipping); the tax columns split it: taxable + CGST + SGST + IGST + cess = total."""

    code = models.CharField("invoice number", max_length=40, unique=True)
    invoice_type = models.CharField(max_length=12, choices=InvoiceType.choices)
    shipment = models.ForeignKey(
        "orders.Shipment", on_delete=models.PROTECT, related_name="invoices"
    )
    facility = models.ForeignKey("inventory.Facility", on_delete=models.PROTECT)
    total_amount = _money_field()
    taxable_amount = _money_field("taxable value")
    cgst = _money_field("CGST")
    sgst = _money_field("SGST")
    igst = _money_field("IGST")
    cess = _money_field()
    place_of_supply = models.CharField(
        max_length=2, blank=True, help_text="GST state code of the shipping address."
    )
    reverse_charge = models.BooleanField(default=False)
    particulars = models.JSONField(
        default=dict, blank=True, editable=False, help_text="Seller, buyer and ship-to as issued."
    )
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversals"
    )
    superseded_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="Re-invoiced after re-packing: a sale return invoice reverses this one and a "
        "new sale invoice replaced it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["shipment"],
                condition=models.Q(invoice_type="SALE", superseded_at__isnull=True),
                name="one_current_sale_invoice_per_shipment",
            ),
            models.CheckConstraint(
                condition=adds_up("total_amount", "taxable_amount", *TAXES),
                name="invoice_tax_adds_up",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def is_credit_note(self) -> bool:
        return self.invoice_type == InvoiceType.SALE_RETURN


class InvoiceLine(models.Model):
    """One line: one SKU at one price (or the shipping charged with goods of one rate).

    Amounts are rounded per line to the paisa (`gst.tax`); the line adds up exactly:
    taxable_value + CGST + SGST + IGST + cess = total."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField()
    sku = models.ForeignKey("inventory.Sku", null=True, blank=True, on_delete=models.PROTECT)
    description = models.CharField(max_length=255)
    hsn = models.CharField("HSN", max_length=20)
    is_shipping = models.BooleanField(default=False)
    quantity = models.PositiveIntegerField()
    unit = models.CharField(max_length=8, default="NOS")
    unit_price = _money_field("unit price (tax incl.)")
    discount = _money_field()
    taxable_value = _money_field()
    cgst_rate = _rate("CGST %")
    cgst = _money_field("CGST")
    sgst_rate = _rate("SGST %")
    sgst = _money_field("SGST")
    igst_rate = _rate("IGST %")
    igst = _money_field("IGST")
    cess_rate = _rate("cess %")
    cess = _money_field()
    total = _money_field()

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="uniq_invoice_line"),
            models.CheckConstraint(
                condition=adds_up("total", "taxable_value", *TAXES),
                name="invoice_line_adds_up",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.invoice_id}/{self.position}: {self.description}"


class InvoiceDocument(models.Model):
    """The PDF of an issued invoice, rendered at its first print and kept (never re-rendered):
    what was handed to the buyer is what a re-print gives. In its own table so invoice lists
    never read the bytes."""

    invoice = models.OneToOneField(
        Invoice, on_delete=models.CASCADE, primary_key=True, related_name="document"
    )
    pdf = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    rendered_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"PDF of {self.invoice_id}"
