"""Benchmark of a first Amazon order pull (issue 17): 5,000 new orders under Amazon's default
usage plans, run after run until every order is here, each run stopping when its time budget
would be spent waiting for the rate limits and the next one resuming from its cursor.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/uniware_bench_amazon \\
        .venv/bin/python bench/bench_amazon_pull.py [--orders 5000] [--speed 200]

PostgreSQL only; the database is the benchmark's own (created, migrated, emptied each run).
The simulator (`simulator.native.amazon`, in a thread) holds Amazon's documented plans
(getOrders 0.0167/s burst 20, getOrderItems 0.5/s burst 30) and answers 429 to a call over
them. Amazon's clock is sped up `--speed` times: every rate is multiplied by it and the run
budget (8 minutes) divided by it, so the bench takes minutes where Amazon takes hours; the
"Amazon hours" figure is the wall time multiplied back. Rate-limit buckets live in Redis when
REDIS_URL is set (as in production), else in the process.

Checks: every order created exactly once, no call answered 429, each order's lines asked for
once. Last line: `RESULT orders=N runs=N throttled=N amazon_hours=N wall_seconds=N`.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_inventory_push import Report, prepare_database, setup_django  # noqa: E402

MARKER = "Benchmark tenant (bench/bench_amazon_pull.py)"
CODE = "AMZBENCH"
BUDGET_SECONDS = 480.0


def make_fixture(sim, n_orders: int, speed: float):
    """A facility with stock, an AMAZON_SP channel on the simulator, n orders there."""
    from django.utils import timezone

    from channels.models import Channel
    from inventory.models import Facility, Inventory, Serviceability, Shelf, ShippingProvider, Sku
    from simulator.native import amazon

    facility = Facility.objects.create(code="WH1", name="Warehouse 1", priority=1)
    shelf = Shelf.objects.create(facility=facility, code="A1")
    provider = ShippingProvider.objects.create(code="BLUEDART", name="Blue Dart")
    facility.shipping_providers.add(provider)
    for method in ("PREPAID", "COD"):
        Serviceability.objects.create(
            shipping_provider=provider, pincode="560001", payment_method=method, priority=1
        )
    skus = Sku.objects.bulk_create([Sku(code=f"ASKU{i:03d}", name=f"SKU {i}") for i in range(50)])
    Inventory.objects.bulk_create(
        [Inventory(facility=facility, shelf=shelf, sku=s, quantity=10**6) for s in skus]
    )
    seller = uuid.uuid4().hex
    plans = {op: [rate * speed, burst] for op, (rate, burst) in amazon.shapes.USAGE_PLANS.items()}
    sim.store.add_channel(CODE, "client-id", "client-secret")
    amazon.configure(sim.store, CODE, lagSeconds=0, rates=plans, sellerId=seller)
    base = sim.native_url("amazon", CODE)
    channel = Channel.objects.create(
        code=CODE,
        name="Amazon bench",
        channel_type="AMAZON_SP",
        base_url=base,
        username="client-id",
        password="client-secret",
        refresh_token=amazon.DEFAULTS["refreshToken"],
        api_settings={
            "marketplace_id": amazon.INDIA,
            "seller_id": seller,
            "token_url": f"{base}/auth/o2/token",
            "listing_lag_seconds": 0,
            "rate_limits": plans,
            "run_budget_seconds": BUDGET_SECONDS / speed,
        },
    )
    channel.apply_preset()
    channel.save()
    now = timezone.localtime()
    orders = []
    for n in range(n_orders):
        moment = (now - timedelta(days=2) + timedelta(seconds=n * 172_800 / n_orders)).isoformat()
        lines = [
            {"orderItemId": f"B-{n}-{k}", "sku": f"ASKU{(n + k) % 50:03d}", "quantity": 1 + k}
            for k in range(1 + n % 2)
        ]
        orders.append(
            {
                "id": f"402-{n:07d}",
                "orderDate": moment,
                "orderItems": [
                    {**line, "sellingPrice": "499.00", "updated": moment} for line in lines
                ],
                "shippingAddress": {"name": "Asha Rao", "city": "Bengaluru", "pincode": "560001"},
            }
        )
    sim.store.put_orders(CODE, orders)
    return channel


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--speed", type=float, default=200.0)
    args = parser.parse_args()
    setup_django()
    from channels.models import RunOutcome
    from channels.sync import pull_orders
    from orders.models import Order
    from simulator import SimulatorServer

    report = Report("amazon-pull")
    prepare_database(report, MARKER)
    with SimulatorServer(port=0) as sim:
        channel = make_fixture(sim, args.orders, args.speed)
        report(f"{args.orders} orders on the simulator; Amazon's clock {args.speed:g}x")
        runs, started = [], time.monotonic()
        while len(runs) < 500:
            run = pull_orders(channel)
            runs.append(run)
            report(f"run {len(runs):3}: {run.outcome:8} {run.changed:5} created")
            if run.outcome == RunOutcome.SUCCESS and run.changed == 0:
                break
            if run.outcome not in (RunOutcome.SUCCESS, RunOutcome.PARTIAL):
                report(f"  stopped: {run.message.splitlines()[0][:160]}")
        wall = time.monotonic() - started
        requests = [r for r in sim.store.requests(CODE) if r.get("dialect") == "amazon"]
        throttled = sum(1 for r in requests if r["status"] == 429)
        items = [r["path"] for r in requests if r.get("amazonOperation") == "getOrderItems"]
        pages = sum(1 for r in requests if r.get("amazonOperation") == "getOrders")
    created = Order.objects.filter(channel=channel).count()
    hours = wall * args.speed / 3600
    report(f"getOrders calls {pages}, getOrderItems calls {len(items)}, 429 answers {throttled}")
    report(f"wall {wall:.1f} s = {hours:.2f} h of Amazon's default limits; runs {len(runs)}")
    ok = created == args.orders and throttled == 0 and len(items) == len(set(items)) == created
    report(
        f"RESULT orders={created} runs={len(runs)} throttled={throttled} "
        f"amazon_hours={hours:.2f} wall_seconds={wall:.1f}"
    )
    report.save()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
