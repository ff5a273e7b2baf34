"""The tenant row and tenant-wide sequences for internal document codes.

INVOICE and RETURN_INVOICE are legal numbers the seller must configure (per facility or
tenant-wide); until they do, invoicing fails with a clear error (seed 000).
"""

from django.db import migrations

DEFAULT_SEQUENCES = {
    "SHIPMENT": "SP-",
    "PICKLIST": "PL-",
    "MANIFEST": "MF-",
    "PUTAWAY": "PA-",
    "REVERSE_PICKUP": "RP-",
    "GATEPASS": "GP-",
}


def create_defaults(apps, schema_editor):
    Tenant = apps.get_model("core", "Tenant")
    Sequence = apps.get_model("core", "Sequence")
    Tenant.objects.get_or_create(pk=1)
    for name, prefix in DEFAULT_SEQUENCES.items():
        Sequence.objects.get_or_create(
            name=name, facility=None, defaults={"prefix": prefix, "padding": 6}
        )


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
