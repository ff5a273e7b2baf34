"""Row locks, always taken in this order so concurrent services cannot deadlock:

    ReturnManifest → ReversePickup → Putaway → Manifest / Picklist
        → Order → Shipment → OrderItem → Inventory → Sequence

Each helper locks rows in primary-key order. Use them inside `transaction.atomic()`.
Rows a transaction creates itself (a new putaway, a follow-up order) need no lock: nobody
else can see them yet. Work that would lock rows earlier in the order after later ones
(allocating follow-up orders, re-allocating waiting units after a putaway) runs after the
commit, in its own transaction (`orders.services.allocation.allocate_after_commit`).
"""

from __future__ import annotations

from collections.abc import Iterable

from .models import Manifest, Order, OrderItem, Picklist, ReturnManifest, ReversePickup, Shipment


def lock_orders(order_ids: Iterable[int]) -> dict[int, Order]:
    rows = Order.objects.select_for_update().filter(pk__in=set(order_ids)).order_by("pk")
    return {o.pk: o for o in rows}


def lock_shipments(shipment_ids: Iterable[int]) -> list[Shipment]:
    """Lock the shipments and, first, their orders."""
    ids = set(shipment_ids)
    order_ids = Shipment.objects.filter(pk__in=ids).values_list("order_id", flat=True)
    orders = lock_orders(order_ids)
    shipments = list(
        Shipment.objects.select_for_update(of=("self",))
        .filter(pk__in=ids)
        .select_related("facility", "shipping_provider")
        .order_by("pk")
    )
    for s in shipments:
        s.order = orders[s.order_id]
    return shipments


def lock_items(**filters) -> list[OrderItem]:
    return list(OrderItem.objects.select_for_update(of=("self",)).filter(**filters).order_by("pk"))


def lock_manifest(manifest_id: int) -> Manifest:
    return (
        Manifest.objects.select_for_update(of=("self",))
        .select_related("channel", "shipping_provider", "facility")
        .get(pk=manifest_id)
    )


def lock_picklist(picklist_id: int) -> Picklist:
    return Picklist.objects.select_for_update().get(pk=picklist_id)


def lock_return_manifest(return_manifest_id: int) -> ReturnManifest:
    return (
        ReturnManifest.objects.select_for_update(of=("self",))
        .select_related("facility")
        .get(pk=return_manifest_id)
    )


def lock_reverse_pickups(pickup_ids: Iterable[int]) -> list[ReversePickup]:
    return list(
        ReversePickup.objects.select_for_update(of=("self",))
        .filter(pk__in=set(pickup_ids))
        .select_related("facility", "order")
        .order_by("pk")
    )
