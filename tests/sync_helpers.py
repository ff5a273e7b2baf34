"""Helpers for the channel tests: point a channel at the simulator, write channel orders that
mirror our test orders, and one row of each sync model."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from channels.models import Channel
from simulator import SimulatorServer


def point_at(
    channel: Channel, sim: SimulatorServer, *, dialect: str = "contract", **settings
) -> Channel:
    """Point a channel at the simulator, with fast retries (tests must not sleep long).
    `dialect`: the channel contract, or a marketplace's own API the simulator plays
    (`native_settings`), over the same simulator channel and orders."""
    channel.base_url = sim.channel_url(channel.code)
    channel.username, channel.password = "user", "pass"
    if dialect != "contract":
        native_settings(channel, sim, dialect)
    channel.retry_base_delay = settings.pop("retry_base_delay", 0.01)
    channel.request_timeout = settings.pop("request_timeout", 5.0)
    for name, value in settings.items():
        setattr(channel, name, value)
    channel.save()
    return channel


def native_settings(channel: Channel, sim: SimulatorServer, dialect: str) -> None:
    """The channel as a native adapter of `dialect` sees the simulator's channel: the type,
    the API's URL and credentials, and limits and listing lag a test does not wait for (the
    adapters' own tests check those at their real values)."""
    from simulator.native import amazon

    base = sim.native_url(dialect, channel.code)
    if dialect == "amazon":
        fast = {op: [1000, 1000] for op in amazon.shapes.USAGE_PLANS}
        seller = f"SELLER-{channel.code}-{id(sim)}"  # its own rate-limit buckets
        amazon.configure(sim.store, channel.code, lagSeconds=0, rates=fast, sellerId=seller)
        channel.channel_type, channel.base_url = "AMAZON_SP", base
        channel.refresh_token = amazon.DEFAULTS["refreshToken"]
        channel.api_settings = {
            "marketplace_id": amazon.INDIA,
            "seller_id": seller,
            "token_url": f"{base}/auth/o2/token",
            "listing_lag_seconds": 0,
            "rate_limits": fast,
        }
        return
    if dialect == "shopify":
        channel.channel_type, channel.base_url = "SHOPIFY", base
        channel.api_settings = {"location_id": "1", "api_version": "2026-10"}
        return
    raise ValueError(f"no such dialect: {dialect}")


def native_requests(sim, code: str, dialect: str, operation: str | None = None) -> list[dict]:
    """The simulator's log of a channel's requests in a native API (of one operation)."""
    rows = [r for r in sim.store.requests(code) if r.get("dialect") == dialect]
    return [r for r in rows if operation in (None, r.get(f"{dialect}Operation"))]


def contract_path(request: dict) -> str:
    """The contract call a simulator request log entry stands for (a native API's too)."""
    return request.get("operation") or request["path"]


def iso(moment) -> str:
    return timezone.localtime(moment).replace(microsecond=0).isoformat()


def channel_order(
    order_id: str,
    lines: list[tuple[str, str, int]],
    *,
    status: str = "CREATED",
    order_status: str | None = None,
    days_ago: float = 1,
    pincode: str = "560001",
    third_party_shipping: bool = False,
    payment: str = "PREPAID",
) -> dict:
    """A channel ORDER: lines are (orderItemId, sku, quantity)."""
    moment = iso(timezone.now() - timedelta(days=days_ago))
    order = {
        "id": order_id,
        "orderDate": moment,
        "paymentType": payment,
        "thirdPartyShipping": third_party_shipping,
        "orderItems": [
            {
                "orderItemId": line_id,
                "sku": sku,
                "quantity": quantity,
                "sellingPrice": "499.00",
                "status": status,
                "updated": moment,
            }
            for line_id, sku, quantity in lines
        ],
        "shippingAddress": {"name": "Asha Rao", "city": "Bengaluru", "pincode": pincode},
    }
    if order_status:
        order["orderStatus"] = order_status
    return order


def mirror(sim: SimulatorServer, order, *, status: str = "CREATED", **fields) -> None:
    """Put one of our orders on the simulator's channel, every line in `status`."""
    lines: dict[str, tuple[str, int]] = {}
    for unit in order.items.select_related("sku").order_by("pk"):
        sku, n = lines.get(unit.channel_order_item_id, (unit.sku.code, 0))
        lines[unit.channel_order_item_id] = (sku, n + 1)
    raw = channel_order(
        order.channel_order_id,
        [(line, sku, n) for line, (sku, n) in lines.items()],
        third_party_shipping=order.third_party_shipping,
    )
    sim.store.put_orders(order.channel.code, [raw])
    if status != "CREATED":
        sim.store.set_item_status(
            order.channel.code, order.channel_order_id, None, status, **fields
        )


def make_sync_records(channel: Channel, order) -> None:
    """One row of each sync model (for the admin's every-page-renders test)."""
    from channels.models import SyncError, SyncKind, SyncLease, SyncRun
    from channels.sync import resync_from

    run = SyncRun.objects.create(
        task="channels.tasks.sync_status", kind=SyncKind.STATUS, channel=channel, trigger="MANUAL"
    )
    SyncError.objects.create(
        run=run, channel=channel, order=order, kind="CONFLICT", message="a test conflict"
    )
    resync_from(channel, SyncKind.STATUS, timezone.now() - timedelta(days=3))
    SyncLease.objects.create(channel=channel, kind=SyncKind.STATUS, holder=str(run.pk))


def advance(shipment, status: str) -> None:
    """Move one CREATED shipment along the forward flow with the services (test set-up)."""
    from orders.models import Picklist, PicklistStatus
    from orders.services import (
        picklist_create,
        picklist_receive,
        shipments_generate_label,
        shipments_invoice,
        shipments_manifest,
    )

    steps = ["PICKING", "PICKED", "PACKED", "READY_TO_SHIP", "MANIFESTED"]
    ids = [shipment.pk]
    for step in steps[: steps.index(status) + 1]:
        if step == "PICKING":
            outcome = picklist_create(ids, destination="INVOICING")
        elif step == "PICKED":
            open_ = Picklist.objects.filter(status=PicklistStatus.CREATED)
            outcome = picklist_receive(open_.values_list("pk", flat=True))
        elif step == "PACKED":
            outcome = shipments_invoice(ids)
        elif step == "READY_TO_SHIP":
            outcome = shipments_generate_label(ids)
        else:
            outcome = shipments_manifest(ids)
        assert not outcome.failed, outcome.failed
    shipment.refresh_from_db()
    assert shipment.status == status
