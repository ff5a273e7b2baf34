"""Reshipment and replacement: a new order linked to the original (`Order.kind`,
`Order.source_order`, `OrderItem.source_item`) with the same lines, prices and address,
allocated after the commit.

- `units_reship`: courier-returned units, with one of seed 001's three options;
- `reship_waiting_units`: the courier return of units that waited for it was received;
- `units_replace`: dispatched or delivered units the customer sends back with a pickup.
"""

from __future__ import annotations

from collections import defaultdict

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from uniware.core.actors import Actor
from uniware.core.audit import record_events
from uniware.core.db import bulk_set
from uniware.core.fsm import IllegalTransition, apply_transitions, check_transition
from uniware.core.models import SequenceName
from uniware.core.results import Outcome

from ...locks import lock_items, lock_orders, lock_shipments
from ...models import (
    Order,
    OrderItem,
    OrderItemStatus,
    OrderKind,
    ReshipOption,
    Shipment,
    ShipmentStatus,
)
from ..allocation import allocate_after_commit
from ..invoicing import issue_credit_notes
from ..orders import LineInput, OrderInput, orders_create
from .common import (
    IN_PACKAGE,
    RETURN_PATH,
    clean_reason,
    missing_sequences,
    unit_label,
)

# --- The follow-up order ----------------------------------------------------------------------


def create_follow_up_orders(units: list[OrderItem], *, kind: str, actor: Actor) -> list[Order]:
    """One new order per original order for these units (same lines, prices, address),
    coded `<original>-RS<n>` (reshipment) or `<original>-R<n>` (replacement) and linked
    both ways. Not allocated here: callers use `allocate_after_commit`."""
    if not units:
        return []
    sources = Order.objects.in_bulk({u.order_id for u in units})
    channel_codes = dict(
        Order.objects.filter(pk__in=list(sources)).values_list("pk", "channel__code")
    )
    sku_codes = dict(
        OrderItem.objects.filter(pk__in=[u.pk for u in units]).values_list("pk", "sku__code")
    )
    taken = dict(
        Order.objects.filter(source_order_id__in=list(sources), kind=kind)
        .values_list("source_order_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    suffix = "RS" if kind == OrderKind.RESHIPMENT else "R"
    inputs, plan = [], []
    for order_id, lines in _units_by_order_and_line(units).items():
        source = sources[order_id]
        code = f"{source.channel_order_id}-{suffix}{taken.get(order_id, 0) + 1}"
        inputs.append(_follow_up_input(source, channel_codes[order_id], code, lines, sku_codes))
        plan.append((source, lines))
    new_orders = orders_create(inputs, actor=actor, allocate=False)
    for order, (source, _) in zip(new_orders, plan, strict=True):
        order.source_order, order.kind = source, kind
    bulk_set(Order, new_orders, ["source_order", "kind"])
    _link_new_units(new_orders, [lines for _, lines in plan])
    return new_orders


def _units_by_order_and_line(units) -> dict[int, dict[str, list[OrderItem]]]:
    """{order id: {channel line id: units}}, in order, line and unit code order."""
    grouped: dict[int, dict[str, list[OrderItem]]] = defaultdict(lambda: defaultdict(list))
    for unit in sorted(units, key=lambda u: (u.order_id, u.channel_order_item_id, u.code)):
        grouped[unit.order_id][unit.channel_order_item_id].append(unit)
    return grouped


def _follow_up_input(
    source: Order, channel: str, code: str, lines: dict[str, list[OrderItem]], sku_codes
) -> OrderInput:
    """The new order: the source's customer and address, a line per source line."""
    return OrderInput(
        channel=channel,
        channel_order_id=code,
        lines=[
            LineInput(
                channel_order_item_id=line_id,
                sku=sku_codes[group[0].pk],
                quantity=len(group),
                selling_price=group[0].selling_price,
                shipping_charges=group[0].shipping_charges,
                title=group[0].title,
                channel_product_id=group[0].channel_product_id,
                variant_id=group[0].variant_id,
            )
            for line_id, group in lines.items()
        ],
        ship_pincode=source.ship_pincode,
        payment_method=source.payment_method,
        third_party_shipping=source.third_party_shipping,
        priority=source.priority,
        currency=source.currency,
        customer_name=source.customer_name,
        customer_email=source.customer_email,
        customer_phone=source.customer_phone,
        ship_address_line1=source.ship_address_line1,
        ship_address_line2=source.ship_address_line2,
        ship_city=source.ship_city,
        ship_state=source.ship_state,
        ship_country=source.ship_country,
        billing_address=source.billing_address,
    )


def _link_new_units(new_orders: list[Order], lines_of: list[dict[str, list[OrderItem]]]) -> None:
    """Each new unit's `source_item` is the unit it replaces (line by line, in order)."""
    new_units: dict[tuple[int, str], list[OrderItem]] = defaultdict(list)
    for unit in OrderItem.objects.filter(order__in=new_orders).order_by("pk"):
        new_units[(unit.order_id, unit.channel_order_item_id)].append(unit)
    linked = []
    for order, lines in zip(new_orders, lines_of, strict=True):
        for line_id, group in lines.items():
            for new, old in zip(new_units[(order.pk, line_id)], group, strict=True):
                new.source_item_id = old.pk
                linked.append(new)
    bulk_set(OrderItem, linked, ["source_item"])


def reship_waiting_units(shipments, *, actor: Actor) -> list[Order]:
    """Reship the units of these (locked, now returned) shipments that wait for their return
    ("wait for return & reship"). Returns the reshipment orders (allocate after commit)."""
    if not shipments:
        return []
    units = lock_items(
        shipment_id__in=[s.pk for s in shipments],
        status=OrderItemStatus.DISPATCHED,
        reship_option=ReshipOption.WAIT_FOR_RETURN,
    )
    apply_transitions(units, "reship", actor=actor, reason="return received: reshipped")
    return create_follow_up_orders(units, kind=OrderKind.RESHIPMENT, actor=actor)


# --- Reship -------------------------------------------------------------------------------------


def units_reship(unit_ids, *, option: str, actor=None, reason: str = "") -> Outcome:
    """Reship courier-returned units (DISPATCHED, shipment RETURN_EXPECTED /
    RETURN_ACKNOWLEDGED / RETURNED) with one of seed 001's options:

    - WAIT_FOR_RETURN: reshipped when the return is received (now, if it already is);
    - RESHIP_EXPECT_RETURN: reshipped now; the return goes on as usual;
    - RESHIP_NO_RETURN: reshipped now; the return is closed without goods (shipment
      RETURNED, no stock, sale return invoice). The package comes back whole or not at all,
      so all its dispatched units must be named; refused once it has been received.

    A reshipped unit is RESHIPPED and a reshipment order (`<order>-RS<n>`) is made for it,
    allocated after the commit. Units cancelled after dispatch are not reshipped."""
    actor = Actor.of(actor)
    if option not in ReshipOption.values:
        raise ValidationError(
            {"option": f"Reship option {option!r} is not one of {', '.join(ReshipOption.values)}"}
        )
    reason = clean_reason(reason, required=False) or ReshipOption(option).label
    outcome = Outcome()
    with transaction.atomic():
        plan = _ReshipPlan.locked(list(unit_ids), option)
        plan.sort(outcome)
        plan.drop_write_offs_without_sequence(outcome)
        now = timezone.now()
        if plan.wait:
            OrderItem.objects.filter(pk__in=[u.pk for u in plan.wait]).update(
                reship_option=ReshipOption.WAIT_FOR_RETURN, updated_at=now
            )
            record_events(plan.wait, transition="request_reship", actor=actor, reason=reason)
        apply_transitions(
            plan.now, "reship", actor=actor, reason=reason, values={"reship_option": option}
        )
        follow_ups = create_follow_up_orders(plan.now, kind=OrderKind.RESHIPMENT, actor=actor)
        invoices = issue_credit_notes(
            {pk: [u for u in plan.package[pk] if u.status in IN_PACKAGE] for pk in plan.write_off}
        )
        apply_transitions(
            list(plan.write_off.values()), "write_off_return", actor=actor, reason=reason, now=now
        )
        allocate_after_commit(order_ids=[o.pk for o in follow_ups], actor=actor)
        outcome.done = [*plan.now, *plan.wait]
        outcome.created = [*follow_ups, *invoices]
    return outcome


class _ReshipPlan:
    """The locked units named for reshipment and what becomes of each: reshipped now,
    waiting for its return, or refused; and the packages written off (RESHIP_NO_RETURN)."""

    def __init__(self, option: str, orders, shipments, units, package, named) -> None:
        self.option, self.orders, self.shipments = option, orders, shipments
        self.units, self.package, self.named = units, package, named
        self.now: list[OrderItem] = []
        self.wait: list[OrderItem] = []
        self.write_off: dict[int, Shipment] = {}

    @classmethod
    def locked(cls, unit_ids: list[int], option: str) -> _ReshipPlan:
        """Lock orders, shipments, then the named units with their packages' other units
        (a write-off needs them all), in pk order."""
        rows = list(
            OrderItem.objects.filter(pk__in=unit_ids).values_list("order_id", "shipment_id")
        )
        orders = lock_orders(o for o, _ in rows)
        shipments = {s.pk: s for s in lock_shipments(s for _, s in rows if s)}
        expected = [pk for pk, s in shipments.items() if s.status == ShipmentStatus.RETURN_EXPECTED]
        locked = list(
            OrderItem.objects.select_for_update(of=("self",))
            .filter(Q(pk__in=unit_ids) | Q(shipment_id__in=expected, status__in=IN_PACKAGE))
            .order_by("pk")
        )
        named = set(unit_ids)
        package: dict[int, list[OrderItem]] = defaultdict(list)
        for unit in locked:
            if unit.shipment_id in expected and unit.status in IN_PACKAGE:
                package[unit.shipment_id].append(unit)
        units = [u for u in locked if u.pk in named]
        return cls(option, orders, shipments, units, package, named)

    def sort(self, outcome: Outcome) -> None:
        """Put each named unit in `now` or `wait`, or refuse it (naming why)."""
        for unit in self.units:
            shipment = self.shipments.get(unit.shipment_id)
            refusal = _reship_refusal(unit, shipment) or self._option_refusal(unit, shipment)
            if refusal:
                outcome.fail(unit_label(unit, self.orders), refusal)
                continue
            status = shipment.status
            if self.option == ReshipOption.WAIT_FOR_RETURN and status != ShipmentStatus.RETURNED:
                self.wait.append(unit)
                continue
            if self.option == ReshipOption.RESHIP_NO_RETURN and (
                status == ShipmentStatus.RETURN_EXPECTED
            ):
                self.write_off.setdefault(shipment.pk, shipment)
            self.now.append(unit)

    def _option_refusal(self, unit: OrderItem, shipment: Shipment) -> str:
        """Why the chosen option cannot apply to this unit ('' if it can)."""
        status = shipment.status
        if self.option == ReshipOption.WAIT_FOR_RETURN and status != ShipmentStatus.RETURNED:
            if unit.reship_option == ReshipOption.WAIT_FOR_RETURN:
                return "it already waits for its return to be reshipped"
        elif self.option == ReshipOption.RESHIP_NO_RETURN:
            if status == ShipmentStatus.RETURN_ACKNOWLEDGED:
                return f"shipment {shipment} was already received back: choose another option"
            if status == ShipmentStatus.RETURN_EXPECTED:
                left = [
                    u
                    for u in self.package[shipment.pk]
                    if u.status == OrderItemStatus.DISPATCHED and u.pk not in self.named
                ]
                if left:
                    return (
                        f"the whole package {shipment} is written off: name its other units "
                        f"too ({', '.join(u.code for u in left)})"
                    )
        return ""

    def drop_write_offs_without_sequence(self, outcome: Outcome) -> None:
        """A write-off issues a sale return invoice: refuse the units of packages whose
        facility has no RETURN_INVOICE sequence."""
        missing = missing_sequences(
            {s.facility_id for s in self.write_off.values()}, [SequenceName.RETURN_INVOICE]
        )
        for shipment in [s for s in self.write_off.values() if s.facility_id in missing]:
            del self.write_off[shipment.pk]
            for unit in [u for u in self.now if u.shipment_id == shipment.pk]:
                self.now.remove(unit)
                outcome.fail(unit_label(unit, self.orders), missing[shipment.facility_id])


def _reship_refusal(unit: OrderItem, shipment: Shipment | None) -> str:
    """Why this unit cannot be reshipped with any option ('' if it can)."""
    if unit.status != OrderItemStatus.DISPATCHED:
        return f"unit is {unit.status}: only dispatched units come back"
    if unit.cancellation_reason:
        return f"it was cancelled after dispatch ({unit.cancellation_reason})"
    if shipment is None or shipment.status not in RETURN_PATH:
        status = shipment.status if shipment else "not shipped"
        return f"its shipment is {status}: mark it as a courier return first"
    return ""


# --- Replace ------------------------------------------------------------------------------------


def units_replace(unit_ids, *, reason: str = "", actor=None) -> Outcome:
    """Replace dispatched or delivered units: they become REPLACED and a replacement order
    (`<order>-R<n>`, same SKU and prices) is made for them, allocated after the commit. The
    customer sends the original back with a reverse pickup."""
    actor = Actor.of(actor)
    reason = clean_reason(reason, required=False) or "replacement"
    outcome = Outcome()
    with transaction.atomic():
        rows = list(
            OrderItem.objects.filter(pk__in=list(unit_ids)).values_list("order_id", "shipment_id")
        )
        orders = lock_orders(o for o, _ in rows)
        shipments = {s.pk: s for s in lock_shipments(s for _, s in rows if s)}
        ok = []
        for unit in lock_items(pk__in=list(unit_ids)):
            refusal = _replace_refusal(unit, shipments.get(unit.shipment_id))
            if refusal:
                outcome.fail(unit_label(unit, orders), refusal)
            else:
                ok.append(unit)
        apply_transitions(ok, "replace", actor=actor, reason=reason)
        follow_ups = create_follow_up_orders(ok, kind=OrderKind.REPLACEMENT, actor=actor)
        allocate_after_commit(order_ids=[o.pk for o in follow_ups], actor=actor)
        outcome.done = ok
        outcome.created = follow_ups
    return outcome


def _replace_refusal(unit: OrderItem, shipment: Shipment | None) -> str:
    """Why this unit cannot be replaced ('' if it can)."""
    if unit.cancellation_reason:
        return f"it was cancelled ({unit.cancellation_reason})"
    if shipment is not None and shipment.status in RETURN_PATH:
        return f"shipment {shipment} is a courier return ({shipment.status}): reship it"
    try:
        check_transition(unit, "replace")
    except IllegalTransition:
        return f"unit is {unit.status}: only dispatched units are replaced"
    return ""
