"""Amazon Selling Partner API (Amazon.in), played over the simulator's store.

Served under `/amazon/<CODE>`: Login with Amazon (`POST /auth/o2/token`), the Tokens API
(`POST /tokens/2021-03-01/restrictedDataToken`), Orders v0 (`getOrders`, `getOrderItems`,
`confirmShipment`), Listings Items (`patchListingsItem`), Feeds (`amazon_feeds`) and Easy Ship
(`amazon_easyship`). Shapes: `amazon_shapes`.

How the store's contract orders read as Amazon orders:
- `OrderStatus` follows the items: the order PENDING_VERIFICATION → Pending; every unit
  cancelled → Canceled; none shipped → Unshipped; some → PartiallyShipped; all → Shipped.
- `thirdPartyShipping: true` (the channel ships) is an Easy Ship order (MFN with
  `EasyShipShipmentStatus`: CREATED → PendingPickUp, DISPATCHED → PickedUp, DELIVERED →
  Delivered, COURIER_RETURN → ReturningToSeller); the others are MFN without it.
- An order's `"amazon"` object, when a test sets one, overrides fields of the Amazon order
  (an unknown `OrderStatus`, `FulfillmentChannel: "AFN"`, ...).
- `ShippingAddress` and `BuyerInfo` come only with a Restricted Data Token for getOrders.
- getOrders never lists an order changed in the last `lagSeconds` (120), and refuses a
  `LastUpdatedBefore`/`CreatedBefore` later than two minutes ago, as Amazon does.
- Every operation has a token bucket per channel (`USAGE_PLANS`, or the channel's `rates`);
  a reply carries `x-amzn-RateLimit-Limit`; an empty bucket answers 429 QuotaExceeded.

Per-channel settings (`configure`): refreshToken, sellerId, marketplaceId, lagSeconds, rates,
feedPolls, feedEnd, gzipReports, easyShipSlots.
Writes (confirmShipment, patchListingsItem) are recorded through the store's contract records
(`dispatches`, `inventory`), so a test reads what any dialect sent in one place.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote

from ..contract import cancelled_units, iso, parse_iso
from ..faults import FaultRule
from . import LeakyBucket, NativeRequest, Reply, last_changed, register
from . import amazon_shapes as shapes
from .amazon_easyship import OPERATIONS as EASY_SHIP_OPERATIONS
from .amazon_easyship import EasyShipApi
from .amazon_feeds import FeedsApi, availability
from .amazon_feeds import operation_name as feed_operation
from .shapes import problems

INDIA = "A21TJRUUN4KGV"
SHIPPED_STATUSES = ("DISPATCHED", "DELIVERED", "RETURN_REQUESTED", "COURIER_RETURN")
EASY_SHIP = {
    "CREATED": "PendingPickUp",
    "DISPATCHED": "PickedUp",
    "DELIVERED": "Delivered",
    "COURIER_RETURN": "ReturningToSeller",
    "RETURN_REQUESTED": "Delivered",
    "CANCELLED": "LabelCanceled",
}
DEFAULTS = {
    "refreshToken": "Atzr|refresh",
    "sellerId": "A2SELLER",
    "marketplaceId": INDIA,
    "lagSeconds": 120,
    "pageSize": 100,  # getOrders' most per page (MaxResultsPerPage may ask fewer)
    "rates": {},
    "feedPolls": 0,  # getFeed calls answered IN_PROGRESS before a feed is processed
    "feedEnd": "DONE",  # how feeds end (FATAL, CANCELLED: unprocessed)
    "gzipReports": False,  # processing reports compressed (compressionAlgorithm GZIP)
    "easyShipSlots": True,  # Easy Ship offers handover slots (off: TimeSlotNotAvailable)
}
ORDERS = "/orders/v0/orders"
ORDER_PATH = re.compile(r"/orders/v0/orders/([^/]+)/(orderItems|shipmentConfirmation)")
LISTING_PATH = re.compile(r"/listings/2021-08-01/items/([^/]+)/([^/]+)")


def settings(store: Any, code: str) -> dict:
    with store.lock:
        channel = store._channel(code)
        return {**DEFAULTS, **channel.native.get("amazon", {})}


def configure(store: Any, code: str, **values: Any) -> dict:
    """Set a channel's Amazon settings (refreshToken, sellerId, marketplaceId, lagSeconds,
    rates {operation: [rate, burst]})."""
    with store.lock:
        channel = store._channel(code)
        channel.native.setdefault("amazon", {}).update(values)
    return settings(store, code)


def error(status: int, code: str, message: str, headers: dict | None = None) -> Reply:
    return status, {"errors": [{"code": code, "message": message}]}, headers or {}


class AmazonDialect:
    name = "amazon"

    def __init__(self) -> None:
        self.buckets = LeakyBucket()
        self.rdts: dict[str, tuple[str, set[str], float]] = {}  # token: (code, elements, until)
        self.lock = threading.Lock()
        self.feeds = FeedsApi(settings)
        self.easyship = EasyShipApi(settings, self.feeds)

    # --- routing ------------------------------------------------------------------------

    def operation_name(self, request: NativeRequest) -> str:
        method, path = request.method, request.path
        if path == "/auth/o2/token":
            return "lwaToken"
        if path == "/tokens/2021-03-01/restrictedDataToken":
            return "createRestrictedDataToken"
        if path == ORDERS:
            return "getOrders"
        match = ORDER_PATH.fullmatch(path)
        if match:
            return "getOrderItems" if match[2] == "orderItems" else "confirmShipment"
        if LISTING_PATH.fullmatch(path) and method == "PATCH":
            return "patchListingsItem"
        return EASY_SHIP_OPERATIONS.get((method, path)) or feed_operation(method, path)

    def operation(self, request: NativeRequest) -> tuple[str, str]:
        name = self.operation_name(request)
        request.notes["amazonOperation"] = name
        contract = {
            "lwaToken": ("GET", "/authToken"),
            "getOrders": ("GET", "/orders"),
            "getOrderItems": ("GET", "/orders/items"),  # no contract call: its own path
            "confirmShipment": ("POST", "/orders/dispatch"),
            "patchListingsItem": ("POST", "/updateInventory"),
        }
        return contract.get(name, (request.method, request.path))

    def fault(self, rule: FaultRule, reply: Reply) -> Reply:
        status, _, headers = reply
        if rule.kind == "rate_limit":
            return error(429, "QuotaExceeded", "You exceeded your quota.", headers)
        if rule.kind == "unauthorized":
            return error(403, "Unauthorized", "Access to requested resource is denied.")
        if rule.kind == "garbage":
            return reply
        return error(status, "InternalFailure", "We encountered an internal error.", headers)

    def call(self, request: NativeRequest) -> Reply:
        name = self.operation_name(request)
        handler = next(
            (
                getattr(part, f"op_{name}")
                for part in (self, self.feeds, self.easyship)
                if name and hasattr(part, f"op_{name}")
            ),
            None,
        )
        if not name or handler is None:
            return error(404, "NotFound", f"no such resource: {request.method} {request.path}")
        if name != "lwaToken" and name not in self.feeds.unsigned:
            refused = self._authorize(request, name)
            if refused:
                return refused
            limited = self._throttle(request, name)
            if limited:
                return limited
        status, payload, headers = handler(request)
        if name in shapes.USAGE_PLANS:
            headers = {**headers, "x-amzn-RateLimit-Limit": str(self._plan(request, name)[0])}
        headers.setdefault("x-amzn-RequestId", secrets.token_hex(8))
        return status, payload, headers

    # --- auth and rate limits -----------------------------------------------------------

    def _authorize(self, request: NativeRequest, name: str) -> Reply | None:
        token = request.headers.get("x-amz-access-token")
        with self.lock:
            rdt = self.rdts.get(token or "")
        if rdt is not None:
            if rdt[0] != request.code or rdt[2] <= time.monotonic() or request.path != ORDERS:
                return error(403, "Unauthorized", "The restricted data token is not valid here")
            request.notes["rdt"] = sorted(rdt[1])
            return None
        problem = request.store.token_problem(request.code, token)
        if problem:
            return error(403, "Unauthorized", f"Access to requested resource is denied: {problem}")
        return None

    def _plan(self, request: NativeRequest, name: str) -> tuple[float, float]:
        rate, burst = settings(request.store, request.code)["rates"].get(
            name, shapes.USAGE_PLANS[name]
        )
        return float(rate), float(burst)

    def _throttle(self, request: NativeRequest, name: str) -> Reply | None:
        if name not in shapes.USAGE_PLANS:
            return None
        rate, burst = self._plan(request, name)
        key = (id(request.store), request.code, name)
        if self.buckets.spend(key, 1, burst, rate)[0]:
            return None
        request.notes["throttled"] = True
        headers = {"x-amzn-RateLimit-Limit": str(rate)}
        return error(
            429, "QuotaExceeded", "You exceeded your quota for the requested resource.", headers
        )

    def op_lwaToken(self, request: NativeRequest) -> Reply:
        form = {k: v[-1] for k, v in parse_qs(request.raw.decode("utf-8", "replace")).items()}
        missing = [k for k in shapes.LWA_TOKEN_FORM if not form.get(k)]
        if missing or form.get("grant_type") != "refresh_token":
            why = f"missing {', '.join(missing)}" if missing else "grant_type must be refresh_token"
            return 400, {"error": "invalid_request", "error_description": why}, {}
        expected = settings(request.store, request.code)["refreshToken"]
        token = request.store.authenticate(request.code, form["client_id"], form["client_secret"])
        if token is None:
            return (
                401,
                {"error": "invalid_client", "error_description": "Client authentication failed"},
                {},
            )
        if form["refresh_token"] != expected:
            return (
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "invalid grant parameter : refresh_token",
                },
                {},
            )
        ttl = int(request.store.channels[request.code].token_ttl)
        reply = {"access_token": token, "refresh_token": expected, "token_type": "bearer"}
        return 200, {**reply, "expires_in": ttl}, {}

    def op_createRestrictedDataToken(self, request: NativeRequest) -> Reply:
        body = request.body
        found = problems(body, shapes.RDT_REQUEST)
        if found:
            return error(400, "InvalidInput", "; ".join(found))
        elements: set[str] = set()
        for resource in body["restrictedResources"]:
            if resource["method"] != "GET" or not resource["path"].startswith(ORDERS):
                return error(
                    400, "InvalidInput", f"{resource['path']} is not a restricted operation"
                )
            elements |= set(resource.get("dataElements", ()))
        token = "Atz.sprdt|" + secrets.token_hex(12)
        with self.lock:
            self.rdts[token] = (request.code, elements, time.monotonic() + 3600)
        return 200, {"restrictedDataToken": token, "expiresIn": 3600}, {}

    # --- orders -------------------------------------------------------------------------

    def op_getOrders(self, request: NativeRequest) -> Reply:
        found = _query_problems(request, shapes.GET_ORDERS_QUERY)
        if found:
            return error(400, "InvalidInput", "; ".join(found))
        conf = settings(request.store, request.code)
        if conf["marketplaceId"] not in request.q("MarketplaceIds", "").split(","):
            return error(400, "InvalidInput", "MarketplaceIds: not a marketplace of this seller")
        token = request.q("NextToken")
        if token:
            try:
                query, offset = _read_token(token)
            except ValueError:
                return error(400, "InvalidInput", "Invalid NextToken")
        else:
            query, offset = {k: v[-1] for k, v in request.query.items()}, 0
        if "AmazonOrderIds" not in query:
            refused = _window_problem(query, request.store.now(), conf["lagSeconds"])
            if refused:
                return error(400, "InvalidInput", refused)
        size = min(int(query.get("MaxResultsPerPage") or 100), conf["pageSize"])
        orders = self._listed(request, query, conf)
        page = orders[offset : offset + size]
        elements = set(request.notes.get("rdt", ()))
        payload: dict[str, Any] = {"Orders": [amazon_order(o, conf, elements) for o in page]}
        if offset + size < len(orders):
            payload["NextToken"] = _make_token(query, offset + size)
        if "LastUpdatedAfter" in query:
            payload["LastUpdatedBefore"] = query.get("LastUpdatedBefore") or _listed_until(
                request, conf
            )
        return 200, {"payload": payload}, {}

    def _listed(self, request: NativeRequest, query: dict, conf: dict) -> list[dict]:
        orders = request.store.all_orders(request.code)
        if "AmazonOrderIds" in query:
            wanted = query["AmazonOrderIds"].split(",")
            by_id = {o["id"]: o for o in orders}
            return [by_id[i] for i in dict.fromkeys(wanted) if i in by_id]
        newest = request.store.now() - timedelta(seconds=conf["lagSeconds"])
        field = "LastUpdate" if "LastUpdatedAfter" in query else "Purchase"
        low = parse_iso(
            query.get(f"{'LastUpdated' if field == 'LastUpdate' else 'Created'}After"), "after"
        )
        high_text = query.get("LastUpdatedBefore" if field == "LastUpdate" else "CreatedBefore")
        high = parse_iso(high_text, "before") if high_text else newest
        statuses = set(filter(None, query.get("OrderStatuses", "").split(",")))
        channels = set(filter(None, query.get("FulfillmentChannels", "").split(",")))
        listed = []
        for order in orders:
            updated = last_changed(order)
            if updated > newest:
                continue  # Amazon lists nothing changed in the last two minutes
            moment = updated if field == "LastUpdate" else _date(order["orderDate"])
            if not low <= moment <= high:
                continue
            fields = amazon_order(order, conf, set())
            if statuses and fields["OrderStatus"] not in statuses:
                continue
            if channels and fields.get("FulfillmentChannel") not in channels:
                continue
            listed.append((moment, order["id"], order))
        return [o for _, _, o in sorted(listed, key=lambda x: (x[0], x[1]))]

    def op_getOrderItems(self, request: NativeRequest) -> Reply:
        order_id = unquote(ORDER_PATH.fullmatch(request.path)[1])
        try:
            order = request.store.get_order(request.code, order_id)
        except Exception:  # noqa: BLE001 (the store's unknown order)
            return error(404, "NotFound", f"Order {order_id} not found")
        items = [amazon_item(i, order) for i in order["orderItems"]]
        return 200, {"payload": {"AmazonOrderId": order_id, "OrderItems": items}}, {}

    def op_confirmShipment(self, request: NativeRequest) -> Reply:
        order_id = unquote(ORDER_PATH.fullmatch(request.path)[1])
        if request.method != "POST":
            return error(405, "InvalidInput", "confirmShipment takes POST")
        body = request.body
        found = problems(body, shapes.CONFIRM_SHIPMENT)
        if found:
            return error(400, "InvalidInput", "; ".join(found))
        package = body["packageDetail"]
        contract = {
            "orderId": order_id,
            "orderItems": [
                {"orderItemId": i["orderItemId"], "quantity": i["quantity"]}
                for i in package["orderItems"]
            ],
            "selfShipping": {
                "deliveryPartner": package["carrierCode"],
                "dispatchDate": package["shipDate"],
                "invoiceNumber": package["packageReferenceId"],
                "invoiceDate": package["shipDate"],
                "trackingId": package["trackingNumber"],
            },
        }
        key = f"{order_id}/{package['packageReferenceId']}"
        headers = {"x-amzn-operation": "confirmShipment"}
        reply = request.store.dispatch(request.code, contract, headers, key)
        if reply["status"] == "SUCCESS":
            return 204, None, {}
        messages = [f.get("errorMessage", "") for f in reply.get("orderItems", [])]
        return error(400, "InvalidInput", "; ".join(messages) or reply.get("error", "refused"))

    def op_patchListingsItem(self, request: NativeRequest) -> Reply:
        seller, sku = (unquote(p) for p in LISTING_PATH.fullmatch(request.path).groups())
        conf = settings(request.store, request.code)
        body = request.body
        found = problems(body, shapes.PATCH_LISTINGS_ITEM)
        if seller != conf["sellerId"]:
            found.append(f"sellerId {seller} is not this seller")
        if request.q("marketplaceIds") != conf["marketplaceId"]:
            found.append("marketplaceIds: not this seller's marketplace")
        quantity = availability(body, found) if not found else None
        if found:
            return error(400, "InvalidInput", "; ".join(found))
        entry = {
            "productId": sku,
            "variantId": "",
            "inventory": str(quantity),
            "facilityCode": "DEFAULT",
        }
        reply = request.store.update_inventory(request.code, {"inventoryList": [entry]}, {}, None)
        submission = secrets.token_hex(8)
        if reply["status"] == "SUCCESS":
            return (
                200,
                {"sku": sku, "status": "ACCEPTED", "submissionId": submission, "issues": []},
                {},
            )
        messages = [f.get("errorMessage", "") for f in reply.get("failedProductList", [])]
        issue = {"code": "INVALID", "message": "; ".join(messages), "severity": "ERROR"}
        return (
            200,
            {"sku": sku, "status": "INVALID", "submissionId": submission, "issues": [issue]},
            {},
        )


# --- translation of the store's contract orders --------------------------------------------


def _date(text: str) -> datetime:
    return datetime.fromisoformat(text)


def order_status(order: dict) -> str:
    if order.get("orderStatus") == "PENDING_VERIFICATION":
        return "Pending"
    open_items = [i for i in order["orderItems"] if cancelled_units(i) < i["quantity"]]
    if not open_items:
        return "Canceled"
    shipped = [i for i in open_items if i["status"] in SHIPPED_STATUSES]
    if not shipped:
        return "Unshipped"
    return "Shipped" if len(shipped) == len(open_items) else "PartiallyShipped"


def amazon_order(order: dict, conf: dict, elements: set[str]) -> dict:
    """A store order as getOrders returns it (restricted data only with an RDT for it)."""
    items = order["orderItems"]
    total = sum(float(i["sellingPrice"]) * (i["quantity"] - cancelled_units(i)) for i in items)
    shipped = sum(i["quantity"] for i in items if i["status"] in SHIPPED_STATUSES)
    status = order_status(order)
    fields: dict[str, Any] = {
        "AmazonOrderId": order["id"],
        "PurchaseDate": order["orderDate"],
        "LastUpdateDate": iso(last_changed(order)),
        "OrderStatus": status,
        "FulfillmentChannel": "MFN",
        "SalesChannel": "Amazon.in",
        "OrderTotal": {"CurrencyCode": order.get("currency", "INR"), "Amount": f"{total:.2f}"},
        "NumberOfItemsShipped": shipped,
        "NumberOfItemsUnshipped": sum(i["quantity"] for i in items) - shipped,
        "PaymentMethod": "COD" if order["paymentType"] == "COD" else "Other",
        "MarketplaceId": conf["marketplaceId"],
        "LatestShipDate": iso(_date(order["orderDate"]) + timedelta(days=2)),
        "IsPrime": False,
        "IsBusinessOrder": False,
    }
    if order.get("thirdPartyShipping"):
        lead = next((i for i in items if cancelled_units(i) < i["quantity"]), items[0])
        fields["EasyShipShipmentStatus"] = EASY_SHIP.get(lead["status"], "PendingPickUp")
    if "shippingAddress" in elements:
        a = order["shippingAddress"]
        fields["ShippingAddress"] = {
            "Name": a.get("name", ""),
            "AddressLine1": a.get("addressLine1", ""),
            "AddressLine2": a.get("addressLine2", ""),
            "City": a.get("city", ""),
            "StateOrRegion": a.get("state", ""),
            "PostalCode": a.get("pincode", ""),
            "CountryCode": a.get("country", "IN"),
            "Phone": a.get("phone", ""),
        }
    if "buyerInfo" in elements:
        a = order["shippingAddress"]
        fields["BuyerInfo"] = {"BuyerEmail": a.get("email", ""), "BuyerName": a.get("name", "")}
    fields.update(order.get("amazon") or {})
    return fields


def amazon_item(item: dict, order: dict) -> dict:
    cancelled = cancelled_units(item)
    ordered = 0 if order_status(order) == "Canceled" else item["quantity"] - cancelled
    shipped = ordered if item["status"] in SHIPPED_STATUSES else 0
    currency = order.get("currency", "INR")
    return {
        "ASIN": item["productId"],
        "SellerSKU": item["sku"],
        "OrderItemId": item["orderItemId"],
        "Title": item["title"],
        "QuantityOrdered": ordered,
        "QuantityShipped": shipped,
        # Amazon's prices are the line's (every unit of it), ours per unit
        "ItemPrice": {"CurrencyCode": currency, "Amount": _times(item["sellingPrice"], ordered)},
        "ShippingPrice": {
            "CurrencyCode": currency,
            "Amount": _times(item["shippingCharges"], ordered),
        },
        **(item.get("amazon") or {}),
    }


def _times(amount: str, quantity: int) -> str:
    return f"{float(amount) * max(quantity, 1):.2f}"


# --- requests ----------------------------------------------------------------------------


def _query_problems(request: NativeRequest, spec: dict) -> list[str]:
    found = [f"{name}: unknown parameter" for name in request.query if name not in spec]
    for name, rule in spec.items():
        value = request.q(name)
        if value is None:
            if rule.get("required"):
                found.append(f"{name}: missing")
            continue
        values = value.split(",") if rule.get("csv") else [value]
        if "maxItems" in rule and len(values) > rule["maxItems"]:
            found.append(f"{name}: {len(values)} values, at most {rule['maxItems']}")
        for v in values:
            if "enum" in rule and v not in rule["enum"]:
                found.append(f"{name}: {v!r} is not one of {', '.join(rule['enum'])}")
        if rule.get("format") == "date-time":
            try:
                parse_iso(value, name)
            except Exception:  # noqa: BLE001 (the contract's error, reworded)
                found.append(f"{name}: {value!r} is not an ISO 8601 date-time with offset")
        if "integer" in rule:
            low, high = rule["integer"]
            if not value.isdigit() or not low <= int(value) <= high:
                found.append(f"{name}: must be a whole number {low}..{high}")
    return found


def _window_problem(query: dict, now: datetime, lag: float) -> str:
    created, updated = "CreatedAfter" in query, "LastUpdatedAfter" in query
    if created == updated:
        return "Exactly one of CreatedAfter and LastUpdatedAfter is required"
    if created and ("LastUpdatedBefore" in query):
        return "LastUpdatedBefore may not be used with CreatedAfter"
    if updated and ("CreatedBefore" in query):
        return "CreatedBefore may not be used with LastUpdatedAfter"
    before = query.get("CreatedBefore") or query.get("LastUpdatedBefore")
    if before and parse_iso(before, "before") > now - timedelta(seconds=lag):
        return f"{before} must be at least {lag:g} seconds before the time of the request"
    return ""


def _listed_until(request: NativeRequest, conf: dict) -> str:
    return iso(request.store.now() - timedelta(seconds=conf["lagSeconds"]))


def _make_token(query: dict, offset: int) -> str:
    raw = json.dumps({"q": query, "o": offset}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _read_token(token: str) -> tuple[dict, int]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return dict(data["q"]), int(data["o"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError("bad token") from exc


DIALECT = register(AmazonDialect())
