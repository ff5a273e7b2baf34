"""Channel passwords encrypted at rest (uniware.core.secrets).

1. The column becomes TEXT (a Fernet token is longer than the password it holds).
2. Every clear value is encrypted with the first key of SECRETS_KEYS (a value that already
   opens with the keys is left alone, so running it twice changes nothing). Reversing
   decrypts them again.
3. The field becomes an EncryptedTextField (no database change).

With stored passwords and no key (SECRETS_KEYS unset outside development) this migration
stops with ImproperlyConfigured rather than leave clear text behind.
"""

from django.db import migrations, models

import uniware.core.secrets


def _passwords(Channel):
    return Channel.objects.exclude(password="").values_list("pk", "password")


def encrypt_passwords(apps, schema_editor):
    from uniware.core import secrets

    Channel = apps.get_model("channels", "Channel")
    for pk, value in _passwords(Channel):
        if not secrets.is_token(value):
            Channel.objects.filter(pk=pk).update(password=secrets.encrypt(value))


def decrypt_passwords(apps, schema_editor):
    from uniware.core import secrets

    Channel = apps.get_model("channels", "Channel")
    for pk, value in _passwords(Channel):
        clear = secrets.decrypt(value, what=f"the password of channel #{pk}")
        Channel.objects.filter(pk=pk).update(password=clear)


class Migration(migrations.Migration):

    dependencies = [
        ("channels", "0002_sync"),
    ]

    operations = [
        migrations.AlterField(
            model_name="channel",
            name="password",
            field=models.TextField(blank=True),
        ),
        migrations.RunPython(encrypt_passwords, decrypt_passwords, elidable=False),
        migrations.AlterField(
            model_name="channel",
            name="password",
            field=uniware.core.secrets.EncryptedTextField(
                blank=True,
                help_text="Encrypted in the database (SECRETS_KEYS); never shown again once saved.",
            ),
        ),
    ]
