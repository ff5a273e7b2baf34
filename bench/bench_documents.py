"""Bulk printing from PostgreSQL: 500 labels and 500 invoices in one PDF each, beside the naive way.

Run on demand (not a test), on PostgreSQL:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/uniware \\
        .venv/bin/python bench/bench_documents.py [--n 500]

It creates (or reuses, emptied) the database `<name>_bench_documents`, makes N orders through the
services (allocated, picked, invoiced with GST lines, labelled), then times, end to end with
the queries: `labels_pdf(all)` against one `labels_pdf([one])` per shipment concatenated (the
naive way: a print button per shipment), and `invoices_pdf(all)` against one `invoices_pdf([one])`
per invoice, each on invoices never printed (the first print renders and stores them), plus the
re-print of stored invoices. Last line:
`RESULT labels_per_s=N invoices_per_s=N peak_rss_mb=N label_speedup=N`.

The orders are made in a child process (`--fill-only`), so the peak RSS measured is that of a
process that only prints, as a worker does: per step, the peak while the step runs (Linux's
VmHWM, reset before each step), and `peak_rss_mb` the highest of the bulk steps. CPU is the
process's user + system time (every thread), per document: unlike the rates, it hardly
depends on what else the machine runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
TARGETS = {"labels_per_s": 100, "invoices_per_s": 25, "peak_rss_mb": 250, "speedup": 5}
STATES = ["Karnataka", "Maharashtra", "Delhi"]  # intra-state (CGST + SGST) and IGST invoices
SKUS = [("SHOE", "6404", "18"), ("BOTTLE", "7323", "12")]  # besides make_world's TSHIRT (5 %)


def setup(*, create: bool) -> None:
    """Django in production mode on the bench's own database (created and migrated when
    `create`: the filling child does it, the measuring parent only connects)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "uniware.settings")
    # Production mode, as a worker runs: with DEBUG on, Django would keep every query's SQL
    # (here, the stored PDFs' bytes rendered into it) and the peak RSS would be that.
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", "bench-documents-only")
    import django
    from django.conf import settings

    django.setup()
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        sys.exit("bench_documents needs PostgreSQL: set DATABASE_URL=postgres://...")
    from django.db import connection

    name = f"{connection.settings_dict['NAME']}_bench_documents"
    if create:
        connection.settings_dict["TEST"]["NAME"] = name
        connection.creation.create_test_db(verbosity=0, keepdb=True, serialize=False)
    else:
        connection.settings_dict["NAME"] = name


def fill(n: int) -> tuple[list[int], list[int]]:
    """N orders of 1-3 lines through the services up to READY_TO_SHIP: (shipments, invoices)."""
    from decimal import Decimal

    from django.core.management import call_command

    from inventory.models import Inventory
    from orders.models import Invoice, Shipment
    from orders.services import (
        LineInput,
        OrderInput,
        orders_create,
        picklist_create,
        picklist_receive,
        shipments_generate_label,
        shipments_invoice,
    )
    from tests.factories import SkuFactory, make_world
    from uniware.core.defaults import ensure_defaults

    call_command("flush", interactive=False, verbosity=0)
    ensure_defaults()
    world = make_world(stock=10 * n)
    skus = [world.sku.code]
    for code, hsn, rate in SKUS:
        sku = SkuFactory(code=code, name=code.title(), hsn_code=hsn, gst_rate=Decimal(rate))
        Inventory.objects.create(
            facility=world.facility, shelf=world.shelf, sku=sku, quantity=10 * n
        )
        skus.append(code)
    inputs = []
    for i in range(n):
        lines = [
            LineInput(f"B{i}-L{k}", skus[k], 1 + (i + k) % 2, f"{499 + 100 * k}.00", "40.00")
            for k in range(1 + i % 3)
        ]
        inputs.append(
            OrderInput(
                channel=world.channel,
                channel_order_id=f"B{i}",
                ship_pincode="560001",
                ship_state=STATES[i % len(STATES)],
                customer_name=f"Customer {i}",
                ship_address_line1=f"{i} MG Road",
                ship_city="Somewhere",
                payment_method="COD" if i % 2 else "PREPAID",
                lines=lines,
            )
        )
    for start in range(0, n, 250):
        orders_create(inputs[start : start + 250], actor="bench")
    ids = list(Shipment.objects.order_by("pk").values_list("pk", flat=True))
    [picklist] = picklist_create(ids, destination="INVOICING", actor="bench").created
    picklist_receive([picklist.pk], actor="bench")
    assert shipments_invoice(ids, actor="bench").ok
    assert shipments_generate_label(ids, actor="bench").ok
    invoices = list(Invoice.objects.order_by("pk").values_list("pk", flat=True))
    return ids, invoices


def rss_mb(field: str) -> int:
    """VmRSS (now) or VmHWM (peak since the last `reset_peak`) of this process, in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) // 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets VmHWM to the current RSS (Linux 4.0+)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(name: str, count: int, step: Callable[[], bytes]) -> tuple[float, int]:
    """Run a step; print its rate, CPU, peak RSS, pages, size and queries. (rate, peak MB)"""
    from django.db import connection

    from documents.pdf import page_count

    queries = 0

    def counter(execute, sql, params, many, context):
        nonlocal queries
        queries += 1  # counted, not kept: the SQL of a stored PDF is megabytes
        return execute(sql, params, many, context)

    reset_peak()
    cpu = cpu_seconds()
    start = time.perf_counter()
    with connection.execute_wrapper(counter):
        pdf = step()
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    peak = rss_mb("VmHWM")
    rate = count / seconds
    print(
        f"{name:30} {count:>5} {seconds:>6.2f} s {rate:>6.1f}/s {1000 / rate:>5.1f} ms "
        f"cpu {1000 * cpu / count:>5.1f} ms  peak {peak:>3} MB {page_count(pdf):>5} pages "
        f"{len(pdf) // 1024:>6} KB {queries:>5} queries",
        flush=True,
    )
    return rate, peak


def forget_stored() -> None:
    from orders.models import InvoiceDocument

    InvoiceDocument.objects.all().delete()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="documents per case (default 500)")
    parser.add_argument("--fill-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    n = args.n
    if args.fill_only:  # the child: make the orders, then exit (its memory goes with it)
        setup(create=True)
        fill(n)
        return 0
    t = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--n", str(n), "--fill-only"], check=True)
    setup(create=False)
    from documents.pdf import merge_pdfs
    from orders.models import Invoice, Shipment
    from orders.printing import invoices_pdf, labels_pdf

    shipments = list(Shipment.objects.order_by("pk").values_list("pk", flat=True))
    invoices = list(Invoice.objects.order_by("pk").values_list("pk", flat=True))
    print(
        f"filled {len(shipments)} shipments, {len(invoices)} invoices in "
        f"{time.perf_counter() - t:.1f} s (in a child process)"
    )
    labels_pdf(shipments[:2])  # fonts, imports: a worker pays this once
    invoices_pdf(invoices[:2])
    forget_stored()
    print(f"RSS before printing (Django, fonts, Typst loaded): {rss_mb('VmRSS')} MB")
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    labels, labels_peak = timed("labels, bulk", n, lambda: labels_pdf(shipments))
    first, first_peak = timed("invoices, bulk (first print)", n, lambda: invoices_pdf(invoices))
    reprint, reprint_peak = timed("invoices, bulk re-print", n, lambda: invoices_pdf(invoices))
    rss = max(labels_peak, first_peak, reprint_peak)
    forget_stored()
    labels_naive, _ = timed(
        "labels, naive", n, lambda: merge_pdfs([labels_pdf([pk]) for pk in shipments])
    )
    invoices_naive, _ = timed(
        "invoices, naive (first print)",
        n,
        lambda: merge_pdfs([invoices_pdf([pk]) for pk in invoices]),
    )
    label_speedup = labels / labels_naive
    print(
        f"speed-up of bulk over naive: labels {label_speedup:.1f}x (target 5x), invoices "
        f"{first / invoices_naive:.1f}x (both first prints: one invoices_pdf([one]) per invoice "
        "compiles, stores and returns it alone; the files are then merged)"
    )
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    ok = (
        labels >= TARGETS["labels_per_s"]
        and first >= TARGETS["invoices_per_s"]
        and rss < TARGETS["peak_rss_mb"]
        and label_speedup >= TARGETS["speedup"]
    )
    print(f"targets: {TARGETS} -> {'met' if ok else 'NOT met'}")
    print(
        f"RESULT labels_per_s={labels:.0f} invoices_per_s={first:.1f} "
        f"peak_rss_mb={rss} label_speedup={label_speedup:.1f}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
