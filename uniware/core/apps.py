from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "uniware.core"
    label = "core"
    verbose_name = "Tenant, sequences and audit"

    def ready(self) -> None:
        from .roles import sync_roles_after_migrate

        post_migrate.connect(sync_roles_after_migrate, dispatch_uid="core.sync_roles")
        from . import admin_audit

        admin_audit.connect()  # the audit of administration (roles, users, credentials, settings)
        from django.db.models.signals import post_save

        from .models import Tenant
        from .zones import forget_tenant_zone

        post_save.connect(forget_tenant_zone, sender=Tenant, dispatch_uid="core.tenant_zone")
