"""Applying what a channel reports to a batch of our orders.

For a batch (hundreds of orders) it reads our units in one query, plans every order with the
reconciliation table (`channels.reconcile`) and runs the plans with the order services:

- orders needing one kind of change (the bulk: "these units were dispatched") go to that
  service together, set-based; the services check each order first and leave refused ones
  untouched;
- orders needing several kinds of change (accept, then dispatch; dispatch, then deliver ...)
  run one by one, each in a savepoint: all of its changes or none;
- if a set-based call fails unexpectedly, its orders are retried one by one, so one bad order
  never stops the others.

Every order gets an `OrderResult`: CHANGED (and what), UNCHANGED (and why) or FAILED (and why;
conflicts included), with the sync errors to record.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django_fsm import TransitionNotAllowed

from orders import services as order_services
from orders.models import Order, OrderItem, ReversePickupItem, Shipment
from uniware.core.actors import Actor
from uniware.core.results import Outcome
from uniware.core.services import SequenceNotDefined

from ..adapters import ChannelOrder
from ..models import SyncErrorKind
from ..reconcile import Action, OrderPlan, UnitState, plan_order

log = logging.getLogger(__name__)

CHANGED, UNCHANGED, FAILED = "CHANGED", "UNCHANGED", "FAILED"
STEP_ORDER = [
    Action.DISPATCH,
    Action.DELIVER,
    Action.EXPECT_RETURN,
    Action.CANCEL,
    Action.REVERSE_PICKUP,
]
SAME = "="  # a step's result for an order it found done already
EXPECTED_ERRORS = (ValidationError, TransitionNotAllowed, SequenceNotDefined, ValueError)


@dataclass
class OrderResult:
    order_id: int | None
    code: str
    channel_order_id: str
    changes: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (SyncErrorKind, message)
    data: dict = field(default_factory=dict)  # the channel's order, when we could not create it

    @property
    def outcome(self) -> str:
        if self.errors:
            return FAILED
        return CHANGED if self.changes else UNCHANGED

    @property
    def detail(self) -> str:
        parts = [*self.changes, *[message for _, message in self.errors], *self.reasons]
        return "; ".join(dict.fromkeys(parts))

    def error(self, kind: str, message: str) -> None:
        self.errors.append((kind, message))


def error_kind(message: str) -> str:
    return SyncErrorKind.SEQUENCE if message.startswith("Sequence ") else SyncErrorKind.REFUSED


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# --- the services each action runs ---------------------------------------------------------


@dataclass
class Context:
    """Who acts, for which channel, and what the channel said beyond statuses (per order)."""

    actor: Actor
    channel: str
    tracking: dict[int, tuple[str, str]] = field(default_factory=dict)  # (courier, AWB)
    return_reasons: dict[int, str] = field(default_factory=dict)

    def reason(self, action: Action) -> str:
        return {
            Action.DISPATCH: f"{self.channel} says DISPATCHED (status sync)",
            Action.EXPECT_RETURN: f"{self.channel} says COURIER_RETURN (status sync)",
            Action.CANCEL: f"Cancelled on {self.channel} (status sync)",
        }.get(action, f"{self.channel} status sync")


@dataclass
class Step:
    """One action over the units of several orders: returns a failure reason per order
    (None when done, `SAME` when it found the order done already)."""

    action: Action
    ctx: Context

    def run(self, units: dict[int, list[UnitState]]) -> dict[int, str | None]:
        return getattr(self, f"_{self.action.lower()}")(units)

    @property
    def actor(self) -> Actor:
        return self.ctx.actor

    @property
    def reason(self) -> str:
        return self.ctx.reason(self.action)

    @staticmethod
    def _by_label(outcome: Outcome, labels: dict[str, int], orders: Iterable[int]) -> dict:
        result: dict[int, str | None] = dict.fromkeys(orders)
        for label, why in outcome.failed:
            order_id = labels.get(label)
            if order_id is None:
                log.warning("sync: a service failed %s (%s), matching no order", label, why)
                continue
            result[order_id] = result[order_id] or f"{label}: {why}"
        return result

    @staticmethod
    def _shipments(units: dict[int, list[UnitState]]) -> dict[int, int]:
        """The current shipment of each unit's order (after earlier steps moved units)."""
        ids = [u.id for members in units.values() for u in members]
        return dict(
            OrderItem.objects.filter(pk__in=ids, shipment__isnull=False).values_list(
                "shipment_id", "order_id"
            )
        )

    def _dispatch(self, units):
        unit_ids = [u.id for members in units.values() for u in members]
        outcome = order_services.units_dispatch_from_channel(
            unit_ids,
            actor=self.actor,
            reason=self.reason,
            tracking={oid: t for oid, t in self.ctx.tracking.items() if oid in units},
        )
        result: dict[int, str | None] = dict.fromkeys(units)
        codes = dict(Order.objects.filter(pk__in=list(units)).values_list("code", "pk"))
        for label, why in outcome.failed:
            if label in codes:
                result[codes[label]] = why
        for order in outcome.unchanged:  # a concurrent sync got there first
            result[order.pk] = SAME
        return result

    def _deliver(self, units):
        shipments = self._shipments(units)
        outcome = order_services.shipments_deliver(list(shipments), actor=self.actor)
        return self._by_label(outcome, self._codes(shipments), units)

    def _expect_return(self, units):
        shipments = self._shipments(units)
        outcome = order_services.shipments_expect_return(
            list(shipments), actor=self.actor, reason=self.reason
        )
        return self._by_label(outcome, self._codes(shipments), units)

    @staticmethod
    def _codes(shipments: dict[int, int]) -> dict[str, int]:
        rows = Shipment.objects.filter(pk__in=list(shipments)).values_list("pk", "code")
        return {code: shipments[pk] for pk, code in rows}

    def _cancel(self, units):
        unit_ids = [u.id for members in units.values() for u in members]
        outcome = order_services.units_cancel(
            unit_ids, reason=self.reason, actor=self.actor, by_channel=True
        )
        codes = dict(Order.objects.filter(pk__in=list(units)).values_list("pk", "code"))
        labels = {  # the service names a unit `<order code>/<unit code>`
            f"{codes[oid]}/{u.code}": oid for oid, members in units.items() for u in members
        }
        return self._by_label(outcome, labels, units)

    def _reverse_pickup(self, units):
        result: dict[int, str | None] = {}
        for order_id, members in units.items():
            reason = self.ctx.return_reasons.get(order_id) or ""
            reason = f"Return requested on {self.ctx.channel}" + (f": {reason}" if reason else "")
            try:
                with transaction.atomic():
                    order_services.reverse_pickup_create(
                        [u.id for u in members], reason=reason[:255], actor=self.actor
                    )
            except ValidationError as exc:
                result[order_id] = "; ".join(exc.messages)
            else:
                result[order_id] = None
        return result


CHANGE_WORDS = {
    Action.DISPATCH: "dispatched",
    Action.DELIVER: "delivered",
    Action.EXPECT_RETURN: "courier return expected for",
    Action.CANCEL: "cancelled",
    Action.REVERSE_PICKUP: "reverse pickup created for",
}


def _change_text(action: Action, units: list[UnitState]) -> str:
    return f"{CHANGE_WORDS[action]} {_plural(len(units), 'unit')}"


# --- one batch --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderRow:
    id: int
    code: str
    channel_order_id: str
    status: str


def load_units(order_ids: list[int]) -> dict[int, list[UnitState]]:
    """Our units of these orders with their shipment's status (one query, plus one for
    reverse pickups when that model exists)."""
    rows = (
        OrderItem.objects.filter(order_id__in=order_ids)
        .order_by("pk")
        .values_list(
            "pk",
            "order_id",
            "code",
            "channel_order_item_id",
            "status",
            "shipment_id",
            "shipment__status",
            "shipment__code",
        )
    )
    rows = list(rows)
    picked = _units_with_reverse_pickup([r[0] for r in rows if r[4] in ("DISPATCHED", "DELIVERED")])
    units: dict[int, list[UnitState]] = defaultdict(list)
    for pk, order_id, code, line, status, shipment_id, shipment_status, shipment_code in rows:
        units[order_id].append(
            UnitState(
                id=pk,
                code=code,
                line_id=line,
                status=status,
                shipment_id=shipment_id,
                shipment_status=shipment_status or "",
                shipment_code=shipment_code or "",
                has_reverse_pickup=pk in picked,
            )
        )
    return units


def _units_with_reverse_pickup(unit_ids: list[int]) -> set[int]:
    """Units a reverse pickup was ever created for (whatever became of it: a pickup is
    never created twice by sync)."""
    if not unit_ids:
        return set()
    return set(
        ReversePickupItem.objects.filter(order_item_id__in=unit_ids).values_list(
            "order_item_id", flat=True
        )
    )


def apply_channel_orders(
    rows: list[OrderRow],
    channel_orders: dict[str, ChannelOrder],
    *,
    actor: Actor,
    channel: str,
) -> list[OrderResult]:
    """Apply the channel's view (`channel_orders` by channel order id) to these orders."""
    results = {r.id: OrderResult(r.id, r.code, r.channel_order_id) for r in rows}
    units = load_units([r.id for r in rows])
    plans: dict[int, OrderPlan] = {}
    ctx = Context(actor, channel)
    for row in rows:
        result = results[row.id]
        channel_order = channel_orders.get(row.channel_order_id)
        if channel_order is None:
            result.reasons.append("the channel does not know this order")
            continue
        plan = plan_order(channel_order, row.status, units.get(row.id, []))
        plans[row.id] = plan
        for conflict in plan.conflicts:
            result.error(SyncErrorKind.CONFLICT, f"unit {conflict.unit.code}: {conflict.rule.note}")
        for note in plan.notes:
            result.reasons.append(note)
        if not plan.changes_anything and not plan.conflicts:  # a conflict is not "in sync"
            notes = {p.rule.note for p in plan.units if not p.rule.is_conflict}
            result.reasons.append(
                "already further along here than on the channel"
                if "already further along here" in notes
                else "in sync with the channel"
            )
        for item in channel_order.items:
            if item.tracking_number and row.id not in ctx.tracking:
                ctx.tracking[row.id] = (item.courier_name, item.tracking_number)
            if item.return_reason and row.id not in ctx.return_reasons:
                ctx.return_reasons[row.id] = item.return_reason

    simple: dict[Action, dict[int, list[UnitState]]] = defaultdict(dict)
    complex_ids = []
    for order_id, plan in plans.items():
        if not plan.changes_anything:
            continue
        steps = plan.steps
        multi = any(len(p.rule.steps) > 1 for p in plan.work)
        if plan.accept or len(steps) > 1 or multi:
            complex_ids.append(order_id)
        else:
            (action,) = steps
            simple[action][order_id] = plan.units_for(action)

    for action in STEP_ORDER:
        group = simple.get(action)
        if group:
            _run_group(Step(action, ctx), group, results)
    by_id = {r.id: r for r in rows}
    for order_id in complex_ids:
        _run_one(by_id[order_id], plans[order_id], channel_orders, results, ctx)
    return [results[r.id] for r in rows]


def _record(results: dict[int, OrderResult], action: Action, group, outcome: dict) -> None:
    for order_id, why in outcome.items():
        if why == SAME:
            results[order_id].reasons.append(f"already {CHANGE_WORDS[action]}")
        elif why:
            results[order_id].error(error_kind(why), why)
        else:
            results[order_id].changes.append(_change_text(action, group[order_id]))


def _run_group(step: Step, group: dict[int, list[UnitState]], results) -> None:
    """One action over many orders, set-based; one by one if the set-based call fails."""
    try:
        with transaction.atomic():
            outcome = step.run(group)
    except Exception as exc:  # noqa: BLE001 (isolate the order that caused it)
        if not isinstance(exc, EXPECTED_ERRORS):
            log.exception(
                "sync: %s for %d orders failed; retrying one by one", step.action, len(group)
            )
        for order_id, members in group.items():
            try:
                with transaction.atomic():
                    outcome = step.run({order_id: members})
            except Exception as one:  # noqa: BLE001
                if not isinstance(one, EXPECTED_ERRORS):
                    log.exception("sync: %s failed for order %s", step.action, order_id)
                kind = error_kind(str(one)) if isinstance(one, EXPECTED_ERRORS) else "ERROR"
                results[order_id].error(kind, _message(one))
            else:
                _record(results, step.action, {order_id: members}, outcome)
        return
    _record(results, step.action, group, outcome)


class _Undo(Exception):
    """Roll back one order's savepoint: one of its steps was refused."""


def _message(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    return str(exc) or type(exc).__name__


def _run_one(row: OrderRow, plan: OrderPlan, channel_orders, results, ctx: Context) -> None:
    """An order needing several kinds of change: all of them in one savepoint, or none."""
    order_id = row.id
    result = results[order_id]
    changes: list[str] = []
    try:
        with transaction.atomic():
            if plan.accept:
                order = Order.objects.get(pk=order_id)
                order_services.order_accept(order, actor=ctx.actor)
                changes.append("accepted (the channel verified it)")
                status = Order.objects.values_list("status", flat=True).get(pk=order_id)
                plan = plan_order(
                    channel_orders[row.channel_order_id], status, load_units([order_id])[order_id]
                )
            for action in STEP_ORDER:
                members = plan.units_for(action)
                if not members:
                    continue
                why = Step(action, ctx).run({order_id: members}).get(order_id)
                if why and why != SAME:
                    raise _Undo(why)
                if not why:
                    changes.append(_change_text(action, members))
    except _Undo as exc:
        result.error(error_kind(str(exc)), str(exc))
    except Exception as exc:  # noqa: BLE001
        if not isinstance(exc, EXPECTED_ERRORS):
            log.exception("sync: order %s failed", result.code)
        kind = error_kind(str(exc)) if isinstance(exc, EXPECTED_ERRORS) else "ERROR"
        result.error(kind, _message(exc))
    else:
        result.changes += changes
