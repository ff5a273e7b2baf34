"""Benchmark of status notifications (issue 5): deliver 20,000 notifications to the channel
simulator over HTTP; report notifications/s and queries per notification.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/uniware_bench_notify \\
        .venv/bin/python bench/bench_notifications.py [--orders 10000] [--workers 1]
        [--threads 4] [--batch 500] [--faults]

PostgreSQL only. The database is the benchmark's own: created and migrated if missing, and
emptied at every run (it refuses a database holding orders it did not make). The simulator
runs in a process of its own (`python -m simulator --port 0`), as in production the channel
is another machine.

What it does:
1. N orders (units 1, 1, 2, 1, 3 ... per order) in MANIFESTED shipments on one manifest,
   written in bulk (a fixture); the same orders on the simulator.
2. `manifest_close` (the real service: every shipment DISPATCHED) and `shipments_deliver`
   (DELIVERED) write 2 × N status notifications through the outbox receivers; their time and
   queries are reported (the outbox's share is the notification INSERTs).
3. Delivery, timed: `deliver_due()` (what the Celery task runs) in `--workers` processes
   at once. Reported: notifications/s, queries per notification (every statement the
   delivering processes ran), the time split into claim / send / record.
4. Checks: every notification DELIVERED with one attempt (more with --faults); the simulator
   accepted each unit's DISPATCHED before its DELIVERED, exactly once; no duplicates.

`--faults` adds 2 % HTTP 500, 1 % dropped connections and 1 % failed items (seeded) and a
short back-off: the run must still end with everything delivered once, in order.
Exit status 0 when the checks pass and the rate meets the target (1,000/s).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
BENCH_MARKER = "Benchmark tenant (bench/bench_notifications.py)"
TARGET_PER_SECOND = 1000.0
UNITS_PER_ORDER = [1, 1, 2, 1, 3]
CHANNEL = "BENCH"


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "uniware.settings")
    os.environ.setdefault("DEBUG", "1")  # development settings; production is the default
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit(
            "bench: PostgreSQL only (SQLite timings predict nothing). Run it as:\n"
            "  DATABASE_URL=postgres://postgres@127.0.0.1:5432/uniware_bench_notify "
            ".venv/bin/python bench/bench_notifications.py"
        )
    settings.DEBUG = False
    import logging

    logging.getLogger("axes").setLevel(logging.WARNING)
    logging.getLogger("notifications").setLevel(logging.ERROR)


class Report:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    def save(self) -> Path:
        RESULTS_DIR.mkdir(exist_ok=True)
        path = RESULTS_DIR / f"notifications-{datetime.now():%Y%m%d-%H%M%S}.txt"
        path.write_text("\n".join(self.lines) + "\n")
        return path


class QueryCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


# --- database ---------------------------------------------------------------------------------


def prepare_database(report: Report) -> None:
    """Create and migrate the database if needed, then empty it (the bench's own only)."""
    import psycopg
    from django.core.management import call_command
    from django.db import connection

    s = connection.settings_dict
    name = s["NAME"]
    admin = psycopg.connect(
        host=s["HOST"] or None,
        port=s["PORT"] or None,
        user=s["USER"] or None,
        password=s["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )
    with admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')
            report(f"created database {name}")
    call_command("migrate", interactive=False, verbosity=0)
    with connection.cursor() as cur:
        cur.execute("SELECT name FROM core_tenant WHERE id = 1")
        row = cur.fetchone()
        cur.execute("SELECT EXISTS (SELECT 1 FROM orders_order)")
        has_orders = cur.fetchone()[0]
    if has_orders and (row is None or row[0] != BENCH_MARKER):
        sys.exit(
            f"bench: database {name!r} has orders this script did not make; point "
            "DATABASE_URL at a database of its own (e.g. uniware_bench_notify)."
        )
    call_command("flush", interactive=False, verbosity=0)
    from uniware.core.defaults import ensure_defaults
    from uniware.core.models import Tenant

    ensure_defaults()
    Tenant.objects.filter(pk=1).update(name=BENCH_MARKER)


# --- the simulator --------------------------------------------------------------------------


class Simulator:
    """`python -m simulator --port 0` in a process of its own, driven by its control API."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "simulator", "--port", "0"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.proc.stdout.readline()
        if "http://" not in line:
            self.proc.kill()
            sys.exit(f"bench: the simulator did not start: {line!r}")
        self.url = line.split()[3]

    def control(self, method: str, path: str, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}/_control{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# --- fixture --------------------------------------------------------------------------------


def make_fixture(n_orders: int, sim: Simulator, faults: bool):
    """N orders in MANIFESTED shipments on one open manifest, written directly in bulk, and
    the same orders on the simulator."""
    from decimal import Decimal

    from django.utils import timezone

    from channels.models import Channel
    from inventory.models import Facility, Inventory, Shelf, ShippingProvider, Sku
    from orders.models import Manifest, Order, OrderItem, Shipment

    now = timezone.now()
    facility = Facility.objects.create(code="WH1", name="Warehouse 1", priority=1)
    shelf = Shelf.objects.create(facility=facility, code="A1")
    provider = ShippingProvider.objects.create(code="BLUEDART", name="Blue Dart")
    sku = Sku.objects.create(code="TSHIRT", name="T-shirt")
    plan = [(i, UNITS_PER_ORDER[i % len(UNITS_PER_ORDER)]) for i in range(n_orders)]
    units_total = sum(q for _, q in plan)
    inventory = Inventory.objects.create(
        facility=facility, shelf=shelf, sku=sku, quantity=units_total, blocked_quantity=units_total
    )
    channel = Channel.objects.create(
        code=CHANNEL,
        name="Benchmark channel",
        channel_type="CUSTOM",
        base_url=f"{sim.url}/ch/{CHANNEL}",
        username="user",
        password="pass",
        accepts_status_notifications=True,
        accepts_dispatch=False,
        accepts_cancel=False,
        retry_base_delay=0.05 if faults else 1.0,
        request_timeout=10.0,
    )
    manifest = Manifest.objects.create(
        code="BENCH-M1", facility=facility, channel=channel, shipping_provider=provider
    )
    orders = Order.objects.bulk_create(
        [
            Order(
                code=f"BENCH-{i:06d}",
                channel=channel,
                channel_order_id=f"BN-{i:06d}",
                order_date=now,
                status="PROCESSING",
                payment_method="PREPAID",
                item_count=q,
                total_amount=Decimal(499) * q,
                ship_pincode="560001",
            )
            for i, q in plan
        ],
        batch_size=2000,
    )
    shipments = Shipment.objects.bulk_create(
        [
            Shipment(
                code=f"BENCH-S{i:06d}",
                order=o,
                facility=facility,
                status="MANIFESTED",
                shipping_provider=provider,
                tracking_number=f"BD{i:08d}",
                manifest=manifest,
            )
            for (i, _), o in zip(plan, orders, strict=True)
        ],
        batch_size=2000,
    )
    units = []
    for (i, q), order, shipment in zip(plan, orders, shipments, strict=True):
        for k in range(q):
            units.append(
                OrderItem(
                    order=order,
                    code=f"BN-{i:06d}-L1-{k}",
                    channel_order_item_id=f"BN-{i:06d}-L1",
                    sku=sku,
                    selling_price=Decimal(499),
                    status="MANIFESTED",
                    facility=facility,
                    inventory=inventory,
                    shipment=shipment,
                )
            )
    OrderItem.objects.bulk_create(units, batch_size=5000)

    sim.control("POST", "/channels", {"code": CHANNEL, "username": "user", "password": "pass"})
    chunk = 2000
    for start in range(0, n_orders, chunk):
        sim.control(
            "POST",
            f"/channels/{CHANNEL}/orders",
            [
                {
                    "id": f"BN-{i:06d}",
                    "orderItems": [
                        {"orderItemId": f"BN-{i:06d}-L1", "sku": "TSHIRT", "quantity": q}
                    ],
                }
                for i, q in plan[start : start + chunk]
            ],
        )
    if faults:
        for rule in (
            {"kind": "error", "status": 500, "probability": 0.02, "seed": 1, "path": "/order/*"},
            {"kind": "disconnect", "probability": 0.01, "seed": 2, "path": "/order/*"},
            {"kind": "fail_items", "probability": 0.01, "seed": 3, "path": "/order/*"},
        ):
            sim.control("POST", "/faults", rule)
    return manifest, [s.pk for s in shipments], units_total


# --- delivering -------------------------------------------------------------------------------


def _timed(module, name: str, bucket: dict) -> None:
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            bucket[name] = bucket.get(name, 0.0) + time.perf_counter() - started

    setattr(module, name, wrapper)


def deliver_worker(args: tuple) -> dict:
    """One delivering process: deliver until nothing is pending (retries included)."""
    threads, batch, deadline_s = args
    from django.conf import settings
    from django.db import connection

    settings.NOTIFICATIONS_SEND_THREADS = threads
    settings.NOTIFICATIONS_BATCH_SIZE = batch
    from notifications import delivery
    from notifications.models import Notification

    split: dict[str, float] = {}
    for name in ("claim", "send", "record"):
        _timed(delivery, name, split)
    counter = QueryCounter()
    totals = defaultdict(int)
    deadline = time.monotonic() + deadline_s
    cpu = time.process_time()  # every thread of this process: the machine's load leaves it be
    with connection.execute_wrapper(counter):
        while time.monotonic() < deadline:
            report = delivery.deliver_due()
            for key in ("claimed", "delivered", "retrying", "failed", "held_back", "attempts"):
                totals[key] += getattr(report, key)
            if not Notification.objects.filter(state="PENDING").exists():
                break
            if not report.claimed:
                time.sleep(0.02)  # the others hold the due ones, or back-offs run
    cpu = time.process_time() - cpu
    connection.close()
    return {"queries": counter.count, "split": split, "cpu": cpu, **totals}


def run_delivery(workers: int, threads: int, batch: int) -> tuple[float, list[dict]]:
    from django.db import connections

    connections.close_all()  # no connection crosses the fork
    started = time.perf_counter()
    if workers == 1:
        results = [deliver_worker((threads, batch, 900.0))]
    else:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.map(deliver_worker, [(threads, batch, 900.0)] * workers)
    return time.perf_counter() - started, results


# --- checks -----------------------------------------------------------------------------------


def check(sim: Simulator, n_orders: int, faults: bool) -> list[str]:
    from django.db.models import Count, Sum

    from notifications.models import Notification

    problems = []
    states = dict(Notification.objects.values_list("state").annotate(n=Count("id")))
    if states != {"DELIVERED": 2 * n_orders}:
        problems.append(f"notification states {states}, expected all {2 * n_orders} DELIVERED")
    attempts = Notification.objects.aggregate(a=Sum("attempts"))["a"] or 0
    if not faults and attempts != 2 * n_orders:
        problems.append(f"{attempts} attempts for {2 * n_orders} notifications")
    received = sim.control("GET", f"/channels/{CHANNEL}/received?kind=notifications")
    per_unit: dict[tuple, list] = defaultdict(list)
    for rec in received["notifications"]:
        response = rec["response"]
        if "httpStatus" in response:
            continue
        failed = {i["orderItemId"] for i in response.get("orderItems", [])}
        seen: dict[str, int] = defaultdict(int)
        statuses = {}
        for entry in rec["body"]["orderItems"]:
            if entry["orderItemId"] not in failed:
                seen[entry["orderItemId"]] += 1
                statuses[entry["orderItemId"]] = entry["status"]
        for item_id, count in seen.items():
            per_unit[item_id].append((statuses[item_id], count))
    bad = 0
    for i in range(n_orders):
        item = f"BN-{i:06d}-L1"
        q = UNITS_PER_ORDER[i % len(UNITS_PER_ORDER)]
        expected = [("DISPATCHED", q), ("DELIVERED", q)]
        got = per_unit.get(item, [])
        merged: list = []
        for status, count in got:  # partial retries split a notification's entries
            if merged and merged[-1][0] == status:
                merged[-1] = (status, merged[-1][1] + count)
            else:
                merged.append((status, count))
        if merged != expected:
            bad += 1
            if bad <= 3:
                problems.append(f"{item}: the channel accepted {got}, expected {expected}")
    if bad > 3:
        problems.append(f"... {bad} orders in all not delivered exactly once in order")
    if received["duplicates"] and not faults:
        problems.append(f"{len(received['duplicates'])} duplicates without faults")
    return problems


# --- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=10_000, help="2 notifications each")
    parser.add_argument("--workers", type=int, default=1, help="delivering processes")
    parser.add_argument("--threads", type=int, default=4, help="connections per process")
    parser.add_argument("--batch", type=int, default=500, help="notifications per claim")
    parser.add_argument("--faults", action="store_true", help="inject 500s, drops, item failures")
    args = parser.parse_args(argv)

    setup_django()
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from notifications import outbox, receivers
    from notifications.models import Notification
    from orders.services import manifest_close, shipments_deliver

    outbox.kick = lambda: None  # delivery is what this measures, run below: no Celery tasks
    report = Report()
    report(f"# Notifications benchmark, {datetime.now():%Y-%m-%d %H:%M}")
    report(
        f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    prepare_database(report)
    sim = Simulator()
    try:
        started = time.perf_counter()
        manifest, shipment_ids, units = make_fixture(args.orders, sim, args.faults)
        report(
            f"fixture: {args.orders:,} orders, {units:,} units, simulator at {sim.url} "
            f"({time.perf_counter() - started:.1f} s)"
        )

        # -- writing the outbox through the real services: the receiver builds the rows
        # (shipments_changed) and writes them (write); their time and statements are counted
        outbox_time: dict[str, float] = {}
        outbox_count = [0]

        def counted(original):
            def wrapper(*a, **kw):
                before, t = len(connection.queries_log), time.perf_counter()
                try:
                    return original(*a, **kw)
                finally:
                    outbox_time["shipments_changed"] += time.perf_counter() - t
                    outbox_count[0] += len(connection.queries_log) - before

            return wrapper

        receivers.shipments_changed = counted(receivers.shipments_changed)
        receivers.write = counted(receivers.write)
        for label, call in (
            ("manifest_close", lambda: manifest_close(manifest, actor="bench")),
            ("shipments_deliver", lambda: shipments_deliver(shipment_ids, actor="bench")),
        ):
            outbox_time["shipments_changed"], outbox_count[0] = 0.0, 0
            with CaptureQueriesContext(connection) as q, transaction.atomic():
                t0 = time.perf_counter()
                assert call().ok
                t1 = time.perf_counter()
            report(
                f"{label} of {len(shipment_ids):,} shipments: {t1 - t0:.2f} s, {len(q)} "
                f"queries (COPY not counted); the outbox's share: "
                f"{outbox_time['shipments_changed']:.2f} s, {outbox_count[0]} queries (units "
                "with their channels, the time zone) and one COPY of the notifications"
            )
        total = Notification.objects.count()
        report(f"outbox: {total:,} notifications pending")
        with connection.cursor() as cur:
            cur.execute("VACUUM ANALYZE notifications_notification")

        # -- delivering
        report(
            f"delivering with {args.workers} process(es) × {args.threads} connection(s), "
            f"batches of {args.batch}{', faults injected' if args.faults else ''} ..."
        )
        elapsed, results = run_delivery(args.workers, args.threads, args.batch)
        queries = sum(r["queries"] for r in results)
        attempts = sum(r["attempts"] for r in results)
        rate = total / elapsed
        report(f"delivered {total:,} notifications in {elapsed:.2f} s: {rate:,.0f} notifications/s")
        report(
            f"queries: {queries:,} in all, {queries / total:.3f} per notification; "
            f"attempts: {attempts:,}"
        )
        cpu = sum(r["cpu"] for r in results)
        report(
            f"CPU of the delivering process(es): {cpu:.2f} s, {cpu / total * 1e6:,.0f} µs per "
            "notification (less load-dependent than the rate on a shared machine)"
        )
        for n, r in enumerate(results, start=1):
            split = ", ".join(f"{k} {v:.2f} s" for k, v in r["split"].items())
            report(
                f"  process {n}: delivered {r['delivered']:,}, retried {r['retrying']:,}, "
                f"held back {r['held_back']:,}, queries {r['queries']:,}; {split}"
            )
        if args.faults:
            faults = sim.control("GET", "/faults")["faults"]
            applied = ", ".join(f"{f['kind']} ×{f['applied']}" for f in faults)
            report(f"faults applied: {applied}")

        problems = check(sim, args.orders, args.faults)
        for problem in problems:
            report(f"CHECK FAILED: {problem}")
        if not problems:
            report(
                "checks: every notification DELIVERED; every unit's DISPATCHED then "
                "DELIVERED accepted exactly once, in order"
            )
        ok = not problems and rate >= TARGET_PER_SECOND
        verdict = "met" if rate >= TARGET_PER_SECOND else "MISSED"
        report(f"target ≥ {TARGET_PER_SECOND:,.0f}/s: {verdict}")
        report(f"load at the end {os.getloadavg()[0]:.2f}")
    finally:
        sim.stop()
    path = report.save()
    print(f"written to {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
