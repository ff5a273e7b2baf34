"""The seven predefined roles of seed 001 as Django groups.

Each role is a list of permission patterns (`app_label.codename`, shell-style wildcards), so
permissions of models added later are granted by name. `migrate` creates the groups and adds
any missing permission of theirs; permissions an admin added stay. Admins can add more groups.
"""

from __future__ import annotations

from fnmatch import fnmatch

ROLE_PERMISSIONS: dict[str, list[str]] = {
    "Admin": ["*.*"],
    "Catalog Manager": [
        "inventory.*_sku",
        "inventory.view_*",
        "channels.*_listing",
        "channels.view_channel",
        "listings.view_channellisting",
        "listings.view_inventoryfeed",
        "listings.change_channellisting",
        "listings.map_channellisting",
        "listings.push_channellisting",
        "imports.import_listings",
        "imports.export_listings",
        "imports.view_importjob",
        "imports.view_exportjob",
    ],
    "Inbound Manager": [
        "inventory.*_inventory",
        "inventory.*_shelf",
        "inventory.view_*",
        "inventory.*putaway*",
        "imports.import_inventory",
        "imports.export_inventory",
        "imports.view_importjob",
        "imports.view_exportjob",
    ],
    "Pick and Pack": [
        "orders.view_order",
        "orders.view_orderitem",
        "orders.*_picklist",
        "orders.view_picklistitem",
        "orders.receive_picklist",
        "orders.view_shipment",
        "orders.change_shipment",
        "orders.invoice_shipment",
        "orders.label_shipment",
        "orders.view_invoice",
        "orders.*_manifest",
        "orders.close_manifest",
        "inventory.view_*",
    ],
    "Returns Manager": [
        "orders.view_*",
        "orders.*return*",
        "orders.*reversepickup*",
        "orders.reship_*",
        "orders.replace_*",
        "inventory.*putaway*",
        "inventory.view_*",
    ],
    "Sales Manager": [
        "orders.*_order",
        "orders.view_orderitem",
        "orders.cancel_*",
        "orders.view_shipment",
        "orders.view_invoice",
        "orders.sync_*",
        "orders.import_*",
        "orders.export_*",
        "imports.import_orders",
        "imports.export_orders",
        "imports.view_importjob",
        "imports.view_exportjob",
        "channels.view_*",
        "channels.sync_*",
        "channels.dismiss_syncerror",
        "listings.view_channellisting",
        "listings.view_inventoryfeed",
        "listings.push_channellisting",
        "imports.export_listings",
        "notifications.*",
        "inventory.view_sku",
        "inventory.view_facility",
    ],
    "Warehouse Manager": [
        "orders.*",
        "inventory.*",
        "imports.*",
        "channels.view_*",
        "listings.view_channellisting",
        "listings.view_inventoryfeed",
        "notifications.view_*",
        "core.view_tenant",
        "core.view_sequence",
        "core.view_statechange",
    ],
}
# Nobody but Admin deletes business records; history is not rewritten.
NEVER_EXCEPT_ADMIN = ["*.delete_*"]


def permissions_for(role: str, all_perms) -> list:
    patterns = ROLE_PERMISSIONS[role]
    chosen = []
    for perm in all_perms:
        name = f"{perm.content_type.app_label}.{perm.codename}"
        if not any(fnmatch(name, p) for p in patterns):
            continue
        if role != "Admin" and any(fnmatch(name, p) for p in NEVER_EXCEPT_ADMIN):
            continue
        chosen.append(perm)
    return chosen


def sync_roles(using: str = "default") -> None:
    from django.contrib.auth.models import Group, Permission

    all_perms = list(Permission.objects.using(using).select_related("content_type"))
    for role in ROLE_PERMISSIONS:
        group, _ = Group.objects.using(using).get_or_create(name=role)
        group.permissions.add(*permissions_for(role, all_perms))


def sync_roles_after_migrate(sender, using: str = "default", **kwargs) -> None:
    from django.apps import apps

    # Run once, after the last app that has models (an app without models gets no
    # post_migrate signal): by then every app's permissions exist.
    with_models = [app for app in apps.get_app_configs() if app.models_module is not None]
    if sender.label != with_models[-1].label:
        return
    sync_roles(using=using)
