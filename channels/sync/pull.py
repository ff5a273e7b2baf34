"""Order pull: new channel orders become our orders, once, with their units, allocated.

The window is the channel's pull window (default the last 15 days) and reaches further back
when our cursor is older (a stopped beat leaves no gap) or staff asked to re-sync from a date.
Every page is created with one `orders_create` call (set-based); an order the channel sent
before is recognised by (channel, channel order id), which the database keeps unique, so a
repeated or concurrent pull creates nothing twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, transaction
from django.utils import timezone

from inventory.models import Sku
from listings.models import ChannelListing
from listings.services import (
    CHANNEL_WAITS,
    Key,
    channel_verified,
    listing_key,
    map_lines,
    release_waiting_orders,
    unmapped_reason,
)
from orders.models import Order, OrderStatus
from orders.services import LineInput, OrderInput, order_accept, orders_create
from uniware.core.actors import Actor

from ..adapters import ChannelError, ChannelOrder, OrdersReply, adapter_for
from ..models import Channel, RunTrigger, SyncErrorKind, SyncKind, SyncRun
from .apply import OrderResult
from .runs import (
    Tally,
    cursor_advance,
    cursor_of,
    cursor_resume_point,
    fail,
    finish,
    lease_release,
    lease_renew,
    lease_take,
    new_run,
    refusal,
    refuse,
    start,
)

log = logging.getLogger(__name__)

TASK = "channels.tasks.pull_orders"
OVERLAP = timedelta(minutes=30)  # orders dated just before the last pull's end, arriving late
CREATABLE = ("CREATED", "PENDING_VERIFICATION")


def pull_orders(
    channel: Channel,
    *,
    run: SyncRun | None = None,
    trigger: str = RunTrigger.SCHEDULE,
    user=None,
) -> SyncRun:
    """Pull the channel's new orders; returns the finished run (also when refused)."""
    run = run or new_run(SyncKind.ORDER_PULL, channel, task=TASK, trigger=trigger, user=user)
    why = refusal(SyncKind.ORDER_PULL, channel)
    if why:
        return refuse(run, why)
    holder = str(run.pk)
    busy = lease_take(channel, SyncKind.ORDER_PULL, holder)
    if busy:
        return refuse(run, f"Another order pull of channel {channel.code} is running: {busy}")
    try:
        return _pull(run, channel, holder)
    except Exception as exc:
        log.exception("order pull run %s of %s failed", run.pk, channel.code)
        return fail(run, f"Order pull stopped by an unexpected error: {exc!r}")
    finally:
        lease_release(channel, SyncKind.ORDER_PULL, holder)


def _pull(run: SyncRun, channel: Channel, holder: str) -> SyncRun:
    adapter = adapter_for(channel)
    cursor = cursor_of(channel, SyncKind.ORDER_PULL)
    now = adapter.listed_until(timezone.now().replace(microsecond=0))
    window_from = pull_window_start(channel, cursor, now, incremental=adapter.incremental)
    run.window_from, run.window_to = window_from, now
    run.save(update_fields=["window_from", "window_to"])
    start(run)
    tally = Tally(run, report_all=run.trigger == RunTrigger.MANUAL)
    actor = Actor.of(f"task:order_pull:{channel.code}")
    stopped = ""
    known = partial(_known, channel)  # the adapter skips these orders' lines
    try:
        pages = adapter.fetch_orders(
            window_from, now, channel.pull_status_list, known, resume=cursor.resume or None
        )
        for page in pages:
            tally.add(create_pulled(channel, page, actor=actor))
            tally.retries = adapter.stats.retries
            tally.flush()
            lease_renew(channel, SyncKind.ORDER_PULL, holder)
            # a native API read part way: the next run goes on from here if this one stops
            cursor_resume_point(cursor, page.complete_up_to, page.resume, run)
    except ChannelError as exc:
        stopped = f"Order pull stopped: {exc}"
    stats = adapter.take_stats()
    tally.retries = stats.retries
    if not stopped:
        cursor_advance(cursor, now, run)
    summary = (
        f"{tally.changed} new order(s) created or accepted, {tally.unchanged} already here, "
        f"{tally.failed} could not be created."
    )
    return finish(tally, summary=summary, stopped=stopped, extra=stats.summary())


def pull_window_start(channel: Channel, cursor, now, *, incremental: bool):
    """Where a pull's window starts: the channel's pull window (the last N days), reaching
    further back when our cursor is older (a stopped beat leaves no gap) or staff asked to
    re-sync from a date. An incremental adapter (a rate-limited native API) asks only from
    its cursor, less the overlap, once it has one."""
    window_from = now - timedelta(days=channel.pull_window_days)
    if cursor.synced_up_to and (incremental or cursor.synced_up_to - OVERLAP < window_from):
        window_from = cursor.synced_up_to - OVERLAP
    if cursor.resync_from and cursor.resync_from < window_from:
        window_from = cursor.resync_from
    return window_from


def order_input(
    channel: Channel, order: ChannelOrder, listings: dict[Key, ChannelListing]
) -> OrderInput:
    """Our order for a channel order: one unit per ordered unit not cancelled already, each
    line mapped to a SKU through its channel listing (`listings.services.map_lines`). A line
    whose listing is unmapped makes the order wait in PENDING_VERIFICATION, naming it.

    Values are taken as the channel sent them, never cut to fit: `orders_create` refuses a
    value too long for its column by name, and the pull records that order and goes on."""
    lines, unmapped = [], []
    for item in order.items:
        if item.open_quantity <= 0:
            continue
        key = listing_key(item.product_id, item.variant_id, item.sku)
        listing = listings.get(key)
        if listing is not None and listing.sku_id is None:
            unmapped.append(listing)
        lines.append(
            LineInput(
                channel_order_item_id=item.order_item_id,
                sku=listing.sku.code if listing and listing.sku_id else item.sku,
                quantity=item.open_quantity,
                selling_price=item.selling_price,
                shipping_charges=item.shipping_charges,
                title=item.title,
                channel_product_id=key[0],
                variant_id=key[1],
                unmapped=listing is not None and listing.sku_id is None,
            )
        )
    spec = _order_spec(channel, order, lines)
    if unmapped:
        spec.pending_verification = True
        spec.verification_reason = unmapped_reason(unmapped, channel)
        if order.order_status == "PENDING_VERIFICATION":
            spec.verification_reason += f"; {CHANNEL_WAITS}"
    return spec


def _order_spec(channel: Channel, order: ChannelOrder, lines: list[LineInput]) -> OrderInput:
    address = order.shipping_address
    return OrderInput(
        channel=channel,
        channel_order_id=order.id,
        lines=lines,
        ship_pincode=address.get("pincode", ""),
        payment_method=order.payment_type,
        order_date=order.order_date,
        dispatch_by=order.dispatch_by,
        third_party_shipping=order.third_party_shipping,
        pending_verification=order.order_status == "PENDING_VERIFICATION",
        currency=order.currency or "INR",
        customer_name=address.get("name", ""),
        customer_email=address.get("email", ""),
        customer_phone=address.get("phone", ""),
        ship_address_line1=address.get("addressLine1", ""),
        ship_address_line2=address.get("addressLine2", ""),
        ship_city=address.get("city", ""),
        ship_state=address.get("state", ""),
        ship_country=(address.get("country", "") or "IN").upper(),
        billing_address=order.billing_address,
        buyer_gstin=str((order.billing_address or {}).get("gstin") or ""),
    )


def _known(channel: Channel, ids: list[str]) -> set[str]:
    return set(existing_orders(channel, ids))


def existing_orders(channel: Channel, ids: list[str]) -> dict[str, tuple[int, str, str]]:
    """{channel order id: (pk, code, status)} of the orders we have already."""
    rows = Order.objects.filter(channel=channel, channel_order_id__in=ids).values_list(
        "channel_order_id", "pk", "code", "status"
    )
    return {coid: (pk, code, status) for coid, pk, code, status in rows}


def create_pulled(channel: Channel, page: OrdersReply, *, actor: Actor) -> list[OrderResult]:
    """Create the new orders of one page (one `orders_create` call) and report every order."""
    results: list[OrderResult] = []
    for label, message in page.problems:
        result = OrderResult(None, "", label)
        result.error(SyncErrorKind.MALFORMED, message)
        results.append(result)
    existing = existing_orders(channel, [o.id for o in page.orders])
    new = [o for o in page.orders if o.id not in existing and o.order_status in CREATABLE]
    listings = map_lines(channel, (i for o in new for i in o.items))
    known_skus = {listing.sku.code for listing in listings.values() if listing.sku_id}
    known_skus |= set(
        Sku.objects.filter(code__in={i.sku for o in new for i in o.items}).values_list(
            "code", flat=True
        )
    )
    todo: list[tuple[OrderInput, OrderResult]] = []
    for order in page.orders:
        if order.id in existing:
            pk, code, status = existing[order.id]
            result = OrderResult(pk, code, order.id)
            results.append(result)
            if status == OrderStatus.PENDING_VERIFICATION and order.order_status == "CREATED":
                _accept(pk, result, actor)
            else:
                result.reasons.append("already here")
            continue
        result = OrderResult(None, "", order.id, data=order.raw)
        results.append(result)
        if order.order_status not in CREATABLE:
            result.reasons.append(f"not created: the channel order is {order.order_status}")
            continue
        spec = order_input(channel, order, listings)
        unknown = sorted({ln.sku for ln in spec.lines if not ln.unmapped} - known_skus)
        if not spec.lines:
            result.reasons.append("not created: every unit is cancelled on the channel")
        elif unknown:
            result.error(SyncErrorKind.MISMATCH, f"unknown SKU {', '.join(unknown)}")
        elif not spec.ship_pincode:
            result.error(SyncErrorKind.MALFORMED, "the shipping address has no pincode")
        else:
            todo.append((spec, result))
    if todo:
        _create(todo, actor)
        release_if_mapped_meanwhile(listings, actor)
    return results


def release_if_mapped_meanwhile(listings: dict[Key, ChannelListing], actor: Actor) -> None:
    """Staff may have mapped a listing between reading it and creating its orders: those
    orders are released now, not left waiting on a mapped listing (one query when none)."""
    unmapped = [listing.pk for listing in listings.values() if listing.sku_id is None]
    if unmapped:
        mapped = ChannelListing.objects.filter(pk__in=unmapped, sku__isnull=False)
        if mapped := list(mapped.select_related("sku")):
            release_waiting_orders(mapped, actor=actor)


def _create(todo: list[tuple[OrderInput, OrderResult]], actor: Actor) -> None:
    try:
        with transaction.atomic():
            created = orders_create([spec for spec, _ in todo], actor=actor)
    except (ValidationError, IntegrityError, DataError):
        # one order is refused (or a concurrent pull made it meanwhile): one by one
        for spec, result in todo:
            try:
                with transaction.atomic():
                    created = orders_create([spec], actor=actor)
            except ValidationError as exc:
                message = "; ".join(exc.messages)
                if "already has this order" in message:  # another pull was first
                    result.reasons.append("already here (created meanwhile)")
                else:
                    result.error(SyncErrorKind.REFUSED, message)
            except (IntegrityError, DataError) as exc:
                channel = spec.channel
                if Order.objects.filter(channel=channel, channel_order_id=spec.channel_order_id):
                    result.reasons.append("already here (created meanwhile)")
                else:
                    log.exception("order pull: creating %s failed", spec.channel_order_id)
                    result.error(SyncErrorKind.ERROR, f"could not create it: {exc}")
            else:
                _created(created[0], spec, result)
        return
    for order, (spec, result) in zip(created, todo, strict=True):
        _created(order, spec, result)


def _created(order: Order, spec: OrderInput, result: OrderResult) -> None:
    result.order_id, result.code = order.pk, order.code
    units = sum(line.quantity for line in spec.lines)
    state = " (pending verification)" if spec.pending_verification else ""
    result.changes.append(f"created with {units} unit{'s' if units != 1 else ''}{state}")


def _accept(order_id: int, result: OrderResult, actor: Actor) -> None:
    if channel_verified(order_id):  # still waits for a listing to be mapped
        result.reasons.append("verified by the channel; waits for its listing to be mapped")
        return
    try:
        with transaction.atomic():
            order_accept(Order.objects.get(pk=order_id), actor=actor)
    except Exception as exc:  # noqa: BLE001 (reported on the order, the pull goes on)
        result.error(SyncErrorKind.REFUSED, f"could not accept it: {exc}")
    else:
        result.changes.append("accepted (the channel verified it)")
