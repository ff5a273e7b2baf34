"""What a listing may sell on its channel, and why (issue 16, "What is pushed").

    quantity = max(0, on shelves − blocked − waiting − buffer), then 0 when it is at or below
    the channel's "push 0 at or below N"

- on shelves, blocked: GOOD stock (`Inventory.quantity`, `blocked_quantity`) of the SKU in the
  facilities that serve the channel (`Channel.inventory_facilities`; none chosen: every
  active facility; an inactive facility never counts, as allocation never takes from it).
- waiting: units of open orders not yet allocated (status in `ITEM_PRE_DISPATCH`, no stock
  row, a SKU), of every channel and facility: they will take the same shared stock.
- buffer: the listing's own hold-back.

`listing_quantity` is pure: the terms it returns are stored with the quantity (`wanted_terms`,
then `pushed_terms`) so staff read why a number was pushed (`explain`). `load_inputs` computes
the inputs of a batch of SKUs for several channels in three queries whatever their number.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from django.db.models import Count, Sum

from channels.models import Channel
from inventory.models import Facility, Inventory, InventoryType
from orders.models.order import ITEM_PRE_DISPATCH, OrderItem

MINUS = "−"


@dataclass(frozen=True)
class QuantityInputs:
    """The stock side of the sum, for one SKU as one channel sees it."""

    on_shelves: int = 0
    blocked: int = 0
    waiting: int = 0


@dataclass(frozen=True)
class ListingRule:
    """The listing's and its channel's side of the sum."""

    buffer: int = 0
    zero_at_or_below: int | None = None


def listing_quantity(inputs: QuantityInputs, rule: ListingRule) -> tuple[int, dict]:
    """(quantity to push, its terms). Never below 0; 0 at or below the channel's rule."""
    sellable = inputs.on_shelves - inputs.blocked - inputs.waiting - rule.buffer
    quantity = max(0, sellable)
    zeroed = rule.zero_at_or_below is not None and 0 < quantity <= rule.zero_at_or_below
    terms = {
        "on_shelves": inputs.on_shelves,
        "blocked": inputs.blocked,
        "waiting": inputs.waiting,
        "buffer": rule.buffer,
        "sellable": sellable,
        "zero_at_or_below": rule.zero_at_or_below,
        "quantity": 0 if zeroed else quantity,
    }
    return terms["quantity"], terms


def explain(terms: dict) -> str:
    """ "12 = 20 on shelves − 5 blocked − 1 waiting − 2 buffer", plus why it is 0 when the
    sum is negative or the channel's rule zeroed it; "" for no terms (never computed)."""
    if not terms:
        return ""
    sum_text = (
        f"{terms['on_shelves']} on shelves {MINUS} {terms['blocked']} blocked {MINUS} "
        f"{terms['waiting']} waiting {MINUS} {terms['buffer']} buffer"
    )
    quantity, sellable = terms["quantity"], terms["sellable"]
    if sellable < 0:
        return f"{quantity} = {sum_text} ({sellable}, never below 0)"
    if quantity != sellable:
        rule = terms.get("zero_at_or_below")
        why = f"pushed as 0: the channel's rule is 0 at or below {rule}"
        return f"{quantity} = {sum_text} ({sellable}, {why})"
    return f"{quantity} = {sum_text}"


def served_facilities(channels: Iterable[Channel]) -> dict[int, list[int]]:
    """Per channel, the active facilities whose stock it sells, by priority then code (the
    first is the `facilityCode` the push names). Two queries."""
    channels = list(channels)
    active = list(
        Facility.objects.filter(is_active=True).order_by("priority", "code").values_list("pk")
    )
    order = [pk for (pk,) in active]
    through = Channel.inventory_facilities.through
    chosen: dict[int, set[int]] = defaultdict(set)
    rows = through.objects.filter(channel_id__in=[c.pk for c in channels]).values_list(
        "channel_id", "facility_id"
    )
    for channel_id, facility_id in rows:
        chosen[channel_id].add(facility_id)
    return {
        c.pk: [f for f in order if f in chosen[c.pk]] if chosen[c.pk] else order for c in channels
    }


def load_inputs(
    sku_ids: Collection[int], facilities: dict[int, list[int]]
) -> dict[tuple[int, int], QuantityInputs]:
    """{(channel id, SKU id): inputs} for these SKUs and channels ({channel id: facility ids},
    from `served_facilities`). Two GROUP BY queries, whatever the number of SKUs and
    channels; a SKU with no stock and nothing waiting gets zeros."""
    sku_ids = list(set(sku_ids))
    if not sku_ids or not facilities:
        return {}
    every = {f for ids in facilities.values() for f in ids}
    stock: dict[int, dict[int, tuple[int, int]]] = defaultdict(dict)
    rows = (
        Inventory.objects.filter(
            sku_id__in=sku_ids,
            inventory_type=InventoryType.GOOD_INVENTORY,
            facility_id__in=every,
        )
        .values_list("sku_id", "facility_id")
        .annotate(q=Sum("quantity"), b=Sum("blocked_quantity"))
        .order_by()
    )
    for sku_id, facility_id, quantity, blocked in rows:
        stock[sku_id][facility_id] = (quantity, blocked)
    waiting = dict(
        OrderItem.objects.filter(
            sku_id__in=sku_ids, status__in=ITEM_PRE_DISPATCH, inventory__isnull=True
        )
        .values_list("sku_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    result = {}
    for channel_id, facility_ids in facilities.items():
        for sku_id in sku_ids:
            per = stock.get(sku_id, {})
            rows_in = [per[f] for f in facility_ids if f in per]
            result[channel_id, sku_id] = QuantityInputs(
                on_shelves=sum(q for q, _ in rows_in),
                blocked=sum(b for _, b in rows_in),
                waiting=waiting.get(sku_id, 0),
            )
    return result
