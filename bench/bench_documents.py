"""Bulk rendering of documents: 500 labels and 500 invoices in one PDF each, beside the naive way.

Run on demand (not a test): `.venv/bin/python bench/bench_documents.py [--n 500]`.
The naive way renders one document per shipment and concatenates the PDFs with pypdf. Invoices
go through the app's renderer (a Django template writing Typst markup, compiled by the typst
package in chunks of 25); labels through the ReportLab canvas. The documents come from
`build_*_docs` (generated samples for now, no database): replace those with the queries that
build them from PostgreSQL and the figures become end to end.
Last line: `RESULT labels_per_s=N invoices_per_s=N peak_rss_mb=N label_speedup=N`.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
TARGETS = {"labels_per_s": 100, "invoices_per_s": 25, "peak_rss_mb": 250, "speedup": 5}


def setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "uniware.settings")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()


def build_label_docs(n: int) -> list:
    """The documents to print (the step the database version replaces with its queries)."""
    from documents.samples import sample_label

    return [sample_label(i) for i in range(n)]


def build_invoice_docs(n: int) -> list:
    from documents.samples import sample_invoice

    return [sample_invoice(i, credit_note=i % 10 == 9) for i in range(n)]


def naive(render: Callable[[Sequence], bytes], docs: Sequence) -> bytes:
    """One PDF per document, then concatenated: what a per-shipment print button does."""
    from documents.render.invoices import merge_pdfs

    return merge_pdfs([render([doc]) for doc in docs])


def timed(name: str, count: int, step: Callable[[], bytes]) -> float:
    """Run one case (building included), print its figures, return documents per second."""
    from pypdf import PdfReader

    start = time.perf_counter()
    pdf = step()
    seconds = time.perf_counter() - start
    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    rate = count / seconds
    print(
        f"{name:26} {count:>5} {seconds:>8.2f} s {rate:>8.1f}/s {1000 / rate:>7.1f} ms "
        f"{pages:>5} pages {len(pdf) // 1024:>6} KB",
        flush=True,
    )
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="documents per case (default 500)")
    args = parser.parse_args()
    setup()
    from documents.render import render_invoices, render_labels

    n = args.n
    render_labels(build_label_docs(2))  # fonts, imports: a worker pays this once
    render_invoices(build_invoice_docs(2))
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    labels = timed("labels, bulk", n, lambda: render_labels(build_label_docs(n)))
    invoices = timed("invoices, bulk", n, lambda: render_invoices(build_invoice_docs(n)))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # the bulk paths' peak
    labels_naive = timed("labels, naive", n, lambda: naive(render_labels, build_label_docs(n)))
    invoices_naive = timed(
        "invoices, naive", n, lambda: naive(render_invoices, build_invoice_docs(n))
    )
    print(
        f"peak RSS: bulk {rss} MB; with the naive runs (500 PDFs merged) "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB"
    )
    label_speedup = labels / labels_naive
    print(
        f"speed-up of bulk over naive: labels {label_speedup:.1f}x (target 5x), "
        f"invoices {invoices / invoices_naive:.1f}x"
    )
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    ok = (
        labels >= TARGETS["labels_per_s"]
        and invoices >= TARGETS["invoices_per_s"]
        and rss < TARGETS["peak_rss_mb"]
        and label_speedup >= TARGETS["speedup"]
    )
    print(f"targets: {TARGETS} -> {'met' if ok else 'NOT met'}")
    print(
        f"RESULT labels_per_s={labels:.0f} invoices_per_s={invoices:.1f} "
        f"peak_rss_mb={rss} label_speedup={label_speedup:.1f}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
