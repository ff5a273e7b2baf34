"""Benchmark of the order import (issue 6): 100,000 CSV lines (about 60,000 orders), allocation
included, through the streaming importer (`imports`: check, then import), beside
django-import-export's default row-by-row configuration (`OrderLineResource.import_data`,
each order through `order_create`), in one run, on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/uniware_imports_bench \
        .venv/bin/python bench/bench_import.py

Each measurement runs in a fresh child process (its peak RSS is the memory figure) after the
order tables are emptied, so all start from the same database. Both configurations import the
whole file (the default one takes about an hour); `--sample N` runs the default
configuration (and the streaming importer, for a like-for-like ratio) on the first N lines
only and extrapolates, for a quick run. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
MARKER = "Benchmark tenant (bench/bench_import.py)"

TARGET_LINES_PER_S = 5000
TARGET_SPEEDUP = 6.0
TARGET_PEAK_MB = 400

N_SKUS = 200
PINCODES = [f"5600{n:02d}" for n in range(1, 21)]
HEADER = [
    "channel",
    "channel_order_id",
    "order_date",
    "payment_method",
    "channel_line_id",
    "sku",
    "quantity",
    "selling_price",
    "shipping_charges",
    "customer_name",
    "customer_phone",
    "customer_email",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "pincode",
    "country",
]


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "uniware.settings")
    os.environ.setdefault("DEBUG", "1")  # development settings; production is the default
    import django

    django.setup()


def require_postgres() -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit(
            "bench_import: PostgreSQL only (SQLite timings predict PostgreSQL in neither "
            "direction). Run:\n  DATABASE_URL=postgres://postgres@127.0.0.1:5432/"
            "uniware_imports_bench .venv/bin/python bench/bench_import.py"
        )


def ensure_database() -> None:
    """Create the database named in DATABASE_URL if it does not exist, and migrate it."""
    import psycopg
    from django.conf import settings
    from django.core.management import call_command

    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')
    call_command("migrate", verbosity=0, interactive=False)


# --- Data --------------------------------------------------------------------------------------


def prepare_world() -> None:
    """Channel, SKUs, two facilities with stock for every unit, a provider serving 18 of the
    20 pincodes. Refuses a database holding orders that the benchmark did not make."""
    from channels.models import Channel
    from inventory.models import Facility, Inventory, Serviceability, Shelf, ShippingProvider, Sku
    from orders.models import Order
    from uniware.core.models import Tenant

    tenant = Tenant.get()
    if tenant.name != MARKER:
        if Order.objects.exists():
            sys.exit(
                "bench_import: this database has orders the benchmark did not make; give it a "
                "database of its own (DATABASE_URL=.../uniware_imports_bench)."
            )
        tenant.name = MARKER
        tenant.save()
    Channel.objects.get_or_create(code="FLIPKART", defaults={"name": "Flipkart"})
    provider, _ = ShippingProvider.objects.get_or_create(code="BLUEDART", defaults={"name": "BD"})
    for code, priority in (("WH1", 1), ("WH2", 2)):
        facility, _ = Facility.objects.get_or_create(
            code=code, defaults={"name": code, "priority": priority}
        )
        facility.shipping_providers.add(provider)
        Shelf.objects.get_or_create(facility=facility, code="A1")
    existing = set(Sku.objects.values_list("code", flat=True))
    Sku.objects.bulk_create(
        [
            Sku(code=f"SKU-{n:03d}", name=f"Product {n}")
            for n in range(N_SKUS)
            if f"SKU-{n:03d}" not in existing
        ]
    )
    rows = []
    for shelf in Shelf.objects.filter(code="A1", facility__code__in=["WH1", "WH2"]):
        for sku in Sku.objects.filter(code__startswith="SKU-"):
            rows.append(Inventory(facility_id=shelf.facility_id, shelf=shelf, sku=sku, quantity=0))
    Inventory.objects.bulk_create(rows, ignore_conflicts=True)
    Serviceability.objects.all().delete()
    Serviceability.objects.bulk_create(
        [
            Serviceability(shipping_provider=provider, pincode=p, payment_method=m, priority=1)
            for p in PINCODES[:-2]
            for m in ("COD", "PREPAID")
        ]
    )


def reset() -> float:
    """Empty the order tables and restore stock: every measurement starts from here."""
    from django.db import connection

    from inventory.models import Inventory

    started = time.perf_counter()
    tables = [
        "orders_invoice",
        "orders_picklistitem",
        "orders_picklist",
        "orders_manifest",
        "orders_orderitem",
        "orders_shipment",
        "orders_order",
        "core_statechange",
        "imports_importjob",
    ]
    with connection.cursor() as cursor:
        existing = set(connection.introspection.table_names(cursor))
        names = ", ".join(t for t in tables if t in existing)
        cursor.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    # 600 per SKU in WH1 and 400 in WH2: the 100,000-line file needs both facilities
    Inventory.objects.filter(facility__code="WH1").update(quantity=600, blocked_quantity=0)
    Inventory.objects.filter(facility__code="WH2").update(quantity=400, blocked_quantity=0)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def generate(path: Path, lines: int, seed: int = 6) -> dict:
    """Lines of orders of 1 to 3 lines (quantity mostly 1), ids OD000001...; 10 % COD."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, 9, 0)
    written = orders = units = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(",".join(HEADER) + "\n")
        while written < lines:
            orders += 1
            n_lines = min(rng.choices([1, 2, 3], weights=[55, 30, 15])[0], lines - written)
            order_id = f"OD{orders:07d}"
            when = (start + timedelta(minutes=orders)).isoformat(sep=" ", timespec="minutes")
            method = "COD" if rng.random() < 0.1 else "PREPAID"
            pincode = rng.choice(PINCODES)
            for line in range(1, n_lines + 1):
                quantity = rng.choices([1, 2, 3], weights=[85, 12, 3])[0]
                units += quantity
                first = line == 1
                cells = [
                    "FLIPKART",
                    order_id,
                    when if first else "",
                    method if first else "",
                    f"{order_id}-{line}",
                    f"SKU-{rng.randrange(N_SKUS):03d}",
                    str(quantity),
                    f"{rng.randrange(199, 2999)}.00",
                    "0",
                    f"Customer {orders}" if first else "",
                    "+91 98450 00000" if first else "",
                    f"c{orders}@example.com" if first else "",
                    f"{orders} MG Road" if first else "",
                    "",
                    "Bengaluru" if first else "",
                    "Karnataka" if first else "",
                    pincode if first else "",
                    "IN" if first else "",
                ]
                out.write(",".join(cells) + "\n")
                written += 1
    return {"lines": written, "orders": orders, "units": units}


def sample(source: Path, target: Path, lines: int) -> dict:
    """The first `lines` lines of the file, cut at an order boundary."""
    orders = 0
    units = 0
    kept = 0
    with source.open(encoding="utf-8") as src, target.open("w", encoding="utf-8") as out:
        out.write(src.readline())
        last = None
        for row in src:
            cells = row.split(",")
            if cells[1] != last:
                if kept >= lines:
                    break
                orders += 1
                last = cells[1]
            out.write(row)
            kept += 1
            units += int(cells[6])
    return {"lines": kept, "orders": orders, "units": units}


# --- Children: one measurement each -------------------------------------------------------------


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_streaming(path: str) -> dict:
    """Upload (storage), check, import: what the admin and the worker do, timed."""
    from django.contrib.auth import get_user_model
    from django.core.files import File

    from imports import services
    from imports.importers import orders as order_import
    from imports.models import ImportJob, JobStatus

    base_mb = peak_mb()
    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_superuser": True, "is_staff": True}
    )
    in_service = [0.0]
    real = order_import.orders_create

    def timed(inputs, **kwargs):
        started = time.perf_counter()
        try:
            return real(inputs, **kwargs)
        finally:
            in_service[0] += time.perf_counter() - started

    order_import.orders_create = timed
    with open(path, "rb") as f:
        job = ImportJob(kind="ORDERS", original_name=Path(path).name, created_by=user)
        job.size = os.path.getsize(path)
        job.file.save(Path(path).name, File(f), save=True)
    started = time.perf_counter()
    job = services.import_job_check(job.pk)
    check_s = time.perf_counter() - started
    assert job.status == JobStatus.VALIDATED and job.error_count == 0, job.preview
    services.import_job_confirm(job, valid_only=False, user=user)
    started = time.perf_counter()
    job = services.import_job_run(job.pk)
    run_s = time.perf_counter() - started
    assert job.status == JobStatus.DONE, job.message
    result = {
        "check_s": check_s,
        "run_s": run_s,
        "service_s": in_service[0],
        "rows": job.total_rows,
        "created": job.created_count,
        "failed": job.failed_count,
        "base_mb": base_mb,
        "peak_mb": peak_mb(),
    }
    job.file.delete(save=False)
    job.error_report.delete(save=False)
    return result


def child_default(path: str) -> dict:
    """django-import-export's default configuration: read the file into a Dataset and
    import_data() row by row (ModelResource defaults: per-row instance lookup and FK widget
    query, diff, save through order_create)."""
    from import_export.formats.base_formats import CSV

    from imports.resources import OrderLineResource

    base_mb = peak_mb()
    started = time.perf_counter()
    with open(path, encoding="utf-8") as f:
        dataset = CSV().create_dataset(f.read())
    result = OrderLineResource(actor="bench:default").import_data(dataset, dry_run=False)
    elapsed = time.perf_counter() - started
    totals = dict(result.totals)
    assert not result.has_errors() and not result.has_validation_errors(), (
        [str(e.error) for row in result.row_errors()[:3] for e in row[1]],
        [str(r.error_dict) for r in result.invalid_rows[:3]],
    )
    return {
        "run_s": elapsed,
        "rows": len(dataset),
        "created": totals.get("new", 0),
        "base_mb": base_mb,
        "peak_mb": peak_mb(),
    }


def run_child(kind: str, path: Path) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path)],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
    )
    if output.returncode != 0:
        sys.exit(f"bench_import: the {kind} child failed:\n{output.stderr[-4000:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def check_database(expected: dict) -> str:
    """The import made what the file holds: orders, units, every unit allocated or refused."""
    from django.db.models import Count

    from orders.models import Order, OrderItem

    orders = Order.objects.count()
    units = OrderItem.objects.count()
    statuses = dict(
        OrderItem.objects.values_list("status").annotate(n=Count("pk")).order_by("status")
    )
    ok = orders == expected["orders"] and units == expected["units"]
    assert ok, (orders, units, expected)
    assert "CREATED" not in statuses, statuses  # allocation ran for every unit
    return f"{orders:,} orders, {units:,} units: {statuses}"


# --- Main ---------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument(
        "--sample",
        type=int,
        default=0,
        help="run the default configuration on the first N lines only (whole orders) and "
        "extrapolate, for a quick run; by default it imports the whole file (about an hour)",
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()

    setup_django()
    require_postgres()
    if args.child:
        from django.conf import settings

        settings.DEBUG = False  # as in production: no query log growing with the import
        kind, path = args.child
        result = child_streaming(path) if kind == "streaming" else child_default(path)
        print(json.dumps(result))
        return 0

    import django
    from django.db import connection

    ensure_database()
    prepare_world()
    workdir = ROOT / "var" / "bench"
    workdir.mkdir(parents=True, exist_ok=True)
    full = workdir / f"orders-{args.lines}.csv"
    shape = generate(full, args.lines)
    runs = [("default config", "default", full, shape)]
    sample_note = ""
    if args.sample:
        part = workdir / f"orders-sample-{args.sample}.csv"
        sample_shape = sample(full, part, args.sample)
        sample_note = (
            f"; the default configuration on a sample: {sample_shape['lines']:,} lines, "
            f"{sample_shape['orders']:,} orders"
        )
        runs = [
            ("default config, sample", "default", part, sample_shape),
            ("streaming, sample", "streaming", part, sample_shape),
        ]
    runs.append(("streaming", "streaming", full, shape))
    load = os.getloadavg()
    report = [
        f"bench_import {datetime.now():%Y-%m-%d %H:%M:%S}: PostgreSQL "
        f"{connection.pg_version // 10000}, Django {django.get_version()}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, database "
        f"{connection.settings_dict['NAME']}",
        f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        f"file: {shape['lines']:,} lines, {shape['orders']:,} orders, {shape['units']:,} units "
        f"({full.stat().st_size / 1e6:.1f} MB){sample_note}",
        "",
    ]
    print("\n".join(report), flush=True)

    results = {}
    for name, kind, path, expected in runs:
        reset()
        print(f"running {name} ({expected['lines']:,} lines) ...", flush=True)
        result = run_child(kind, path)
        result["check"] = check_database(expected)
        result["lines"] = expected["lines"]
        results[name] = result

    default = results[runs[0][0]]
    fast = results["streaming"]
    default_rate = default["lines"] / default["run_s"]
    table = [
        f"{'configuration':<24} {'lines':>8} {'check s':>8} {'import s':>9} {'total s':>8} "
        f"{'lines/s':>8} {'peak MB':>8} {'(startup MB)':>12}"
    ]
    for name, r in results.items():
        total = r.get("check_s", 0) + r["run_s"]
        table.append(
            f"{name:<24} {r['lines']:>8,} {r.get('check_s', 0):>8.1f} {r['run_s']:>9.1f} "
            f"{total:>8.1f} {r['lines'] / total:>8,.0f} {r['peak_mb']:>8.0f} "
            f"{r['base_mb']:>12.0f}"
        )
    fast_total = fast["check_s"] + fast["run_s"]
    fast_rate = fast["lines"] / fast_total
    outside = fast["run_s"] - fast["service_s"]
    if args.sample:
        fast_sample = results["streaming, sample"]
        sample_rate = fast_sample["lines"] / (fast_sample["check_s"] + fast_sample["run_s"])
        comparison = [
            f"default config extrapolated to {fast['lines']:,} lines: "
            f"{fast['lines'] / default_rate / 60:.0f} min (measured on {default['lines']:,} "
            "lines)",
            f"speed-up, whole file vs default on the sample: {fast_rate / default_rate:.1f}x; "
            f"same sample: {sample_rate / default_rate:.1f}x (target >= {TARGET_SPEEDUP:.0f}x)",
        ]
    else:
        comparison = [
            f"speed-up on the same file: {fast_rate / default_rate:.1f}x (target >= "
            f"{TARGET_SPEEDUP:.0f}x); the admin's import of django-import-export would run "
            "the default configuration twice (dry run, then confirm)",
        ]
    lines = [
        *table,
        "",
        *comparison,
        f"streaming: {fast_rate:,.0f} lines/s check + import (target >= "
        f"{TARGET_LINES_PER_S:,}); import alone {fast['lines'] / fast['run_s']:,.0f} lines/s; "
        f"check alone {fast['lines'] / fast['check_s']:,.0f} lines/s",
        f"  of the import's {fast['run_s']:.1f} s, {fast['service_s']:.1f} s in "
        f"orders.services.orders_create (allocation included); the rest (reading ahead, "
        f"checking, batching, progress, report) {outside:.1f} s",
        f"peak memory (RSS of the child): streaming {fast['peak_mb']:.0f} MB, default "
        f"{default['peak_mb']:.0f} MB (target < {TARGET_PEAK_MB})",
        "",
        *(f"checked {name}: {r['check']}" for name, r in results.items()),
    ]
    load = os.getloadavg()
    lines.append(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    met = {
        "lines/s": fast_rate >= TARGET_LINES_PER_S,
        "speed-up": fast_rate / default_rate >= TARGET_SPEEDUP,
        "memory": fast["peak_mb"] < TARGET_PEAK_MB,
    }
    lines.append("targets: " + ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in met.items()))
    print("\n".join(lines))
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"import-{datetime.now():%Y%m%d-%H%M%S}.txt"
    out.write_text("\n".join(report + lines) + "\n")
    print(f"\nwritten to {out.relative_to(ROOT)}")
    reset()
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
