"""Benchmark of the inventory push (issue 16): 100,000 listings over 3 channels, then stock
movements touching 10,000 of them; the time from the movements to the channels holding the
new quantities, and the queries per 1,000 listings.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/uniware_bench_inventory \\
        .venv/bin/python bench/bench_inventory_push.py [--listings 100000] [--changed 10000]
        [--serial]

PostgreSQL only. The database is the benchmark's own: created and migrated if missing, and
emptied at every run (it refuses a database holding orders it did not make). The simulator
runs in a process of its own (`python -m simulator --port 0`) on loopback.

What it does:
1. Fixture (bulk): one facility, `listings / 3` SKUs with 6 to 50 units each, 3 channels on
   the simulator each listing every SKU (the third has buffers of 0-2 and the rule "push 0
   at or below 2").
2. A full push of every channel (timed and reported: the daily push), so the channels hold
   every listing; each channel's CHANGED cursor then starts at the end of the logs.
3. Stock movements through the real services on `changed / 3` SKUs, so `changed` listings:
   two in three get an order allocated at once (ALLOCATE movements: stock blocked), one in
   three an order left waiting (units created, no allocation: audit rows only).
4. Timed: the CHANGED push of the 3 channels, one process each (as three workers run the
   per-channel tasks), from the movements to the channels' last reply. Reported: seconds,
   listings sent, queries per 1,000 listings, the time split (scan, compute, write, send,
   record) of each process.
5. Checks: every listing's level on the simulator equals the formula on the final state
   (computed here in SQL); the timed push sent exactly the listings whose quantity changed.

Last line: `RESULT listings=N changed=N seconds=N queries_per_1000=N`. Exit status 0 when the
checks pass and the push took under 10 s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
BENCH_MARKER = "Benchmark tenant (bench/bench_inventory_push.py)"
CHANNELS = ("BENCH1", "BENCH2", "BENCH3")
TARGET_SECONDS = 10.0


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "uniware.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"  # re-allocation after commit runs inline
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit(
            "bench: PostgreSQL only (SQLite timings predict nothing). Run it as:\n"
            "  DATABASE_URL=postgres://postgres@127.0.0.1:5432/uniware_bench_inventory "
            ".venv/bin/python bench/bench_inventory_push.py"
        )
    settings.DEBUG = False
    import logging

    logging.getLogger("axes").setLevel(logging.WARNING)


class Report:
    def __init__(self, name: str = "inventory-push") -> None:
        self.name = name
        self.lines: list[str] = []

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    def save(self) -> Path:
        RESULTS_DIR.mkdir(exist_ok=True)
        path = RESULTS_DIR / f"{self.name}-{datetime.now():%Y%m%d-%H%M%S}.txt"
        path.write_text("\n".join(self.lines) + "\n")
        return path


class QueryCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def prepare_database(report: Report, marker: str = BENCH_MARKER) -> None:
    """Create and migrate the database if needed, then empty it (the bench's own only:
    `marker` names the bench that made it)."""
    import psycopg
    from django.core.management import call_command
    from django.db import connection

    s = connection.settings_dict
    name = s["NAME"]
    with psycopg.connect(
        host=s["HOST"] or None,
        port=s["PORT"] or None,
        user=s["USER"] or None,
        password=s["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')
            report(f"created database {name}")
    call_command("migrate", interactive=False, verbosity=0)
    with connection.cursor() as cur:
        cur.execute("SELECT name FROM core_tenant WHERE id = 1")
        row = cur.fetchone()
        cur.execute("SELECT EXISTS (SELECT 1 FROM orders_order)")
        has_orders = cur.fetchone()[0]
    if has_orders and (row is None or row[0] != marker):
        sys.exit(
            f"bench: database {name!r} has orders this script did not make; point "
            "DATABASE_URL at a database of its own (e.g. uniware_bench_inventory)."
        )
    call_command("flush", interactive=False, verbosity=0)
    from uniware.core.defaults import ensure_defaults
    from uniware.core.models import Tenant

    ensure_defaults()
    Tenant.objects.filter(pk=1).update(name=marker)


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

    def levels(self, code: str) -> dict[str, int]:
        seq = self.control("GET", f"/channels/{code}/received?kind=inventory&since=999999999")
        return {r["productId"]: r["inventory"] for r in seq["inventoryLevels"]}

    def entries_since(self, code: str, since: int) -> tuple[int, int]:
        """(entries received in inventory updates after `since`, the last seq)."""
        got = self.control("GET", f"/channels/{code}/received?kind=inventory&since={since}")
        records = got["inventory"]
        last = max([since, *(r["seq"] for r in records)])
        return sum(len(r["body"]["inventoryList"]) for r in records), last

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# --- fixture --------------------------------------------------------------------------------


def make_fixture(n_listings: int, sim: Simulator) -> list[int]:
    """SKUs with stock, 3 channels listing each, serviceability for orders; the SKU ids."""
    from channels.models import Channel
    from inventory.models import (
        Facility,
        Inventory,
        Serviceability,
        Shelf,
        ShippingProvider,
        Sku,
    )
    from listings.models import ChannelListing

    rng = random.Random(16)
    facility = Facility.objects.create(code="WH1", name="Warehouse 1", priority=1)
    shelf = Shelf.objects.create(facility=facility, code="A1")
    provider = ShippingProvider.objects.create(code="BLUEDART", name="Blue Dart")
    facility.shipping_providers.add(provider)
    Serviceability.objects.create(
        shipping_provider=provider, pincode="560001", payment_method="PREPAID", priority=1
    )
    n_skus = -(-n_listings // len(CHANNELS))
    skus = Sku.objects.bulk_create(
        [Sku(code=f"BSKU{i:06d}", name=f"Bench SKU {i}") for i in range(n_skus)], batch_size=5000
    )
    Inventory.objects.bulk_create(
        [
            Inventory(facility=facility, shelf=shelf, sku=sku, quantity=rng.randint(6, 50))
            for sku in skus
        ],
        batch_size=5000,
    )
    listings = []
    for n, code in enumerate(CHANNELS):
        sim.control("POST", "/channels", {"code": code, "username": "user", "password": "pass"})
        channel = Channel.objects.create(
            code=code,
            name=f"Bench {code}",
            channel_type="CUSTOM",
            base_url=f"{sim.url}/ch/{code}",
            username="user",
            password="pass",
            inventory_zero_at_or_below=2 if n == 2 else None,
            request_timeout=30.0,
        )
        for i, sku in enumerate(skus):
            if len(listings) >= n_listings:
                break
            listings.append(
                ChannelListing(
                    channel=channel,
                    product_id=f"P{i:06d}",
                    variant_id=f"V{n}",
                    sku=sku,
                    buffer=i % 3 if n == 2 else 0,
                )
            )
    ChannelListing.objects.bulk_create(listings, batch_size=5000)
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    return [sku.pk for sku in skus]


def start_cursors() -> None:
    """Each channel's CHANGED cursor at the end of the logs, as a previous run leaves it."""
    from django.db.models import Max

    from channels.models import Channel
    from inventory.models import StockMovement
    from listings.models import InventoryCursor
    from uniware.core.models import StateChange

    movement = StockMovement.objects.aggregate(m=Max("id"))["m"] or 0
    change = StateChange.objects.aggregate(m=Max("id"))["m"] or 0
    for channel in Channel.objects.all():
        InventoryCursor.objects.update_or_create(
            channel=channel,
            lane="CHANGED",
            defaults={"movement_id": movement, "change_id": change},
        )


def move_stock(sku_ids: list[int], n_changed: int) -> tuple[float, int]:
    """Orders on `n_changed / 3` SKUs (two in three allocated, one waiting); (seconds, units)."""
    from channels.models import Channel
    from inventory.models import Sku
    from orders.services import LineInput, OrderInput, orders_create

    rng = random.Random(7)
    chosen = rng.sample(sku_ids, -(-n_changed // len(CHANNELS)))
    codes = dict(Sku.objects.filter(pk__in=chosen).values_list("pk", "code"))
    channel = Channel.objects.get(code=CHANNELS[0])
    allocated, waiting = [], []
    for n, sku_id in enumerate(chosen):
        spec = OrderInput(
            channel=channel,
            channel_order_id=f"BO-{n:06d}",
            ship_pincode="560001",
            lines=[LineInput(f"BO-{n:06d}-L1", codes[sku_id], 1 + n % 3, "499.00")],
        )
        (waiting if n % 3 == 2 else allocated).append(spec)
    started = time.perf_counter()
    for batch in range(0, len(allocated), 2000):
        orders_create(allocated[batch : batch + 2000], actor="bench")
    for batch in range(0, len(waiting), 2000):
        orders_create(waiting[batch : batch + 2000], actor="bench", allocate=False)
    units = sum(s.lines[0].quantity for s in allocated + waiting)
    return time.perf_counter() - started, units


# --- pushing --------------------------------------------------------------------------------


def _timed(module, name: str, bucket: dict) -> None:
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            bucket[name] = bucket.get(name, 0.0) + time.perf_counter() - started

    setattr(module, name, wrapper)


def push_worker(args: tuple) -> dict:
    """One process: one channel's push (what the per-channel Celery task runs)."""
    code, full = args
    from django.db import connection

    from channels.models import Channel
    from listings import changes, push

    split: dict[str, float] = {}
    _timed(changes, "scan", split)
    for name in ("_compute", "_write_wanted", "_send", "_record_accepted", "_record_failed"):
        _timed(push, name, split)
    counter = QueryCounter()
    channel = Channel.objects.get(code=code)
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        run = push.push_inventory(channel, full=full, actor="bench")
    elapsed = time.perf_counter() - started
    connection.close()
    return {
        "code": code,
        "seconds": elapsed,
        "queries": counter.count,
        "outcome": run.outcome,
        "message": run.message,
        "computed": run.progress_done,
        "sent": run.changed + run.failed,
        "split": split,
    }


def run_pushes(full: bool, serial: bool) -> tuple[float, list[dict]]:
    from django.db import connections

    connections.close_all()  # no connection crosses the fork
    started = time.perf_counter()
    jobs = [(code, full) for code in CHANNELS]
    if serial:
        results = [push_worker(job) for job in jobs]
    else:
        with multiprocessing.get_context("fork").Pool(len(jobs)) as pool:
            results = pool.map(push_worker, jobs)
    return time.perf_counter() - started, results


def report_pushes(report: Report, label: str, elapsed: float, results: list[dict]) -> None:
    computed = sum(r["computed"] for r in results)
    sent = sum(r["sent"] for r in results)
    queries = sum(r["queries"] for r in results)
    report(
        f"{label}: {elapsed:.2f} s; {computed:,} listings computed, {sent:,} sent; "
        f"{queries:,} queries ({queries * 1000 / max(computed, 1):.1f} per 1,000 listings)"
    )
    for r in results:
        split = ", ".join(f"{k.strip('_')} {v:.2f} s" for k, v in r["split"].items())
        report(
            f"  {r['code']}: {r['outcome']} in {r['seconds']:.2f} s, {r['computed']:,} computed, "
            f"{r['sent']:,} sent, {r['queries']} queries; {split}"
        )
        if r["outcome"] != "SUCCESS":
            report(f"    {r['message']}")


# --- checks ---------------------------------------------------------------------------------

EXPECTED_SQL = """
SELECT c.code, l.product_id, l.sku_id,
       GREATEST(0, COALESCE(s.q, 0) - COALESCE(s.b, 0) - COALESCE(w.n, 0) - l.buffer),
       c.inventory_zero_at_or_below
FROM listings_channellisting l
JOIN channels_channel c ON c.id = l.channel_id
LEFT JOIN (SELECT sku_id, sum(quantity) q, sum(blocked_quantity) b FROM inventory_inventory
           WHERE inventory_type = 'GOOD_INVENTORY' GROUP BY sku_id) s ON s.sku_id = l.sku_id
LEFT JOIN (SELECT sku_id, count(*) n FROM orders_orderitem
           WHERE status = ANY(%s) AND inventory_id IS NULL GROUP BY sku_id) w
       ON w.sku_id = l.sku_id
"""


def expected_levels() -> dict[str, dict[str, int]]:
    from django.db import connection

    from orders.models.order import ITEM_PRE_DISPATCH

    result: dict[str, dict[str, int]] = {code: {} for code in CHANNELS}
    with connection.cursor() as cur:
        cur.execute(EXPECTED_SQL, [[str(s) for s in ITEM_PRE_DISPATCH]])
        for code, product, _, quantity, rule in cur.fetchall():
            result[code][product] = 0 if rule is not None and quantity <= rule else quantity
    return result


def check(sim: Simulator, before: dict[str, dict[str, int]]) -> tuple[list[str], int]:
    """Problems, and the number of listings whose quantity changed."""
    problems = []
    after = expected_levels()
    changed = 0
    for code in CHANNELS:
        held = sim.levels(code)
        wrong = [p for p, q in after[code].items() if held.get(p) != q]
        if wrong:
            problems.append(f"{code}: {len(wrong)} listings differ, e.g. {wrong[:3]}")
        changed += sum(1 for p, q in after[code].items() if before[code].get(p) != q)
    return problems, changed


# --- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--changed", type=int, default=10_000, help="listings the moves touch")
    parser.add_argument("--serial", action="store_true", help="push the channels one by one")
    args = parser.parse_args(argv)

    setup_django()
    report = Report()
    report(f"# Inventory push benchmark, {datetime.now():%Y-%m-%d %H:%M}")
    report(
        f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    prepare_database(report)
    sim = Simulator()
    try:
        started = time.perf_counter()
        sku_ids = make_fixture(args.listings, sim)
        report(
            f"fixture: {args.listings:,} listings over {len(CHANNELS)} channels, "
            f"{len(sku_ids):,} SKUs ({time.perf_counter() - started:.1f} s)"
        )
        elapsed, results = run_pushes(full=True, serial=args.serial)
        report_pushes(report, "full push of every listing (the daily push)", elapsed, results)
        start_cursors()
        before = expected_levels()
        seq = {code: sim.entries_since(code, 0)[1] for code in CHANNELS}

        moved, units = move_stock(sku_ids, args.changed)
        report(
            f"stock movements: {units:,} units on {-(-args.changed // len(CHANNELS)):,} SKUs "
            f"(allocated and waiting orders) in {moved:.2f} s"
        )
        elapsed, results = run_pushes(full=False, serial=args.serial)
        report_pushes(report, "CHANGED push, timed", elapsed, results)

        problems, changed = check(sim, before)
        sent = sum(sim.entries_since(code, seq[code])[0] for code in CHANNELS)
        if sent != changed:
            problems.append(f"{sent} listings sent, {changed} changed: only changed ones go")
        computed = sum(r["computed"] for r in results)
        queries = sum(r["queries"] for r in results)
        per_1000 = queries * 1000 / max(computed, 1)
        for problem in problems:
            report(f"CHECK FAILED: {problem}")
        if not problems:
            report(
                "checks: every listing's level on the channels equals the formula; only the "
                "changed listings were sent"
            )
        ok = not problems and elapsed < TARGET_SECONDS
        report(f"target: under {TARGET_SECONDS:.0f} s: {'met' if ok else 'MISSED'}")
        report(f"report saved to {report.save()}")
        report(
            f"RESULT listings={args.listings} changed={changed} seconds={elapsed:.2f} "
            f"queries_per_1000={per_1000:.1f}"
        )
        return 0 if ok else 1
    finally:
        sim.stop()


if __name__ == "__main__":
    sys.exit(main())
