"""The custom-channel contract (channel-api.md) over HTTP: the implementation every channel
type uses unless its adapter translates to a marketplace's own API.

- One keep-alive connection per adapter (`adapter_for` keeps an adapter per thread and
  channel), with connect and read timeouts, on the standard library's `http.client` (which
  parses the replies, chunked or not): `requests` and `urllib3` cost two to three times its
  CPU per request, and the notification bench is bound by that CPU (README, "Status
  notifications to channels"). A kept-alive connection the channel closed meanwhile is
  reopened once within the request.
- Every call is made of tries, `request_once`: the token is fetched lazily (itself in one
  try) and sent raw in `apiKey`; a 401 fetches a new one and repeats the request once, within
  the try. A try returns the channel's reply as a `Reply` whatever its status, with its
  `Retry-After`; a try that got no reply says why (timeout, connection error).
- The adapter's own calls (order pull, status queries, `post_*`) repeat a try while its
  failure is transient (429, 5xx, timeouts, connection errors) with exponential back-off and
  jitter, at least `Retry-After`, up to `max_attempts` tries; then `ChannelUnavailable`.
  Other 4xx are `ChannelRequestError`; a reply that is not the contract's JSON is
  `ChannelReplyError`. The notification outbox calls `push_once` instead and keeps its
  retries in the database.
- Every message names the channel and the call, and never holds the password (the
  authentication's errors are scrubbed of it; the socket errors' texts are left out). Each
  request is logged at DEBUG, with the credentials hidden.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import random
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from uniware.core.secrets import ScrubQueryFilter, scrub

from .base import (
    CANCEL_PUSH,
    DISPATCH_PUSH,
    STATUS_PUSH,
    ChannelAdapter,
    ChannelAuthError,
    ChannelBudgetSpent,
    ChannelConfig,
    ChannelError,
    ChannelReplyError,
    ChannelRequestError,
    ChannelUnavailable,
    OrdersReply,
    PushReply,
    Reply,
    status_query_what,
    statuses_in_batches,
)
from .parse import describe, parse_orders_reply, parse_push_reply

# The contract sends the credentials as query parameters: hide them in the request log lines.
log = logging.getLogger(__name__)
log.addFilter(ScrubQueryFilter())

MAX_PAGES = 10_000  # a channel that never returns a short page must not loop forever
# The channel closed the connection before replying: on a kept-alive one, it may have closed
# it while idle (reopened and sent again once: pushes carry an idempotency key).
DROPPED = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
JSON_HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}


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


def reply_json(text: str, what: str) -> Any:
    """The JSON of a 2xx reply; ChannelReplyError when there is none."""
    if not text.strip():
        raise ChannelReplyError(f"{what}: malformed reply, the body is empty")
    try:
        return json.loads(text)
    except ValueError:
        raise ChannelReplyError(
            f"{what}: malformed reply, not JSON: {describe(text[:60])}"
        ) from None


def read_push_reply(text: str, *, channel: str, what: str) -> PushReply:
    """A push's 2xx reply (§4-6) read; ChannelReplyError when it is not one."""
    status, failed, error = parse_push_reply(reply_json(text, what), channel=channel, what=what)
    return PushReply(status, tuple(failed), error)


class OneWrite:
    """Writes a request's head and body with one `send` (http.client writes them apart: two
    system calls and two packets per push, about 15 µs more CPU each under the delivery's
    threads). The caller gives the Content-Length."""

    _body: bytes | None = None

    def request(self, method: str, url: str, body: Any = None, headers: Any = None, **kw) -> None:
        self._body = body
        super().request(method, url, None, headers or {}, **kw)  # type: ignore[misc]

    def send(self, data: bytes) -> None:
        body, self._body = self._body, None
        super().send(data + body if body else data)  # type: ignore[misc]


class Connection(OneWrite, http.client.HTTPConnection):
    pass


class TLSConnection(OneWrite, http.client.HTTPSConnection):
    pass


def new_connection(config: ChannelConfig) -> http.client.HTTPConnection:
    """A keep-alive connection to the channel's host, opened on its first request."""
    url = urlsplit(config.base_url)
    if url.scheme == "https":
        context = ssl.create_default_context()
        return TLSConnection(url.hostname, url.port, timeout=config.timeout, context=context)
    return Connection(url.hostname, url.port, timeout=config.timeout)


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
    reply_headers: tuple[str, ...] = ()  # headers a subclass reads off replies (`Reply.headers`)

    def __init__(
        self,
        config: ChannelConfig,
        *,
        connection: http.client.HTTPConnection | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        super().__init__(config)
        if not config.base_url:
            raise ChannelError(f"Channel {config.code}: no base URL is configured")
        url = urlsplit(config.base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ChannelError(
                f"Channel {config.code}: base URL {config.base_url!r} is not an http(s) URL"
            )
        self.prefix = url.path.rstrip("/")  # requests name the path only
        self.connection = connection or new_connection(config)
        self.sleep = sleep
        self.jitter = jitter
        self.token: str | None = None

    def close(self) -> None:
        self.connection.close()

    # --- one try ------------------------------------------------------------------------

    def _exchange(
        self, method: str, target: str, body: bytes | None, headers: dict[str, str], what: str
    ) -> Reply:
        """One request and its reply, read whole."""
        self.stats.requests += 1
        if body is not None:
            headers = {**headers, "Content-Length": str(len(body))}
        reopened = False
        while True:
            kept_alive = self.connection.sock is not None
            problem = "" if kept_alive else self._connect()
            if problem:
                break
            try:
                self.connection.request(method, target, body, headers)
                response = self.connection.getresponse()
                data = response.read()
            except DROPPED as exc:
                self.connection.close()
                if kept_alive and not reopened:
                    reopened = True
                    continue
                problem = f"connection error ({type(exc).__name__})"
            except TimeoutError:
                self.connection.close()
                problem = f"timeout after {self.config.timeout:g} s"
            except (OSError, http.client.HTTPException) as exc:  # their texts may hold the URL
                self.connection.close()
                problem = f"connection error ({type(exc).__name__})"
            break
        if problem:
            log.debug("%s %s: %s", method, target, problem)
            return Reply(error=problem, transient=True)
        if response.will_close:
            self.connection.close()
        log.debug("%s %s: HTTP %s", method, target, response.status)
        reply = self._reply(response.status, data, response.getheader("Retry-After"), what)
        for name in self.reply_headers:
            if (value := response.getheader(name)) is not None:
                reply.headers[name] = value
        return reply

    def _connect(self) -> str:
        """Open the connection within the connect timeout (reads then wait the request's):
        why it failed, or ""."""
        conn = self.connection
        conn.timeout = self.config.connect_timeout
        try:
            conn.connect()
            conn.sock.settimeout(self.config.timeout)
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except TimeoutError:
            problem = f"connection timeout after {self.config.connect_timeout:g} s"
        except OSError as exc:
            problem = f"connection error ({type(exc).__name__})"
        else:
            problem = ""
        finally:
            conn.timeout = self.config.timeout
        if problem:
            conn.close()
        return problem

    @staticmethod
    def _reply(status: int, data: bytes, retry_after: str | None, what: str) -> Reply:
        text = data.decode("utf-8", errors="replace")
        if 200 <= status < 300:
            return Reply(status, text)
        wait = retry_after_seconds(retry_after)
        if status == 429 or status >= 500:
            return Reply(status, text, f"HTTP {status}", transient=True, retry_after=wait)
        error = f"{what}: the channel refused the request with HTTP {status}: {text[:200]}"
        return Reply(status, text, error, retry_after=wait)

    def authenticate(self) -> str:
        """A new token, in one try (a caller that retries retries it with its call). The
        credentials travel in the query and a reply may echo them: the errors that quote the
        reply are scrubbed."""
        what = f"Channel {self.config.code}: authentication"
        query = urlencode({"username": self.config.username, "password": self.config.password})
        reply = self._exchange("GET", f"{self.prefix}/authToken?{query}", None, JSON_HEADERS, what)
        try:
            self.token = self._token_of(reply, what)
        except (ChannelRequestError, ChannelReplyError) as exc:
            raise type(exc)(scrub(str(exc), [self.config.password])) from None
        return self.token

    @staticmethod
    def _token_of(reply: Reply, what: str) -> str:
        refused = f"{what} failed: the channel refused the username or password"
        if reply.status == 401:
            raise ChannelAuthError(refused)
        if reply.transient:
            raise ChannelUnavailable(f"{what}: {reply.error}")
        if not reply.ok:
            raise ChannelRequestError(reply.error)
        data = reply_json(reply.text, what)
        if not isinstance(data, dict) or data.get("status") != "SUCCESS":
            raise ChannelAuthError(refused)
        token = data.get("accessToken")
        if not isinstance(token, str) or not token:
            raise ChannelReplyError(f"{what}: malformed reply, no accessToken in {describe(data)}")
        return token

    def request_once(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        body: Any = None,
        key: str | None = None,
        what: str,
    ) -> Reply:
        """One try of a contract call: its reply whatever the status, or why there is none.
        A 401 authenticates again and repeats the request once, within the try. Raises
        ChannelError when authenticating fails (ChannelUnavailable when that may pass)."""
        target = self.prefix + path + (f"?{urlencode(params)}" if params else "")
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {**JSON_HEADERS, "Idempotency-Key": key} if key else dict(JSON_HEADERS)
        return self._authorized(method, target, data, headers, what)

    def _authorized(
        self, method: str, target: str, data: bytes | None, headers: dict, what: str
    ) -> Reply:
        """The request with the current token; refused as unauthorized, once more with a new
        one (a token can expire between two calls). Subclasses say how a token goes with a
        request (`_sign`) and how the API refuses one (`_unauthorized`)."""
        for renewing in (False, True):
            if renewing:
                self.stats.reauthentications += 1
                self.token = None
            self._sign(headers)
            reply = self._exchange(method, target, data, headers, what)
            self._seen(reply)
            if not self._unauthorized(reply):
                return reply
        reply.error = f"{what}: HTTP {reply.status} again right after re-authenticating"
        return reply

    def _sign(self, headers: dict) -> None:
        headers["apiKey"] = self.token or self.authenticate()

    def _unauthorized(self, reply: Reply) -> bool:
        return reply.status == 401

    def _seen(self, reply: Reply) -> None:  # noqa: B027 (optional: what a reply teaches)
        """Every reply of `_authorized`, before it is judged (Amazon learns its rate)."""

    # --- tries repeated -------------------------------------------------------------------

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential back-off with jitter (half fixed, half random), at least Retry-After."""
        base = self.config.retry_base_delay * (2 ** (attempt - 1))
        delay = min(self.config.retry_max_delay, base) * (0.5 + 0.5 * self.jitter())
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        body: Any = None,
        key: str | None = None,
        what: str,
        **options: Any,
    ) -> Reply:
        """A call, tried again while its failure is transient: its 2xx reply. `options` go
        to `request_once` (a native adapter's own, e.g. the API operation)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                reply = self.request_once(
                    method, path, params=params, body=body, key=key, what=what, **options
                )
            except ChannelBudgetSpent:
                raise  # the run stops here, by design
            except ChannelUnavailable as exc:  # authenticating failed, for now
                reply = Reply(error=str(exc), transient=True)
            if not reply.transient:
                break
            if attempt >= self.config.max_attempts:
                raise ChannelUnavailable(
                    f"{what}: gave up after {attempt} attempts, last: {reply.error}"
                )
            if reply.retry_after is not None and reply.retry_after > self.config.retry_max_delay:
                raise ChannelUnavailable(
                    f"{what}: the channel asks to wait {reply.retry_after:g} s ({reply.error}), "
                    f"more than the {self.config.retry_max_delay:g} s this run waits"
                )
            self.stats.retries += 1
            self.stats.retry_reasons.append(reply.error)
            self.sleep(self._backoff(attempt, reply.retry_after))
        if reply.status == 401:
            raise ChannelAuthError(reply.error)
        if not reply.ok:
            raise ChannelRequestError(reply.error)
        return reply

    # --- the contract -------------------------------------------------------------------

    def fetch_orders(
        self,
        date_from: datetime,
        date_to: datetime,
        statuses: list[str],
        known: Callable[[list[str]], set[str]] | None = None,
        resume: dict[str, Any] | None = None,
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
            data = reply_json(self._call("GET", "/orders", params=params, what=what).text, what)
            reply = parse_orders_reply(data, channel=self.config.code, what=what)
            yield reply
            if len(reply.orders) + len(reply.problems) < size:
                return
        raise ChannelReplyError(
            f"Channel {self.config.code}: get orders returned full pages for {MAX_PAGES} pages"
        )

    def fetch_order_statuses(self, order_ids: list[str]) -> OrdersReply:
        size = self.config.status_batch_size
        return statuses_in_batches(order_ids, size, lambda chunk: self._statuses(chunk, size))

    def _statuses(self, chunk: list[str], size: int) -> OrdersReply:
        what = status_query_what(self.config.code, chunk)
        params = {"pageSize": size, "pageNumber": 1, "orderIds": ",".join(chunk)}
        data = reply_json(self._call("GET", "/orders", params=params, what=what).text, what)
        return parse_orders_reply(data, channel=self.config.code, what=what)

    def _push_target(self, push: str, order_id: str) -> tuple[str, str]:
        """The path of a push (§4-6) and how messages name it."""
        channel = f"Channel {self.config.code}"
        if push == STATUS_PUSH:
            path = f"/order/{quote(order_id, safe='')}"
            return path, f"{channel}: status notification for order {order_id}"
        if push == CANCEL_PUSH:
            return "/orders/cancel", f"{channel}: cancel of order {order_id}"
        if push == DISPATCH_PUSH:
            return "/orders/dispatch", f"{channel}: dispatch"
        raise ValueError(f"no such push: {push!r}")

    def push_once(self, push: str, order_id: str, body: dict, key: str, *, ref: str = "") -> Reply:
        path, what = self._push_target(push, order_id)
        return self.request_once("POST", path, body=body, key=key, what=what)

    def _push(self, target: tuple[str, str], body: dict, key: str | None) -> PushReply:
        path, what = target
        reply = self._call("POST", path, body=body, key=key, what=what)
        return read_push_reply(reply.text, channel=self.config.code, what=what)

    def post_status_notification(
        self, order_id: str, entries: list[dict], *, key: str | None = None
    ) -> PushReply:
        target = self._push_target(STATUS_PUSH, order_id)
        return self._push(target, {"orderItems": entries}, key)

    def post_cancel(self, payload: dict, *, key: str | None = None) -> PushReply:
        target = self._push_target(CANCEL_PUSH, str(payload.get("orderId")))
        return self._push(target, payload, key)

    def post_dispatch(self, payload: dict, *, key: str | None = None) -> PushReply:
        return self._push(self._push_target(DISPATCH_PUSH, ""), payload, key)

    def post_inventory(self, listings: list[dict], *, key: str | None = None) -> PushReply:
        target = ("/updateInventory", f"Channel {self.config.code}: inventory update")
        return self._push(target, {"inventoryList": listings}, key)
