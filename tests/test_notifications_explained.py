"""Notifications that wait say why in the list (issue 15), and one the channel cannot place
(it does not know the order) is FAILED at once with what staff can do, not retried blindly."""

# ruff: noqa: F811 (the fixtures of test_notifications, imported to be shared)
from __future__ import annotations

from django.urls import reverse
from django.utils import timezone

from notifications.delivery import deliver_due

from .test_notifications import (  # noqa: F401 (fixtures)
    advance,
    connect_channel,
    kicks,
    make_order,
    notifications,
    sim,
    sim_order,
    world,
)

LIST = reverse("admin:notifications_notification_changelist")


def why_column(client) -> dict[int, str]:
    page = client.get(LIST)
    admin_ = page.context["cl"].model_admin
    return {n.pk: admin_.why(n) for n in page.context["cl"].result_list}


def test_an_order_the_channel_does_not_know_fails_at_once_with_an_explanation(
    world, sim, admin_client
):
    connect_channel(world.channel, sim)
    order = make_order(world, "OWN-1")  # made here: the simulator has no such order
    advance(order.shipments.get(), "PICKING")

    deliver_due()

    created, picking = notifications(order)
    assert (created.state, created.attempts) == ("FAILED", 1)
    assert created.last_error.startswith("FLIPKART does not know order OWN-1 (")
    assert "Retrying cannot help: fix the channel and retry, or discard" in created.last_error
    assert (picking.state, picking.attempts) == ("PENDING", 0)
    why = why_column(admin_client)
    assert why[created.pk] == "waits for staff: retry or discard"
    assert why[picking.pk] == f"held back by #{created.pk}"


def test_a_transient_failure_shows_its_back_off_and_a_known_order_is_retried(
    world, sim, admin_client
):
    connect_channel(world.channel, sim)
    sim_order(sim, "FK-1")
    order = make_order(world, "FK-1")
    sim.store.add_fault({"kind": "error", "status": 503, "count": 1, "path": "/order/*"})

    deliver_due()

    [created] = notifications(order)
    assert (created.state, created.attempts) == ("PENDING", 1)
    assert created.next_attempt_at > timezone.now()
    assert why_column(admin_client)[created.pk].startswith("back-off until ")
    type(created).objects.filter(pk=created.pk).update(next_attempt_at=timezone.now())
    deliver_due()
    assert why_column(admin_client)[created.pk].startswith("delivered ")
