from __future__ import annotations

from django.db import models
from django.db.models.functions import Replace, Right, Upper
from django_fsm import FSMField, transition

from inventory.models import PaymentMethod
from uniware.core.fsm import guard

# A phone's last ten digits, however it was typed ("+91 98450-11111"): searched by
# `orders.selectors.customer_filter` through the index on this expression.
PHONE_DIGITS = Right(
    Replace(
        Replace(Replace("customer_phone", models.Value(" ")), models.Value("-")), models.Value("+")
    ),
    10,
)


class OrderStatus(models.TextChoices):
    PENDING_VERIFICATION = "PENDING_VERIFICATION"
    CREATED = "CREATED"
    PROCESSING = "PROCESSING"
    COMPLETE = "COMPLETE"
    CANCELLED = "CANCELLED"


class OrderKind(models.TextChoices):
    NORMAL = "NORMAL", "Channel order"
    RESHIPMENT = "RESHIPMENT", "Reshipment of courier-returned units"
    REPLACEMENT = "REPLACEMENT", "Replacement"


class Order(models.Model):
    """A customer's order from one channel. Its status is derived from its units
    (`orders.services.order_refresh_status`), never set by hand.

    Reshipment and replacement orders are made by the returns services; `source_order`
    links them to the order they follow up (their channel order id is `<original>-RS<n>` or
    `<original>-R<n>`: the channel does not know them)."""

    code = models.CharField("order code", max_length=100, unique=True)
    # db_index=False: the (channel, channel order id) and (channel, status) indexes serve it
    channel = models.ForeignKey(
        "channels.Channel", on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    channel_order_id = models.CharField("channel order id", max_length=100)
    order_date = models.DateTimeField(db_index=True)
    dispatch_by = models.DateTimeField(
        "dispatch by",
        null=True,
        blank=True,
        help_text="The channel's latest ship date, when it gives one (Amazon's LatestShipDate).",
    )
    status = FSMField(
        max_length=24, choices=OrderStatus.choices, default=OrderStatus.CREATED, editable=False
    )
    payment_method = models.CharField(max_length=10, choices=PaymentMethod.choices)
    third_party_shipping = models.BooleanField(
        default=False, help_text="The channel ships: it supplies provider and tracking number."
    )
    currency = models.CharField(max_length=3, default="INR")
    on_hold = models.BooleanField(default=False, editable=False)
    verification_reason = models.CharField(
        max_length=255,
        blank=True,
        editable=False,
        help_text="Why the order waits in PENDING_VERIFICATION when it is not the channel's "
        'verification: "unmapped listing P-881/V-881-M on FLIPKART".',
    )
    priority = models.SmallIntegerField(default=0, help_text="Higher is processed first.")
    item_count = models.PositiveIntegerField("units", default=0, editable=False)
    total_amount = models.DecimalField(max_digits=14, decimal_places=2, default=0, editable=False)

    customer_name = models.CharField(max_length=200, blank=True)
    customer_email = models.EmailField(blank=True)
    customer_phone = models.CharField(max_length=20, blank=True)
    ship_address_line1 = models.CharField("address line 1", max_length=255, blank=True)
    ship_address_line2 = models.CharField("address line 2", max_length=255, blank=True)
    ship_city = models.CharField("city", max_length=100, blank=True)
    ship_state = models.CharField("state", max_length=100, blank=True)
    ship_country = models.CharField("country", max_length=2, default="IN")
    ship_pincode = models.CharField("pincode", max_length=10)
    billing_address = models.JSONField(default=dict, blank=True)
    buyer_gstin = models.CharField(
        "buyer GSTIN",
        max_length=15,
        blank=True,
        help_text="For a business buyer (B2B): printed on the invoice.",
    )
    kind = models.CharField(
        max_length=12, choices=OrderKind.choices, default=OrderKind.NORMAL, editable=False
    )
    source_order = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        editable=False,
        related_name="follow_up_orders",
        help_text="The order this reshipment or replacement order follows up.",
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "channel_order_id"], name="uniq_channel_order"
            )
        ]
        indexes = [
            models.Index(fields=["status", "-id"], name="order_status_idx"),
            models.Index(fields=["channel", "status", "-id"], name="order_channel_status_idx"),
            models.Index(fields=["channel_order_id"], name="order_channel_order_id_idx"),
            # Search by customer (`orders.selectors.customer_filter`); the name's trigram index
            # (pg_trgm, PostgreSQL only) is made by migration 0009, outside this list.
            models.Index(PHONE_DIGITS, name="order_phone_idx"),
            models.Index(Upper("customer_email"), name="order_email_idx"),
            models.Index(fields=["ship_pincode"], name="order_pincode_idx"),
        ]
        permissions = [
            ("allocate_order", "Can allocate orders"),
            ("hold_order", "Can hold and unhold orders"),
            ("accept_order", "Can accept orders pending verification"),
            ("cancel_order", "Can cancel orders and units"),
            ("sync_order", "Can sync the status of selected orders from their channel"),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def audit_order_id(self) -> int:
        return self.pk

    # Transitions: the services pick the one that reaches the status derived from the units.
    @transition(field=status, source=OrderStatus.PENDING_VERIFICATION, target=OrderStatus.CREATED)
    def accept(self) -> None:
        """The seller (or the channel) confirms a PENDING_VERIFICATION order."""

    @transition(field=status, source=OrderStatus.CREATED, target=OrderStatus.PROCESSING)
    def start_processing(self) -> None:
        """A unit moved past allocation (picking, invoicing ...)."""

    @transition(
        field=status,
        source=[OrderStatus.CREATED, OrderStatus.PROCESSING],
        target=OrderStatus.COMPLETE,
    )
    def complete(self) -> None:
        """Every unit not cancelled has been dispatched. Returns do not reopen it."""

    @transition(
        field=status,
        source=[OrderStatus.PENDING_VERIFICATION, OrderStatus.CREATED, OrderStatus.PROCESSING],
        target=OrderStatus.CANCELLED,
    )
    def cancel(self) -> None:
        """Every unit is cancelled."""


class OrderItemStatus(models.TextChoices):
    CREATED = "CREATED"
    FULFILLABLE = "FULFILLABLE"
    UNFULFILLABLE = "UNFULFILLABLE"
    LOCATION_NOT_SERVICEABLE = "LOCATION_NOT_SERVICEABLE"
    PICKING_FOR_STAGING = "PICKING_FOR_STAGING"
    PICKING_FOR_INVOICING = "PICKING_FOR_INVOICING"
    MANIFESTED = "MANIFESTED"
    DISPATCHED = "DISPATCHED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"
    REPLACED = "REPLACED"
    RESHIPPED = "RESHIPPED"


# A unit may be dispatched from any of these (by a manifest, by force or by its channel).
ITEM_DISPATCHABLE = [
    OrderItemStatus.FULFILLABLE,
    OrderItemStatus.UNFULFILLABLE,
    OrderItemStatus.LOCATION_NOT_SERVICEABLE,
    OrderItemStatus.PICKING_FOR_STAGING,
    OrderItemStatus.PICKING_FOR_INVOICING,
    OrderItemStatus.MANIFESTED,
]
ITEM_PRE_DISPATCH = [OrderItemStatus.CREATED, *ITEM_DISPATCHABLE]
ITEM_DISPATCHED_OR_LATER = [
    OrderItemStatus.DISPATCHED,
    OrderItemStatus.DELIVERED,
    OrderItemStatus.REPLACED,
    OrderItemStatus.RESHIPPED,
]
ITEM_BLOCKING_STOCK = [
    OrderItemStatus.FULFILLABLE,
    OrderItemStatus.LOCATION_NOT_SERVICEABLE,
    OrderItemStatus.PICKING_FOR_STAGING,
    OrderItemStatus.PICKING_FOR_INVOICING,
    OrderItemStatus.MANIFESTED,
]


class ReshipOption(models.TextChoices):
    """The three reship options of seed 001, and what each does to the pending return."""

    WAIT_FOR_RETURN = "WAIT_FOR_RETURN", "Wait for return & reship"
    RESHIP_EXPECT_RETURN = "RESHIP_EXPECT_RETURN", "Reship immediately & expect return"
    RESHIP_NO_RETURN = "RESHIP_NO_RETURN", "Reship immediately & don't expect return"


@guard("the unit has no stock blocked")
def _has_stock(item: OrderItem) -> bool:
    return item.inventory_id is not None


class OrderItem(models.Model):
    """One unit of an order line (a line of quantity 3 is three rows, codes <line>-0..2)."""

    # db_index=False: the unique (order, code) index serves lookups by order
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items", db_index=False)
    code = models.CharField(max_length=120)
    channel_order_item_id = models.CharField("channel line id", max_length=100)
    # Null only while the channel's listing is unmapped (the order waits in
    # PENDING_VERIFICATION, its units CREATED): `listings.services.map_listings` fills it.
    sku = models.ForeignKey(
        "inventory.Sku",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="order_items",
        verbose_name="SKU",
    )
    channel_product_id = models.CharField(max_length=100, blank=True)
    variant_id = models.CharField(max_length=100, blank=True)
    title = models.CharField(max_length=255, blank=True)
    selling_price = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    shipping_charges = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    status = FSMField(
        max_length=32,
        choices=OrderItemStatus.choices,
        default=OrderItemStatus.CREATED,
        editable=False,
    )
    facility = models.ForeignKey(
        "inventory.Facility", null=True, blank=True, on_delete=models.PROTECT, editable=False
    )
    inventory = models.ForeignKey(
        "inventory.Inventory",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        editable=False,
        related_name="blocked_units",
        help_text="The stock row this unit has blocked (until dispatch or release).",
    )
    shipment = models.ForeignKey(
        "orders.Shipment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        editable=False,
        related_name="items",
    )
    cancellation_reason = models.CharField(max_length=100, blank=True)
    source_item = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        editable=False,
        related_name="follow_ups",
        help_text="The unit this one reships or replaces.",
    )
    reship_option = models.CharField(
        max_length=32,
        choices=ReshipOption.choices,
        blank=True,
        editable=False,
        help_text="Chosen when a courier-returned unit is reshipped (seed 001).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["order_id", "id"]
        verbose_name = "order item"
        constraints = [
            models.UniqueConstraint(fields=["order", "code"], name="uniq_item_code_per_order"),
            models.CheckConstraint(
                condition=models.Q(sku__isnull=False) | models.Q(status="CREATED"),
                name="item_unmapped_only_created",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "sku"], name="item_status_sku_idx"),
            # units waiting for their channel listing to be mapped (listings.services)
            models.Index(
                fields=["channel_product_id", "variant_id"],
                name="item_unmapped_idx",
                condition=models.Q(sku__isnull=True),
            ),
        ]
        permissions = [
            ("reship_orderitem", "Can reship courier-returned units"),
            ("replace_orderitem", "Can create replacement orders"),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def audit_order_id(self) -> int:
        return self.order_id

    @transition(
        field=status,
        source=[
            OrderItemStatus.CREATED,
            OrderItemStatus.UNFULFILLABLE,
            OrderItemStatus.LOCATION_NOT_SERVICEABLE,
        ],
        target=OrderItemStatus.FULFILLABLE,
        conditions=[_has_stock],
    )
    def allocate(self) -> None:
        """Stock is blocked for the unit in a facility that can ship it."""

    @transition(field=status, source=OrderItemStatus.CREATED, target=OrderItemStatus.UNFULFILLABLE)
    def mark_unfulfillable(self) -> None:
        """No facility has stock; retried when stock arrives."""

    @transition(
        field=status,
        source=[
            OrderItemStatus.CREATED,
            OrderItemStatus.UNFULFILLABLE,
            OrderItemStatus.FULFILLABLE,
        ],
        target=OrderItemStatus.LOCATION_NOT_SERVICEABLE,
        conditions=[_has_stock],
    )
    def mark_not_serviceable(self) -> None:
        """Stock is blocked but no provider of the facility serves the pincode/payment."""

    @transition(
        field=status,
        source=[OrderItemStatus.PICKING_FOR_STAGING, OrderItemStatus.PICKING_FOR_INVOICING],
        target=OrderItemStatus.UNFULFILLABLE,
    )
    def mark_not_found(self) -> None:
        """Not found on its shelf when its picklist was received: it left its shipment and
        its stock row (`orders.services.picking`), and waits to be allocated again."""

    @transition(
        field=status, source=OrderItemStatus.FULFILLABLE, target=OrderItemStatus.PICKING_FOR_STAGING
    )
    def pick_for_staging(self) -> None:
        pass

    @transition(
        field=status,
        source=[OrderItemStatus.FULFILLABLE, OrderItemStatus.PICKING_FOR_STAGING],
        target=OrderItemStatus.PICKING_FOR_INVOICING,
    )
    def pick_for_invoicing(self) -> None:
        pass

    @transition(
        field=status,
        source=OrderItemStatus.PICKING_FOR_INVOICING,
        target=OrderItemStatus.MANIFESTED,
    )
    def manifest(self) -> None:
        pass

    @transition(
        field=status,
        source=OrderItemStatus.MANIFESTED,
        target=OrderItemStatus.PICKING_FOR_INVOICING,
    )
    def unmanifest(self) -> None:
        """Its shipment was taken off an open manifest."""

    @transition(
        field=status,
        source=ITEM_DISPATCHABLE,
        target=OrderItemStatus.DISPATCHED,
    )
    def dispatch(self) -> None:
        """Left the warehouse (manifest close, force dispatch, or the channel says so)."""

    @transition(field=status, source=OrderItemStatus.DISPATCHED, target=OrderItemStatus.DELIVERED)
    def deliver(self) -> None:
        pass

    @transition(field=status, source=ITEM_PRE_DISPATCH, target=OrderItemStatus.CANCELLED)
    def cancel(self) -> None:
        """Cancelled before dispatch; the stage decides how stock comes back."""

    @transition(
        field=status,
        source=[OrderItemStatus.DISPATCHED, OrderItemStatus.DELIVERED],
        target=OrderItemStatus.REPLACED,
    )
    def replace(self) -> None:
        """A replacement order was created for it."""

    @transition(field=status, source=OrderItemStatus.DISPATCHED, target=OrderItemStatus.RESHIPPED)
    def reship(self) -> None:
        """Courier-returned and sent out again."""
