"""The first ten minutes of the demo (issue 15): load_demo puts its own orders on the channel
simulator (so what we tell the channel about them is accepted), and a re-run points the
channels at the simulator's current address."""

from __future__ import annotations

from django.core.management import call_command

from channels.models import Channel
from imports.resources import COLUMNS
from inventory.models import Sku
from orders.models import Order
from simulator import SimulatorServer


def known_on(sim, code: str) -> set[str]:
    return {o["id"] for o in sim.store.all_orders(code)}


def test_the_demo_orders_exist_on_the_simulator_and_a_rerun_follows_it(db, monkeypatch):
    with SimulatorServer(port=0, seed_demo=True) as first:
        monkeypatch.setenv("CHANNEL_SIMULATOR_URL", first.url)
        call_command("load_demo", orders=12, seed=5, allow_known_passwords=True)
        flipkart = Channel.objects.get(code="FLIPKART")
        assert flipkart.base_url == f"{first.url}/ch/FLIPKART"
        ours = set(
            Order.objects.filter(channel=flipkart).values_list("channel_order_id", flat=True)
        )
        assert ours and ours <= known_on(first, "FLIPKART")
        order = Order.objects.filter(channel=flipkart).first()
        mirrored = next(
            o for o in first.store.all_orders("FLIPKART") if o["id"] == order.channel_order_id
        )
        assert sum(i["quantity"] for i in mirrored["orderItems"]) == order.item_count

    with SimulatorServer(port=0, seed_demo=True) as second:  # restarted elsewhere, empty
        monkeypatch.setenv("CHANNEL_SIMULATOR_URL", second.url)
        call_command("load_demo", orders=12, seed=5)
        assert Channel.objects.get(code="FLIPKART").base_url == f"{second.url}/ch/FLIPKART"
        assert ours <= known_on(second, "FLIPKART")
        assert Order.objects.count() == 12  # nothing loaded twice


def test_a_channel_pointed_elsewhere_by_staff_is_left_alone(db, monkeypatch):
    with SimulatorServer(port=0, seed_demo=True) as sim:
        monkeypatch.setenv("CHANNEL_SIMULATOR_URL", sim.url)
        call_command("load_demo", orders=3, seed=5, allow_known_passwords=True)
        Channel.objects.filter(code="PAYTM").update(base_url="https://seller.paytm.example/api")
        call_command("load_demo", orders=3, seed=5)
        assert Channel.objects.get(code="PAYTM").base_url == "https://seller.paytm.example/api"


def test_the_import_templates_example_skus_exist_in_the_demo(db):
    """Staff try the template on the demo: its example rows must import there (issue 15)."""
    call_command("load_demo", orders=3, seed=5, allow_known_passwords=True)
    examples = {c.example for cols in COLUMNS.values() for c in cols if c.name == "sku"}
    assert examples and examples <= set(Sku.objects.values_list("code", flat=True))
