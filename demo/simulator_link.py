"""The demo's channels and the channel simulator that `make demo` starts (issue 15: the first
ten minutes of the demo). Both are idempotent, so a re-run of `load_demo` fixes a moved
simulator and a simulator restarted without its state."""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from collections import defaultdict
from urllib.parse import urlsplit

from channels.models import Channel
from orders.models import Order, OrderItem

log = logging.getLogger(__name__)
DEMO_CHANNELS = ["FLIPKART", "AMAZON", "PAYTM", "MYSHOP"]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def simulator_url() -> str:
    return os.environ.get("CHANNEL_SIMULATOR_URL", "http://127.0.0.1:8765").rstrip("/")


def point_channels_at_simulator() -> int:
    """Point the demo channels at the simulator's current address (login user / pass).
    A channel someone pointed elsewhere (not loopback) is left alone. Returns how many moved."""
    url, moved = simulator_url(), 0
    for channel in Channel.objects.filter(code__in=DEMO_CHANNELS):
        wanted = f"{url}/ch/{channel.code}"
        host = urlsplit(channel.base_url).hostname if channel.base_url else None
        if channel.base_url == wanted or (host and host not in LOOPBACK):
            continue
        channel.base_url = wanted
        channel.username, channel.password = "user", "pass"
        channel.save(update_fields=["base_url", "username", "password"])
        moved += 1
    return moved


def order_json(order: Order, units: list[OrderItem]) -> dict:
    """One of our orders in the channel's ORDER shape (channel-api.md §1), every line CREATED."""
    lines: dict[str, list[OrderItem]] = defaultdict(list)
    for unit in units:
        lines[unit.channel_order_item_id].append(unit)
    return {
        "id": order.channel_order_id,
        "orderDate": order.order_date.isoformat(),
        "paymentType": order.payment_method,
        "orderItems": [
            {
                "orderItemId": line_id,
                "sku": members[0].sku.code if members[0].sku_id else "",
                "quantity": len(members),
                "sellingPrice": str(members[0].selling_price),
                "status": "CREATED",
            }
            for line_id, members in lines.items()
        ],
        "shippingAddress": {
            "name": order.customer_name,
            "city": order.ship_city,
            "pincode": order.ship_pincode,
        },
    }


def mirror_orders_on_simulator() -> int:
    """Put the demo's own orders on the simulator's channels, so the notifications and
    pushes about them are accepted (a channel refuses news of an order it does not know).
    Returns how many orders the simulator took; 0 with a warning when it is not running."""
    units: dict[int, list[OrderItem]] = defaultdict(list)
    for unit in OrderItem.objects.filter(order__source_order__isnull=True).select_related("sku"):
        units[unit.order_id].append(unit)
    by_channel: dict[str, list[dict]] = defaultdict(list)
    orders = Order.objects.filter(channel__code__in=DEMO_CHANNELS, source_order__isnull=True)
    for order in orders.select_related("channel"):
        by_channel[order.channel.code].append(order_json(order, units[order.pk]))
    sent = 0
    for code, payload in by_channel.items():
        try:
            _post(f"{simulator_url()}/_control/channels/{code}/orders", {"orders": payload})
        except (urllib.error.URLError, OSError) as exc:
            log.warning(
                "the channel simulator at %s did not take the demo orders: %s", simulator_url(), exc
            )
            return sent
        sent += len(payload)
    return sent


def _post(url: str, body: dict) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310 (loopback)
        reply.read()
