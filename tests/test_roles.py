"""The seven roles of seed 001 exist after migrate as groups with sensible permissions."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission

from uniware.core.roles import ROLE_PERMISSIONS, sync_roles

from .factories import UserFactory

ROLES = [
    "Admin",
    "Catalog Manager",
    "Inbound Manager",
    "Pick and Pack",
    "Returns Manager",
    "Sales Manager",
    "Warehouse Manager",
]


def perms(role: str) -> set[str]:
    return {
        f"{app}.{code}"
        for app, code in Group.objects.get(name=role).permissions.values_list(
            "content_type__app_label", "codename"
        )
    }


def test_the_seven_roles_exist_after_migrate(db):
    assert sorted(Group.objects.values_list("name", flat=True)) == sorted(ROLES)
    assert sorted(ROLE_PERMISSIONS) == sorted(ROLES)


def test_admin_has_every_permission(db):
    every = {
        f"{app}.{code}"
        for app, code in Permission.objects.values_list("content_type__app_label", "codename")
    }
    assert perms("Admin") == every


@pytest.mark.parametrize("role", [r for r in ROLES if r != "Admin"])
def test_only_admin_deletes(db, role):
    assert not {p for p in perms(role) if ".delete_" in p}


EXPECTED = {
    "Pick and Pack": (
        {
            "orders.invoice_shipment",
            "orders.label_shipment",
            "orders.receive_picklist",
            "orders.add_picklist",
            "orders.close_manifest",
            "orders.add_manifest",
            "orders.view_order",
        },
        {
            "orders.dispatch_shipment",
            "orders.hold_order",
            "orders.change_order",
            "orders.split_shipment",
            "inventory.change_inventory",
        },
    ),
    "Warehouse Manager": (
        {
            "orders.dispatch_shipment",
            "orders.close_manifest",
            "orders.invoice_shipment",
            "orders.hold_order",
            "orders.split_shipment",
            "orders.allocate_order",
            "inventory.change_inventory",
            "core.view_statechange",
        },
        {"orders.delete_order", "core.change_sequence", "auth.change_user"},
    ),
    "Sales Manager": (
        {
            "orders.hold_order",
            "orders.accept_order",
            "orders.allocate_order",
            "orders.change_order",
            "orders.view_shipment",
            "channels.view_channel",
        },
        {
            "orders.close_manifest",
            "orders.dispatch_shipment",
            "orders.invoice_shipment",
            "inventory.change_inventory",
            "orders.delete_order",
        },
    ),
    "Catalog Manager": (
        {"inventory.add_sku", "inventory.change_sku", "inventory.view_inventory"},
        {"orders.view_order", "inventory.change_inventory", "orders.close_manifest"},
    ),
    "Inbound Manager": (
        {"inventory.change_inventory", "inventory.add_shelf", "inventory.view_sku"},
        {"orders.view_order", "inventory.change_sku", "orders.dispatch_shipment"},
    ),
    "Returns Manager": (
        {"orders.view_order", "orders.view_shipment", "inventory.view_inventory"},
        {"orders.dispatch_shipment", "orders.invoice_shipment", "orders.close_manifest"},
    ),
}


@pytest.mark.parametrize("role", list(EXPECTED))
def test_role_permissions(db, role):
    has, has_not = EXPECTED[role]
    granted = perms(role)
    assert has <= granted, has - granted
    assert not (has_not & granted), has_not & granted


def test_a_user_gets_the_permissions_of_their_role(db):
    packer = UserFactory(username="packer", roles=["Pick and Pack"])
    lead = UserFactory(username="lead", roles=["Warehouse Manager"])
    assert packer.has_perm("orders.invoice_shipment")
    assert not packer.has_perm("orders.dispatch_shipment")
    assert lead.has_perm("orders.dispatch_shipment")
    assert not lead.has_perm("orders.delete_shipment")


def test_sync_is_idempotent_and_keeps_permissions_an_admin_added(db):
    packers = Group.objects.get(name="Pick and Pack")
    extra = Permission.objects.get(content_type__app_label="orders", codename="split_shipment")
    packers.permissions.add(extra)
    before = perms("Pick and Pack")
    sync_roles()
    assert perms("Pick and Pack") == before
    assert Group.objects.count() == 7


def test_sync_recreates_a_deleted_role(db):
    Group.objects.filter(name="Returns Manager").delete()
    sync_roles()
    assert "orders.view_order" in perms("Returns Manager")


def test_migrate_makes_every_role_whatever_app_comes_last(db):
    """`manage.py migrate` makes the role groups with their permissions, although the last
    app in INSTALLED_APPS (workplace) has no models and so gets no post_migrate signal:
    `make demo`'s load_demo gives its users these groups (it failed without them)."""
    from django.contrib.auth.models import Group
    from django.core.management.sql import emit_post_migrate_signal

    from uniware.core.roles import ROLE_PERMISSIONS

    Group.objects.filter(name__in=ROLE_PERMISSIONS).delete()
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")  # as migrate does

    groups = {g.name: g for g in Group.objects.filter(name__in=ROLE_PERMISSIONS)}
    assert set(groups) == set(ROLE_PERMISSIONS)
    assert groups["Catalog Manager"].permissions.filter(codename="view_inventoryfeed").exists()
