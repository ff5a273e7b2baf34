"""Benchmark of the status sync (issue 3): 20,000 orders the channel reports DISPATCHED, half
fulfillable with CREATED shipments, half unfulfillable, synced end to end on PostgreSQL.

End to end means what a worker does: pick the candidate orders, ask the channel simulator
(a separate process, over loopback HTTP) in requests of `status_batch_size` ids, apply the
answers with `channels.sync` in batches of 500 orders (set-based services, one transaction
per batch), and keep the run's counts. Beside it, in the same run, the same work done order by
order: the same HTTP requests, then per order its django-fsm methods and `save()` on every
object, one audit row per change, one transaction per order. Both end states are checked to be
identical.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/uniware_bench_sync \\
        .venv/bin/python bench/bench_status_sync.py [--orders 20000]

The database is created and migrated if needed and emptied of orders at the start (it refuses
a database whose tenant it did not make). Figures are printed and written to
bench/results/status-sync-<timestamp>.txt. Exit status 0 when the targets are met.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
BENCH_MARKER = "Benchmark tenant (bench/bench_status_sync.py)"
TARGET_ORDERS_PER_S = 1000.0
UNITS_PER_ORDER = [1, 1, 2]  # cycled: 1.33 units per order
SVC, NAIVE = "BENCH-SVC", "BENCH-NAIVE"


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "uniware.settings")
    os.environ.setdefault("DEBUG", "1")  # development settings; production is the default
    import django

    django.setup()
    import logging

    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit(
            "bench: this benchmark runs on PostgreSQL only, not "
            f"{settings.DATABASES['default']['ENGINE']}. Run it as:\n"
            "  DATABASE_URL=postgres://postgres@127.0.0.1:5432/uniware_bench_sync "
            ".venv/bin/python bench/bench_status_sync.py"
        )
    settings.DEBUG = False
    logging.getLogger("channels").setLevel(logging.WARNING)


class Report:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    def table(self, header: list[str], rows: list[list]) -> None:
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, ["-" * w for w in widths], *rows]:
            cells = [
                str(c).ljust(w) if i == 0 else str(c).rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ]
            self("  ".join(cells))

    def save(self) -> Path:
        RESULTS_DIR.mkdir(exist_ok=True)
        path = RESULTS_DIR / f"status-sync-{datetime.now():%Y%m%d-%H%M%S}.txt"
        path.write_text("\n".join(self.lines) + "\n")
        return path


class QueryCounter:
    """Counts statements on this thread's connection (the fetch thread never queries),
    including the COPY statements `uniware.core.audit` writes large batches of audit rows
    with, which bypass Django's execute wrappers."""

    active: list[QueryCounter] = []

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)

    def __enter__(self):
        from django.db import connection

        self._wrap = connection.execute_wrapper(self)
        self._wrap.__enter__()
        QueryCounter.active.append(self)
        return self

    def __exit__(self, *exc):
        QueryCounter.active.remove(self)
        return self._wrap.__exit__(*exc)


def count_copies() -> None:
    """Make every active QueryCounter count the audit module's COPY statements."""
    from uniware.core import audit

    real = audit._write

    def counted(rows):
        from django.db import connection

        if len(rows) >= audit.COPY_THRESHOLD and connection.vendor == "postgresql":
            for counter in QueryCounter.active:
                counter.count += 1
        return real(rows)

    audit._write = counted


# --- database and data ------------------------------------------------------------------------


def prepare_database(report: Report) -> None:
    import psycopg
    from django.core.management import call_command
    from django.db import connection

    s = connection.settings_dict
    with psycopg.connect(
        host=s["HOST"] or None,
        port=s["PORT"] or None,
        user=s["USER"] or None,
        password=s["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [s["NAME"]])
        if not exists.fetchone():
            admin.execute(f'CREATE DATABASE "{s["NAME"]}"')
            report(f"created database {s['NAME']}")
    call_command("migrate", interactive=False, verbosity=0)
    from uniware.core.models import Tenant

    tenant = Tenant.get()
    has_orders = connection.cursor()
    has_orders.execute("SELECT EXISTS (SELECT 1 FROM orders_order)")
    if tenant.name != BENCH_MARKER and has_orders.fetchone()[0]:
        sys.exit(
            f"bench: database {s['NAME']!r} has orders this script did not make; point "
            "DATABASE_URL at a database of its own (e.g. uniware_bench_sync)."
        )
    tenant.name, tenant.is_live = BENCH_MARKER, True
    tenant.save()


def empty_database() -> None:
    """Start every run from no orders (the sync commits: nothing can be rolled back)."""
    from django.db import connection

    tables = [
        "channels_syncerror",
        "channels_syncrun",
        "channels_synccursor",
        "channels_synclease",
        "core_statechange",
        "orders_invoice",
        "orders_picklistitem",
        "orders_orderitem",
        "orders_shipment",
        "orders_order",
    ]
    existing = set(connection.introspection.table_names())
    with connection.cursor() as cur:
        cur.execute(f"TRUNCATE {', '.join(t for t in tables if t in existing)} CASCADE")
        cur.execute("UPDATE core_sequence SET next_value = 1")


def make_world(sim_url: str):
    from channels.models import Channel
    from inventory.models import Facility, Inventory, Shelf, ShippingProvider, Sku
    from tests.factories import SKU_TAX, seller_particulars
    from uniware.core.models import Sequence

    provider, _ = ShippingProvider.objects.get_or_create(code="BLUEDART", name="Blue Dart")
    facility, _ = Facility.objects.get_or_create(code="WH1", defaults={"name": "WH1"})
    Facility.objects.filter(pk=facility.pk).update(**seller_particulars("WH1"))
    facility.refresh_from_db()
    facility.shipping_providers.add(provider)
    shelf, _ = Shelf.objects.get_or_create(facility=facility, code="A1")
    Sequence.objects.get_or_create(name="INVOICE", facility=facility, defaults={"prefix": "INV-"})
    skus = {}
    for code in ("STOCKED", "NO-STOCK"):
        skus[code], _ = Sku.objects.get_or_create(code=code, defaults={"name": code, **SKU_TAX})
    Inventory.objects.update_or_create(
        facility=facility, shelf=shelf, sku=skus["STOCKED"], defaults={"quantity": 10**6}
    )
    Inventory.objects.filter(sku=skus["NO-STOCK"]).delete()
    from inventory.models import Serviceability

    for method in ("PREPAID", "COD"):
        Serviceability.objects.get_or_create(
            shipping_provider=provider, pincode="560001", payment_method=method
        )
    channels = {}
    for code in (SVC, NAIVE):
        channel, _ = Channel.objects.get_or_create(code=code, defaults={"name": code})
        channel.base_url = f"{sim_url}/ch/{code}"
        channel.username, channel.password = "user", "pass"
        channel.status_batch_size = 100
        channel.retry_base_delay = 0.1
        channel.supports_status_sync = True
        channel.status_sync_channel_shipped_only = False
        channel.save()
        channels[code] = channel
    return channels


def make_orders(channel, n: int) -> list[dict]:
    """n orders in our database (half STOCKED: allocated with a CREATED shipment, half
    NO-STOCK: unfulfillable), and the channel ORDER JSON of each, DISPATCHED."""
    from django.utils import timezone

    from orders.services import LineInput, OrderInput, orders_create

    when = timezone.now() - timedelta(days=1)
    specs, channel_orders = [], []
    for i in range(n):
        order_id = f"{channel.code}-{i:06d}"
        sku = "STOCKED" if i % 2 == 0 else "NO-STOCK"
        quantity = UNITS_PER_ORDER[i % len(UNITS_PER_ORDER)]
        specs.append(
            OrderInput(
                channel=channel,
                channel_order_id=order_id,
                ship_pincode="560001",
                order_date=when,
                lines=[LineInput(f"{order_id}-1", sku, quantity, "499.00")],
            )
        )
        channel_orders.append(
            {
                "id": order_id,
                "orderDate": when.isoformat(timespec="seconds"),
                "orderItems": [
                    {
                        "orderItemId": f"{order_id}-1",
                        "sku": sku,
                        "quantity": quantity,
                        "sellingPrice": "499.00",
                        "status": "DISPATCHED",
                    }
                ],
                "shippingAddress": {"pincode": "560001"},
            }
        )
    for start in range(0, n, 2000):
        orders_create(specs[start : start + 2000], actor="bench-fixture")
    return channel_orders


# --- the simulator, in a process of its own ---------------------------------------------------


def start_simulator() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    line = proc.stdout.readline()
    if "http://" not in line:
        proc.kill()
        sys.exit(f"bench: the simulator did not start: {line}")
    url = line.split()[3]
    return proc, url


def control(url: str, path: str, body) -> dict:
    request = urllib.request.Request(
        f"{url}/_control{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=300) as reply:
        return json.loads(reply.read())


# --- the two ways -----------------------------------------------------------------------------


def run_service(channel) -> tuple[object, float, int, list[int]]:
    """The scheduled status sync of the channel: (run, seconds, queries, queries per batch)."""

    from channels.models import SyncKind
    from channels.sync import status, sync_status

    per_batch: list[int] = []
    real = status._apply

    def counted(*args, **kwargs):
        with QueryCounter() as counter:
            real(*args, **kwargs)
        per_batch.append(counter.count)

    status._apply = counted
    try:
        start = time.perf_counter()
        with QueryCounter() as counter:
            run = sync_status(channel, SyncKind.STATUS)
        seconds = time.perf_counter() - start
    finally:
        status._apply = real
    return run, seconds, counter.count, per_batch


def naive_apply(order_ids: list[int], statuses: dict, facility, actor_label: str) -> None:
    """Dispatch as the channel says, order by order, object by object, with save()."""
    from django.contrib.contenttypes.models import ContentType
    from django.db import transaction
    from django.db.models import Sum
    from django.utils import timezone

    from inventory.models import Inventory
    from orders.models import Invoice, Order, OrderItem, Shipment
    from uniware.core.fsm import Change, states_changed
    from uniware.core.models import Sequence, StateChange

    def audit(obj, before: str, transition: str, order_id: int, now) -> None:
        StateChange.objects.create(
            content_type=ContentType.objects.get_for_model(type(obj)),
            object_id=obj.pk,
            object_code=str(obj)[:100],
            order_id=order_id,
            transition=transition,
            from_state=before,
            to_state=obj.status,
            actor=actor_label,
            at=now,
        )
        states_changed.send(
            sender=type(obj), transition=transition, changes=[Change(obj, before, obj.status)]
        )

    def take(name: str, fac) -> str:
        seq = (
            Sequence.objects.select_for_update()
            .filter(name=name, facility=fac)
            .order_by("pk")
            .first()
        )
        if seq is None:
            seq = Sequence.objects.select_for_update().order_by("pk").get(name=name, facility=None)
        value = seq.next_value
        seq.next_value += 1
        seq.save()
        return seq.format(value)

    for order_id in order_ids:
        with transaction.atomic():
            now = timezone.now()
            order = Order.objects.select_for_update().get(pk=order_id)
            if statuses.get(order.channel_order_id) != "DISPATCHED":
                continue
            units = list(OrderItem.objects.select_for_update().filter(order=order).order_by("pk"))
            shipment = None
            if units[0].shipment_id:
                shipment = Shipment.objects.select_for_update().get(pk=units[0].shipment_id)
            else:
                shipment = Shipment(
                    order=order, facility=facility, code=take("SHIPMENT", None), status="CREATED"
                )
                shipment.save()
                audit(shipment, "", "create", order.pk, now)
                for unit in units:
                    unit.shipment, unit.facility = shipment, facility
                    unit.save()
            total = OrderItem.objects.filter(shipment=shipment).aggregate(
                t=Sum("selling_price") + Sum("shipping_charges")
            )["t"]
            fac = shipment.facility
            Invoice.objects.create(
                code=take("INVOICE", fac),
                invoice_type="SALE",
                shipment=shipment,
                facility=fac,
                total_amount=total,
                taxable_amount=total,  # the naive way computes no GST split
            )
            before = shipment.status
            shipment.dispatch_from_channel()
            shipment.dispatched_at = now
            shipment.save()
            audit(shipment, before, "dispatch_from_channel", order.pk, now)
            for unit in units:
                before = unit.status
                unit.dispatch()
                unit.save()
                audit(unit, before, "dispatch", order.pk, now)
                if unit.inventory_id:
                    row = Inventory.objects.select_for_update().get(pk=unit.inventory_id)
                    row.quantity -= 1
                    row.blocked_quantity -= 1
                    row.save()
            before = order.status
            order.complete()
            order.save()
            audit(order, before, "complete", order.pk, now)


def run_naive(channel, facility) -> tuple[float, int]:

    from channels.adapters import adapter_for
    from orders.models import Order

    start = time.perf_counter()
    with QueryCounter() as counter:
        rows = list(
            Order.objects.filter(channel=channel, status__in=["CREATED", "PROCESSING"])
            .order_by("pk")
            .values_list("pk", "channel_order_id")
        )
        adapter = adapter_for(channel)
        for start_at in range(0, len(rows), 500):
            batch = rows[start_at : start_at + 500]
            reply = adapter.fetch_order_statuses([coid for _, coid in batch])
            statuses = {o.id: o.items[0].status for o in reply.orders}
            naive_apply([pk for pk, _ in batch], statuses, facility, "bench-naive")
    return time.perf_counter() - start, counter.count


def end_state(channel) -> dict:
    """What both ways must leave behind (codes and ids aside)."""
    from django.db.models import Count

    from inventory.models import Inventory
    from orders.models import Invoice, Order, OrderItem, Shipment
    from uniware.core.models import StateChange

    def tally(qs, *fields):
        return dict(Counter(tuple(r) for r in qs.values_list(*fields)))

    orders = Order.objects.filter(channel=channel)
    return {
        "orders": tally(orders, "status"),
        "units": tally(OrderItem.objects.filter(order__channel=channel), "status", "facility_id"),
        "shipments": tally(Shipment.objects.filter(order__channel=channel), "status"),
        "invoices": Invoice.objects.filter(shipment__order__channel=channel).count(),
        "audit": dict(
            StateChange.objects.filter(order__channel=channel)
            .exclude(actor="bench-fixture")
            .values_list("transition")
            .annotate(n=Count("id"))
            .order_by()
        ),
        "stock": Inventory.objects.get(sku__code="STOCKED").quantity,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=20_000, help="orders per way")
    parser.add_argument("--small", type=int, default=2_000, help="orders of the small run")
    args = parser.parse_args(argv)
    setup_django()
    count_copies()
    report = Report()
    from django.db import connection

    from channels.adapters import forget_adapters
    from channels.sync.status import APPLY_BATCH
    from inventory.models import Facility, Inventory

    report(f"Status sync benchmark, {datetime.now():%Y-%m-%d %H:%M}")
    prepare_database(report)
    report(
        f"{platform.node()} · {os.cpu_count()} CPUs · Python {platform.python_version()} · "
        f"PostgreSQL {connection.cursor().connection.info.server_version} · "
        f"load {os.getloadavg()[0]:.2f}"
    )
    sim, sim_url = start_simulator()
    ok = True
    try:
        results = {}
        for label, n in (("small", args.small), ("full", args.orders)):
            empty_database()
            forget_adapters()
            channels = make_world(sim_url)
            control(sim_url, "/reset", {})
            for code in (SVC, NAIVE):
                login = {"code": code, "username": "user", "password": "pass"}
                control(sim_url, "/channels", login)
            started = time.perf_counter()
            fixture = {}
            for code in (SVC, NAIVE) if label == "full" else (SVC,):
                channel_orders = make_orders(channels[code], n)
                control(sim_url, f"/channels/{code}/orders", {"orders": channel_orders})
                fixture[code] = channel_orders
            report(
                f"\n[{label}] fixture: {n:,} orders per way in our database and the simulator "
                f"({time.perf_counter() - started:.1f} s)"
            )
            with connection.cursor() as cur:
                cur.execute("VACUUM ANALYZE orders_order, orders_orderitem, orders_shipment")
            run, seconds, queries, per_batch = run_service(channels[SVC])
            results[label] = (run, seconds, queries, per_batch, n)
            report(
                f"[{label}] service: run #{run.pk} {run.outcome}, seen {run.seen:,}, changed "
                f"{run.changed:,}, failed {run.failed}: {seconds:.2f} s, {queries:,} queries, "
                f"per batch of up to {APPLY_BATCH} orders: {per_batch}"
            )
            if run.outcome != "SUCCESS" or run.changed != n:
                report(f"  FAILED: {run.message}")
                ok = False
            if label != "full":
                continue
            facility = Facility.objects.get(code="WH1")
            naive_seconds, naive_queries = run_naive(channels[NAIVE], facility)
            report(f"[{label}] naive: {naive_seconds:.2f} s, {naive_queries:,} queries")
            svc_state, naive_state = end_state(channels[SVC]), end_state(channels[NAIVE])
            svc_state.pop("stock"), naive_state.pop("stock")
            same = svc_state == naive_state
            report(f"[{label}] end states identical: {same}")
            if not same:
                report(f"  service: {svc_state}\n  naive:   {naive_state}")
                ok = False
            stock = Inventory.objects.get(sku__code="STOCKED")
            units = sum(UNITS_PER_ORDER[i % 3] for i in range(0, n, 2))
            consumed = 10**6 - stock.quantity
            report(f"[{label}] stock consumed {consumed:,} (expected {2 * units:,}, both ways)")
            ok &= consumed == 2 * units and stock.blocked_quantity == 0
            results["naive"] = (naive_seconds, naive_queries)

        run, seconds, queries, per_batch, n = results["full"]
        _, _, _, small_per_batch, s_n = results["small"]
        naive_seconds, naive_queries = results["naive"]
        rate, naive_rate = n / seconds, n / naive_seconds
        report("")
        report.table(
            ["way", "orders", "seconds", "orders/s", "queries", "queries/100 orders"],
            [
                ["service (set-based)", f"{n:,}", f"{seconds:.2f}", f"{rate:,.0f}",
                 f"{queries:,}", f"{100 * queries / n:.1f}"],
                ["order by order, save()", f"{n:,}", f"{naive_seconds:.2f}",
                 f"{naive_rate:,.0f}", f"{naive_queries:,}", f"{100 * naive_queries / n:.1f}"],
            ],
        )  # fmt: skip
        counts = set(per_batch) | set(small_per_batch)
        report(
            f"\nspeed-up {rate / naive_rate:.1f}x · queries per batch of up to {APPLY_BATCH} "
            f"orders: {sorted(set(per_batch))} at {n:,} orders ({len(per_batch)} batches), "
            f"{sorted(set(small_per_batch))} at {s_n:,}; run overhead "
            f"{queries - sum(per_batch)} queries"
        )
        fixed = len(counts) == 1
        met = "met" if rate >= TARGET_ORDERS_PER_S else "MISSED"
        report(f"target ≥ {TARGET_ORDERS_PER_S:,.0f} orders/s: {met}")
        report(f"fixed number of queries per batch: {'yes' if fixed else 'NO'}")
        ok &= rate >= TARGET_ORDERS_PER_S and fixed
        report(f"load at the end {os.getloadavg()[0]:.2f}")
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    report(f"\nwritten to {report.save()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
