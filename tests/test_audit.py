"""Audit rows written in bulk: COPY on PostgreSQL for large batches, bulk_create otherwise."""

import pytest

from orders.models import OrderItem
from uniware.core import audit
from uniware.core.actors import Actor
from uniware.core.fsm import Change
from uniware.core.models import StateChange


@pytest.mark.parametrize("units", [3, audit.COPY_THRESHOLD + 50])
def test_large_and_small_batches_write_identical_rows(world, django_user_model, units):
    order = world.order("FK-AUDIT", quantity=units, sku="TSHIRT")
    user = django_user_model.objects.create(username="lead")
    items = list(OrderItem.objects.filter(order=order))
    before = StateChange.objects.count()

    audit.record_changes(
        [Change(i, "FULFILLABLE", "PICKING_FOR_INVOICING") for i in items],
        transition="pick_for_invoicing",
        actor=Actor.of(user),
        reason="wave 7",
    )

    rows = StateChange.objects.filter(transition="pick_for_invoicing")
    assert StateChange.objects.count() == before + units
    assert rows.count() == units
    row = rows.get(object_id=items[-1].pk)
    assert (row.object_code, row.order_id, row.user, row.actor, row.reason) == (
        items[-1].code,
        order.pk,
        user,
        "lead",
        "wave 7",
    )
    assert (row.from_state, row.to_state) == ("FULFILLABLE", "PICKING_FOR_INVOICING")
    assert row.content_type.model == "orderitem"
