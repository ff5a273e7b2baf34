"""django-import-export Resources: the columns of every import and export, each declared once.

A file's columns are fields of its Resource. A `Column` is a column of an import file (and of
the export that imports back): its name, whether it is required, the help and the example of
the upload page and the template, the other spellings a header may use, the parser of its cells
(`imports.parsing`) and the attribute it fills. The rest is derived from these declarations: the
header matching and the checks of the streaming importer (`imports.importers`), the upload
page and its template, the orders export's query (`imports.exporters`) and the order handed to
the service (`order_input`). A new column of an order, such as `buyer_gstin`, is one line here.
Export-only fields are plain fields (`col`).

- `OrderLineResource`: one row per order line. The file's columns come first, so an export
  imports back; the columns after them (statuses, facility, invoice and tracking numbers,
  dates) are export-only and ignored on import. It also works with django-import-export's own
  row-by-row import (`import_data`): its widgets parse the cells with the columns' parsers, and
  each new order goes through `orders.services.order_create`, allocation included. That is the
  library's default configuration, kept as the baseline of `bench/bench_import.py`; the admin
  and the Celery tasks use the streaming importer instead.
- `UnitResource`, `ShipmentResource`: exports of units and shipments.
- `InventoryResource`, `ServiceabilityResource`: exports whose first columns are the import
  columns of stock and serviceability (download, edit, upload).

Export rows are dicts built a chunk at a time by `imports.exporters` (no model instances);
fields name their keys. Values are rendered as they are (numbers stay numbers in XLSX); the
writers format dates and escape formula-looking text (`imports.writers`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from django.core.exceptions import ValidationError
from import_export import fields, resources, widgets

from channels.models import Channel
from inventory.models import InventoryType
from orders.models import Order
from orders.services import LineInput, OrderInput, order_create

from . import parsing

ORDER, LINE = "order", "line"  # the levels of the orders file's columns


class ValueWidget(widgets.Widget):
    """Export the value unchanged; import the stripped text."""

    def clean(self, value, row=None, **kwargs):
        return "" if value is None else str(value).strip()

    def render(self, value, obj=None, **kwargs):
        return value


class CellWidget(ValueWidget):
    """Import a cell with its column's parser. An empty cell is None: the other rows of an
    order may leave the order's cells empty."""

    def __init__(self, parse: parsing.Parser) -> None:
        super().__init__()
        self.parse = parse

    def clean(self, value, row=None, **kwargs):
        text = super().clean(value)
        if not text:
            return None
        try:
            return self.parse(text)
        except parsing.CellError as exc:
            raise ValueError(str(exc)) from None


class Column(fields.Field):
    """A column of an import file (see the module docstring).

    `attribute` is what the column fills: the `OrderInput` (and `Order`) attribute for an
    order's column, the `LineInput` attribute for a line's; it is also the column's key in the
    export rows. `level` (orders only) is `ORDER` when the value is the same on every row of an
    order, `LINE` when each row has its own; a line's cells are not attributes of the order, so
    they are read-only to the library's import (`OrderLineResource.do_instance_save` reads
    them). A column without a parser is checked by its importer (a code looked up in a table)."""

    def __init__(
        self,
        name: str,
        attribute: str | None = None,
        *,
        required: bool = False,
        help_text: str = "",
        example: str = "",
        aliases: Iterable[str] = (),
        parse: parsing.Parser | None = None,
        level: str = "",
        widget: widgets.Widget | None = None,
    ) -> None:
        super().__init__(
            attribute=attribute or name,
            column_name=name,
            widget=widget or (CellWidget(parse) if parse else ValueWidget()),
            readonly=level == LINE,
        )
        self.name = name
        self.required = required
        self.help_text = help_text
        self.example = example
        self.aliases = tuple(aliases)
        self.parse = parse
        self.level = level

    @property
    def check(self) -> tuple[str, parsing.Parser, int]:
        """The column for `importers.base.check_cells`: its name, its parser, and the length
        up to which a plain value is taken without the parser (0: always parsed)."""
        return self.name, self.parse, getattr(self.parse, "plain", 0)


def col(name: str, attribute: str | None = None, **kwargs) -> fields.Field:
    """An export-only field."""
    kwargs.setdefault("widget", ValueWidget())
    return fields.Field(attribute=attribute or name, column_name=name, **kwargs)


def field_names(namespace: dict[str, Any]) -> list[str]:
    """The fields declared so far in a class body, in order. A ModelResource's `Meta.fields`
    must list its fields; taken from the declarations, a column is still added in one place."""
    return [name for name, value in namespace.items() if isinstance(value, fields.Field)]


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
    channel = Column(
        "channel",
        required=True,
        level=ORDER,
        help_text="Channel code, as in the admin (e.g. FLIPKART).",
        example="FLIPKART",
        aliases=["channel_code"],
        widget=widgets.ForeignKeyWidget(Channel, "code"),
    )
    channel_order_id = Column(
        "channel_order_id",
        required=True,
        level=ORDER,
        parse=parsing.code_of(100, "order id"),
        help_text="The channel's order id.",
        example="OD1234567890",
        aliases=["order_id", "display_order_code", "sale_order_code"],
    )
    order_date = Column(
        "order_date",
        required=True,
        level=ORDER,
        parse=parsing.order_date,
        help_text="2024-05-01, 2024-05-01 14:30, 2024-05-01T14:30:00+05:30 or 01/05/2024 (day "
        "first); without an offset, in the server's time zone. Not in the future.",
        example="2024-05-01 14:30",
        aliases=["date"],
    )
    payment_method = Column(
        "payment_method",
        required=True,
        level=ORDER,
        parse=parsing.payment_method,
        help_text="COD or PREPAID.",
        example="PREPAID",
        aliases=["payment", "shipping_method"],
    )
    channel_line_id = Column(
        "channel_line_id",
        "channel_order_item_id",
        required=True,
        level=LINE,
        parse=parsing.code_of(100, "line id"),
        help_text="The channel's id of the order line, unique within the order.",
        example="OD1234567890-1",
        aliases=["line_id", "channel_order_item_id", "order_item_id"],
    )
    sku = Column(
        "sku",
        required=True,
        level=LINE,
        parse=parsing.text_of(100, required=True),
        help_text="SKU code, as in the admin.",
        example="TSHIRT-RED",
        aliases=["sku_code", "item_sku_code"],
    )
    quantity = Column(
        "quantity",
        required=True,
        level=LINE,
        parse=parsing.quantity,
        help_text=f"Units of the line, 1 to {parsing.MAX_LINE_QUANTITY}; each becomes a unit "
        "of the order.",
        example="2",
        aliases=["qty"],
    )
    selling_price = Column(
        "selling_price",
        required=True,
        level=LINE,
        parse=parsing.money,
        help_text="Price of one unit, e.g. 499.00 (2 decimals).",
        example="499.00",
        aliases=["price", "unit_price"],
    )
    shipping_charges = Column(
        "shipping_charges",
        level=LINE,
        parse=parsing.optional_money,
        help_text="Shipping charged per unit; empty means 0.",
        example="0",
        aliases=["shipping"],
    )
    customer_name = Column(
        "customer_name",
        level=ORDER,
        parse=parsing.text_of(200),
        example="Asha Rao",
        aliases=["name"],
    )
    customer_phone = Column(
        "customer_phone",
        level=ORDER,
        parse=parsing.phone,
        help_text="Digits, spaces, +, - and brackets.",
        example="+91 98450 00000",
        aliases=["phone", "mobile"],
    )
    customer_email = Column(
        "customer_email",
        level=ORDER,
        parse=parsing.email,
        example="asha@example.com",
        aliases=["email", "e_mail"],
    )
    address_line1 = Column(
        "address_line1",
        "ship_address_line1",
        level=ORDER,
        parse=parsing.text_of(255),
        example="12 MG Road",
        aliases=["address", "ship_address_line1"],
    )
    address_line2 = Column(
        "address_line2",
        "ship_address_line2",
        level=ORDER,
        parse=parsing.text_of(255),
        aliases=["ship_address_line2"],
    )
    city = Column(
        "city",
        "ship_city",
        level=ORDER,
        parse=parsing.text_of(100),
        example="Bengaluru",
        aliases=["ship_city"],
    )
    state = Column(
        "state",
        "ship_state",
        level=ORDER,
        parse=parsing.text_of(100),
        example="Karnataka",
        aliases=["ship_state"],
    )
    pincode = Column(
        "pincode",
        "ship_pincode",
        required=True,
        level=ORDER,
        parse=parsing.pincode,
        # its check depends on the country: the streaming importer passes the row's country;
        # the library's import leaves it to the service
        widget=ValueWidget(),
        help_text="Shipping pincode: 6 digits in India.",
        example="560001",
        aliases=["pin", "pin_code", "ship_pincode", "postal_code"],
    )
    country = Column(
        "country",
        "ship_country",
        level=ORDER,
        parse=parsing.country,
        help_text="2-letter code; empty means IN.",
        example="IN",
        aliases=["ship_country"],
    )
    buyer_gstin = Column(
        "buyer_gstin",
        level=ORDER,
        parse=parsing.gstin,
        help_text="The buyer's GSTIN, for a business (B2B) order: printed on its invoices. "
        "Empty for a consumer.",
        example="29ABCDE1234F1ZW",
        aliases=["gstin", "customer_gstin"],
    )
    order_code = col("order_code", "code", readonly=True)
    order_status = col("order_status", "status", readonly=True)
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
        import_id_fields = ["channel", "channel_order_id"]

    Meta.fields = field_names(locals())  # every field above, in this order

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
            order_id = parsing.unescape(str(values.get("channel_order_id", "")).strip())
            lines[(str(values.get("channel", "")).strip(), order_id)].append(values)
        self._lines = dict(lines)

    def skip_row(self, instance, original, row, import_validation_errors=None) -> bool:
        # An order already there (or made by an earlier row of this file) is not touched.
        return instance.pk is not None

    def do_instance_save(self, instance: Order, is_create: bool) -> None:
        """A new order (its first row): create it, with the lines of all its rows."""
        if not is_create:
            return
        where = f"Order {instance.channel_order_id}"
        order = {c.name: getattr(instance, c.attribute) for c in ORDER_LEVEL}
        missing = [c.name for c in ORDER_LEVEL if c.required and order[c.name] in (None, "")]
        if missing:
            raise ValidationError(f"{where}: required value is missing: {', '.join(missing)}")
        rows = self._lines.get((instance.channel.code, instance.channel_order_id), [])
        lines = [_parsed_line(values, where) for values in rows]
        created = order_create(order_input(order, lines), actor=self.actor, allocate=True)
        instance.pk = created.pk


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


INVENTORY_TYPES = {
    **{t.upper(): t for t in InventoryType.values},
    "GOOD": InventoryType.GOOD_INVENTORY,
    "BAD": InventoryType.BAD_INVENTORY,
    "VIRTUAL": InventoryType.VIRTUAL_INVENTORY,
}


class InventoryResource(ExportRowsMixin, resources.Resource):
    facility = Column(
        "facility",
        required=True,
        help_text="Facility code.",
        example="WH1",
        aliases=["facility_code"],
    )
    shelf = Column(
        "shelf",
        required=True,
        parse=parsing.text_of(40, required=True),
        help_text="Shelf code in that facility (the shelf must exist).",
        example="A1",
        aliases=["shelf_code"],
    )
    sku = Column(
        "sku",
        required=True,
        parse=parsing.text_of(100, required=True),
        help_text="SKU code.",
        example="TSHIRT-RED",
        aliases=["sku_code"],
    )
    quantity = Column(
        "quantity",
        required=True,
        parse=parsing.whole_number(1_000_000),
        help_text="Units to add to the shelf (1 to 1,000,000).",
        example="25",
        aliases=["qty"],
    )
    inventory_type = Column(
        "inventory_type",
        parse=parsing.one_of(INVENTORY_TYPES, default=InventoryType.GOOD_INVENTORY),
        help_text="GOOD_INVENTORY (default), BAD_INVENTORY, QC_REJECTED or VIRTUAL_INVENTORY.",
        example="GOOD_INVENTORY",
        aliases=["type"],
    )
    blocked_quantity = col("blocked_quantity")
    available = col("available")
    updated_at = col("updated_at")


class ServiceabilityResource(ExportRowsMixin, resources.Resource):
    pincode = Column(
        "pincode",
        required=True,
        parse=parsing.pincode,
        help_text="6-digit pincode.",
        example="560001",
        aliases=["pin", "pin_code"],
    )
    payment_method = Column(
        "payment_method",
        required=True,
        parse=parsing.payment_method,
        help_text="COD or PREPAID (Uniware's 'Shipping Method').",
        example="COD",
        aliases=["shipping_method", "payment"],
    )
    shipping_provider = Column(
        "shipping_provider",
        required=True,
        help_text="Shipping provider code.",
        example="BLUEDART",
        aliases=["provider", "shipping_provider_code", "courier"],
    )
    priority = Column(
        "priority",
        parse=parsing.whole_number(32767, required=False, default=1),
        help_text="1 is tried first; empty means 1.",
        example="1",
    )


class ListingResource(ExportRowsMixin, resources.Resource):
    """Channel listings (issue 16): created or updated by (channel, product id, variant id);
    a SKU code maps the listing (its waiting orders are released), empty leaves it as it is."""

    channel = Column("channel", required=True, help_text="Channel code.", example="FLIPKART")
    product_id = Column(
        "product_id",
        required=True,
        parse=parsing.text_of(100, required=True),
        help_text="The channel's product id.",
        example="P-881",
        aliases=["productid", "listing_id"],
    )
    variant_id = Column(
        "variant_id", parse=parsing.text_of(100), help_text="Variant id.", example="V-881-M"
    )
    seller_sku = Column(
        "seller_sku", parse=parsing.text_of(100), help_text="The channel's SKU text.", example=""
    )
    sku = Column("sku", help_text="Our SKU code (empty: not mapped).", example="TSHIRT-RED")
    sync_enabled = Column(
        "sync_enabled",
        parse=parsing.one_of(parsing.YES_NO, default="yes"),
        help_text="yes (default) or no: push its quantity.",
        example="yes",
    )
    buffer = Column(
        "buffer",
        parse=parsing.units_or_none(1_000_000),
        help_text="Units held back from the channel (empty: 0).",
        example="2",
    )
    pushed_quantity = col("pushed_quantity")
    why = col("why")
    pushed_at = col("pushed_at")
    push_status = col("push_status")


def columns_of(resource: type[resources.Resource]) -> list[Column]:
    """The file columns of a resource, in the file's order."""
    declared = resource.fields
    return [
        declared[name]
        for name in resource().get_export_order()
        if isinstance(declared.get(name), Column)
    ]


def aliases_of(columns: list[Column]) -> dict[str, str]:
    """Other header spellings -> column name."""
    return {alias: column.name for column in columns for alias in column.aliases}


ORDER_COLUMNS = columns_of(OrderLineResource)
ORDER_LEVEL = [c for c in ORDER_COLUMNS if c.level == ORDER]
LINE_LEVEL = [c for c in ORDER_COLUMNS if c.level == LINE]
COLUMNS = {
    "ORDERS": ORDER_COLUMNS,
    "INVENTORY": columns_of(InventoryResource),
    "SERVICEABILITY": columns_of(ServiceabilityResource),
    "LISTINGS": columns_of(ListingResource),
}
_ORDER_TARGETS = [(c.name, c.attribute) for c in ORDER_LEVEL]
_LINE_TARGETS = [(c.name, c.attribute) for c in LINE_LEVEL]


def order_input(order: dict[str, Any], lines: Iterable[dict[str, Any]]) -> OrderInput:
    """The service's input for an order whose cells are parsed (values by column name): each
    column fills the attribute it declares; an empty (None) value leaves the input's default."""
    return OrderInput(
        **{attr: value for name, attr in _ORDER_TARGETS if (value := order.get(name)) is not None},
        lines=[LineInput(**{attr: line[name] for name, attr in _LINE_TARGETS}) for line in lines],
    )


def _parsed_line(values: dict, where: str) -> dict[str, Any]:
    """A line's cells (a row of the library's dataset) parsed by their columns."""
    line = {}
    for column in LINE_LEVEL:
        raw = values.get(column.name)
        try:
            line[column.name] = column.parse("" if raw is None else str(raw).strip())
        except parsing.CellError as exc:
            line_id = values.get("channel_line_id")
            raise ValidationError(f"{where}: line {line_id!r}: {column.name} {exc}") from None
    return line
