"""Which PDF engine for which document: the same documents through each engine, side by side.

Run on demand (not a test): `.venv/bin/python bench/bench_pdf_engines.py [--n 500]`.
Needs candidates the project does not ship: `pip install fpdf2 xhtml2pdf weasyprint
python-barcode` (ReportLab and typst are dependencies; WeasyPrint also needs Debian's
libpango-1.0-0); a case whose engine is missing is reported as such. Each case runs in a child
process of its own, so its peak RSS is its own; the figures are in the README section
"Rendering: engines measured, and why".

- Labels (4x6, one PDF): ReportLab canvas (documents.render.labels) vs fpdf2 drawing the same
  layout (Code128 modules from python-barcode drawn as rectangles).
- Manifest (A4 table, a barcode per row): ReportLab canvas vs fpdf2.
- Invoices (A4, the same 500 sample invoices): Typst (`render_invoices`: the Django template
  documents/invoice.typ, chunks compiled in-process and merged) vs xhtml2pdf and
  WeasyPrint on the HTML version of the same layout (bench/engines/invoice.html, chunks of 100
  merged with pypdf); and one engine call per invoice (the naive way) on a sample of 50.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "uniware.settings")
    os.environ.setdefault("DEBUG", "1")
    import logging

    import django

    django.setup()
    logging.getLogger("weasyprint").setLevel(logging.WARNING)
    logging.getLogger("xhtml2pdf").setLevel(logging.ERROR)


# --- fpdf2 versions of the fixed layouts ---------------------------------------------------


def _fpdf(size):
    from fpdf import FPDF

    from documents.render.fonts import BOLD, REGULAR, font_path

    pdf = FPDF(unit="pt", format=size)
    pdf.set_auto_page_break(False)
    pdf.set_margin(0)
    pdf.add_font("DocSans", "", str(font_path(REGULAR)))
    pdf.add_font("DocSans", "B", str(font_path(BOLD)))
    return pdf


def _fpdf_code128(pdf, value, x, y_top, width, height, digit_size=9):
    import barcode

    modules = barcode.get("code128", value).build()[0]
    bar = min(1.6, width / (len(modules) + 20))
    left = x + (width - bar * len(modules)) / 2
    run_start = None
    for i, module in enumerate(modules + "0"):
        if module == "1" and run_start is None:
            run_start = i
        elif module == "0" and run_start is not None:
            pdf.rect(left + run_start * bar, y_top, (i - run_start) * bar, height, style="F")
            run_start = None
    pdf.set_font("DocSans", "", digit_size)
    pdf.text(x + width / 2 - pdf.get_string_width(value) / 2, y_top + height + digit_size, value)


def fpdf2_labels(docs) -> bytes:
    from documents.words import format_inr

    pdf = _fpdf((288, 432))
    for d in docs:
        pdf.add_page()
        pdf.rect(5, 5, 278, 422)
        pdf.set_font("DocSans", "B", 14)
        pdf.text(10, 24, d.provider)
        pdf.rect(194, 10, 84, 20, style="F" if d.is_cod else "D")
        _fpdf_code128(pdf, d.awb, 10, 40, 268, 54, 11)
        pdf.set_font("DocSans", "", 7)
        pdf.text(10, 118, "PIN")
        pdf.set_font("DocSans", "B", 40)
        pdf.text(10, 152, d.pincode)
        pdf.set_font("DocSans", "B", 22)
        if d.is_cod:
            pdf.rect(10, 160, 268, 34, style="F")
            pdf.set_text_color(255)
            pdf.text(120, 185, format_inr(d.cod_amount, symbol=True))
            pdf.set_text_color(0)
        else:
            pdf.rect(10, 160, 268, 34)
            pdf.text(20, 185, "PREPAID")
        y = 215
        pdf.set_font("DocSans", "B", 12)
        pdf.text(10, y, d.ship_to.name)
        pdf.set_font("DocSans", "", 10)
        for line in (*d.ship_to.address_lines, f"{d.ship_to.city}, {d.ship_to.state}"):
            y += 12
            pdf.text(10, y, line)
        pdf.set_font("DocSans", "", 8)
        for i, ref in enumerate(
            (d.order_code, d.invoice_number, d.channel_order_id, d.shipment_code)
        ):
            pdf.text(10 + (i % 2) * 134, 290 + (i // 2) * 11, ref)
        r = d.return_address
        pdf.set_font("DocSans", "", 7)
        pdf.text(10, 330, f"{r.name}, {', '.join(r.address_lines)}, {r.city} {r.pincode}")
    return bytes(pdf.output())


def fpdf2_manifests(docs) -> bytes:
    pdf = _fpdf((595.28, 841.89))
    for d in docs:
        for start in range(0, len(d.rows), 16):
            pdf.add_page()
            pdf.set_font("DocSans", "B", 16)
            pdf.text(36, 54, "MANIFEST / HANDOVER SHEET")
            _fpdf_code128(pdf, d.code, 369, 40, 190, 40)
            y = 130
            for n, row in enumerate(d.rows[start : start + 16], start + 1):
                pdf.set_font("DocSans", "", 9)
                pdf.text(40, y + 20, str(n))
                _fpdf_code128(pdf, row.awb, 64, y + 4, 172, 22, 7)
                for x, value in (
                    (240, row.shipment_code),
                    (320, row.order_code),
                    (440, str(row.units)),
                    (490, str(row.cod_amount or "Prepaid")),
                ):
                    pdf.set_font("DocSans", "", 9)
                    pdf.text(x, y + 20, value)
                pdf.line(36, y + 40, 559, y + 40)
                y += 40
    return bytes(pdf.output())


# --- the invoice: Typst (the app's renderer) and the HTML engines --------------------------

HTML_DIR = Path(__file__).resolve().parent / "engines"


def invoice_html(docs) -> str:
    """The HTML invoice template (before the app moved to Typst) for these invoices."""
    from django.template import Context, Engine

    from documents.render import invoices
    from documents.render.fonts import BOLD, REGULAR, font_path

    engine = Engine(
        dirs=[str(HTML_DIR)],
        libraries={"documents_tags": "documents.templatetags.documents_tags"},
    )
    font_css = "\n".join(
        f'@font-face {{ font-family: DocSans; src: url("{font_path(name)}"); '
        f"font-weight: {weight}; }}"
        for name, weight in ((REGULAR, "normal"), (BOLD, "bold"))
    )
    rows = []
    for doc in docs:
        row = invoices.invoice_context(doc)
        qr = segno_png_uri(doc.qr_text)  # same QR settings as the Typst path
        rows.append({**row, "qr": qr})
    context = Context({"invoices": rows, "font_css": font_css, "title": docs[0].number})
    return engine.get_template("invoice.html").render(context)


def segno_png_uri(text: str) -> str:
    import segno

    return segno.make(text, error="m", mask=0, micro=False).png_data_uri(scale=4, border=1)


def xhtml2pdf_html_to_pdf(html: str) -> bytes:
    """xhtml2pdf, with the font folder allowed (else it silently drops @font-face: ₹ a box)."""
    from xhtml2pdf import pisa
    from xhtml2pdf.config.resources import ResourceAccessPolicy

    from documents.render.fonts import REGULAR, font_path

    policy = ResourceAccessPolicy(
        allow_remote=False, base_dir=None, extra_roots=(font_path(REGULAR).parent,)
    )
    out = io.BytesIO()
    if pisa.CreatePDF(html, dest=out, resource_policy=policy).err:
        raise RuntimeError("xhtml2pdf failed")
    return out.getvalue()


def weasyprint_html_to_pdf(html: str) -> bytes:
    """WeasyPrint on the same HTML; it takes the same @font-face rules as file URIs."""
    from weasyprint import HTML

    from documents.render.fonts import BOLD, REGULAR, font_path

    for name in (REGULAR, BOLD):
        html = html.replace(f'url("{font_path(name)}")', f'url("{font_path(name).as_uri()}")')
    return HTML(string=html).write_pdf()


def _invoices(engine: str, docs, chunk: int) -> bytes:
    from documents.pdf import merge_pdfs
    from documents.render.invoices import render_invoices

    if engine == "typst":  # render_invoices compiles chunks of invoices.CHUNK itself
        if chunk == 1:
            return merge_pdfs([render_invoices([doc]) for doc in docs])
        return render_invoices(docs)
    to_pdf = weasyprint_html_to_pdf if engine == "weasyprint" else xhtml2pdf_html_to_pdf
    parts = [to_pdf(invoice_html(docs[i : i + chunk])) for i in range(0, len(docs), chunk)]
    return parts[0] if len(parts) == 1 else merge_pdfs(parts)


def run_case(case: str, n: int) -> dict:
    from documents import samples
    from documents.render.labels import render_labels
    from documents.render.sheets import render_manifests

    _django()
    manifests = [samples.sample_manifest(i, rows=50) for i in range(max(1, n // 50))]
    labels = [samples.sample_label(i) for i in range(n)]
    invoices = [samples.sample_invoice(i, credit_note=i % 10 == 9) for i in range(n)]
    naive = invoices[: min(n, 50)]
    cases = {
        "labels reportlab": (n, lambda: render_labels(labels)),
        "labels fpdf2": (n, lambda: fpdf2_labels(labels)),
        "manifest rows reportlab": (n, lambda: render_manifests(manifests)),
        "manifest rows fpdf2": (n, lambda: fpdf2_manifests(manifests)),
        "invoices typst": (n, lambda: _invoices("typst", invoices, 25)),
        "invoices xhtml2pdf": (n, lambda: _invoices("xhtml2pdf", invoices, 100)),
        "invoices weasyprint": (n, lambda: _invoices("weasyprint", invoices, 100)),
        "invoices typst naive": (len(naive), lambda: _invoices("typst", naive, 1)),
        "invoices xhtml2pdf naive": (len(naive), lambda: _invoices("xhtml2pdf", naive, 1)),
        "invoices weasyprint naive": (len(naive), lambda: _invoices("weasyprint", naive, 1)),
    }
    count, render = cases[case]
    start = time.perf_counter()
    pdf = render()
    seconds = time.perf_counter() - start
    from documents.pdf import page_count

    return {
        "case": case,
        "count": count,
        "seconds": round(seconds, 2),
        "per_s": round(count / seconds, 1),
        "ms_each": round(1000 * seconds / count, 1),
        "pages": page_count(pdf),
        "kb": len(pdf) // 1024,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


CASES = (
    "labels reportlab",
    "labels fpdf2",
    "manifest rows reportlab",
    "manifest rows fpdf2",
    "invoices typst",
    "invoices xhtml2pdf",
    "invoices weasyprint",
    "invoices typst naive",
    "invoices xhtml2pdf naive",
    "invoices weasyprint naive",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="documents per case (default 500)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.n)))
        return
    print(
        f"{'case':28} {'count':>5} {'s':>7} {'per s':>7} {'ms each':>8} {'pages':>6} "
        f"{'KB':>6} {'peak RSS MB':>11}"
    )
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for case in CASES:
        child = subprocess.run(
            [sys.executable, __file__, "--case", case, "--n", str(args.n)],
            capture_output=True,
            text=True,
        )
        if child.returncode:  # an engine not installed, or a failure: say which, go on
            print(f"{case:28} failed: {(child.stderr.strip().splitlines() or ['?'])[-1]}")
            continue
        r = json.loads(child.stdout.strip().splitlines()[-1])
        print(
            f"{r['case']:28} {r['count']:>5} {r['seconds']:>7} {r['per_s']:>7} "
            f"{r['ms_each']:>8} {r['pages']:>6} {r['kb']:>6} {r['peak_rss_mb']:>11}",
            flush=True,
        )
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
