"""The audit of administration: role and user changes, channel credential changes and settings
changes are recorded with who, when and what, from the admin and from code alike, and never
hold a secret or a password hash."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from channels.admin import ChannelAdmin
from channels.models import Channel
from uniware.core.admin_audit import acting_as
from uniware.core.models import AdminAuditEvent, Sequence, Tenant

from .factories import ChannelFactory, UserFactory

User = get_user_model()
SECRET = "Zebra-S3cret-9"


def url(model, view: str = "changelist", *args) -> str:
    meta = model._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=args)


def events(obj=None, action: str | None = None) -> list[AdminAuditEvent]:
    rows = AdminAuditEvent.objects.order_by("id")
    if obj is not None:
        rows = rows.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk))
    if action is not None:
        rows = rows.filter(action=action)
    return list(rows)


def perm(codename: str) -> Permission:
    return Permission.objects.get(codename=codename)


@pytest.fixture
def admin_user(db):
    return User.objects.create_superuser("boss", "boss@example.com", "boss-pass-123")


@pytest.fixture
def boss(client, admin_user):
    client.force_login(admin_user)
    return client


def user_form(user, **fields) -> dict:
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on" if user.is_active else "",
        "is_staff": "on" if user.is_staff else "",
        "is_superuser": "on" if user.is_superuser else "",
        "groups": [g.pk for g in user.groups.all()],
        "user_permissions": [p.pk for p in user.user_permissions.all()],
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }
    data.update(fields)
    return {k: v for k, v in data.items() if v != ""}


# --- roles and users ------------------------------------------------------------------------


def test_group_permissions_added_and_removed_in_the_admin_name_who(boss, admin_user):
    group = Group.objects.create(name="Night shift")
    keep, add = perm("view_order"), perm("cancel_order")
    group.permissions.add(keep)
    response = boss.post(
        url(Group, "change", group.pk), {"name": "Night shift", "permissions": [add.pk]}
    )
    assert response.status_code == 302
    added, removed = events(group, "permissions added")[-1], events(group, "permissions removed")[0]
    assert added.changes == {"permissions": {"added": ["orders.cancel_order"]}}
    assert removed.changes == {"permissions": {"removed": ["orders.view_order"]}}
    assert added.actor == "boss" and added.actor_user == admin_user
    assert added.object_repr == "Night shift"
    # the first add, made by code outside any request, is the system's
    assert events(group, "permissions added")[0].actor == "system"


def test_user_groups_permissions_and_flags_changed_in_the_admin(boss, admin_user):
    user = UserFactory(username="asha", is_staff=True)
    sales = Group.objects.get(name="Sales Manager")
    data = user_form(
        user,
        groups=[sales.pk],
        user_permissions=[perm("view_channel").pk],
        is_superuser="on",
        is_active="",
    )
    response = boss.post(url(User, "change", user.pk), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    changed = events(user, "changed")[-1]
    assert changed.changes == {"is_active": [True, False], "is_superuser": [False, True]}
    assert events(user, "groups added")[-1].changes == {"groups": {"added": ["Sales Manager"]}}
    assert events(user, "user_permissions added")[-1].changes == {
        "user_permissions": {"added": ["channels.view_channel"]}
    }
    assert {e.actor for e in events(user) if e.action != "created"} == {"boss"}
    user.refresh_from_db()
    boss.post(url(User, "change", user.pk), user_form(user, groups=[], is_staff=""))
    assert events(user, "groups removed")[-1].changes == {"groups": {"removed": ["Sales Manager"]}}
    assert events(user, "changed")[-1].changes == {"is_staff": [True, False]}


def test_membership_changed_from_the_group_side_is_recorded_on_the_user(db):
    user = UserFactory(username="ravi")
    group = Group.objects.get(name="Pick and Pack")
    group.user_set.add(user)
    group.user_set.clear()
    assert [e.changes for e in events(user) if e.action.startswith("groups")] == [
        {"groups": {"added": ["Pick and Pack"]}},
        {"groups": {"removed": ["Pick and Pack"]}},
    ]


def test_users_created_deleted_and_passwords_changed_never_record_the_hash(boss, admin_user):
    response = boss.post(
        url(User, "add"),
        {
            "username": "meera",
            "usable_password": "true",
            "password1": SECRET,
            "password2": SECRET,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    user = User.objects.get(username="meera")
    created = events(user, "created")[0]
    assert created.actor == "boss" and created.changes["password"] == "set"
    assert created.changes["username"] == "meera"
    response = boss.post(
        url(User, "password_change", user.pk),
        {"password1": SECRET + "x", "password2": SECRET + "x", "usable_password": "true"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert events(user, "changed")[-1].changes == {"password": "changed"}
    user.refresh_from_db()
    user.set_password("another-one-77")  # outside the admin too
    user.save()
    assert events(user, "changed")[-1].changes == {"password": "changed"}
    assert events(user, "changed")[-1].actor == "system"
    hashes = [user.password, User.objects.get(pk=user.pk).password]
    boss.post(url(User, "delete", user.pk), {"post": "yes"})
    deleted = AdminAuditEvent.objects.get(object_type="auth.user", action="deleted")
    assert deleted.object_repr == "meera" and deleted.actor == "boss"
    dump = json.dumps([e.changes for e in AdminAuditEvent.objects.all()])
    assert SECRET not in dump and "another-one" not in dump
    assert not any(h in dump for h in hashes) and "pbkdf2" not in dump


def test_a_login_records_nothing(client, db):
    user = UserFactory(username="packer")
    user.set_password("packer-pass-123")
    user.save()
    before = AdminAuditEvent.objects.count()
    login = reverse("admin:login")
    response = client.post(login, {"username": "packer", "password": "packer-pass-123"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.last_login is not None
    client.get(reverse("admin:index"))
    assert AdminAuditEvent.objects.count() == before  # last_login is not administration


# --- channel credentials --------------------------------------------------------------------


def channel_form(channel: Channel, **fields) -> dict:
    data = {
        "code": channel.code,
        "name": channel.name,
        "channel_type": channel.channel_type,
        "is_enabled": "on",
        "base_url": channel.base_url,
        "username": channel.username,
        "password": "",
        "sync_enabled": "on",
        "pull_window_days": channel.pull_window_days,
        "pull_statuses": channel.pull_statuses,
        "page_size": channel.page_size,
        "status_batch_size": channel.status_batch_size,
        "return_window_days": channel.return_window_days,
        "request_timeout": channel.request_timeout,
        "max_attempts": channel.max_attempts,
        "retry_base_delay": channel.retry_base_delay,
    }
    for name in ChannelAdmin.capability_fields:
        data[name] = "on" if getattr(channel, name) else ""
    data.update(fields)
    return data


def test_channel_credential_changes_say_which_field_never_the_value(boss, admin_user):
    channel = ChannelFactory(
        code="MYSHOP", base_url="https://old.example.com", username="seller", password=SECRET
    )
    assert events(channel, "created")[0].changes["password"] == "set"
    response = boss.post(
        url(Channel, "change", channel.pk),
        channel_form(
            channel, base_url="https://new.example.com", username="seller2", password="N3w-pass"
        ),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    change = events(channel, "changed")[-1]
    assert change.actor == "boss"
    assert change.changes == {
        "base_url": ["https://old.example.com", "https://new.example.com"],
        "username": ["seller", "seller2"],
        "password": "changed",
    }
    channel.refresh_from_db()
    boss.post(url(Channel, "change", channel.pk), channel_form(channel))
    assert len(events(channel, "changed")) == 1  # an empty password field keeps it: no change
    boss.post(url(Channel, "change", channel.pk), channel_form(channel, clear_password="on"))
    assert events(channel, "changed")[-1].changes == {"password": "removed"}
    dump = json.dumps([e.changes for e in AdminAuditEvent.objects.all()])
    assert SECRET not in dump and "N3w-pass" not in dump and "gAAAAA" not in dump


# --- settings -------------------------------------------------------------------------------


def test_tenant_and_sequence_changes_are_recorded(boss):
    tenant = Tenant.get()
    response = boss.post(
        url(Tenant, "change", tenant.pk),
        {"name": tenant.name, "is_live": "on", "traceability": "ITEM", "time_zone": "UTC"},
    )
    assert response.status_code == 302
    change = events(tenant, "changed")[-1]
    assert change.actor == "boss"
    assert change.changes["is_live"] == [False, True]
    assert change.changes["traceability"] == [tenant.traceability, "ITEM"]
    response = boss.post(
        url(Sequence, "add"), {"name": "INVOICE", "prefix": "INV", "next_value": 1, "padding": 6}
    )
    assert response.status_code == 302
    sequence = Sequence.objects.get(name="INVOICE", facility=None)
    assert events(sequence, "created")[0].changes["prefix"] == "INV"
    boss.post(
        url(Sequence, "change", sequence.pk), {"name": "INVOICE", "prefix": "IN", "padding": 8}
    )
    assert events(sequence, "changed")[-1].changes == {"prefix": ["INV", "IN"], "padding": [6, 8]}


def test_periodic_task_interval_and_enabled_changes_are_recorded(db):
    every_10 = IntervalSchedule.objects.create(every=10, period=IntervalSchedule.MINUTES)
    every_20 = IntervalSchedule.objects.create(every=20, period=IntervalSchedule.MINUTES)
    task = PeriodicTask.objects.create(
        name="Pull orders", task="channels.tasks.pull_orders", interval=every_10
    )
    with acting_as("command:setup_periodic_tasks"):
        task.interval, task.enabled = every_20, False
        task.save()
    change = events(task, "changed")[-1]
    assert change.actor == "command:setup_periodic_tasks"
    assert change.changes == {
        "interval": ["every 10 minutes", "every 20 minutes"],
        "enabled": [True, False],
    }
    every_20.every = 30
    every_20.save()
    assert events(every_20, "changed")[-1].changes == {"every": [20, 30]}
    before = AdminAuditEvent.objects.count()
    task.total_run_count += 1  # what beat writes after each run
    task.save()
    assert AdminAuditEvent.objects.count() == before


def test_a_rolled_back_change_leaves_no_event(db):
    tenant = Tenant.get()
    before = AdminAuditEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        tenant.is_live = True
        tenant.save()
        raise RuntimeError("undo")
    assert AdminAuditEvent.objects.count() == before


# --- the admin page -------------------------------------------------------------------------


def test_the_audit_pages_are_read_only_and_need_the_view_permission(boss, client, db):
    group = Group.objects.create(name="Night shift")
    group.permissions.add(perm("view_order"))
    listing = boss.get(url(AdminAuditEvent))
    assert listing.status_code == 200
    page = listing.content.decode()
    assert "Night shift" in page and "orders.view_order" in page
    event = events(group, "permissions added")[0]
    assert boss.get(url(AdminAuditEvent, "change", event.pk)).status_code == 200
    assert boss.get(url(AdminAuditEvent, "add")).status_code == 403
    assert boss.post(url(AdminAuditEvent, "delete", event.pk), {"post": "yes"}).status_code == 403
    assert AdminAuditEvent.objects.filter(pk=event.pk).exists()
    staff = UserFactory(username="staff")
    client.force_login(staff)
    assert client.get(url(AdminAuditEvent)).status_code == 403
    staff.user_permissions.add(perm("view_adminauditevent"))
    assert client.get(url(AdminAuditEvent)).status_code == 200
