"""Benchmark of a full Amazon inventory push (issue 17): every listing of a catalogue sent
under Amazon's default usage plans, one `patchListingsItem` a listing against one
JSON_LISTINGS_FEED a request of 1,000, side by side in one run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/uniware_bench_amazon \\
        .venv/bin/python bench/bench_amazon_inventory.py [--listings 10000] [--speed 50]

PostgreSQL only; the database is the benchmark's own (created, migrated, emptied each run).
The simulator (`simulator.native.amazon`, in a thread) holds Amazon's documented plans
(patchListingsItem 5/s burst 10; createFeedDocument 0.5/s, createFeed 0.0083/s, burst 15;
getFeed 2/s; getFeedDocument 0.0222/s burst 10) and answers 429 to a call over them; it
processes a feed at the first getFeed (Amazon takes minutes: not counted here). Amazon's clock
is sped up `--speed` times (every rate multiplied, the 8-minute run budget divided), and
"Amazon minutes" is the wall time multiplied back. Each mode pushes every listing once, then
runs the changed-listings lane until every listing is in sync (a run out of budget stops; the
next goes on; a feed's report is read by the next run).

Checks: every listing in sync at Amazon at its quantity (a 429 is retried after back-off, and
counted). Last line:
`RESULT listings=N patch_calls=N patch_runs=N patch_amazon_minutes=N feed_calls=N feed_runs=N
feed_amazon_minutes=N retried=N`.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_inventory_push import Report, prepare_database, setup_django  # noqa: E402

MARKER = "Benchmark tenant (bench/bench_amazon_inventory.py)"
BUDGET_SECONDS = 480.0


def make_catalogue(n_listings: int) -> list:
    """A facility and n SKUs with stock (quantity i % 50)."""
    from inventory.models import Facility, Inventory, Shelf, Sku

    facility = Facility.objects.create(code="WH1", name="Warehouse 1", priority=1)
    shelf = Shelf.objects.create(facility=facility, code="A1")
    skus = Sku.objects.bulk_create(
        [Sku(code=f"LSKU{i:06d}", name=f"SKU {i}") for i in range(n_listings)], batch_size=5000
    )
    Inventory.objects.bulk_create(
        [
            Inventory(facility=facility, shelf=shelf, sku=s, quantity=i % 50)
            for i, s in enumerate(skus)
        ],
        batch_size=5000,
    )
    return skus


def make_channel(sim, code: str, skus: list, speed: float, feed_from: int):
    """An AMAZON_SP channel on the simulator with a listing per SKU."""
    from channels.models import Channel
    from listings.models import ChannelListing
    from simulator.native import amazon

    seller = uuid.uuid4().hex
    plans = {op: [rate * speed, burst] for op, (rate, burst) in amazon.shapes.USAGE_PLANS.items()}
    sim.store.add_channel(code, "client-id", "client-secret")
    amazon.configure(sim.store, code, lagSeconds=0, rates=plans, sellerId=seller)
    base = sim.native_url("amazon", code)
    channel = Channel.objects.create(
        code=code,
        name=f"Amazon bench {code}",
        channel_type="AMAZON_SP",
        base_url=base,
        username="client-id",
        password="client-secret",
        refresh_token=amazon.DEFAULTS["refreshToken"],
        inventory_batch_size=1000,
        api_settings={
            "marketplace_id": amazon.INDIA,
            "seller_id": seller,
            "token_url": f"{base}/auth/o2/token",
            "rate_limits": plans,
            "run_budget_seconds": BUDGET_SECONDS / speed,
            "inventory_feed_from": feed_from,
        },
    )
    channel.apply_preset()
    channel.save()
    ChannelListing.objects.bulk_create(
        [ChannelListing(channel=channel, product_id=s.code, sku=s) for s in skus], batch_size=5000
    )
    return channel


def push_all(report: Report, sim, channel, speed: float) -> tuple[int, int, float, int]:
    """(calls, runs, Amazon minutes, calls retried) to get every listing of the channel in
    sync at Amazon."""
    from listings.models import ChannelListing, PushStatus
    from listings.push import push_inventory

    started = time.monotonic()
    runs = [push_inventory(channel, full=True)]
    report(f"  {channel.code} run   1: {runs[0].outcome:8} {runs[0].message.splitlines()[0][:100]}")
    unsynced = ChannelListing.objects.filter(channel=channel).exclude(
        push_status=PushStatus.IN_SYNC
    )
    while unsynced.exists() and len(runs) < 200:
        runs.append(push_inventory(channel))
        report(
            f"  {channel.code} run {len(runs):3}: {runs[-1].outcome:8} "
            f"{runs[-1].changed:6} accepted"
        )
    wall = time.monotonic() - started
    calls = sim.store.channels[channel.code].request_count  # the log itself keeps the last 10,000
    return calls, len(runs), wall * speed / 60, sum(run.retries for run in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listings", type=int, default=10_000)
    parser.add_argument("--speed", type=float, default=50.0)
    args = parser.parse_args()
    setup_django()
    from listings.models import ChannelListing
    from simulator import SimulatorServer

    report = Report("amazon-inventory")
    prepare_database(report, MARKER)
    skus = make_catalogue(args.listings)
    report(f"{args.listings} listings a channel; Amazon's clock {args.speed:g}x")
    with SimulatorServer(port=0) as sim:
        patch = make_channel(sim, "AMZPATCH", skus, args.speed, feed_from=10**9)
        feed = make_channel(sim, "AMZFEED", skus, args.speed, feed_from=20)
        results = {}
        for mode, channel in (("patch", patch), ("feed", feed)):
            results[mode] = push_all(report, sim, channel, args.speed)
            calls, runs, minutes, retried = results[mode]
            report(
                f"{mode}: {calls} calls, {runs} runs, {minutes:.1f} Amazon minutes, "
                f"{retried} retried (429)"
            )
            levels = {
                r["productId"]: r["inventory"]
                for r in sim.store.received(channel.code)["inventoryLevels"]
            }
            expected = {s.code: i % 50 for i, s in enumerate(skus)}
            synced = ChannelListing.objects.filter(channel=channel, push_status="IN_SYNC").count()
            results[mode] += (levels == expected and synced == args.listings,)
    (p_calls, p_runs, p_min, p_retried, p_ok), (f_calls, f_runs, f_min, f_retried, f_ok) = (
        results["patch"],
        results["feed"],
    )
    report(
        f"RESULT listings={args.listings} patch_calls={p_calls} patch_runs={p_runs} "
        f"patch_amazon_minutes={p_min:.1f} feed_calls={f_calls} feed_runs={f_runs} "
        f"feed_amazon_minutes={f_min:.1f} retried={p_retried + f_retried}"
    )
    report.save()
    return 0 if p_ok and f_ok else 1


if __name__ == "__main__":
    sys.exit(main())
