"""The rows every installation starts with: the tenant, tenant-wide sequences for internal
document codes, and the seven roles. Made by migrations; restored by `ensure_defaults()` where
a test flushed the database."""

from __future__ import annotations

DEFAULT_SEQUENCES = {
    "SHIPMENT": "SP-",
    "PICKLIST": "PL-",
    "MANIFEST": "MF-",
    "PUTAWAY": "PA-",
    "REVERSE_PICKUP": "RP-",
    "GATEPASS": "GP-",
}


def ensure_defaults() -> None:
    from django.contrib.auth.models import Group

    from .models import Sequence, Tenant
    from .roles import ROLE_PERMISSIONS, sync_roles

    Tenant.objects.get_or_create(pk=1)
    for name, prefix in DEFAULT_SEQUENCES.items():
        Sequence.objects.get_or_create(
            name=name, facility=None, defaults={"prefix": prefix, "padding": 6}
        )
    if Group.objects.filter(name__in=ROLE_PERMISSIONS).count() < len(ROLE_PERMISSIONS):
        sync_roles()
