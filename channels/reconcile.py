"""The reconciliation table: what the back-office does when a channel reports an item status.

Pure functions, no database: `stage_of` puts one of our units in a stage, `TABLE` maps
(channel item status, stage) to a `Rule` (the steps to run, or why nothing is done), and
`plan_order` applies the table to every unit of an order, line by line. `channels.sync.apply`
executes the plans with the order services.

Stages of our unit (from its status and, once dispatched, its shipment's status):

| stage            | our unit                                  | its shipment                 |
|------------------|-------------------------------------------|------------------------------|
| NEW              | CREATED (never allocated)                 | none                         |
| UNFULFILLABLE    | UNFULFILLABLE                             | none                         |
| ALLOCATED        | FULFILLABLE, LOCATION_NOT_SERVICEABLE     | CREATED, NOT_SERVICEABLE     |
| IN_PROCESS       | PICKING_FOR_STAGING/INVOICING, MANIFESTED | PICKING ... MANIFESTED       |
| DISPATCHED       | DISPATCHED                                | DISPATCHED, SHIPPED          |
| RETURNING        | DISPATCHED                                | RETURN_EXPECTED/ACKNOWLEDGED |
| RETURNED         | DISPATCHED                                | RETURNED                     |
| DELIVERED        | DELIVERED, no reverse pickup              | DELIVERED                    |
| PICKUP_REQUESTED | DISPATCHED or DELIVERED, reverse pickup   |                              |
| CANCELLED        | CANCELLED                                 |                              |
| CLOSED           | REPLACED, RESHIPPED                       |                              |

Channel item statuses (channel-api.md): CREATED, CANCELLED, DISPATCHED, DELIVERED,
RETURN_REQUESTED (customer return), COURIER_RETURN (return to origin).

Principles: the channel moving ahead of us is applied (seed 000); the channel being behind us
changes nothing and is no error (our pushes will tell it); a channel status that cannot follow
ours (DISPATCHED for a unit we cancelled, COURIER_RETURN for a unit never dispatched ...) is a
conflict: nothing changes and the order gets a sync error. Applying a plan twice is a no-op:
once applied, every row the second run meets is a NONE row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from .adapters import ChannelOrder, ChannelOrderItem


class Stage(StrEnum):
    NEW = "NEW"
    UNFULFILLABLE = "UNFULFILLABLE"
    ALLOCATED = "ALLOCATED"
    IN_PROCESS = "IN_PROCESS"
    DISPATCHED = "DISPATCHED"
    RETURNING = "RETURNING"
    RETURNED = "RETURNED"
    DELIVERED = "DELIVERED"
    PICKUP_REQUESTED = "PICKUP_REQUESTED"
    CANCELLED = "CANCELLED"
    CLOSED = "CLOSED"


class Action(StrEnum):
    NONE = "NONE"  # in sync, or we are ahead of the channel
    DISPATCH = "DISPATCH"  # allocate if never allocated, ship, invoice, dispatch, consume stock
    DELIVER = "DELIVER"  # shipment and units DELIVERED
    CANCEL = "CANCEL"  # cancel with the handling its stage needs (after dispatch: courier return)
    EXPECT_RETURN = "EXPECT_RETURN"  # courier return: shipment RETURN_EXPECTED
    REVERSE_PICKUP = "REVERSE_PICKUP"  # customer return: a reverse pickup is created
    CONFLICT = "CONFLICT"  # cannot follow the channel: nothing changes, a sync error


@dataclass(frozen=True)
class Rule:
    steps: tuple[Action, ...]
    note: str = ""

    @property
    def is_conflict(self) -> bool:
        return self.steps == (Action.CONFLICT,)

    @property
    def changes(self) -> bool:
        return bool(self.steps) and self.steps[0] not in (Action.NONE, Action.CONFLICT)


def _do(*steps: Action) -> Rule:
    return Rule(tuple(steps))


def _none(note: str) -> Rule:
    return Rule((Action.NONE,), note)


def _conflict(note: str) -> Rule:
    return Rule((Action.CONFLICT,), note)


IN_SYNC = _none("in sync")
AHEAD = _none("already further along here")

A, St = Action, Stage
PRE_DISPATCH = (St.NEW, St.UNFULFILLABLE, St.ALLOCATED, St.IN_PROCESS)

TABLE: dict[str, dict[Stage, Rule]] = {
    "CREATED": {
        **{stage: IN_SYNC for stage in PRE_DISPATCH},
        St.DISPATCHED: AHEAD,
        St.RETURNING: AHEAD,
        St.RETURNED: AHEAD,
        St.DELIVERED: AHEAD,
        St.PICKUP_REQUESTED: AHEAD,
        St.CANCELLED: _none("cancelled here; the channel has not caught up yet"),
        St.CLOSED: AHEAD,
    },
    "DISPATCHED": {
        **{stage: _do(A.DISPATCH) for stage in PRE_DISPATCH},
        St.DISPATCHED: IN_SYNC,
        St.RETURNING: AHEAD,
        St.RETURNED: AHEAD,
        St.DELIVERED: AHEAD,
        St.PICKUP_REQUESTED: AHEAD,
        St.CANCELLED: _conflict("the channel says DISPATCHED but the unit is CANCELLED here"),
        St.CLOSED: AHEAD,
    },
    "DELIVERED": {
        **{stage: _do(A.DISPATCH, A.DELIVER) for stage in PRE_DISPATCH},
        St.DISPATCHED: _do(A.DELIVER),
        St.RETURNING: _conflict(
            "the channel says DELIVERED but its shipment is coming back (return expected) here"
        ),
        St.RETURNED: _conflict("the channel says DELIVERED but its shipment was RETURNED here"),
        St.DELIVERED: IN_SYNC,
        St.PICKUP_REQUESTED: AHEAD,
        St.CANCELLED: _conflict("the channel says DELIVERED but the unit is CANCELLED here"),
        St.CLOSED: AHEAD,
    },
    "CANCELLED": {
        **{stage: _do(A.CANCEL) for stage in PRE_DISPATCH},
        # cancelled after dispatch: the cancellation makes it a courier return
        St.DISPATCHED: _do(A.CANCEL),
        St.RETURNING: IN_SYNC,
        St.RETURNED: IN_SYNC,
        St.DELIVERED: _conflict("the channel says CANCELLED but the unit was DELIVERED here"),
        St.PICKUP_REQUESTED: _conflict(
            "the channel says CANCELLED but the unit was DELIVERED and a return was requested"
        ),
        St.CANCELLED: IN_SYNC,
        St.CLOSED: _conflict("the channel says CANCELLED but the unit was replaced or reshipped"),
    },
    "COURIER_RETURN": {
        **{
            stage: _conflict("the channel says COURIER_RETURN but the unit was never dispatched")
            for stage in PRE_DISPATCH
        },
        St.DISPATCHED: _do(A.EXPECT_RETURN),
        St.RETURNING: IN_SYNC,
        St.RETURNED: AHEAD,
        St.DELIVERED: _conflict("the channel says COURIER_RETURN but the unit was DELIVERED here"),
        St.PICKUP_REQUESTED: _conflict(
            "the channel says COURIER_RETURN but the unit was DELIVERED here"
        ),
        St.CANCELLED: _conflict("the channel says COURIER_RETURN but the unit is CANCELLED here"),
        St.CLOSED: AHEAD,
    },
    "RETURN_REQUESTED": {
        **{
            stage: _conflict("the channel says RETURN_REQUESTED but the unit was never dispatched")
            for stage in PRE_DISPATCH
        },
        St.DISPATCHED: _do(A.DELIVER, A.REVERSE_PICKUP),  # the customer has it
        St.RETURNING: _conflict(
            "the channel says RETURN_REQUESTED but the courier is returning the shipment here"
        ),
        St.RETURNED: _conflict(
            "the channel says RETURN_REQUESTED but the shipment was RETURNED here"
        ),
        St.DELIVERED: _do(A.REVERSE_PICKUP),
        St.PICKUP_REQUESTED: IN_SYNC,
        St.CANCELLED: _conflict("the channel says RETURN_REQUESTED but the unit is CANCELLED here"),
        St.CLOSED: AHEAD,
    },
}

UNIT_STAGE = {
    "CREATED": St.NEW,
    "UNFULFILLABLE": St.UNFULFILLABLE,
    "FULFILLABLE": St.ALLOCATED,
    "LOCATION_NOT_SERVICEABLE": St.ALLOCATED,
    "PICKING_FOR_STAGING": St.IN_PROCESS,
    "PICKING_FOR_INVOICING": St.IN_PROCESS,
    "MANIFESTED": St.IN_PROCESS,
    "CANCELLED": St.CANCELLED,
    "REPLACED": St.CLOSED,
    "RESHIPPED": St.CLOSED,
}
DISPATCHED_STAGE = {
    "RETURN_EXPECTED": St.RETURNING,
    "RETURN_ACKNOWLEDGED": St.RETURNING,
    "RETURNED": St.RETURNED,
}
# Least advanced first: the units a partial cancellation on the channel takes.
CANCEL_PREFERENCE = [
    St.CANCELLED,
    St.NEW,
    St.UNFULFILLABLE,
    St.ALLOCATED,
    St.IN_PROCESS,
    St.DISPATCHED,
    St.RETURNING,
    St.RETURNED,
    St.DELIVERED,
    St.PICKUP_REQUESTED,
    St.CLOSED,
]


def stage_of(
    unit_status: str, shipment_status: str = "", has_reverse_pickup: bool = False
) -> Stage:
    """The stage of one of our units."""
    if unit_status == "DISPATCHED" and shipment_status in DISPATCHED_STAGE:
        return DISPATCHED_STAGE[shipment_status]
    if unit_status in ("DISPATCHED", "DELIVERED") and has_reverse_pickup:
        return St.PICKUP_REQUESTED
    if unit_status == "DISPATCHED":
        return St.DISPATCHED
    if unit_status == "DELIVERED":
        return St.DELIVERED
    try:
        return UNIT_STAGE[unit_status]
    except KeyError:
        raise ValueError(f"unit status {unit_status!r} has no reconciliation stage") from None


def rule_for(channel_status: str, stage: Stage) -> Rule:
    try:
        return TABLE[channel_status][stage]
    except KeyError:
        raise ValueError(
            f"no reconciliation rule for channel status {channel_status!r} and stage {stage}"
        ) from None


# --- planning one order ---------------------------------------------------------------------


@dataclass(frozen=True)
class UnitState:
    """One of our units as the planner needs it."""

    id: int
    code: str
    line_id: str
    status: str
    shipment_id: int | None = None
    shipment_status: str = ""
    shipment_code: str = ""
    has_reverse_pickup: bool = False

    @property
    def stage(self) -> Stage:
        return stage_of(self.status, self.shipment_status, self.has_reverse_pickup)


@dataclass(frozen=True)
class UnitPlan:
    unit: UnitState
    channel_status: str
    rule: Rule


@dataclass
class OrderPlan:
    """What to do with one order: accept it, and per unit the rule that applies."""

    accept: bool = False
    units: list[UnitPlan] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # lines that do not match ours

    @property
    def conflicts(self) -> list[UnitPlan]:
        return [p for p in self.units if p.rule.is_conflict]

    @property
    def work(self) -> list[UnitPlan]:
        return [p for p in self.units if p.rule.changes]

    @property
    def steps(self) -> set[Action]:
        return {step for p in self.work for step in p.rule.steps}

    @property
    def changes_anything(self) -> bool:
        return self.accept or bool(self.work)

    def units_for(self, action: Action) -> list[UnitState]:
        return [p.unit for p in self.work if action in p.rule.steps]


def plan_line(item: ChannelOrderItem, units: Sequence[UnitState]) -> list[UnitPlan]:
    """Apply the channel line's status to our units of that line.

    `cancelledQuantity` of the line's units are cancelled on the channel. Units the pull never
    created (cancelled before it) count among them; of ours, the ones already cancelled and
    then the least advanced take the cancellation.
    """
    never_created = max(0, item.quantity - len(units))
    cancel_count = min(len(units), max(0, item.cancelled_quantity - never_created))
    open_status = "CREATED" if item.status == "CANCELLED" else item.status
    order = sorted(units, key=lambda u: (CANCEL_PREFERENCE.index(u.stage), u.id))
    plans = []
    for n, unit in enumerate(order):
        status = "CANCELLED" if n < cancel_count else open_status
        plans.append(UnitPlan(unit, status, rule_for(status, unit.stage)))
    return sorted(plans, key=lambda p: p.unit.id)


def plan_order(
    channel_order: ChannelOrder, our_status: str, units: Iterable[UnitState]
) -> OrderPlan:
    """The plan for one order: accept a PENDING_VERIFICATION order the channel has verified,
    and the table's rule for every unit of every line the channel reports."""
    plan = OrderPlan()
    plan.accept = our_status == "PENDING_VERIFICATION" and channel_order.order_status not in (
        "PENDING_VERIFICATION",
        "CANCELLED",
    )
    by_line: dict[str, list[UnitState]] = {}
    for unit in units:
        by_line.setdefault(unit.line_id, []).append(unit)
    for item in channel_order.items:
        ours = by_line.get(item.order_item_id)
        if not ours:
            if item.open_quantity:
                plan.notes.append(
                    f"channel line {item.order_item_id} ({item.sku} × {item.quantity}, "
                    f"{item.status}) is not in this order"
                )
            continue
        plan.units += plan_line(item, ours)
    return plan
