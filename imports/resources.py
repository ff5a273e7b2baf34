"""django-import-export Resources: the columns of every import and export, in one place.

- `OrderLineResource`: one row per order line. Its first columns are exactly the import
  columns (`importers.ORDER_COLUMNS`), so an export imports back; the columns after them
  (statuses, facility, invoice and tracking numbers, dates) are export-only and ignored on
  import. It also works with django-import-export's own row-by-row import (`import_data`):
  each new order goes through `orders.services.order_create`, allocation included. That is
  the library's default configuration, kept as the baseline of `bench/bench_import.py`; the
  admin and the Celery tasks use the streaming importer (`imports.importers`) instead.
- `UnitResource`, `ShipmentResource`: exports of units and shipments.
- `InventoryResource`, `ServiceabilityResource`: exports whose columns are the import
  columns of stock and serviceability (download, edit, upload).

Export rows are dicts built a chunk at a time by `imports.exporters` (no model instances);
fields name their keys. Values are rendered as they are (numbers stay numbers in XLSX); the
writers format dates and escape formula-looking text (`imports.writers`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from import_export import fields, resources, widgets

from channels.models import Channel
from orders.models import Order
from orders.services import LineInput, OrderInput, order_create

from . import parsing
from .importers import INVENTORY_COLUMNS, ORDER_COLUMNS, SERVICEABILITY_COLUMNS


class ValueWidget(widgets.Widget):
    """Export the value unchanged; import the stripped text."""

    def clean(self, value, row=None, **kwargs):
        return "" if value is None else str(value).strip()

    def render(self, value, obj=None, **kwargs):
        return value


class IsoDateTimeWidget(ValueWidget):
    """ISO 8601 with the offset (the default DateTimeWidget drops microseconds and offsets,
    and rejects '2024-05-01T10:30:00+05:30')."""

    def clean(self, value, row=None, **kwargs):
        text = super().clean(value)
        if not text:  # the other rows of an order may leave it empty
            return None
        try:
            return parsing.order_date(text)
        except parsing.CellError as exc:
            raise ValueError(str(exc)) from None


def col(name: str, attribute: str | None = None, **kwargs) -> fields.Field:
    kwargs.setdefault("widget", ValueWidget())
    return fields.Field(attribute=attribute or name, column_name=name, **kwargs)


# Order attribute behind each order-level import column (the others have the same name).
ORDER_ATTRIBUTES = {
    "address_line1": "ship_address_line1",
    "address_line2": "ship_address_line2",
    "city": "ship_city",
    "state": "ship_state",
    "pincode": "ship_pincode",
    "country": "ship_country",
}
ORDER_EXPORT_ONLY = [
    "order_code",
    "order_status",
    "on_hold",
    "line_status",
    "facility",
    "shipments",
    "shipment_status",
    "invoice_numbers",
    "tracking_numbers",
    "shipping_provider",
    "created_at",
    "dispatched_at",
    "delivered_at",
]


class ExportRowsMixin:
    """Render many rows fast: the export fields and their methods are looked up once (the
    library's `export_resource` searches the field list for every cell)."""

    def export_headers(self) -> list[str]:
        return self.get_export_headers()

    def rows(self, objs: Iterable) -> Iterator[list]:
        getters = []
        for field in self.get_export_fields():
            name = self.get_field_name(field)
            method = getattr(self, f"dehydrate_{name}", None)
            getters.append(method if callable(method) else field.export)
        for obj in objs:
            yield [get(obj) for get in getters]


class OrderLineResource(ExportRowsMixin, resources.ModelResource):
    channel = col("channel", widget=widgets.ForeignKeyWidget(Channel, "code"))
    channel_order_id = col("channel_order_id")
    order_date = col("order_date", widget=IsoDateTimeWidget())
    payment_method = col("payment_method")
    channel_line_id = col("channel_line_id", readonly=True)
    sku = col("sku", readonly=True)
    quantity = col("quantity", readonly=True)
    selling_price = col("selling_price", readonly=True)
    shipping_charges = col("shipping_charges", readonly=True)
    customer_name = col("customer_name")
    customer_phone = col("customer_phone")
    customer_email = col("customer_email")
    address_line1 = col("address_line1", "ship_address_line1")
    address_line2 = col("address_line2", "ship_address_line2")
    city = col("city", "ship_city")
    state = col("state", "ship_state")
    pincode = col("pincode", "ship_pincode")
    country = col("country", "ship_country")
    order_code = col("order_code", readonly=True)
    order_status = col("order_status", readonly=True)
    on_hold = col("on_hold", readonly=True)
    line_status = col("line_status", readonly=True)
    facility = col("facility", readonly=True)
    shipments = col("shipments", readonly=True)
    shipment_status = col("shipment_status", readonly=True)
    invoice_numbers = col("invoice_numbers", readonly=True)
    tracking_numbers = col("tracking_numbers", readonly=True)
    shipping_provider = col("shipping_provider", readonly=True)
    created_at = col("created_at", readonly=True)
    dispatched_at = col("dispatched_at", readonly=True)
    delivered_at = col("delivered_at", readonly=True)

    class Meta:
        model = Order
        fields = [c.name for c in ORDER_COLUMNS] + ORDER_EXPORT_ONLY
        import_id_fields = ["channel", "channel_order_id"]

    def __init__(self, *args, actor=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.actor = actor
        self._lines: dict[tuple[str, str], list[dict]] = {}

    def dehydrate_channel(self, obj) -> str:
        return obj["channel"] if isinstance(obj, dict) else obj.channel.code

    # --- The library's import (row by row) ----------------------------------------------

    def before_import(self, dataset, **kwargs) -> None:
        """Every row of the dataset is in memory (tablib): note each order's lines."""
        lines: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for values in dataset.dict:
            key = (str(values.get("channel", "")).strip(), str(values.get("channel_order_id", "")))
            lines[key].append(values)
        self._lines = dict(lines)

    def skip_row(self, instance, original, row, import_validation_errors=None) -> bool:
        # An order already there (or made by an earlier row of this file) is not touched.
        return instance.pk is not None

    def do_instance_save(self, instance: Order, is_create: bool) -> None:
        if not is_create:
            return
        key = (instance.channel.code, instance.channel_order_id)
        lines = []
        for values in self._lines.get(key, []):
            try:
                quantity = int(str(values.get("quantity", "")).strip())
                price = Decimal(str(values.get("selling_price", "")).strip() or "x")
                shipping = Decimal(str(values.get("shipping_charges", "") or "0").strip())
            except (ValueError, InvalidOperation):
                raise ValidationError(
                    f"Order {instance.channel_order_id}: bad quantity or price in line "
                    f"{values.get('channel_line_id')!r}"
                ) from None
            lines.append(
                LineInput(
                    channel_order_item_id=str(values.get("channel_line_id", "")).strip(),
                    sku=str(values.get("sku", "")).strip(),
                    quantity=quantity,
                    selling_price=price,
                    shipping_charges=shipping,
                )
            )
        order = order_create(
            OrderInput(
                channel=instance.channel,
                channel_order_id=instance.channel_order_id,
                order_date=instance.order_date,
                payment_method=str(instance.payment_method).upper(),
                ship_pincode=instance.ship_pincode,
                customer_name=instance.customer_name,
                customer_phone=instance.customer_phone,
                customer_email=instance.customer_email,
                ship_address_line1=instance.ship_address_line1,
                ship_address_line2=instance.ship_address_line2,
                ship_city=instance.ship_city,
                ship_state=instance.ship_state,
                ship_country=instance.ship_country or "IN",
                lines=lines,
            ),
            actor=self.actor,
            allocate=True,
        )
        instance.pk = order.pk


class UnitResource(ExportRowsMixin, resources.Resource):
    unit = col("unit")
    order_code = col("order_code")
    channel = col("channel")
    channel_order_id = col("channel_order_id")
    channel_line_id = col("channel_line_id")
    sku = col("sku")
    status = col("status")
    facility = col("facility")
    shelf = col("shelf")
    shipment = col("shipment")
    shipment_status = col("shipment_status")
    invoice_number = col("invoice_number")
    tracking_number = col("tracking_number")
    shipping_provider = col("shipping_provider")
    selling_price = col("selling_price")
    shipping_charges = col("shipping_charges")
    order_date = col("order_date")
    created_at = col("created_at")
    updated_at = col("updated_at")
    dispatched_at = col("dispatched_at")
    delivered_at = col("delivered_at")
    cancellation_reason = col("cancellation_reason")


class ShipmentResource(ExportRowsMixin, resources.Resource):
    shipment = col("shipment")
    order_code = col("order_code")
    channel = col("channel")
    channel_order_id = col("channel_order_id")
    status = col("status")
    facility = col("facility")
    shipping_provider = col("shipping_provider")
    tracking_number = col("tracking_number")
    invoice_numbers = col("invoice_numbers")
    units = col("units")
    manifest = col("manifest")
    courier_status = col("courier_status")
    created_at = col("created_at")
    dispatched_at = col("dispatched_at")
    delivered_at = col("delivered_at")


class InventoryResource(ExportRowsMixin, resources.Resource):
    facility = col("facility")
    shelf = col("shelf")
    sku = col("sku")
    quantity = col("quantity")
    inventory_type = col("inventory_type")
    blocked_quantity = col("blocked_quantity")
    available = col("available")
    updated_at = col("updated_at")


class ServiceabilityResource(ExportRowsMixin, resources.Resource):
    pincode = col("pincode")
    payment_method = col("payment_method")
    shipping_provider = col("shipping_provider")
    priority = col("priority")


IMPORT_COLUMNS = {
    "ORDERS": [c.name for c in ORDER_COLUMNS],
    "INVENTORY": [c.name for c in INVENTORY_COLUMNS],
    "SERVICEABILITY": [c.name for c in SERVICEABILITY_COLUMNS],
}
