"""Creating orders, deriving their status, hold and accept."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from channels.models import Channel
from inventory.models import PaymentMethod, Sku
from uniware.core.actors import Actor
from uniware.core.audit import record_changes, record_events
from uniware.core.db import build, insert_new, link
from uniware.core.fsm import Change, apply_transitions, record_transitions
from uniware.core.money import MoneyError, parse_money
from uniware.core.results import Outcome

from ..locks import lock_orders
from ..models import Order, OrderItem, OrderItemStatus, OrderStatus
from ..models.order import ITEM_DISPATCHED_OR_LATER
from ..selectors import orders_existing
from .limits import check_order, check_quantity

PAYMENT_METHODS = frozenset(PaymentMethod.values)


@dataclass
class LineInput:
    """One channel line; `quantity` units are created. Prices are per unit."""

    channel_order_item_id: str
    sku: str
    quantity: int = 1
    selling_price: Decimal | str = "0"
    shipping_charges: Decimal | str = "0"
    title: str = ""
    channel_product_id: str = ""
    variant_id: str = ""
    # The channel's listing is not mapped to a SKU yet (`listings`): the units are made
    # without one and the order waits in PENDING_VERIFICATION, naming the listing.
    unmapped: bool = False


@dataclass
class OrderInput:
    channel: Channel | str
    channel_order_id: str
    lines: list[LineInput]
    ship_pincode: str
    payment_method: str = PaymentMethod.PREPAID
    order_date: datetime | None = None
    dispatch_by: datetime | None = None  # the channel's latest ship date, if it gives one
    third_party_shipping: bool = False
    pending_verification: bool = False
    on_hold: bool = False
    priority: int = 0
    currency: str = "INR"
    customer_name: str = ""
    customer_email: str = ""
    customer_phone: str = ""
    ship_address_line1: str = ""
    ship_address_line2: str = ""
    ship_city: str = ""
    ship_state: str = ""
    ship_country: str = "IN"
    billing_address: dict = field(default_factory=dict)
    buyer_gstin: str = ""
    verification_reason: str = ""  # why it waits, when not (only) for the channel


def _money(value, *, where: str, name: str) -> Decimal:
    """A line's amount, by the one money parser (`uniware.core.money`), refused naming the
    order, the line and the field."""
    try:
        return parse_money(value)
    except MoneyError as exc:
        shown = value if isinstance(value, Decimal) else repr(value)
        raise ValidationError({name: f"{where}: {name} {shown} {exc}"}) from None


def orders_create(
    inputs: list[OrderInput], *, actor: Actor | None = None, allocate: bool = True
) -> list[Order]:
    """Create orders with one OrderItem per unit, then allocate them. All or nothing.

    Set-based: a fixed number of queries however many orders and units. The units of
    orders that may be allocated at once (not held, not pending verification) are allocated
    before they are inserted, so each row is written once (by COPY on PostgreSQL), already
    allocated; the audit trail still shows both steps (created, then allocated).
    """
    actor = Actor.of(actor)
    channels, skus = _channels_and_skus(inputs)
    now = timezone.now()
    built = [_build_order(spec, channels, skus, now) for spec in inputs]
    orders = [order for order, _ in built]
    _check_new(orders)
    with transaction.atomic():
        _insert_and_allocate(built, actor=actor, allocate=allocate, now=now)
    return orders


def _channels_and_skus(inputs: list[OrderInput]) -> tuple[dict[str, Channel], dict[str, Sku]]:
    """The channels named by code and the SKUs of every line, by code (two queries)."""
    named = {spec.channel for spec in inputs if not isinstance(spec.channel, Channel)}
    channels = {c.code: c for c in Channel.objects.filter(code__in=named)} if named else {}
    sku_codes = {line.sku for o in inputs for line in o.lines}
    skus = {s.code: s for s in Sku.objects.filter(code__in=sku_codes).only("code", "name")}
    return channels, skus


def _build_order(
    spec: OrderInput, channels: dict[str, Channel], skus: dict[str, Sku], now: datetime
) -> tuple[Order, list[OrderItem]]:
    """The unsaved order and its units, checked (ValidationError naming the order)."""
    where = f"Order {spec.channel_order_id}"
    channel = spec.channel if isinstance(spec.channel, Channel) else channels.get(spec.channel)
    _check_spec(spec, channel, where)
    units: list[OrderItem] = []
    total = Decimal(0)
    for line in spec.lines:
        line_units, amount = _build_units(line, skus, f"{where} line {line.channel_order_item_id}")
        units += line_units
        total += amount
    order = build(
        Order,
        code=f"{channel.code}-{spec.channel_order_id}",
        channel=channel,
        channel_order_id=spec.channel_order_id,
        order_date=spec.order_date or now,
        dispatch_by=spec.dispatch_by,
        status=OrderStatus.PENDING_VERIFICATION
        if spec.pending_verification
        else OrderStatus.CREATED,
        payment_method=spec.payment_method,
        third_party_shipping=spec.third_party_shipping,
        currency=spec.currency,
        on_hold=spec.on_hold,
        priority=spec.priority,
        item_count=len(units),
        total_amount=total,
        customer_name=spec.customer_name,
        customer_email=spec.customer_email,
        customer_phone=spec.customer_phone,
        ship_address_line1=spec.ship_address_line1,
        ship_address_line2=spec.ship_address_line2,
        ship_city=spec.ship_city,
        ship_state=spec.ship_state,
        ship_country=spec.ship_country,
        ship_pincode=spec.ship_pincode,
        billing_address=spec.billing_address,
        buyer_gstin=spec.buyer_gstin.strip().upper(),
        verification_reason=spec.verification_reason[:255] if spec.pending_verification else "",
    )
    check_order(order, units, where)
    return order, units


def _check_spec(spec: OrderInput, channel: Channel | None, where: str) -> None:
    """The order-level fields the lines do not check."""
    if channel is None:
        raise ValidationError({"channel": f"{where}: unknown channel {spec.channel!r}"})
    if spec.payment_method not in PAYMENT_METHODS:
        raise ValidationError(
            {
                "payment_method": f"{where}: payment method {spec.payment_method!r} "
                "is not COD or PREPAID"
            }
        )
    if not spec.ship_pincode:
        raise ValidationError({"ship_pincode": f"{where}: the shipping pincode is missing"})
    if not spec.lines:
        raise ValidationError({"lines": f"{where}: an order needs at least one line"})
    if any(line.unmapped for line in spec.lines) and not (
        spec.pending_verification and spec.verification_reason
    ):
        raise ValidationError(
            {"lines": f"{where}: a line without a SKU needs the order pending verification"}
        )


def _build_units(
    line: LineInput, skus: dict[str, Sku], where: str
) -> tuple[list[OrderItem], Decimal]:
    """One unsaved unit per ordered piece of the line, and what the line costs in all."""
    sku = None if line.unmapped else skus.get(line.sku)
    if sku is None and not line.unmapped:
        raise ValidationError({"sku": f"{where}: unknown SKU {line.sku!r}"})
    quantity = line.quantity
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise ValidationError(
            {"quantity": f"{where}: quantity {line.quantity!r} must be a positive whole number"}
        )
    price = _money(line.selling_price, where=where, name="selling_price")
    shipping = _money(line.shipping_charges, where=where, name="shipping_charges")
    check_quantity(quantity, where)  # amounts: checked by parse_money against MAX
    title = line.title or (sku.name if sku else line.channel_product_id)
    units = [
        build(
            OrderItem,
            code=f"{line.channel_order_item_id}-{n}",
            channel_order_item_id=line.channel_order_item_id,
            sku_id=sku.pk if sku else None,
            channel_product_id=line.channel_product_id,
            variant_id=line.variant_id,
            title=title,
            selling_price=price,
            shipping_charges=shipping,
        )
        for n in range(quantity)
    ]
    return units, (price + shipping) * quantity


def _insert_and_allocate(
    built: list[tuple[Order, list[OrderItem]]], *, actor: Actor, allocate: bool, now: datetime
) -> None:
    """Insert the orders, allocate the units of those that may be allocated now, insert the
    units (already allocated) and record both steps in the audit trail."""
    from .allocation import allocate_new_units, may_allocate

    orders = [order for order, _ in built]
    insert_new(Order, orders, now=now)
    all_units: list[OrderItem] = []
    waiting: list[OrderItem] = []  # units allocated now
    for order, units in built:
        for unit in units:
            link(unit, "order", order)
        all_units += units
        if allocate and may_allocate(order):
            waiting += units
    created = [Change(u, "", u.status) for u in all_units]
    moves = []
    if waiting:
        _, moves = allocate_new_units(waiting, actor=actor)
    insert_new(OrderItem, all_units, now=now)
    record_changes(
        [Change(o, "", o.status) for o in orders], transition="create", actor=actor, at=now
    )
    record_changes(created, transition="create", actor=actor, at=now)
    for name, changes in moves:
        record_transitions(changes, name, actor=actor, now=now)
    if moves:
        _refresh_statuses(orders, _unit_counts(all_units), actor=actor, reason="")


def _unit_counts(units: list[OrderItem]) -> dict[int, Counter]:
    counts: dict[int, Counter] = defaultdict(Counter)
    for unit in units:
        counts[unit.order_id][unit.status] += 1
    return counts


def _check_new(orders: list[Order]) -> None:
    """A channel sends each order once: refuse an order id the channel already has (in the
    database or twice in this batch) with a clear error instead of an IntegrityError."""
    seen: dict[tuple[int, str], Order] = {}
    codes: dict[str, Order] = {}
    for order in orders:
        key = (order.channel.pk, order.channel_order_id)
        if key in seen or order.code in codes:
            message = (
                f"Order {order.channel_order_id}: sent twice by channel {order.channel.code} "
                "in this batch"
            )
            raise ValidationError({"channel_order_id": message})
        seen[key] = codes[order.code] = order
    if not orders:
        return
    existing = orders_existing(set(seen), set(codes))
    for channel_id, channel_order_id, code in existing:
        clash = seen.get((channel_id, channel_order_id)) or codes.get(code)
        if clash is not None:
            message = (
                f"Order {clash.channel_order_id}: channel {clash.channel.code} already has "
                f"this order ({code})"
            )
            raise ValidationError({"channel_order_id": message})


def order_create(spec: OrderInput, *, actor: Actor | None = None, allocate: bool = True) -> Order:
    order = orders_create([spec], actor=actor, allocate=allocate)[0]
    order.refresh_from_db()
    return order


def determine_order_status(current: str, unit_counts: dict[str, int]) -> str:
    """The order status its units imply (domain.md). Monotonic: never back to CREATED once
    processing, and COMPLETE is not reopened by returns."""
    if current in (OrderStatus.COMPLETE, OrderStatus.CANCELLED):
        return current  # final: returns and late cancellations do not reopen it
    active = {s: n for s, n in unit_counts.items() if s != OrderItemStatus.CANCELLED and n}
    if any(unit_counts.values()) and not active:
        return OrderStatus.CANCELLED
    if current == OrderStatus.PENDING_VERIFICATION:
        return current
    if active and all(s in ITEM_DISPATCHED_OR_LATER for s in active):
        return OrderStatus.COMPLETE
    past_allocation = set(active) - {
        OrderItemStatus.CREATED,
        OrderItemStatus.FULFILLABLE,
        OrderItemStatus.UNFULFILLABLE,
        OrderItemStatus.LOCATION_NOT_SERVICEABLE,
    }
    if current == OrderStatus.PROCESSING or past_allocation:
        return OrderStatus.PROCESSING
    return OrderStatus.CREATED


_TRANSITION_TO = {
    OrderStatus.PROCESSING: "start_processing",
    OrderStatus.COMPLETE: "complete",
    OrderStatus.CANCELLED: "cancel",
}


def orders_refresh_status(orders: dict[int, Order], *, actor: Actor, reason: str = "") -> None:
    """Move each (locked) order to the status its units imply. Two queries plus one UPDATE
    per kind of change."""
    if not orders:
        return
    counts: dict[int, Counter] = defaultdict(Counter)
    rows = (
        OrderItem.objects.filter(order_id__in=list(orders))
        .values_list("order_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for order_id, status, n in rows:
        counts[order_id][status] = n
    _refresh_statuses(orders.values(), counts, actor=actor, reason=reason)


def _refresh_statuses(orders, counts: dict[int, Counter], *, actor: Actor, reason: str) -> None:
    todo: dict[str, list[Order]] = defaultdict(list)
    for order in orders:
        target = determine_order_status(order.status, counts[order.pk])
        if target != order.status:
            todo[_TRANSITION_TO[target]].append(order)
    for name, batch in todo.items():
        apply_transitions(batch, name, actor=actor, reason=reason)


def orders_hold(order_ids, *, actor=None, reason: str = "") -> Outcome:
    """Held orders are not picked, invoiced, manifested or dispatched until unheld."""
    return _set_hold(order_ids, True, actor=Actor.of(actor), reason=reason)


def orders_unhold(order_ids, *, actor=None, reason: str = "") -> Outcome:
    outcome = _set_hold(order_ids, False, actor=Actor.of(actor), reason=reason)
    if outcome.done:
        from .allocation import allocate_units

        allocate_units(order_ids=[o.pk for o in outcome.done], actor=Actor.of(actor))
    return outcome


def _set_hold(order_ids, hold: bool, *, actor: Actor, reason: str) -> Outcome:
    outcome = Outcome()
    verb = "hold" if hold else "unhold"
    with transaction.atomic():
        orders = lock_orders(order_ids)
        for order in orders.values():
            if order.status in (OrderStatus.COMPLETE, OrderStatus.CANCELLED):
                outcome.fail(order, f"order is {order.status}: nothing left to {verb}")
            elif order.on_hold == hold:
                outcome.fail(order, "already on hold" if hold else "not on hold")
            else:
                outcome.done.append(order)
        if outcome.done:
            Order.objects.filter(pk__in=[o.pk for o in outcome.done]).update(
                on_hold=hold, updated_at=timezone.now()
            )
            for order in outcome.done:
                order.on_hold = hold
            record_events(outcome.done, transition=verb, actor=actor, reason=reason)
    return outcome


def order_accept(order: Order, *, actor=None) -> Order:
    """Accept a PENDING_VERIFICATION order; its units are then allocated. Refused while a
    unit's channel listing is unmapped (it has no SKU to allocate)."""
    actor = Actor.of(actor)
    with transaction.atomic():
        order = lock_orders([order.pk])[order.pk]
        unmapped = order.items.filter(sku__isnull=True)
        if unmapped.exists():
            listings = sorted(
                {
                    f"{p}/{v}" if v else p
                    for p, v in unmapped.values_list("channel_product_id", "variant_id")
                }
            )
            raise ValidationError(
                f"Order {order.code} waits for its channel listing to be mapped to a SKU "
                f"({', '.join(listings)}): map the listing and the order is accepted."
            )
        apply_transitions([order], "accept", actor=actor)
        if order.verification_reason:
            Order.objects.filter(pk=order.pk).update(verification_reason="")
        from .allocation import allocate_units

        allocate_units(order_ids=[order.pk], actor=actor)
    order.refresh_from_db()
    return order
