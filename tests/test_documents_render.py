"""Documents rendered for real and read back: text with pdftotext, barcodes with zbar.

No mocks: each PDF is produced by the renderer, its text extracted by poppler's pdftotext, and
its pages rasterised by pdftoppm and decoded by zbar (pyzbar), as a scanner at the dock would.
"""

from __future__ import annotations

import multiprocessing
import shutil
import subprocess
from datetime import date, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings
from PIL import Image

from documents import pdf
from documents.data import (
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
from documents.pdf import PdfSpool, merge_pdfs, page_count
from documents.render import (
    fonts,
    invoices,
    render_invoices,
    render_labels,
    render_manifests,
    render_picklists,
)
from documents.render.invoices import compile_invoices, typst_to_pdf
from documents.templatetags.documents_tags import typst as typst_filter
from documents.templatetags.documents_tags import typst_str
from documents.words import amount_in_words, format_inr

SELLER = Party(
    "Acme Retail Pvt Ltd",
    ("Plot 42, KIADB Area",),
    "Bengaluru",
    "Karnataka",
    "560099",
    state_code="29",
    gstin="29AABCA1234F1Z5",
    phone="080-40001234",
)
BUYER = Party(
    "Zen Traders LLP",
    ("12 MG Road",),
    "Mysuru",
    "Karnataka",
    "570001",
    state_code="29",
    gstin="29AAFFZ9876K1Z2",
    phone="9845012345",
)
DELHI = Party(
    "Ravi Kumar",
    ("B-7 Lajpat Nagar",),
    "New Delhi",
    "Delhi",
    "110024",
    state_code="07",
    phone="9810012345",
)


@pytest.fixture(autouse=True)
def _tools(require_services):
    for tool in ("pdftotext", "pdftoppm", "pdffonts"):
        if not shutil.which(tool):
            require_services(f"{tool} is missing: apt-get install poppler-utils")
    try:
        import pyzbar.pyzbar  # noqa: F401
    except (ImportError, OSError):
        require_services("zbar is missing: apt-get install libzbar0")


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def decode_page(pdf: bytes, tmp_path: Path, page: int = 1, dpi: int = 200) -> list[str]:
    """Rasterise one page and return every barcode zbar finds on it."""
    from pyzbar.pyzbar import decode

    path = tmp_path / "scan.pdf"
    path.write_bytes(pdf)
    prefix = tmp_path / f"page{page}"
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            str(dpi),
            "-gray",
            "-png",
            "-singlefile",
            "-f",
            str(page),
            "-l",
            str(page),
            str(path),
            str(prefix),
        ],
        check=True,
    )
    with Image.open(f"{prefix}.png") as image:
        return [symbol.data.decode() for symbol in decode(image)]


def invoice(kind: str = TAX_INVOICE, *, buyer: Party = BUYER, reverse_charge=False, **kw):
    intra = buyer.state_code == SELLER.state_code
    taxes = (
        dict(cgst_rate=D("9"), cgst=D("152.54"), sgst_rate=D("9"), sgst=D("152.54"))
        if intra
        else dict(igst_rate=D("18"), igst=D("305.08"))
    )
    line = InvoiceLine(
        "Running shoes, size 9",
        "64041100",
        1,
        D("1999.00"),
        D("1693.92"),
        D("1999.00"),
        discount=D("0.00"),
        **taxes,
    )
    summary = TaxSummaryRow(
        "64041100",
        D("1693.92"),
        D("18"),
        **{k: v for k, v in taxes.items() if not k.endswith("rate")},
    )
    totals = InvoiceTotals(
        D("1693.92"), D("1999.00"), **{k: v for k, v in taxes.items() if not k.endswith("rate")}
    )
    return InvoiceDoc(
        kind=kind,
        number=kw.pop("number", "INV/25-26/000123"),
        date=date(2025, 7, 4),
        seller=SELLER,
        buyer=buyer,
        ship_to=buyer,
        place_of_supply=buyer.state,
        place_of_supply_code=buyer.state_code,
        lines=(line,),
        hsn_summary=(summary,),
        totals=totals,
        amount_in_words=amount_in_words(D("1999.00")),
        order_code="FLIPKART-OD98765",
        channel="Flipkart",
        channel_order_id="OD98765",
        qr_text="29AABCA1234F1Z5|INV/25-26/000123|04-07-2025|1999.00",
        reverse_charge=reverse_charge,
        **kw,
    )


def label(awb: str = "BD1234567890", cod: D | None = D("1299.50")) -> LabelDoc:
    return LabelDoc(
        awb=awb,
        provider="Blue Dart Express",
        pincode="110024",
        ship_to=DELHI,
        return_address=SELLER,
        payment_method="COD" if cod else "PREPAID",
        cod_amount=cod,
        order_code="FLIPKART-OD98765",
        channel_order_id="OD98765",
        invoice_number="INV/25-26/000123",
        shipment_code="SHP000042",
        weight_kg=D("0.75"),
    )


def test_amount_in_words_uses_indian_numbering():
    assert amount_in_words(D("12345678.90")) == (
        "Rupees One Crore Twenty-Three Lakh Forty-Five Thousand Six Hundred and Seventy-Eight"
        " and Ninety Paise Only"
    )
    assert amount_in_words(D("100000")) == "Rupees One Lakh Only"
    assert amount_in_words(D("0.01")) == "Rupees Zero and One Paisa Only"
    assert format_inr(D("12345678.9"), symbol=True) == "₹1,23,45,678.90"
    with pytest.raises(ValueError):
        amount_in_words(D("-1"))


def test_tax_invoice_prints_every_rule_46_particular(tmp_path):
    pdf = render_invoices([invoice(reverse_charge=True)])
    text = pdf_text(pdf, tmp_path)
    for expected in (
        "TAX INVOICE",
        "INV/25-26/000123",
        "04-07-2025",
        "Acme Retail Pvt Ltd",
        "GSTIN: 29AABCA1234F1Z5",
        "29AAFFZ9876K1Z2",
        "Zen Traders LLP",
        "64041100",
        "Place of supply: Karnataka (29)",
        "reverse charge: Yes",
        "1,693.92",
        "152.54",
        "1,999.00",
        "Rupees One Thousand Nine Hundred and Ninety-Nine Only",
        "FLIPKART-OD98765",
        "computer-generated",
        "CGST",
        "SGST",
        "HSN-WISE TAX SUMMARY",
        "₹1,999.00",
    ):
        assert expected in text, expected
    assert "IGST" not in text
    fonts_used = subprocess.run(
        ["pdffonts", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()
    assert "DejaVuSans-Bold" in fonts_used  # ₹ in an embedded font that has the glyph
    assert decode_page(pdf, tmp_path) == [invoice().qr_text]  # the QR of the reference


def test_inter_state_invoice_shows_igst_and_unregistered_buyer(tmp_path):
    text = pdf_text(render_invoices([invoice(buyer=DELHI)]), tmp_path)
    assert "Place of supply: Delhi (07)" in text
    assert "IGST" in text and "305.08" in text and "CGST" not in text
    assert "Unregistered" in text and "reverse charge: No" in text


def test_credit_note_names_the_original_invoice(tmp_path):
    note = invoice(
        CREDIT_NOTE,
        number="CN/25-26/000007",
        original_invoice_number="INV/25-26/000123",
        original_invoice_date=date(2025, 6, 30),
    )
    pdf = render_invoices([invoice(), note])
    assert page_count(pdf) == 2
    text = pdf_text(pdf, tmp_path)
    assert "CREDIT NOTE" in text and "CN/25-26/000007" in text
    assert "Issued against tax invoice INV/25-26/000123 dated 30-06-2025" in " ".join(text.split())
    with pytest.raises(ValueError, match="original invoice"):
        invoice(CREDIT_NOTE, number="CN/25-26/000008")


def test_seller_template_override_changes_the_invoice(tmp_path):
    folder = tmp_path / "templates" / "documents"
    folder.mkdir(parents=True)
    (folder / "invoice.typ").write_text(
        '{% extends "documents/invoice_base.typ" %}{% load documents_tags %}'
        "{% block footer %}#text(fill: blue)[Thank you for shopping with Acme, "
        "{{ inv.doc.buyer.name|typst }}]{% endblock %}"
    )
    templates = [{**settings.TEMPLATES[0], "DIRS": [tmp_path / "templates"]}]
    with override_settings(TEMPLATES=templates):
        text = pdf_text(render_invoices([invoice()]), tmp_path)
    assert "Thank you for shopping with Acme, Zen Traders LLP" in text
    assert "GSTIN: 29AABCA1234F1Z5" in text  # the blocks not replaced are still printed
    assert "computer-generated" not in text  # the block really was replaced
    assert "computer-generated" in pdf_text(render_invoices([invoice()]), tmp_path)


@pytest.mark.parametrize(
    "footer, error",
    [
        ("#tabel()", "unknown variable: tabel"),
        # Typst code reads only under the app's template folder, not the working directory
        ('#read("../../render/invoices.py")', "would escape the project root"),
    ],
)
def test_a_broken_override_names_typsts_error(tmp_path, footer, error):
    folder = tmp_path / "templates" / "documents"
    folder.mkdir(parents=True)
    (folder / "invoice.typ").write_text(
        '{% extends "documents/invoice_base.typ" %}{% block footer %}' + footer + "{% endblock %}"
    )
    templates = [{**settings.TEMPLATES[0], "DIRS": [tmp_path / "templates"]}]
    with override_settings(TEMPLATES=templates), pytest.raises(RuntimeError) as raised:
        render_invoices([invoice()])
    assert "The invoice template did not compile" in str(raised.value)
    assert error in str(raised.value)


HOSTILE = (
    "Ravi *bold* _em_ #emph[x] $x^2$ [a] <lbl> @ref ~ `raw` \"q\" 'a' // c /* d */ "
    "-- --- ... -? \\n \\ http://x.y/z = + 1. {b} % & ; : ,"
)


def test_typst_filters_print_hostile_text_literally(tmp_path):
    source = (
        '#set page(width: 40cm, height: auto)\n#set text(font: "DejaVu Sans")\n'
        f"{typst_filter(HOSTILE)}\n\n"
        f"#text({typst_str(HOSTILE)})\n\n"
        f"= {typst_filter('#heading ' + chr(10) + '= not a heading')}\n"
        f"{typst_filter('- not a list')}"
    )
    text = pdf_text(typst_to_pdf(source), tmp_path)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines == [HOSTILE, HOSTILE, "#heading = not a heading", "- not a list"]
    assert typst_filter(None) == "" and typst_str(None) == '""'
    assert typst_filter("a\x00b\x1bc") == "abc"  # control characters are dropped


def test_hostile_customer_text_prints_verbatim_on_the_invoice(tmp_path):
    buyer = Party(
        "Ravi *Kumar* #1 [VIP] <a> @b",
        ('12/3 "A" Block // $5 ~ `x`',),
        "New Delhi",
        "Delhi",
        "110024",
        state_code="07",
    )
    text = " ".join(pdf_text(render_invoices([invoice(buyer=buyer)]), tmp_path).split())
    assert "Ravi *Kumar* #1 [VIP] <a> @b" in text
    assert '12/3 "A" Block // $5 ~ `x`' in text


def test_bulk_chunks_keep_order_and_bytes_are_reproducible(monkeypatch, tmp_path):
    monkeypatch.setattr(invoices, "CHUNK", 2)  # 5 invoices: three Typst compiles, merged
    docs = [invoice(number=f"INV/25-26/00000{n}") for n in range(5)]
    pdf = render_invoices(docs)
    assert page_count(pdf) == 5
    text = pdf_text(pdf, tmp_path)
    positions = [text.index(doc.number) for doc in docs]
    assert positions == sorted(positions)
    assert render_invoices(docs[:1]) == render_invoices(docs[:1])  # same invoice, same bytes


def fonts_embedded(pdf: bytes, tmp_path: Path) -> int:
    """How many font objects poppler finds in the file (each embedded copy counts)."""
    path = tmp_path / "fonts.pdf"
    path.write_bytes(pdf)
    listing = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True)
    return len(listing.stdout.splitlines()) - 2  # two header lines


def test_a_bulk_compile_gives_each_invoice_its_own_file_and_its_pages_in_the_chunk(
    monkeypatch, tmp_path
):
    monkeypatch.setattr(invoices, "CHUNK", 3)  # 5 invoices: a compile of 3, one of 2
    docs = [invoice(number=f"INV/25-26/00001{n}") for n in range(5)]
    chunks = list(compile_invoices(iter(docs)))
    assert [len(chunk) for chunk in chunks] == [3, 2]
    compiled = [one for chunk in chunks for one in chunk]
    assert compiled[0].chunk is compiled[2].chunk is not compiled[3].chunk
    for doc, one in zip(docs, compiled, strict=True):
        own = pdf_text(one.file, tmp_path)
        with PdfSpool() as spool:
            spool.add(one.chunk, one.pages)
            in_chunk = pdf_text(spool.result(), tmp_path)
        others = [d.number for d in docs if d is not doc]
        assert page_count(one.file) == 1 and one.pages.stop - one.pages.start == 1
        for text in (own, in_chunk):
            assert doc.number in text and not any(number in text for number in others)


def test_a_template_without_bookmarks_is_compiled_one_invoice_at_a_time(monkeypatch, tmp_path):
    folder = tmp_path / "templates" / "documents"
    folder.mkdir(parents=True)
    (folder / "invoice.typ").write_text(
        '{% load documents_tags %}#set text(font: "DejaVu Sans")\n'
        "{% for inv in invoices %}{% if not forloop.first %}"
        "#pagebreak()\n{% endif %}Plain {{ inv.doc.number|typst }}\n{% endfor %}"
    )
    templates = [{**settings.TEMPLATES[0], "DIRS": [tmp_path / "templates"]}]
    docs = [invoice(number=f"INV/25-26/00002{n}") for n in range(3)]
    with override_settings(TEMPLATES=templates):
        compiled = [one for chunk in compile_invoices(docs) for one in chunk]
    for doc, one in zip(docs, compiled, strict=True):
        assert one.chunk is one.file and one.pages is None
        assert pdf_text(one.file, tmp_path).split() == ["Plain", doc.number]


def test_the_spool_embeds_each_font_once_keeps_the_order_and_a_lone_file_as_it_is(
    monkeypatch, tmp_path
):
    docs = [invoice(number=f"INV/25-26/00003{n}") for n in range(4)]
    files = [one.file for chunk in compile_invoices(docs) for one in chunk]  # one chunk
    assert fonts_embedded(merge_pdfs(files), tmp_path) == 8  # each file: regular and bold
    # all in memory: each font once; a temporary file per source: each file's own fonts
    for spill_at, fonts_in_result in ((pdf.SPOOL_BYTES, 2), (1, 8)):
        monkeypatch.setattr(pdf, "SPOOL_BYTES", spill_at)
        with PdfSpool() as spool:
            for file in files:
                spool.add(file)
            merged = spool.result()
        text = pdf_text(merged, tmp_path)
        positions = [text.index(doc.number) for doc in docs]
        assert positions == sorted(positions) and page_count(merged) == 4
        assert fonts_embedded(merged, tmp_path) == fonts_in_result
    with PdfSpool() as spool:
        spool.add(files[0])
        assert spool.result() is files[0]


def _compile_in_child(results) -> None:
    try:
        typst_to_pdf("in the child")
        results.put("compiled")
    except RuntimeError as error:
        results.put(str(error))


def test_a_process_forked_after_compiling_is_told_it_cannot_compile():
    typst_to_pdf("parent")  # Typst would hang for good in a child forked now
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_compile_in_child, args=(results,))
    child.start()
    try:
        assert "forked from one that already compiled" in results.get(timeout=60)
    finally:
        child.join(timeout=10)
        child.kill()


def test_label_has_awb_barcode_pincode_and_cod_in_rupees(tmp_path):
    pdf = render_labels([label(), label("BD0000000002", cod=None)])
    assert page_count(pdf) == 2
    text = pdf_text(pdf, tmp_path)
    for expected in (
        "BD1234567890",
        "110024",
        "COLLECT",
        "₹1,299.50",
        "Ravi Kumar",
        "Phone: 9810012345",
        "FLIPKART-OD98765",
        "INV/25-26/000123",
        "SHP000042",
        "Blue Dart Express",
        "If undelivered, return to",
        "PREPAID: DO NOT COLLECT CASH",
    ):
        assert expected in text, expected
    fonts_used = subprocess.run(
        ["pdffonts", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()
    # ₹ is printed in embedded DejaVu Sans (the 14 standard fonts have no such glyph)
    bold = next(line for line in fonts_used.splitlines() if "DejaVuSans-Bold" in line)
    assert bold.split()[-5] == "yes"  # the "emb" column
    assert decode_page(pdf, tmp_path, 1) == ["BD1234567890"]
    assert decode_page(pdf, tmp_path, 2) == ["BD0000000002"]


def test_four_up_puts_four_labels_on_an_a4_page(tmp_path):
    awbs = [f"XB{9000 + n}" for n in range(5)]
    pdf = render_labels([label(awb) for awb in awbs], four_up=True)
    assert page_count(pdf) == 2
    assert sorted(decode_page(pdf, tmp_path, 1)) == awbs[:4]
    assert decode_page(pdf, tmp_path, 2) == awbs[4:]


def test_picklist_keeps_walk_order_with_a_barcode_per_row(tmp_path):
    shelves = ["C-03-01", "A-01-02", "B-07-09"]  # walk order is the caller's, not sorted
    rows = tuple(
        PicklistRow(shelf, f"SKU-{n}", f"Item {n}", n + 1, f"EAN00{n}")
        for n, shelf in enumerate(shelves)
    )
    pdf = render_picklists([PicklistDoc("PL0042", "WH1", datetime(2025, 7, 4, 9, 0), rows)])
    text = pdf_text(pdf, tmp_path)
    positions = [text.index(shelf) for shelf in shelves]
    assert positions == sorted(positions)
    assert "Totals: 3 lines, 3 SKUs, 6 units" in text
    assert sorted(decode_page(pdf, tmp_path)) == ["EAN000", "EAN001", "EAN002", "PL0042"]


def test_manifest_lists_every_awb_with_barcode_counts_and_signatures(tmp_path):
    rows = tuple(
        ManifestRow(
            # 18 characters, as couriers' AWBs are: the longest symbols with the narrowest bars
            f"BLUEDART{1030 + n:010d}",
            f"SHP{n}",
            f"ORD-{n}",
            1 + n % 2,
            D("499.00") if n % 2 else None,
        )
        for n in range(20)
    )
    doc = ManifestDoc("MF0099", "WH1", "Amazon", "Delhivery", datetime(2025, 7, 4, 17), rows)
    pdf = render_manifests([doc])
    text = pdf_text(pdf, tmp_path)
    assert "Shipments: 20" in text and "Units: 30" in text
    assert "COD shipments: 10 (₹4,990.00)" in text and "Prepaid: 10" in text
    assert "Received by (Delhivery)" in text and "Signature" in text
    assert "Channel: Amazon" in text
    found = set()
    for page in range(1, page_count(pdf) + 1):
        found.update(decode_page(pdf, tmp_path, page))
    assert found == {row.awb for row in rows} | {"MF0099"}


def test_missing_font_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(fonts, "SEARCH_DIRS", ())
    monkeypatch.setenv("DOCUMENTS_FONT_DIR", str(tmp_path))
    fonts.font_path.cache_clear()
    try:
        with pytest.raises(fonts.FontMissing, match="fonts-dejavu-core"):
            fonts.font_path(fonts.REGULAR)
    finally:
        fonts.font_path.cache_clear()
