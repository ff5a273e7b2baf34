"""Shopify Admin GraphQL API: the operations we use, their variables and the enums of their
replies, in one place.

Written from Shopify's Admin GraphQL reference (orders, nodes, fulfillmentOrders,
fulfillmentCreate, orderCancel, inventorySetQuantities) and its rate-limit guide (a leaky
bucket of query cost: `extensions.cost.throttleStatus`). The adapter sends each operation
by name; the simulator recognises it by that name, checks its variables against these
shapes (a mismatch is the GraphQL error Shopify gives for a variable of the wrong type), and
answers in the shapes its queries select.
"""

from __future__ import annotations

from .shapes import BOOLEAN, INTEGER, array, obj, string

API_VERSION = "2026-10"

# --- enums of the replies (values Shopify adds later must not break a reader) -------------

DISPLAY_FULFILLMENT_STATUSES = (
    "UNFULFILLED",
    "PARTIALLY_FULFILLED",
    "FULFILLED",
    "RESTOCKED",
    "PENDING_FULFILLMENT",
    "OPEN",
    "IN_PROGRESS",
    "ON_HOLD",
    "SCHEDULED",
    "REQUEST_DECLINED",
)
DISPLAY_FINANCIAL_STATUSES = (
    "PENDING",
    "AUTHORIZED",
    "PARTIALLY_PAID",
    "PAID",
    "PARTIALLY_REFUNDED",
    "REFUNDED",
    "VOIDED",
    "EXPIRED",
)
FULFILLMENT_DISPLAY_STATUSES = (
    "ATTEMPTED_DELIVERY",
    "CANCELED",
    "CONFIRMED",
    "DELIVERED",
    "FAILURE",
    "FULFILLED",
    "IN_TRANSIT",
    "LABEL_PRINTED",
    "LABEL_PURCHASED",
    "LABEL_VOIDED",
    "MARKED_AS_FULFILLED",
    "NOT_DELIVERED",
    "OUT_FOR_DELIVERY",
    "PICKED_UP",
    "READY_FOR_PICKUP",
    "SUBMITTED",
)
FULFILLMENT_ORDER_STATUSES = (
    "OPEN",
    "IN_PROGRESS",
    "CANCELLED",
    "INCOMPLETE",
    "CLOSED",
    "SCHEDULED",
    "ON_HOLD",
)
RETURN_STATUSES = ("REQUESTED", "OPEN", "CLOSED", "DECLINED", "CANCELED")
ORDER_CANCEL_REASONS = ("CUSTOMER", "DECLINED", "FRAUD", "INVENTORY", "STAFF", "OTHER")
COD_GATEWAY = "Cash on Delivery (COD)"

# --- operations: name -> the shape of its variables, and its cost (requested) -------------

GID = string(minLength=1)
VARIABLES = {
    "Orders": obj(
        ("first", "query"),
        first={"type": "integer", "minimum": 1, "maximum": 250},
        after=string(),
        query=string(minLength=1),
    ),
    "OrderStatuses": obj(("ids",), ids=array(GID, minItems=1, maxItems=250)),
    "FulfillmentOrders": obj(("id",), id=GID),
    "FulfillmentCreate": obj(
        ("fulfillment",),
        fulfillment=obj(
            ("lineItemsByFulfillmentOrder",),
            notifyCustomer=BOOLEAN,
            trackingInfo=obj(company=string(), number=string(), url=string()),
            lineItemsByFulfillmentOrder=array(
                obj(
                    ("fulfillmentOrderId",),
                    fulfillmentOrderId=GID,
                    fulfillmentOrderLineItems=array(
                        obj(("id", "quantity"), id=GID, quantity={"type": "integer", "minimum": 1})
                    ),
                ),
                minItems=1,
            ),
        ),
    ),
    "OrderCancel": obj(
        ("orderId", "reason", "refund", "restock"),
        orderId=GID,
        reason=string(enum=list(ORDER_CANCEL_REASONS)),
        refund=BOOLEAN,
        restock=BOOLEAN,
        notifyCustomer=BOOLEAN,
        staffNote=string(),
    ),
    "InventoryLevels": obj(("ids", "locationId"), ids=array(GID, minItems=1), locationId=GID),
    "InventorySet": obj(
        ("input",),
        input=obj(
            ("name", "reason", "quantities"),
            name=string(enum=["available", "on_hand"]),
            reason=string(minLength=1),
            referenceDocumentUri=string(),
            quantities=array(
                obj(
                    ("inventoryItemId", "locationId", "quantity", "changeFromQuantity"),
                    inventoryItemId=GID,
                    locationId=GID,
                    quantity=INTEGER,
                    changeFromQuantity={"type": "integer"},  # null opts out (API 2026-04+)
                ),
                minItems=1,
                maxItems=250,
            ),
        ),
    ),
}


def cost(operation: str, variables: dict) -> int:
    """A query's requested cost, as Shopify estimates it: one per object a connection may
    return, its nested connections included; a mutation costs 10."""
    if operation == "Orders":
        return 2 + int(variables.get("first") or 0) * 3
    if operation in ("OrderStatuses", "InventoryLevels"):
        return 1 + len(variables.get("ids") or []) * 3
    if operation == "FulfillmentOrders":
        return 12
    return 10


# Leaky bucket defaults of a standard plan (points; points per second).
MAXIMUM_AVAILABLE = 2000.0
RESTORE_RATE = 100.0
