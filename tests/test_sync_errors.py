"""Sync errors are a to-do list (issue 15): an error stays open until a later sync of the
same order succeeds (resolved, naming the run) or staff dismiss it with a reason; the list
shows open ones unless asked otherwise."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from channels.adapters import adapter_for
from channels.models import SyncError, SyncErrorState, SyncKind
from channels.sync import pull_orders, resync_from
from channels.sync.apply import OrderRow, apply_channel_orders
from orders.models import Order
from orders.services import units_cancel
from uniware.core.actors import Actor

from .factories import UserFactory
from .sync_helpers import channel_order, mirror

pytest_plugins = ["tests.sync_fixtures"]
LIST = reverse("admin:channels_syncerror_changelist")


def pull_again(channel):
    resync_from(channel, SyncKind.ORDER_PULL, timezone.now() - timedelta(days=3))
    return pull_orders(channel)


def test_a_later_successful_pull_resolves_the_error_and_names_the_run(world, channel, sim):
    good = channel_order("OD-1", [("OD-1-1", "TSHIRT", 1)])
    sim.store.put_orders(
        "FLIPKART",
        [
            channel_order("OD-1", [("OD-1-1", "TSHIRT", 1)], pincode=""),
            channel_order("OD-2", [("OD-2-1", "TSHIRT", 1)], pincode=""),
        ],
    )
    first = pull_orders(channel)
    assert set(SyncError.objects.values_list("channel_order_id", "state")) == {
        ("OD-1", SyncErrorState.OPEN),
        ("OD-2", SyncErrorState.OPEN),
    }

    sim.store.put_orders("FLIPKART", [good])  # the channel fixed the address
    second = pull_again(channel)

    assert Order.objects.filter(channel_order_id="OD-1").exists()
    fixed = SyncError.objects.get(channel_order_id="OD-1", run=first)
    assert fixed.state == SyncErrorState.RESOLVED
    assert fixed.resolution == f"a later sync succeeded (run #{second.pk})"
    assert fixed.resolved_at is not None and fixed.resolved_by is None
    # still failing: the first error stays open, and the new run's error is open too
    assert list(
        SyncError.objects.filter(channel_order_id="OD-2").values_list("state", flat=True)
    ) == [SyncErrorState.OPEN, SyncErrorState.OPEN]


@pytest.fixture
def errors(world, channel, sim):
    sim.store.put_orders(
        "FLIPKART",
        [channel_order(f"OD-{n}", [(f"OD-{n}-1", "TSHIRT", 1)], pincode="") for n in range(3)],
    )
    pull_orders(channel)
    return list(SyncError.objects.order_by("channel_order_id"))


def test_sales_dismiss_errors_with_a_reason_and_the_list_shows_open_ones(errors, client):
    user = UserFactory(roles=["Sales Manager"])
    client.force_login(user)
    chosen = [errors[0].pk, errors[1].pk]
    data = {"action": "dismiss_errors", ACTION_CHECKBOX_NAME: chosen}

    asked = client.post(LIST, data)
    assert asked.status_code == 200 and b"Dismiss these errors" in asked.content
    refused = client.post(LIST, {**data, "confirm": "1", "reason": "  "})
    assert refused.status_code == 200 and b"This field is required" in refused.content
    assert not SyncError.objects.exclude(state=SyncErrorState.OPEN).exists()

    client.post(LIST, {**data, "confirm": "1", "reason": "Listing retired on Flipkart"})

    dismissed = SyncError.objects.filter(state=SyncErrorState.DISMISSED)
    assert sorted(dismissed.values_list("pk", flat=True)) == sorted(chosen)
    assert {(e.resolution, e.resolved_by_id) for e in dismissed} == {
        ("Listing retired on Flipkart", user.pk)
    }
    shown = client.get(LIST).context["cl"].result_list
    assert [e.pk for e in shown] == [errors[2].pk]
    everything = client.get(LIST, {"state": "all"}).context["cl"].result_list
    assert len(everything) == 3
    only_dismissed = client.get(LIST, {"state": "DISMISSED"}).context["cl"].result_list
    assert sorted(e.pk for e in only_dismissed) == sorted(chosen)


@pytest.mark.parametrize("role", ["Warehouse Manager"])
def test_roles_that_only_view_errors_cannot_dismiss_them(errors, client, role):
    client.force_login(UserFactory(roles=[role]))
    page = client.get(LIST)
    assert page.status_code == 200
    assert "dismiss_errors" not in page.context["cl"].model_admin.get_actions(page.wsgi_request)
    client.post(
        LIST,
        {
            "action": "dismiss_errors",
            ACTION_CHECKBOX_NAME: [errors[0].pk],
            "confirm": "1",
            "reason": "no",
        },
    )
    assert not SyncError.objects.exclude(state=SyncErrorState.OPEN).exists()


def test_a_conflict_is_reported_as_failed_never_as_in_sync(world, channel, sim):
    """A selected sync of a cancelled order the channel says it dispatched."""
    order = world.order("FK-13")
    mirror(sim, order, status="DISPATCHED")
    units_cancel([order.items.get().pk], reason="out of stock")
    order.refresh_from_db()
    reply = adapter_for(channel).fetch_order_statuses(["FK-13"])
    row = OrderRow(order.pk, order.code, "FK-13", order.status)

    [result] = apply_channel_orders(
        [row], {o.id: o for o in reply.orders}, actor=Actor.of("test"), channel="FLIPKART"
    )

    assert result.outcome == "FAILED"
    assert "the channel says DISPATCHED but the unit is CANCELLED here" in result.detail
    assert "in sync" not in result.detail
