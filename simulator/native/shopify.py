"""Shopify Admin GraphQL API (a seller's own store), played over the simulator's store.

Served at `/shopify/<CODE>/admin/api/<version>/graphql.json` with the header
`X-Shopify-Access-Token` (the store channel's password). Operations are recognised by their
name (`query Orders(...)`), their variables checked against `shopify_shapes`; a reply carries
`extensions.cost` with the throttle status of a leaky bucket per channel, and a query that
costs more than is available is answered `THROTTLED` (HTTP 200), as Shopify does.

How the store's contract orders read as Shopify orders (ids are `gid://shopify/Order/<id>`,
`gid://shopify/LineItem/<orderItemId>`, variants `gid://shopify/ProductVariant/<variantId>`):
- CREATED lines are unfulfilled; DISPATCHED ones are in a fulfillment IN_TRANSIT (with the
  line's courier and tracking number), DELIVERED in one DELIVERED, COURIER_RETURN in one
  NOT_DELIVERED; RETURN_REQUESTED lines are fulfilled and in a return REQUESTED.
- A cancelled order has `cancelledAt`; a line's cancelled units are gone from its
  `currentQuantity` (an order edit).
- PENDING_VERIFICATION is an order whose fulfilment is ON_HOLD (the merchant checks it).
- An order's `"shopify"` object, when a test sets one, overrides fields of the order node
  (an unknown `displayFulfillmentStatus`, ...).
Writes are recorded through the store's contract records (`dispatches`, `cancels`,
`inventory`); inventory levels live per channel and location (`set_available`).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from ..contract import cancelled_units, iso
from ..faults import FaultRule
from . import LeakyBucket, NativeRequest, Reply, last_changed, register
from . import shopify_shapes as shapes
from .shapes import problems

PATH = re.compile(r"/admin/api/(\d{4}-\d{2})/graphql\.json")
OPERATION = re.compile(r"^\s*(query|mutation)\s+(\w+)")
SHIPPED = {"DISPATCHED": "IN_TRANSIT", "DELIVERED": "DELIVERED", "COURIER_RETURN": "NOT_DELIVERED"}
SHIPPED["RETURN_REQUESTED"] = "DELIVERED"
CONTRACT_OPERATION = {
    "Orders": ("GET", "/orders"),
    "OrderStatuses": ("GET", "/orders"),
    "FulfillmentOrders": ("GET", "/orders/fulfillment-orders"),
    "FulfillmentCreate": ("POST", "/orders/dispatch"),
    "OrderCancel": ("POST", "/orders/cancel"),
    "InventoryLevels": ("GET", "/inventory"),
    "InventorySet": ("POST", "/updateInventory"),
}


def gid(kind: str, value: str) -> str:
    return f"gid://shopify/{kind}/{value}"


def tail(value: str) -> str:
    return value.rsplit("/", 1)[-1]


def bucket_key(store: Any, code: str) -> str:
    """A channel's cost bucket: one per store (tests run many simulators in one process)."""
    return f"{id(store)}/{code}"


def settings(store: Any, code: str) -> dict:
    with store.lock:
        conf = store._channel(code).native.setdefault("shopify", {})
        conf.setdefault("levels", {})
        return conf


def configure(store: Any, code: str, **values: Any) -> dict:
    """A channel's Shopify settings: maximumAvailable, restoreRate (the cost bucket)."""
    with store.lock:
        settings(store, code).update(values)
        return settings(store, code)


def set_available(store: Any, code: str, variant_id: str, location: str, quantity: int) -> None:
    """The "available" quantity Shopify holds for a variant at a location (a sale there)."""
    with store.lock:
        settings(store, code)["levels"][(variant_id, location)] = quantity


def available(store: Any, code: str, variant_id: str, location: str) -> int:
    with store.lock:
        return settings(store, code)["levels"].get((variant_id, location), 0)


class ShopifyDialect:
    name = "shopify"

    def __init__(self) -> None:
        self.bucket = LeakyBucket()

    def _operation_name(self, request: NativeRequest) -> str:
        body = request.body
        query = body.get("query") if isinstance(body, dict) else None
        match = OPERATION.match(query) if isinstance(query, str) else None
        return match[2] if match else ""

    def operation(self, request: NativeRequest) -> tuple[str, str]:
        name = self._operation_name(request)
        request.notes["shopifyOperation"] = name
        return CONTRACT_OPERATION.get(name, (request.method, request.path))

    def fault(self, rule: FaultRule, reply: Reply) -> Reply:
        status, _, headers = reply
        if rule.kind == "unauthorized":
            return 401, {"errors": "[API] Invalid API key or access token"}, {}
        if rule.kind == "garbage":
            return reply
        return status, {"errors": "Internal Server Error"}, headers

    def call(self, request: NativeRequest) -> Reply:
        if not PATH.fullmatch(request.path) or request.method != "POST":
            return 404, {"errors": "Not Found"}, {}
        token = request.headers.get("X-Shopify-Access-Token")
        with request.store.lock:
            expected = request.store._channel(request.code).password
        if token != expected:
            return 401, {"errors": "[API] Invalid API key or access token"}, {}
        body = request.body
        name = request.notes.get("shopifyOperation", "")
        if name not in shapes.VARIABLES:
            return 200, _error(f"Unknown or unnamed operation {name!r}"), {}
        variables = body.get("variables") or {}
        found = problems(variables, shapes.VARIABLES[name], "variables")
        if found:
            request.notes["invalid"] = found
            return 200, _error("Variable invalid: " + "; ".join(found), "INVALID_VARIABLE"), {}
        return self._run(request, name, variables)

    def _run(self, request: NativeRequest, name: str, variables: dict) -> Reply:
        conf = settings(request.store, request.code)
        maximum = float(conf.get("maximumAvailable", shapes.MAXIMUM_AVAILABLE))
        rate = float(conf.get("restoreRate", shapes.RESTORE_RATE))
        requested = shapes.cost(name, variables)
        ok, level = self.bucket.spend(
            bucket_key(request.store, request.code), requested, maximum, rate
        )
        status = {"maximumAvailable": maximum, "currentlyAvailable": level, "restoreRate": rate}
        extensions = {"cost": {"requestedQueryCost": requested, "throttleStatus": status}}
        if not ok:
            request.notes["throttled"] = True
            reply = _error("Throttled", "THROTTLED")
            return 200, {**reply, "extensions": extensions}, {}
        data = getattr(self, f"op_{name}")(request, variables)
        extensions["cost"]["actualQueryCost"] = requested
        return 200, {"data": data, "extensions": extensions}, {}

    # --- queries ----------------------------------------------------------------------

    def op_Orders(self, request: NativeRequest, variables: dict) -> dict:
        low, high = _updated_range(variables["query"])
        rows = []
        for order in request.store.all_orders(request.code):
            updated = last_changed(order)
            if (low is None or updated >= low) and (high is None or updated <= high):
                rows.append((updated, order["id"], order))
        rows.sort(key=lambda r: (r[0], r[1]))
        offset = int(variables.get("after") or 0)
        first = variables["first"]
        page = rows[offset : offset + first]
        more = offset + first < len(rows)
        return {
            "orders": {
                "nodes": [order_node(o) for _, _, o in page],
                "pageInfo": {"hasNextPage": more, "endCursor": str(offset + len(page))},
            }
        }

    def op_OrderStatuses(self, request: NativeRequest, variables: dict) -> dict:
        ids = [tail(i) for i in variables["ids"]]
        found = {o["id"]: o for o in request.store.orders_by_ids(request.code, ids)}
        return {"nodes": [order_node(found[i]) if i in found else None for i in ids]}

    def op_FulfillmentOrders(self, request: NativeRequest, variables: dict) -> dict:
        order_id = tail(variables["id"])
        orders = request.store.orders_by_ids(request.code, [order_id])
        if not orders:
            return {"order": None}
        order = orders[0]
        lines = [
            {
                "id": gid("FulfillmentOrderLineItem", i["orderItemId"]),
                "remainingQuantity": _open(i) if i["status"] == "CREATED" else 0,
                "lineItem": {"id": gid("LineItem", i["orderItemId"])},
            }
            for i in order["orderItems"]
        ]
        status = "ON_HOLD" if order["orderStatus"] == "PENDING_VERIFICATION" else "OPEN"
        if status == "OPEN" and not any(line["remainingQuantity"] for line in lines):
            status = "CANCELLED" if order["orderStatus"] == "CANCELLED" else "CLOSED"
        node = {
            "id": gid("FulfillmentOrder", order_id),
            "status": status,
            "lineItems": {"nodes": lines},
        }
        return {"order": {"id": variables["id"], "fulfillmentOrders": {"nodes": [node]}}}

    def op_InventoryLevels(self, request: NativeRequest, variables: dict) -> dict:
        location = tail(variables["locationId"])
        nodes = []
        for variant in variables["ids"]:
            quantity = available(request.store, request.code, tail(variant), location)
            item = {"id": gid("InventoryItem", tail(variant))}
            level = {"quantities": [{"name": "available", "quantity": quantity}]}
            nodes.append({"id": variant, "inventoryItem": {**item, "inventoryLevel": level}})
        return {"nodes": nodes}

    # --- mutations --------------------------------------------------------------------

    def op_FulfillmentCreate(self, request: NativeRequest, variables: dict) -> dict:
        fulfillment = variables["fulfillment"]
        groups = fulfillment["lineItemsByFulfillmentOrder"]
        order_id = tail(groups[0]["fulfillmentOrderId"])
        entries = [
            {"orderItemId": tail(line["id"]), "quantity": line["quantity"]}
            for group in groups
            for line in group.get("fulfillmentOrderLineItems") or []
        ]
        body = {"orderId": order_id, "orderItems": entries}
        body["trackingInfo"] = fulfillment.get("trackingInfo") or {}
        reply = request.store.dispatch(request.code, body, {}, None)
        if reply["status"] == "SUCCESS":  # the lines are fulfilled: Shopify lists them so
            tracking = body["trackingInfo"]
            shipped = {
                "courierName": tracking.get("company", ""),
                "trackingNumber": tracking.get("number", ""),
            }
            changes = [
                {"orderId": order_id, "orderItemId": e["orderItemId"], "status": "DISPATCHED"}
                for e in entries
            ]
            request.store.apply_changes(request.code, [{**c, **shipped} for c in changes])
            node = {"id": gid("Fulfillment", f"{order_id}-{len(entries)}"), "status": "SUCCESS"}
            return {"fulfillmentCreate": {"fulfillment": node, "userErrors": []}}
        errors = [
            {"field": ["fulfillment"], "message": f.get("errorMessage", "")}
            for f in reply.get("orderItems", [])
        ]
        return {"fulfillmentCreate": {"fulfillment": None, "userErrors": errors}}

    def op_OrderCancel(self, request: NativeRequest, variables: dict) -> dict:
        order_id = tail(variables["orderId"])
        orders = request.store.orders_by_ids(request.code, [order_id])
        if not orders:
            error = {
                "field": ["orderId"],
                "message": f"Order {order_id} does not exist",
                "code": "NOT_FOUND",
            }
            return {"orderCancel": {"job": None, "orderCancelUserErrors": [error]}}
        items = [
            {"orderItemId": i["orderItemId"], "quantity": _open(i)}
            for i in orders[0]["orderItems"]
            if _open(i)
        ]
        body = {"orderId": order_id, "orderItems": items, "reason": variables["reason"]}
        reply = request.store.cancel(request.code, body, {}, None)
        errors = [
            {"field": ["orderId"], "message": f.get("errorMessage", ""), "code": "INVALID"}
            for f in reply.get("orderItems", [])
        ]
        if not errors and items:  # cancelled: Shopify lists the order so
            request.store.apply_changes(
                request.code, [{"orderId": order_id, "status": "CANCELLED"}]
            )
        job = None if errors else {"id": gid("Job", order_id), "done": False}
        return {"orderCancel": {"job": job, "orderCancelUserErrors": errors}}

    def op_InventorySet(self, request: NativeRequest, variables: dict) -> dict:
        errors, accepted = [], []
        for n, row in enumerate(variables["input"]["quantities"]):
            variant, location = tail(row["inventoryItemId"]), tail(row["locationId"])
            current = available(request.store, request.code, variant, location)
            expected = row.get("changeFromQuantity")
            if expected is not None and expected != current:
                errors.append(
                    {
                        "field": ["input", "quantities", str(n), "changeFromQuantity"],
                        "message": f"The specified compare quantity does not match the current "
                        f"quantity ({current}).",
                        "code": "CHANGE_FROM_QUANTITY_STALE",
                    }
                )
                continue
            accepted.append((n, variant, location, row["quantity"]))
        if accepted:  # through the store's record: fault rules on /updateInventory fail rows
            inventory = [
                {"productId": v, "variantId": v, "inventory": str(q), "facilityCode": loc}
                for _, v, loc, q in accepted
            ]
            reply = request.store.update_inventory(
                request.code, {"inventoryList": inventory}, {}, None
            )
            refused = {f["productId"]: f["errorMessage"] for f in reply["failedProductList"]}
            for n, variant, _, _ in accepted:
                if variant in refused:
                    field = ["input", "quantities", str(n), "quantity"]
                    errors.append({"field": field, "message": refused[variant], "code": "INVALID"})
            accepted = [row for row in accepted if row[1] not in refused]
        for _, variant, location, quantity in accepted:
            set_available(request.store, request.code, variant, location, quantity)
        group = {"reason": variables["input"]["reason"]} if accepted else None
        return {"inventorySetQuantities": {"inventoryAdjustmentGroup": group, "userErrors": errors}}


# --- the store's contract orders as Shopify order nodes ------------------------------------


def _open(item: dict) -> int:
    return item["quantity"] - cancelled_units(item)


def order_node(order: dict) -> dict:
    items = order["orderItems"]
    cancelled = order["orderStatus"] == "CANCELLED"
    fulfilled = [i for i in items if i["status"] in SHIPPED and _open(i)]
    open_lines = [i for i in items if i["status"] == "CREATED" and _open(i)]
    if order["orderStatus"] == "PENDING_VERIFICATION":
        display = "ON_HOLD"
    elif fulfilled and not open_lines:
        display = "FULFILLED"
    else:
        display = "PARTIALLY_FULFILLED" if fulfilled else "UNFULFILLED"
    address = order["shippingAddress"]
    node = {
        "id": gid("Order", order["id"]),
        "name": f"#{order['id']}",
        "createdAt": order["orderDate"],
        "updatedAt": iso(last_changed(order)),
        "cancelledAt": iso(last_changed(order)) if cancelled else None,
        "cancelReason": "CUSTOMER" if cancelled else None,
        "displayFulfillmentStatus": display,
        "displayFinancialStatus": "PENDING" if order["paymentType"] == "COD" else "PAID",
        "paymentGatewayNames": [
            shapes.COD_GATEWAY if order["paymentType"] == "COD" else "razorpay"
        ],
        "currencyCode": order.get("currency", "INR"),
        "email": address.get("email", ""),
        "phone": address.get("phone", ""),
        "shippingAddress": {
            "name": address.get("name", ""),
            "address1": address.get("addressLine1", ""),
            "address2": address.get("addressLine2", ""),
            "city": address.get("city", ""),
            "province": address.get("state", ""),
            "zip": address.get("pincode", ""),
            "countryCodeV2": address.get("country", "IN"),
            "phone": address.get("phone", ""),
        },
        "lineItems": {"nodes": [_line_node(i, cancelled) for i in items]},
        "fulfillments": [_fulfillment(order, i) for i in fulfilled],
        "returns": {"nodes": _returns(items)},
    }
    node.update(order.get("shopify") or {})
    return node


def _line_node(item: dict, cancelled: bool) -> dict:
    current = 0 if cancelled else _open(item)
    return {
        "id": gid("LineItem", item["orderItemId"]),
        "sku": item["sku"],
        "title": item["title"],
        "quantity": item["quantity"],
        "currentQuantity": current,
        "unfulfilledQuantity": current if item["status"] == "CREATED" else 0,
        "variant": {"id": gid("ProductVariant", item["variantId"])},
        "product": {"id": gid("Product", item["productId"])},
        "originalUnitPriceSet": {
            "shopMoney": {"amount": item["sellingPrice"], "currencyCode": "INR"}
        },
        **(item.get("shopify") or {}),
    }


def _fulfillment(order: dict, item: dict) -> dict:
    return {
        "id": gid("Fulfillment", f"{order['id']}-{item['orderItemId']}"),
        "status": "SUCCESS",
        "displayStatus": SHIPPED[item["status"]],
        "trackingInfo": [
            {"company": item.get("courierName", ""), "number": item.get("trackingNumber", "")}
        ],
        "fulfillmentLineItems": {
            "nodes": [
                {"lineItem": {"id": gid("LineItem", item["orderItemId"])}, "quantity": _open(item)}
            ]
        },
    }


def _returns(items: list[dict]) -> list[dict]:
    asked = [i for i in items if i["status"] == "RETURN_REQUESTED"]
    if not asked:
        return []
    lines = [
        {
            "quantity": _open(i),
            "returnReason": "OTHER" if i.get("returnReason") else "UNKNOWN",
            "customerNote": i.get("returnReason", ""),
            "fulfillmentLineItem": {"lineItem": {"id": gid("LineItem", i["orderItemId"])}},
        }
        for i in asked
    ]
    return [{"status": "REQUESTED", "returnLineItems": {"nodes": lines}}]


# --- requests ----------------------------------------------------------------------------


def _error(message: str, code: str = "BAD_REQUEST") -> dict:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


UPDATED = re.compile(r"updated_at:(>=|<=)'([^']+)'")


def _updated_range(query: str) -> tuple[datetime | None, datetime | None]:
    """`updated_at:>='…' AND updated_at:<='…'` of an orders search."""
    low = high = None
    for sign, value in UPDATED.findall(query):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        low, high = (moment, high) if sign == ">=" else (low, moment)
    return low, high


DIALECT = register(ShopifyDialect())
