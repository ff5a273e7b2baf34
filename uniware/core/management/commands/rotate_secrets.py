"""Re-encrypt every stored secret with the first key of SECRETS_KEYS.

Rotation: put the new key first in SECRETS_KEYS (keep the old ones after it), deploy, run
this command, then remove the old keys. Every value stays readable throughout: before the
command the old keys open the old tokens, after it the new key opens them all.
"""

from __future__ import annotations

from cryptography.fernet import InvalidToken
from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import F, TextField, Value
from django.db.models.functions import Cast

from uniware.core import secrets
from uniware.core.admin_audit import acting_as, record


def encrypted_fields() -> list[tuple[type, str]]:
    """(model, field name) of every EncryptedTextField in the project."""
    return [
        (model, field.name)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, secrets.EncryptedTextField)
    ]


def rotate_all() -> dict[str, int]:
    """Re-encrypt every stored secret (one transaction, rows locked); count per field.

    Tokens are read and written as plain text (`Cast`, `Value`), past the field's own
    decryption and encryption, so `MultiFernet.rotate` does the work and an unreadable value
    is named by its record."""
    counts: dict[str, int] = {}
    with transaction.atomic():
        for model, name in encrypted_fields():
            label = f"{model._meta.label}.{name}"
            rows = model._base_manager.select_for_update().exclude(**{name: ""}).order_by("pk")
            tokens = rows.values_list("pk", Cast(F(name), output_field=TextField()))
            for pk, token in tokens:
                try:
                    new = secrets.rotate(token)
                except InvalidToken:
                    raise CommandError(
                        f"{label} of #{pk}: none of the keys in SECRETS_KEYS opens it; nothing "
                        "was re-encrypted (put the key that encrypted it back in SECRETS_KEYS)"
                    ) from None
                value = Value(new, output_field=TextField())
                model._base_manager.filter(pk=pk).update(**{name: value})
            counts[label] = len(tokens)
    return counts


class Command(BaseCommand):
    help = "Re-encrypt every stored secret (channel passwords ...) with the first SECRETS_KEYS key."

    def handle(self, *args, **options) -> None:
        with acting_as("command:rotate_secrets"):
            counts = rotate_all()
            if counts:
                _record(counts)
        for label, done in counts.items():
            self.stdout.write(f"{label}: {done} re-encrypted")
        self.stdout.write(self.style.SUCCESS("Every stored secret is now under the first key."))


def _record(counts: dict[str, int]) -> None:
    """One audit event for the rotation (no values, only how many)."""
    from uniware.core.models import Tenant

    record(Tenant.get(), "secrets re-encrypted", {"re-encrypted": counts})
