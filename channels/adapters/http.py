"""The custom-channel contract (channel-api.md) over HTTP: the implementation every channel
type uses unless its adapter translates to a marketplace's own API.

- One pooled `requests.Session` per adapter, connect and read timeouts on every call.
- Token: authenticate lazily, send it raw in `apiKey`; on a 401 authenticate again once and
  repeat the call.
- Transient failures (429, 5xx, timeouts, connection errors) are retried with exponential
  back-off and jitter, honouring `Retry-After`, up to `max_attempts` tries; then
  `ChannelUnavailable`. Other 4xx are `ChannelRequestError`; a reply that is not the contract's
  JSON is `ChannelReplyError`. Every message names the channel and the call, and never holds
  the password (the authentication's errors are scrubbed of it, requests' own texts, which may
  hold the URL, are left out).
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from uniware.core.secrets import ScrubQueryFilter, scrub

from .base import (
    ChannelAdapter,
    ChannelAuthError,
    ChannelConfig,
    ChannelError,
    ChannelReplyError,
    ChannelRequestError,
    ChannelUnavailable,
    OrdersReply,
    PushReply,
)
from .parse import describe, parse_orders_reply, parse_push_reply

# The contract sends the credentials as query parameters, and urllib3 logs each request's URL
# at DEBUG: hide them in its log lines.
logging.getLogger("urllib3.connectionpool").addFilter(ScrubQueryFilter())

MAX_PAGES = 10_000  # a channel that never returns a short page must not loop forever


def iso(moment: datetime) -> str:
    """ISO 8601 with offset, to the second (`2026-11-02T16:13:44+05:30`)."""
    return moment.replace(microsecond=0).isoformat()


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds: a number, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment is None:
        return None
    return max(0.0, moment.timestamp() - (now if now is not None else time.time()))


class HttpChannelAdapter(ChannelAdapter):
    """The custom channel ("marketplace" integration of Uniware)."""

    channel_type = "CUSTOM"
    label = "Custom"
    preset = {
        "supports_status_sync": True,
        "status_sync_channel_shipped_only": False,
        "provides_shipping": False,
        "accepts_status_notifications": True,
        "accepts_cancel": True,
        "accepts_dispatch": True,
        "accepts_inventory": True,
    }

    def __init__(
        self,
        config: ChannelConfig,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        super().__init__(config)
        if not config.base_url:
            raise ChannelError(f"Channel {config.code}: no base URL is configured")
        self.base_url = config.base_url.rstrip("/")
        self.session = session or self._new_session()
        self.sleep = sleep
        self.jitter = jitter
        self.token: str | None = None

    @staticmethod
    def _new_session() -> requests.Session:
        session = requests.Session()
        pooled = HTTPAdapter(pool_connections=4, pool_maxsize=8, max_retries=0)
        session.mount("http://", pooled)
        session.mount("https://", pooled)
        session.headers.update({"Accept": "application/json"})
        return session

    def close(self) -> None:
        self.session.close()

    # --- plumbing -----------------------------------------------------------------------

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential back-off with jitter (half fixed, half random), at least Retry-After."""
        base = self.config.retry_base_delay * (2 ** (attempt - 1))
        delay = min(self.config.retry_max_delay, base) * (0.5 + 0.5 * self.jitter())
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    def authenticate(self) -> str:
        what = f"Channel {self.config.code}: authentication"
        try:
            data = self._call(
                "GET",
                "/authToken",
                params={"username": self.config.username, "password": self.config.password},
                authenticated=False,
                what=what,
            )
        except ChannelError as exc:  # the credentials travel in the query: a reply may echo them
            raise type(exc)(scrub(str(exc), [self.config.password])) from None
        if not isinstance(data, dict) or data.get("status") != "SUCCESS":
            raise ChannelAuthError(f"{what} failed: the channel refused the username or password")
        token = data.get("accessToken")
        if not isinstance(token, str) or not token:
            raise ChannelReplyError(f"{what}: malformed reply, no accessToken in {describe(data)}")
        self.token = token
        return token

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        body: Any = None,
        authenticated: bool = True,
        what: str,
        headers: dict | None = None,
    ) -> Any:
        """One contract call: retries, re-authentication and reply checks; the parsed JSON."""
        url = self.base_url + path
        attempt = 0
        reauthenticated = False
        while True:
            attempt += 1
            sent = {"Content-Type": "application/json", **(headers or {})}
            if authenticated:
                sent["apiKey"] = self.token or self.authenticate()
            self.stats.requests += 1
            problem, retry_after = "", None
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    data=json.dumps(body) if body is not None else None,
                    headers=sent,
                    timeout=(self.config.connect_timeout, self.config.timeout),
                )
            except requests.Timeout:
                problem = f"timeout after {self.config.timeout:g} s"
            except requests.ConnectionError as exc:
                problem = f"connection error ({type(exc).__name__})"
            except requests.RequestException as exc:  # its text may hold the URL and its query
                raise ChannelRequestError(
                    f"{what}: request failed ({type(exc).__name__})"
                ) from None
            else:
                status = response.status_code
                if status == 401:
                    if not authenticated:
                        raise ChannelAuthError(
                            f"{what} failed: the channel refused the username or password"
                        )
                    if reauthenticated:
                        raise ChannelAuthError(
                            f"{what}: HTTP 401 again right after re-authenticating"
                        )
                    reauthenticated = True
                    self.stats.reauthentications += 1
                    self.token = None
                    attempt -= 1  # a re-authentication is not a retry
                    continue
                if status == 429 or status >= 500:
                    problem = f"HTTP {status}"
                    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                elif status >= 400:
                    raise ChannelRequestError(
                        f"{what}: the channel refused the request with HTTP {status}: "
                        f"{response.text[:200]}"
                    )
                else:
                    return self._json(response, what)
            if attempt >= self.config.max_attempts:
                raise ChannelUnavailable(
                    f"{what}: gave up after {attempt} attempts, last: {problem}"
                )
            if retry_after is not None and retry_after > self.config.retry_max_delay:
                raise ChannelUnavailable(
                    f"{what}: the channel asks to wait {retry_after:g} s ({problem}), more than "
                    f"the {self.config.retry_max_delay:g} s this run waits"
                )
            self.stats.retries += 1
            self.stats.retry_reasons.append(problem)
            self.sleep(self._backoff(attempt, retry_after))

    @staticmethod
    def _json(response: requests.Response, what: str) -> Any:
        text = response.text
        if not text.strip():
            raise ChannelReplyError(f"{what}: malformed reply, the body is empty")
        try:
            return json.loads(text)
        except ValueError:
            raise ChannelReplyError(
                f"{what}: malformed reply, not JSON: {describe(text[:60])}"
            ) from None

    # --- the contract -------------------------------------------------------------------

    def fetch_orders(
        self, date_from: datetime, date_to: datetime, statuses: list[str]
    ) -> Iterator[OrdersReply]:
        size = self.config.page_size
        for page in range(1, MAX_PAGES + 1):
            params = {
                "pageSize": size,
                "pageNumber": page,
                "orderDateFrom": iso(date_from),
                "orderDateTo": iso(date_to),
            }
            if statuses:
                params["orderStatus"] = ",".join(statuses)
            what = f"Channel {self.config.code}: get orders (page {page})"
            data = self._call("GET", "/orders", params=params, what=what)
            reply = parse_orders_reply(data, channel=self.config.code, what=what)
            yield reply
            if len(reply.orders) + len(reply.problems) < size:
                return
        raise ChannelReplyError(
            f"Channel {self.config.code}: get orders returned full pages for {MAX_PAGES} pages"
        )

    def fetch_order_statuses(self, order_ids: list[str]) -> OrdersReply:
        """Asks in requests of `status_batch_size` ids. A malformed or refused reply fails
        only its ids (`unanswered`); a channel that stays unavailable (or refuses our
        credentials) raises on the first request, and later ends the reply early
        (`stopped`, `not_asked`) so the answers already received are not lost."""
        result = OrdersReply()
        size = self.config.status_batch_size
        for start in range(0, len(order_ids), size):
            chunk = order_ids[start : start + size]
            what = (
                f"Channel {self.config.code}: get order status ({len(chunk)} orders from "
                f"{chunk[0]})"
            )
            try:
                data = self._call(
                    "GET",
                    "/orders",
                    params={"pageSize": size, "pageNumber": 1, "orderIds": ",".join(chunk)},
                    what=what,
                )
                reply = parse_orders_reply(data, channel=self.config.code, what=what)
            except (ChannelReplyError, ChannelRequestError) as exc:
                # this request only: its orders wait for the next run, the others go on
                result.unanswered.update(dict.fromkeys(chunk, str(exc)))
                continue
            except (ChannelUnavailable, ChannelAuthError) as exc:
                if not start:
                    raise  # nothing received: the whole call failed
                # the channel stopped answering part way: keep the answers already received,
                # fail this request's orders with its error, and leave the rest unasked
                result.unanswered.update(dict.fromkeys(chunk, str(exc)))
                result.stopped = str(exc)
                result.not_asked = order_ids[start + size :]
                return result
            asked = set(chunk)
            result.orders += [o for o in reply.orders if o.id in asked]
            result.problems += reply.problems
        return result

    def _push(self, path: str, body: dict, what: str, key: str | None) -> PushReply:
        headers = {"Idempotency-Key": key} if key else None
        data = self._call("POST", path, body=body, what=what, headers=headers)
        status, failed, error = parse_push_reply(data, channel=self.config.code, what=what)
        return PushReply(status, tuple(failed), error)

    def post_status_notification(
        self, order_id: str, entries: list[dict], *, key: str | None = None
    ) -> PushReply:
        from urllib.parse import quote

        what = f"Channel {self.config.code}: status notification for order {order_id}"
        return self._push(f"/order/{quote(order_id, safe='')}", {"orderItems": entries}, what, key)

    def post_cancel(self, payload: dict, *, key: str | None = None) -> PushReply:
        what = f"Channel {self.config.code}: cancel of order {payload.get('orderId')}"
        return self._push("/orders/cancel", payload, what, key)

    def post_dispatch(self, payload: dict, *, key: str | None = None) -> PushReply:
        return self._push("/orders/dispatch", payload, f"Channel {self.config.code}: dispatch", key)

    def post_inventory(self, listings: list[dict], *, key: str | None = None) -> PushReply:
        what = f"Channel {self.config.code}: inventory update"
        return self._push("/updateInventory", {"inventoryList": listings}, what, key)
