"""Benchmark of the scan stations (issue 14): server time and queries per scan, through
Django's test client, with the order tables of `bench_foundation` (1,000,000 orders).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/uniware_bench_stations \
        .venv/bin/python bench/bench_stations.py [--orders 1000000] [--shipments 50]

The database is created, migrated and filled by `bench_foundation`'s COPY fill on first use
and reused afterwards. It must be a database of its own: each run adds a picklist of
`--shipments` orders (kept: later runs see a few more than `--orders`), packs it at the
packing station (every unit scanned, then VALIDATE) and hands the parcels over at the
manifest station (every AWB, then CLOSE); `bench_foundation` would refill a database whose
order count is not its own.

Then `--putaway-orders` more orders are picked and cancelled (their units go to putaways)
and put away at the putaway station: each putaway, shelf A1, each SKU (then `QTY:<n>`).

Printed, per station: p50/p95 server time and queries of each kind of scan (packing: unit
scan, VALIDATE (invoice + label); handover: AWB scan, CLOSE; putaway: the putaway, the shelf,
a SKU, a quantity, and apart the last scan, which completes the putaway); packing scans per
minute end to end. Last line:
`RESULT scan_p50_ms=N scan_p95_ms=N queries_per_scan=N` (unit scans at the packing station).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/uniware_bench_stations")

from bench.bench_foundation import (  # noqa: E402
    QueryCounter,
    Report,
    ensure_filled,
    make_world,
    prepare_database,
    setup_django,
)

TARGET_P50_MS = 30.0
SKUS_PER_ORDER = [1, 2, 1, 3, 1, 1, 2, 1]  # distinct SKUs: no scan repeats the one before


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def make_picklist(world, n: int, tag: str, quantity: int = 1):
    """n allocated single-facility orders on one INVOICING picklist, `quantity` units a line."""
    from django.db.models import F

    from inventory.models import Inventory
    from orders.models import Shipment
    from orders.services import LineInput, OrderInput, orders_create, picklist_create

    Inventory.objects.filter(facility=world.wh1).update(quantity=F("quantity") + 10)
    specs = []
    for i in range(n):
        lines = [
            LineInput(
                f"{tag}-{i}-L{k}", world.skus[(i * 3 + k) % len(world.skus)].code, quantity, "499"
            )
            for k in range(SKUS_PER_ORDER[i % len(SKUS_PER_ORDER)])
        ]
        specs.append(
            OrderInput(
                channel=world.channels["FLIPKART"],
                channel_order_id=f"{tag}-{i}",
                ship_pincode="560001",
                lines=lines,
            )
        )
    orders = orders_create(specs, actor="bench")
    shipments = Shipment.objects.filter(order__in=orders, facility=world.wh1)
    created = picklist_create(
        list(shipments.values_list("pk", flat=True)), destination="INVOICING", actor="bench"
    )
    return created.created[0]


class Station:
    """POSTs scans to one station page as a page's script does, timing each."""

    def __init__(self, client, url: str) -> None:
        self.client, self.url = client, url
        self.times: dict[str, list[float]] = {}
        self.queries: dict[str, list[int]] = {}

    def scan(self, code: str, kind: str) -> str:
        from django.db import connection

        counter = QueryCounter()
        with connection.execute_wrapper(counter):
            began = time.perf_counter()
            response = self.client.post(self.url, {"scan": code}, headers={"X-Station": "1"})
            took = (time.perf_counter() - began) * 1000
        assert response.status_code == 200, response.status_code
        self.times.setdefault(kind, []).append(took)
        self.queries.setdefault(kind, []).append(counter.count)
        return response.content.decode()


def pack(client, user, picklist) -> tuple[Station, float, int]:
    """Pack every shipment of the picklist by scanning; (station, seconds, scans)."""
    from orders.models import OrderItem, Shipment, ShipmentStatus
    from stations.models import Station as StationRow
    from stations.models import StationKind

    station = Station(client, "/admin/stations/station/packing/")
    began, scans = time.perf_counter(), 0
    page = station.scan(picklist.code, "picklist")
    scans += 1
    while True:
        row = StationRow.objects.get(user=user, kind=StationKind.PACKING)
        if row.shipment_id is None:
            break
        codes = OrderItem.objects.filter(shipment_id=row.shipment_id).values_list(
            "sku__code", flat=True
        )
        for code in codes:
            station.scan(code, "unit")
        page = station.scan("VALIDATE", "validate")
        scans += len(codes) + 1
        assert 'data-outcome="done"' in page, page[:400]
    took = time.perf_counter() - began
    left = Shipment.objects.filter(pk__in=picklist.items.values("shipment_id")).exclude(
        status=ShipmentStatus.READY_TO_SHIP
    )
    assert not left.exists(), "the picklist was not packed whole"
    return station, took, scans


def make_putaways(world, n: int, tag: str) -> list:
    """Putaways of every unit of n picked orders of two units a line, cancelled (stock to
    shelve again)."""
    from orders.models import OrderItem
    from orders.services import picklist_receive, units_cancel
    from uniware.core.models import Sequence, SequenceName

    Sequence.objects.get_or_create(
        name=SequenceName.PUTAWAY, facility=None, defaults={"prefix": "PUT-"}
    )
    picklist = make_picklist(world, n, tag, quantity=2)
    assert picklist_receive([picklist.pk], actor="bench").ok
    units = OrderItem.objects.filter(shipment__in=picklist.items.values("shipment_id"))
    cancelled = units_cancel(list(units.values_list("pk", flat=True)), reason="bench")
    assert cancelled.ok and cancelled.created, cancelled.failed
    return cancelled.created


def put_away(client, putaways) -> Station:
    """Place every unit of the putaways on shelf A1: a SKU, then `QTY:<n>` when it has more
    than one unit (one SKU scan per unit would repeat a code inside the double-fire window)."""
    from collections import Counter

    from inventory.models import PutawayItem

    station = Station(client, "/admin/stations/station/putaway/")
    client.post(station.url, {"scan": "CANCEL"}, headers={"X-Station": "1"})  # a clean start
    for putaway in putaways:
        assert 'data-outcome="ok"' in station.scan(putaway.code, "putaway")
        assert 'data-outcome="ok"' in station.scan("A1", "shelf")
        skus = Counter(
            PutawayItem.objects.filter(putaway=putaway).values_list("sku__code", flat=True)
        )
        scans = []
        for code, count in sorted(skus.items()):
            scans.append((code, "sku"))
            if count > 1:
                scans.append((f"QTY:{count}", "qty"))
        for n, (code, kind) in enumerate(scans, start=1):
            page = station.scan(code, "complete" if n == len(scans) else kind)
        assert 'data-outcome="done"' in page, page[:400]
    return station


def hand_over(client, picklist) -> Station:
    from orders.models import Shipment

    station = Station(client, "/admin/stations/station/manifest/")
    shipments = Shipment.objects.filter(pk__in=picklist.items.values("shipment_id"))
    for awb in shipments.values_list("tracking_number", flat=True).distinct():
        assert 'data-outcome="ok"' in station.scan(awb, "awb")
    assert 'data-outcome="done"' in station.scan("CLOSE", "close")
    return station


def summary(report: Report, station: Station) -> None:
    for kind, times in station.times.items():
        queries = station.queries[kind]
        report(
            f"  {kind:9} n={len(times):4}  p50 {statistics.median(times):7.1f} ms  "
            f"p95 {percentile(times, 0.95):7.1f} ms  queries {min(queries)}-{max(queries)}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000, help="orders in the database")
    parser.add_argument("--shipments", type=int, default=50, help="shipments on the picklist")
    parser.add_argument(
        "--putaway-orders", type=int, default=20, help="orders cancelled into putaways"
    )
    args = parser.parse_args(argv)
    setup_django()
    from django.db import connection
    from django.test import Client

    if connection.settings_dict["NAME"] == "uniware_bench":
        sys.exit("bench_stations writes orders: give it a database of its own, not uniware_bench")
    report = Report()
    prepare_database(False, report)
    world = make_world()
    from orders.models import Order

    have = Order.objects.count()  # earlier runs added their picklists' orders: fine
    if have < args.orders and not ensure_filled(args.orders, world, report, reset_done=False):
        sys.exit(f"bench_stations: the database has {have:,} orders, fewer than --orders")
    tag = f"ST{int(time.time())}"
    picklist = make_picklist(world, args.shipments, tag)
    client = Client()
    client.force_login(world.user)
    packing, seconds, scans = pack(client, world.user, picklist)
    handover = hand_over(client, picklist)
    putaway = put_away(client, make_putaways(world, args.putaway_orders, f"{tag}P"))
    have = Order.objects.count()
    report(f"bench_stations: {have:,} orders, picklist of {args.shipments} shipments")
    report("packing station:")
    summary(report, packing)
    report(f"  end to end: {scans} scans in {seconds:.1f} s = {scans / seconds * 60:,.0f}/min")
    report("manifest handover station:")
    summary(report, handover)
    report(f"putaway station ({args.putaway_orders} cancelled orders' units):")
    summary(report, putaway)
    units = packing.times["unit"]
    p50, p95 = statistics.median(units), percentile(units, 0.95)
    verdict = "met" if p50 < TARGET_P50_MS else "NOT met"
    report(f"target: unit scan p50 under {TARGET_P50_MS:.0f} ms: {verdict}")
    report.save()
    queries = max(packing.queries["unit"])
    print(f"RESULT scan_p50_ms={p50:.1f} scan_p95_ms={p95:.1f} queries_per_scan={queries}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
