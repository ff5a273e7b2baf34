"""Shopify (a seller's own store) through the Admin GraphQL API, behind the adapter interface.

Connect a store (README, "Shopify"): base URL https://<shop>.myshopify.com, password the Admin
API access token of the store's custom app, API settings `{"location_id": "<number>"}` (the
location whose stock we set; optional `api_version`, default 2026-10, `run_budget_seconds`).

- Every call is a named GraphQL operation to /admin/api/<version>/graphql.json with the token
  in `X-Shopify-Access-Token`.
- Cost limits: Shopify charges each query its cost from a leaky bucket; every reply says what
  is left (`extensions.cost.throttleStatus`). Before a query that would not fit we wait for
  the bucket to refill; a THROTTLED reply waits and tries again; a wait past the run's budget
  stops the run (`ChannelBudgetSpent`), which the next run resumes.
- Order pull: orders by `updated_at` in the window, sorted by it, with cursor paging; a page
  moves the pull's cursor to just before its last order's `updatedAt`.
- Statuses: `cancelledAt` → CANCELLED; fulfilment ON_HOLD → PENDING_VERIFICATION (the
  merchant holds it to check it); a line's cancelled units are those gone from its
  `currentQuantity` (an order edit); fulfilled units follow their fulfillment's display
  status (DELIVERED → DELIVERED; NOT_DELIVERED, FAILURE → COURIER_RETURN; else DISPATCHED,
  with the fulfillment's tracking); lines in a REQUESTED or OPEN return → RETURN_REQUESTED.
  A display status we do not know is recorded as a problem of that order; the run goes on
  (`shopify_orders` reads the order nodes).
- Dispatch push: the order's fulfillment orders, then `fulfillmentCreate` with our courier
  and AWB as tracking (the customer is notified); lines already fulfilled (a repeated push)
  count as done. Cancel push: `orderCancel` when every open unit is cancelled (Shopify
  cancels whole orders; a part must be edited out in Shopify); an order already cancelled
  counts as done. Pushes try each call once: the outbox retries the push.
- Inventory push: the variants' inventory items and current "available" at the location,
  then `inventorySetQuantities` with `changeFromQuantity` (compare-and-set): a quantity
  changed meanwhile (a sale in the shop) is read again and set once more, else that listing
  fails with Shopify's message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from .base import (
    CANCEL_PUSH,
    DISPATCH_PUSH,
    ChannelReplyError,
    ChannelRequestError,
    ChannelUnavailable,
    OrdersReply,
    PushReply,
    Reply,
    failed_push,
    status_query_what,
    statuses_in_batches,
)
from .http import iso, reply_json
from .native import NativeApiAdapter
from .parse import describe
from .shopify_orders import gid, read_date, read_orders, tail

API_VERSION = "2026-10"
PAGE = 50
ORDER_FIELDS = """
fragment OrderFields on Order {
  id name createdAt updatedAt cancelledAt displayFulfillmentStatus paymentGatewayNames
  currencyCode email phone
  shippingAddress { name address1 address2 city province zip countryCodeV2 phone }
  lineItems(first: 50) { nodes { id sku title quantity currentQuantity unfulfilledQuantity
    variant { id } product { id } originalUnitPriceSet { shopMoney { amount currencyCode } } } }
  fulfillments(first: 10) { status displayStatus trackingInfo(first: 1) { company number }
    fulfillmentLineItems(first: 50) { nodes { lineItem { id } quantity } } }
  returns(first: 5) { nodes { status returnLineItems(first: 50) { nodes { quantity
    ... on ReturnLineItem { returnReason customerNote
      fulfillmentLineItem { lineItem { id } } } } } } }
}
"""
ORDERS = (
    "query Orders($first: Int!, $after: String, $query: String!) {\n"
    "  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {\n"
    "    pageInfo { hasNextPage endCursor } nodes { ...OrderFields } } }" + ORDER_FIELDS
)
ORDER_STATUSES = (
    "query OrderStatuses($ids: [ID!]!) { nodes(ids: $ids) { ... on Order { ...OrderFields } } }"
    + ORDER_FIELDS
)
FULFILLMENT_ORDERS = """query FulfillmentOrders($id: ID!) { order(id: $id) { id
  fulfillmentOrders(first: 10) { nodes { id status
    lineItems(first: 50) { nodes { id remainingQuantity lineItem { id } } } } } } }"""
FULFILLMENT_CREATE = """mutation FulfillmentCreate($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) {
    fulfillment { id status } userErrors { field message } } }"""
ORDER_CANCEL = """mutation OrderCancel($orderId: ID!, $reason: OrderCancelReason!,
  $refund: Boolean!, $restock: Boolean!, $notifyCustomer: Boolean) {
  orderCancel(orderId: $orderId, reason: $reason, refund: $refund, restock: $restock,
    notifyCustomer: $notifyCustomer) {
    job { id done } orderCancelUserErrors { field message code } } }"""
INVENTORY_LEVELS = """query InventoryLevels($ids: [ID!]!, $locationId: ID!) {
  nodes(ids: $ids) { ... on ProductVariant { id inventoryItem { id
    inventoryLevel(locationId: $locationId) { quantities(names: ["available"]) {
      name quantity } } } } } }"""
INVENTORY_SET = """mutation InventorySet($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) {
    inventoryAdjustmentGroup { reason } userErrors { field message code } } }"""


class ShopifyAdapter(NativeApiAdapter):
    channel_type = "SHOPIFY"
    label = "Shopify"
    preset = {
        "supports_status_sync": True,
        "status_sync_channel_shipped_only": False,
        "provides_shipping": False,
        "accepts_status_notifications": False,
        "accepts_cancel": True,
        "accepts_dispatch": True,
        "accepts_inventory": True,
    }
    # optional: api_version, run_budget_seconds
    settings_keys = {"location_id": "the Shopify location whose stock we set (its number)"}

    def __init__(self, config, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        version = self.config.settings.get("api_version") or API_VERSION
        self.path = f"/admin/api/{version}/graphql.json"
        self.available = float("inf")  # the cost bucket as the last reply left it
        self.one_try = False  # set by push_once: each call tried once
        self.restore_rate = 50.0

    # --- one operation ------------------------------------------------------------------

    def request_once(self, method, path, *, params=None, body=None, key=None, what, **_) -> Reply:
        """One try: the access token goes with every request (there is no login)."""
        data = json.dumps(body, separators=(",", ":")).encode()
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "X-Shopify-Access-Token": self.config.password,
        }
        reply = self._exchange(method, self.prefix + path, data, headers, what)
        if reply.status == 401:
            reply.error = (
                f"Channel {self.config.code}: authentication failed: the channel refused the "
                "access token (Shopify: HTTP 401)"
            )
        return reply

    def _graphql(self, operation: str, query: str, variables: dict, cost: int, what="") -> dict:
        """The operation's `data`, waiting for the cost bucket before and after THROTTLED."""
        what = what or f"Channel {self.config.code}: {operation}"
        for _ in range(self.config.max_attempts):
            self._wait_for(cost, what)
            body = {"query": query, "variables": variables}
            reply = (
                self._once(body, what)
                if self.one_try
                else self._call("POST", self.path, body=body, what=what)
            )
            data = reply_json(reply.text, what)
            if not isinstance(data, dict):
                raise ChannelReplyError(f"{what}: malformed reply {describe(data)}")
            self._learn(data)
            errors = data.get("errors") or []
            if any(_code(e) == "THROTTLED" for e in errors):
                self.stats.retries += 1
                self.stats.retry_reasons.append("THROTTLED")
                continue
            if errors:
                messages = "; ".join(
                    str(e.get("message", e)) for e in errors if isinstance(e, dict)
                )
                raise ChannelRequestError(f"{what}: {messages or describe(errors)}")
            if not isinstance(data.get("data"), dict):
                raise ChannelReplyError(f"{what}: malformed reply, no data in {describe(data)}")
            return data["data"]
        raise ChannelUnavailable(f"{what}: still THROTTLED after {self.config.max_attempts} tries")

    def _once(self, body: dict, what: str) -> Reply:
        """One try, for the outbox's pushes (`push_once` never retries: the outbox does)."""
        reply = self.request_once("POST", self.path, body=body, what=what)
        if reply.transient:
            raise ChannelUnavailable(f"{what}: {reply.error}")
        if not reply.ok:
            raise ChannelRequestError(reply.error)
        return reply

    def _learn(self, data: dict) -> None:
        status = ((data.get("extensions") or {}).get("cost") or {}).get("throttleStatus") or {}
        try:
            self.available = float(status["currentlyAvailable"])
            self.restore_rate = float(status["restoreRate"]) or self.restore_rate
        except (KeyError, TypeError, ValueError):
            pass

    def _wait_for(self, cost: int, what: str) -> None:
        wait = max(0.0, (cost - self.available) / self.restore_rate)
        if not wait:
            return
        self._wait(wait, what, "Shopify's cost limit")
        self.available = cost  # refilled by now (the reply will say exactly)

    # --- order pull and status sync --------------------------------------------------------

    def fetch_orders(
        self,
        date_from: datetime,
        date_to: datetime,
        statuses: list[str],
        known: Callable[[list[str]], set[str]] | None = None,
        resume: dict[str, Any] | None = None,
    ) -> Iterator[OrdersReply]:
        self._start_budget()
        search = f"updated_at:>='{iso(date_from)}' AND updated_at:<='{iso(date_to)}'"
        after = None
        while True:
            variables = {"first": PAGE, "query": search, **({"after": after} if after else {})}
            data = self._graphql("Orders", ORDERS, variables, 2 + PAGE * 3)
            orders = data.get("orders") or {}
            nodes = [n for n in orders.get("nodes") or [] if isinstance(n, dict)]
            page = read_orders(nodes, self.config.code)
            info = orders.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                page.complete_up_to = date_to
                yield page
                return
            last = read_date(nodes[-1].get("updatedAt")) if nodes else None
            if last:  # sorted by updatedAt: all before it are read (ties may follow)
                page.complete_up_to = last - timedelta(seconds=1)
            yield page
            after = info.get("endCursor")

    def fetch_order_statuses(self, order_ids: list[str]) -> OrdersReply:
        self._start_budget()
        size = min(250, self.config.status_batch_size)
        return statuses_in_batches(order_ids, size, self._statuses)

    def _statuses(self, chunk: list[str]) -> OrdersReply:
        ids = [gid("Order", i) for i in chunk]
        what = status_query_what(self.config.code, chunk)
        data = self._graphql("OrderStatuses", ORDER_STATUSES, {"ids": ids}, 1 + 3 * len(ids), what)
        return read_orders(
            [n for n in data.get("nodes") or [] if isinstance(n, dict)], self.config.code
        )

    # --- pushes ------------------------------------------------------------------------------

    def push_once(self, push: str, order_id: str, body: dict, key: str, *, ref: str = "") -> Reply:
        """One try of each call the push makes: a failure goes back to the outbox, which
        tries the whole push again later (a repeat finds the work done: fulfilled lines have
        nothing left to fulfil, a cancelled order is not cancelled again)."""
        self.one_try = True
        try:
            if push == DISPATCH_PUSH:
                outcome = self._fulfil(order_id, body)
            elif push == CANCEL_PUSH:
                outcome = self._cancel(order_id, body)
            else:
                return Reply(
                    error=f"Channel {self.config.code}: Shopify takes no status notifications"
                )
        except ChannelUnavailable as exc:
            return Reply(error=str(exc), transient=True)
        except ChannelRequestError as exc:
            return Reply(error=str(exc))
        finally:
            self.one_try = False
        return Reply(200, json.dumps(outcome))

    def _fulfil(self, order_id: str, body: dict) -> dict:
        data = self._graphql(
            "FulfillmentOrders", FULFILLMENT_ORDERS, {"id": gid("Order", order_id)}, 12
        )
        order = data.get("order")
        if not order:
            return _failed(body, f"order {order_id} not found in the shop")
        lines, fulfilled = {}, set()
        for fo in (order.get("fulfillmentOrders") or {}).get("nodes") or []:
            for line in (fo.get("lineItems") or {}).get("nodes") or []:
                line_id = tail((line.get("lineItem") or {}).get("id"))
                if fo.get("status") in ("OPEN", "IN_PROGRESS"):
                    lines[line_id] = (fo["id"], line)
                elif fo.get("status") == "CLOSED":
                    fulfilled.add(line_id)
        groups: dict[str, list[dict]] = {}
        for entry in body.get("orderItems", []):
            if str(entry["orderItemId"]) in fulfilled:
                continue  # by an earlier try whose answer was lost
            found = lines.get(str(entry["orderItemId"]))
            if not found or found[1].get("remainingQuantity", 0) < int(entry["quantity"]):
                why = f"line {entry['orderItemId']} has nothing left to fulfil"
                return _failed(body, why)
            groups.setdefault(found[0], []).append(
                {"id": found[1]["id"], "quantity": int(entry["quantity"])}
            )
        if not groups:
            return {"status": "SUCCESS"}
        shipping = body.get("selfShipping") or {}
        fulfillment = {
            "notifyCustomer": True,
            "trackingInfo": {
                "company": shipping.get("deliveryPartner", ""),
                "number": shipping.get("trackingId", ""),
            },
            "lineItemsByFulfillmentOrder": [
                {"fulfillmentOrderId": fo, "fulfillmentOrderLineItems": items}
                for fo, items in groups.items()
            ],
        }
        result = self._graphql(
            "FulfillmentCreate", FULFILLMENT_CREATE, {"fulfillment": fulfillment}, 10
        )
        errors = (result.get("fulfillmentCreate") or {}).get("userErrors") or []
        return _failed(body, _messages(errors)) if errors else {"status": "SUCCESS"}

    def _cancel(self, order_id: str, body: dict) -> dict:
        reply = self.fetch_order_statuses([order_id])
        if not reply.orders:
            return _failed(body, f"order {order_id} not found in the shop")
        if reply.orders[0].order_status == "CANCELLED":  # by an earlier try whose answer was lost
            return {"status": "SUCCESS"}
        asked = {str(e["orderItemId"]): int(e["quantity"]) for e in body.get("orderItems", [])}
        open_units = {
            i.order_item_id: i.open_quantity for i in reply.orders[0].items if i.open_quantity
        }
        if any(asked.get(line, 0) < n for line, n in open_units.items()):
            return _failed(
                body,
                "Shopify cancels whole orders only: edit the order in Shopify to remove a part",
            )
        variables = {
            "orderId": gid("Order", order_id),
            "reason": "OTHER",
            "refund": False,
            "restock": False,  # our inventory push sets the shop's stock
            "notifyCustomer": True,
        }
        data = self._graphql("OrderCancel", ORDER_CANCEL, variables, 10)
        errors = (data.get("orderCancel") or {}).get("orderCancelUserErrors") or []
        return _failed(body, _messages(errors)) if errors else {"status": "SUCCESS"}

    def post_inventory(self, listings: list[dict], *, key: str | None = None) -> PushReply:
        self._start_budget()
        location = gid("Location", str(self.config.settings.get("location_id") or ""))
        wanted = {str(e["variantId"] or e["productId"]): int(e["inventory"]) for e in listings}
        failed: dict[str, str] = {}
        todo = list(wanted)
        for final in (False, True):  # compare-and-set: a stale read is read again once
            levels = self._levels(todo, location)
            failed.update({v: "no such variant in the shop" for v in todo if v not in levels})
            rows = [
                (
                    v,
                    {
                        "inventoryItemId": levels[v][0],
                        "locationId": location,
                        "quantity": wanted[v],
                        "changeFromQuantity": levels[v][1],
                    },
                )
                for v in todo
                if v in levels
            ]
            todo = self._set(rows, key, failed, final=final) if rows else []
            if not todo:
                break
        product_of = {str(e["variantId"] or e["productId"]): str(e["productId"]) for e in listings}
        entries = tuple((product_of[v], f"variant {v}: {m}") for v, m in failed.items())
        if not entries:
            return PushReply("SUCCESS")
        status = "FAILED" if len(entries) == len(listings) else "PARTIAL_SUCCESS"
        return PushReply(status, entries, "; ".join(m for _, m in entries))

    def _levels(self, variants: list[str], location: str) -> dict[str, tuple[str, int]]:
        """Per variant: its inventory item and the "available" quantity at the location."""
        ids = [gid("ProductVariant", v) for v in variants]
        variables = {"ids": ids, "locationId": location}
        data = self._graphql("InventoryLevels", INVENTORY_LEVELS, variables, 1 + 3 * len(ids))
        levels = {}
        for node in data.get("nodes") or []:
            item = (node or {}).get("inventoryItem") or {}
            quantities = (item.get("inventoryLevel") or {}).get("quantities") or []
            now = next((q.get("quantity") for q in quantities if q.get("name") == "available"), 0)
            if item.get("id"):
                levels[tail(node.get("id"))] = (item["id"], int(now or 0))
        return levels

    def _set(self, rows: list[tuple[str, dict]], key, failed: dict, *, final: bool) -> list[str]:
        """Set the quantities (compare-and-set); the variants whose quantity changed
        meanwhile, to read and set again (none on the final try: they fail)."""
        variables = {
            "input": {
                "name": "available",
                "reason": "correction",
                "referenceDocumentUri": f"uniware://inventory-push/{key or 'manual'}",
                "quantities": [row for _, row in rows],
            }
        }
        data = self._graphql("InventorySet", INVENTORY_SET, variables, 10)
        errors = (data.get("inventorySetQuantities") or {}).get("userErrors") or []
        again = []
        for error in errors:
            field = [str(f) for f in error.get("field") or []]
            index = int(field[2]) if len(field) > 2 and field[2].isdigit() else None
            if index is None or index >= len(rows):  # not about one row: all of them failed
                failed.update({v: str(error.get("message")) for v, _ in rows})
                return []
            variant = rows[index][0]
            if error.get("code") == "CHANGE_FROM_QUANTITY_STALE" and not final:
                again.append(variant)
            else:
                failed[variant] = str(error.get("message"))
        return again


def _code(error: Any) -> str:
    return (
        str(((error or {}).get("extensions") or {}).get("code") or "")
        if isinstance(error, dict)
        else ""
    )


def _messages(errors: list) -> str:
    return "; ".join(str(e.get("message", "")) for e in errors if isinstance(e, dict)) or "refused"


def _failed(body: dict, message: str) -> dict:
    return failed_push(body.get("orderItems", []), message)
