"""The tenant, numbering sequences and the audit trail of every state change."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from gst.numbering import FY_TOKEN, render_prefix, sequence_problem


class Traceability(models.TextChoices):
    ITEM = "ITEM", "Item (every unit has its own barcode)"
    SKU = "SKU", "SKU (units carry the SKU code)"
    NONE = "NONE", "None (quantities only)"


class Tenant(models.Model):
    """The one seller account this deployment serves (a singleton, pk=1)."""

    name = models.CharField(max_length=200, default="My store")
    is_live = models.BooleanField(
        "go-live", default=False, help_text="Status syncs from channels run only once live."
    )
    traceability = models.CharField(
        max_length=4, choices=Traceability.choices, default=Traceability.SKU
    )
    time_zone = models.CharField(max_length=64, default="Asia/Kolkata")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "tenant"

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        self.pk = 1
        super().save(*args, **kwargs)

    def clean(self) -> None:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(self.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValidationError({"time_zone": f"Unknown time zone {self.time_zone!r}"}) from exc

    @classmethod
    def get(cls) -> Tenant:
        tenant, _ = cls.objects.get_or_create(pk=1)
        return tenant


class SequenceName(models.TextChoices):
    INVOICE = "INVOICE"
    RETURN_INVOICE = "RETURN_INVOICE"
    SHIPMENT = "SHIPMENT"
    PICKLIST = "PICKLIST"
    MANIFEST = "MANIFEST"
    PUTAWAY = "PUTAWAY"
    REVERSE_PICKUP = "REVERSE_PICKUP"
    GATEPASS = "GATEPASS"


# Their numbers go on tax invoices and credit notes: CGST Rule 46(b) limits them.
INVOICE_SEQUENCES = {SequenceName.INVOICE, SequenceName.RETURN_INVOICE}


class Sequence(models.Model):
    """Gap-free document numbers. A facility's sequence wins over the tenant-wide one.

    INVOICE and RETURN_INVOICE (credit note) numbers follow CGST Rule 46: at most 16
    characters, letters, digits, '-' and '/', unique in a financial year (April to March in the
    tenant's zone). A prefix may carry {FY}; a sequence may restart each financial year only
    then. `problem()` refuses a configuration that could produce an illegal number, in the
    admin form and again when numbers are taken."""

    name = models.CharField(max_length=32, choices=SequenceName.choices)
    facility = models.ForeignKey(
        "inventory.Facility",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        help_text="Empty for the tenant-wide sequence.",
    )
    prefix = models.CharField(
        max_length=20,
        blank=True,
        help_text="May carry {FY}, the financial year (e.g. INV/{FY}/ gives INV/26-27/000001).",
    )
    next_value = models.PositiveBigIntegerField(default=1)
    padding = models.PositiveSmallIntegerField(default=6)
    restarts_yearly = models.BooleanField(
        "restarts each financial year",
        default=False,
        help_text="Numbering starts again at 1 on 1 April (the prefix must carry {FY}).",
    )
    financial_year = models.CharField(
        max_length=5,
        blank=True,
        editable=False,
        help_text="The financial year next value counts in (restarting sequences only).",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "facility"], name="uniq_sequence_per_facility"),
            models.UniqueConstraint(
                fields=["name"],
                condition=models.Q(facility__isnull=True),
                name="uniq_tenant_wide_sequence",
            ),
        ]
        ordering = ["name", "facility__code"]

    def __str__(self) -> str:
        where = self.facility.code if self.facility_id else "tenant-wide"
        return f"{self.name} ({where}): next {self.format(self.next_value)}"

    def format(self, value: int, day: date | None = None) -> str:
        prefix = render_prefix(self.prefix, day or timezone.localdate())
        return f"{prefix}{value:0{self.padding}d}"

    @property
    def numbers_invoices(self) -> bool:
        """Tax invoices and credit notes: their numbers must follow CGST Rule 46."""
        return self.name in INVOICE_SEQUENCES

    def problem(self) -> str | None:
        """Why this sequence may not number documents, or None."""
        if self.numbers_invoices:
            return sequence_problem(self.prefix, self.padding, restarts_yearly=self.restarts_yearly)
        if self.restarts_yearly and FY_TOKEN not in self.prefix:
            return f"a sequence that restarts each financial year must carry {FY_TOKEN}"
        return None

    def clean(self) -> None:
        problem = self.problem()
        if problem:
            raise ValidationError({"prefix": f"Sequence {self.name}: {problem}"})


class StateChange(models.Model):
    """One row per state change of any object: who, when, from, to, why.

    `order` is filled for everything that belongs to an order (the order itself, its units,
    its shipments), so an order's page shows its whole history with one indexed query.

    The table is append-only and written by the hundred thousand (an import of 60,000 orders
    writes about 350,000 rows), so its references carry no database constraints (as
    django-simple-history's history tables): the code sets them from the objects it holds,
    and a constraint check per row would double the cost of writing it. Their lookups use the
    two composite indexes, which also serve `content_type` and `order` alone.
    """

    content_type = models.ForeignKey(
        ContentType, on_delete=models.PROTECT, db_constraint=False, db_index=False
    )
    object_id = models.BigIntegerField()
    object_code = models.CharField(max_length=100)
    order = models.ForeignKey(
        "orders.Order",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    transition = models.CharField(max_length=64)
    from_state = models.CharField(max_length=40, blank=True)
    to_state = models.CharField(max_length=40, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
    )
    actor = models.CharField(
        max_length=100, help_text="The user's name, or the task or process that acted."
    )
    reason = models.CharField(max_length=255, blank=True)
    at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["content_type", "object_id"]),
            models.Index(fields=["order", "at"]),
        ]
        ordering = ["-at", "-id"]
        verbose_name = "state change"

    def __str__(self) -> str:
        return f"{self.object_code}: {self.from_state} → {self.to_state} ({self.transition})"


class AdminAuditEvent(models.Model):
    """One change of administration: roles and users, channel credentials and settings.

    Append-only (written by the receivers in `uniware.core.admin_audit`, never edited): who
    (the user, kept as a label too so the row survives the user's deletion, or the process:
    "system", "command:rotate_secrets" ...), when, which object, what was done and, per field,
    old → new. Secrets never get here: a password or credential shows as "changed", "set" or
    "removed", never its value or hash.
    """

    at = models.DateTimeField(db_index=True)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="user",
    )
    actor = models.CharField(
        max_length=150, help_text="The user's name, or the process that made the change."
    )
    object_type = models.CharField(max_length=100, help_text="App label and model, e.g. auth.user")
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField("object", max_length=200)
    action = models.CharField(max_length=40)
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]
        verbose_name = "administration audit event"

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.object_type} {self.object_repr}"
