"""The whole permission surface, tried: every role × every admin entry = the role table.

`uniware.core.access.ACCESS` says, for each of the seven roles, which admin pages, actions,
custom views and downloads it may use. This test logs in as a user of each role, tries every
entry the admin site has (`tests/access_probe.py` enumerates them from the site itself, so a
new page or action is tried without editing this file) and compares: 0 differences. A new
entry that the table does not list is a difference too, so nothing is added unreviewed.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.utils import timezone

from imports.models import ExportJob, ExportKind, ImportJob, ImportKind, JobStatus
from uniware.core.access import ACCESS, ROLES, format_table

from .access_probe import probe
from .factories import UserFactory
from .returns_flow import advance, make_return_records, shipment_of
from .sync_helpers import make_sync_records


def _jobs_of(user) -> None:
    """One finished import and export job of every kind, owned by `user`, with files."""
    for kind in ImportKind.values:
        job = ImportJob(
            kind=kind,
            status=JobStatus.VALIDATED,
            original_name=f"{kind.lower()}.csv",
            created_by=user,
        )
        job.file.save(f"{kind.lower()}.csv", ContentFile(b"a,b\n1,2\n"), save=False)
        job.error_report.save("report.csv", ContentFile(b"row,error\n"), save=False)
        job.save()
    for kind in ExportKind.values:
        job = ExportJob(kind=kind, status=JobStatus.DONE, created_by=user)
        job.file.save(f"{kind.lower()}.csv", ContentFile(b"a,b\n1,2\n"), save=False)
        job.save()


def _other_records(world) -> None:
    """A row of each model the domain flows do not make (beat schedules, axes logs ...)."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django_celery_beat.models import (
        ClockedSchedule,
        CrontabSchedule,
        IntervalSchedule,
        PeriodicTask,
        SolarSchedule,
    )

    every = IntervalSchedule.objects.create(every=10, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.create(name="probe", task="channels.tasks.pull_orders", interval=every)
    CrontabSchedule.objects.create(minute="0", hour="1")
    SolarSchedule.objects.create(event="sunrise", latitude=12.9, longitude=77.6)
    ClockedSchedule.objects.create(clocked_time=timezone.now())
    seen = {"ip_address": "127.0.0.9", "user_agent": "probe", "username": "nobody"}
    AccessAttempt.objects.create(**seen, failures_since_start=1)
    AccessLog.objects.create(**seen)
    AccessFailureLog.objects.create(**seen)
    from listings.models import ChannelListing, InventoryFeed

    ChannelListing.objects.create(channel=world.channel, product_id="P-PROBE", sku=world.sku)
    InventoryFeed.objects.create(
        channel=world.channel, reference="5001", computed_at=timezone.now()
    )


@pytest.fixture
def everything(world, settings, tmp_path):
    """One object of every model the admin shows, and a user of each role with own jobs."""
    settings.MEDIA_ROOT = tmp_path / "media"
    world.channel.accepts_status_notifications = True
    world.channel.save(update_fields=["accepts_status_notifications"])
    order = world.order("FK-1", 2)
    advance(shipment_of(order), "MANIFESTED")
    make_sync_records(world.channel, order)
    make_return_records(world)
    _other_records(world)
    users = {}
    for role in ROLES.values():
        users[role] = UserFactory(username=role.lower().replace(" ", "-"), roles=[role])
        _jobs_of(users[role])
    return users


@pytest.mark.django_db(transaction=False)
def test_every_role_uses_exactly_what_the_table_says(everything, client):
    actual: dict[str, set[str]] = {}
    for role, user in everything.items():
        assert list(user.groups.values_list("name", flat=True)) == [role]
        cache.clear()
        client.force_login(user)
        for entry in probe(client, user):
            actual.setdefault(entry, set()).add(role)
        client.logout()
    declared = {entry: set(roles) for entry, roles in ACCESS.items()}
    everything_seen = set(actual) | set(declared)
    differences = sorted(e for e in everything_seen if actual.get(e, set()) != declared.get(e))
    # The message shows both sides: review the admin's rows, fix the code or copy the rows.
    assert not differences, (
        "\nThe admin lets:\n"
        + format_table({e: actual.get(e, set()) for e in differences}, header=True)
        + "\nThe table says:\n"
        + format_table({e: declared.get(e, set()) for e in differences}, header=True)
    )


def test_the_table_names_only_the_seven_roles(db):
    assert set(ROLES.values()) == set(Group.objects.values_list("name", flat=True))
    for entry, roles in ACCESS.items():
        assert roles <= set(ROLES.values()), entry


def _offered(client, user, model_label: str) -> set[str]:
    from django.urls import reverse

    from .access_probe import action_names

    client.force_login(user)
    app, model = model_label.split(".")
    return action_names(client.get(reverse(f"admin:{app}_{model}_changelist")))


def _user_with(*perms: str):
    from django.contrib.auth.models import Permission

    user = UserFactory()
    for perm in perms:
        app, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app, codename=codename)
        )
    return user


def test_sync_status_from_channel_needs_its_own_permission(db, client):
    """It calls the channel for every selected order: editing an order is not enough."""
    editor = _user_with("orders.view_order", "orders.change_order")
    assert "sync_status_from_channel" not in _offered(client, editor, "orders.order")
    syncer = _user_with("orders.view_order", "orders.sync_order")
    assert "sync_status_from_channel" in _offered(client, syncer, "orders.order")


def test_cancelling_a_reverse_pickup_needs_the_cancel_permission(db, client):
    completer = _user_with("orders.view_reversepickup", "orders.complete_reversepickup")
    offered = _offered(client, completer, "orders.reversepickup")
    assert "complete" in offered and "cancel" not in offered
    canceller = _user_with("orders.view_reversepickup", "orders.cancel_reversepickup")
    assert "cancel" in _offered(client, canceller, "orders.reversepickup")


def test_upgrade_takes_the_channel_pages_from_the_floor_roles(db):
    """Roles only gain permissions at migrate; the migration revokes what was granted."""
    from importlib import import_module

    from django.apps import apps
    from django.contrib.auth.models import Permission

    view_channel = Permission.objects.get(codename="view_channel")
    for role in ("Pick and Pack", "Returns Manager", "Sales Manager"):
        Group.objects.get(name=role).permissions.add(view_channel)
    migration = import_module("orders.migrations.0004_sync_and_cancel_reversepickup_permissions")
    migration.revoke(apps, None)
    holders = set(view_channel.group_set.values_list("name", flat=True))
    assert {"Pick and Pack", "Returns Manager"}.isdisjoint(holders)
    assert "Sales Manager" in holders


def test_check_permissions_prints_the_table_and_the_groups_drift(db):
    from io import StringIO

    from django.contrib.auth.models import Permission
    from django.core.management import call_command

    out = StringIO()
    call_command("check_permissions", stdout=out)
    text = out.getvalue()
    assert "Orders and fulfilment › Shipments" in text
    assert "action: Force dispatch (without a manifest)" in text
    assert "hold exactly the shipped roles" in text
    group = Group.objects.get(name="Pick and Pack")
    group.permissions.add(Permission.objects.get(codename="dispatch_shipment"))
    out = StringIO()
    with pytest.raises(Exception, match="1 difference"):
        call_command("check_permissions", "--strict", stdout=out)
    assert "Pick and Pack: also has orders.dispatch_shipment (added by hand)" in out.getvalue()
    out = StringIO()
    call_command("check_permissions", "--role", "Pick and Pack", stdout=out)
    assert "Force dispatch" not in out.getvalue().split("differ")[0]
    assert "action: Invoice and pack" in out.getvalue()
