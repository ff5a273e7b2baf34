"""Amazon Selling Partner API (Amazon.in), behind the channel adapter interface.

Connect a seller (README, "Amazon Selling Partner API"): base URL the SP-API endpoint of the
region (India: https://sellingpartnerapi-eu.amazon.com), username the LWA client id, password
the LWA client secret, refresh token the seller's LWA refresh token, API settings
`{"marketplace_id": "A21TJRUUN4KGV", "seller_id": "<merchant token>"}` (optional:
`token_url`, `product_type` for inventory, `run_budget_seconds`).

- Login with Amazon: the refresh token buys an access token, kept until a minute before it
  expires and bought again when a call is refused as unauthorized (401, or 403 Unauthorized).
- Order pull (`getOrders` by `LastUpdatedAfter`/`LastUpdatedBefore`, merchant-fulfilled only;
  `getOrderItems` for the lines of orders we do not have yet). Amazon lists nothing changed
  in the last two minutes, so the pull asks up to `listed_until` (now − 2 min 30 s) and its
  cursor stops there. A run out of rate-limit budget leaves its paging token on the cursor
  (`OrdersReply.resume`): the next run finishes that listing first, then lists from its end,
  so a first pull of thousands of orders goes on run after run and never lists one twice.
- Shipping address and buyer are restricted data: getOrders is called with a Restricted Data
  Token for them; an application without the role gets orders without an address (the pull
  records each one, "the shipping address has no pincode").
- Status sync: `getOrders` by `AmazonOrderIds` (50 a call); lines (`getOrderItems`) only for
  orders whose status may change ours (shipped, cancelled).
- Statuses: Pending/PendingAvailability → PENDING_VERIFICATION; Unshipped and
  PartiallyShipped → CREATED (shipped lines DISPATCHED); Shipped/InvoiceUnconfirmed →
  COMPLETE with lines DISPATCHED, refined by the Easy Ship status (Delivered → DELIVERED;
  ReturningToSeller, ReturnedToSeller, RejectedByBuyer, Undeliverable → COURIER_RETURN);
  Canceled → CANCELLED. Any other value (Unfulfillable, or one Amazon adds) is recorded as a
  problem of that order, and the run goes on.
- The seed's rule, "status sync only for orders the channel ships": an order Amazon ships is
  an Easy Ship order (MFN with `EasyShipShipmentStatus`) — `third_party_shipping`; AFN
  (fulfilled by Amazon) orders are not pulled at all: our warehouse never ships them.
- Rate limits: a token bucket per seller and operation shared by every worker
  (`ratelimit`), at the documented plan until `x-amzn-RateLimit-Limit` says otherwise; a 429
  is retried with back-off. A call that would wait past the run's budget stops the run.
- Dispatch push: `confirmShipment` (package reference: a number derived from the push's
  idempotency key, so a repeated push names the same package; carrier code: our courier's
  name, which must be one Amazon knows). Easy Ship orders need none: Amazon ships them.
- Inventory push: `patchListingsItem` per listing (`fulfillment_availability` quantity) for
  a few listings, a JSON_LISTINGS_FEED for many (`amazon_feeds`); the listing's product id is
  the seller SKU (the pull keys Amazon lines by SellerSKU).
- Cancel push: an order acknowledgement feed (`amazon_feeds`), whole order items only.
- Easy Ship orders: booked with Amazon when packed (`amazon_easyship`): carrier, tracking
  number and Amazon's label.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from .amazon_easyship import EASY_SHIP_PLANS, AmazonEasyShip
from .amazon_feeds import FEED_FROM, FEED_PLANS, AmazonFeeds
from .amazon_orders import (
    PENDING,
    BadAmazonOrder,
    confirm_shipment,
    read_date,
    read_line,
    read_order,
    statuses_of,
)
from .base import (
    CANCEL_PUSH,
    DISPATCH_PUSH,
    ChannelAuthError,
    ChannelBudgetSpent,
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
from .http import iso, new_connection, reply_json
from .native import NativeApiAdapter
from .parse import describe
from .ratelimit import bucket_key, buckets

TOKEN_URL = "https://api.amazon.com/auth/o2/token"
ORDERS = "/orders/v0/orders"
LISTED_LAG = timedelta(minutes=2, seconds=30)  # Amazon: nothing changed in the last 2 minutes
IDS_PER_CALL = 50
# Calls leave at 90 % of the plan's rate: requests queued on the way reach Amazon bunched, and
# Amazon's bucket and ours do not refill at the very same instant.
RATE_MARGIN = 0.9
PLANS = {  # operation: (requests per second, burst), Amazon's documented defaults
    "getOrders": (0.0167, 20),
    "getOrderItems": (0.5, 30),
    "confirmShipment": (2.0, 10),
    "createRestrictedDataToken": (1.0, 10),
    "patchListingsItem": (5.0, 10),
    **FEED_PLANS,
    **EASY_SHIP_PLANS,
}


class AmazonSpApiAdapter(AmazonEasyShip, AmazonFeeds, NativeApiAdapter):
    channel_type = "AMAZON_SP"
    label = "Amazon (Selling Partner API)"
    preset = {
        "supports_status_sync": True,
        "status_sync_channel_shipped_only": True,
        "provides_shipping": True,
        "accepts_status_notifications": False,
        "accepts_cancel": True,
        "accepts_dispatch": True,
        "accepts_inventory": True,
    }
    # optional: token_url, product_type, run_budget_seconds, listing_lag_seconds, rate_limits,
    # cancel_reason, inventory_feed_from, easy_ship_package
    settings_keys = {
        "marketplace_id": "Amazon.in is A21TJRUUN4KGV",
        "seller_id": "the seller's merchant token, for the Listings Items API",
    }
    reply_headers = ("x-amzn-RateLimit-Limit",)

    def __init__(self, config, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        token_url = config.settings.get("token_url") or TOKEN_URL
        self.lwa = new_connection(replace(config, base_url=token_url))
        self.token_path = token_url.split("//", 1)[-1].partition("/")[2]
        self.token_expires = 0.0
        self.rdt: tuple[str, float] | None = None
        self.rates = {**PLANS, **_plans(config.settings.get("rate_limits"))}
        self.operation = ""  # of the call in flight (`_seen` learns its rate)

    def close(self) -> None:
        super().close()
        self.lwa.close()

    @property
    def marketplace(self) -> str:
        return str(self.config.settings.get("marketplace_id", ""))

    def listed_until(self, now: datetime) -> datetime:
        lag = self.config.settings.get("listing_lag_seconds")
        return now - (LISTED_LAG if lag is None else timedelta(seconds=float(lag)))

    # --- Login with Amazon and restricted data ------------------------------------------------

    def authenticate(self) -> str:
        what = f"Channel {self.config.code}: authentication"
        form = urlencode(
            {
                "grant_type": "refresh_token",
                "refresh_token": self.config.refresh_token,
                "client_id": self.config.username,
                "client_secret": self.config.password,
            }
        ).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"}
        saved, self.connection = self.connection, self.lwa  # LWA is another host
        try:
            reply = self._exchange("POST", "/" + self.token_path, form, headers, what)
        finally:
            self.connection = saved
        if reply.transient:
            raise ChannelUnavailable(f"{what}: {reply.error}")
        if not reply.ok:
            data = _json_or_empty(reply.text)
            why = data.get("error_description") or data.get("error") or f"HTTP {reply.status}"
            raise ChannelAuthError(
                f"{what} failed: the channel refused the client id, secret or refresh token "
                f"(Login with Amazon: {why})"
            )
        data = reply_json(reply.text, what)
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise ChannelReplyError(f"{what}: no access_token in {describe(data)}")
        self.token = token
        self.token_expires = time.monotonic() + float(data.get("expires_in") or 3600) - 60
        return token

    def _access_token(self) -> str:
        if not self.token or time.monotonic() >= self.token_expires:
            return self.authenticate()
        return self.token

    def _restricted_token(self) -> str | None:
        """A Restricted Data Token for getOrders' address and buyer (None: not granted)."""
        if self.rdt and time.monotonic() < self.rdt[1]:
            return self.rdt[0]
        body = {
            "restrictedResources": [
                {"method": "GET", "path": ORDERS, "dataElements": ["buyerInfo", "shippingAddress"]}
            ]
        }
        what = f"Channel {self.config.code}: restricted data token"
        try:
            reply = self._api(
                "POST",
                "/tokens/2021-03-01/restrictedDataToken",
                "createRestrictedDataToken",
                body=body,
                what=what,
            )
        except (ChannelRequestError, ChannelAuthError):
            self.rdt = None  # the application has no role for personal data: no addresses
            return None
        data = reply_json(reply.text, what)
        token = data.get("restrictedDataToken") if isinstance(data, dict) else None
        if not token:
            raise ChannelReplyError(f"{what}: no restrictedDataToken in {describe(data)}")
        self.rdt = (token, time.monotonic() + float(data.get("expiresIn") or 3600) - 60)
        return token

    # --- one call ---------------------------------------------------------------------------

    def request_once(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        body: Any = None,
        key: str | None = None,
        what: str,
        operation: str = "",
        token: str | None = None,
    ) -> Reply:
        """One try: waits for the operation's rate-limit token first; an unauthorized reply
        buys a new access token and repeats the request once (not with a restricted data
        token, which is the caller's)."""
        if operation:
            self._wait_for_token(operation, what)
        target = self.prefix + path + (f"?{urlencode(params)}" if params else "")
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        self.operation = operation
        if token:
            headers["x-amz-access-token"] = token
            reply = self._exchange(method, target, data, headers, what)
            self._seen(reply)
            return reply
        return self._authorized(method, target, data, headers, what)

    def _sign(self, headers: dict) -> None:
        headers["x-amz-access-token"] = self._access_token()

    def _unauthorized(self, reply: Reply) -> bool:
        return reply.status == 401 or (reply.status == 403 and "Unauthorized" in reply.text)

    def _seen(self, reply: Reply) -> None:
        if self.operation:
            self._learn_rate(self.operation, reply)

    def _api(self, method: str, path: str, operation: str, *, what: str, **kw: Any) -> Reply:
        """A call tried again while its failure is transient (the base class's loop)."""
        return self._call(method, path, what=what, operation=operation, **kw)

    def _wait_for_token(self, operation: str, what: str) -> None:
        rate, burst = self.rates[operation]
        rate *= RATE_MARGIN
        key = bucket_key(
            "amazon", str(self.config.settings.get("seller_id") or self.config.code), operation
        )
        while (wait := buckets().take(key, rate, burst)) > 0:
            self._wait(wait, what, f"Amazon's rate limit for {operation}")

    def _learn_rate(self, operation: str, reply: Reply) -> None:
        """Amazon says the rate it applied (`x-amzn-RateLimit-Limit`): use it from now on."""
        try:
            rate = float(reply.headers.get("x-amzn-RateLimit-Limit", ""))
        except ValueError:
            return
        if rate > 0:
            self.rates[operation] = (rate, self.rates[operation][1])

    # --- order pull ---------------------------------------------------------------------------

    def fetch_orders(
        self,
        date_from: datetime,
        date_to: datetime,
        statuses: list[str],
        known: Callable[[list[str]], set[str]] | None = None,
        resume: dict[str, Any] | None = None,
    ) -> Iterator[OrdersReply]:
        """A listing a stopped run left part way is finished first (its NextToken), then the
        window from where it ended; each page says where to go on if the run stops after it."""
        self._start_budget()
        if resume and resume.get("next_token"):
            up_to = read_date(resume.get("to"), "resume.to")
            try:
                yield from self._listing({"NextToken": resume["next_token"]}, known, up_to)
            except ChannelRequestError:
                pass  # Amazon no longer takes the token: the window is listed again
            else:
                date_from = max(date_from, up_to)
        window = {"LastUpdatedAfter": iso(date_from), "LastUpdatedBefore": iso(date_to)}
        yield from self._listing(window, known, date_to)

    def _listing(self, params: dict, known, up_to: datetime) -> Iterator[OrdersReply]:
        """Every page of one getOrders listing. A page read whole says to go on at the next
        page (the last moves the cursor to the listing's end); a page the run's budget cut
        short says to read it again (its orders read so far are created, and skipped then)."""
        token = params.get("NextToken")
        while True:
            data = self._orders_page(params)
            following = data.get("NextToken")
            page = self._page(data, known, lines=True)
            if page.stopped:
                page.resume = {"next_token": token, "to": iso(up_to)} if token else {}
                yield page
                raise ChannelBudgetSpent(page.stopped)
            if not following:
                page.complete_up_to, page.resume = up_to, {}
                yield page
                return
            page.resume = {"next_token": following, "to": iso(up_to)}
            yield page
            token, params = following, {"NextToken": following}

    def _orders_page(self, params: dict[str, str], *, what: str = "", restricted=True) -> dict:
        params = {"MarketplaceIds": self.marketplace, **params}
        if "NextToken" not in params and "AmazonOrderIds" not in params:
            params.update(FulfillmentChannels="MFN", MaxResultsPerPage="100")
        what = what or f"Channel {self.config.code}: get orders (getOrders)"
        token = self._restricted_token() if restricted else None
        reply = self._api("GET", ORDERS, "getOrders", params=params, what=what, token=token)
        data = reply_json(reply.text, what)
        payload = data.get("payload") if isinstance(data, dict) else None
        if not isinstance(payload, dict) or not isinstance(payload.get("Orders"), list):
            raise ChannelReplyError(
                f"{what}: malformed reply, expected payload.Orders, got {describe(data)}"
            )
        return payload

    def _page(self, payload: dict, known, *, lines: bool) -> OrdersReply:
        """One getOrders page as an OrdersReply; lines only for orders that need them."""
        reply = OrdersReply()
        raws = [o for o in payload["Orders"] if isinstance(o, dict)]
        ids = [str(o.get("AmazonOrderId") or "") for o in raws]
        have = known(ids) if known else set()
        for n, raw in enumerate(raws, start=1):
            order_id = ids[n - 1] or f"#{n}"
            try:
                status, item_status = statuses_of(raw)
                wants_lines = (
                    lines and order_id not in have and status in ("CREATED", "PENDING_VERIFICATION")
                )
                items = self._lines(order_id, item_status, raw) if wants_lines else ()
                reply.orders.append(read_order(raw, status, items))
            except ChannelBudgetSpent as exc:
                reply.stopped = str(exc)
                return reply
            except (BadAmazonOrder, ChannelReplyError, ChannelRequestError) as exc:
                reply.problems.append(
                    (order_id, f"Channel {self.config.code}: order {order_id}: {exc}")
                )
        return reply

    def _lines(self, order_id: str, item_status: Callable[[dict], str], raw: dict) -> tuple:
        what = f"Channel {self.config.code}: getOrderItems of {order_id}"
        path = f"{ORDERS}/{quote(order_id, safe='')}/orderItems"
        items, params = [], None
        while True:
            reply = self._api("GET", path, "getOrderItems", params=params, what=what)
            data = reply_json(reply.text, what)
            payload = data.get("payload") if isinstance(data, dict) else None
            if not isinstance(payload, dict) or not isinstance(payload.get("OrderItems"), list):
                raise ChannelReplyError(f"malformed getOrderItems reply {describe(data)}")
            items += [read_line(i, item_status(i)) for i in payload["OrderItems"]]
            if not payload.get("NextToken"):
                return tuple(items)
            params = {"NextToken": payload["NextToken"]}

    # --- status sync --------------------------------------------------------------------------

    def fetch_order_statuses(self, order_ids: list[str]) -> OrdersReply:
        self._start_budget()
        size = min(IDS_PER_CALL, self.config.status_batch_size)
        return statuses_in_batches(order_ids, size, self._statuses)

    def _statuses(self, chunk: list[str]) -> OrdersReply:
        what = status_query_what(self.config.code, chunk)
        ids = {"AmazonOrderIds": ",".join(chunk)}
        return self._status_page(self._orders_page(ids, what=what, restricted=False))

    def _status_page(self, payload: dict) -> OrdersReply:
        """Statuses of known orders: lines only where Amazon's status moves ours."""
        reply = OrdersReply()
        for n, raw in enumerate(o for o in payload["Orders"] if isinstance(o, dict)):
            order_id = str(raw.get("AmazonOrderId") or f"#{n + 1}")
            try:
                status, item_status = statuses_of(raw)
                moves = raw.get("OrderStatus") not in PENDING | {"Unshipped"}
                items = self._lines(order_id, item_status, raw) if moves else ()
                reply.orders.append(read_order(raw, status, items))
            except (BadAmazonOrder, ChannelReplyError, ChannelRequestError) as exc:
                reply.problems.append(
                    (order_id, f"Channel {self.config.code}: order {order_id}: {exc}")
                )
        return reply

    # --- pushes -------------------------------------------------------------------------------

    def push_once(self, push: str, order_id: str, body: dict, key: str, *, ref: str = "") -> Reply:
        what = f"Channel {self.config.code}: {push.lower()} of order {order_id}"
        if push == CANCEL_PUSH:
            return self.cancel_once(order_id, body, ref, what)
        if push != DISPATCH_PUSH:
            return Reply(error=f"{what}: Amazon takes no status notifications")
        shipping = body.get("selfShipping")
        if not shipping:  # Easy Ship: Amazon's own courier, nothing to confirm
            return Reply(200, json.dumps({"status": "SUCCESS"}))
        request = confirm_shipment(self.marketplace, body, shipping, key)
        path = f"{ORDERS}/{quote(order_id, safe='')}/shipmentConfirmation"
        reply = self.request_once(
            "POST", path, body=request, what=what, operation="confirmShipment"
        )
        if reply.ok:
            return Reply(reply.status, json.dumps({"status": "SUCCESS"}))
        if reply.transient or reply.status is None:
            return reply
        message = _error_message(reply.text) or reply.error
        return Reply(200, json.dumps(failed_push(body.get("orderItems", []), message)))

    def post_inventory(self, listings: list[dict], *, key: str | None = None) -> PushReply:
        """A few listings: patchListingsItem each (Amazon applies them in minutes); from
        `inventory_feed_from` (20): one JSON_LISTINGS_FEED, its report read later."""
        self._start_budget()
        product_type = str(self.config.settings.get("product_type") or "PRODUCT")
        if len(listings) >= int(self.config.settings.get("inventory_feed_from") or FEED_FROM):
            return self.inventory_feed(listings, product_type)
        failed = []
        seller = quote(str(self.config.settings.get("seller_id") or ""), safe="")
        for entry in listings:
            sku = str(entry.get("productId") or "")
            what = f"Channel {self.config.code}: patchListingsItem {sku}"
            body = {
                "productType": product_type,
                "patches": [
                    {
                        "op": "replace",
                        "path": "/attributes/fulfillment_availability",
                        "value": [
                            {
                                "fulfillment_channel_code": "DEFAULT",
                                "quantity": int(entry["inventory"]),
                            }
                        ],
                    }
                ],
            }
            path = f"/listings/2021-08-01/items/{seller}/{quote(sku, safe='')}"
            try:
                reply = self._api(
                    "PATCH",
                    path,
                    "patchListingsItem",
                    params={"marketplaceIds": self.marketplace},
                    body=body,
                    what=what,
                )
            except ChannelRequestError as exc:
                failed.append((sku, str(exc)))
                continue
            data = _json_or_empty(reply.text)
            if data.get("status") != "ACCEPTED":
                issues = "; ".join(str(i.get("message", "")) for i in data.get("issues") or [])
                failed.append((sku, issues or f"status {data.get('status')!r}"))
        if not failed:
            return PushReply("SUCCESS")
        status = "FAILED" if len(failed) == len(listings) else "PARTIAL_SUCCESS"
        return PushReply(status, tuple(failed), "; ".join(m for _, m in failed))


# --- helpers ----------------------------------------------------------------------------


def _plans(value: Any) -> dict[str, tuple[float, float]]:
    """`rate_limits` of the API settings: a seller whose usage plan is higher than the
    documented default sets {"getOrderItems": [rate, burst], ...}."""
    if not isinstance(value, dict):
        return {}
    plans = {}
    for operation, pair in value.items():
        if operation in PLANS and isinstance(pair, list | tuple) and len(pair) == 2:
            plans[operation] = (float(pair[0]), float(pair[1]))
    return plans


def _json_or_empty(text: str) -> dict:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _error_message(text: str) -> str:
    errors = _json_or_empty(text).get("errors") or []
    return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict))
