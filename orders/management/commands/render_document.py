"""Render documents to a PDF file, for the shell and for tests.

    python manage.py render_document invoice INV-WH1-000001 -o invoice.pdf
    python manage.py render_document credit-note CN-WH1-000001 -o credit-note.pdf
    python manage.py render_document label SP-000001 SP-000002 -o labels.pdf [--four-up]
    python manage.py render_document picklist PL-000001 -o picklist.pdf
    python manage.py render_document manifest MF-000001 -o handover.pdf

CODE is the invoice or credit note number, the shipment, picklist or manifest code; several
codes print into one PDF (labels in pick order, the rest as given). The documents are those
the admin prints (`orders.printing`): an issued invoice prints its stored file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Model

from imports.models import ExportKind
from imports.printing import Selection, render
from orders.models import Invoice, InvoiceType, Manifest, Picklist, Shipment
from orders.printing import NotPrintable


@dataclass(frozen=True)
class Document:
    kind: str  # of imports.printing
    model: type[Model]
    noun: str
    invoice_type: str = ""  # invoices and credit notes share a model

    def ids(self, codes: list[str]) -> list[int]:
        """The records' ids in the order of `codes`; CommandError naming unknown codes."""
        codes = list(dict.fromkeys(codes))
        fields = ["code", "pk", "invoice_type"] if self.invoice_type else ["code", "pk"]
        found = {
            row[0]: row[1:]
            for row in self.model.objects.filter(code__in=codes).values_list(*fields)
        }
        unknown = [code for code in codes if code not in found]
        if unknown:
            raise CommandError(f"No {self.noun} {', '.join(unknown)}")
        wrong = [
            code for code in codes if self.invoice_type and found[code][1] != self.invoice_type
        ]
        if wrong:
            other = "credit-note" if self.invoice_type == InvoiceType.SALE else "invoice"
            raise CommandError(
                f"{', '.join(wrong)}: not a {self.noun}; render it with `render_document {other}`"
            )
        return [found[code][0] for code in codes]


DOCUMENTS = {
    "invoice": Document(ExportKind.INVOICES, Invoice, "tax invoice", InvoiceType.SALE),
    "credit-note": Document(
        ExportKind.CREDIT_NOTES, Invoice, "credit note", InvoiceType.SALE_RETURN
    ),
    "label": Document(ExportKind.LABELS, Shipment, "shipment"),
    "picklist": Document(ExportKind.PICKLISTS, Picklist, "picklist"),
    "manifest": Document(ExportKind.MANIFESTS, Manifest, "manifest"),
}


class Command(BaseCommand):
    help = "Render tax invoices, credit notes, labels, picklists or handover sheets to a PDF."

    def add_arguments(self, parser) -> None:
        parser.add_argument("kind", choices=list(DOCUMENTS))
        parser.add_argument(
            "codes",
            nargs="+",
            metavar="CODE",
            help="invoice number or shipment, picklist or "
            "manifest code; several print into one PDF",
        )
        parser.add_argument("-o", "--output", required=True, metavar="FILE.pdf")
        parser.add_argument("--four-up", action="store_true", help="labels: four to an A4 page")

    def handle(self, *args, kind: str, codes: list[str], output: str, four_up: bool, **options):
        document = DOCUMENTS[kind]
        if four_up and kind != "label":
            raise CommandError("--four-up is for labels only")
        ids = document.ids(codes)
        try:
            pdf = render(Selection(document.kind, tuple(ids), four_up=four_up))
        except NotPrintable as exc:
            raise CommandError(str(exc)) from exc
        Path(output).write_bytes(pdf)
        self.stdout.write(f"Wrote {len(ids)} {kind}(s) to {output} ({len(pdf):,} bytes).")
