"""Generated channel orders: plausible orders for demos, benchmarks and tests (the control API's
`generate`), and the demo channels the back-office's `make demo` works with."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .contract import (
    ITEM_STATUSES,
    ORDER_STATUSES,
    ContractError,
    as_bool,
    as_int,
    as_list,
    choice,
    derive_order_status,
    iso,
    normalize_order,
    parse_iso,
)

if TYPE_CHECKING:
    from .store import Store

CITIES = [("Bengaluru", "Karnataka", "5600"), ("Delhi", "Delhi", "1100"), ("Mumbai", "MH", "4000")]
PAYMENT_CHOICES = ("PREPAID", "PREPAID", "COD")  # generated orders: two in three prepaid
DEMO_CHANNELS = ("FLIPKART", "AMAZON", "PAYTM", "MYSHOP")
# SKU codes of the back-office demo (load_demo); the HEADPHONES ones have no stock there.
DEMO_SKUS = [
    "TSHIRT-RED",
    "TSHIRT-BLUE",
    "KURTA-BLACK",
    "JEANS-BLUE",
    "WATCH-BLACK",
    "HEADPHONES-RED",
]
GENERATE_KEYS = {
    "count",
    "skus",
    "seed",
    "idPrefix",
    "orderDateFrom",
    "orderDateTo",
    "itemsPerOrder",
    "quantity",
    "status",
    "orderStatus",
    "paymentType",
    "thirdPartyShipping",
}


def _range(value: Any, field: str) -> tuple[int, int]:
    """`2`, `[1, 3]` or `"1-3"` → an inclusive (low, high) pair."""
    if isinstance(value, str) and "-" in value:
        value = value.split("-", 1)
    if isinstance(value, list | tuple) and len(value) == 2:
        low, high = as_int(value[0], field, 1), as_int(value[1], field, 1)
    else:
        low = high = as_int(value, field, 1)
    if low > high:
        raise ContractError(f"{field}: {low} is above {high}")
    return low, high


def random_order(
    rng: random.Random,
    order_id: str,
    moment: str,
    skus: list[str],
    items_per_order: tuple[int, int],
    quantity: tuple[int, int],
    payment_type: str | None,
) -> dict:
    """One plausible channel order: an address, some of the SKUs, prices (raw, unchecked)."""
    city, state, pin = rng.choice(CITIES)
    address = {
        "name": rng.choice(["Asha Rao", "Vikram Singh", "Meera Iyer", "Rahul Das"]),
        "addressLine1": f"{rng.randint(1, 300)} MG Road",
        "city": city,
        "state": state,
        "pincode": f"{pin}{rng.randint(1, 30):02d}",
        "phone": f"98{rng.randint(10_000_000, 99_999_999)}",
    }
    lines = rng.sample(skus, min(rng.randint(*items_per_order), len(skus)))
    return {
        "id": order_id,
        "orderDate": moment,
        "paymentType": payment_type or rng.choice(PAYMENT_CHOICES),
        "thirdPartyShipping": False,
        "orderItems": [
            {
                "orderItemId": f"{order_id}-{k}",
                "sku": sku,
                "title": sku.replace("-", " ").title(),
                "quantity": rng.randint(*quantity),
                "sellingPrice": rng.choice(["499.00", "799.00", "1299.00"]),
            }
            for k, sku in enumerate(lines, start=1)
        ],
        "shippingAddress": address,
    }


class GeneratingMixin:
    """`Store`'s generated orders (it uses the store's lock, channels and order changes)."""

    def generate_orders(
        self,
        code: str,
        count: int,
        skus: list[str] | None = None,
        seed: int | None = None,
        id_prefix: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        items_per_order: tuple[int, int] = (1, 2),
        quantity: tuple[int, int] = (1, 2),
        status: str = "CREATED",
        order_status: str | None = None,
        payment_type: str | None = None,
        third_party_shipping: bool = False,
    ) -> list[str]:
        """N plausible orders, their dates spread evenly over the window (default: last 2 days).

        The same seed gives the same orders; ids continue the channel's numbering.
        """
        count = as_int(count, "generate.count", 1, 200_000)
        skus = skus or DEMO_SKUS
        rng = random.Random(seed)
        end = parse_iso(date_to, "generate.orderDateTo") if date_to else self.now()
        start = parse_iso(date_from, "generate.orderDateFrom") if date_from else end - timedelta(2)
        if start > end:
            raise ContractError("generate: orderDateFrom is after orderDateTo")
        choice(status, ITEM_STATUSES, "generate.status")
        if order_status is not None:
            choice(order_status, ORDER_STATUSES, "generate.orderStatus")
        span = (end - start).total_seconds()
        prefix = f"{code}-" if id_prefix is None else id_prefix
        ids = []
        with self.lock:
            channel = self._channel(code)
            number = channel.next_number
            for i in range(count):
                while f"{prefix}{number}" in channel.orders:
                    number += 1
                order_id = f"{prefix}{number}"
                number += 1
                moment = (start + timedelta(seconds=span * (i + 1) / count)).astimezone(self.tz)
                raw = random_order(
                    rng, order_id, iso(moment), skus, items_per_order, quantity, payment_type
                )
                raw["thirdPartyShipping"] = third_party_shipping
                order = normalize_order(raw, moment)
                if status != "CREATED":
                    items = [
                        self._changed_item(order, item, status, {}, order["orderDate"])
                        for item in order["orderItems"]
                    ]
                    order = {**order, "orderItems": items}
                order["orderStatus"] = order_status or derive_order_status(
                    order["orderItems"], "CREATED"
                )
                self._store_order(channel, order)
                ids.append(order_id)
            channel.next_number = number
            self._changed()
        return ids

    def generate_from_dict(self, code: str, raw: dict) -> list[str]:
        unknown = sorted(set(raw) - GENERATE_KEYS - {"next"})
        if unknown:
            raise ContractError(f"generate: unknown field(s) {', '.join(unknown)}")
        return self.generate_orders(
            code,
            raw.get("count", 1),
            as_list(raw["skus"], "generate.skus") if raw.get("skus") else None,
            as_int(raw["seed"], "generate.seed") if raw.get("seed") not in (None, "") else None,
            raw.get("idPrefix") or None,
            raw.get("orderDateFrom") or None,
            raw.get("orderDateTo") or None,
            _range(raw.get("itemsPerOrder") or [1, 2], "generate.itemsPerOrder"),
            _range(raw.get("quantity") or [1, 2], "generate.quantity"),
            raw.get("status") or "CREATED",
            raw.get("orderStatus") or None,
            choice(raw["paymentType"], ("COD", "PREPAID"), "generate.paymentType")
            if raw.get("paymentType")
            else None,
            as_bool(raw.get("thirdPartyShipping", False), "generate.thirdPartyShipping"),
        )


def seed_demo(store: Store, orders_per_channel: int = 6) -> None:
    """Channels FLIPKART, AMAZON, PAYTM, MYSHOP (user/pass) with a few orders each.

    Idempotent: a channel that already has orders gets none added. In each channel the
    first order is DISPATCHED and the second CANCELLED, so a status sync has work to do.
    """
    for n, code in enumerate(DEMO_CHANNELS):
        store.add_channel(code, "user", "pass")
        if store.order_count(code):
            continue
        ids = store.generate_orders(code, orders_per_channel, DEMO_SKUS, seed=n)
        if code == "AMAZON":  # Amazon: only orders the channel ships are status-synced
            ids += store.generate_orders(code, 2, DEMO_SKUS, seed=99, third_party_shipping=True)
        store.set_item_status(
            code, ids[0], None, "DISPATCHED", courierName="DELHIVERY", trackingNumber=f"AWB{ids[0]}"
        )
        store.set_item_status(code, ids[1], None, "CANCELLED")
