"""The reconciliation table, row by row, and the planning of lines and orders (no database).

`EXPECTED` is written out here on purpose, independently of `channels.reconcile.TABLE`: a change
of the table must be a deliberate change of this test too.
"""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from channels.adapters import ITEM_STATUSES, ChannelOrder, ChannelOrderItem
from channels.reconcile import TABLE, Action, Stage, UnitState, plan_line, plan_order, stage_of

A, St = Action, Stage
D, DL, C, ER, RP, X, N = (
    (A.DISPATCH,),
    (A.DELIVER,),
    (A.CANCEL,),
    (A.EXPECT_RETURN,),
    (A.REVERSE_PICKUP,),
    (A.CONFLICT,),
    (A.NONE,),
)
STAGES = [
    St.NEW,
    St.UNFULFILLABLE,
    St.ALLOCATED,
    St.IN_PROCESS,
    St.DISPATCHED,
    St.RETURNING,
    St.RETURNED,
    St.DELIVERED,
    St.PICKUP_REQUESTED,
    St.CANCELLED,
    St.CLOSED,
]
# channel status: steps per stage, in the order of STAGES
EXPECTED = {
    #                  NEW  UNFUL ALLOC PROC DISP RETNG RETD DELIV PICKUP CANC CLOSED
    "CREATED": [N, N, N, N, N, N, N, N, N, N, N],
    "DISPATCHED": [D, D, D, D, N, N, N, N, N, X, N],
    "DELIVERED": [D + DL, D + DL, D + DL, D + DL, DL, X, X, N, N, X, N],
    "CANCELLED": [C, C, C, C, C, N, N, X, X, N, X],
    "COURIER_RETURN": [X, X, X, X, ER, N, N, X, X, X, N],
    "RETURN_REQUESTED": [X, X, X, X, DL + RP, X, X, RP, N, X, N],
}


def test_the_table_covers_every_channel_status_and_stage():
    assert set(TABLE) == set(ITEM_STATUSES) == set(EXPECTED)
    for status in ITEM_STATUSES:
        assert set(TABLE[status]) == set(Stage), status


@pytest.mark.parametrize(
    "channel_status,stage",
    list(itertools.product(EXPECTED, STAGES)),
    ids=lambda v: str(v),
)
def test_row(channel_status, stage):
    rule = TABLE[channel_status][stage]
    expected = EXPECTED[channel_status][STAGES.index(stage)]
    assert rule.steps == expected
    if expected == X:
        assert channel_status in rule.note and rule.is_conflict and not rule.changes
    elif expected == N:
        assert rule.note and not rule.changes
    else:
        assert rule.changes and not rule.note


@pytest.mark.parametrize(
    "unit,shipment,pickup,stage",
    [
        ("CREATED", "", False, St.NEW),
        ("UNFULFILLABLE", "", False, St.UNFULFILLABLE),
        ("FULFILLABLE", "CREATED", False, St.ALLOCATED),
        ("LOCATION_NOT_SERVICEABLE", "LOCATION_NOT_SERVICEABLE", False, St.ALLOCATED),
        ("PICKING_FOR_STAGING", "PICKING", False, St.IN_PROCESS),
        ("PICKING_FOR_INVOICING", "PACKED", False, St.IN_PROCESS),
        ("MANIFESTED", "MANIFESTED", False, St.IN_PROCESS),
        ("DISPATCHED", "DISPATCHED", False, St.DISPATCHED),
        ("DISPATCHED", "SHIPPED", False, St.DISPATCHED),
        ("DISPATCHED", "RETURN_EXPECTED", False, St.RETURNING),
        ("DISPATCHED", "RETURN_ACKNOWLEDGED", False, St.RETURNING),
        ("DISPATCHED", "RETURNED", False, St.RETURNED),
        ("DELIVERED", "DELIVERED", False, St.DELIVERED),
        ("DELIVERED", "DELIVERED", True, St.PICKUP_REQUESTED),
        ("DISPATCHED", "DISPATCHED", True, St.PICKUP_REQUESTED),
        ("DISPATCHED", "RETURN_EXPECTED", True, St.RETURNING),
        ("CANCELLED", "", False, St.CANCELLED),
        ("REPLACED", "DELIVERED", False, St.CLOSED),
        ("RESHIPPED", "RETURNED", False, St.CLOSED),
    ],
)
def test_stage_of_our_unit(unit, shipment, pickup, stage):
    assert stage_of(unit, shipment, pickup) == stage


def test_an_unknown_unit_status_is_an_error_naming_it():
    with pytest.raises(ValueError, match="'LOST'"):
        stage_of("LOST")


# --- lines and orders ----------------------------------------------------------------------


def unit(pk: int, status: str = "FULFILLABLE", shipment: str = "CREATED", line: str = "L1"):
    return UnitState(pk, f"{line}-{pk}", line, status, shipment_id=1, shipment_status=shipment)


def item(status: str, quantity: int = 2, cancelled: int | None = None, line: str = "L1"):
    if cancelled is None:
        cancelled = quantity if status == "CANCELLED" else 0
    return ChannelOrderItem(line, "SKU", quantity, status, cancelled, selling_price=Decimal(1))


def order(*items: ChannelOrderItem, status: str = "CREATED") -> ChannelOrder:
    return ChannelOrder("O1", status, None, "PREPAID", False, tuple(items))


def statuses(plans) -> list[tuple[int, str, tuple]]:
    return [(p.unit.id, p.channel_status, p.rule.steps) for p in plans]


def test_a_line_status_applies_to_every_unit_of_the_line():
    plans = plan_line(item("DISPATCHED"), [unit(1), unit(2)])
    assert statuses(plans) == [(1, "DISPATCHED", D), (2, "DISPATCHED", D)]


def test_a_partial_cancellation_takes_the_least_advanced_unit():
    units = [unit(1, "PICKING_FOR_INVOICING", "PICKING"), unit(2, "FULFILLABLE")]
    plans = plan_line(item("DISPATCHED", quantity=2, cancelled=1), units)
    assert statuses(plans) == [(1, "DISPATCHED", D), (2, "CANCELLED", C)]


def test_cancelled_with_a_quantity_leaves_the_other_units_open():
    plans = plan_line(item("CANCELLED", quantity=3, cancelled=1), [unit(1), unit(2), unit(3)])
    assert statuses(plans) == [(1, "CANCELLED", C), (2, "CREATED", N), (3, "CREATED", N)]


def test_a_unit_already_cancelled_here_counts_for_the_channel_cancellation():
    units = [unit(1), unit(2, "CANCELLED", "")]
    plans = plan_line(item("DISPATCHED", quantity=2, cancelled=1), units)
    assert statuses(plans) == [(1, "DISPATCHED", D), (2, "CANCELLED", N)]


def test_units_the_pull_never_created_count_as_the_cancelled_ones():
    # the line had 3 units, 1 was cancelled before the pull: we have 2
    plans = plan_line(item("DISPATCHED", quantity=3, cancelled=1), [unit(1), unit(2)])
    assert statuses(plans) == [(1, "DISPATCHED", D), (2, "DISPATCHED", D)]
    plans = plan_line(item("DISPATCHED", quantity=3, cancelled=2), [unit(1), unit(2)])
    assert [p.channel_status for p in plans] == ["CANCELLED", "DISPATCHED"]


def test_plan_order_accepts_an_order_the_channel_verified():
    new = [UnitState(1, "L1-0", "L1", "CREATED")]
    plan = plan_order(order(item("CREATED", 1)), "PENDING_VERIFICATION", new)
    assert plan.accept and plan.changes_anything and not plan.work
    assert not plan_order(
        order(item("CREATED", 1), status="PENDING_VERIFICATION"), "PENDING_VERIFICATION", new
    ).accept
    assert not plan_order(order(item("CREATED", 1)), "CREATED", new).accept


def test_plan_order_collects_conflicts_work_and_lines_we_do_not_have():
    units = [unit(1, "CANCELLED", "", line="L1"), unit(2, line="L2")]
    plan = plan_order(
        order(
            item("DISPATCHED", 1, line="L1"),
            item("DISPATCHED", 1, line="L2"),
            item("CREATED", 1, line="L9"),
        ),
        "PROCESSING",
        units,
    )
    assert [p.unit.id for p in plan.conflicts] == [1]
    assert [u.id for u in plan.units_for(A.DISPATCH)] == [2]
    assert plan.steps == {A.DISPATCH}
    assert plan.notes == ["channel line L9 (SKU × 1, CREATED) is not in this order"]


def test_plan_order_in_sync_changes_nothing():
    plan = plan_order(order(item("DISPATCHED")), "COMPLETE", [unit(1, "DISPATCHED", "DISPATCHED")])
    assert not plan.changes_anything and not plan.conflicts
