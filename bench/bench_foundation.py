"""Benchmark of the foundation (issue 2): the order changelist over 1,000,000 orders, and the
throughput of allocation and of manifest close for 10,000 units.

Run on demand, never part of the test suite, on PostgreSQL only (SQLite timings predict
PostgreSQL in neither direction):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/uniware_bench \
        .venv/bin/python bench/bench_foundation.py

The database is created and migrated if needed, filled once with COPY and reused by later runs
(`--reset` drops and refills it). Everything the throughput part writes is rolled back at the
end, so reruns start from the same state. Figures are printed and written to
bench/results/<timestamp>.txt. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"

# --- What is measured, and against what ----------------------------------------------------
# The changelist and the query parameters the admin's own filter links use. At start-up the
# script reads the real parameter names from the registered OrderAdmin's filters and uses those
# instead where it finds them (the table below is the fallback, Django's default names).
CHANGELIST_URL = "/admin/orders/order/"
DEFAULT_PARAMS = {
    "status": "status__exact",
    "channel": "channel__id__exact",
    "search": "q",
}
TARGET_CHANGELIST_MS = 100.0
TARGET_SPEEDUP = 5.0

# The filled data set.
BENCH_MARKER = "Benchmark tenant (bench/bench_foundation.py)"
CHANNELS = [  # code, type, share of orders, channel order id prefix
    ("FLIPKART", "FLIPKART", 40, "OD"),
    ("AMAZON", "AMAZON", 25, "402-"),
    ("PAYTM", "PAYTM", 15, "PTM"),
    ("SNAPDEAL", "SNAPDEAL", 12, "SD"),
    ("WEBSTORE", "CUSTOM", 8, "WEB"),
]
N_SKUS = 100
PINCODES = [f"5600{n:02d}" for n in range(1, 21)]
UNSERVICEABLE = set(PINCODES[-2:])  # no provider serves these: LOCATION_NOT_SERVICEABLE
STOCK_WH1, STOCK_WH2 = 60, 100  # per SKU; 10,000 units of demand need both facilities
UNITS_PER_ORDER = [1, 1, 2, 1, 3, 1, 2, 1]  # cycled in the throughput fixtures


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
            "bench: this benchmark runs on PostgreSQL only (SQLite timings predict PostgreSQL "
            "in neither direction), but the database engine is "
            f"{settings.DATABASES['default']['ENGINE']}.\n"
            "Run it as:\n  DATABASE_URL=postgres://postgres@127.0.0.1:5432/uniware_bench "
            ".venv/bin/python bench/bench_foundation.py"
        )
    # Measure what production runs: no query log, no template debug info.
    settings.DEBUG = False
    # the changelist is requested through Django's test client, whose host is "testserver"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    logging.getLogger("axes").setLevel(logging.WARNING)  # one line per force_login otherwise


# --- Reporting -------------------------------------------------------------------------------


class Report:
    """Prints as it goes and keeps every line for the results file."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

        def fmt(row):
            return "  ".join(
                str(c).ljust(w) if i == 0 else str(c).rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )

        self(fmt(header))
        self("  ".join("-" * w for w in widths))
        for row in rows:
            self(fmt(row))

    def save(self) -> Path:
        RESULTS_DIR.mkdir(exist_ok=True)
        path = RESULTS_DIR / f"{datetime.now():%Y%m%d-%H%M%S}.txt"
        path.write_text("\n".join(self.lines) + "\n")
        return path


class QueryCounter:
    """Counts statements with almost no overhead (unlike CaptureQueriesContext, which keeps
    every SQL string), so it can wrap the naive run's tens of thousands of queries fairly."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def _flush_deferred_checks() -> None:
    """Run the foreign-key checks PostgreSQL defers to commit now. The throughput part never
    commits (it rolls back), so each timed operation ends with this to pay what its commit
    would; before it, the fixture's pending checks are flushed so they are not billed to it."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cur.execute("SET CONSTRAINTS ALL DEFERRED")


PROFILES: list | None = None  # --profile: [(label, pstats text)] of the timed operations


class SqlClock:
    """Time spent in the database driver (server time plus round trip), per request."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - start


def timed(func, *args, label: str = "", **kwargs):
    """(result, seconds, queries) of one call, including its deferred constraint checks.
    Queries counts the statements the call runs (not the check flush)."""
    from django.db import connection

    _flush_deferred_checks()
    counter = QueryCounter()
    profiler = None
    if PROFILES is not None and label:
        import cProfile

        profiler = cProfile.Profile()
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    with connection.execute_wrapper(counter):
        result = func(*args, **kwargs)
    _flush_deferred_checks()
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - start
    if profiler:
        import io
        import pstats

        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        PROFILES.append((label, out.getvalue()))
    return result, seconds, counter.count


# --- The database ----------------------------------------------------------------------------


def _maintenance_connection():
    import psycopg
    from django.db import connection

    s = connection.settings_dict
    return psycopg.connect(
        host=s["HOST"] or None,
        port=s["PORT"] or None,
        user=s["USER"] or None,
        password=s["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )


def _is_bench_database() -> bool:
    """True when the database holds nothing but what this script made (safe to drop)."""
    from django.db import connection

    tables = connection.introspection.table_names()
    if "orders_order" not in tables or "core_tenant" not in tables:
        return True
    with connection.cursor() as cur:
        cur.execute("SELECT name FROM core_tenant WHERE id = 1")
        row = cur.fetchone()
        if row is not None:
            return row[0] == BENCH_MARKER
        cur.execute("SELECT EXISTS (SELECT 1 FROM orders_order)")
        return not cur.fetchone()[0]


def prepare_database(reset: bool, report: Report) -> None:
    """Create the database if it does not exist, drop it first on --reset, then migrate."""
    from django.core.management import call_command
    from django.db import connection

    name = connection.settings_dict["NAME"]
    with _maintenance_connection() as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    if exists and reset:
        if not _is_bench_database():
            sys.exit(
                f"bench: refusing to drop database {name!r}: it has orders this script did not "
                "make. Point DATABASE_URL at a database of its own (e.g. uniware_bench)."
            )
        connection.close()
        with _maintenance_connection() as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        report(f"dropped database {name} (--reset)")
        exists = False
    if not exists:
        with _maintenance_connection() as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        report(f"created database {name}")
    call_command("migrate", interactive=False, verbosity=0)


# --- Filling 1,000,000 orders ----------------------------------------------------------------


@dataclass
class World:
    channels: dict = field(default_factory=dict)  # code -> Channel
    wh1: object = None
    wh2: object = None
    provider: object = None
    skus: list = field(default_factory=list)
    inventory_wh1: dict = field(default_factory=dict)  # sku id -> Inventory
    user: object = None


def make_world() -> World:
    """The reference data, idempotent: channels, two facilities with stock, two providers with
    serviceability, SKUs, tenant-wide sequences and a superuser."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from channels.models import Channel
    from inventory.models import (
        Facility,
        Inventory,
        PaymentMethod,
        Serviceability,
        Shelf,
        ShippingProvider,
        Sku,
    )
    from tests.factories import SKU_TAX, seller_particulars
    from uniware.core.models import Sequence, SequenceName, Tenant

    w = World()
    with transaction.atomic():
        tenant = Tenant.get()
        if tenant.name != BENCH_MARKER:
            tenant.name = BENCH_MARKER
            tenant.save()
        for code, kind, _, _ in CHANNELS:
            w.channels[code], _ = Channel.objects.get_or_create(
                code=code, defaults={"name": code.title(), "channel_type": kind}
            )
        w.wh1, _ = Facility.objects.get_or_create(
            code="WH1", defaults={"name": "Bengaluru", "priority": 1}
        )
        w.wh2, _ = Facility.objects.get_or_create(
            code="WH2", defaults={"name": "Mumbai", "priority": 2}
        )
        for facility in (w.wh1, w.wh2):  # what invoices need (also on a reused database)
            Facility.objects.filter(pk=facility.pk).update(**seller_particulars(facility.code))
        providers = []
        for priority, code in enumerate(["BLUEDART", "DELHIVERY"], start=1):
            p, created = ShippingProvider.objects.get_or_create(
                code=code, defaults={"name": code.title()}
            )
            providers.append(p)
            if created:
                for facility in (w.wh1, w.wh2):
                    facility.shipping_providers.add(p)
                Serviceability.objects.bulk_create(
                    Serviceability(
                        shipping_provider=p, pincode=pin, payment_method=m, priority=priority
                    )
                    for pin in PINCODES
                    if pin not in UNSERVICEABLE
                    for m in PaymentMethod.values
                )
        w.provider = providers[0]
        if not Sku.objects.exists():
            Sku.objects.bulk_create(
                Sku(code=f"SKU-{n:04d}", name=f"Product {n:04d}", mrp=Decimal(499 + n))
                for n in range(1, N_SKUS + 1)
            )
        Sku.objects.filter(hsn_code="").update(**SKU_TAX)
        w.skus = list(Sku.objects.order_by("pk")[:N_SKUS])
        for facility, stock in ((w.wh1, STOCK_WH1), (w.wh2, STOCK_WH2)):
            shelf, _ = Shelf.objects.get_or_create(facility=facility, code="A1")
            for sku in w.skus:
                row, _ = Inventory.objects.get_or_create(
                    shelf=shelf,
                    sku=sku,
                    inventory_type="GOOD_INVENTORY",
                    defaults={"facility": facility, "quantity": stock},
                )
                if facility == w.wh1:
                    w.inventory_wh1[sku.pk] = row
        for name, prefix in [
            (SequenceName.SHIPMENT, "SHP-"),
            (SequenceName.MANIFEST, "MAN-"),
            (SequenceName.INVOICE, "INV-"),
            (SequenceName.PICKLIST, "PCK-"),
        ]:
            Sequence.objects.get_or_create(name=name, facility=None, defaults={"prefix": prefix})
        user_model = get_user_model()
        w.user = user_model.objects.filter(username="bench").first()
        if w.user is None:
            w.user = user_model.objects.create_superuser("bench", "bench@example.com", "bench-only")
    return w


def _copy_text(value) -> str:
    """A value in COPY's text format."""
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, dict | list):
        value = json.dumps(value)
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _copy_layout(model, variable: list[str]) -> tuple[str, str]:
    """The COPY statement for `variable` columns followed by every other column at its
    default (so a field added later does not break the fill), and that constant suffix."""
    from django.db import connection

    qn = connection.ops.quote_name
    others = [f for f in model._meta.concrete_fields if f.attname not in variable]
    suffix = []
    for f in others:
        value = f.get_default()
        if value is None and not f.null:
            raise SystemExit(f"bench: fill does not know a value for {model.__name__}.{f.name}")
        suffix.append(_copy_text(value))
    columns = ", ".join(qn(model._meta.get_field(a).column) for a in variable) + "".join(
        f", {qn(f.column)}" for f in others
    )
    sql = f"COPY {qn(model._meta.db_table)} ({columns}) FROM STDIN"
    return sql, "".join("\t" + s for s in suffix) + "\n"


def _copy(sql: str, lines) -> None:
    from django.db import connection

    with connection.cursor() as cur, cur.cursor.copy(sql) as copy:
        batch: list[str] = []
        for line in lines:
            batch.append(line)
            if len(batch) >= 20000:
                copy.write("".join(batch))
                batch.clear()
        if batch:
            copy.write("".join(batch))


def _order_status(i: int, n: int, rng: random.Random) -> str:
    """Old orders are mostly done; the newest 5 % are still open (as in a live tenant)."""
    if i <= n * 0.95:
        return "CANCELLED" if rng.random() < 0.10 else "COMPLETE"
    r = rng.random()
    if r < 0.05:
        return "PENDING_VERIFICATION"
    if r < 0.45:
        return "CREATED"
    if r < 0.95:
        return "PROCESSING"
    return "CANCELLED"


UNIT_STATUS = {
    "PENDING_VERIFICATION": "CREATED",
    "CREATED": "UNFULFILLABLE",
    "PROCESSING": "PICKING_FOR_INVOICING",
    "COMPLETE": "DISPATCHED",
    "CANCELLED": "CANCELLED",
}


def fill_orders(n: int, world: World, report: Report) -> None:
    """COPY n orders (channels, statuses, dates spread) and their units (1-3 each)."""
    from django.db import connection, transaction

    from orders.models import Order, OrderItem

    rng = random.Random(2)
    channel_rows = [(world.channels[c], prefix) for c, _, _, prefix in CHANNELS]
    picks = rng.choices(channel_rows, weights=[share for _, _, share, _ in CHANNELS], k=n)
    start = datetime.now(UTC) - timedelta(days=365)
    span = 365 * 86400
    sku_ids = [s.pk for s in world.skus]
    prices = [Decimal(p) for p in ("299.00", "499.00", "799.00", "1299.00")]
    orders_sql, orders_suffix = _copy_layout(
        Order,
        [
            "id",
            "code",
            "channel_id",
            "channel_order_id",
            "order_date",
            "status",
            "payment_method",
            "item_count",
            "total_amount",
            "customer_name",
            "customer_phone",
            "customer_email",
            "ship_city",
            "ship_pincode",
            "created_at",
            "updated_at",
        ],
    )
    units_sql, units_suffix = _copy_layout(
        OrderItem,
        [
            "id",
            "order_id",
            "code",
            "channel_order_item_id",
            "sku_id",
            "title",
            "selling_price",
            "status",
            "created_at",
            "updated_at",
        ],
    )
    kept = []  # (order id, coid, date, status, units, price) for the units pass

    def order_lines():
        for i in range(1, n + 1):
            channel, prefix = picks[i - 1]
            coid = f"{prefix}{i:010d}"
            when = (start + timedelta(seconds=i * span // n)).isoformat()
            status = _order_status(i, n, rng)
            units = rng.choice((1, 1, 1, 1, 1, 1, 1, 2, 2, 3))
            price = rng.choice(prices)
            kept.append((i, coid, when, status, units, price))
            method = "COD" if rng.random() < 0.35 else "PREPAID"
            yield (
                f"{i}\t{channel.code}-{coid}\t{channel.pk}\t{coid}\t{when}\t{status}\t{method}\t"
                f"{units}\t{price * units}\tCustomer {i % 50000}\t+91 98{i:08d}\t"
                f"c{i}@example.com\tBengaluru\t"
                f"{PINCODES[i % len(PINCODES)]}\t{when}\t{when}{orders_suffix}"
            )

    def unit_lines():
        unit_id = 0
        for i, coid, when, status, units, price in kept:
            for k in range(units):
                unit_id += 1
                sku = sku_ids[(i * 7 + k) % len(sku_ids)]
                yield (
                    f"{unit_id}\t{i}\t{coid}-L{k}-0\t{coid}-L{k}\t{sku}\tProduct {sku}\t{price}\t"
                    f"{UNIT_STATUS[status]}\t{when}\t{when}{units_suffix}"
                )

    began = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT current_setting('is_superuser') = 'on'")
        if cur.fetchone()[0]:
            # The rows are consistent by construction: skip the 2.5M deferred FK checks.
            cur.execute("SET LOCAL session_replication_role = replica")
        _copy(orders_sql, order_lines())
        t_orders = time.perf_counter() - began
        _copy(units_sql, unit_lines())
        for table in ("orders_order", "orders_orderitem"):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
    took = time.perf_counter() - began
    n_units = sum(k[4] for k in kept)
    report(
        f"filled {n:,} orders in {t_orders:.1f} s ({n / t_orders:,.0f} rows/s) and {n_units:,} "
        f"units in {took - t_orders:.1f} s ({n_units / (took - t_orders):,.0f} rows/s) with COPY"
    )
    began = time.perf_counter()
    _vacuum(["orders_order", "orders_orderitem"])
    report(f"VACUUM ANALYZE in {time.perf_counter() - began:.1f} s")


def ensure_filled(n: int, world: World, report: Report, reset_done: bool) -> bool:
    """Fill when empty. Returns False when the data set has another size (caller resets)."""
    from orders.models import Order

    have = Order.objects.count()
    if have == n:
        report(f"reusing {have:,} orders already in the database (--reset to refill)")
        return True
    if have and not reset_done:
        report(f"the database has {have:,} orders, not {n:,}: dropping and refilling")
        return False
    fill_orders(n, world, report)
    return True


# --- The order changelist --------------------------------------------------------------------


@dataclass
class Case:
    name: str
    params: dict
    check: object  # callable(changelist) -> str | None (an error)


def _params_from_filters(model_admin, request, want: dict[str, str]) -> dict[str, dict]:
    """Find, in the admin's own filter links, the query string that selects each wanted value:
    {"status": "PROCESSING", "channel": "<channel pk>"} -> {"status": {...}, ...}."""
    found: dict[str, dict] = {}
    changelist = model_admin.get_changelist_instance(request)
    for spec in changelist.filter_specs:
        for choice in spec.choices(changelist):
            params = dict(parse_qsl(choice.get("query_string", "").lstrip("?")))
            for key, value in want.items():
                if key in found:
                    continue
                if any(key in k and v == value for k, v in params.items()):
                    found[key] = {k: v for k, v in params.items() if key in k}
    return found


def changelist_cases(world: World, report: Report) -> list[Case] | None:
    from django.contrib import admin
    from django.db.models import Count
    from django.test import RequestFactory

    from orders.models import Order

    model_admin = admin.site._registry.get(Order)
    if model_admin is None:
        report("SKIPPED: orders.Order is not registered in the admin (no orders/admin.py yet?)")
        return None
    by_channel = dict(Order.objects.values_list("channel_id").annotate(n=Count("id")).order_by())
    big = max(by_channel, key=by_channel.get)
    open_status, common_status = "PROCESSING", "COMPLETE"
    sample = Order.objects.filter(
        pk=Order.objects.order_by("-pk").values("pk")[:1][0]["pk"] // 2
    ).first()

    request = RequestFactory().get(CHANGELIST_URL)
    request.user = world.user
    found = _params_from_filters(model_admin, request, {"status": open_status, "channel": str(big)})
    status_key = next(iter(found["status"])) if "status" in found else DEFAULT_PARAMS["status"]
    channel_key = next(iter(found["channel"])) if "channel" in found else DEFAULT_PARAMS["channel"]
    for what, key in (("status", status_key), ("channel", channel_key)):
        source = (
            "from the admin's filter links" if what in found else "DEFAULT (no filter link found)"
        )
        report(f"  {what} filter parameter: {key}  ({source})")
    search = DEFAULT_PARAMS["search"]
    if not model_admin.search_fields:
        report("  WARNING: the Order admin has no search_fields: the search cases search nothing")

    def all_rows(attr, value):
        def check(cl):
            rows = list(cl.result_list)
            if not rows:
                return "no rows"
            bad = [o for o in rows if getattr(o, attr) != value]
            return f"{len(bad)} rows with another {attr}" if bad else None

        return check

    def both(a, b):
        return lambda cl: a(cl) or b(cl)

    def exactly(order):
        def check(cl):
            codes = [o.code for o in cl.result_list]
            return None if codes == [order.code] else f"expected only {order.code}, got {codes[:5]}"

        return check

    return [
        Case("unfiltered", {}, lambda cl: None if len(cl.result_list) else "no rows"),
        Case(f"status={open_status}", {status_key: open_status}, all_rows("status", open_status)),
        Case(
            f"status={common_status}",
            {status_key: common_status},
            all_rows("status", common_status),
        ),
        Case(
            f"channel={world_channel_code(world, big)}",
            {channel_key: str(big)},
            all_rows("channel_id", big),
        ),
        Case(
            f"status={open_status} + channel",
            {status_key: open_status, channel_key: str(big)},
            both(all_rows("status", open_status), all_rows("channel_id", big)),
        ),
        Case("search order code", {search: sample.code}, exactly(sample)),
        Case("search channel order id", {search: sample.channel_order_id}, exactly(sample)),
        *customer_cases(sample, search),
    ]


def customer_cases(sample, search: str) -> list[Case]:
    """Search by the customer (issue 15): each through its own index."""

    def every_row(test, what):
        def check(cl):
            rows = list(cl.result_list)
            bad = [o.code for o in rows if not test(o)]
            return "no rows" if not rows else (f"{len(bad)} rows without {what}" if bad else None)

        return check

    name = sample.customer_name
    phone = sample.customer_phone.replace(" ", "")[-10:]
    return [
        Case(
            "search customer name",
            {search: name},
            every_row(lambda o: name.lower() in o.customer_name.lower(), name),
        ),
        Case(
            "search phone",
            {search: f"0{phone}"},
            every_row(lambda o: o.customer_phone.replace(" ", "").endswith(phone), phone),
        ),
        Case(
            "search e-mail",
            {search: sample.customer_email.upper()},
            every_row(lambda o: o.customer_email == sample.customer_email, "the e-mail"),
        ),
        Case(
            "search pincode",
            {search: sample.ship_pincode},
            every_row(lambda o: o.ship_pincode == sample.ship_pincode, "the pincode"),
        ),
    ]


def world_channel_code(world: World, pk: int) -> str:
    return next(c.code for c in world.channels.values() if c.pk == pk)


def _url(params: dict) -> str:
    return CHANGELIST_URL + (f"?{urlencode(params)}" if params else "")


def validate_cases(client, cases: list[Case]) -> tuple[dict[str, str], dict[str, int]]:
    """One instrumented request per case: the page must render and show the right rows.
    Returns the problems and the number of rows on each page."""
    from django.test.utils import setup_test_environment, teardown_test_environment

    problems, shown = {}, {}
    setup_test_environment(debug=False)
    try:
        for case in cases:
            try:
                response = client.get(_url(case.params))
            except Exception as exc:  # a broken page must not hide the other figures
                problems[case.name] = f"ERROR {type(exc).__name__}: {exc}"
                continue
            if response.status_code != 200:
                where = response.get("Location", "")
                problems[case.name] = f"HTTP {response.status_code} {where}".strip()
                continue
            cl = response.context["cl"] if response.context else None
            shown[case.name] = len(cl.result_list) if cl is not None else 0
            problem = case.check(cl) if cl is not None else "no changelist in the context"
            if problem:
                problems[case.name] = problem
    finally:
        teardown_test_environment()
    return problems, shown


def bench_changelist(world: World, runs: int, report: Report) -> list[dict]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    report()
    report(f"== Order changelist ({CHANGELIST_URL}, median of {runs} runs after a warm-up) ==")
    try:
        cases = changelist_cases(world, report)
    except Exception as exc:
        report(f"ERROR: the order changelist cannot be built: {type(exc).__name__}: {exc}")
        return []
    if cases is None:
        return []
    client = Client()
    client.force_login(world.user)
    problems, shown = validate_cases(client, cases)
    rows = []
    for case in cases:
        url = _url(case.params)
        if problems.get(case.name, "").startswith("ERROR"):
            rows.append(
                {
                    "case": case.name,
                    "url": url,
                    "median": float("inf"),
                    "min": float("inf"),
                    "max": float("inf"),
                    "queries": 0,
                    "slowest_ms": 0.0,
                    "slowest_sql": "",
                    "all": [],
                    "problem": problems[case.name],
                    "rows": 0,
                }
            )
            continue
        client.get(url)  # warm-up
        times, cpu, sql = [], [], []
        for _ in range(runs):
            clock = SqlClock()
            with connection.execute_wrapper(clock):
                start, start_cpu = time.perf_counter(), time.process_time()
                response = client.get(url)
                times.append((time.perf_counter() - start) * 1000)
                cpu.append((time.process_time() - start_cpu) * 1000)
            sql.append(clock.seconds * 1000)
            if response.status_code != 200:
                break
        with CaptureQueriesContext(connection) as captured:
            client.get(url)
        queries = captured.captured_queries
        slowest = max(queries, key=lambda q: float(q["time"])) if queries else None
        rows.append(
            {
                "case": case.name,
                "url": url,
                "median": statistics.median(times),
                "min": min(times),
                "max": max(times),
                "cpu": statistics.median(cpu),
                "sql": statistics.median(sql),
                "queries": len(queries),
                "slowest_ms": float(slowest["time"]) * 1000 if slowest else 0.0,
                "slowest_sql": slowest["sql"] if slowest else "",
                "all": queries,
                "problem": problems.get(case.name),
                "rows": shown.get(case.name, 0),
            }
        )
    report()
    report.table(
        [
            "case",
            "median ms",
            "min",
            "max",
            "python cpu",
            "sql",
            "queries",
            "slowest query ms",
            "target",
        ],
        [
            [
                r["case"],
                f"{r['median']:.1f}",
                f"{r['min']:.1f}",
                f"{r['max']:.1f}",
                f"{r.get('cpu', 0):.1f}",
                f"{r.get('sql', 0):.1f}",
                r["queries"],
                f"{r['slowest_ms']:.1f}",
                _verdict(r),
            ]
            for r in rows
        ],
    )
    report(
        "(ms; python cpu = this process's CPU time, sql = time waiting for the database, both "
        "medians: when median >> cpu + sql, other work on the machine slowed the run)"
    )
    rendered = {r["case"]: r for r in rows if not r["problem"]}
    full, one_row = rendered.get("unfiltered"), rendered.get("search order code")
    report()
    if full and one_row:
        counts = {r["queries"] for r in rendered.values()}
        per_row = full["queries"] - one_row["queries"] > 2
        report(
            f"queries per page: {min(counts)}-{max(counts)}; a full page "
            f"({full['rows']} rows) runs {full['queries']}, a 1-row page {one_row['queries']}: "
            + ("PER-ROW QUERIES (the full page runs more)" if per_row else "no query per row")
        )
    for r in rows:
        if r["problem"]:
            report(f"  {r['case']}: the page is wrong: {r['problem'][:500]}  ({r['url']})")
    for r in rows:
        if r["median"] >= TARGET_CHANGELIST_MS and not r["problem"]:
            explain_slowest(r, report)
    return rows


def _verdict(row: dict) -> str:
    if row["problem"]:
        return "ERROR" if row["problem"].startswith("ERROR") else "WRONG ROWS"
    return "ok" if row["median"] < TARGET_CHANGELIST_MS else "MISSED"


def explain_slowest(row: dict, report: Report) -> None:
    """For a case that missed: its three slowest queries and the plan of the slowest."""
    from django.db import connection

    report()
    report(f"-- {row['case']} ({row['url']}): slowest queries")
    for q in sorted(row["all"], key=lambda q: -float(q["time"]))[:3]:
        report(f"   {float(q['time']) * 1000:7.1f} ms  {q['sql'][:400]}")
    sql = row["slowest_sql"]
    if sql.lstrip().upper().startswith("SELECT"):
        with connection.cursor() as cur:
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            for (line,) in cur.fetchall():
                report(f"   | {line}")


# --- Allocation and manifest close -----------------------------------------------------------


def _units_pattern(n_units: int):
    """Units per order, cycling UNITS_PER_ORDER, summing to exactly n_units."""
    left, i = n_units, 0
    while left > 0:
        q = min(UNITS_PER_ORDER[i % len(UNITS_PER_ORDER)], left)
        yield i, q
        left -= q
        i += 1


def bench_allocation(world: World, n_units: int, tag: str, rng: random.Random) -> dict:
    """orders_create(allocate=False) for n_units, then allocate_units on them (measured)."""
    from orders.models import OrderItem
    from orders.services import LineInput, OrderInput, allocate_units, orders_create

    channel = world.channels["FLIPKART"]
    inputs = []
    for i, q in _units_pattern(n_units):
        coid = f"BENCH-{tag}-{i:06d}"
        inputs.append(
            OrderInput(
                channel=channel,
                channel_order_id=coid,
                ship_pincode=rng.choice(PINCODES),
                payment_method=rng.choice(["COD", "PREPAID"]),
                customer_name=f"Bench {i}",
                lines=[
                    LineInput(f"{coid}-L{k}", rng.choice(world.skus).code, 1, "499.00")
                    for k in range(q)
                ],
            )
        )
    orders, t_create, q_create = timed(
        orders_create,
        inputs,
        actor="bench",
        allocate=False,
        label=f"orders_create, {n_units:,} units",
    )
    result, t_alloc, q_alloc = timed(
        allocate_units,
        order_ids=[o.pk for o in orders],
        actor="bench",
        label=f"allocate_units, {n_units:,} units",
    )
    by_facility = Counter(
        OrderItem.objects.filter(order__in=orders).values_list("facility__code", flat=True)
    )
    allocated = len(result.fulfillable) + len(result.not_serviceable)
    done = allocated + len(result.unfulfillable)
    problem = None if done == n_units else f"{done} of {n_units} units got a status"
    return {
        "units": n_units,
        "orders": len(orders),
        "create_s": t_create,
        "create_q": q_create,
        "alloc_s": t_alloc,
        "alloc_q": q_alloc,
        "fulfillable": len(result.fulfillable),
        "not_serviceable": len(result.not_serviceable),
        "unfulfillable": len(result.unfulfillable),
        "shipments": len(result.shipments),
        "by_facility": dict(by_facility),
        "problem": problem,
    }


def make_manifest_fixture(world: World, n_units: int, tag: str, rng: random.Random):
    """n_units in MANIFESTED shipments on one open manifest, written directly in bulk (a
    benchmark fixture, not a business operation). Stock for them is on hand and blocked."""
    from django.db.models import F
    from django.utils import timezone

    from inventory.models import Inventory
    from orders.models import Manifest, Order, OrderItem, Shipment

    channel, now = world.channels["FLIPKART"], timezone.now()
    manifest = Manifest.objects.create(
        code=f"BENCH-{tag}",
        facility=world.wh1,
        channel=channel,
        shipping_provider=world.provider,
    )
    plan = list(_units_pattern(n_units))
    orders = Order.objects.bulk_create(
        [
            Order(
                code=f"FLIPKART-BENCH-{tag}-{i:06d}",
                channel=channel,
                channel_order_id=f"BENCH-{tag}-{i:06d}",
                order_date=now,
                status="PROCESSING",
                payment_method="PREPAID",
                item_count=q,
                total_amount=Decimal(499) * q,
                ship_pincode=PINCODES[0],
                created_at=now,
                updated_at=now,
            )
            for i, q in plan
        ],
        batch_size=2000,
    )
    shipments = Shipment.objects.bulk_create(
        [
            Shipment(
                code=f"BENCH-{tag}-S{i:06d}",
                order=o,
                facility=world.wh1,
                status="MANIFESTED",
                shipping_provider=world.provider,
                tracking_number=f"BD{tag}{i:08d}",
                manifest=manifest,
                created_at=now,
                updated_at=now,
            )
            for (i, _), o in zip(plan, orders, strict=True)
        ],
        batch_size=2000,
    )
    units, blocked = [], Counter()
    for (_, q), order, shipment in zip(plan, orders, shipments, strict=True):
        for k in range(q):
            sku = rng.choice(world.skus)
            inventory = world.inventory_wh1[sku.pk]
            blocked[inventory.pk] += 1
            units.append(
                OrderItem(
                    order=order,
                    code=f"{order.channel_order_id}-L{k}-0",
                    channel_order_item_id=f"{order.channel_order_id}-L{k}",
                    sku=sku,
                    title=sku.name,
                    selling_price=Decimal(499),
                    status="MANIFESTED",
                    facility=world.wh1,
                    inventory=inventory,
                    shipment=shipment,
                    created_at=now,
                    updated_at=now,
                )
            )
    OrderItem.objects.bulk_create(units, batch_size=2000)
    for pk, n in blocked.items():
        Inventory.objects.filter(pk=pk).update(
            quantity=F("quantity") + n, blocked_quantity=F("blocked_quantity") + n
        )
    return manifest, len(shipments), len(orders)


def naive_manifest_close(manifest, *, actor_label: str = "bench-naive") -> None:
    """The same dispatch done object by object: each shipment and unit moved by its django-fsm
    method and save(), stock decremented per unit with save(), one audit row per object.
    Correct (stock rows are shared by units, so each is loaded once and kept), only slow."""
    from django.contrib.contenttypes.models import ContentType
    from django.db import transaction
    from django.utils import timezone

    from inventory.models import Inventory
    from orders.models import Manifest, Shipment
    from uniware.core.fsm import Change, states_changed
    from uniware.core.models import StateChange

    done = ["DISPATCHED", "DELIVERED", "CANCELLED", "REPLACED", "RESHIPPED"]

    def audit(obj, before: str, transition: str, order_id) -> None:
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
        changes = [Change(obj, before, obj.status)]
        states_changed.send(sender=type(obj), transition=transition, changes=changes)

    with transaction.atomic():
        manifest = Manifest.objects.select_for_update().get(pk=manifest.pk)
        now = timezone.now()
        stock: dict[int, Inventory] = {}
        shipments = (
            Shipment.objects.select_for_update(of=("self",))
            .select_related("order")
            .filter(manifest=manifest, status="MANIFESTED")
            .order_by("pk")
        )
        for shipment in shipments:
            before = shipment.status
            shipment.dispatch()
            shipment.dispatched_at = now
            shipment.save()
            audit(shipment, before, "dispatch", shipment.order_id)
            for unit in shipment.items.filter(status="MANIFESTED").order_by("pk"):
                before = unit.status
                unit.dispatch()
                unit.save()
                audit(unit, before, "dispatch", unit.order_id)
                row = stock.get(unit.inventory_id)
                if row is None:
                    row = stock[unit.inventory_id] = Inventory.objects.select_for_update().get(
                        pk=unit.inventory_id
                    )
                row.quantity -= 1
                row.blocked_quantity -= 1
                row.save()
            order = shipment.order
            if not order.items.exclude(status__in=done).exists():
                before = order.status
                order.complete()
                order.save()
                audit(order, before, "complete", order.pk)
        before = manifest.status
        manifest.close()
        manifest.closed_at = now
        manifest.save()
        audit(manifest, before, "close", None)


def _dispatch_state(manifest) -> dict:
    """What a closed manifest must have done, for checking both ways did the same."""
    from django.db.models import Sum

    from inventory.models import Inventory
    from orders.models import Manifest, Order, OrderItem, Shipment
    from uniware.core.models import StateChange

    shipments = Shipment.objects.filter(manifest=manifest)
    return {
        "manifest": Manifest.objects.get(pk=manifest.pk).status,
        "shipments": dict(Counter(shipments.values_list("status", flat=True))),
        "units": dict(
            Counter(
                OrderItem.objects.filter(shipment__manifest=manifest).values_list(
                    "status", flat=True
                )
            )
        ),
        "orders": dict(
            Counter(
                Order.objects.filter(shipments__manifest=manifest).values_list("status", flat=True)
            )
        ),
        "stock": Inventory.objects.aggregate(q=Sum("quantity"), b=Sum("blocked_quantity")),
        "audit": StateChange.objects.count(),
    }


def _check_dispatch(before: dict, after: dict, n_units: int, n_shipments: int, n_orders: int):
    problems = []
    if after["manifest"] != "CLOSED":
        problems.append(f"manifest is {after['manifest']}")
    if after["shipments"] != {"DISPATCHED": n_shipments}:
        problems.append(f"shipments {after['shipments']}")
    if after["units"] != {"DISPATCHED": n_units}:
        problems.append(f"units {after['units']}")
    if after["orders"] != {"COMPLETE": n_orders}:
        problems.append(f"orders {after['orders']}")
    for key in ("q", "b"):
        if before["stock"][key] - after["stock"][key] != n_units:
            problems.append(f"stock {key} went {before['stock'][key]} -> {after['stock'][key]}")
    audit_rows = after["audit"] - before["audit"]
    expected = n_units + n_shipments + n_orders + 1
    if audit_rows != expected:
        problems.append(f"{audit_rows} audit rows, expected {expected}")
    return problems, audit_rows


def bench_manifest_close(world: World, n_units: int, rng: random.Random, report: Report) -> dict:
    from orders.services import manifest_close

    out = {}
    written = 0.0
    runs = [
        ("SVC", lambda m: manifest_close(m, actor="bench")),
        ("NAIVE", naive_manifest_close),
        ("SVC1K", lambda m: manifest_close(m, actor="bench")),
    ]
    for tag, close in runs:
        units = n_units if tag != "SVC1K" else 1000
        # one open manifest per route: each fixture is written once the one before is closed
        began = time.perf_counter()
        manifest, n_shipments, n_orders = make_manifest_fixture(world, units, tag, rng)
        written += time.perf_counter() - began
        before = _dispatch_state(manifest)
        _, seconds, queries = timed(close, manifest, label=f"manifest close {tag}, {units:,} units")
        problems, audit_rows = _check_dispatch(
            before, _dispatch_state(manifest), units, n_shipments, n_orders
        )
        out[tag] = {
            "units": units,
            "shipments": n_shipments,
            "orders": n_orders,
            "s": seconds,
            "q": queries,
            "audit": audit_rows,
            "problems": problems,
        }
    report(f"manifest fixtures (2 x {n_units:,} + 1,000 units) written in {written:.1f} s")
    return out


_TOUCHED_TABLES = [
    "orders_order",
    "orders_orderitem",
    "orders_shipment",
    "orders_manifest",
    "inventory_inventory",
    "core_statechange",
    "core_sequence",
]


def _vacuum(tables: list[str]) -> None:
    from django.db import connection

    existing = set(connection.introspection.table_names())
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE " + ", ".join(t for t in tables if t in existing))


def bench_throughput(world: World, n_units: int, report: Report) -> dict:
    """Everything here is rolled back at the end: reruns start from the same stock and data."""
    from django.db import transaction

    rng = random.Random(7)
    report()
    report(f"== Throughput ({n_units:,} units; written in one transaction, rolled back after) ==")
    with transaction.atomic():
        alloc = bench_allocation(world, n_units, "A10K", rng)
        alloc_small = bench_allocation(world, 1000, "A1K", rng)
        close = bench_manifest_close(world, n_units, rng, report)
        transaction.set_rollback(True)
    # The rolled-back rows are dead tuples at the tail of the tables and their indexes, the
    # first thing a newest-first changelist reads: clean them up as autovacuum would.
    began = time.perf_counter()
    _vacuum(_TOUCHED_TABLES)
    report(f"VACUUM after the rollback in {time.perf_counter() - began:.1f} s")

    report()
    report.table(
        ["operation", "units", "seconds", "units/s", "queries", "queries at 1,000 units"],
        [
            [
                "orders_create (allocate=False)",
                f"{alloc['units']:,}",
                f"{alloc['create_s']:.2f}",
                f"{alloc['units'] / alloc['create_s']:,.0f}",
                alloc["create_q"],
                alloc_small["create_q"],
            ],
            [
                "allocate_units",
                f"{alloc['units']:,}",
                f"{alloc['alloc_s']:.2f}",
                f"{alloc['units'] / alloc['alloc_s']:,.0f}",
                alloc["alloc_q"],
                alloc_small["alloc_q"],
            ],
            [
                "manifest_close (service)",
                f"{close['SVC']['units']:,}",
                f"{close['SVC']['s']:.2f}",
                f"{close['SVC']['units'] / close['SVC']['s']:,.0f}",
                close["SVC"]["q"],
                close["SVC1K"]["q"],
            ],
            [
                "close unit by unit with save()",
                f"{close['NAIVE']['units']:,}",
                f"{close['NAIVE']['s']:.2f}",
                f"{close['NAIVE']['units'] / close['NAIVE']['s']:,.0f}",
                f"{close['NAIVE']['q']:,}",
                "-",
            ],
        ],
    )
    speedup = close["NAIVE"]["s"] / close["SVC"]["s"]
    report()
    report(
        f"allocation: {alloc['orders']:,} orders -> {alloc['fulfillable']:,} FULFILLABLE, "
        f"{alloc['not_serviceable']:,} LOCATION_NOT_SERVICEABLE, {alloc['unfulfillable']:,} "
        f"UNFULFILLABLE; {alloc['shipments']:,} shipments; units per facility "
        f"{alloc['by_facility']}"
    )
    svc, naive = close["SVC"], close["NAIVE"]
    report(
        f"manifest close: {svc['units']:,} units in {svc['shipments']:,} shipments of "
        f"{svc['orders']:,} orders; audit rows written: service {svc['audit']:,}, "
        f"unit by unit {naive['audit']:,}"
    )
    report(
        f"speed-up of manifest_close over unit by unit: {speedup:.1f}x "
        f"(target >= {TARGET_SPEEDUP:.0f}x: {'ok' if speedup >= TARGET_SPEEDUP else 'MISSED'})"
    )
    for name, res in (("allocation 10k", alloc), ("allocation 1k", alloc_small)):
        if res["problem"]:
            report(f"  PROBLEM in {name}: {res['problem']}")
    for tag, res in close.items():
        if res["problems"]:
            report(f"  PROBLEM in manifest close {tag}: {'; '.join(res['problems'])}")
        else:
            report(
                f"  checked {tag}: manifest CLOSED, every shipment and unit DISPATCHED, "
                "orders COMPLETE, stock consumed once per unit, one audit row per change"
            )
    return {"allocation": alloc, "allocation_1k": alloc_small, "close": close, "speedup": speedup}


# --- Main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reset", action="store_true", help="drop the database and refill it")
    parser.add_argument("--orders", type=int, default=1_000_000, help="orders to fill")
    parser.add_argument("--units", type=int, default=10_000, help="units for the throughput part")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per changelist case")
    parser.add_argument("--only", choices=["changelist", "throughput"], help="run one part")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the timed service calls and add the top functions to the report "
        "(their timings are then inflated)",
    )
    args = parser.parse_args(argv)
    if args.profile:
        global PROFILES
        PROFILES = []

    setup_django()
    import django
    from django.db import connection

    report = Report()
    began = time.perf_counter()
    prepare_database(args.reset, report)
    world = make_world()
    if not ensure_filled(args.orders, world, report, reset_done=args.reset):
        prepare_database(True, report)
        world = make_world()
        ensure_filled(args.orders, world, report, reset_done=True)
    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        pg_version = cur.fetchone()[0]
    report()
    report(
        f"bench_foundation {datetime.now():%Y-%m-%d %H:%M:%S}: PostgreSQL {pg_version}, "
        f"Django {django.get_version()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, database {connection.settings_dict['NAME']}, "
        f"{args.orders:,} orders"
    )
    report(f"load average at start: {_load()} (other work on the machine makes figures noisy)")
    ok = False  # stays False if a part crashes; the report is still written
    try:
        ok = run_parts(args, world, report)
    finally:
        if PROFILES:
            report()
            report("== Profiles of the timed operations (cumulative time, top 25) ==")
            for label, text in PROFILES:
                report(f"-- {label}")
                report(text)
        report()
        report(
            f"targets: {'all met' if ok else 'NOT all met'}; whole run "
            f"{time.perf_counter() - began:.0f} s; load average at the end: {_load()}"
        )
        path = report.save()
        print(f"results written to {path.relative_to(ROOT)}")
    return 0 if ok else 1


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_parts(args, world: World, report: Report) -> bool:
    ok = True
    if args.only in (None, "changelist"):
        rows = bench_changelist(world, args.runs, report)
        ok &= bool(rows) and all(
            r["median"] < TARGET_CHANGELIST_MS and not r["problem"] for r in rows
        )
    if args.only in (None, "throughput"):
        res = bench_throughput(world, args.units, report)
        ok &= res["speedup"] >= TARGET_SPEEDUP and not any(
            r["problems"] for r in res["close"].values()
        )
    return ok


if __name__ == "__main__":
    sys.exit(main())
